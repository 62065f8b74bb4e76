/* omnictl status and watch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "omni/util.h"
#include "policy.h"

/* Partner webhooks (omni-webhooks, docs/webhooks.md): per outsourced team whose endpoint omni-webhooks has
 * seen, its counts and whether a 410 disabled it; deliveries waiting and dead, all teams together. */
static void webhooks_status(ctl_t *c, long long now_ms)
{
    const policy_t *p = &c->cfg->policy;
    char t[40];
    for (size_t i = 0; i < p->n_teams; i++) {
        if (p->teams[i].kind != TEAM_OUTSOURCED)
            continue;
        redisReply *h = ctl_cmd(c, "HGETALL %s" KEY_WEBHOOKS_ENDPOINT, c->prefix, p->teams[i].name);
        if (h->type == REDIS_REPLY_ARRAY && h->elements > 0) {
            const char *off = ctl_field(h, "disabled_at");
            char state[120] = "enabled";
            if (off)
                snprintf(state, sizeof state, "DISABLED (%s at %s; omnictl webhooks enable %s)",
                         ctl_field(h, "disabled_status"), ctl_time(off, t, sizeof t), p->teams[i].name);
            printf("webhooks %s: %s, delivered %s, failed attempts %s, dead %s\n", p->teams[i].name, state,
                   ctl_field(h, "delivered") ? ctl_field(h, "delivered") : "0",
                   ctl_field(h, "failed") ? ctl_field(h, "failed") : "0",
                   ctl_field(h, "dead") ? ctl_field(h, "dead") : "0");
        }
        freeReplyObject(h);
    }
    redisReply *due = ctl_cmd(c, "ZCOUNT %s" KEY_WEBHOOKS_DUE " -inf %lld", c->prefix, now_ms);
    redisReply *all = ctl_cmd(c, "ZCARD %s" KEY_WEBHOOKS_DUE, c->prefix);
    redisReply *dead = ctl_cmd(c, "ZCARD %s" KEY_WEBHOOKS_DEAD, c->prefix);
    if (all->integer || dead->integer)
        printf("webhooks: %lld deliveries pending (%lld due now), %lld dead letters\n", all->integer, due->integer,
               dead->integer);
    freeReplyObject(due);
    freeReplyObject(all);
    freeReplyObject(dead);
}

