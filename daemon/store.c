/* Redis through hiredis's asynchronous API, with the router's loop as its event library, over a small pool
 * of connections. Why a pool: Redis reads about 16 KiB from each client per turn of its event loop and,
 * with appendfsync always, fsyncs once per turn; more connections put more commands behind each fsync.
 * Every change is one atomic script, so the order in which connections deliver them does not matter.
 *
 * Each connection: DOWN -> (connect) -> LOADING (AUTH, SELECT, ROLE, CONFIG GET append*, SCRIPT LOAD
 * pipelined right behind the connect) -> UP once all of them answered. A READONLY or MASTERDOWN answer later
 * (the primary demoted under us) drops the connection like a failure. Any error or a lost connection fails that
 * connection's outstanding commands (their callbacks get NULL) and it goes back to DOWN; store_tick()
 * reconnects with doubling backoff. CONFIG GET tells whether Redis writes every change to its append-only
 * file and fsyncs it before answering: an ACK promises the message survives Redis dying, so unless the
 * store is relaxed it is up only when every connection saw appendonly yes and appendfsync always.
 *
 * Logging: one line per change of the store's state (unreachable, back, not durable), never one per
 * connection, script or retry, so a Redis restart under a pool of connections logs two lines. */
#include "store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hiredis/async.h>

#include "omni/log.h"
#include "omni/util.h"
#include "scripts.h"
#include "sentinel.h"

enum { DOWN, LOADING, UP };
/* The state last logged: nothing yet, up, unreachable, up but not seen to be durable. */
enum { SAID_NOTHING, SAID_UP, SAID_DOWN, SAID_NOT_DURABLE };
#define BACKOFF_MAX_MS 5000
/* Setup replies carry (connection index * TAG_STRIDE + what) as their data. */
#define TAG_STRIDE (LUA_NSCRIPTS + 3)
#define TAG_AUTH LUA_NSCRIPTS       /* AUTH and SELECT */
#define TAG_CONFIG (LUA_NSCRIPTS + 1) /* CONFIG GET append* */
#define TAG_ROLE (LUA_NSCRIPTS + 2)   /* ROLE: the server must be the primary */

typedef struct conn {
    store_t *store;
    int index;
    redisAsyncContext *ac;
    int fd;
    int state;
    int pending;       /* setup replies still to come */
    int durable;       /* this connection's CONFIG GET said appendonly yes, appendfsync always */
    int backoff_ms;
    int64_t next_attempt;
    int force_reconnect;
    size_t inflight;
    int waits;         /* a WAIT is outstanding (store_script_replicated): other work is not sent behind it */
    struct replicated *queued, **queued_tail; /* scripts sent since, waiting for the next WAIT */
    int64_t last_progress; /* last reply, or when the first outstanding command was sent */
} conn_t;

struct store {
    loop_t *loop;
    store_opts_t opts;
    char *owned_host, *owned_unix, *owned_password;
    char address[512];
    conn_t conns[STORE_CONNECTIONS_MAX];
    int n_conns;
    int next;              /* round robin */
    int up;                /* store_up(), as last reported to on_state */
    int connected;         /* every connection UP */
    int draining;          /* store_drain(): no new work */
    int said;              /* SAID_*: the state last logged */
    int failed;            /* a connection failed since the store was last up: it is down, not starting */
    char why[256];         /* the first failure's reason, for the one "unreachable" line */
    int setup_logged;      /* a setup error was logged in this outage */
    char sha[LUA_NSCRIPTS][41];
    char durability[160];  /* what the last CONFIG GET said */
    int closing;           /* store_destroy() is running: a disconnect is expected */
    sentinel_t *sentinel;  /* NULL: a fixed address */
    int have_primary;      /* under Sentinel: tcp_host/tcp_port name the primary the sentinels gave */
    int said_hostname;     /* "the sentinels name a host name" was logged for the current answer */
    int wait_logged;       /* "replicas did not confirm" was logged since they last did */
    int wait_short;        /* the last WAIT fell short: one replicated script (a probe) at a time, BUSY for others */
    int probe_out;         /* that probe is outstanding */
    int64_t quiet_until;   /* failures before this are expected (a server still starting) */
    omni_histogram_t rtt;  /* scripts' round trips, answered ones only (store_rtt) */
};

