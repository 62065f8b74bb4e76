/* Redis through hiredis's asynchronous API, with the router's loop as its event library, over a small pool
 * of connections. Why a pool: Redis reads about 16 KiB from each client per turn of its event loop and,
 * with appendfsync always, fsyncs once per turn; more connections put more commands behind each fsync.
 * Every change is one atomic script, so the order in which connections deliver them does not matter.
 *
 * Each connection: DOWN -> (connect) -> LOADING (AUTH, SELECT, SCRIPT LOAD pipelined right behind the
 * connect) -> UP once the last SCRIPT LOAD answers. Any error or a lost connection fails that connection's
 * outstanding commands (their callbacks get NULL) and it goes back to DOWN; store_tick() reconnects with
 * doubling backoff. The store is up while all its connections are. */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/async.h>

#include "omni/log.h"
#include "omni/util.h"
#include "scripts.h"

enum { DOWN, LOADING, UP };
#define MAX_SCRIPTS LUA_NSCRIPTS
#define BACKOFF_MAX_MS 5000

typedef struct conn {
    store_t *store;
    int index;
    redisAsyncContext *ac;
    int fd;
    int state;
    int loads_pending;
    int backoff_ms;
    int64_t next_attempt;
    int force_reconnect;
    size_t inflight;
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
    int up;                /* all connections up, as last reported to on_state */
    char sha[MAX_SCRIPTS][41];
    int logged_down;       /* say "unreachable" once per outage, not on every attempt */
    int closing;           /* store_destroy() is running: a disconnect is expected */
    int64_t quiet_until;   /* failures before this are expected (a server still starting) */
};

typedef struct cmd {
    conn_t *conn;
    store_reply_fn *fn;
    void *data;
    int script; /* its reply is checked against the script's declaration; -1: not a script */
} cmd_t;

static int quiet(const store_t *s) { return s->closing || omni_mono_ms() < s->quiet_until; }

/* Reports a change of the store as a whole to its owner. */
static void update(store_t *s)
{
    int up = 1;
    for (int i = 0; i < s->n_conns; i++)
        up &= s->conns[i].state == UP;
    if (up == s->up)
        return;
    s->up = up;
    if (up) {
        s->logged_down = 0;
        omni_info("redis: connected to %s (%d connection%s)", s->address, s->n_conns, s->n_conns == 1 ? "" : "s");
    }
    if (s->opts.on_state)
        s->opts.on_state(s, up, s->opts.data);
}

