/* The OMNI/1 client a connector uses to hand messages to omnirouted, with an on-disk spool.
 *
 * Promise: once omni_client_submit() and then omni_client_sync() have returned 0, the message is on disk
 * (written and fsynced) and will reach the router, surviving a crash of the connector or the router,
 * until the router answers ACK (done) or NACK (moved to the dead-letter file). Only after sync may the
 * connector tell its source the message is taken (mark mail seen, answer a webhook 200, save an offset).
 *
 * Spool layout, in opts.spool_dir:
 *   spool.log         append-only records of submitted and answered messages, compacted when mostly answered
 *   dead-letter.jsonl one JSON object per NACKed message: {"id","reason","nacked_at","message"}
 * One client owns a spool directory (an flock on spool.log); a second one fails to open it.
 *
 * Threading: one client is used by one thread. It never blocks longer than the timeout given to
 * omni_client_poll(), except for the fsync in omni_client_sync() and, rarely, a spool compaction inside
 * omni_client_poll() (a rewrite of the unanswered messages once answered ones fill most of the file). */
#ifndef OMNI_CLIENT_H
#define OMNI_CLIENT_H

#include <stddef.h>

typedef struct omni_client omni_client_t;

typedef struct omni_client_opts {
    /* The router's ingest endpoint, "ipc://..." or "tcp://host:port", or several routers' separated by commas
     * (no spaces): the DEALER connects to every one and sends each message to one of those connected; a
     * message a router took and never answered (it died) is resent after resend_ms to another. Borrowed. */
    const char *endpoint;
    const char *spool_dir;  /* created if missing (0700); borrowed */
    int resend_ms;          /* resend an unanswered message after this long; 0 -> 5000 */
    int ping_ms;            /* PING when nothing was heard for this long; 0 -> 10000 */
    int dead_ms;            /* no reply to anything for this long -> reconnect, resend all; 0 -> 3 * ping_ms */
    size_t window;          /* at most this many unanswered messages on the wire; 0 -> 1000 */
    size_t max_spooled;     /* submit refuses (returns -1, errno EAGAIN) past this many; 0 -> 1000000 */
    /* CURVE, for a router's tcp:// endpoint (docs/protocol.md "Security"); all NULL: none (ipc://). All
     * borrowed, read when the client is made. */
    const char *server_public_key;     /* the router's public key: 40 Z85 characters, or a file holding them */
    const char *curve_secret_key_file; /* this client's secret key: a file only (mode 0600; omnictl keygen) */
    const char *curve_public_key_file; /* optional: checked against the secret key's public key */
    /* Optional callbacks, called from omni_client_poll(); ids and reasons are borrowed for the call. */
    void (*on_ack)(void *user, const char *id);
    void (*on_nack)(void *user, const char *id, const char *reason);
    void (*on_busy)(void *user, const char *id, int retry_ms);
    void *user;
    /* The router's limits.message_bytes; 0 -> 262144 (its default). submit refuses (EMSGSIZE) a message over
     * four times it: the router could not answer it by its id (over the router's cap it cuts the connection
     * without a word), so it would be resent forever and hold up every message behind it. One over the
     * limit itself but within four times it is sent, and NACKed by the router with its id and why. */
    size_t max_message_bytes;
} omni_client_opts_t;

/* Opens the spool (replaying what it holds: those messages are sent again, but for one submit would refuse now,
 * an unreadable id or over four times max_message_bytes, which goes to dead-letter.jsonl with a warning: the
 * router could never answer it), connects the DEALER.
 * Returns NULL with a sentence in err on failure. Caller owns the result. */
omni_client_t *omni_client_new(const omni_client_opts_t *opts, char *err, size_t errsz);

/* Closes the socket (unsent messages stay spooled), frees, sets *client = NULL. */
void omni_client_destroy(omni_client_t **client);

/* Adds one message (its JSON and id) to the spool's batch and queues it for sending. The batch is written
 * with one write(2) by omni_client_sync(), which also fsyncs it (call it once per batch), or, for what
 * was not synced, by the next omni_client_poll(); a message goes to the router only once its record is
 * in the file. A message whose id is already spooled and unanswered is not added twice. The JSON must be an object whose "id" is id (the router answers by that id; full
 * validation is the router's, which NACKs). Returns 0, or -1 with errno (EAGAIN over max_spooled, EIO on
 * a write error, EINVAL for an id the router could not read back (empty, over OMNI_MSG_ID_MAX bytes, not
 * UTF-8 or holding a control character: omni_msg_id_valid) or JSON that does not carry it, EMSGSIZE over
 * four times opts.max_message_bytes or OMNI_FRAME_HARD_MAX). id and json are borrowed (copied). */
int omni_client_submit(omni_client_t *client, const char *id, const char *json, size_t len);

/* Writes everything submitted so far (one write(2)) and fsyncs it (one fdatasync for the batch). Returns 0
 * or -1 with errno (EIO when the write failed: it was cut back off the file, and the batch is written
 * again by the next call; its messages are not sent meanwhile). */
int omni_client_sync(omni_client_t *client);

/* Sends what is queued and allowed by the window, reads replies, resends what timed out, pings when idle.
 * Waits up to timeout_ms (0: do not wait; -1: until something happens). Returns the number of replies
 * handled, or -1 on a fatal error (errno). */
int omni_client_poll(omni_client_t *client, int timeout_ms);

/* Messages spooled and not yet answered by ACK or NACK. */
size_t omni_client_pending(const omni_client_t *client);

/* Counters since the client was made. sent: first sends of messages submitted to this client; resent:
 * every other send (after resend_ms, BUSY, a reconnect, or of a message replayed from the spool); busy:
 * BUSY replies for pending messages; pings: PINGs this client sent. */
typedef struct omni_client_stats {
    unsigned long long submitted, sent, resent, acked, nacked, busy, pings;
} omni_client_stats_t;
void omni_client_stats(const omni_client_t *client, omni_client_stats_t *out);

/* Milliseconds until omni_client_poll() has timed work to do (a resend, a ping), for callers that run their
 * own loop; -1 when nothing is scheduled. */
int omni_client_next_timeout(const omni_client_t *client);

/* The file descriptor that becomes readable when omni_client_poll() may have replies (ZMQ_FD of the DEALER;
 * edge-triggered as ZeroMQ documents, so call omni_client_poll(c, 0) whenever it fires). It stays the same
 * for the client's life: a reconnect reuses the socket. */
int omni_client_fd(const omni_client_t *client);

#endif
