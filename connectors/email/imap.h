/* One IMAP mailbox: SELECT for UIDVALIDITY/UIDNEXT, UID searches, fetching messages without setting
 * \Seen, and setting \Seen. One connection is kept between calls, re-made after any error.
 *
 * libcurl connects, does TLS (imaps://, or STARTTLS on imap://) and logs in (CURLOPT_CONNECT_ONLY stops it
 * there); the commands and their responses are ours, over curl's connection (curl_easy_send/recv). curl's
 * own IMAP commands could not carry this: its fetch sends BODY[] (which sets \Seen at once, before the
 * spool has the message), a custom command's literal comes only through its header callback, line by line,
 * counted against a 300 KiB limit per request, and a body line that starts like the tagged reply ended the
 * command early. Our reader (imap.c) counts literals ({n} then n bytes) and never looks inside them, so a
 * response of any size and content is read as the server meant it, with limits and an error naming the
 * command when it is not IMAP.
 *
 * Round trips are what a mail costs (docs/benchmarks.md, figure 4): per batch one UID FETCH of the
 * metadata (up to 500 UIDs a command), then the bodies, as many to a command as fit in 8 MiB
 * ("UID FETCH a:b (UID BODY.PEEK[])"), each handed on as soon as it is in, while the server goes on
 * sending the next ones. A UID command first makes sure the mailbox is selected on this connection with
 * the caller's UIDVALIDITY (else IMAP_CHANGED), as does a "* OK [UIDVALIDITY n]" in a response.
 *
 * Every command is bounded by the command timeout, the connect and login by the connect timeout; nothing
 * waits forever. The calls block (main.c runs each mailbox's on a thread of its own); a stop (imap_stop_t,
 * shared by every mailbox) ends the waits early: a connect or login at once (curl's progress callback, at
 * most about a second later), a command's wait for the server at the stop's grace deadline, so that work
 * the server answers at once (the \Seen after a commit) still gets done. */
#ifndef EMAIL_IMAP_H
#define EMAIL_IMAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap_parse.h"

typedef enum { IMAP_TLS_IMPLICIT, IMAP_TLS_STARTTLS, IMAP_TLS_NONE } imap_tls_t;

/* A stop shared by several imap_t, requested from any thread. */
typedef struct imap_stop {
    int fd;                  /* an eventfd, readable once the stop is requested */
    _Atomic long long at;    /* monotonic ms: waits end here; 0 until the stop is requested */
} imap_stop_t;

/* 0, or -1 with errno (no eventfd). */
int imap_stop_init(imap_stop_t *s);
/* Requests the stop (once; later calls do nothing): every wait of every imap_t using it ends at most
 * grace_ms from now, a connect or login at once. Safe from any thread. */
void imap_stop_request(imap_stop_t *s, int grace_ms);
bool imap_stop_requested(imap_stop_t *s);
void imap_stop_free(imap_stop_t *s);

typedef struct imap_opts {
    const char *url;       /* "imap://host[:port]" or "imaps://host[:port]", no path; borrowed */
    const char *user, *password; /* borrowed */
    imap_tls_t tls;        /* IMPLICIT for imaps://; STARTTLS requires it on imap://; NONE: plain text */
    const char *ca_file;   /* CA bundle for the server's certificate; NULL: the system's */
    long connect_timeout_ms, timeout_ms; /* per call */
    size_t max_fetch;      /* bytes of one message fetched at most (a partial fetch beyond) */
    imap_stop_t *stop;     /* borrowed, outlives the imap_t; NULL: waits end only at their timeouts */
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
    char *raw;             /* the message (at most max_fetch bytes); NUL-terminated; see imap_take_fn */
    size_t len;
    imap_meta_t meta;      /* size on the server, INTERNALDATE, \Seen before it was fetched */
    bool truncated;        /* size > max_fetch: only the first max_fetch bytes are in raw */
    bool gone;             /* expunged between its metadata and its body: raw is NULL */
} imap_message_t;

/* The metadata (UID FLAGS RFC822.SIZE INTERNALDATE) of uids[0..n), ascending, with one UID FETCH per 500
 * UIDs: meta[i], and found[i] false for a message that no longer exists. */
int imap_fetch_meta(imap_t *imap, const char *mailbox, uint32_t uidvalidity, const uint32_t *uids, size_t n,
                    imap_meta_t *meta, bool *found);

/* Called by imap_fetch_bodies with the i-th message (of its uids) as soon as it is in, in UID order. The
 * callee owns msg->raw (frees it). Returns 0 to go on, non-zero to stop: the rest of the response is read
 * and dropped. */
typedef int (*imap_take_fn)(void *arg, size_t i, imap_message_t *msg);

/* Fetches bodies without setting \Seen, starting at uids[0], of messages whose metadata is meta[0..n): as
 * many whole ones as fit in 8 MiB in one "UID FETCH <set> (UID BODY.PEEK[])", or the first alone when it
 * is larger than max_fetch or of unknown size ("BODY.PEEK[]<0.max_fetch>", truncated). Each goes to take
 * as it arrives; *handed says how many did (a prefix of uids; a message expunged meanwhile has gone set:
 * one the answer left out is asked for with UID SEARCH, and one still there fails the fetch at it instead).
 * Returns IMAP_OK (*handed >= 1 unless take stopped), IMAP_CHANGED, or IMAP_ERROR (imap_error says why;
 * the messages handed on before it are good). */
int imap_fetch_bodies(imap_t *imap, const char *mailbox, uint32_t uidvalidity, const uint32_t *uids,
                      const imap_meta_t *meta, size_t n, imap_take_fn take, void *arg, size_t *handed);

/* Sets (seen) or clears \Seen on the uids. */
int imap_set_seen(imap_t *imap, const char *mailbox, uint32_t uidvalidity, const uint32_t *uids, size_t n,
                  bool seen);

#endif
