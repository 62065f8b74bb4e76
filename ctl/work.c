/* omnictl agent, queue, explain, clock, and conversation respond|resolve|survey: the routing engine's controls.
 * Changes go through the same Lua scripts as the router's, so they are atomic next to running routers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ctl.h"
#include "decision_record.h"
#include "omni/util.h"
#include "policy.h"
#include "survey.h"

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

int64_t ctl_now(ctl_t *c)
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
        ctl_policy_agent(c, argv[1]);
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
        ctl_policy_agent(c, argv[1]);
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
    _Static_assert((int)RESPOND_NARGS == (int)RESOLVE_NARGS && (int)RESPOND_ARG_NOW == (int)RESOLVE_ARG_NOW &&
                       (int)RESPOND_REPLY_OUTCOME == (int)RESOLVE_REPLY_OUTCOME, "same arguments");
    char caller[160];
    snprintf(caller, sizeof caller, "operator:%s", ctl_actor(by)); /* omnictl is an operator's tool */
    const char *args[RESPOND_NARGS] = { [RESPOND_ARG_CALLER] = caller, [RESPOND_ARG_CONVERSATION] = conv,
                                        [RESPOND_ARG_WHO] = ctl_actor(by), [RESPOND_ARG_NOW] = now };
    bool respond = !strcmp(what, "respond");
    redisReply *r = ctl_script(c, respond ? LUA_RESPOND : LUA_RESOLVE, RESPOND_NARGS, args);
    /* both answer their outcome first */
    const char *outcome = r->type == REDIS_REPLY_ARRAY ? r->element[RESPOND_REPLY_OUTCOME]->str : "";
    if (!strcmp(outcome, "not found") || !strcmp(outcome, "closed")) {
        fprintf(stderr, "omnictl: conversation %s: %s\n", conv,
                outcome[0] == 'n' ? "no such conversation" : "resolved or merged already");
        freeReplyObject(r);
        return 1;
    }
    if (r->type == REDIS_REPLY_ARRAY && respond)
        printf("conversation %s: first response after %lld s (SLA %s)\n", conv,
               r->element[RESPOND_REPLY_MS]->integer / 1000, outcome);
    else if (r->type == REDIS_REPLY_ARRAY)
        printf("conversation %s resolved%s%s\n", conv, *r->element[RESOLVE_REPLY_OWNER]->str ? "; freed " : "",
               r->element[RESOLVE_REPLY_OWNER]->str);
    return script_result(r, NULL);
}

/* conversation survey ID [--csat N] [--ces N] [--nps N] [--by WHO]: a survey's answer (survey.lua). argv: after
 * "survey". */
