/* See sentinel_lookup.h. */
#include "sentinel_lookup.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct timeval tv_of(int ms) { return (struct timeval){ ms / 1000, ms % 1000 * 1000 }; }

/* The sentinel that answered last (an index in the list the caller gives, which is the same list for the
 * life of a process): the next lookup starts there, so a hung sentinel costs one timeout, not one per
 * lookup. Shared by omni-api's threads, hence atomic. */
static atomic_size_t answered_last;

/* A server with no password (a sentinel without requirepass, the usual "sentinel auth-pass" setup) answers
 * AUTH with this error: it needs none, and commands work without it. */
static int no_password_needed(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "ERR AUTH", 8) == 0 &&
           strstr(r->str, "without any password configured") != NULL;
}

/* AUTH password on c (sentinel: a sentinel without any password takes it as needing none, as the router's
 * sentinel.c does). Returns 0, or -1 with why in err. */
static int auth(redisContext *c, const char *password, int sentinel, char *err, size_t errsz)
{
    if (!password || !*password)
        return 0;
    redisReply *r = redisCommand(c, "AUTH %s", password);
    int ok = r && (r->type != REDIS_REPLY_ERROR || (sentinel && no_password_needed(r)));
    if (!ok)
        snprintf(err, errsz, "AUTH: %s", r ? r->str : c->errstr);
    freeReplyObject(r);
    return ok ? 0 : -1;
}

int sentinel_lookup(const redis_address_t *sentinels, size_t n, const char *master_name, const char *password,
                    int timeout_ms, redis_address_t *primary, char *err, size_t errsz)
{
    snprintf(err, errsz, "no sentinel listed");
    size_t first = n ? atomic_load(&answered_last) % n : 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = (first + k) % n;
        const redis_address_t *a = &sentinels[i];
        char why[200] = "";
        redisContext *c = redisConnectWithTimeout(a->host, a->port, tv_of(timeout_ms));
        redisReply *r = NULL;
        if (!c || c->err)
            snprintf(why, sizeof why, "%s", c ? c->errstr : "out of memory");
        else if (redisSetTimeout(c, tv_of(timeout_ms)) == REDIS_OK && auth(c, password, 1, why, sizeof why) == 0 &&
                 !(r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", master_name)))
            snprintf(why, sizeof why, "%s", c->errstr);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_STRING) {
            *primary = (redis_address_t){ .port = atoi(r->element[1]->str) };
            snprintf(primary->host, sizeof primary->host, "%s", r->element[0]->str);
            atomic_store(&answered_last, i);
            freeReplyObject(r);
            redisFree(c);
            return 0;
        }
        if (r) /* nil: this sentinel does not know the name; an error: not a sentinel, or not allowed */
            snprintf(why, sizeof why, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "the master name is unknown to it");
        snprintf(err, errsz, "no sentinel named a primary for %s (the last, %s:%d: %s)", master_name, a->host, a->port,
                 why);
        freeReplyObject(r);
        redisFree(c);
    }
    return -1;
}

int redis_check_primary(redisContext *c, char *err, size_t errsz)
{
    redisReply *r = redisCommand(c, "ROLE");
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING &&
             !strcmp(r->element[0]->str, "master");
    if (!ok)
        snprintf(err, errsz, "ROLE: %s", !r ? c->errstr : r->type == REDIS_REPLY_ERROR ? r->str
                 : r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING
                     ? r->element[0]->str : "not understood");
    if (!ok && r && r->type == REDIS_REPLY_ARRAY && r->elements > 0)
        snprintf(err + strlen(err), errsz - strlen(err), " (not the primary)");
    freeReplyObject(r);
    return ok ? 0 : -1;
}

redisContext *sentinel_connect_primary(const redis_address_t *sentinels, size_t n, const char *master_name,
                                       const char *password, int timeout_ms, char *err, size_t errsz)
{
    redis_address_t p;
    if (sentinel_lookup(sentinels, n, master_name, password, timeout_ms, &p, err, errsz) != 0)
        return NULL;
    redisContext *c = redisConnectWithTimeout(p.host, p.port, tv_of(timeout_ms));
    char why[200];
    if (!c || c->err)
        snprintf(why, sizeof why, "%s", c ? c->errstr : "out of memory");
    else if (redisSetTimeout(c, tv_of(timeout_ms)) != REDIS_OK)
        snprintf(why, sizeof why, "cannot set the command timeout");
    else if (auth(c, password, 0, why, sizeof why) == 0 && redis_check_primary(c, why, sizeof why) == 0)
        return c;
    snprintf(err, errsz, "the primary the sentinels name for %s, %s:%d: %s", master_name, p.host, p.port, why);
    redisFree(c);
    return NULL;
}
