/* See omni/metrics.h. The HTTP side is libmicrohttpd in epoll mode without threads: its one epoll fd joins the
 * program's loop, and every request is answered within MHD_run, from the program's own thread. */
#include "omni/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "omni/util.h"

struct omni_metrics {
    char *buf;
    size_t len, cap;
};

static void put(omni_metrics_t *m, const char *s, size_t n)
{
    if (m->len + n + 1 > m->cap) {
        m->cap = (m->len + n + 1) * 2;
        m->buf = omni_realloc(m->buf, m->cap);
    }
    memcpy(m->buf + m->len, s, n);
    m->len += n;
    m->buf[m->len] = '\0';
}

static void puts_(omni_metrics_t *m, const char *s) { put(m, s, strlen(s)); }

static void putf(omni_metrics_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(omni_metrics_t *m, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(m, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

void omni_metrics_family(omni_metrics_t *m, const char *name, const char *type, const char *help)
{
    putf(m, "# HELP %s ", name);
    for (const char *p = help; *p; p++) /* HELP escapes backslash and newline */
        puts_(m, *p == '\\' ? "\\\\" : *p == '\n' ? "\\n" : (char[2]){ *p, 0 });
    putf(m, "\n# TYPE %s %s\n", name, type);
}

static void value(omni_metrics_t *m, double v)
{
    if (v == (double)(int64_t)v && v < 9e15 && v > -9e15)
        putf(m, " %lld\n", (long long)v);
    else
        putf(m, " %.9g\n", v);
}

void omni_metrics_sample(omni_metrics_t *m, const char *name, double v, ...)
{
    puts_(m, name);
    va_list ap;
    va_start(ap, v);
    const char *label;
    int n = 0;
    while ((label = va_arg(ap, const char *)) != NULL) {
        const char *val = va_arg(ap, const char *);
        putf(m, "%s%s=\"", n++ ? "," : "{", label);
        for (const char *p = val ? val : ""; *p; p++)
            puts_(m, *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : (char[2]){ *p, 0 });
        puts_(m, "\"");
    }
    va_end(ap);
    if (n)
        puts_(m, "}");
    value(m, v);
}

const double omni_histogram_bounds[OMNI_HISTOGRAM_BUCKETS] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                               0.1,   0.25,   0.5,   1,    2.5,   10 };

void omni_histogram_observe(omni_histogram_t *h, double seconds)
{
    int i = 0;
    while (i < OMNI_HISTOGRAM_BUCKETS && seconds > omni_histogram_bounds[i])
        i++;
    h->counts[i]++;
    h->sum += seconds;
    h->n++;
}

void omni_metrics_histogram(omni_metrics_t *m, const char *name, const char *help, const omni_histogram_t *h)
{
    omni_metrics_family(m, name, "histogram", help);
    uint64_t cumulative = 0;
    for (int i = 0; i <= OMNI_HISTOGRAM_BUCKETS; i++) {
        cumulative += h->counts[i];
        char le[32];
        if (i < OMNI_HISTOGRAM_BUCKETS)
            snprintf(le, sizeof le, "%g", omni_histogram_bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        putf(m, "%s_bucket{le=\"%s\"}", name, le);
        value(m, (double)cumulative);
    }
    putf(m, "%s_sum", name);
    value(m, h->sum);
    putf(m, "%s_count", name);
    value(m, (double)h->n);
}

/* ---- the listener ---- */

struct omni_metrics_server {
    struct MHD_Daemon *d;
    omni_metrics_render_fn *render;
    omni_metrics_ready_fn *ready;
    void *data;
};

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **ctx)
{
    (void)version, (void)upload, (void)ctx;
    omni_metrics_server_t *s = cls;
    if (*upload_size != 0) { /* a body is not expected: refuse rather than read it */
        *upload_size = 0;
    }
    const char *body;
    unsigned status;
    omni_metrics_t m = { 0 };
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED, body = "only GET /metrics\n";
    } else if (strcmp(url, "/healthz") == 0) {
        status = MHD_HTTP_OK, body = "ok\n";
    } else if (strcmp(url, "/readyz") == 0) {
        char why[200] = "";
        if (!s->ready || s->ready(s->data, why, sizeof why)) {
            status = MHD_HTTP_OK, body = "ready\n";
        } else {
            puts_(&m, "not ready: ");
            puts_(&m, why);
            puts_(&m, "\n");
            status = MHD_HTTP_SERVICE_UNAVAILABLE, body = m.buf;
        }
    } else if (strcmp(url, "/metrics") != 0) {
        status = MHD_HTTP_NOT_FOUND, body = "not found: /metrics, /healthz, /readyz\n";
    } else {
        puts_(&m, "");
        s->render(&m, s->data);
        status = MHD_HTTP_OK, body = m.buf;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    free(m.buf);
    MHD_add_response_header(r, "Content-Type",
                            status == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* "HOST:PORT", "[V6]:PORT" or ":PORT" into a socket address; numeric only. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, char *err, size_t errsz)
{
    char host[128] = "";
    const char *colon = strrchr(listen, ':');
    if (!colon || colon[1] == '\0') {
        snprintf(err, errsz, "%s: expected HOST:PORT, [V6]:PORT or :PORT", listen);
        return -1;
    }
    size_t hl = (size_t)(colon - listen);
    if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']')
        snprintf(host, sizeof host, "%.*s", (int)(hl - 2), listen + 1);
    else if (hl < sizeof host)
        snprintf(host, sizeof host, "%.*s", (int)hl, listen);
    /* getaddrinfo takes any number as a service and keeps its low 16 bits (99999 binds 34463): checked here */
    const char *port = colon + 1;
    char *end = NULL;
    errno = 0;
    unsigned long pn = strtoul(port, &end, 10);
    if (!isdigit((unsigned char)port[0]) || *end != '\0' || errno != 0 || pn > 65535) {
        snprintf(err, errsz, "%s: the port must be numeric, 0 to 65535", listen);
        return -1;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE }, *res = NULL;
    int rc = getaddrinfo(*host ? host : NULL, colon + 1, &hints, &res);
    if (rc != 0) {
        snprintf(err, errsz, "%s: %s (a numeric address and port)", listen, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

const char *omni_metrics_listen_check(const char *listen, char *buf, size_t bufsz)
{
    struct sockaddr_storage ss;
    return parse_listen(listen, &ss, buf, bufsz) == 0 ? NULL : buf;
}

omni_metrics_server_t *omni_metrics_server_new(const char *listen, omni_metrics_render_fn *render, void *data,
                                               char *err, size_t errsz)
{
    struct sockaddr_storage ss;
    if (parse_listen(listen, &ss, err, errsz) != 0)
        return NULL;
    omni_metrics_server_t *s = omni_calloc(1, sizeof *s);
    s->render = render, s->data = data;
    unsigned flags = MHD_USE_EPOLL | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, answer, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)32, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, errsz, "%s: cannot listen (in use, or not an address of this machine)", listen);
        free(s);
        return NULL;
    }
    return s;
}

void omni_metrics_server_set_ready(omni_metrics_server_t *s, omni_metrics_ready_fn *ready) { s->ready = ready; }

int omni_metrics_server_port(const omni_metrics_server_t *s)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : -1;
}

int omni_metrics_server_fd(const omni_metrics_server_t *s)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    return i ? i->epoll_fd : -1;
}

void omni_metrics_server_run(omni_metrics_server_t *s) { MHD_run(s->d); }

void omni_metrics_server_destroy(omni_metrics_server_t **s)
{
    if (!s || !*s)
        return;
    MHD_stop_daemon((*s)->d);
    free(*s);
    *s = NULL;
}