int ctl_conversation_survey(ctl_t *c, int argc, char **argv)
{
    static const char usage[] = "omnictl: conversation survey ID [--csat 1..5] [--ces 1..7] [--nps 0..10] "
                                "[--by WHO] (at least one score)\n";
    const char *score[SURVEY_MEASURES] = { "", "", "" }, *by = NULL;
    bool any = false;
    if (argc < 1 || argc % 2 == 0)
        return fputs(usage, stderr), 2;
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--by")) {
            if (by) /* which one was meant? */
                return fprintf(stderr, "omnictl: conversation survey: --by given twice\n"), 2;
            by = argv[i + 1];
            continue;
        }
        int m = -1;
        for (int k = 0; k < SURVEY_MEASURES; k++)
            if (!strncmp(argv[i], "--", 2) && !strcmp(argv[i] + 2, survey_measures[k].name))
                m = k;
        if (m < 0) {
            fprintf(stderr, "omnictl: conversation survey: %s is not an option (--csat, --ces, --nps, --by)\n",
                    argv[i]);
            return 2;
        }
        if (survey_score(m, argv[i + 1]) < 0) {
            fprintf(stderr, "omnictl: conversation survey: --%s is %d..%d, not \"%.20s\"\n", survey_measures[m].name,
                    survey_measures[m].min, survey_measures[m].max, argv[i + 1]);
            return 2;
        }
        if (*score[m]) /* which one was meant? the API refuses a repeated field too */
            return fprintf(stderr, "omnictl: conversation survey: --%s given twice\n", survey_measures[m].name), 2;
        score[m] = argv[i + 1];
        any = true;
    }
    if (!any)
        return fputs(usage, stderr), 2;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)ctl_now(c));
    const char *args[SURVEY_NARGS] = { [SURVEY_ARG_CONVERSATION] = argv[0], [SURVEY_ARG_WHO] = ctl_actor(by),
                                       [SURVEY_ARG_NOW] = now, [SURVEY_ARG_CSAT] = score[SURVEY_CSAT],
                                       [SURVEY_ARG_CES] = score[SURVEY_CES], [SURVEY_ARG_NPS] = score[SURVEY_NPS] };
    redisReply *r = ctl_script(c, LUA_SURVEY, SURVEY_NARGS, args);
    if (r->type != REDIS_REPLY_ARRAY)
        return script_result(r, NULL);
    const char *outcome = r->element[SURVEY_REPLY_OUTCOME]->str, *detail = r->element[SURVEY_REPLY_DETAIL]->str;
    int rc = 0;
    if (!strcmp(outcome, "recorded"))
        printf("conversation %s: survey recorded\n", argv[0]);
    else if (!strcmp(outcome, "already"))
        printf("conversation %s: survey recorded already (the same scores)\n", argv[0]);
    else if (!strcmp(outcome, "not found"))
        fprintf(stderr, "omnictl: conversation %s: no such conversation (or archived, or being archived)\n",
                argv[0]), rc = 1;
    else if (!strcmp(outcome, "not resolved"))
        fprintf(stderr, "omnictl: conversation %s: not resolved (a survey is of a resolved conversation)\n", argv[0]),
            rc = 1;
    else
        fprintf(stderr, "omnictl: conversation %s: surveyed already with %s; a score is recorded once\n", argv[0],
                detail), rc = 1;
    freeReplyObject(r);
    return rc;
}

/* A span of seconds as a person reads it: "45 s", "12 min", "2 h 5 min". */
static const char *span(long long s, char *buf, size_t sz)
{
    if (s < 60)
        snprintf(buf, sz, "%lld s", s);
    else if (s < 3600)
        snprintf(buf, sz, "%lld min", s / 60);
    else if (s % 3600 >= 60)
        snprintf(buf, sz, "%lld h %lld min", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, sz, "%lld h", s / 3600);
    return buf;
}

/* A live reason (find_owner in daemon/lua/_owners.lua writes them short, once per decision) in words a person
 * reads next to the static ones. Unknown wording is shown as it is. */
static const char *say_live(const char *why, char *buf, size_t sz)
{
    long long a, b;
    char x[32], y[32];
    if (sscanf(why, "queue %lld >= %lld", &a, &b) == 2)
        snprintf(buf, sz, "queue holds %lld, at or over queue_below %lld: new work overflows past it", a, b);
    else if (sscanf(why, "predicted wait %lld s >= %lld s", &a, &b) == 2)
        snprintf(buf, sz, "predicted wait %s, at or over wait_below %s: new work overflows past it",
                 span(a, x, sizeof x), span(b, y, sizeof y));
    else if (sscanf(why, "contract: %lld of %lld concurrent", &a, &b) == 2)
        snprintf(buf, sz, "contract: holds %lld of the %lld it may hold at once (max_concurrent)", a, b);
    else if (sscanf(why, "contract: daily quota %lld reached", &a) == 1)
        snprintf(buf, sz, "contract: daily quota of %lld used up today", a);
    else if (!strcmp(why, "no agent available with capacity"))
        snprintf(buf, sz, "no agent free now");
    else
        snprintf(buf, sz, "%s", why);
    return buf;
}

/* A string field, "" when missing (records from older versions lack some). */
static const char *str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}
static long long int_of(json_t *o, const char *key) { return json_integer_value(json_object_get(o, key)); }

/* Whether team could take a waiting item, by the item's plan (its targets are the teams that may take it;
 * its trace says why each other team of its rule may not). Returns NULL when team is among its targets, else
 * the reason (borrowed from plan) and *never: true when no hour of the day changes it. */
