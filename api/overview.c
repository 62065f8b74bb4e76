/* GET /v1/overview: the supervisor's figures (docs/api.md "Overview"). The per-team gauges come from the very
 * script the router's /metrics reads them with (metrics.lua, given the same teams in the same order), so both
 * show the same numbers by construction; the rest (work at SLA risk, agents, partners' quotas, volume per
 * channel and minute, recent decisions) is overview.lua. Which teams, agents and contracts there are is the
 * router's policy, read from overview.router_config at start. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "console.h"
#include "decision_record.h"
#include "omni/log.h"
#include "omni/util.h"
#include "plan.h"
#include "scripts.h"

/* metrics.lua's pairs as an object name -> number. */
static json_t *gauges(api_req_t *req, const policy_t *p)
{
    const char **argv = omni_calloc(METRICS_NARGS + p->n_teams, sizeof *argv);
    for (size_t i = 0; i < p->n_teams; i++)
        argv[METRICS_NARGS + i] = p->teams[i].name;
    redisReply *r = api_script(req, LUA_METRICS, (int)(METRICS_NARGS + p->n_teams), argv);
    free(argv);
    if (!r)
        return NULL;
    json_t *g = json_object();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        json_object_set_new(g, r->element[i]->str, json_integer(strtoll(r->element[i + 1]->str, NULL, 10)));
    freeReplyObject(r);
    return g;
}

static json_int_t num(json_t *obj, const char *fmt, const char *a, const char *b)
{
    char name[256];
    snprintf(name, sizeof name, fmt, a, b);
    return json_integer_value(json_object_get(obj, name));
}

static json_t *teams(const policy_t *p, json_t *g, json_t *extra, int64_t now)
{
    json_t *out = json_array();
    for (size_t i = 0; i < p->n_teams; i++) {
        const char *name = p->teams[i].name;
        json_t *waiting = json_object();
        json_int_t depth = 0;
        for (int prio = 1; prio <= PRIO_LEVELS; prio++) {
            char level[12];
            snprintf(level, sizeof level, "%d", prio);
            json_int_t d = num(g, "depth|%s|%s", name, level);
            depth += d;
            json_object_set_new(waiting, policy_priority_name(prio), json_integer(d));
        }
        json_int_t oldest = num(g, "oldest|%s%s", name, "");
        json_t *risk = json_object_get(extra, name);
        json_array_append_new(out, json_pack(
            "{s:s, s:s, s:I, s:I, s:I, s:o, s:f, s:I, s:I}", "name", name, "kind",
            p->teams[i].kind == TEAM_OUTSOURCED ? "partner" : "in-house", "holding", num(g, "load|%s%s", name, ""),
            "assigned", num(g, "assigned|%s%s", name, ""), "queue_depth", depth, "waiting", waiting,
            "oldest_wait_s", oldest > 0 ? (double)(now - oldest) / 1000.0 : 0.0, "at_risk",
            json_integer_value(json_object_get(risk, "at_risk")), "overdue",
            json_integer_value(json_object_get(risk, "overdue"))));
    }
    return out;
}

static json_t *agents(const policy_t *p, json_t *extra)
{
    json_t *out = json_array();
    for (size_t i = 0; i < p->n_agents; i++) {
        const agent_t *a = &p->agents[i];
        json_t *teams = json_array(), *capacity = json_object();
        for (size_t t = 0; t < a->n_teams; t++)
            json_array_append_new(teams, json_string(a->teams[t]));
        for (int k = 0; k < CHANNEL_KINDS; k++)
            if (a->capacity[k] > 0)
                json_object_set_new(capacity, policy_channel_kind_name(k), json_integer(a->capacity[k]));
        json_t *live = json_object_get(extra, a->id);
        const char *presence = json_string_value(json_object_get(live, "presence"));
        json_array_append_new(out, json_pack("{s:s, s:o, s:s, s:I, s:o}", "id", a->id, "teams", teams, "presence",
                                             presence ? presence : "available", "load",
                                             json_integer_value(json_object_get(live, "load")), "capacity", capacity));
    }
    return out;
}