typedef struct cmd {
    conn_t *conn;
    store_reply_fn *fn;
    void *data;
    int script; /* its reply is checked against the script's declaration; -1: not a script */
    struct timespec sent; /* when it was handed to hiredis: the round trip is measured from here */
} cmd_t;

/* A script whose reply waits for WAIT (store_script_replicated): the script's command and the WAIT that
 * covers it point at it; the last of the two frees it. One WAIT at a time per connection: the scripts sent
 * while one is out queue on the connection (next) and the next WAIT covers them all. */
typedef struct replicated {
    conn_t *conn;      /* where the script went */
    struct replicated *next; /* the others covered by the same WAIT, or queued for the next one */
    int probe;         /* sent while the replicas fell short: its WAIT says whether they are back */
    store_reply_fn *fn;
    void *data;
    redisReply *reply; /* the script's reply, copied (owned); NULL until it came, or when it failed */
    int refs;
    int delivered;
} replicated_t;

/* Failures are not news while closing, or while a server is still starting (before the store was ever up). */
static int quiet(const store_t *s)
{
    return s->closing || (s->said == SAID_NOTHING && omni_mono_ms() < s->quiet_until);
}

/* Recomputes the store's state from its connections: logs a change once, tells the owner when store_up()
 * changes. */
static void update(store_t *s)
{
    int connected = 1, durable = 1;
    for (int i = 0; i < s->n_conns; i++) {
        connected &= s->conns[i].state == UP;
        durable &= s->conns[i].durable;
    }
    s->connected = connected;
    int said = connected ? (durable ? SAID_UP : SAID_NOT_DURABLE) : s->failed ? SAID_DOWN : s->said;
    if (said != s->said && !s->closing) {
        const char *conns = s->n_conns == 1 ? "connection" : "connections";
        if (said == SAID_DOWN)
            omni_log_event(OMNI_LOG_WARN, OMNI_MSGID_REDIS_DOWN, NULL,
                           "redis unreachable at %s (%s): %s until it is back", s->address, s->why,
                           s->opts.meanwhile ? s->opts.meanwhile : "retrying");
        else if (said == SAID_UP && s->said == SAID_NOTHING)
            omni_log_event(OMNI_LOG_INFO, OMNI_MSGID_REDIS_UP, NULL, "redis: connected to %s (%d %s), durability verified: %s",
                           s->address, s->n_conns, conns, s->durability);
        else if (said == SAID_UP && s->opts.wait_replicas > 0) /* an ACK needs WAIT too: not promised yet */
            omni_log_event(OMNI_LOG_INFO, OMNI_MSGID_REDIS_UP, NULL,
                           "redis is back at %s (%d %s), durability verified: %s; acknowledging messages again "
                           "once %d %s confirm%s them (redis.wait_replicas)", s->address, s->n_conns, conns,
                           s->durability, s->opts.wait_replicas, s->opts.wait_replicas == 1 ? "replica" : "replicas",
                           s->opts.wait_replicas == 1 ? "s" : "");
        else if (said == SAID_UP)
            omni_log_event(OMNI_LOG_INFO, OMNI_MSGID_REDIS_UP, NULL,
                           "redis is back at %s (%d %s), durability verified: %s; acknowledging messages again",
                           s->address, s->n_conns, conns, s->durability);
        else if (s->opts.relaxed)
            omni_warn("redis at %s does not fsync every write before answering (%s): an ACKed message can be "
                      "lost if Redis dies; acknowledging anyway (redis.durability: relaxed)", s->address,
                      s->durability);
        else
            omni_log_event(OMNI_LOG_ERROR, OMNI_MSGID_NOT_DURABLE, NULL,
                       "redis at %s does not fsync every write before answering (%s): answering BUSY, never "
                       "ACK, until it runs with appendonly yes and appendfsync always (or set redis.durability: "
                       "relaxed to accept the risk)", s->address, s->durability);
        s->said = said;
    }
    if (connected) {
        s->failed = 0;
        s->setup_logged = 0;
    }
    int up = connected && (durable || s->opts.relaxed) && !s->draining;
    if (up == s->up)
        return;
    s->up = up;
    if (s->opts.on_state)
        s->opts.on_state(s, up, s->opts.data);
}