static const char *queue_refusal(json_t *plan, const char *team, bool *never)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(plan, "targets"), i, v) if (!strcmp(str_of(v, "team"), team)) return NULL;
    const char *why = NULL;
    *never = true;
    json_array_foreach(json_object_get(json_object_get(plan, "trace"), "targets"), i, v)
        if (!strcmp(str_of(v, "team"), team) && json_string_value(json_object_get(v, "skipped"))) {
            why = str_of(v, "skipped"); /* the last entry: a queue team re-added after a move is tried last */
            *never = !json_is_false(json_object_get(v, "never"));
        }
    return why ? why : "not a target of its rule (it only waits here)";
}

/* One team's queues for a person: the work it could take, by priority; the work waiting here that it cannot
 * take, with the reason (not now: it is closed; never: skills, languages, contract); work nobody can ever
 * take, flagged; and work waiting on other teams' queues that it could take. */
static void print_team_queue(ctl_t *c, const team_t *team)
{
    const policy_t *p = &c->cfg->policy;
    /* a team's load is what it holds (docs/redis.md): its conversations set */
    redisReply *held = ctl_cmd(c, "SCARD %s" KEY_TEAM_CONVERSATIONS, c->prefix, team->name);
    redisReply *h = ctl_cmd(c, "HGET %s" KEY_TEAM " assigned", c->prefix, team->name);
    printf("team %s (%s): holding %lld, assigned in all %s\n", team->name,
           team->kind == TEAM_OUTSOURCED ? "outsourced" : "in-house", held->integer, h->str ? h->str : "0");
    freeReplyObject(held);
    freeReplyObject(h);
    for (int prio = 1; prio <= PRIO_LEVELS; prio++) {
        char level[12];
        snprintf(level, sizeof level, "%d", prio);
        redisReply *q = ctl_cmd(c, "ZRANGE %s" KEY_TEAM_QUEUE " 0 -1", c->prefix, team->name, level);
        json_t **plans = omni_calloc(q->elements + 1, sizeof *plans);
        bool listed = false;
        for (size_t j = 0; j < q->elements; j++) { /* first the work this team can take */
            redisReply *raw = ctl_cmd(c, "HGET %s" KEY_CONVERSATION " plan", c->prefix, q->element[j]->str);
            plans[j] = raw->str ? json_loads(raw->str, 0, NULL) : NULL;
            freeReplyObject(raw);
            bool never;
            if (plans[j] && (queue_refusal(plans[j], team->name, &never) || json_object_get(plans[j], "unservable")))
                continue; /* listed below, with why */
            if (!listed)
                printf("  waiting, %s: conversations", policy_priority_name(prio));
            printf(" %s", q->element[j]->str);
            listed = true;
        }
        if (listed)
            printf("\n");
        for (size_t j = 0; j < q->elements; j++) { /* then what waits here that it cannot take, and why */
            bool never = false;
            const char *why = plans[j] ? queue_refusal(plans[j], team->name, &never) : NULL;
            /* flagged unservable (by plan.c, or by the decision that found every target declined it) */
            const char *nobody = plans[j] ? json_string_value(json_object_get(plans[j], "unservable")) : NULL;
            if (!why && nobody)
                why = nobody, never = true;
            if (why)
                printf("  waiting here, %s: conversation %s, which %s %s: %s\n", policy_priority_name(prio),
                       q->element[j]->str, team->name, never ? "can never take" : "cannot take now", why);
            if (nobody)
                printf("    UNSERVABLE: nobody can ever take it with this policy: %s\n", nobody);
            json_decref(plans[j]);
        }
        free(plans);
        freeReplyObject(q);
    }
    /* Work on other teams' queues whose plan names this team: their drains offer it here too. The queue's
     * info hash lists each item's target keys ("team|index|channel|agents"), so no plan is read. */
    for (size_t i = 0; i < p->n_teams; i++) {
        if (&p->teams[i] == team)
            continue;
        redisReply *info = ctl_cmd(c, "HGETALL %s" KEY_TEAM_QUEUE_INFO, c->prefix, p->teams[i].name);
        bool listed = false;
        for (size_t j = 0; j + 1 < info->elements; j += 2) {
            char *rest = info->element[j + 1]->str, *save = NULL;
            bool here = false;
            int field = 0;
            for (char *w = strtok_r(rest, " ", &save); w; w = strtok_r(NULL, " ", &save), field++) {
                size_t len = strcspn(w, "|");
                here |= field >= 2 && len == strlen(team->name) && !strncmp(w, team->name, len);
            }
            if (!here)
                continue;
            if (!listed)
                printf("  waiting on %s's queue, which %s can take too: conversations", p->teams[i].name, team->name);
            printf(" %s", info->element[j]->str);
            listed = true;
        }
        if (listed)
            printf("\n");
        freeReplyObject(info);
    }
}

