/* omnictl agent, queue, explain, clock, and conversation respond|resolve: the routing engine's controls.
 * Changes go through the same Lua scripts as the router's, so they are atomic next to running routers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ctl.h"
#include "omni/util.h"
#include "policy.h"

static int script_result(redisReply *r, const char *ok_fmt)
{
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "omnictl: %s\n", r->str + (strncmp(r->str, "ERR ", 4) == 0 ? 4 : 0));
        rc = 1;
    } else if (ok_fmt) {
        printf("%s\n", ok_fmt);
    }
    freeReplyObject(r);
    return rc;
}

/* The test clock's wall time (ms) as omnictl sees it: wall clock plus the offset stored in Redis. */
static int64_t ctl_now(ctl_t *c)
{
    redisReply *r = ctl_cmd(c, "GET %s" KEY_CLOCK_OFFSET, c->prefix);
    int64_t off = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return omni_wall_ms() + off;
}

int ctl_agent(ctl_t *c, int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[0], "presence")) {
        const char *p = argv[2];
        if (strcmp(p, "available") && strcmp(p, "away") && strcmp(p, "offline")) {
            fprintf(stderr, "omnictl: presence is available, away or offline, not %s\n", p);
            return 2;
        }
        char now[24];
        snprintf(now, sizeof now, "%lld", (long long)ctl_now(c));
        const char *args[PRESENCE_NARGS] = { [PRESENCE_ARG_AGENT] = argv[1], [PRESENCE_ARG_PRESENCE] = p,
                                             [PRESENCE_ARG_NOW] = now };
        redisReply *r = ctl_script(c, LUA_PRESENCE, PRESENCE_NARGS, args);
        if (r->type == REDIS_REPLY_STRING)
            printf("agent %s: %s (was %s)\n", argv[1], p, r->str);
        return script_result(r, NULL);
    }
    if (argc == 2 && !strcmp(argv[0], "show")) {
        redisReply *h = ctl_cmd(c, "HGETALL %s" KEY_AGENT, c->prefix, argv[1]);
        printf("agent %s\n", argv[1]);
        for (size_t i = 0; i + 1 < h->elements; i += 2)
            printf("  %-18s %s\n", h->element[i]->str, h->element[i + 1]->str);
        freeReplyObject(h);
        redisReply *s = ctl_cmd(c, "SMEMBERS %s" KEY_AGENT_CONVERSATIONS, c->prefix, argv[1]);
        printf("  conversations     ");
        for (size_t i = 0; i < s->elements; i++)
            printf("%s ", s->element[i]->str);
        printf("\n");
        freeReplyObject(s);
        return 0;
    }
    fprintf(stderr, "omnictl: agent presence ID available|away|offline | agent show ID\n");
    return 2;
}

int ctl_conversation_act(ctl_t *c, const char *what, const char *conv, const char *by)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)ctl_now(c));
    /* respond and resolve take the same arguments */
    _Static_assert((int)RESPOND_NARGS == (int)RESOLVE_NARGS && (int)RESPOND_ARG_NOW == (int)RESOLVE_ARG_NOW, "same arguments");
    const char *args[RESPOND_NARGS] = { [RESPOND_ARG_CONVERSATION] = conv, [RESPOND_ARG_WHO] = ctl_actor(by),
                                        [RESPOND_ARG_NOW] = now };
    bool respond = !strcmp(what, "respond");
    redisReply *r = ctl_script(c, respond ? LUA_RESPOND : LUA_RESOLVE, RESPOND_NARGS, args);
    if (r->type == REDIS_REPLY_ARRAY && respond)
        printf("conversation %s: first response after %lld s (SLA %s)\n", conv,
               r->element[RESPOND_REPLY_MS]->integer / 1000, r->element[RESPOND_REPLY_OUTCOME]->str);
    else if (r->type == REDIS_REPLY_ARRAY)
        printf("conversation %s resolved%s%s\n", conv, *r->element[RESOLVE_REPLY_OWNER]->str ? "; freed " : "",
               r->element[RESOLVE_REPLY_OWNER]->str);
    return script_result(r, NULL);
}

int ctl_queue(ctl_t *c, int argc, char **argv)
{
    const policy_t *p = &c->cfg->policy;
    for (size_t i = 0; i < p->n_teams; i++) {
        const char *team = p->teams[i].name;
        if (argc > 0 && strcmp(argv[0], team))
            continue;
        redisReply *h = ctl_cmd(c, "HMGET %s" KEY_TEAM " load assigned", c->prefix, team);
        printf("team %s (%s): holding %s, assigned in all %s\n", team,
               p->teams[i].kind == TEAM_OUTSOURCED ? "outsourced" : "in-house",
               h->element[0]->str ? h->element[0]->str : "0", h->element[1]->str ? h->element[1]->str : "0");
        freeReplyObject(h);
        for (int prio = 1; prio <= PRIO_LEVELS; prio++) {
            char level[12];
            snprintf(level, sizeof level, "%d", prio);
            redisReply *q = ctl_cmd(c, "ZRANGE %s" KEY_TEAM_QUEUE " 0 -1", c->prefix, team, level);
            if (q->elements) {
                printf("  waiting, %-6s: conversations", policy_priority_name(prio));
                for (size_t j = 0; j < q->elements; j++)
                    printf(" %s", q->element[j]->str);
                printf("\n");
            }
            freeReplyObject(q);
        }
    }
    return 0;
}

