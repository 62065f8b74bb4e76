/* Reading IMAP responses (RFC 3501) as libcurl hands them over: untagged lines of custom commands on the
 * write callback, and every response line, literals included, on the header callback.
 * Pure functions on bytes, so they are unit-tested without a server. */
#ifndef EMAIL_IMAP_PARSE_H
#define EMAIL_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The untagged answers of SELECT: "* OK [UIDVALIDITY n] ..." and "* OK [UIDNEXT m] ...". Returns 0 when
 * both were found, else -1. */
int imap_parse_select(const char *resp, size_t len, uint32_t *uidvalidity, uint32_t *uidnext);

/* Every number of every "* SEARCH" line, sorted ascending without repeats, into a new array (*uids,
 * caller frees; NULL when none) of *n entries. Returns 0, or -1 when a SEARCH line holds something that
 * is not a number (then nothing is returned). */
int imap_parse_search(const char *resp, size_t len, uint32_t **uids, size_t *n);

/* What "UID FETCH n (UID FLAGS RFC822.SIZE INTERNALDATE)" said about uid. */
typedef struct imap_meta {
    long long size;           /* RFC822.SIZE, -1 when absent */
    bool seen;                /* FLAGS held \Seen */
    bool has_internaldate;
    int64_t internaldate_ms;
} imap_meta_t;

/* Finds the untagged FETCH response for uid. Returns 0, or -1 when there is none (the message is gone). */
int imap_parse_fetch_meta(const char *resp, size_t len, uint32_t uid, imap_meta_t *out);

/* An IMAP date-time ("22-Nov-2026 08:47:12 +0000", day possibly space-padded) to ms since the epoch.
 * Returns 0 or -1. */
int imap_parse_datetime(const char *s, int64_t *ms);

/* An IMAP date for SEARCH SINCE ("1-Feb-2010") of the UTC day of ms. out gets at least 16 bytes. */
void imap_format_date(int64_t ms, char *out, size_t outsz);

/* Collects the literal of the one "* n FETCH (... BODY[]... {size}" response for want_uid out of the
 * response lines, fed in pieces of any size. */
typedef struct imap_capture {
    uint32_t want_uid;
    size_t max;        /* a literal announced larger than this is refused */
    int state;         /* internal */
    char line[2048];   /* the line being read before the literal (longer ones are kept cut) */
    size_t line_len;
    char *data;        /* the literal; owned, NUL-terminated */
    size_t len, want;
    bool closed;       /* the response went on properly after the literal (")" or more items) */
    const char *error; /* static sentence once something was wrong */
} imap_capture_t;

void imap_capture_init(imap_capture_t *c, uint32_t want_uid, size_t max);
void imap_capture_feed(imap_capture_t *c, const char *bytes, size_t n);
/* After the command finished: 0 with the literal in c->data / c->len, 1 when no FETCH literal came at
 * all (the message is gone), -1 with c->error when the response was cut or garbled. */
int imap_capture_finish(imap_capture_t *c);
/* Frees the literal (unless taken: set c->data = NULL after taking it). */
void imap_capture_free(imap_capture_t *c);

#endif