int ctl_queue(ctl_t *c, int argc, char **argv)
{
    const policy_t *p = &c->cfg->policy;
    bool found = false;
    for (size_t i = 0; i < p->n_teams; i++) {
        if (argc > 0 && strcmp(argv[0], p->teams[i].name))
            continue;
        found = true;
        print_team_queue(c, &p->teams[i]);
    }
    if (argc > 0 && !found) {
        fprintf(stderr, "omnictl: queue %s: no such team in the configuration\n", argv[0]);
        return 1;
    }
    redisReply *n = ctl_cmd(c, "SCARD %s" KEY_UNSERVABLE, c->prefix);
    redisReply *all = ctl_cmd(c, "HGET %s" KEY_STATS " unservable", c->prefix);
    if (argc == 0 || n->integer > 0)
        printf("unservable: %lld waiting that no target of their rule can ever take (%s found in all)\n",
               n->integer, all->str ? all->str : "0");
    freeReplyObject(n);
    freeReplyObject(all);
    return 0;
}


/* When a decision's plan was made: its trace says (plans before that field: the decision's own time). */
static long long planned_at(json_t *d)
{
    json_t *at = json_object_get(json_object_get(d, "plan"), "planned_at");
    return at ? json_integer_value(at) : int_of(d, "at");
}

/* The live half of one target: what find_owner found when it tried it (agents, then the team). */
static void print_tried(json_t *v, bool took)
{
    char buf[256];
    const char *id;
    json_t *reason;
    json_object_foreach(json_object_get(v, "agents"), id, reason) /* id: reason (records before agents_why) */
        printf("    now: agent %s: %s\n", id, say_live(json_string_value(reason), buf, sizeof buf));
    json_t *group, *agent;
    size_t i, j;
    json_array_foreach(json_object_get(v, "agents_why"), i, group) { /* [[why, id, id...], ...] */
        const char *why_text = json_string_value(json_array_get(group, 0));
        json_array_foreach(group, j, agent) if (j > 0 && why_text && json_is_string(agent))
            printf("    now: agent %s: %s\n", json_string_value(agent), say_live(why_text, buf, sizeof buf));
    }
    const char *why = json_string_value(json_object_get(v, "skipped"));
    if (why)
        printf("    now: %s\n", say_live(why, buf, sizeof buf));
    else if (took)
        printf("    now: takes it\n");
}

/* True when every target in the trace refuses the work at any hour: nobody can ever take it. */
static bool never_served(json_t *trace_targets)
{
    size_t i;
    json_t *v;
    json_array_foreach(trace_targets, i, v) if (!json_is_true(json_object_get(v, "never"))) return false;
    return json_array_size(trace_targets) > 0;
}

/* Why work left its owner, for a person: a decision's reason (due.lua's kinds; a reroute's own words else).
 * A timeout moves on to the rule's next target; past its last one the work goes back to the rule's queue team
 * (docs/routing.md, Queues): next says whether the plan had a target after the one left. */
static const char *moved_because(const char *reason, bool next)
{
    static const char *const said[][2] = {
        { "escalation", "escalated: its SLA's escalation time passed" },
        { "rejected", "rejected by its owner" },
        { "offer expired", "the offer was not accepted in time" },
        { "offer revoked", "the offer was revoked" },
        { "owner offline", "its owner went offline" },
        { "dead letter", "the partner's webhook deliveries failed (dead letter)" },
        { "transfer", "transferred" },
    };
    if (!strcmp(reason, "timeout"))
        return next ? "its target's timeout passed; the next target's turn"
                    : "its target's timeout passed; it was the rule's last target: back to the rule's queue team";
    for (size_t i = 0; i < sizeof said / sizeof said[0]; i++)
        if (!strcmp(reason, said[i][0]))
            return said[i][1];
    return reason;
}