static void backoff(conn_t *c)
{
    c->next_attempt = omni_mono_ms() + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* A connection failed (why: the reason). Failures while the server is still starting are expected. */
static void failed(store_t *s, const char *why)
{
    if (quiet(s) || s->failed)
        return;
    s->failed = 1;
    snprintf(s->why, sizeof s->why, "%s", why);
}

/* The connection is gone (hiredis frees the context itself after the callbacks that tell us so). */
static void lost(conn_t *c, const char *why)
{
    store_t *s = c->store;
    if (c->ac)
        failed(s, why);
    c->ac = NULL;
    c->state = DOWN;
    c->durable = 0;
    backoff(c);
    if (s->sentinel && !s->closing)
        sentinel_ask(s->sentinel); /* the primary may have moved: a failover takes it down first */
    update(s);
}

/* --- hiredis event hooks: the context asks for read/write interest on its fd --- */
static void hook(void *p, int add, int ev)
{
    conn_t *c = p;
    int cur = loop_fd_events(c->store->loop, c->fd);
    loop_set_fd_events(c->store->loop, c->fd, add ? (cur | ev) : (cur & ~ev));
}
static void add_read(void *p) { hook(p, 1, LOOP_READ); }
static void del_read(void *p) { hook(p, 0, LOOP_READ); }
static void add_write(void *p) { hook(p, 1, LOOP_WRITE); }
static void del_write(void *p) { hook(p, 0, LOOP_WRITE); }
static void cleanup(void *p)
{
    conn_t *c = p;
    loop_del_fd(c->store->loop, c->fd);
    c->fd = -1;
}

static void on_io(loop_t *loop, int fd, int events, void *data)
{
    (void)loop, (void)fd;
    conn_t *c = data;
    if ((events & LOOP_READ) && c->ac)
        redisAsyncHandleRead(c->ac);
    if ((events & LOOP_WRITE) && c->ac) /* the read may have closed the connection */
        redisAsyncHandleWrite(c->ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK)
        lost(ac->data, ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    lost(ac->data, status == REDIS_OK ? "disconnected" : ac->errstr);
}

/* --- commands --- */
/* An error a replica gives to a write (READONLY), or while cut off from its primary (MASTERDOWN): the server
 * this connection reaches is not the primary any more (a FAILOVER, a REPLICAOF), connections kept open. */
static int demoted(const char *err)
{
    if (strncmp(err, "ERR ", 4) == 0) /* raised again by a script that caught it (pcall): Redis adds "ERR " */
        err += 4;
    return strncmp(err, "READONLY", 8) == 0 || strncmp(err, "MASTERDOWN", 10) == 0 ||
           strstr(err, "-READONLY ") != NULL; /* wrapped in a script error by older servers */
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    cmd_t *cmd = privdata;
    conn_t *c = cmd->conn;
    redisReply *reply = r;
    c->inflight--;
    c->last_progress = omni_mono_ms();
    if (reply && cmd->script >= 0) { /* a fixed array of counters: nothing allocated per call */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        omni_histogram_observe(&c->store->rtt, (double)(now.tv_sec - cmd->sent.tv_sec) +
                                                   (double)(now.tv_nsec - cmd->sent.tv_nsec) / 1e9);
    }
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
        !c->force_reconnect) {
        omni_debug("redis: connection %d: scripts vanished (SCRIPT FLUSH?); reconnecting to load them", c->index);
        failed(c->store, "its scripts vanished (SCRIPT FLUSH?); loading them again");
        c->force_reconnect = 1;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR && demoted(reply->str)) {
        store_t *s = c->store;
        if (!c->force_reconnect) {
            char why[160];
            snprintf(why, sizeof why, "it answered %.40s: the server is no longer the primary", reply->str);
            omni_debug("redis: connection %d: %s; reconnecting", c->index, why);
            failed(s, why);
            c->force_reconnect = 1;
            c->state = LOADING; /* no new work on it; store_tick closes it and lost() takes the store down */
            if (s->sentinel)
                sentinel_ask(s->sentinel);
            update(s);
        }
        reply = NULL; /* not done: nothing was written (the caller answers BUSY, the work is retried) */
    }
    char err[200];
    if (reply && cmd->script >= 0 && lua_reply_check(&omni_lua_scripts[cmd->script], reply, err, sizeof err) != 0) {
        omni_error("redis: %s; treated as not done", err); /* a script and its caller disagree: a bug */
        reply = NULL;
    }
    cmd->fn(c->store, reply, cmd->data);
    free(cmd);
}

static int send_cmd(conn_t *c, int script, int argc, const char **argv, const size_t *len, store_reply_fn *fn,
                    void *data)
{
    cmd_t *cmd = omni_malloc(sizeof *cmd);
    *cmd = (cmd_t){ c, fn, data, script, { 0, 0 } };
    if (script >= 0)
        clock_gettime(CLOCK_MONOTONIC, &cmd->sent);
    if (redisAsyncCommandArgv(c->ac, on_reply, cmd, argc, argv, len) != REDIS_OK) {
        free(cmd);
        return -1;
    }
    if (c->inflight++ == 0)
        c->last_progress = omni_mono_ms();
    return 0;
}

static int send_argv(conn_t *c, int argc, const char **argv, const size_t *len, store_reply_fn *fn, void *data)
{
    return send_cmd(c, -1, argc, argv, len, fn, data);
}

/* Reads CONFIG GET append*: a flat list of name, value (RESP2). An error (CONFIG renamed or disabled)
 * leaves the durability unknown, which is not durable. */
static void read_durability(conn_t *c, const redisReply *reply)
{
    store_t *s = c->store;
    const char *aof = NULL, *fsync = NULL;
    if (reply->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply *k = reply->element[i], *v = reply->element[i + 1];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(k->str, "appendonly") == 0)
                aof = v->str;
            else if (strcmp(k->str, "appendfsync") == 0)
                fsync = v->str;
        }
    if (reply->type == REDIS_REPLY_ERROR)
        snprintf(s->durability, sizeof s->durability, "unknown: CONFIG GET answered %.100s", reply->str);
    else if (!aof || !fsync)
        snprintf(s->durability, sizeof s->durability, "unknown: CONFIG GET did not tell appendonly and appendfsync");
    else
        snprintf(s->durability, sizeof s->durability, "appendonly %s, appendfsync %s", aof, fsync);
    c->durable = aof && fsync && strcmp(aof, "yes") == 0 && strcmp(fsync, "always") == 0;
}

