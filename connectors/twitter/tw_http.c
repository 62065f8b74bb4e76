/* libcurl multi over epoll (tw_http.h). */
#include "tw_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "omni/log.h"
#include "omni/util.h"

struct tw_http {
    CURLM *multi;
    int ep;
    int64_t deadline;   /* monotonic ms of curl's timer; -1: none */
    int running;
    struct xfer *xfers; /* in flight, a doubly linked list (owned) */
    tw_http_opts_t o;   /* strings owned */
};

typedef struct xfer {
    struct xfer *next, *prev;
    CURL *easy;
    struct curl_slist *hdrs;
    void *tag;
    char *body;
    size_t len, cap, max;
    bool too_big;
    char *rl_remaining, *rl_reset, *retry_after;
    char errbuf[CURL_ERROR_SIZE];
} xfer_t;

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    tw_http_t *h = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(h->ep, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev = { .events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u),
                              .data.fd = s };
    if (epoll_ctl(h->ep, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT &&
        epoll_ctl(h->ep, EPOLL_CTL_ADD, s, &ev) != 0)
        omni_warn("epoll_ctl: %s", strerror(errno));
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    tw_http_t *h = userp;
    h->deadline = timeout_ms < 0 ? -1 : omni_mono_ms() + timeout_ms;
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *userp)
{
    xfer_t *x = userp;
    size_t add = size * n;
    if (x->len + add > x->max) {
        x->too_big = true;
        return 0; /* ends the transfer with CURLE_WRITE_ERROR */
    }
    if (x->len + add + 1 > x->cap) {
        x->cap = (x->len + add + 1) * 2;
        x->body = omni_realloc(x->body, x->cap);
    }
    memcpy(x->body + x->len, p, add);
    x->len += add;
    x->body[x->len] = '\0';
    return add;
}

/* Keeps the rate-limit headers of the last response (a redirect's would be replaced). */
static size_t on_header(char *p, size_t size, size_t n, void *userp)
{
    xfer_t *x = userp;
    size_t len = size * n;
    static const struct { const char *name; size_t off; } keep[] = {
        { "x-rate-limit-remaining:", offsetof(xfer_t, rl_remaining) },
        { "x-rate-limit-reset:", offsetof(xfer_t, rl_reset) },
        { "retry-after:", offsetof(xfer_t, retry_after) },
    };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        size_t k = strlen(keep[i].name);
        if (len > k && strncasecmp(p, keep[i].name, k) == 0) {
            const char *v = p + k;
            size_t vl = len - k;
            while (vl > 0 && (*v == ' ' || *v == '\t'))
                v++, vl--;
            while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
                vl--;
            char **slot = (char **)((char *)x + keep[i].off);
            free(*slot);
            *slot = omni_strndup(v, vl > 64 ? 64 : vl);
        }
    }
    return len;
}

static void xfer_free(xfer_t *x)
{
    curl_slist_free_all(x->hdrs);
    free(x->body);
    free(x->rl_remaining);
    free(x->rl_reset);
    free(x->retry_after);
    free(x);
}

tw_http_t *tw_http_new(const tw_http_opts_t *opts)
{
    static bool global;
    if (!global) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
            omni_error("libcurl: global init failed");
            return NULL;
        }
        global = true;
    }
    tw_http_t *h = omni_calloc(1, sizeof *h);
    h->o = *opts;
    h->o.ca_file = opts->ca_file != NULL ? omni_strdup(opts->ca_file) : NULL;
    h->o.user_agent = omni_strdup(opts->user_agent != NULL ? opts->user_agent : "omni-twitter");
    h->deadline = -1;
    h->ep = epoll_create1(EPOLL_CLOEXEC);
    h->multi = curl_multi_init();
    if (h->ep < 0 || h->multi == NULL) {
        omni_error("HTTP client: %s", h->ep < 0 ? strerror(errno) : "curl_multi_init failed");
        tw_http_destroy(&h);
        return NULL;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    return h;
}