/* The team a transfer gave the work to when owner got it there: the latest decision before ds[n] that assigned
 * it to owner, when that one was planned for a transfer (its target index then is no target of the rule: a
 * transfer is planned for that team only, whichever rule matched). NULL otherwise. */
static const char *transferred_to(json_t *ds, size_t n, const char *owner)
{
    while (n-- > 0) {
        json_t *d = json_array_get(ds, n);
        if (!strcmp(str_of(d, "outcome"), "assigned") && !strcmp(str_of(d, "owner"), owner))
            return json_string_value(json_object_get(json_object_get(d, "plan"), "transfer_to"));
    }
    return NULL;
}

/* One decision (ds[n]) for a person: each target with its static reasons (the plan's trace, made by plan.c
 * when the plan was made) and under them its live ones (the decision's `tried`, made by the script when it
 * decided). ds: every decision of the conversation, to say which plan a drain used and which plan a
 * re-plan replaced. */
static void print_decision(json_t *ds, size_t n)
{
    char t[40], t2[40];
    json_t *d = json_array_get(ds, n), *plan = json_object_get(d, "plan");
    long long at = int_of(d, "at"), made = planned_at(d);
    printf("decision %zu at %s: %s\n", n + 1, omni_rfc3339(at, t, sizeof t), str_of(d, "reason"));
    if (made != at) { /* a drain decides by the plan made earlier */
        size_t k = n;
        while (k > 0 && !(planned_at(json_array_get(ds, k - 1)) == made &&
                          strcmp(str_of(json_array_get(ds, k - 1), "reason"), "capacity freed")))
            k--;
        printf("  by the plan made at %s", omni_rfc3339(made, t, sizeof t));
        if (k > 0)
            printf(" (decision %zu, %s)", k, str_of(json_array_get(ds, k - 1), "reason"));
        printf(": the static reasons below are as of then\n");
    }
    for (size_t j = n + 1; j < json_array_size(ds); j++) {
        json_t *later = json_array_get(ds, j);
        if (planned_at(later) <= made)
            continue;
        if (!strcmp(str_of(later, "reason"), "replan"))
            printf("  planned at %s, re-planned at %s (decision %zu): what follows is the plan before that\n",
                   omni_rfc3339(made, t, sizeof t), omni_rfc3339(planned_at(later), t2, sizeof t2), j + 1);
        break;
    }
    json_t *left = json_object_get(plan, "left");
    /* the rule the work was under before this decision, when another matches now (plan.c): the move starts at
     * the new rule's first target, so "the next target" of the old one means nothing here */
    const char *before = json_string_value(json_object_get(plan, "rule_before"));
    if (left && made == at) { /* the owner the work was taken from, and why (not a drain's: its plan is older) */
        long long from = int_of(left, "target");
        const char *there = transferred_to(ds, n, str_of(left, "owner"));
        bool next = false; /* a target after the one it left, in this plan */
        size_t k;
        json_t *tv;
        json_array_foreach(json_object_get(plan, "targets"), k, tv) next |= int_of(tv, "target") > from;
        printf("  moved from %s", str_of(left, "owner"));
        if (there)
            printf(" (team %s, which it was transferred to)", there);
        else if (from >= 0 && before)
            printf(" (target %lld of rule %s)", from, before);
        else if (from >= 0)
            printf(" (target %lld)", from);
        printf(": %s\n", before && !strcmp(str_of(d, "reason"), "timeout") ? "its target's timeout passed"
                                                                         : moved_because(str_of(d, "reason"), next));
    }
    json_t *by = json_object_get(plan, "classified_by");
    printf("  classified: category %s, priority %s, tier %s", str_of(d, "category"),
           policy_priority_name((int)int_of(d, "prio")), str_of(d, "tier"));
    if (json_array_size(by)) {
        printf(" (rules:");
        size_t i;
        json_t *v;
        json_array_foreach(by, i, v) printf("%s %s", i ? "," : "", json_string_value(v));
        printf(")");
    }
    printf("\n");
    size_t i, j;
    json_t *v, *w;
    json_array_foreach(json_object_get(plan, "rules_tried"), i, v)
        printf("  rule %s does not apply: %s\n", str_of(v, "rule"), str_of(v, "failed"));
    const char *rule = str_of(d, "rule");
    if (!strcmp(str_of(d, "outcome"), "recorded")) { /* a rule with record: true (docs/routing.md) */
        printf("  rule %s\n  => recorded, not work: rule %s has record: true, so the conversation was stored resolved "
               "at once (resolved_by %s), offered to nobody\n", rule, rule, str_of(d, "resolved_by"));
        return;
    }
    if (json_object_get(plan, "not_recorded"))
        printf("  rule %s would record it, but %lld messages were in the conversation when it was decided: work\n",
               str_of(plan, "record"), int_of(plan, "not_recorded"));
    /* a transfer is planned for the named team only, whichever rule matched, and so is every later move of the
     * work while that team has it (docs/routing.md, Offers) */
    const char *to = json_string_value(json_object_get(plan, "transfer_to"));
    if (to && !strcmp(str_of(d, "reason"), "transfer"))
        printf("  rule %s (not tried: a transfer is planned for team %s only)\n", *rule ? rule : "(none matched)", to);
    else if (to)
        printf("  rule %s (not tried: work transferred to team %s is planned for that team only)\n",
               *rule ? rule : "(none matched)", to);
    else if (before && *rule)
        printf("  rule %s (the work was under rule %s, which no longer applies: this move starts at rule %s's first "
               "target)\n", rule, before, rule);
    else
        printf("  rule %s\n", *rule ? rule : "(none matched: default queue)");
    bool assigned = !strcmp(str_of(d, "outcome"), "assigned");
    json_t *targets = json_object_get(plan, "targets"), *tried = json_object_get(d, "tried");
    size_t n_tried = json_is_array(tried) ? json_array_size(tried) : 0; /* a re-plan tries nothing: {} */
    json_array_foreach(targets, i, v) {
        long long index = int_of(v, "target");
        const char *why = json_string_value(json_object_get(v, "skipped"));
        if (to) /* its index is the team's place in the rule, or past the rule's end: no target of it */
            printf("  team %s, which it was transferred to: ", str_of(v, "team"));
        else
            printf("  target %lld, team %s: ", index, str_of(v, "team"));
        if (!why && json_is_true(json_object_get(v, "declined")))
            printf("cannot take it now: gave this conversation back (rejected it, or its webhook deliveries failed)\n");
        else if (!why)
            printf("eligible\n");
        else if (json_is_true(json_object_get(v, "never")))
            printf("cannot take it at any hour: %s\n", why);
        else if (json_object_get(v, "never"))
            printf("cannot take it now: %s\n", why);
        else
            printf("skipped: %s\n", why);
        const char *id;
        json_t *reason;
        json_object_foreach(json_object_get(v, "agents_skipped"), id, reason)
            printf("    agent %s: %s\n", id, json_string_value(reason));
        bool last = true; /* the live lines go under the last trace entry of this target (a re-added queue team) */
        json_array_foreach(targets, j, w) if (j > i && int_of(w, "target") == index) last = false;
        for (j = 0; last && j < n_tried; j++) {
            w = json_array_get(tried, j);
            if (int_of(w, "target") == index)
                print_tried(w, assigned && j + 1 == n_tried);
        }
    }
    for (j = 0; j < n_tried; j++) { /* tried but not in the trace (a record from an older version) */
        w = json_array_get(tried, j);
        bool shown = false;
        json_array_foreach(targets, i, v) shown |= int_of(v, "target") == int_of(w, "target");
        if (!shown) {
            printf("  target %lld, team %s:\n", int_of(w, "target"), str_of(w, "team"));
            print_tried(w, assigned && j + 1 == n_tried);
        }
    }
    if (!strcmp(str_of(d, "reason"), "replan"))
        printf("  re-planned: nothing tried now; the next drain serves it in the serving order\n");
    if (assigned && json_object_get(d, "offer_expires_at")) { /* an offer (docs/delivery.md) */
        char until[40];
        omni_rfc3339(int_of(d, "offer_expires_at"), until, sizeof until);
        printf("  => assigned to %s as an offer, open until %s\n", str_of(d, "owner"), until);
        return;
    }
    if (assigned) {
        printf("  => assigned to %s\n", str_of(d, "owner"));
        return;
    }
    printf("  => queued on %s\n", str_of(d, "queue"));
    const char *moved = json_string_value(json_object_get(plan, "waits_on_because"));
    if (moved) /* the rule's queue team could never take it: it waits where it can be served */
        printf("  waits on %s: %s\n", str_of(plan, "waits_on"), moved);
    if (never_served(targets) && to) /* planned for that team only, not by the rule's targets */
        printf("  nobody can ever take it with this policy: team %s, which it was transferred to, cannot, at any "
               "hour\n", to);
    else if (never_served(targets))
        printf("  nobody can ever take it with this policy: no target of rule %s can, at any hour\n", rule);
}

