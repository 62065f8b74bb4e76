/* One blocking hiredis connection per thread (see api.h): made on first use, dropped after any I/O error so
 * the next request connects again, freed when the thread ends (MHD ends a connection's thread with it).
 * Under Sentinel each new connection asks the sentinels for the primary and checks ROLE; a lost connection
 * or a READONLY answer (a primary demoted under us) drops it, so the next request asks them again. */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "omni/log.h"
#include "omni/util.h"
#include "scripts.h"
#include "sentinel_lookup.h"

static pthread_key_t conn_key;

static void conn_free(void *c) { redisFree(c); }

void api_redis_init(void) { pthread_key_create(&conn_key, conn_free); }

void api_redis_drop(void)
{
    redisContext *c = pthread_getspecific(conn_key);
    if (c) {
        redisFree(c);
        pthread_setspecific(conn_key, NULL);
    }
}

/* What was last said of the store, shared by every connection's thread: one warning per change (and one a
 * minute while it lasts), not one per request, and one line when it answers again. */
static pthread_mutex_t said_mu = PTHREAD_MUTEX_INITIALIZER;
static char said_why[200];
static int64_t said_at;
static bool said_down;

static void unavailable(api_req_t *req, const char *why)
{
    const api_config_t *cfg = req->cfg;
    int64_t now = omni_mono_ms();
    pthread_mutex_lock(&said_mu);
    bool say = !said_down || strncmp(said_why, why, sizeof said_why - 1) != 0 || now - said_at >= 60000;
    if (say) {
        snprintf(said_why, sizeof said_why, "%s", why);
        said_at = now;
        said_down = true;
    }
    pthread_mutex_unlock(&said_mu);
    if (say && cfg->redis.n_sentinels > 0)
        omni_warn("redis (master %s via sentinels): %s (every request gets 503 until it answers)",
                  cfg->redis.master_name, why);
    else if (say)
        omni_warn("redis %s: %s (every request gets 503 until it answers)", cfg->redis.address, why);
    snprintf(req->unavailable_why, sizeof req->unavailable_why, "%s", why);
    api_redis_drop();
    req->redis = NULL;
    req->unavailable = true;
    api_fail(req, 503, "unavailable", NULL, "the store (Redis) cannot be reached; retry in %d s",
             req->cfg->api.retry_after_s);
}

/* AUTH (unless done: authed) and SELECT on a new connection. Returns NULL or why it failed (borrowed from the
 * reply's text or a literal: valid until the reply is freed, so copied into buf). */
static const char *prepare(redisContext *c, const api_config_t *cfg, bool authed, char *buf, size_t bufsz)
{
    redisReply *r = NULL;
    if (cfg->redis.password && !authed)
        r = redisCommand(c, "AUTH %s", cfg->redis.password_value);
    if (cfg->redis.password && !authed && (!r || r->type == REDIS_REPLY_ERROR)) {
        snprintf(buf, bufsz, "AUTH: %s", r ? r->str : c->errstr);
        freeReplyObject(r);
        return buf;
    }
    freeReplyObject(r);
    if (cfg->redis.database) {
        r = redisCommand(c, "SELECT %d", cfg->redis.database);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(buf, bufsz, "SELECT: %s", r ? r->str : c->errstr);
            freeReplyObject(r);
            return buf;
        }
        freeReplyObject(r);
    }
    return NULL;
}

redisContext *api_redis(api_req_t *req)
{
    redisContext *c = pthread_getspecific(conn_key);
    if (c)
        return req->redis = c;
    const api_config_t *cfg = req->cfg;
    const redis_address_t *a = &cfg->redis.addr;
    struct timeval tv = { cfg->redis.timeout_ms / 1000, cfg->redis.timeout_ms % 1000 * 1000 };
    char why[600], said[600];
    const char *bad = NULL;
    bool sentinel = cfg->redis.n_sentinels > 0;
    if (sentinel) { /* the primary as the sentinels name it now, ROLE checked */
        c = sentinel_connect_primary(cfg->redis.sentinel_addrs, cfg->redis.n_sentinels, cfg->redis.master_name,
                                     cfg->redis.password ? cfg->redis.password_value : NULL, cfg->redis.timeout_ms,
                                     said, sizeof said);
        bad = c ? NULL : said;
    } else {
        c = a->path[0] ? redisConnectUnixWithTimeout(a->path, tv) : redisConnectWithTimeout(a->host, a->port, tv);
        bad = !c ? "out of memory" : c->err ? c->errstr : NULL;
        if (!bad && redisSetTimeout(c, tv) != REDIS_OK)
            bad = "cannot set the command timeout";
    }
    if (!bad)
        bad = prepare(c, cfg, sentinel, said, sizeof said);
    if (bad) {
        snprintf(why, sizeof why, "%s", bad);
        redisFree(c);
        unavailable(req, why);
        return NULL;
    }
    pthread_setspecific(conn_key, c);
    pthread_mutex_lock(&said_mu);
    bool was_down = said_down;
    said_down = false;
    pthread_mutex_unlock(&said_mu);
    if (was_down)
        omni_info("redis answers again: serving requests");
    return req->redis = c;
}

/* Errors Redis answers while it cannot serve (starting, a script running too long, a replica cut off, a
 * restart that lost our AUTH, a primary demoted to a replica: READONLY) are the store being unavailable, not
 * a bad request; the connection is dropped, so the next request connects (and asks the sentinels) again. */
static redisReply *transient(api_req_t *req, redisReply *r)
{
    static const char *const busy[] = { "LOADING", "BUSY", "MASTERDOWN", "NOAUTH", "TRYAGAIN", "CLUSTERDOWN",
                                        "READONLY", NULL };
    if (!r || r->type != REDIS_REPLY_ERROR)
        return r;
    for (const char *const *b = busy; *b; b++)
        if (!strncmp(r->str, *b, strlen(*b)) && (r->str[strlen(*b)] == ' ' || !r->str[strlen(*b)])) {
            char why[200];
            snprintf(why, sizeof why, "%s", r->str);
            freeReplyObject(r);
            unavailable(req, why);
            return NULL;
        }
    return r;
}

redisReply *api_cmd(api_req_t *req, const char *fmt, ...)
{
    if (!api_redis(req))
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(req->redis, fmt, ap);
    va_end(ap);
    if (!r)
        unavailable(req, req->redis->errstr);
    return transient(req, r);
}

redisReply *api_script(api_req_t *req, int script, int argc, const char **argv)
{
    if (!api_redis(req))
        return NULL;
    char err[300];
    argv[0] = req->cfg->redis.key_prefix;
    redisReply *r = lua_call(req->redis, script, argc, argv, err, sizeof err);
    if (r)
        return transient(req, r);
    if (req->redis->err) {
        unavailable(req, err);
    } else {
        omni_error("%s", err); /* a script and this program disagree: a bug, not the client's fault */
        api_fail(req, 500, "internal", NULL, "internal error (logged)");
    }
    return NULL;
}

int api_now(api_req_t *req, int64_t *now)
{
    const char *args[CLOCK_NARGS] = { 0 };
    redisReply *r = api_script(req, LUA_CLOCK, CLOCK_NARGS, args);
    if (!r)
        return -1;
    *now = omni_wall_ms() + (r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0);
    freeReplyObject(r);
    return 0;
}