static void on_setup_reply(store_t *s, redisReply *reply, void *data)
{
    long tag = (long)(intptr_t)data;
    if (!reply)
        return; /* connection lost; lost() already ran or will */
    conn_t *c = &s->conns[tag / TAG_STRIDE];
    int what = (int)(tag % TAG_STRIDE);
    int bad_sha = what < TAG_AUTH && reply->type != REDIS_REPLY_ERROR &&
                  (reply->type != REDIS_REPLY_STRING || reply->len != 40);
    if (what == TAG_ROLE && !(reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                              reply->element[0]->type == REDIS_REPLY_STRING && !strcmp(reply->element[0]->str, "master")) &&
        (s->sentinel || reply->type != REDIS_REPLY_ERROR)) { /* a fixed address: ROLE renamed away is no news */
        if (s->sentinel) { /* the sentinels' answer is stale (a demoted primary back as a replica): ask them again */
            failed(s, "the server the sentinels named is not the primary (ROLE)");
            sentinel_ask(s->sentinel);
        } else {
            failed(s, "the server is a replica, not a primary (ROLE): it cannot store anything");
        }
        c->force_reconnect = 1;
        return;
    } else if (what == TAG_CONFIG) {
        read_durability(c, reply);
    } else if (reply->type == REDIS_REPLY_ERROR || bad_sha) {
        const char *why = bad_sha ? "SCRIPT LOAD answered something other than a SHA-1" : reply->str;
        /* A server loading its data answers LOADING for a moment: expected after a restart, not news. */
        if (strncmp(why, "LOADING", 7) != 0 && !s->setup_logged && !quiet(s)) {
            omni_warn("redis: %s: setup failed: %s", s->address, why);
            s->setup_logged = 1;
        }
        failed(s, why);
        c->force_reconnect = 1;
        return;
    } else if (what < TAG_AUTH) {
        memcpy(s->sha[what], reply->str, 40);
        s->sha[what][40] = 0;
    }
    if (--c->pending == 0 && c->state == LOADING && !c->force_reconnect) {
        c->state = UP;
        c->backoff_ms = s->opts.reconnect_ms;
        update(s);
    }
}

