/* Redis through hiredis's asynchronous API, with the router's loop as its event library.
 *
 * States: DOWN -> (connect) -> LOADING (AUTH, SELECT, SCRIPT LOAD pipelined right behind the connect) ->
 * UP once the last SCRIPT LOAD answers. Any error or a lost connection fails every outstanding command
 * (their callbacks get NULL) and goes back to DOWN; store_tick() reconnects with doubling backoff. */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/async.h>

#include "omni/log.h"
#include "omni/util.h"
#include "scripts.h"

enum { DOWN, LOADING, UP };
#define MAX_SCRIPTS 16
#define BACKOFF_MAX_MS 5000

struct store {
    loop_t *loop;
    store_opts_t opts;
    char *owned_host, *owned_unix, *owned_password;
    char address[512];
    redisAsyncContext *ac;
    int fd;
    int state;
    int loads_pending;
    char sha[MAX_SCRIPTS][41];
    int backoff_ms;
    int64_t next_attempt;
    int force_reconnect;
    size_t inflight;
    int64_t last_progress; /* last reply, or when the first outstanding command was sent */
    int logged_down;       /* say "unreachable" once per outage, not on every attempt */
    int closing;           /* store_destroy() is running: a disconnect is expected */
    int64_t quiet_until;   /* failures before this are expected (a server still starting) */
};

typedef struct cmd {
    store_t *store;
    store_reply_fn *fn;
    void *data;
} cmd_t;

static void set_state(store_t *s, int state)
{
    int was_up = s->state == UP;
    s->state = state;
    if (state == UP) {
        s->backoff_ms = s->opts.reconnect_ms;
        s->logged_down = 0;
        omni_info("redis: connected to %s", s->address);
    }
    if (was_up != (state == UP) && s->opts.on_state)
        s->opts.on_state(s, state == UP, s->opts.data);
}

static int quiet(const store_t *s) { return s->closing || omni_mono_ms() < s->quiet_until; }

/* The connection is gone (hiredis frees the context itself after the callbacks that tell us so). */
static void lost(store_t *s, const char *why)
{
    if (s->ac && !quiet(s)) {
        if (!s->logged_down)
            omni_warn("redis: %s: %s; retrying every %d ms at most", s->address, why, BACKOFF_MAX_MS);
        s->logged_down = 1;
    }
    s->ac = NULL;
    s->next_attempt = omni_mono_ms() + s->backoff_ms;
    s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
    set_state(s, DOWN);
}

/* --- hiredis event hooks: the context asks for read/write interest on its fd --- */
static void hook(void *p, int add, int ev)
{
    store_t *s = p;
    int cur = loop_fd_events(s->loop, s->fd);
    loop_set_fd_events(s->loop, s->fd, add ? (cur | ev) : (cur & ~ev));
}
static void add_read(void *p) { hook(p, 1, LOOP_READ); }
static void del_read(void *p) { hook(p, 0, LOOP_READ); }
static void add_write(void *p) { hook(p, 1, LOOP_WRITE); }
static void del_write(void *p) { hook(p, 0, LOOP_WRITE); }
static void cleanup(void *p)
{
    store_t *s = p;
    loop_del_fd(s->loop, s->fd);
    s->fd = -1;
}

static void on_io(loop_t *loop, int fd, int events, void *data)
{
    (void)loop, (void)fd;
    store_t *s = data;
    if ((events & LOOP_READ) && s->ac)
        redisAsyncHandleRead(s->ac);
    if ((events & LOOP_WRITE) && s->ac) /* the read may have closed the connection */
        redisAsyncHandleWrite(s->ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    store_t *s = ac->data;
    if (status != REDIS_OK)
        lost(s, ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    store_t *s = ac->data;
    lost(s, status == REDIS_OK ? "disconnected" : ac->errstr);
}

/* --- commands --- */
static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    cmd_t *c = privdata;
    store_t *s = c->store;
    redisReply *reply = r;
    s->inflight--;
    s->last_progress = omni_mono_ms();
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        omni_warn("redis: scripts vanished (SCRIPT FLUSH?); reconnecting to load them again");
        s->force_reconnect = 1;
    }
    c->fn(s, reply, c->data);
    free(c);
}

static int send_argv(store_t *s, int argc, const char **argv, const size_t *len, store_reply_fn *fn, void *data)
{
    cmd_t *c = omni_malloc(sizeof *c);
    *c = (cmd_t){ s, fn, data };
    if (redisAsyncCommandArgv(s->ac, on_reply, c, argc, argv, len) != REDIS_OK) {
        free(c);
        return -1;
    }
    if (s->inflight++ == 0)
        s->last_progress = omni_mono_ms();
    return 0;
}