static void backoff(conn_t *c)
{
    c->next_attempt = omni_mono_ms() + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* The connection is gone (hiredis frees the context itself after the callbacks that tell us so). */
static void lost(conn_t *c, const char *why)
{
    store_t *s = c->store;
    if (c->ac && !quiet(s) && !s->logged_down) {
        omni_warn("redis: %s: %s; retrying every %d ms at most", s->address, why, BACKOFF_MAX_MS);
        s->logged_down = 1;
    }
    c->ac = NULL;
    c->state = DOWN;
    backoff(c);
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
static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    cmd_t *cmd = privdata;
    conn_t *c = cmd->conn;
    redisReply *reply = r;
    c->inflight--;
    c->last_progress = omni_mono_ms();
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        omni_warn("redis: scripts vanished (SCRIPT FLUSH?); reconnecting to load them again");
        c->force_reconnect = 1;
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
    *cmd = (cmd_t){ c, fn, data, script };
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

/* data: the connection's index * MAX_SCRIPTS + the script's index, or -1 for AUTH and SELECT. */
static void on_setup_reply(store_t *s, redisReply *reply, void *data)
{
    long tag = (long)(intptr_t)data;
    if (!reply)
        return; /* connection lost; lost() already ran or will */
    conn_t *c = &s->conns[tag < 0 ? -tag - 1 : tag / MAX_SCRIPTS];
    if (reply->type == REDIS_REPLY_ERROR) {
        omni_warn("redis: %s: setup failed: %s", s->address, reply->str);
        c->force_reconnect = 1;
        return;
    }
    if (tag >= 0 && reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(s->sha[tag % MAX_SCRIPTS], reply->str, 40);
        s->sha[tag % MAX_SCRIPTS][40] = 0;
        if (--c->loads_pending == 0 && c->state == LOADING) {
            c->state = UP;
            c->backoff_ms = s->opts.reconnect_ms;
            update(s);
        }
    }
}

static void connect_now(conn_t *c)
{
    store_t *s = c->store;
    redisAsyncContext *ac = s->opts.unix_path ? redisAsyncConnectUnix(s->opts.unix_path)
                                              : redisAsyncConnect(s->opts.tcp_host, s->opts.tcp_port);
    if (!ac || ac->err) {
        if (quiet(s))
            omni_debug("redis: %s: %s (still starting)", s->address, ac ? ac->errstr : "out of memory");
        else if (!s->logged_down)
            omni_warn("redis: %s: %s", s->address, ac ? ac->errstr : "out of memory");
        if (!quiet(s))
            s->logged_down = 1;
        if (ac)
            redisAsyncFree(ac);
        backoff(c);
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
    long setup = -(long)c->index - 1;
    if (s->opts.password) {
        const char *argv[] = { "AUTH", s->opts.password };
        send_argv(c, 2, argv, NULL, on_setup_reply, (void *)(intptr_t)setup);
    }
    if (s->opts.database) {
        char db[16];
        snprintf(db, sizeof db, "%d", s->opts.database);
        const char *argv[] = { "SELECT", db };
        send_argv(c, 2, argv, NULL, on_setup_reply, (void *)(intptr_t)setup);
    }
    c->loads_pending = 0;
    for (long i = 0; i < LUA_NSCRIPTS; i++) {
        const char *argv[] = { "SCRIPT", "LOAD", omni_lua_scripts[i].body };
        if (send_argv(c, 3, argv, NULL, on_setup_reply, (void *)(intptr_t)(c->index * MAX_SCRIPTS + i)) == 0)
            c->loads_pending++;
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
    if (s->opts.unix_path)
        snprintf(s->address, sizeof s->address, "unix:%s", s->opts.unix_path);
    else
        snprintf(s->address, sizeof s->address, "tcp://%s:%d", s->opts.tcp_host, s->opts.tcp_port);
    s->quiet_until = omni_mono_ms() + (opts->grace_ms > 0 ? opts->grace_ms : 0);
    return s;
}

void store_destroy(store_t **store)
{
    if (!store || !*store)
        return;
    store_t *s = *store;
    s->opts.on_state = NULL; /* the owner is going away; do not call back into it */
    s->closing = 1;
    for (int i = 0; i < s->n_conns; i++)
        if (s->conns[i].ac)
            redisAsyncFree(s->conns[i].ac); /* fails outstanding commands, then on_disconnect -> lost() */
    free(s->owned_host);
    free(s->owned_unix);
    free(s->owned_password);
    free(s);
    *store = NULL;
}

int store_up(const store_t *store) { return store->up; }
const char *store_address(const store_t *store) { return store->address; }

static int send_script(store_t *s, conn_t *c, int script, int argc, const char **argv,
                       const size_t *argvlen, store_reply_fn *fn, void *data)
{
    const struct omni_lua_script *sc = &omni_lua_scripts[script];
    if (argc < sc->nargs || (!sc->variadic && argc != sc->nargs))
        omni_panic("store_script: %s called with %d arguments, declared %d%s", sc->name, argc, sc->nargs,
                   sc->variadic ? " or more" : "");
    if (!s->up || !c->ac || c->state != UP)
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

int store_script(store_t *s, int script, int argc, const char **argv, const size_t *argvlen,
                 store_reply_fn *fn, void *data)
{
    conn_t *c = &s->conns[s->next];
    s->next = (s->next + 1) % s->n_conns;
    return send_script(s, c, script, argc, argv, argvlen, fn, data);
}

int store_script_for(store_t *s, const char *affinity, int script, int argc, const char **argv,
                     const size_t *argvlen, store_reply_fn *fn, void *data)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)affinity; *p; p++)
        h = (h ^ *p) * 16777619u;
    return send_script(s, &s->conns[h % (uint32_t)s->n_conns], script, argc, argv, argvlen, fn, data);
}

void store_tick(store_t *s)
{
    int64_t now = omni_mono_ms();
    for (int i = 0; i < s->n_conns; i++) {
        conn_t *c = &s->conns[i];
        if (c->ac && c->inflight > 0 && now - c->last_progress > s->opts.timeout_ms) {
            omni_warn("redis: %s: no answer for %d ms to %zu commands; dropping the connection", s->address,
                      s->opts.timeout_ms, c->inflight);
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
        if (!c->ac && now >= c->next_attempt)
            connect_now(c);
    }
}

int store_parse_address(const char *address, store_opts_t *opts, char **owned)
{
    *owned = NULL;
    if (strncmp(address, "unix:", 5) == 0 && address[5]) {
        *owned = omni_strdup(address + 5);
        opts->unix_path = *owned;
        return 0;
    }
    if (strncmp(address, "tcp://", 6) == 0) {
        const char *hp = address + 6;
        const char *colon = strrchr(hp, ':');
        if (!colon || colon == hp || !colon[1])
            return -1;
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port < 1 || port > 65535)
            return -1;
        if (hp[0] == '[' && colon[-1] == ']') /* [IPv6]:port */
            *owned = omni_strndup(hp + 1, (size_t)(colon - hp) - 2);
        else
            *owned = omni_strndup(hp, (size_t)(colon - hp));
        opts->tcp_host = *owned;
        opts->tcp_port = (int)port;
        return 0;
    }
    return -1;
}
