/* HTTP GETs (and the POSTs of outpost pointers) over a libcurl multi handle driven from the connector's loop: no thread, no blocking call.
 *
 * curl's sockets go into one epoll set whose fd is the connector's watched fd (omni_connector_watch_fd):
 * poll() runs when any of them is ready, and tw_http_drive() hands the ready sockets to curl. curl's timer
 * becomes a deadline that the caller turns into omni_connector_poll_in (tw_http_timeout_ms). Finished
 * transfers are reported through the done callback, from inside tw_http_drive.
 *
 * Every transfer is bounded: connect_timeout_ms, timeout_ms for the whole exchange, max_body bytes of body
 * (a longer body ends the transfer as a failure). */
#ifndef TW_HTTP_H
#define TW_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tw_http tw_http_t;

typedef struct tw_http_opts {
    long connect_timeout_ms, timeout_ms;
    size_t max_body;
    const char *ca_file;    /* NULL: the system's CAs; borrowed, copied */
    const char *user_agent; /* borrowed, copied */
} tw_http_opts_t;

/* One finished transfer; everything borrowed for the duration of the callback. */
typedef struct tw_http_resp {
    int status;              /* HTTP status, 0 when the transfer failed */
    const char *error;       /* why the transfer failed ("Connection refused", "response over N bytes"), or NULL */
    const char *body;        /* NUL-terminated */
    size_t len;
    const char *rl_remaining, *rl_reset, *retry_after; /* headers or NULL */
} tw_http_resp_t;

typedef void (*tw_http_done_t)(void *tag, const tw_http_resp_t *resp, void *user);

/* Returns a new client (caller owns; tw_http_destroy) or NULL after logging why. */
tw_http_t *tw_http_new(const tw_http_opts_t *opts);
void tw_http_destroy(tw_http_t **http);

/* The epoll fd to watch (readable when a curl socket is ready). */
int tw_http_fd(const tw_http_t *http);

/* Starts a GET of url with "Authorization: Bearer <token>". tag comes back in the done callback. url and
 * token are copied. Returns 0, or -1 after logging why. */
int tw_http_get(tw_http_t *http, const char *url, const char *token, void *tag);

/* Starts a POST of json (a NUL-terminated body, sent as application/json) to url, authorized as a GET is.
 * Everything is copied. Returns 0, or -1 after logging why. */
int tw_http_post_json(tw_http_t *http, const char *url, const char *token, const char *json, void *tag);

/* Serves ready sockets and due timers without waiting; calls done for each finished transfer. */
void tw_http_drive(tw_http_t *http, tw_http_done_t done, void *user);

/* ms until curl wants tw_http_drive called again (0: now), or -1 when it has no timer. */
int64_t tw_http_timeout_ms(const tw_http_t *http);

/* Transfers in flight. */
int tw_http_running(const tw_http_t *http);

#endif
