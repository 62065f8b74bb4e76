/* floor: the least a durable OMNI/1 ingest can do, to measure the router against. It binds a ROUTER
 * socket like the router, and for each `OMNI/1 MSG <json>` reads the id (jansson), pipelines
 * `SET floor:dedup:<id> 1 NX` and `RPUSH floor:log <json>` over hiredis's asynchronous API plugged into
 * its one zmq_poll loop (the router's shape), and answers `OMNI/1 ACK <id>` when the RPUSH reply
 * arrives: a message's two commands go on one connection, where replies come in order, so by then the
 * SET is done too, and with appendfsync always Redis answers only after both are fsynced. Messages take
 * the N connections in turn (--connections, default 4 like the router's redis.connections), so both
 * sides put the same number of connections' commands behind each of Redis's fsyncs. No validation,
 * identity, conversation or event: that difference is what the ratio prices.
 *
 * Usage: floor --endpoint EP --redis unix:/path.sock|tcp://host:port [--connections N]
 * Logs "floor: ready" once bound and every connection has answered a PING; SIGTERM or SIGINT stop it. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/async.h>
#include <jansson.h>
#include <zmq.h>

#include "omni/frames.h"
#include "omni/protocol.h"
#include "omni/util.h"
#include "redis_address.h" /* the router's own address syntax */

#define RECV_BATCH 512 /* the router's per-wake-up batch, so both share Redis and replies the same way */
#define PEER_MAX 256
#define CONN_MAX 8 /* the router's redis.connections maximum */

/* One Redis connection; the hiredis adapter's hooks record on it which events its fd wants. */
typedef struct conn {
    redisAsyncContext *ac;
    int want_read, want_write;
} conn_t;

typedef struct floor_state {
    void *sock;
    conn_t conn[CONN_MAX];
    int n_conn, next_conn, pinged;
    unsigned long long received, acked, refused;
} floor_t;

typedef struct pending {
    floor_t *fl;
    size_t peer_len, id_len;
    unsigned char peer[PEER_MAX];
    char id[]; /* not NUL-terminated; id_len bytes */
} pending_t;

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig, stopping = 1; }

/* --- the hiredis adapter: hooks only record the interest; the loop polls the fd for it --- */
static void add_read(void *p) { ((conn_t *)p)->want_read = 1; }
static void del_read(void *p) { ((conn_t *)p)->want_read = 0; }
static void add_write(void *p) { ((conn_t *)p)->want_write = 1; }
static void del_write(void *p) { ((conn_t *)p)->want_write = 0; }
static void cleanup(void *p) { ((conn_t *)p)->want_read = ((conn_t *)p)->want_write = 0; }

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    if (stopping)
        return;
    fprintf(stderr, "floor: redis disconnected: %s\n", status == REDIS_OK ? "by request" : ac->errstr);
    exit(1); /* a bench must not report a figure over a broken store */
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) {
        fprintf(stderr, "floor: redis: %s\n", ac->errstr);
        exit(1);
    }
}

static void on_ping(redisAsyncContext *ac, void *r, void *data)
{
    (void)ac;
    floor_t *fl = data;
    if (!r && stopping)
        return;
    if (!r || ((redisReply *)r)->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "floor: redis did not answer PING\n");
        exit(1);
    }
    if (++fl->pinged == fl->n_conn)
        fprintf(stderr, "floor: ready\n");
}

