/* See sentinel.h. Two connections to the current sentinel: one asks (SENTINEL get-master-addr-by-name), one
 * is subscribed to +switch-master (a subscribed connection can send nothing else). A sentinel that fails or
 * stays silent for timeout_ms is dropped and the next one in the list is used. */
#include "sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/async.h>

#include "omni/log.h"
#include "omni/util.h"

#define RETRY_MS 200 /* between two sentinels when one failed; the list is tried round and round */
#define ROUND_MS 1000 /* after a whole round of them failed */

/* What was last logged about the sentinels: one line per change, not one per sentinel or retry. */
enum { SAID_FINE, SAID_UNREACHABLE, SAID_UNKNOWN };

typedef struct link {
    sentinel_t *s;
    redisAsyncContext *ac;
    int fd;
} link_t;

struct sentinel {
    loop_t *loop;
    redis_address_t *addrs;
    size_t n, cur;
    char *master, *password;
    int timeout_ms;
    sentinel_primary_fn *fn;
    void *data;
    link_t ask, sub;
    int asking;             /* a question is out */
    int want;               /* an answer is wanted (start, or sentinel_ask) */
    int64_t asked_at, next_try;
    size_t fails;           /* sentinels failed in a row (drop) since one last answered */
    int reached;            /* one of them answered in this round, though not with a primary */
    int said;               /* SAID_*: what was last logged */
    char why[200];          /* the last failure, for the line */
    char desc[320];
};

static void drop(sentinel_t *s, const char *why);

static void hook(void *p, int add, int ev)
{
    link_t *l = p;
    int cur = loop_fd_events(l->s->loop, l->fd);
    loop_set_fd_events(l->s->loop, l->fd, add ? (cur | ev) : (cur & ~ev));
}
static void add_read(void *p) { hook(p, 1, LOOP_READ); }
static void del_read(void *p) { hook(p, 0, LOOP_READ); }
static void add_write(void *p) { hook(p, 1, LOOP_WRITE); }
static void del_write(void *p) { hook(p, 0, LOOP_WRITE); }
static void cleanup(void *p)
{
    link_t *l = p;
    loop_del_fd(l->s->loop, l->fd);
    l->fd = -1;
}

static void on_io(loop_t *loop, int fd, int events, void *data)
{
    (void)loop, (void)fd;
    link_t *l = data;
    if ((events & LOOP_READ) && l->ac)
        redisAsyncHandleRead(l->ac);
    if ((events & LOOP_WRITE) && l->ac)
        redisAsyncHandleWrite(l->ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    link_t *l = ac->data;
    if (status != REDIS_OK) {
        l->ac = NULL; /* hiredis frees it */
        drop(l->s, ac->errstr);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    link_t *l = ac->data;
    l->ac = NULL;
    if (status != REDIS_OK)
        drop(l->s, ac->errstr);
}

static int open_link(sentinel_t *s, link_t *l)
{
    const redis_address_t *a = &s->addrs[s->cur];
    redisAsyncContext *ac = redisAsyncConnect(a->host, a->port);
    if (!ac || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        return -1;
    }
    l->s = s;
    l->ac = ac;
    l->fd = ac->c.fd;
    ac->data = l;
    ac->ev.data = l;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    loop_add_fd(s->loop, l->fd, 0, on_io, l);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (s->password)
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", s->password);
    return 0;
}

static void close_link(link_t *l)
{
    if (l->ac) {
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        redisAsyncFree(ac);
    }
}

/* A sentinel answered: with the primary (primary), or it is up (its SUBSCRIBE confirmed). Logs a recovery
 * once. While a primary is wanted, only naming it ends a run of failures. */
static void answered(sentinel_t *s, int primary)
{
    s->reached = 1;
    if (primary || !s->want)
        s->fails = 0, s->reached = 0;
    if (s->said == SAID_FINE || (s->said == SAID_UNKNOWN && !primary))
        return;
    omni_info("redis sentinel %s:%d answers again%s (master %s)", s->addrs[s->cur].host, s->addrs[s->cur].port,
              primary ? " and names the primary" : "", s->master);
    s->said = SAID_FINE;
    s->fails = 0;
}

/* The current sentinel failed: close both links and try the next one a moment later. A whole round of
 * failures is logged once (until one answers again). */
static void drop(sentinel_t *s, const char *why)
{
    omni_debug("redis sentinel %s:%d: %s; trying the next one", s->addrs[s->cur].host, s->addrs[s->cur].port, why);
    snprintf(s->why, sizeof s->why, "%.60s:%d: %.120s", s->addrs[s->cur].host, s->addrs[s->cur].port, why);
    close_link(&s->ask);
    close_link(&s->sub);
    s->asking = 0;
    s->cur = (s->cur + 1) % s->n;
    s->next_try = omni_mono_ms() + RETRY_MS;
    if (++s->fails < s->n)
        return;
    int said = s->reached ? SAID_UNKNOWN : SAID_UNREACHABLE;
    if (said != s->said) {
        if (said == SAID_UNKNOWN)
            omni_warn("redis sentinel: no sentinel knows master %s (asked %zu; the last, %s): check redis.master_name "
                      "against their \"sentinel monitor\" lines; asking again", s->master, s->n, s->why);
        else
            omni_warn("redis sentinel: no sentinel reachable (tried %zu; the last, %s): %s", s->n, s->why,
                      s->want ? "no primary to connect to until one answers" : "failovers are not followed until one answers");
        s->said = said;
    }
    s->fails = 0;
    s->reached = 0;
    s->next_try = omni_mono_ms() + ROUND_MS;
}

static void on_master(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac, (void)priv;
    redisReply *reply = r;
    link_t *l = ac->data;
    sentinel_t *s = l->s;
    s->asking = 0;
    if (!reply)
        return; /* the link went away: on_disconnect dropped it */
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        s->want = 0;
        answered(s, 1);
        s->fn(s->data, reply->element[0]->str, atoi(reply->element[1]->str));
        return;
    }
    /* nil: this sentinel does not know the name; an error: not a sentinel, or not allowed (logged once a whole
     * round failed, by drop) */
    char why[160];
    snprintf(why, sizeof why, "no primary for master %s (%.100s)", s->master,
             reply->type == REDIS_REPLY_ERROR ? reply->str : "unknown name");
    s->reached = 1;
    drop(s, why);
}

/* "+switch-master NAME OLDIP OLDPORT NEWIP NEWPORT": the sentinels agreed on a new primary. */
static void on_switch(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    redisReply *reply = r;
    link_t *l = ac->data;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
        reply->element[0]->type == REDIS_REPLY_STRING && !strcmp(reply->element[0]->str, "subscribe")) {
        answered(l->s, 0); /* the sentinel is up (whether it knows the name, only its answer tells) */
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[2]->type != REDIS_REPLY_STRING)
        return; /* the link going away */
    char name[256], oldip[64], newip[64];
    int oldport, newport;
    if (sscanf(reply->element[2]->str, "%255s %63s %d %63s %d", name, oldip, &oldport, newip, &newport) == 5 &&
        strcmp(name, l->s->master) == 0) {
        omni_info("redis sentinel: master %s switched from %s:%d to %s:%d", name, oldip, oldport, newip, newport);
        l->s->fn(l->s->data, newip, newport);
    }
}

