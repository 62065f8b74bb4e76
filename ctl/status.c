/* omnictl status and watch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "omni/util.h"
#include "policy.h"

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
    for (size_t i = 0; i < n; i++) {
        hashes[i] = ctl_cmd(c, "HGETALL %s" KEY_ROUTER, c->prefix, names->element[i]->str);
        alive += hashes[i]->type == REDIS_REPLY_ARRAY && hashes[i]->elements > 0; /* else expired meanwhile */
    }
    printf("routers: %zu alive\n", alive);
    for (size_t i = 0; i < n; i++) {
        redisReply *h = hashes[i];
        if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
            freeReplyObject(h);
            continue;
        }
        const char *mode = ctl_field(h, "durability_mode"), *seen = ctl_field(h, "durability");
        printf("  %s  pid %s  updated %s\n    durability %s: redis says %s%s\n"
               "    received %s  stored %s  duplicates %s  folded %s  nacked %s  busy %s  "
               "violations %s  inflight %s\n    routed %s  assigned %s  queued %s  moved %s  drained from queues %s\n",
               names->element[i]->str, ctl_field(h, "pid"), ctl_time(ctl_field(h, "updated_at"), t, sizeof t),
               mode ? mode : "?", seen ? seen : "?",
               mode && !strcmp(mode, "relaxed") ? "  (WARNING: relaxed: ACKs without the fsync check)" : "",
               ctl_field(h, "received"), ctl_field(h, "stored"),
               ctl_field(h, "duplicates"), ctl_field(h, "folded"), ctl_field(h, "nacked"), ctl_field(h, "busy"),
               ctl_field(h, "violations"), ctl_field(h, "inflight"), ctl_field(h, "routed"),
               ctl_field(h, "assigned"), ctl_field(h, "queued"), ctl_field(h, "moved"), ctl_field(h, "drained"));
        const char *version = ctl_field(h, "config_version"), *reload = ctl_field(h, "reload");
        printf("    configuration version %s%s%s\n", version ? version : "?", reload && *reload ? "; last reload: " : "",
               reload && *reload ? reload : "");
        freeReplyObject(h);
    }
    free(hashes);
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
            redisReply *l = ctl_cmd(c, "HGET %s" KEY_TEAM " load", c->prefix, p->teams[i].name);
            held += l->str ? strtoll(l->str, NULL, 10) : 0;
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
