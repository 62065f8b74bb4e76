/* The HTTP intake for webhook connectors (http_intake.h): libmicrohttpd in external epoll mode inside the
 * connector's loop, with group commit. A request whose handler spooled something is suspended; once
 * MHD_run() has served every connection that was ready, one commit (one fsync) covers all of them and they
 * are resumed and answered. That is the whole trick that lets many webhooks share one fsync without a
 * thread: requests arriving during an fsync wait in their sockets for the next turn. */
#include "omni/http_intake.h"
#include "omni/log.h"
#include "omni/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define HOLD_ROUNDS 8            /* commit-and-answer rounds per poll before yielding to the rest of the loop */
#define DRAIN_MAX (16u << 20)    /* bytes of an over-limit body read and dropped before closing instead */

struct omni_http_req {
    omni_http_intake_t *in;
    struct MHD_Connection *con;
    char *raw_uri;           /* as received: path and query */
    const char *query;       /* inside raw_uri, after '?' (or "") */
    const char *method, *path; /* borrowed from libmicrohttpd for the request's life */
    char *body;
    size_t len, cap, drained;
    bool started, too_large, held, answered, submitted, unavailable;
    int status;
    char *ctype, *answer;
    const char *allow;       /* a 405's Allow header (a literal), else NULL */
    char *ids;               /* the ids this request submitted, ", "-separated: named if the commit fails */
    char peer[INET6_ADDRSTRLEN];
};

struct omni_http_intake {
    omni_connector_t *ctx;
    const char *name;
    omni_http_handler_t handler;
    void *user;
    struct MHD_Daemon *mhd;
    size_t max_body;
    unsigned max_conn;       /* max_connections */
    int retry_after_s;
    unsigned port;
    omni_http_req_t **held;  /* requests spooled and suspended until the next commit */
    size_t n_held, cap_held;
    omni_http_stats_t st;
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    omni_logv(OMNI_LOG_DEBUG, fmt, ap); /* per-connection trouble (a peer that went away): not ours to shout */
}

static void *req_begin(void *cls, const char *uri, struct MHD_Connection *con)
{
    omni_http_req_t *req = omni_calloc(1, sizeof *req);
    req->in = cls;
    req->con = con;
    req->raw_uri = omni_strdup(uri ? uri : "");
    char *q = strchr(req->raw_uri, '?');
    req->query = q ? q + 1 : "";
    return req;
}

static void req_end(void *cls, struct MHD_Connection *con, void **con_cls, enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)con, (void)why;
    omni_http_req_t *req = *con_cls;
    if (req == NULL)
        return;
    free(req->raw_uri);
    free(req->body);
    free(req->ctype);
    free(req->answer);
    free(req->ids);
    free(req);
    *con_cls = NULL;
}

static void count(omni_http_intake_t *in, int status, bool spooled)
{
    if (status == 503)
        in->st.unavailable++;
    else if (status == 401 || status == 403)
        in->st.rejected++;
    else if (status == 400)
        in->st.malformed++;
    else if (status == 413)
        in->st.too_large++;
    else if (spooled)
        in->st.spooled++;
    else
        in->st.other++;
}

