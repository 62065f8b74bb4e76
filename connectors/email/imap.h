/* One IMAP mailbox over libcurl (7.88): SELECT for UIDVALIDITY/UIDNEXT, UID searches, fetching messages
 * without setting \Seen, and setting \Seen. One connection is kept between calls, re-made after any error.
 *
 * Round trips are what a mail costs (docs/benchmarks.md, figure 4): the metadata of a batch comes 40 UIDs
 * to a command, and the bodies of small messages several to a command, cut out of the one response by
 * their announced sizes as below (how many fit is curl's limit, imap.c).
 *
 * Fetching without \Seen. curl's own fetch (URL ".../MAILBOX/;UID=n") sends "UID FETCH n BODY[]", which
 * sets \Seen at once: a crash before the message is spooled would leave it marked read although nobody
 * has it. curl has no PEEK variant, and a custom "UID FETCH n BODY.PEEK[]" delivers only the first line
 * of the response to the write callback. But curl passes every response line, the literal's lines
 * included, to the header callback, so imap_fetch_bodies() sends BODY.PEEK[] and cuts the literal out of that
 * stream by its announced byte count (imap_capture in imap_parse.h), in partial fetches of 192 KiB
 * ("BODY.PEEK[]<offset.192K>"). Chunks, because curl 7.88 (as Debian patched it) fails a request whose
 * "headers" pass 300 KiB, and cuts lines longer than half its receive buffer (512 KiB here): a chunk
 * keeps every response under both. One thing can still spoil the stream: a body line that starts with
 * the command's tag ("A005 OK") ends the command early in curl. That is detected (the literal comes up
 * short, or is not followed by ")", or the total is not RFC822.SIZE); the connection is then dropped,
 * because curl's view of it is off, and the message is fetched again the ordinary way (BODY[], a real
 * literal transfer), which sets \Seen before the spool has it. That is safe because the connector's
 * progress is its UID cursor (uidstate.h), not \Seen: a message marked read and not yet spooled is
 * still fetched again; and the connector clears \Seen again when it could not spool it (main.c).
 *
 * Every call is bounded by the connect and transfer timeouts; nothing waits forever. */
#ifndef EMAIL_IMAP_H
#define EMAIL_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap_parse.h"

typedef enum { IMAP_TLS_IMPLICIT, IMAP_TLS_STARTTLS, IMAP_TLS_NONE } imap_tls_t;

typedef struct imap_opts {
    const char *url;       /* "imap://host[:port]" or "imaps://host[:port]", no path; borrowed */
    const char *user, *password; /* borrowed */
    imap_tls_t tls;        /* IMPLICIT for imaps://; STARTTLS requires it on imap://; NONE: plain text */
    const char *ca_file;   /* CA bundle for the server's certificate; NULL: the system's */
    long connect_timeout_ms, timeout_ms; /* per call */
    size_t max_fetch;      /* bytes of one message fetched at most (a partial fetch beyond) */
} imap_opts_t;

/* The calls' results. */
enum { IMAP_OK = 0, IMAP_ERROR = -1, IMAP_CHANGED = 1 /* UIDVALIDITY is not the one given */,
       IMAP_GONE = 2 /* no message with that UID (expunged) */ };

typedef struct imap imap_t;

/* Copies opts (strings too). Caller owns the result (imap_destroy). Does not connect yet. */
imap_t *imap_new(const imap_opts_t *opts);
void imap_destroy(imap_t **imap);

/* The last error as a sentence (borrowed, valid until the next call). */
const char *imap_error(const imap_t *imap);

/* The mailbox's UIDVALIDITY and UIDNEXT, by selecting it again (STATUS would be stale, see imap.c). */
int imap_status(imap_t *imap, const char *mailbox, uint32_t *uidvalidity, uint32_t *uidnext);

/* "UID SEARCH <criteria>" in mailbox, checked against uidvalidity (IMAP_CHANGED on a mismatch).
 * *uids (caller frees) sorted ascending, *n of them. */
int imap_search(imap_t *imap, const char *mailbox, uint32_t uidvalidity, const char *criteria,
                uint32_t **uids, size_t *n);

typedef struct imap_message {
    char *raw;             /* the message (at most max_fetch bytes); owned by the caller; NUL-terminated */
    size_t len;
    imap_meta_t meta;      /* size on the server, INTERNALDATE, \Seen before it was fetched */
    bool truncated;        /* size > max_fetch: only the first max_fetch bytes are in raw */
    bool seen_set;         /* fetched by the fallback, which set \Seen (see above) */
    bool gone;             /* expunged between its metadata and its body: nothing in raw */
} imap_message_t;

/* The metadata (UID FLAGS RFC822.SIZE INTERNALDATE) of uids[0..n), ascending, with one UID FETCH per 40
 * UIDs (imap.c says why no more): meta[i], and found[i] false for a message that no longer exists. */
int imap_fetch_meta(imap_t *imap, const char *mailbox, uint32_t uidvalidity, const uint32_t *uids, size_t n,
                    imap_meta_t *meta, bool *found);

/* Fetches bodies without setting \Seen (see above), starting at uids[0], of messages whose metadata is
 * meta[0..n): as many as curl takes in one response (whole, at most 32, and fewer the larger they are:
 * "UID FETCH a:b,c (UID BODY.PEEK[])"; imap.c says why), or else the first alone (a larger one, in
 * 192 KiB parts). Returns
 * IMAP_OK with out[0..*got) filled (*got >= 1; a message expunged meanwhile has out[i].gone), or an error
 * for uids[0] (*got 0). A group that cannot be read together (a body line like the tagged reply, a
 * message gone) is fetched one by one. */
int imap_fetch_bodies(imap_t *imap, const char *mailbox, uint32_t uidvalidity, const uint32_t *uids,
                      const imap_meta_t *meta, size_t n, imap_message_t *out, size_t *got);

/* Sets (seen) or clears \Seen on the uids. */
int imap_set_seen(imap_t *imap, const char *mailbox, uint32_t uidvalidity, const uint32_t *uids, size_t n,
                  bool seen);

#endif