static void on_setup_reply(store_t *s, redisReply *reply, void *data)
{
    long idx = (long)(intptr_t)data; /* -1: AUTH or SELECT; else the script's index */
    if (!reply)
        return; /* connection lost; lost() already ran or will */
    if (reply->type == REDIS_REPLY_ERROR) {
        omni_warn("redis: %s: setup failed: %s", s->address, reply->str);
        s->force_reconnect = 1;
        return;
    }
    if (idx >= 0 && reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(s->sha[idx], reply->str, 40);
        s->sha[idx][40] = 0;
        if (--s->loads_pending == 0 && s->state == LOADING)
            set_state(s, UP);
    }
}

static void connect_now(store_t *s)
{
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
        s->next_attempt = omni_mono_ms() + s->backoff_ms;
        s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
        return;
    }
    s->ac = ac;
    s->fd = ac->c.fd;
    ac->data = s;
    ac->ev.data = s;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    loop_add_fd(s->loop, s->fd, 0, on_io, s);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    s->state = LOADING;
    if (s->opts.password) {
        const char *argv[] = { "AUTH", s->opts.password };
        send_argv(s, 2, argv, NULL, on_setup_reply, (void *)(intptr_t)-1);
    }
    if (s->opts.database) {
        char db[16];
        snprintf(db, sizeof db, "%d", s->opts.database);
        const char *argv[] = { "SELECT", db };
        send_argv(s, 2, argv, NULL, on_setup_reply, (void *)(intptr_t)-1);
    }
    s->loads_pending = 0;
    for (long i = 0; omni_lua_scripts[i].name && i < MAX_SCRIPTS; i++) {
        const char *argv[] = { "SCRIPT", "LOAD", omni_lua_scripts[i].body };
        if (send_argv(s, 3, argv, NULL, on_setup_reply, (void *)(intptr_t)i) == 0)
            s->loads_pending++;
    }
}

store_t *store_new(loop_t *loop, const store_opts_t *opts)
{
    store_t *s = omni_calloc(1, sizeof *s);
    s->loop = loop;
    s->opts = *opts;
    s->fd = -1;
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
    s->backoff_ms = s->opts.reconnect_ms;
    if (s->opts.unix_path)
        snprintf(s->address, sizeof s->address, "unix:%s", s->opts.unix_path);
    else
        snprintf(s->address, sizeof s->address, "tcp://%s:%d", s->opts.tcp_host, s->opts.tcp_port);
    s->next_attempt = omni_mono_ms();
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
    if (s->ac)
        redisAsyncFree(s->ac); /* fails outstanding commands, then on_disconnect -> lost() */
    free(s->owned_host);
    free(s->owned_unix);
    free(s->owned_password);
    free(s);
    *store = NULL;
}

int store_up(const store_t *store) { return store->state == UP; }
size_t store_inflight(const store_t *store) { return store->inflight; }
const char *store_address(const store_t *store) { return store->address; }

int store_script(store_t *s, const char *script, int argc, const char **argv, const size_t *argvlen,
                 store_reply_fn *fn, void *data)
{
    if (s->state != UP || !s->ac)
        return -1;
    long idx = -1;
    for (long i = 0; omni_lua_scripts[i].name; i++)
        if (strcmp(omni_lua_scripts[i].name, script) == 0)
            idx = i;
    if (idx < 0)
        omni_panic("store_script: no script named %s", script);
    const char *av[argc + 3];
    size_t len[argc + 3];
    av[0] = "EVALSHA", len[0] = 7;
    av[1] = s->sha[idx], len[1] = 40;
    av[2] = "0", len[2] = 1;
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        len[i + 3] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    return send_argv(s, argc + 3, av, len, fn, data);
}

void store_tick(store_t *s)
{
    int64_t now = omni_mono_ms();
    if (s->ac && s->inflight > 0 && now - s->last_progress > s->opts.timeout_ms) {
        omni_warn("redis: %s: no answer for %d ms to %zu commands; dropping the connection", s->address,
                  s->opts.timeout_ms, s->inflight);
        s->force_reconnect = 1;
    }
    if (s->ac && s->force_reconnect) {
        s->force_reconnect = 0;
        redisAsyncContext *ac = s->ac;
        redisAsyncFree(ac); /* callbacks get NULL; on_disconnect runs lost() if it was connected */
        if (s->ac == ac)
            lost(s, "connection reset");
        return;
    }
    if (!s->ac && now >= s->next_attempt)
        connect_now(s);
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