static enum MHD_Result answer(omni_http_req_t *req)
{
    omni_http_intake_t *in = req->in;
    int status = req->status;
    const char *body = req->answer ? req->answer : "";
    if (req->unavailable) {
        status = 503;
        body = "the spool cannot take this now; retry later\n";
    } else if (status == 0) {
        omni_error("%s: %s %s: the handler set no answer (a bug): 500", in->name, req->method, req->path);
        status = 500;
    }
    count(in, status, req->submitted);
    req->answered = true;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            req->ctype && !req->unavailable ? req->ctype : "text/plain; charset=utf-8");
    if (status == 405 && req->allow != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, req->allow);
    if (status == 503) {
        char s[16];
        snprintf(s, sizeof s, "%d", in->retry_after_s);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, s);
    }
    enum MHD_Result rc = MHD_queue_response(req->con, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static void too_large(omni_http_req_t *req, const char *how)
{
    omni_warn("%s: %s %s from %s: body %s over max_body_bytes %zu: 413", req->in->name, req->method, req->path,
              req->peer, how, req->in->max_body);
    req->too_large = true;
    free(req->body);
    req->body = NULL;
    omni_http_respond(req, 413, NULL, "request body too large\n");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_size, void **con_cls)
{
    omni_http_intake_t *in = cls;
    (void)version;
    omni_http_req_t *req = *con_cls;
    if (req == NULL) /* no URI callback happened (cannot, but a NULL here must not crash) */
        req = *con_cls = req_begin(in, url, con);
    if (!req->started) {
        req->started = true;
        req->con = con;
        req->method = method;
        req->path = url;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        if (sa && sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, req->peer, sizeof req->peer);
        else if (sa && sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, req->peer, sizeof req->peer);
        const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > in->max_body) {
            too_large(req, "announced");
            in->st.requests++;
            return answer(req); /* early: libmicrohttpd reads no body and closes after the answer */
        }
        return MHD_YES;
    }
    if (req->answered)
        return MHD_YES;
    if (*data_size > 0) {
        if (!req->too_large && req->len + *data_size > in->max_body) {
            too_large(req, "read");
            in->st.requests++;
        }
        if (req->too_large) {
            /* Read and drop the rest, then answer 413: closing with unread bytes would make the kernel
             * reset the connection, and the client would see no answer at all. A body that goes on past
             * DRAIN_MAX gets its answer queued early, which makes libmicrohttpd close the connection. */
            req->drained += *data_size;
            *data_size = 0;
            return req->drained > DRAIN_MAX ? answer(req) : MHD_YES;
        }
        if (req->len + *data_size + 1 > req->cap) { /* doubling: libmicrohttpd hands the body over in pieces */
            req->cap = req->cap ? req->cap : 4096;
            while (req->cap < req->len + *data_size + 1)
                req->cap *= 2;
            req->body = omni_realloc(req->body, req->cap);
        }
        memcpy(req->body + req->len, data, *data_size);
        req->len += *data_size;
        req->body[req->len] = '\0';
        *data_size = 0;
        return MHD_YES;
    }
    if (req->held || req->too_large) /* resumed after the commit, or a body drained after its limit */
        return answer(req);
    in->st.requests++;
    /* A request is answered once for all it carries: taken whole when the spool has room as it comes in */
    bool whole = omni_connector_begin_whole(in->ctx) == 0;
    in->handler(in->user, req);
    if (whole)
        omni_connector_end_whole(in->ctx);
    if (req->submitted && !req->unavailable) {
        if (in->n_held == in->cap_held) {
            in->cap_held = in->cap_held ? 2 * in->cap_held : 16;
            in->held = omni_realloc(in->held, in->cap_held * sizeof *in->held);
        }
        in->held[in->n_held++] = req;
        req->held = true;
        MHD_suspend_connection(con);
        return MHD_YES;
    }
    return answer(req);
}