static void send_frames(floor_t *fl, const void *peer, size_t peer_len, int n, const char *const *f,
                        const size_t *len)
{
    /* DONTWAIT: a gone peer loses its answer and resends, exactly as with the router. */
    if (zmq_send(fl->sock, peer, peer_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    zmq_send(fl->sock, OMNI_PROTO_VERSION, strlen(OMNI_PROTO_VERSION), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    for (int i = 0; i < n; i++)
        zmq_send(fl->sock, f[i], len[i], (i + 1 < n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
}

static void on_appended(redisAsyncContext *ac, void *r, void *data)
{
    (void)ac;
    pending_t *p = data;
    redisReply *reply = r;
    if (!reply && stopping) { /* redisAsyncFree at exit fails what is still in flight */
        free(p);
        return;
    }
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "floor: RPUSH failed: %s\n", reply ? reply->str : "no reply");
        exit(1);
    }
    const char *f[] = { OMNI_CMD_ACK, p->id };
    size_t len[] = { strlen(OMNI_CMD_ACK), p->id_len };
    send_frames(p->fl, p->peer, p->peer_len, 2, f, len);
    p->fl->acked++;
    free(p);
}

static void refuse(floor_t *fl, const void *peer, size_t peer_len, const char *reason)
{
    const char *f[] = { OMNI_CMD_NACK, OMNI_NO_ID, reason };
    size_t len[] = { strlen(f[0]), strlen(f[1]), strlen(f[2]) };
    fl->refused++;
    send_frames(fl, peer, peer_len, 3, f, len);
}

static void handle(floor_t *fl, const omni_frames_t *fr)
{
    omni_frame_t f[OMNI_FRAMES_KEEP];
    omni_decoded_t d;
    omni_frames_view(fr, f);
    fl->received++;
    if (omni_frames_decode(OMNI_FROM_CONNECTOR, f, fr->n, &d) != NULL || d.kind != OMNI_DEC_MSG ||
        d.peer_len > PEER_MAX) {
        if (d.peer != NULL && d.peer_len <= PEER_MAX)
            refuse(fl, d.peer, d.peer_len, "floor: only OMNI/1 MSG <json>");
        return;
    }
    const char *json = d.arg[0];
    size_t json_len = d.arg_len[0];
    json_error_t e;
    json_t *doc = json_loadb(json, json_len, 0, &e);
    const char *id = json_string_value(json_object_get(doc, "id"));
    if (!id) {
        json_decref(doc);
        refuse(fl, d.peer, d.peer_len, "floor: no id");
        return;
    }
    size_t id_len = strlen(id);
    pending_t *p = omni_malloc(sizeof *p + id_len);
    p->fl = fl;
    p->peer_len = d.peer_len;
    memcpy(p->peer, d.peer, d.peer_len);
    p->id_len = id_len;
    memcpy(p->id, id, id_len);
    char *key = omni_asprintf("floor:dedup:%s", id);
    json_decref(doc);
    const char *set[] = { "SET", key, "1", "NX" };
    size_t set_len[] = { 3, strlen(key), 1, 2 };
    const char *push[] = { "RPUSH", "floor:log", json };
    size_t push_len[] = { 5, 9, json_len };
    /* The SET's reply is read and dropped by hiredis; the RPUSH's callback is the ACK. Both on one
     * connection, the next in turn. */
    redisAsyncContext *ac = fl->conn[fl->next_conn].ac;
    fl->next_conn = (fl->next_conn + 1) % fl->n_conn;
    if (redisAsyncCommandArgv(ac, NULL, NULL, 4, set, set_len) != REDIS_OK ||
        redisAsyncCommandArgv(ac, on_appended, p, 3, push, push_len) != REDIS_OK) {
        fprintf(stderr, "floor: redis: %s\n", ac->errstr);
        exit(1);
    }
    free(key);
}

static void on_readable(floor_t *fl)
{
    omni_frames_t fr;
    for (int batch = 0; batch < RECV_BATCH && omni_frames_recv(fl->sock, &fr) > 0; batch++) {
        handle(fl, &fr);
        omni_frames_close(&fr);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "endpoint", required_argument, 0, 'e' }, { "redis", required_argument, 0, 'r' },
        { "connections", required_argument, 0, 'n' }, { 0, 0, 0, 0 },
    };
    const char *endpoint = NULL, *redis = NULL;
    int opt, n_conn = 4;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'e')
            endpoint = optarg;
        else if (opt == 'r')
            redis = optarg;
        else if (opt == 'n')
            n_conn = atoi(optarg);
        else
            break;
    }
    redis_address_t addr;
    char why[400] = "";
    if (!endpoint || !redis || optind != argc || n_conn < 1 || n_conn > CONN_MAX || redis_address_parse(redis, &addr, why, sizeof why) != 0 ||
        redis_address_resolve(&addr, why, sizeof why) != 0) {
        fprintf(stderr, "%s%susage: floor --endpoint EP --redis unix:/path.sock|tcp://host:port [--connections 1..8]\n", why,
                why[0] ? "\n" : "");
        return 2;
    }
    /* No SA_RESTART: the signal must interrupt zmq_poll so the loop sees `stopping`. */
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    floor_t fl = { .n_conn = n_conn };
    void *ctx = zmq_ctx_new();
    fl.sock = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    zmq_setsockopt(fl.sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(fl.sock, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(fl.sock, endpoint) != 0) {
        fprintf(stderr, "floor: bind %s: %s\n", endpoint, zmq_strerror(errno));
        return 1;
    }
    for (int i = 0; i < n_conn; i++) {
        conn_t *c = &fl.conn[i];
        c->ac = addr.path[0] ? redisAsyncConnectUnix(addr.path) : redisAsyncConnect(addr.host, addr.port);
        if (!c->ac || c->ac->err) {
            fprintf(stderr, "floor: redis %s: %s\n", redis, c->ac ? c->ac->errstr : "out of memory");
            return 1;
        }
        c->ac->ev.data = c;
        c->ac->ev.addRead = add_read;
        c->ac->ev.delRead = del_read;
        c->ac->ev.addWrite = add_write;
        c->ac->ev.delWrite = del_write;
        c->ac->ev.cleanup = cleanup;
        redisAsyncSetConnectCallback(c->ac, on_connect);
        redisAsyncSetDisconnectCallback(c->ac, on_disconnect);
        redisAsyncCommand(c->ac, on_ping, &fl, "PING");
    }

    while (!stopping) {
        zmq_pollitem_t items[1 + CONN_MAX] = { { .socket = fl.sock, .events = ZMQ_POLLIN } };
        for (int i = 0; i < n_conn; i++)
            items[1 + i] = (zmq_pollitem_t){ .fd = fl.conn[i].ac->c.fd,
                                             .events = (short)((fl.conn[i].want_read ? ZMQ_POLLIN : 0) |
                                                               (fl.conn[i].want_write ? ZMQ_POLLOUT : 0)) };
        if (zmq_poll(items, 1 + n_conn, 1000) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "floor: zmq_poll: %s\n", zmq_strerror(errno));
            return 1;
        }
        for (int i = 0; i < n_conn; i++) {
            if (items[1 + i].revents & ZMQ_POLLIN)
                redisAsyncHandleRead(fl.conn[i].ac);
            if (items[1 + i].revents & ZMQ_POLLOUT)
                redisAsyncHandleWrite(fl.conn[i].ac);
        }
        if (items[0].revents & ZMQ_POLLIN)
            on_readable(&fl);
    }
    fprintf(stderr, "floor: stopped: received=%llu acked=%llu refused=%llu\n", fl.received, fl.acked, fl.refused);
    for (int i = 0; i < n_conn; i++)
        redisAsyncFree(fl.conn[i].ac);
    zmq_close(fl.sock);
    zmq_ctx_term(ctx);
    return 0;
}