void sentinel_tick(sentinel_t *s)
{
    int64_t now = omni_mono_ms();
    if (s->asking && now - s->asked_at > s->timeout_ms) {
        drop(s, "no answer in time");
        return;
    }
    if (now < s->next_try)
        return;
    if (!s->ask.ac && open_link(s, &s->ask) != 0) {
        drop(s, "cannot connect");
        return;
    }
    if (!s->sub.ac) {
        if (open_link(s, &s->sub) != 0) {
            drop(s, "cannot connect");
            return;
        }
        redisAsyncCommand(s->sub.ac, on_switch, NULL, "SUBSCRIBE +switch-master");
    }
    if (s->want && !s->asking) {
        s->asking = 1;
        s->asked_at = now;
        redisAsyncCommand(s->ask.ac, on_master, NULL, "SENTINEL get-master-addr-by-name %s", s->master);
    }
}

void sentinel_ask(sentinel_t *s) { s->want = 1; }

sentinel_t *sentinel_new(loop_t *loop, const redis_address_t *sentinels, size_t n, const char *master_name,
                         const char *password, int timeout_ms, sentinel_primary_fn *fn, void *data)
{
    sentinel_t *s = omni_calloc(1, sizeof *s);
    s->loop = loop;
    s->addrs = omni_calloc(n, sizeof *s->addrs);
    memcpy(s->addrs, sentinels, n * sizeof *sentinels);
    s->n = n;
    s->master = omni_strdup(master_name);
    s->password = password ? omni_strdup(password) : NULL;
    s->timeout_ms = timeout_ms;
    s->fn = fn, s->data = data;
    s->want = 1;
    size_t len = (size_t)snprintf(s->desc, sizeof s->desc, "master %s via sentinels", master_name);
    for (size_t i = 0; i < n && len < sizeof s->desc; i++)
        len += (size_t)snprintf(s->desc + len, sizeof s->desc - len, "%s%s:%d", i ? "," : " ", sentinels[i].host,
                                sentinels[i].port);
    return s;
}

const char *sentinel_describe(const sentinel_t *s) { return s->desc; }

void sentinel_destroy(sentinel_t **sp)
{
    if (!sp || !*sp)
        return;
    sentinel_t *s = *sp;
    close_link(&s->ask);
    close_link(&s->sub);
    free(s->addrs);
    free(s->master);
    free(s->password);
    free(s);
    *sp = NULL;
}