/* "HOST:PORT" or "[V6]:PORT" into a socket address. Returns 0 or -1 with a sentence in err. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen, char *err, size_t errsz)
{
    char host[256];
    const char *port;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof host) {
            snprintf(err, errsz, "\"%s\" is not [IPV6]:PORT", spec);
            return -1;
        }
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon == NULL || (size_t)(colon - spec) >= sizeof host) {
            snprintf(err, errsz, "\"%s\" is not HOST:PORT", spec);
            return -1;
        }
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (*port == '\0' || *end != '\0' || p < 0 || p > 65535) {
        snprintf(err, errsz, "\"%s\": the port must be 0..65535", spec);
        return -1;
    }
    struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errsz, "\"%s\": %s", spec, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sslen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

int omni_http_intake_check(omni_connector_t *ctx)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    char err[512];
    if (parse_listen(omni_connector_cfg_str(ctx, "listen"), &ss, &sslen, err, sizeof err) == 0)
        return 0;
    omni_connector_check_error(ctx, "listen", "%s", err);
    return -1;
}

omni_http_intake_t *omni_http_intake_new(omni_connector_t *ctx, const char *name, omni_http_handler_t handler,
                                         void *user)
{
    const char *listen = omni_connector_cfg_str(ctx, "listen");
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    char err[512];
    if (parse_listen(listen, &ss, &sslen, err, sizeof err) != 0) {
        omni_error("%s.listen: %s", omni_connector_name(ctx), err);
        return NULL;
    }
    omni_http_intake_t *in = omni_calloc(1, sizeof *in);
    in->ctx = ctx;
    in->name = name;
    in->handler = handler;
    in->user = user;
    in->max_body = (size_t)omni_connector_cfg_int(ctx, "max_body_bytes");
    in->max_conn = (unsigned)omni_connector_cfg_int(ctx, "max_connections");
    in->retry_after_s = (int)omni_connector_cfg_int(ctx, "retry_after_s");
    unsigned timeout_s = (unsigned)((omni_connector_cfg_int(ctx, "timeout_ms") + 999) / 1000);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    in->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, in,
                               /* first: options before it may log to stderr through MHD's own logger */
                               MHD_OPTION_EXTERNAL_LOGGER, mhd_log, in,
                               MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                               MHD_OPTION_CONNECTION_LIMIT, in->max_conn,
                               MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
                               MHD_OPTION_URI_LOG_CALLBACK, req_begin, in,
                               MHD_OPTION_NOTIFY_COMPLETED, req_end, in,
                               MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
                               MHD_OPTION_END);
    const union MHD_DaemonInfo *ep = in->mhd ? MHD_get_daemon_info(in->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    const union MHD_DaemonInfo *pi = in->mhd ? MHD_get_daemon_info(in->mhd, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (ep == NULL || pi == NULL) {
        omni_error("%s: cannot listen on %s (%s.listen): %s", name, listen, omni_connector_name(ctx),
                   errno ? strerror(errno) : "libmicrohttpd refused");
        if (in->mhd)
            MHD_stop_daemon(in->mhd);
        free(in);
        return NULL;
    }
    in->port = pi->port;
    char shown[300];
    snprintf(shown, sizeof shown, "%.*s:%u", (int)(strrchr(listen, ':') - listen), listen, in->port);
    omni_info("%s: listening on http://%s", name, shown);
    omni_connector_watch_fd(ctx, ep->epoll_fd);
    return in;
}

/* Makes what the held requests spooled durable with one commit, then lets them be answered. */
static void release_held(omni_http_intake_t *in)
{
    bool ok = omni_connector_commit(in->ctx) == 0;
    if (!ok) {
        int e = errno;
        omni_error("%s: spool commit failed (%s): %zu request(s) answered 503", in->name, strerror(e),
                   in->n_held);
        /* The spool writes at commit, so this is where a full disk shows: each message by its id. */
        for (size_t i = 0; i < in->n_held; i++)
            if (in->held[i]->ids)
                omni_error("%s: message %s not spooled: %s: 503", in->name, in->held[i]->ids, strerror(e));
    }
    else
        in->st.commits++;
    for (size_t i = 0; i < in->n_held; i++) {
        in->held[i]->unavailable = in->held[i]->unavailable || !ok;
        MHD_resume_connection(in->held[i]->con);
    }
    in->n_held = 0;
}

static unsigned connections(const omni_http_intake_t *in)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(in->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return i != NULL ? i->num_connections : 0;
}

/* One MHD_run. At max_connections libmicrohttpd takes its listening socket out of its epoll set, and puts it
 * back only at the start of a later run: when a connection closed during this one and freed a place, run
 * again at once, or a connection waiting in the accept queue would wait for the next timed poll. */
static int run(omni_http_intake_t *in)
{
    bool full = connections(in) >= in->max_conn;
    if (MHD_run(in->mhd) != MHD_YES)
        return -1;
    if (full && connections(in) < in->max_conn && MHD_run(in->mhd) != MHD_YES)
        return -1;
    return 0;
}

int omni_http_intake_poll(omni_http_intake_t *in)
{
    for (int round = 0; round < HOLD_ROUNDS; round++) {
        if (run(in) != 0) {
            omni_error("%s: the HTTP server failed", in->name);
            return -1;
        }
        if (in->n_held == 0)
            break;
        release_held(in); /* the next MHD_run answers them (and reads what arrived meanwhile) */
        if (round == HOLD_ROUNDS - 1)
            omni_connector_poll_in(in->ctx, 0);
    }
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(in->mhd, &ms) == MHD_YES)
        omni_connector_poll_in(in->ctx, ms > 3600000 ? 3600000 : (int)ms);
    omni_connector_status(in->ctx, "%s on port %u: %llu requests, %llu spooled in %llu fsyncs, %llu bad signatures, "
                          "%llu malformed, %llu too large, %llu answered 503",
                          in->name, in->port, in->st.requests, in->st.spooled, in->st.commits, in->st.rejected,
                          in->st.malformed, in->st.too_large, in->st.unavailable);
    return 0;
}

