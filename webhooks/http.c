/* See http.h. The loop watches the sockets libcurl asks for; each event and each due timeout is handed
 * back with curl_multi_socket_action, and finished transfers are read with curl_multi_info_read. */
#include "http.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include "omni/log.h"
#include "omni/util.h"

struct http {
    loop_t *loop;
    CURLM *multi;
    int64_t deadline; /* mono ms of libcurl's next timeout; -1: none */
    size_t inflight;
    struct request *requests; /* in flight, so http_destroy can free them */
};

typedef struct request {
    http_t *http;
    CURL *easy;
    struct curl_slist *headers;
    http_done_fn *fn;
    void *data;
    http_result_t res;
    bool answered;    /* a final (not 1xx) status line and its headers came: that is the answer */
    size_t body_len;  /* bytes of the answer's body read (and dropped) so far */
    char errbuf[CURL_ERROR_SIZE];
    struct request *prev, *next;
} request_t;

static void unlink_request(http_t *h, request_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        h->requests = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

/* Gives back what r holds in libcurl and frees r. */
static void finish(http_t *h, request_t *r)
{
    unlink_request(h, r);
    curl_multi_remove_handle(h->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    h->inflight--;
}

static void check_done(http_t *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        request_t *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode rc = m->data.result;
        long status = 0;
        if (r->answered)
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (r->answered && status >= 200) {
            /* an answer whose body was too long, cut off or still coming at the timeout counts by its status */
            r->res.status = status;
        } else if (rc == CURLE_OK) {
            /* libcurl takes a connection closed inside the headers, after a status line, for a whole answer:
             * it is none (a partner whose answer broke off there is asked again, as at a timeout there) */
            r->res.status = 0;
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
            snprintf(r->res.error, sizeof r->res.error,
                     "the connection closed inside the answer's headers (after its status line, %ld)", status);
        } else {
            r->res.status = 0;
            snprintf(r->res.error, sizeof r->res.error, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
        }
        finish(h, r);
        r->fn(&r->res, r->data);
        free(r);
    }
}

static void on_fd(loop_t *loop, int fd, int events, void *data)
{
    (void)loop;
    http_t *h = data;
    int running, flags = ((events & LOOP_READ) ? CURL_CSELECT_IN : 0) | ((events & LOOP_WRITE) ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(h->multi, fd, flags, &running);
    check_done(h);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy, (void)socketp;
    http_t *h = userp;
    if (what == CURL_POLL_REMOVE) {
        loop_del_fd(h->loop, fd);
        return 0;
    }
    int ev = (what == CURL_POLL_IN || what == CURL_POLL_INOUT ? LOOP_READ : 0) |
             (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? LOOP_WRITE : 0);
    loop_add_fd(h->loop, fd, ev, on_fd, h);
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    http_t *h = userp;
    h->deadline = timeout_ms < 0 ? -1 : omni_mono_ms() + timeout_ms;
    return 0;
}

static size_t on_header(char *buf, size_t size, size_t n, void *data)
{
    request_t *r = data;
    size_t len = size * n;
    if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* a new status line: an interim 1xx's (or a proxy's CONNECT answer's) headers are not the answer's */
        r->res.retry_after[0] = '\0';
        r->answered = false;
    }
    if ((len == 2 && buf[0] == '\r' && buf[1] == '\n') || (len == 1 && buf[0] == '\n')) {
        /* the end of a header block: the answer's when its status is final (a 1xx is followed by another) */
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        r->answered = status >= 200;
    }
    if (len > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
        size_t v = 12;
        while (v < len && (buf[v] == ' ' || buf[v] == '\t'))
            v++;
        size_t end = len;
        while (end > v && (buf[end - 1] == '\r' || buf[end - 1] == '\n' || buf[end - 1] == ' '))
            end--;
        snprintf(r->res.retry_after, sizeof r->res.retry_after, "%.*s", (int)(end - v), buf + v);
    }
    return len;
}

/* The answer's body is not kept: a partner's status line says all a delivery needs. Up to HTTP_BODY_MAX of
 * it is read and dropped, so that the connection can be kept alive; past that the transfer is stopped
 * (CURLE_WRITE_ERROR) and the status counts (check_done). */
static size_t on_body(char *buf, size_t size, size_t n, void *data)
{
    (void)buf;
    request_t *r = data;
    r->body_len += size * n;
    return r->body_len > HTTP_BODY_MAX ? 0 : size * n;
}

http_t *http_new(loop_t *loop)
{
    http_t *h = omni_calloc(1, sizeof *h);
    h->loop = loop;
    h->deadline = -1;
    h->multi = curl_multi_init();
    if (!h->multi)
        omni_fatal("curl_multi_init failed");
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    return h;
}

void http_destroy(http_t **http)
{
    if (!http || !*http)
        return;
    http_t *h = *http;
    while (h->requests) {
        request_t *r = h->requests;
        finish(h, r);
        free(r);
    }
    curl_multi_cleanup(h->multi);
    free(h);
    *http = NULL;
}

int http_post(http_t *h, const char *url, const char *const *headers, size_t n_headers, const char *body,
              size_t len, const char *ca_file, int connect_timeout_ms, int timeout_ms, http_done_fn *fn, void *data)
{
    request_t *r = omni_calloc(1, sizeof *r);
    r->http = h, r->fn = fn, r->data = data;
    r->easy = curl_easy_init();
    if (!r->easy) {
        free(r);
        return -1;
    }
    for (size_t i = 0; i < n_headers; i++)
        r->headers = curl_slist_append(r->headers, headers[i]);
    r->headers = curl_slist_append(r->headers, "Expect:"); /* no 100-continue round trip */
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (ca_file) /* in place of the system's CAs; the chain and the url's name are verified all the same */
        curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is an answer, not a delivery */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "omni-webhooks/1");
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        curl_slist_free_all(r->headers);
        curl_easy_cleanup(e);
        free(r);
        return -1;
    }
    h->inflight++;
    r->next = h->requests;
    if (h->requests)
        h->requests->prev = r;
    h->requests = r;
    return 0;
}

int http_wait_ms(const http_t *h)
{
    if (h->deadline < 0)
        return -1;
    int64_t w = h->deadline - omni_mono_ms();
    return w < 0 ? 0 : w > 1000 ? 1000 : (int)w;
}

void http_run_timers(http_t *h)
{
    if (h->deadline < 0 || omni_mono_ms() < h->deadline)
        return;
    h->deadline = -1;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

size_t http_inflight(const http_t *h) { return h->inflight; }