static json_t *partners(const policy_t *p, json_t *g, json_t *quota, json_t *days)
{
    json_t *out = json_array();
    for (size_t i = 0; i < p->n_teams; i++) {
        const team_t *t = &p->teams[i];
        if (t->kind != TEAM_OUTSOURCED)
            continue;
        json_t *day = json_object_get(days, t->name);
        json_array_append_new(out, json_pack("{s:s, s:I, s:i, s:i, s:I, s:O}", "team", t->name, "holding",
                                             num(g, "load|%s%s", t->name, ""), "max_concurrent",
                                             t->contract.max_concurrent, "daily_quota", t->contract.daily_quota,
                                             "assigned_today", json_integer_value(json_object_get(quota, t->name)),
                                             "day", day ? day : json_null()));
    }
    return out;
}

/* Lua's cjson writes an empty table as {}: an empty list, whatever it was meant to be. */
static json_t *as_array(json_t *v) { return json_is_array(v) ? json_incref(v) : json_array(); }

static json_t *volume(json_t *extra)
{
    json_t *channels = json_array(), *per = json_object_get(extra, "volume");
    const char *ch;
    json_t *counts;
    json_object_foreach(per, ch, counts) {
        json_int_t total = 0;
        size_t i;
        json_t *c;
        json_array_foreach(counts, i, c) total += json_integer_value(c);
        json_array_append_new(channels, json_pack("{s:s, s:I, s:o}", "channel", ch, "total", total, "per_minute",
                                                  as_array(counts)));
    }
    return json_pack("{s:I, s:i, s:o}", "since", json_integer_value(json_object_get(extra, "volume_since")),
                     "minute_ms", 60000, "channels", channels);
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void line(json_t *lines, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(json_t *lines, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t ok = strlen(buf);
    omni_utf8_valid(buf, ok, &ok); /* a cut reason keeps what is whole */
    json_array_append_new(lines, json_stringn(buf, ok));
}

/* One decision record (what omnictl explain prints in full) as a few sentences: the rule, each target's
 * static reason (the plan's trace), what the deciding script found (tried), and the outcome. */
static json_t *decision(const char *conv, json_t *d)
{
    json_t *lines = json_array(), *plan = json_object_get(d, "plan");
    const char *rule = str(d, "rule"), *outcome = str(d, "outcome");
    line(lines, "%s: category %s, priority %s; rule %s", str(d, "reason"), str(d, "category"),
         policy_priority_name((int)json_integer_value(json_object_get(d, "prio"))), *rule ? rule : "(none: default queue)");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(plan, "targets"), i, v) {
        const char *why = json_string_value(json_object_get(v, "skipped"));
        line(lines, "team %s: %s%s", str(v, "team"), why ? "skipped: " : "eligible", why ? why : "");
        const char *id;
        json_t *reason;
        json_object_foreach(json_object_get(v, "agents_skipped"), id, reason)
            line(lines, "agent %s: %s", id, json_string_value(reason) ? json_string_value(reason) : "");
    }
    json_t *tried = json_object_get(d, "tried");
    json_array_foreach(json_is_array(tried) ? tried : NULL, i, v) {
        const char *why = json_string_value(json_object_get(v, "skipped")), *id;
        json_t *reason;
        json_object_foreach(json_object_get(v, "agents"), id, reason) /* id: reason (records before agents_why) */
            line(lines, "now: agent %s: %s", id, json_string_value(reason) ? json_string_value(reason) : "");
        size_t g, j;
        json_t *group, *agent;
        json_array_foreach(json_object_get(v, "agents_why"), g, group) { /* [[why, id, id...], ...] */
            const char *because = json_string_value(json_array_get(group, 0));
            json_array_foreach(group, j, agent) if (j > 0 && because && json_is_string(agent))
                line(lines, "now: agent %s: %s", json_string_value(agent), because);
        }
        if (why)
            line(lines, "now: team %s: %s", str(v, "team"), why);
    }
    bool assigned = !strcmp(outcome, "assigned");
    if (assigned)
        line(lines, "=> assigned to %s%s", str(d, "owner"), json_object_get(d, "offer_expires_at") ? " as an offer" : "");
    else
        line(lines, "=> queued on %s", str(d, "queue"));
    json_t *out = json_pack("{s:s, s:I, s:s, s:s, s:s, s:o}", "conversation", conv, "at",
                            json_integer_value(json_object_get(d, "at")), "outcome", outcome, "reason", str(d, "reason"),
                            "rule", rule, "explanation", lines);
    json_object_set_new(out, assigned ? "owner" : "queue", json_string(str(d, assigned ? "owner" : "queue")));
    return out;
}

static json_t *decisions(json_t *extra)
{
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(extra, "decisions"), i, v) {
        json_error_t e;
        json_t *d = json_loads(str(v, "decision"), 0, &e);
        decision_record_complete(d);
        if (json_is_object(d))
            json_array_append_new(out, decision(str(v, "conversation"), d));
        else
            omni_warn("overview: conversation %s: a decision cannot be read: %s", str(v, "conversation"), e.text);
        json_decref(d);
    }
    return out;
}

