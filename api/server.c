/* Request handling around MHD: route, body (at most limits.body_bytes, refused with 413 as soon as it is
 * known to be larger), token, handler, answer. See api.h for the threading. */
#include "server.h"

#include <ctype.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "api_metrics.h"
#include "console.h"
#include "events.h"
#include "omni/log.h"
#include "omni/util.h"

#define DISCARD_MAX (1024 * 1024)

struct api_server {
    struct MHD_Daemon *mhd;
    const api_config_t *cfg;
};

/* One request's state across MHD's calls (the body arrives in pieces). */
typedef struct pending {
    api_path_t path;
    api_error_t route_err;
    int routed;        /* 0, or -1: the route was refused (answered once the body is drained) */
    char *body;
    size_t len;
    bool too_big;
    size_t discarded;  /* bytes of a too large chunked body read and dropped */
    struct timespec started; /* the headers in: request latency is measured from here */
    bool console;      /* a /console URL: every answer, errors too, carries the console's headers */
} pending_t;

/* The request is answered (status; for a stream, started): counted for /metrics. */
static void count(const pending_t *p, unsigned status)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    api_metrics_request(p->path.route, status, (double)(now.tv_sec - p->started.tv_sec) +
                                                    (double)(now.tv_nsec - p->started.tv_nsec) / 1e9);
}

static enum MHD_Result send_json(struct MHD_Connection *conn, const api_req_t *req, bool console)
{
    char *text = req->raw ? omni_strdup(req->raw)
                          : req->body ? json_dumps(req->body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    size_t n = text ? strlen(text) : 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(n, text ? text : (void *)"", MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (req->challenge) /* RFC 6750: error= only when a token was sent and refused */
        MHD_add_response_header(resp, "WWW-Authenticate", req->challenge == CHALLENGE_INVALID
                                                              ? "Bearer realm=\"omni-api\", error=\"invalid_token\""
                                                              : "Bearer realm=\"omni-api\"");
    if (req->unavailable) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", req->cfg->api.retry_after_s);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (req->allow)
        MHD_add_response_header(resp, "Allow", req->allow);
    if (console) /* a 404, 405 or 413 under /console/ is a console answer too (docs/console.md "Security") */
        api_console_headers(resp);
    enum MHD_Result rc = MHD_queue_response(conn, req->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, const api_config_t *cfg, const pending_t *p,
                                  const api_error_t *e, const char *allow)
{
    api_req_t req = { .cfg = cfg, .allow = allow };
    api_fail_with(&req, e);
    count(p, req.status);
    enum MHD_Result rc = send_json(conn, &req, p->console);
    json_decref(req.body);
    return rc;
}

/* The console's files need no token (console.c). */
static enum MHD_Result serve_console(struct MHD_Connection *conn, const api_config_t *cfg, const pending_t *p,
                                     const char *url)
{
    struct MHD_Response *resp;
    enum MHD_Result rc;
    if (p->path.route == ROUTE_CONSOLE_ROOT) { /* the page's relative links need the slash */
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, "Location", "/console/");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        api_console_headers(resp);
        count(p, 308);
        rc = MHD_queue_response(conn, 308, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    resp = api_console_file(cfg, p->path.id);
    if (!resp) {
        api_error_t e;
        api_error_set(&e, 404, "not_found", NULL, cfg->console.directory ? "no such file in the console"
                                                                         : "no console here (console.directory is empty)");
        omni_debug("GET %s 404", url);
        return send_error(conn, cfg, p, &e, NULL);
    }
    count(p, 200);
    rc = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    omni_debug("GET %s 200", url);
    return rc;
}

static enum MHD_Result count_authorization(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind, (void)value;
    if (!strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION))
        ++*(unsigned *)cls;
    return MHD_YES;
}

/* The caller (auth.c), from the one Authorization header: two (RFC 9110: it is no list) are a malformed token,
 * as MHD would read the first and a proxy in front perhaps the other. Returns 0, or -1 with the 401 (or 503) set. */
static int authorize(struct MHD_Connection *conn, api_req_t *req)
{
    unsigned n = 0;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_authorization, &n);
    if (n > 1) {
        req->challenge = CHALLENGE_INVALID;
        api_fail(req, 401, "invalid_token", "Authorization",
                 "Authorization is given more than once: send one Bearer token");
        return -1;
    }
    return api_auth(req, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
}

/* s as UTF-8 text: each byte that is not part of a valid sequence replaced by U+FFFD, as a browser's
 * URLSearchParams decodes it (a JSON string, or an object's key, must be valid UTF-8). Allocated. */
static char *utf8_text(const char *s)
{
    size_t n = strlen(s), used = 0, bad;
    char *out = omni_malloc(3 * n + 1);
    while (!omni_utf8_valid(s, n, &bad)) {
        memcpy(out + used, s, bad);
        memcpy(out + used + bad, "\xEF\xBF\xBD", 3);
        used += bad + 3;
        s += bad + 1;
        n -= bad + 1;
    }
    memcpy(out + used, s, n + 1);
    return out;
}

/* The query's arguments as an object name -> value ("" for one without "="), for the one route that takes
 * any (GET /v1/report); a name given twice is kept as JSON null, for the handler to refuse. Bytes that are not
 * UTF-8 are kept as U+FFFD, so such an argument is refused as any other malformed one rather than dropped (a
 * JSON string cannot hold them); an empty one ("?&days=1", "?days=1&&") is no argument. */
static enum MHD_Result collect_argument(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    json_t *args = cls;
    if (!*key && !value)
        return MHD_YES;
    char *name = utf8_text(key), *text = utf8_text(value ? value : "");
    json_object_set_new(args, name, json_object_get(args, name) ? json_null() : json_string(text));
    free(name);
    free(text);
    return MHD_YES;
}

/* The request is whole: who asks, what they sent, and the answer. */
static enum MHD_Result serve(struct MHD_Connection *conn, const api_config_t *cfg, pending_t *p, const char *method,
                             const char *url)
{
    api_req_t req = { .cfg = cfg, .path = p->path };
    struct MHD_Response *stream = NULL;
    if (p->path.route == ROUTE_HEALTHZ || authorize(conn, &req) == 0) {
        api_error_t e;
        bool body_ok = true;
        if (api_route_has_body(p->path.route) && strcmp(method, "GET") != 0) {
            req.in = api_body(p->path.route, p->body ? p->body : "", p->len, &e);
            if (!req.in) {
                api_fail_with(&req, &e);
                body_ok = false;
            }
        }
        if (body_ok && p->path.route == ROUTE_REPORT) {
            req.query = json_object();
            MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_argument, req.query);
        }
        if (body_ok && p->path.route == ROUTE_EVENTS) {
            const char *last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
            stream = api_events_response(&req, last);
        } else if (body_ok) {
            api_handle(&req);
        }
    }
    enum MHD_Result rc;
    if (stream) {
        /* A stream is never idle in MHD's sense while it waits for events: api.connection_timeout would cut it
         * (the first write after the wait finds the timeout passed). Its keepalive comments find a client
         * that went away instead. */
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int)0);
        rc = MHD_queue_response(conn, 200, stream);
        MHD_destroy_response(stream);
        count(p, 200);
        omni_debug("%s %s 200 (stream) %s", method, url, req.caller.subject);
    } else {
        rc = send_json(conn, &req, p->console);
        count(p, req.status);
        omni_debug("%s %s %u %s", method, url, req.status, req.caller.subject[0] ? req.caller.subject : "-");
    }
    json_decref(req.in);
    json_decref(req.query);
    json_decref(req.body);
    free(req.raw);
    return rc;
}

