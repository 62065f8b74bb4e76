/* Reading IMAP responses (RFC 3501) as imap.c's reader hands them over: the untagged part of a response
 * (its lines, literals inside them as they came), or one untagged line at a time; imap_capture takes
 * bytes in pieces of any size.
 * Pure functions on bytes, so they are unit-tested without a server. */
#ifndef EMAIL_IMAP_PARSE_H
#define EMAIL_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The untagged answers of SELECT: "* OK [UIDVALIDITY n] ..." and "* OK [UIDNEXT m] ...". Returns 0 when
 * both were found, 1 when only UIDVALIDITY was (RFC 3501 requires UIDNEXT, yet some servers leave it out:
 * STATUS then gives it), else -1. */
int imap_parse_select(const char *resp, size_t len, uint32_t *uidvalidity, uint32_t *uidnext);

/* UIDNEXT from a STATUS answer: "* STATUS <mailbox> (... UIDNEXT m ...)". Returns 0, or -1 when there is none. */
int imap_parse_status_uidnext(const char *resp, size_t len, uint32_t *uidnext);

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

/* The same for a set: out[i] and found[i] for uids[i] (ascending, as a UID SEARCH gives them), from the
 * answer to one "UID FETCH <set> (...)". A UID without a FETCH response is gone: found[i] false. */
void imap_parse_fetch_metas(const char *resp, size_t len, const uint32_t *uids, size_t n, imap_meta_t *out,
                            bool *found);

/* An IMAP date-time ("22-Nov-2026 08:47:12 +0000", day possibly space-padded) to ms since the epoch.
 * Returns 0 or -1. */
int imap_parse_datetime(const char *s, int64_t *ms);

/* An IMAP date for SEARCH SINCE ("1-Feb-2010") of the UTC day of ms. out gets at least 16 bytes. */
void imap_format_date(int64_t ms, char *out, size_t outsz);

/* One literal wanted by imap_capture. */
typedef struct imap_literal {
    uint32_t uid;      /* set by the caller */
    char *data;        /* owned, NUL-terminated; NULL until its FETCH response announced it */
    size_t len;        /* bytes received so far */
    bool whole;        /* all of it came, and the response went on properly after it (")" or more items) */
} imap_literal_t;

/* Collects the literals of the "* n FETCH (UID u ... BODY[]... {size}" responses for the UIDs of lit[]
 * out of the response lines, fed in pieces of any size: one UID, or several fetched by one command.
 * RFC 3501 fixes no order of a response's items: a server may send the UID after the body
 * ("* n FETCH (BODY[] {size}" CRLF literal " UID u)"), and the literal is then read first and given to its
 * UID when the rest of its response names it. */
typedef struct imap_capture {
    imap_literal_t *lit; /* n of them: the caller's array, filled here */
    size_t n;
    size_t max;        /* a literal announced larger than this is refused */
    int state;         /* internal */
    char line[2048];   /* the line being read before a literal (longer ones are kept cut) */
    size_t line_len;
    imap_literal_t *cur; /* the literal being read */
    imap_literal_t later; /* one whose UID comes after it (uid unused); data NULL when none */
    bool later_rest;   /* the line now read is the rest of later's response, which must name its UID */
    size_t want;       /* its announced size */
    const char *error; /* static sentence once something was wrong */
} imap_capture_t;

/* lit[0..n) have their uid set; their data is cleared here. lit is borrowed until imap_capture_free. */
void imap_capture_init(imap_capture_t *c, imap_literal_t *lit, size_t n, size_t max);
void imap_capture_feed(imap_capture_t *c, const char *bytes, size_t n);
/* After the command finished: 0 when every literal came whole, 1 when no FETCH literal came at all (the
 * messages are gone), -1 with c->error when the response was cut or garbled or a UID is missing (the
 * literals marked whole are still good). */
int imap_capture_finish(imap_capture_t *c);
/* Frees the literals' data (unless taken: set lit[i].data = NULL after taking it). */
void imap_capture_free(imap_capture_t *c);

#endif