static json_t *stats(json_t *g)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(g, k, v) if (!strncmp(k, "stats|", 6)) json_object_set(out, k + 6, v);
    return out;
}

void api_overview(api_req_t *req)
{
    if (req->caller.kind != CALLER_OPERATOR)
        return api_fail(req, 404, "not_found", NULL, "the overview is for operators; this token is %s",
                        req->caller.subject);
    const router_config_t *rc = req->cfg->overview.router;
    if (!rc)
        return api_fail(req, 404, "not_found", NULL, "no overview here: overview.router_config is not set");
    const policy_t *p = &rc->policy;
    int64_t now;
    if (api_now(req, &now) != 0)
        return;
    json_t *g = gauges(req, p);
    if (!g)
        return;
    char *days = route_quota_days(p, now);
    json_t *query = json_pack("{s:[], s:[], s:o}", "teams", "agents", "days", json_loads(days, 0, NULL));
    free(days);
    for (size_t i = 0; i < p->n_teams; i++)
        json_array_append_new(json_object_get(query, "teams"), json_string(p->teams[i].name));
    for (size_t i = 0; i < p->n_agents; i++)
        json_array_append_new(json_object_get(query, "agents"), json_string(p->agents[i].id));
    char *qtext = json_dumps(query, JSON_COMPACT), now_s[24], risk[24], recent[16];
    snprintf(now_s, sizeof now_s, "%lld", (long long)now);
    snprintf(risk, sizeof risk, "%d", req->cfg->overview.sla_risk_ms);
    snprintf(recent, sizeof recent, "%d", req->cfg->overview.recent);
    const char *args[OVERVIEW_NARGS] = { [OVERVIEW_ARG_NOW] = now_s, [OVERVIEW_ARG_RISK_MS] = risk,
                                         [OVERVIEW_ARG_RECENT] = recent, [OVERVIEW_ARG_QUERY] = qtext };
    redisReply *r = api_script(req, LUA_OVERVIEW, OVERVIEW_NARGS, args);
    free(qtext);
    json_t *extra = NULL;
    if (r && r->type == REDIS_REPLY_STRING)
        extra = json_loadb(r->str, r->len, 0, NULL);
    else if (r)
        omni_error("overview: %s", r->type == REDIS_REPLY_ERROR ? r->str : "an answer that is not a string");
    freeReplyObject(r);
    if (r && !json_is_object(extra)) {
        json_decref(extra);
        extra = NULL;
        api_fail(req, 500, "internal", NULL, "internal error (logged)");
    }
    if (extra)
        api_answer(req, 200, json_pack("{s:I, s:i, s:o, s:o, s:o, s:o, s:o, s:o}", "at", (json_int_t)now,
                                       "sla_risk_ms", req->cfg->overview.sla_risk_ms, "teams",
                                       teams(p, g, json_object_get(extra, "teams"), now), "agents",
                                       agents(p, json_object_get(extra, "agents")), "partners",
                                       partners(p, g, json_object_get(extra, "quota"),
                                                json_object_get(query, "days")),
                                       "volume", volume(extra), "decisions", decisions(extra), "stats", stats(g)));
    json_decref(extra);
    json_decref(query);
    json_decref(g);
}