void omni_http_intake_destroy(omni_http_intake_t **inp)
{
    if (inp == NULL || *inp == NULL)
        return;
    omni_http_intake_t *in = *inp;
    const omni_http_stats_t *s = &in->st;
    omni_info("%s: %llu requests: %llu answered once spooled, in %llu fsyncs; %llu bad signatures, %llu malformed, "
              "%llu too large, %llu answered 503, %llu other", in->name, s->requests, s->spooled, s->commits,
              s->rejected, s->malformed, s->too_large, s->unavailable, s->other);
    omni_connector_watch_fd(in->ctx, -1);
    for (size_t i = 0; i < in->n_held; i++) /* none after a poll; resumed so the daemon may stop */
        MHD_resume_connection(in->held[i]->con);
    MHD_stop_daemon(in->mhd);
    free(in->held);
    free(in);
    *inp = NULL;
}

unsigned omni_http_intake_port(const omni_http_intake_t *in) { return in->port; }
int omni_http_intake_fd(const omni_http_intake_t *in)
{
    const union MHD_DaemonInfo *ep = MHD_get_daemon_info(in->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    return ep != NULL ? ep->epoll_fd : -1;
}
void omni_http_intake_stats(const omni_http_intake_t *in, omni_http_stats_t *out) { *out = in->st; }

const char *omni_http_method(const omni_http_req_t *req) { return req->method; }
const char *omni_http_path(const omni_http_req_t *req) { return req->path; }
const char *omni_http_query(const omni_http_req_t *req) { return req->query; }
const char *omni_http_peer(const omni_http_req_t *req) { return req->peer; }

const char *omni_http_header(const omni_http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->con, MHD_HEADER_KIND, name);
}

const char *omni_http_arg(const omni_http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->con, MHD_GET_ARGUMENT_KIND, name);
}

const char *omni_http_body(const omni_http_req_t *req, size_t *len)
{
    *len = req->len;
    return req->body ? req->body : "";
}

void omni_http_invalid(omni_http_req_t *req, unsigned n)
{
    omni_connector_invalid(req->in->ctx, n);
}

int omni_http_submit(omni_http_req_t *req, const omni_msg_t *msg)
{
    int rc = omni_connector_submit(req->in->ctx, msg);
    if (rc == 0) {
        req->submitted = true;
        char *ids = req->ids ? omni_asprintf("%s, %s", req->ids, msg->id) : omni_strdup(msg->id);
        free(req->ids);
        req->ids = ids;
    } else if (rc < 0) {
        if (errno != EAGAIN)
            omni_error("%s: message %s not spooled: %s: 503", req->in->name, msg->id, strerror(errno));
        req->unavailable = true;
    }
    return rc;
}

void omni_http_respond(omni_http_req_t *req, int status, const char *content_type, const char *body)
{
    req->status = status;
    free(req->ctype);
    free(req->answer);
    req->ctype = content_type ? omni_strdup(content_type) : NULL;
    req->answer = body ? omni_strdup(body) : NULL;
    req->allow = NULL;
}

void omni_http_respond_405(omni_http_req_t *req, const char *methods, const char *body)
{
    omni_http_respond(req, 405, NULL, body);
    req->allow = methods;
}