static void connect_now(conn_t *c)
{
    store_t *s = c->store;
    redisAsyncContext *ac = s->opts.unix_path ? redisAsyncConnectUnix(s->opts.unix_path)
                                              : redisAsyncConnect(s->opts.tcp_host, s->opts.tcp_port);
    if (!ac || ac->err) {
        omni_debug("redis: %s: connection %d: %s", s->address, c->index, ac ? ac->errstr : "out of memory");
        failed(s, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        backoff(c);
        update(s);
        return;
    }
    c->ac = ac;
    c->fd = ac->c.fd;
    ac->data = c;
    ac->ev.data = c;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    loop_add_fd(s->loop, c->fd, 0, on_io, c);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->state = LOADING;
    c->pending = 0;
    c->durable = 0;
    c->waits = 0; /* the last connection's WAIT, if any, was answered NULL with its scripts */
    long tag = (long)c->index * TAG_STRIDE;
    if (s->opts.password) {
        const char *argv[] = { "AUTH", s->opts.password };
        c->pending += send_argv(c, 2, argv, NULL, on_setup_reply, (void *)(intptr_t)(tag + TAG_AUTH)) == 0;
    }
    if (s->opts.database) {
        char db[16];
        snprintf(db, sizeof db, "%d", s->opts.database);
        const char *argv[] = { "SELECT", db };
        c->pending += send_argv(c, 2, argv, NULL, on_setup_reply, (void *)(intptr_t)(tag + TAG_AUTH)) == 0;
    }
    { /* under Sentinel the server must be the one they name; anywhere, a replica cannot take writes */
        const char *role[] = { "ROLE" };
        c->pending += send_argv(c, 1, role, NULL, on_setup_reply, (void *)(intptr_t)(tag + TAG_ROLE)) == 0;
    }
    const char *config[] = { "CONFIG", "GET", "append*" };
    c->pending += send_argv(c, 3, config, NULL, on_setup_reply, (void *)(intptr_t)(tag + TAG_CONFIG)) == 0;
    for (size_t i = 0; i < LUA_NSCRIPTS; i++) {
        const char *argv[] = { "SCRIPT", "LOAD", omni_lua_scripts[i].body };
        c->pending += send_argv(c, 3, argv, NULL, on_setup_reply, (void *)(intptr_t)(tag + (long)i)) == 0;
    }
}

/* The sentinels named the primary: connections to another server reconnect to it. */
static void on_primary(void *data, const char *host, int port)
{
    store_t *s = data;
    if (s->have_primary && s->opts.tcp_port == port && !strcmp(s->opts.tcp_host, host))
        return;
    unsigned char bin[16];
    if (inet_pton(AF_INET, host, bin) != 1 && inet_pton(AF_INET6, host, bin) != 1) {
        /* a sentinel with announce-hostnames: resolving it here would block the loop (getaddrinfo) */
        if (!s->said_hostname)
            omni_warn("redis: the sentinels name %s:%d as the primary of %s: a host name, which the router does not "
                      "resolve while it runs (it would block); run the sentinels with announce-hostnames no and "
                      "resolve-hostnames no so they give IP addresses", host, port, sentinel_describe(s->sentinel));
        s->said_hostname = 1;
        return;
    }
    s->said_hostname = 0;
    free(s->owned_host);
    s->opts.tcp_host = s->owned_host = omni_strdup(host);
    s->opts.tcp_port = port;
    s->have_primary = 1;
    omni_info("redis: the sentinels name %s:%d as the primary of %s", host, port, sentinel_describe(s->sentinel));
    /* logs and omnictl status say which server is in use */
    snprintf(s->address, sizeof s->address, "%s:%d (%s)", host, port, sentinel_describe(s->sentinel));
    for (int i = 0; i < s->n_conns; i++) {
        s->conns[i].next_attempt = 0; /* connect now, whatever the backoff */
        if (s->conns[i].ac)
            s->conns[i].force_reconnect = 1;
    }
}

store_t *store_new(loop_t *loop, const store_opts_t *opts)
{
    store_t *s = omni_calloc(1, sizeof *s);
    s->loop = loop;
    s->opts = *opts;
    if (opts->tcp_host)
        s->opts.tcp_host = s->owned_host = omni_strdup(opts->tcp_host);
    if (opts->unix_path)
        s->opts.unix_path = s->owned_unix = omni_strdup(opts->unix_path);
    if (opts->password)
        s->opts.password = s->owned_password = omni_strdup(opts->password);
    if (s->opts.reconnect_ms <= 0)
        s->opts.reconnect_ms = 200;
    if (s->opts.timeout_ms <= 0)
        s->opts.timeout_ms = 5000;
    s->n_conns = opts->connections < 1 ? 1 : opts->connections > STORE_CONNECTIONS_MAX ? STORE_CONNECTIONS_MAX
                                                                                       : opts->connections;
    for (int i = 0; i < s->n_conns; i++)
        s->conns[i] = (conn_t){ .store = s, .index = i, .fd = -1, .backoff_ms = s->opts.reconnect_ms,
                                .next_attempt = omni_mono_ms() };
    if (opts->n_sentinels > 0) {
        s->sentinel = sentinel_new(loop, opts->sentinels, opts->n_sentinels, opts->master_name, opts->password,
                                   s->opts.timeout_ms, on_primary, s);
        s->opts.tcp_host = s->opts.unix_path = NULL;
        s->opts.sentinels = NULL, s->opts.master_name = NULL; /* borrowed for the call */
        snprintf(s->address, sizeof s->address, "%s", sentinel_describe(s->sentinel));
    } else if (s->opts.unix_path) {
        snprintf(s->address, sizeof s->address, "unix:%s", s->opts.unix_path);
    } else {
        snprintf(s->address, sizeof s->address, "tcp://%s:%d", s->opts.tcp_host, s->opts.tcp_port);
    }
    s->quiet_until = omni_mono_ms() + (opts->grace_ms > 0 ? opts->grace_ms : 0);
    snprintf(s->durability, sizeof s->durability, "unknown: not connected yet");
    return s;
}

void store_close(store_t *s)
{
    s->closing = 1;
    for (int i = 0; i < s->n_conns; i++)
        if (s->conns[i].ac)
            redisAsyncFree(s->conns[i].ac); /* fails outstanding commands, then on_disconnect -> lost() */
}

void store_destroy(store_t **store)
{
    if (!store || !*store)
        return;
    store_t *s = *store;
    s->opts.on_state = NULL; /* the owner is going away; do not call back into it */
    store_close(s);
    sentinel_destroy(&s->sentinel);
    free(s->owned_host);
    free(s->owned_unix);
    free(s->owned_password);
    free(s);
    *store = NULL;
}

int store_up(const store_t *store) { return store->up; }
int store_connected(const store_t *store) { return store->connected; }
const char *store_durability(const store_t *store) { return store->durability; }
const omni_histogram_t *store_rtt(const store_t *store) { return &store->rtt; }

void store_drain(store_t *s)
{
    s->draining = 1;
    update(s);
}
const char *store_address(const store_t *store) { return store->address; }

static int send_script(store_t *s, conn_t *c, int script, int argc, const char **argv,
                       const size_t *argvlen, store_reply_fn *fn, void *data)
{
    const struct omni_lua_script *sc = &omni_lua_scripts[script];
    if (argc < sc->nargs || (!sc->variadic && argc != sc->nargs))
        omni_panic("store_script: %s called with %d arguments, declared %d%s", sc->name, argc, sc->nargs,
                   sc->variadic ? " or more" : "");
    if (!s->connected || !c->ac || c->state != UP)
        return -1;
    long idx = script;
    const char *av[argc + 3];
    size_t len[argc + 3];
    av[0] = "EVALSHA", len[0] = 7;
    av[1] = s->sha[idx], len[1] = 40;
    av[2] = "0", len[2] = 1;
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        len[i + 3] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    return send_cmd(c, script, argc + 3, av, len, fn, data);
}

/* With WAIT (wait_replicas > 0) and two connections or more, connection 0 never carries a WAIT: the work
 * that is not ingest (status, timers, routing) always has a connection that no WAIT holds up, however long
 * the replicas take. Ingest's connections are 1..n-1. */
static int wait_free_conn0(const store_t *s) { return s->opts.wait_replicas > 0 && s->n_conns >= 2; }

int store_script(store_t *s, int script, int argc, const char **argv, const size_t *argvlen,
                 store_reply_fn *fn, void *data)
{
    /* round robin over the connections with no WAIT outstanding (a WAIT blocks its connection in Redis for
     * up to wait_timeout_ms: whatever is sent behind it waits as long) */
    conn_t *c = NULL;
    for (int k = 0; k < s->n_conns && !c; k++) {
        conn_t *t = &s->conns[s->next];
        s->next = (s->next + 1) % s->n_conns;
        if (t->waits == 0)
            c = t;
    }
    if (!c) /* every connection waits: only with a single connection (wait_free_conn0 keeps 0 free) */
        c = &s->conns[0];
    return send_script(s, c, script, argc, argv, argvlen, fn, data);
}

int store_slot(const store_t *s, const char *affinity)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)affinity; *p; p++)
        h = (h ^ *p) * 16777619u;
    if (wait_free_conn0(s))
        return 1 + (int)(h % (uint32_t)(s->n_conns - 1));
    return (int)(h % (uint32_t)s->n_conns);
}

