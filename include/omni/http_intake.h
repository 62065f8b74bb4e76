/* The HTTP intake shared by webhook connectors (omni-sms, omni-facebook, omni-twitter's CRC hook): an HTTP/1.1
 * server (libmicrohttpd) run from the connector's one loop, that answers a request only once what it
 * carried is in the spool.
 *
 * How it keeps the connector contract (connector.h):
 *   - No thread. libmicrohttpd runs in its external epoll mode; its epoll fd is the connector's watched fd
 *     (omni_connector_watch_fd), and omni_http_intake_poll() from the connector's poll() serves it.
 *   - Spool before answering. The connector's handler calls omni_http_submit() for each message a request
 *     carries and sets the answer with omni_http_respond(). A request that submitted is held (its connection
 *     suspended) until every request completed in the same turn has been handled, then ONE
 *     omni_connector_commit() (one fsync) makes them all durable, and only then are they answered. Requests
 *     that arrive while an fsync runs wait in their sockets and share the next one.
 *   - Never a lost message. When submit answers EAGAIN (max_spooled reached: the router is away) or fails
 *     (ENOSPC, EIO), or the commit fails, the request is answered 503 with Retry-After, whatever the handler
 *     set, so the provider sends it again later; what was spooled of it is deduplicated by id.
 *   - Limits, all answered, never truncated: a body over max_body_bytes gets 413 (a Content-Length over it
 *     at once, before the body is read; a chunked body once the rest is read and dropped); past max_connections open connections, new ones wait in the
 *     kernel's accept queue until one closes; a connection idle for timeout_ms is closed; headers over
 *     libmicrohttpd's 32 KiB per connection get 431, a longer request line 414.
 *
 * The listener is plain HTTP on the configured address (loopback by default): TLS and the public name belong
 * to the reverse proxy in front, which is why signatures are checked against a configured public URL.
 *
 * Config: a connector puts OMNI_HTTP_INTAKE_KEYS(...) in its key table; the keys then live in its section
 * (sms.listen, sms.max_body_bytes, ...). Threading: the connector's thread only. */
#ifndef OMNI_HTTP_INTAKE_H
#define OMNI_HTTP_INTAKE_H

#include <stddef.h>
#include "omni/connector.h"

/* The intake's keys, to include in a connector's key table (before its NULL entry). listen_def is the
 * default listening address ("127.0.0.1:8080"), body_def the default body limit in bytes ("65536"). */
#define OMNI_HTTP_INTAKE_KEYS(listen_def, body_def)                                                              \
    { "listen", OMNI_KEY_STRING, listen_def, false, 3, 300, NULL,                                                \
      "HOST:PORT the HTTP listener binds ([::1]:PORT for IPv6; port 0: any free port, logged)" },                \
    { "max_body_bytes", OMNI_KEY_SIZE, body_def, false, 1024, 16777216, NULL,                                     \
      "largest request body accepted; larger ones are answered 413" },                                           \
    { "max_connections", OMNI_KEY_INT, "256", false, 1, 65536, NULL,                                             \
      "open HTTP connections at most; more wait in the accept queue" },                                          \
    { "timeout_ms", OMNI_KEY_DURATION, "30000", false, 1000, 3600000, NULL,                                           \
      "an HTTP connection idle this long is closed (rounded up to whole seconds)" },                             \
    { "retry_after_s", OMNI_KEY_INT, "30", false, 1, 86400, NULL,                                                \
      "Retry-After of a 503 (spool full or not writable)" }

typedef struct omni_http_intake omni_http_intake_t;
typedef struct omni_http_req omni_http_req_t;

/* Called once per complete request (body read in full and within the limit). It reads the request with the
 * accessors below, calls omni_http_submit() for each message, and sets the answer with omni_http_respond()
 * (no answer set: 500, logged as a bug). req is valid only during the call. */
typedef void (*omni_http_handler_t)(void *user, omni_http_req_t *req);

/* From the connector's check: reports a listen address that could not be bound as written (not HOST:PORT, a
 * port out of 0..65535, a host that is no address) with omni_connector_check_error. Returns 0 or -1. */
int omni_http_intake_check(omni_connector_t *ctx);