static void print_decision(json_t *d, int n)
{
    char t[40];
    json_t *plan = json_object_get(d, "plan");
    printf("decision %d at %s: %s\n", n, omni_rfc3339(json_integer_value(json_object_get(d, "at")), t, sizeof t),
           json_string_value(json_object_get(d, "reason")));
    json_t *by = json_object_get(plan, "classified_by");
    printf("  classified: category %s, priority %s, tier %s", json_string_value(json_object_get(d, "category")),
           policy_priority_name((int)json_integer_value(json_object_get(d, "prio"))),
           json_string_value(json_object_get(d, "tier")));
    if (json_array_size(by)) {
        printf(" (rules:");
        size_t i;
        json_t *v;
        json_array_foreach(by, i, v) printf(" %s", json_string_value(v));
        printf(")");
    }
    printf("\n");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(plan, "rules_tried"), i, v)
        printf("  rule %s does not apply: %s\n", json_string_value(json_object_get(v, "rule")),
               json_string_value(json_object_get(v, "failed")));
    const char *rule = json_string_value(json_object_get(d, "rule"));
    printf("  rule %s\n", rule ? rule : "(none matched: default queue)");
    json_array_foreach(json_object_get(plan, "targets"), i, v) {
        const char *why = json_string_value(json_object_get(v, "skipped"));
        printf("  target %lld, team %s: %s\n", json_integer_value(json_object_get(v, "target")),
               json_string_value(json_object_get(v, "team")), why ? why : "considered");
        const char *id;
        json_t *reason;
        json_object_foreach(json_object_get(v, "agents_skipped"), id, reason)
            printf("    agent %s passed over: %s\n", id, json_string_value(reason));
    }
    json_array_foreach(json_object_get(d, "tried"), i, v) {
        const char *why = json_string_value(json_object_get(v, "skipped"));
        const char *id;
        json_t *reason;
        json_object_foreach(json_object_get(v, "agents"), id, reason)
            printf("    now: agent %s passed over: %s\n", id, json_string_value(reason));
        if (why)
            printf("  now: team %s passed over: %s\n", json_string_value(json_object_get(v, "team")), why);
    }
    const char *outcome = json_string_value(json_object_get(d, "outcome"));
    if (outcome && !strcmp(outcome, "assigned"))
        printf("  => assigned to %s\n", json_string_value(json_object_get(d, "owner")));
    else
        printf("  => queued on %s\n", json_string_value(json_object_get(d, "queue")));
}

int ctl_explain(ctl_t *c, const char *id)
{
    redisReply *m = ctl_cmd(c, "HMGET %s" KEY_MSG " conversation identity channel", c->prefix, id);
    if (!m->element[0]->str) {
        printf("message %s: not stored\n", id);
        freeReplyObject(m);
        return 1;
    }
    char conv[64];
    snprintf(conv, sizeof conv, "%s", m->element[0]->str);
    printf("message %s: %s from %s, in conversation %s\n", id, m->element[2]->str, m->element[1]->str, conv);
    freeReplyObject(m);
    redisReply *f = ctl_cmd(c, "HMGET %s" KEY_MSG " folded_into", c->prefix, id);
    if (f->element[0]->str)
        printf("  folded: a near-duplicate of %s, not routed again\n", f->element[0]->str);
    freeReplyObject(f);
    redisReply *ds = ctl_cmd(c, "LRANGE %s" KEY_CONVERSATION_DECISIONS " 0 -1", c->prefix, conv);
    if (ds->elements == 0)
        printf("  no routing decision recorded (no routing rules, or not routed yet)\n");
    for (size_t i = 0; i < ds->elements; i++) {
        json_error_t e;
        json_t *d = json_loads(ds->element[i]->str, 0, &e);
        if (d)
            print_decision(d, (int)i + 1);
        json_decref(d);
    }
    freeReplyObject(ds);
    return 0;
}

int ctl_clock(ctl_t *c, int argc, char **argv)
{
    long long d = argc == 2 && !strcmp(argv[0], "advance") ? ctl_duration(argv[1]) : -1;
    if (d < 0) {
        fprintf(stderr, "omnictl: clock advance DURATION (e.g. 90s, 15m, 2h); routers must run with "
                        "OMNIROUTER_TEST_CLOCK=1\n");
        return 2;
    }
    redisReply *r = ctl_cmd(c, "INCRBY %s" KEY_CLOCK_OFFSET " %lld", c->prefix, d);
    printf("test clock offset now %lld ms\n", r->integer);
    freeReplyObject(r);
    return 0;
}
