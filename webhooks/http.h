/* Outgoing HTTP POSTs on the one event loop: libcurl's multi interface driven by the loop's fds
 * (CURLMOPT_SOCKETFUNCTION) and a timer the caller runs (http_wait_ms, http_run_timers). Nothing here
 * blocks: libcurl resolves names in its own resolver thread (Debian's libcurl uses the threaded resolver)
 * and every request has a connect timeout and a total timeout. */
#ifndef OMNI_WEBHOOKS_HTTP_H
#define OMNI_WEBHOOKS_HTTP_H

#include <stddef.h>
#include "loop.h"

typedef struct http http_t;

/* The most of an answer's body read (and dropped) before the transfer is stopped: the status is the answer. */
#define HTTP_BODY_MAX 65536

typedef struct http_result {
    long status;             /* the HTTP status; 0 when no answer came (error says why). An answer is its
                              * status line and headers: one whose body is longer than HTTP_BODY_MAX, cut
                              * off, or still coming at the timeout counts by its status, error "". */
    char error[256];         /* "" on an answer; else curl's reason ("Operation timed out after 1000 ms ...") */
    char retry_after[64];    /* the Retry-After header's value, "" when absent */
} http_result_t;

/* Called once per request, from the loop; res is borrowed for the call. */
typedef void http_done_fn(const http_result_t *res, void *data);

/* Returns a client on loop (borrowed; must outlive it). */
http_t *http_new(loop_t *loop);
/* Abandons what is in flight (no callbacks), frees, sets *http = NULL. */
void http_destroy(http_t **http);

/* Starts POSTing body (len bytes, copied) to url with the headers ("Name: value", copied). ca_file: the PEM
 * CA certificates a TLS certificate is verified against (NULL: the system's). fn gets the outcome. Returns 0,
 * or -1 when the request could not be started (fn is not called). */
int http_post(http_t *http, const char *url, const char *const *headers, size_t n_headers, const char *body,
              size_t len, const char *ca_file, int connect_timeout_ms, int timeout_ms, http_done_fn *fn, void *data);

/* Milliseconds until libcurl's next timeout (-1: none); pass it to loop_once. */
int http_wait_ms(const http_t *http);
/* Runs libcurl's timeouts that are due (finishing requests whose time is up). */
void http_run_timers(http_t *http);
/* Requests in flight. */
size_t http_inflight(const http_t *http);

#endif