int store_script_for(store_t *s, const char *affinity, int script, int argc, const char **argv,
                     const size_t *argvlen, store_reply_fn *fn, void *data)
{
    /* in order, on one connection: with WAIT, the one no WAIT holds up */
    conn_t *c = wait_free_conn0(s) ? &s->conns[0] : &s->conns[store_slot(s, affinity)];
    return send_script(s, c, script, argc, argv, argvlen, fn, data);
}

void store_tick(store_t *s)
{
    if (s->closing)
        return;
    if (s->sentinel)
        sentinel_tick(s->sentinel);
    int64_t now = omni_mono_ms();
    for (int i = 0; i < s->n_conns; i++) {
        conn_t *c = &s->conns[i];
        if (c->ac && c->inflight > 0 && now - c->last_progress > s->opts.timeout_ms && !c->force_reconnect) {
            char why[128];
            snprintf(why, sizeof why, "no answer for %d ms to %zu commands", s->opts.timeout_ms, c->inflight);
            omni_debug("redis: connection %d: %s; dropping it", c->index, why);
            failed(s, why);
            c->force_reconnect = 1;
        }
        if (c->ac && c->force_reconnect) {
            c->force_reconnect = 0;
            redisAsyncContext *ac = c->ac;
            redisAsyncFree(ac); /* callbacks get NULL; on_disconnect runs lost() if it was connected */
            if (c->ac == ac)
                lost(c, "connection reset");
            continue;
        }
        if (!c->ac && now >= c->next_attempt && (!s->sentinel || s->have_primary))
            connect_now(c);
    }
}