void tw_http_destroy(tw_http_t **hp)
{
    if (hp == NULL || *hp == NULL)
        return;
    tw_http_t *h = *hp;
    while (h->xfers != NULL) {
        xfer_t *x = h->xfers;
        h->xfers = x->next;
        curl_multi_remove_handle(h->multi, x->easy);
        curl_easy_cleanup(x->easy);
        xfer_free(x);
    }
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi);
    if (h->ep >= 0)
        close(h->ep);
    free((char *)h->o.ca_file);
    free((char *)h->o.user_agent);
    free(h);
    *hp = NULL;
}

int tw_http_fd(const tw_http_t *h) { return h->ep; }
int tw_http_running(const tw_http_t *h) { return h->running; }

int64_t tw_http_timeout_ms(const tw_http_t *h)
{
    if (h->deadline < 0)
        return -1;
    int64_t ms = h->deadline - omni_mono_ms();
    return ms > 0 ? ms : 0;
}

/* A GET, or a POST of json (NULL: GET). */
static int start(tw_http_t *h, const char *url, const char *token, const char *json, void *tag)
{
    xfer_t *x = omni_calloc(1, sizeof *x);
    x->tag = tag;
    x->max = h->o.max_body;
    x->easy = curl_easy_init();
    if (x->easy == NULL) {
        omni_error("curl_easy_init failed");
        free(x);
        return -1;
    }
    char *auth = omni_asprintf("Authorization: Bearer %s", token);
    x->hdrs = curl_slist_append(NULL, auth);
    explicit_bzero(auth, strlen(auth));
    free(auth);
    CURL *e = x->easy;
    if (json != NULL) {
        x->hdrs = curl_slist_append(x->hdrs, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, json);
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, h->o.user_agent);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* whatever curl can decode (gzip): X compresses */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->o.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L); /* the runtime owns signals */
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    if (h->o.ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, h->o.ca_file);
    CURLMcode mc = curl_multi_add_handle(h->multi, e);
    if (mc != CURLM_OK) {
        omni_error("curl_multi_add_handle: %s", curl_multi_strerror(mc));
        curl_easy_cleanup(e);
        xfer_free(x);
        return -1;
    }
    x->next = h->xfers;
    if (h->xfers != NULL)
        h->xfers->prev = x;
    h->xfers = x;
    h->running++;
    return 0;
}

int tw_http_get(tw_http_t *h, const char *url, const char *token, void *tag)
{
    return start(h, url, token, NULL, tag);
}

int tw_http_post_json(tw_http_t *h, const char *url, const char *token, const char *json, void *tag)
{
    return start(h, url, token, json, tag);
}

static void finish(tw_http_t *h, CURL *e, CURLcode rc, tw_http_done_t done, void *user)
{
    xfer_t *x = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    char why[CURL_ERROR_SIZE + 64];
    tw_http_resp_t r = { .status = rc == CURLE_OK ? (int)status : 0, .body = x->body ? x->body : "",
                         .len = x->len, .rl_remaining = x->rl_remaining, .rl_reset = x->rl_reset,
                         .retry_after = x->retry_after };
    if (x->too_big) {
        snprintf(why, sizeof why, "response over %zu bytes", x->max);
        r.error = why;
    } else if (rc != CURLE_OK) {
        snprintf(why, sizeof why, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        r.error = why;
    }
    curl_multi_remove_handle(h->multi, e);
    curl_easy_cleanup(e);
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        h->xfers = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    h->running--;
    done(x->tag, &r, user);
    xfer_free(x);
}

void tw_http_drive(tw_http_t *h, tw_http_done_t done, void *user)
{
    int still = 0;
    struct epoll_event evs[16];
    int n = epoll_wait(h->ep, evs, 16, 0);
    for (int i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        int flags = (e & EPOLLIN ? CURL_CSELECT_IN : 0) | (e & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                    (e & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(h->multi, evs[i].data.fd, flags, &still);
    }
    if (h->deadline >= 0 && omni_mono_ms() >= h->deadline) {
        h->deadline = -1;
        curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &still);
    }
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL)
        if (m->msg == CURLMSG_DONE)
            finish(h, m->easy_handle, m->data.result, done, user);
}