int ctl_status(ctl_t *c)
{
    char t[40];
    redisReply *info = ctl_cmd(c, "INFO persistence");
    int aof = info->type == REDIS_REPLY_STRING && strstr(info->str, "aof_enabled:1");
    freeReplyObject(info);
    redisReply *fs = ctl_cmd(c, "CONFIG GET appendfsync");
    const char *fsync = fs->type == REDIS_REPLY_ARRAY && fs->elements == 2 ? fs->element[1]->str : "?";
    printf("redis: reachable, append-only %s, appendfsync %s%s\n", aof ? "on" : "OFF", fsync,
           aof && !strcmp(fsync, "always") ? "" : "  (WARNING: an ACKed message can be lost on a crash)");
    freeReplyObject(fs);
    /* the registry status.lua keeps, scored by expiry on Redis's clock: never KEYS on a live server */
    redisReply *now = ctl_cmd(c, "TIME");
    long long now_ms = 0;
    if (now->type == REDIS_REPLY_ARRAY && now->elements == 2) /* seconds, microseconds */
        now_ms = strtoll(now->element[0]->str, NULL, 10) * 1000 + strtoll(now->element[1]->str, NULL, 10) / 1000;
    freeReplyObject(now);
    redisReply *names = ctl_cmd(c, "ZRANGEBYSCORE %srouters %lld +inf", c->prefix, now_ms);
    size_t n = names->type == REDIS_REPLY_ARRAY ? names->elements : 0, alive = 0;
    redisReply **hashes = omni_calloc(n, sizeof *hashes);
    bool *stopped = omni_calloc(n + 1, sizeof *stopped);
    for (size_t i = 0; i < n; i++) {
        hashes[i] = ctl_cmd(c, "HGETALL %s" KEY_ROUTER, c->prefix, names->element[i]->str);
        if (hashes[i]->type != REDIS_REPLY_ARRAY || hashes[i]->elements == 0)
            continue; /* expired meanwhile */
        /* a router of this machine that stopped within its entry's TTL (a restart) is not alive */
        const char *pid = ctl_field(hashes[i], "pid");
        stopped[i] = ctl_router_here(names->element[i]->str, pid ? strtol(pid, NULL, 10) : 0) == 0;
        alive += !stopped[i];
    }
    printf("routers: %zu alive\n", alive);
    for (size_t i = 0; i < n; i++) {
        redisReply *h = hashes[i];
        if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
            freeReplyObject(h);
            continue;
        }
        const char *mode = ctl_field(h, "durability_mode"), *seen = ctl_field(h, "durability");
        const char *redis = ctl_field(h, "redis"); /* the primary it uses (under Sentinel, the current one) */
        printf("  %s  pid %s  updated %s%s\n    redis %s\n    durability %s: redis says %s%s\n"
               "    received %s  stored %s  duplicates %s  folded %s  nacked %s  busy %s  "
               "violations %s  inflight %s\n    routed %s  assigned %s  queued %s  moved %s  drained from queues %s\n",
               names->element[i]->str, ctl_field(h, "pid"), ctl_time(ctl_field(h, "updated_at"), t, sizeof t),
               stopped[i] ? "  stopped (its entry expires within seconds)" : "", redis ? redis : "?",
               mode ? mode : "?", seen ? seen : "?",
               mode && !strcmp(mode, "relaxed") ? "  (WARNING: relaxed: ACKs without the fsync check)" : "",
               ctl_field(h, "received"), ctl_field(h, "stored"),
               ctl_field(h, "duplicates"), ctl_field(h, "folded"), ctl_field(h, "nacked"), ctl_field(h, "busy"),
               ctl_field(h, "violations"), ctl_field(h, "inflight"), ctl_field(h, "routed"),
               ctl_field(h, "assigned"), ctl_field(h, "queued"), ctl_field(h, "moved"), ctl_field(h, "drained"));
        const char *version = ctl_field(h, "config_version"), *reload = ctl_field(h, "reload");
        printf("    configuration version %s%s%s\n", version ? version : "?", reload && *reload ? "; last reload: " : "",
               reload && *reload ? reload : "");
        const char *archive_error = ctl_field(h, "archive_error");
        printf("    archived %s%s%s\n", ctl_field(h, "archived") ? ctl_field(h, "archived") : "?",
               archive_error && *archive_error ? "  ARCHIVE FAILING (resolved conversations stay in Redis): " : "",
               archive_error && *archive_error ? archive_error : "");
        freeReplyObject(h);
    }
    free(hashes);
    free(stopped);
    freeReplyObject(names);
    redisReply *st = ctl_cmd(c, "HGETALL %s" KEY_STATS, c->prefix);
    redisReply *cu = ctl_cmd(c, "GET %s" KEY_SEQ, c->prefix, "customer");
    redisReply *cv = ctl_cmd(c, "GET %s" KEY_SEQ, c->prefix, "conversation");
    printf("stored messages %s, duplicates %s, customers %s, conversations %s\n",
           ctl_field(st, "messages") ? ctl_field(st, "messages") : "0",
           ctl_field(st, "duplicates") ? ctl_field(st, "duplicates") : "0", cu->str ? cu->str : "0",
           cv->str ? cv->str : "0");
    freeReplyObject(st);
    freeReplyObject(cu);
    freeReplyObject(cv);
    /* Routing as it stands now, from the keys the scripts change in the same step as each decision (the
     * routers' own lines above are as of their last update, once a second). */
    const policy_t *p = &c->cfg->policy;
    if (p->n_routes > 0) {
        long long held = 0, waiting = 0;
        for (size_t i = 0; i < p->n_teams; i++) {
            /* a team's load is what it holds (docs/redis.md) */
            redisReply *l = ctl_cmd(c, "SCARD %s" KEY_TEAM_CONVERSATIONS, c->prefix, p->teams[i].name);
            held += l->integer;
            freeReplyObject(l);
            for (int prio = 1; prio <= PRIO_LEVELS; prio++) {
                char level[12];
                snprintf(level, sizeof level, "%d", prio);
                redisReply *z = ctl_cmd(c, "ZCARD %s" KEY_TEAM_QUEUE, c->prefix, p->teams[i].name, level);
                waiting += z->integer;
                freeReplyObject(z);
            }
        }
        redisReply *un = ctl_cmd(c, "ZCARD %s" KEY_UNROUTED, c->prefix);
        redisReply *never = ctl_cmd(c, "SCARD %s" KEY_UNSERVABLE, c->prefix);
        redisReply *found = ctl_cmd(c, "HGET %s" KEY_STATS " unservable", c->prefix);
        printf("routing now: %lld held by teams, %lld waiting in team queues, %lld not routed yet, unservable %lld "
               "waiting (%s found in all)\n", held, waiting, un->integer, never->integer, found->str ? found->str : "0");
        freeReplyObject(un);
        freeReplyObject(never);
        freeReplyObject(found);
    }
    redisReply *q = ctl_cmd(c, "ZCARD %s" KEY_QUEUE, c->prefix, c->cfg->conversations.default_queue);
    printf("queue %s: %lld conversations waiting\n", c->cfg->conversations.default_queue, q->integer);
    freeReplyObject(q);
    webhooks_status(c, now_ms);
    return 0;
}