int ctl_explain(ctl_t *c, const char *id)
{
    redisReply *m = ctl_cmd(c, "HMGET %s" KEY_MSG " conversation identity channel", c->prefix, id);
    if (!m->element[0]->str) {
        /* archived: its seen marker, while it lasts, names the conversation it went with (docs/archive.md) */
        redisReply *seen = ctl_cmd(c, "GET %s" KEY_SEEN, c->prefix, id);
        if (seen->type == REDIS_REPLY_STRING)
            fprintf(stderr, "message %s: archived with conversation %s; its decisions are in the archive (omnictl "
                    "conversation show %s says where)\n", id, seen->str, seen->str);
        else
            fprintf(stderr, "message %s: not stored\n", id);
        freeReplyObject(seen);
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
    /* a follow-up's message is the router's own: say whose follow-up it is (docs/routing.md "Follow-ups") */
    redisReply *fu = ctl_cmd(c, "HGET %s" KEY_CONVERSATION " follow_up_of", c->prefix, conv);
    if (fu->type == REDIS_REPLY_STRING)
        printf("  the follow-up of conversation %s, written by the router when it fell due; routed as new work\n",
               fu->str);
    freeReplyObject(fu);
    redisReply *r = ctl_cmd(c, "LRANGE %s" KEY_CONVERSATION_DECISIONS " 0 -1", c->prefix, conv);
    json_t *ds = json_array();
    for (size_t i = 0; i < r->elements; i++) {
        json_error_t e;
        json_t *d = json_loads(r->element[i]->str, 0, &e);
        decision_record_complete(d);
        if (json_is_object(d))
            json_array_append(ds, d);
        else
            fprintf(stderr, "omnictl: conversation %s: decision %zu cannot be read: %s\n", conv, i + 1, e.text);
        json_decref(d);
    }
    freeReplyObject(r);
    if (json_array_size(ds) == 0)
        printf("  no routing decision recorded (no routing rules, or not routed yet)\n");
    for (size_t i = 0; i < json_array_size(ds); i++)
        print_decision(ds, i);
    json_decref(ds);
    /* A link merges a conversation into its customer's oldest open one without a decision: it leaves its owner
     * or its queue then (docs/redis.md, "Customers and links"), so its last decision is not where it is now. */
    redisReply *mg = ctl_cmd(c, "HMGET %s" KEY_CONVERSATION " status merged_into", c->prefix, conv);
    if (mg->element[0]->str && !strcmp(mg->element[0]->str, "merged") && mg->element[1]->str)
        printf("merged into conversation %s by a customer link, no decision: it left its owner or its queue then, "
               "and its work goes on there (omnictl conversation show %s)\n", mg->element[1]->str,
               mg->element[1]->str);
    freeReplyObject(mg);
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
    /* Under the same switch as the routers: an offset written beside routers on the real clock would move the
     * API's and views' time (offers no longer acceptable) but not the routers' (never re-routed meanwhile). */
    const char *on = getenv("OMNIROUTER_TEST_CLOCK");
    if (!on || strcmp(on, "1")) {
        fprintf(stderr, "omnictl: clock: the test clock is for tests: set OMNIROUTER_TEST_CLOCK=1, as the routers it "
                        "moves were started with\n");
        return 2;
    }
    redisReply *r = ctl_cmd(c, "INCRBY %s" KEY_CLOCK_OFFSET " %lld", c->prefix, d);
    printf("test clock offset now %lld ms\n", r->integer);
    freeReplyObject(r);
    return 0;
}