/* A deep copy of a reply, freed with freeReplyObject (hiredis frees the original after the callback). */
static redisReply *reply_dup(const redisReply *r)
{
    redisReply *d = omni_calloc(1, sizeof *d);
    d->type = r->type;
    d->integer = r->integer;
    if (r->str) {
        d->str = omni_malloc(r->len + 1);
        memcpy(d->str, r->str, r->len + 1);
        d->len = r->len;
    }
    if (r->element) {
        d->element = omni_calloc(r->elements ? r->elements : 1, sizeof *d->element);
        d->elements = r->elements;
        for (size_t i = 0; i < r->elements; i++)
            d->element[i] = reply_dup(r->element[i]);
    }
    return d;
}

static void replicated_release(replicated_t *rp)
{
    if (--rp->refs > 0)
        return;
    if (rp->reply)
        freeReplyObject(rp->reply);
    free(rp);
}

static void on_replicated_script(store_t *s, redisReply *reply, void *data)
{
    (void)s;
    replicated_t *rp = data;
    if (reply && !rp->delivered)
        rp->reply = reply_dup(reply);
    replicated_release(rp);
}

static void send_wait(conn_t *c, struct replicated *list);

/* Answers rp (the script's reply when the WAIT confirmed enough replicas, else NULL) and lets it go. */
static void deliver(store_t *s, replicated_t *rp, long long got)
{
    redisReply *give = rp->reply;
    if (give && give->type != REDIS_REPLY_ERROR && got < s->opts.wait_replicas)
        give = NULL; /* stored on the primary but not known to survive its loss: not done (a resend is a duplicate) */
    if (rp->probe)
        s->probe_out = 0;
    rp->delivered = 1;
    rp->fn(s, give, rp->data);
    replicated_release(rp);
}