/* Reads the OMNI_HTTP_INTAKE_KEYS of ctx's connector, binds the listener and watches its fd. name is what
 * the log calls the listener ("SMS webhooks"). handler and user are borrowed and outlive the intake.
 * Returns the intake (caller owns; omni_http_intake_destroy) or NULL after logging why (bad address, port
 * taken). Logs "listening on http://HOST:PORT" with the port actually bound. */
omni_http_intake_t *omni_http_intake_new(omni_connector_t *ctx, const char *name, omni_http_handler_t handler,
                                         void *user);

/* Serves what is ready: reads requests, calls the handler, commits once, answers. Call from poll(); it asks
 * the runtime to poll again when libmicrohttpd has a timeout due. Returns 0, or -1 when the HTTP server
 * failed (logged). */
int omni_http_intake_poll(omni_http_intake_t *in);

/* Stops watching the fd, closes every connection (requests held for a commit get no answer: the provider
 * retries them), frees, sets *in = NULL. */
void omni_http_intake_destroy(omni_http_intake_t **in);

/* The fd the intake watches (an epoll fd): a connector that also waits on other fds puts it in an epoll set
 * of its own and watches that one instead (omni_connector_watch_fd takes one fd). */
int omni_http_intake_fd(const omni_http_intake_t *in);

/* The port bound (useful with port 0). */
unsigned omni_http_intake_port(const omni_http_intake_t *in);

typedef struct omni_http_stats {
    unsigned long long requests;      /* complete requests handled (and ones refused for size) */
    unsigned long long spooled;       /* requests answered after a commit that made their messages durable */
    unsigned long long commits;       /* commits (fsyncs) made for them: spooled / commits = requests per fsync */
    unsigned long long unavailable;   /* 503s: spool full, spool not writable, commit failed */
    unsigned long long rejected;      /* 401 and 403 answers (bad or missing signature, wrong token) */
    unsigned long long malformed;     /* 400 answers */
    unsigned long long too_large;     /* 413 answers */
    unsigned long long other;         /* every other answer (200 without a message, 404, 405, ...) */
} omni_http_stats_t;
void omni_http_intake_stats(const omni_http_intake_t *in, omni_http_stats_t *out);

/* ---- inside the handler; strings borrowed from req ---- */

const char *omni_http_method(const omni_http_req_t *req);   /* "GET", "POST", ... */
const char *omni_http_path(const omni_http_req_t *req);     /* "/sms", percent-decoded, without the query */
/* The raw query string as the client sent it, without '?' ("" when none): signatures cover it byte for byte. */
const char *omni_http_query(const omni_http_req_t *req);
/* A header's value (name case-insensitive), or NULL. */
const char *omni_http_header(const omni_http_req_t *req, const char *name);
/* A query argument, percent-decoded, or NULL (the first one when repeated). */
const char *omni_http_arg(const omni_http_req_t *req, const char *name);
/* The body, exactly as received (not NUL-terminated: use len; body[len] is a NUL for convenience). */
const char *omni_http_body(const omni_http_req_t *req, size_t *len);
/* The peer's address, "127.0.0.1" or "::1", for log lines. */
const char *omni_http_peer(const omni_http_req_t *req);

/* Spools msg (omni_connector_submit; msg stays the caller's). Returns what submit returned. On -1 (EAGAIN:
 * spool full; another errno: not writable) the request is answered 503 with Retry-After whatever the
 * handler sets, and the handler should stop submitting. OMNI_SUBMIT_INVALID: the message was logged and
 * dropped (retrying would not make it valid), the request may still be answered 200. */
int omni_http_submit(omni_http_req_t *req, const omni_msg_t *msg);

/* Counts n source messages the handler found invalid itself, before any submit (an event it cannot read, a
 * message over the router's limits it answers 400 to), as omnirouter_connector_messages_invalid_total counts
 * a submit refused as invalid. The handler logs each, with its id and field. */
void omni_http_invalid(omni_http_req_t *req, unsigned n);

/* Sets the answer: status, Content-Type (NULL: text/plain; charset=utf-8) and body (copied; NULL: empty).
 * Status 401/403 and 400 are counted as rejected and malformed. A later call replaces an earlier one. */
void omni_http_respond(omni_http_req_t *req, int status, const char *content_type, const char *body);

/* Answers 405 with the Allow header RFC 9110 requires on it: methods is what the path takes ("POST",
 * "GET, POST"; borrowed, a string literal), body as for omni_http_respond. */
void omni_http_respond_405(omni_http_req_t *req, const char *methods, const char *body);

#endif