/* What says how long the body is (cls: a struct lengths): the Content-Length headers, whether they differ, and
 * whether Transfer-Encoding is there too, and whether it is something else than chunked alone. */
struct lengths {
    unsigned n;
    const char *first;
    bool differ;
    bool encoded;
    bool not_chunked;
};

/* "chunked", in any case, between blanks */
static bool chunked_alone(const char *v)
{
    if (!v)
        return false;
    v += strspn(v, " \t");
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n == 7 && !strncasecmp(v, "chunked", 7);
}

static enum MHD_Result count_length(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct lengths *l = cls;
    if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        /* a second one, or a coding this server cannot undo ("gzip", "chunked, gzip"): MHD would read the body to
         * the connection's end, a proxy in front by another rule (RFC 9112 6.1, 6.3) */
        l->not_chunked |= l->encoded || !chunked_alone(value);
        l->encoded = true;
    }
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
        return MHD_YES;
    if (l->n++ == 0)
        l->first = value;
    else if (strcmp(l->first, value ? value : "") != 0)
        l->differ = true;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void)version;
    const api_server_t *srv = cls;
    const api_config_t *cfg = srv->cfg;
    pending_t *p = *state;
    if (!p) { /* the headers are in; the body, if any, follows in further calls */
        p = *state = omni_calloc(1, sizeof *p);
        clock_gettime(CLOCK_MONOTONIC, &p->started);
        p->routed = api_route(method, url, &p->path, &p->route_err);
        p->console = !strcmp(url, "/console") || !strncmp(url, "/console/", 9);
        /* libmicrohttpd reads the first of several Content-Lengths, and a chunked body despite a Content-Length,
         * keeping the connection; a proxy in front may read the other length, and take the rest of this body for
         * a request of its own (RFC 9112 6.1, 6.3: invalid, or to be answered and closed) */
        struct lengths lengths = { 0, NULL, false, false, false };
        MHD_get_connection_values(conn, MHD_HEADER_KIND, count_length, &lengths);
        if (lengths.differ || (lengths.n && lengths.encoded)) {
            api_error_t e;
            api_error_set(&e, 400, "invalid_request", "Content-Length", "%s",
                          lengths.differ ? "Content-Length is given more than once, with different values"
                                         : "Content-Length is given with Transfer-Encoding: send one of them");
            return send_error(conn, cfg, p, &e, NULL); /* MHD closes the connection instead of reading the body */
        }
        if (lengths.not_chunked) {
            api_error_t e;
            api_error_set(&e, 400, "invalid_request", "Transfer-Encoding",
                          "Transfer-Encoding is not \"chunked\" alone: send the body chunked, or with Content-Length");
            return send_error(conn, cfg, p, &e, NULL);
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > cfg->limits.body_bytes) {
            api_error_t e;
            api_error_set(&e, 413, "body_too_large", "body", "the body is %s bytes; at most %zu are read", cl,
                          cfg->limits.body_bytes);
            return send_error(conn, cfg, p, &e, NULL); /* MHD closes the connection instead of reading it */
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (p->too_big || p->len + n > cfg->limits.body_bytes) {
            /* a chunked body has no length to refuse up front, and MHD answers only once it is read: the rest
             * is read and dropped, and past DISCARD_MAX more the connection is closed unanswered */
            p->too_big = true;
            p->discarded += n;
            return p->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        p->body = omni_realloc(p->body, p->len + n + 1);
        memcpy(p->body + p->len, upload, n);
        p->len += n;
        return MHD_YES;
    }
    if (p->too_big) {
        api_error_t e;
        api_error_set(&e, 413, "body_too_large", "body", "the body is over %zu bytes", cfg->limits.body_bytes);
        return send_error(conn, cfg, p, &e, NULL);
    }
    if (p->routed != 0)
        return send_error(conn, cfg, p, &p->route_err, p->route_err.status == 405 ? p->path.allow : NULL);
    if (p->path.route == ROUTE_CONSOLE || p->path.route == ROUTE_CONSOLE_ROOT)
        return serve_console(conn, cfg, p, url);
    return serve(conn, cfg, p, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)conn, (void)why;
    pending_t *p = *state;
    if (p) {
        free(p->body);
        free(p);
        *state = NULL;
    }
}

/* Decodes %XX in place as MHD's own unescaping does, except %00: a NUL would end the path early, so
 * "/console/index.html%00.txt" would name index.html; kept as written, it names nothing. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls, (void)conn;
    char *out = s;
    for (const char *in = s; *in; in++) {
        unsigned v = 0;
        if (in[0] == '%' && isxdigit((unsigned char)in[1]) && isxdigit((unsigned char)in[2]))
            sscanf(in + 1, "%2x", &v);
        if (v > 0) {
            *out++ = (char)v;
            in += 2;
        } else {
            *out++ = *in;
        }
    }
    *out = '\0';
    return (size_t)(out - s);
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[400];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    omni_warn("http: %s", line);
}

api_server_t *api_server_start(const api_config_t *cfg)
{
    api_server_t *s = omni_calloc(1, sizeof *s);
    s->cfg = cfg;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (cfg->api.addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                              MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
                              MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&cfg->api.addr,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->api.max_connections,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->api.connection_timeout_s,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                              MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                              MHD_OPTION_END);
    if (!s->mhd) {
        omni_error("cannot listen on %s (in use, or not an address of this machine?)", cfg->api.listen);
        free(s);
        return NULL;
    }
    return s;
}

int api_server_port(const api_server_t *s)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : -1;
}

int api_server_connections(const api_server_t *s)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return i ? (int)i->num_connections : 0;
}

void api_server_stop(api_server_t **s)
{
    if (!s || !*s)
        return;
    api_events_stop();
    MHD_stop_daemon((*s)->mhd);
    free(*s);
    *s = NULL;
}