/* WAIT's answer for the scripts of list (sent before it on its connection). */
static void on_wait(store_t *s, redisReply *reply, void *data)
{
    replicated_t *list = data;
    conn_t *c = list->conn;
    c->waits = 0;
    long long got = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    int stored = 0; /* a script of the list was stored: the WAIT says something about the replicas */
    for (replicated_t *rp = list; rp; rp = rp->next)
        stored |= rp->reply && rp->reply->type != REDIS_REPLY_ERROR;
    if (stored && got < s->opts.wait_replicas) {
        if (!s->wait_logged)
            omni_warn("redis: %lld of %d replicas confirmed a write within %d ms: answering BUSY until they do, "
                      "trying one write at a time (redis.wait_replicas)", got < 0 ? 0 : got, s->opts.wait_replicas,
                      s->opts.wait_timeout_ms);
        s->wait_logged = 1;
        s->wait_short = 1; /* no WAIT on every connection, each holding it up: one probe at a time */
    } else if (stored && got >= s->opts.wait_replicas) {
        if (s->wait_logged)
            omni_info("redis: %lld of %d replicas confirm writes again: acknowledging messages", got,
                      s->opts.wait_replicas);
        s->wait_logged = 0;
        s->wait_short = 0;
    }
    while (list) {
        replicated_t *rp = list;
        list = rp->next;
        deliver(s, rp, got);
    }
    /* the scripts sent while this WAIT was out: one WAIT for them all, unless the replicas are short (then
     * they are BUSY now: no WAIT holds the connection up for them) or the connection is going */
    replicated_t *queued = c->queued;
    c->queued = NULL;
    c->queued_tail = &c->queued;
    if (!queued)
        return;
    if (reply && !s->wait_short) {
        send_wait(c, queued);
        return;
    }
    while (queued) {
        replicated_t *rp = queued;
        queued = rp->next;
        deliver(s, rp, -1);
    }
}

/* WAIT behind the scripts of list on c: Redis answers it once the replicas have everything this connection
 * wrote before it, so it covers them all. Its callback always runs (NULL on a lost link); when it cannot be
 * sent (the link is going), the scripts are answered NULL now. */
/* Sends WAIT wait_replicas wait_timeout_ms on c, answered to on_wait(list). Returns send_argv's answer. */
static int wait_cmd(conn_t *c, replicated_t *list)
{
    const store_t *s = c->store;
    char n[16], ms[16];
    snprintf(n, sizeof n, "%d", s->opts.wait_replicas);
    snprintf(ms, sizeof ms, "%d", s->opts.wait_timeout_ms > 0 ? s->opts.wait_timeout_ms : 1000);
    const char *wait[] = { "WAIT", n, ms };
    return send_argv(c, 3, wait, NULL, on_wait, list);
}

static void send_wait(conn_t *c, replicated_t *list)
{
    store_t *s = c->store;
    if (c->ac && wait_cmd(c, list) == 0) {
        c->waits = 1;
        return;
    }
    while (list) {
        replicated_t *rp = list;
        list = rp->next;
        deliver(s, rp, -1);
    }
}

int store_script_replicated(store_t *s, const char *affinity, int script, int argc, const char **argv,
                            const size_t *argvlen, store_reply_fn *fn, void *data)
{
    if (s->opts.wait_replicas <= 0)
        return store_script_for(s, affinity, script, argc, argv, argvlen, fn, data);
    /* The replicas fell short: the answer is BUSY at once, but for one write at a time whose WAIT tells when
     * they are back (a WAIT on every connection would hold each up for wait_timeout_ms, and the writes behind). */
    if (s->wait_short && s->probe_out)
        return -1;
    conn_t *c = &s->conns[store_slot(s, affinity)];
    replicated_t *rp = omni_calloc(1, sizeof *rp);
    rp->conn = c;
    rp->fn = fn, rp->data = data;
    rp->refs = 2;
    if (send_script(s, c, script, argc, argv, argvlen, on_replicated_script, rp) != 0) {
        free(rp);
        return -1;
    }
    if (s->wait_short) {
        rp->probe = 1;
        s->probe_out = 1;
    }
    if (c->waits) { /* covered by the next WAIT, sent when this one is answered */
        if (!c->queued_tail)
            c->queued_tail = &c->queued;
        *c->queued_tail = rp;
        c->queued_tail = &rp->next;
        return 0;
    }
    if (wait_cmd(c, rp) != 0) { /* the link is going: the caller treats it as not sent */
        rp->delivered = 1; /* the script's answer, if any, is dropped with rp and never reaches fn */
        if (rp->probe)
            s->probe_out = 0;
        replicated_release(rp);
        return -1;
    }
    c->waits = 1;
    return 0;
}