int ctl_webhooks(ctl_t *c, int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "enable") != 0) {
        fprintf(stderr, "omnictl: webhooks enable TEAM\n");
        return 2;
    }
    ctl_policy_partner(c, argv[1]);
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)omni_wall_ms());
    const char *args[WEBHOOK_ENABLE_NARGS];
    args[WEBHOOK_ENABLE_ARG_TEAM] = argv[1];
    args[WEBHOOK_ENABLE_ARG_BY] = ctl_actor(NULL);
    args[WEBHOOK_ENABLE_ARG_NOW] = now;
    redisReply *r = ctl_script(c, LUA_WEBHOOK_ENABLE, WEBHOOK_ENABLE_NARGS, args);
    printf(r->integer ? "webhooks %s: enabled; new deliveries are sent again\n"
                      : "webhooks %s: was not disabled\n", argv[1]);
    freeReplyObject(r);
    return 0;
}

int ctl_watch(ctl_t *c)
{
    char key[256], last[64] = "$";
    snprintf(key, sizeof key, "%s" KEY_EVENTS, c->prefix);
    printf("following %s (Ctrl-C stops)\n", key);
    fflush(stdout);
    for (;;) {
        /* blocks a second at a time, well inside the connection's 5 s read timeout */
        const char *argv[] = { "XREAD", "BLOCK", "1000", "STREAMS", key, last };
        redisReply *rep = redisCommandArgv(c->redis, 6, argv, NULL);
        if (!rep) {
            fprintf(stderr, "omnictl: redis: %s\n", c->redis->errstr);
            return 1;
        }
        if (rep->type == REDIS_REPLY_ERROR) { /* asked again at once, it would answer the same: no spinning */
            fprintf(stderr, "omnictl: redis: %s\n", rep->str);
            freeReplyObject(rep);
            return 1;
        }
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1) {
            redisReply *entries = rep->element[0]->element[1];
            for (size_t i = 0; i < entries->elements; i++) {
                redisReply *e = entries->element[i];
                snprintf(last, sizeof last, "%s", e->element[0]->str);
                redisReply *f = e->element[1];
                for (size_t j = 0; j + 1 < f->elements; j += 2)
                    printf("%s%s=%s", j ? " " : "", f->element[j]->str, f->element[j + 1]->str);
                printf("\n");
            }
            fflush(stdout);
        }
        freeReplyObject(rep);
    }
}
