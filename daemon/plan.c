/* See plan.h. */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni/log.h"
#include "omni/message.h"
#include "omni/util.h"

static bool has_item(char *const *list, size_t n, const char *item)
{
    for (size_t i = 0; i < n; i++)
        if (item && strcmp(list[i], item) == 0)
            return true;
    return false;
}

/* The partner's daily quota counts per local day in its own calendar (UTC without one): "YYYY-MM-DD". */
static void team_day(const team_t *t, int64_t now, char *day, size_t daysz)
{
    if (t->cal) {
        cal_local_t l;
        calendar_local(t->cal->cal, now, &l);
        snprintf(day, daysz, "%04d-%02d-%02d", l.year, l.month, l.day);
    } else {
        omni_rfc3339(now, day, daysz);
        day[10] = 0;
    }
}

/* Why a team as a whole cannot take this work at any hour (its contract, its languages), or NULL. Opening
 * hours are the caller's: they refuse only until the team opens. */
static const char *team_refuses(const team_t *t, const facts_t *f, char *buf, size_t bufsz)
{
    if (t->kind == TEAM_OUTSOURCED) {
        const contract_t *c = &t->contract;
        if (!has_item(c->categories, c->n_categories, f->category)) {
            int n = snprintf(buf, bufsz, "contract does not cover category %s (covers",
                             f->category ? f->category : "(none)");
            for (size_t i = 0; i < c->n_categories && n > 0 && (size_t)n < bufsz; i++)
                n += snprintf(buf + n, bufsz - (size_t)n, "%s %s", i ? "," : "", c->categories[i]);
            if (n > 0 && (size_t)n < bufsz)
                snprintf(buf + n, bufsz - (size_t)n, ")");
            return buf;
        }
        if (f->tier && strcmp(f->tier, "vip") == 0 && !c->allow_vip)
            return "contract does not allow VIP customers";
        char *const *langs = c->n_languages ? c->languages : t->languages;
        size_t n = c->n_languages ? c->n_languages : t->n_languages;
        if (!policy_speaks(langs, n, f->language)) {
            snprintf(buf, bufsz, "contract does not cover language %s", f->language);
            return buf;
        }
        /* a contract may narrow the team's languages, never widen them: the team answers only in its own */
        if (c->n_languages && !policy_speaks(t->languages, t->n_languages, f->language)) {
            snprintf(buf, bufsz, "team does not speak %s", f->language);
            return buf;
        }
    } else if (!policy_speaks(t->languages, t->n_languages, f->language)) {
        snprintf(buf, bufsz, "team does not speak %s", f->language);
        return buf;
    }
    return NULL;
}

/* "lacks skill S (needs level N)" or "has skill S at level H (needs N)", after prefix. */
static void skill_gap(char *buf, size_t bufsz, const char *prefix, const char *skill, int have, int need)
{
    if (have <= 0)
        snprintf(buf, bufsz, "%slacks skill %s (needs level %d)", prefix, skill, need);
    else
        snprintf(buf, bufsz, "%shas skill %s at level %d (needs %d)", prefix, skill, have, need);
}

/* Why an agent cannot take this work (static reasons only), or NULL. */
static const char *agent_refuses(const agent_t *a, int kind, const classification_t *cls, const facts_t *f,
                                 const char *exclude, char *buf, size_t bufsz)
{
    if (exclude && strcmp(a->id, exclude) == 0)
        return "lost this conversation already (timed out, rejected it or let its offer expire)";
    if (a->capacity[kind] <= 0) {
        snprintf(buf, bufsz, "takes no %s work (capacity 0)", policy_channel_kind_name(kind));
        return buf;
    }
    for (size_t i = 0; i < cls->n_skills; i++) {
        int have = policy_skill_level(a->skill, a->n_skill, cls->skills[i].name);
        if (have < cls->skills[i].level) {
            skill_gap(buf, bufsz, "", cls->skills[i].name, have, cls->skills[i].level);
            return buf;
        }
    }
    if (!policy_speaks(a->languages, a->n_languages, f->language)) {
        snprintf(buf, bufsz, "does not speak %s", f->language);
        return buf;
    }
    return NULL;
}

/* The first rule whose `when` holds and that routes work. A rule with record: true (docs/routing.md) that holds
 * before it is put in *record for a new conversation: assign.lua records the conversation by it, unless more than
 * its first message is in it by then, when it is work after all and goes by the rule returned. A move (work
 * already routed) passes record rules: a rule added since does not turn work into a record. */
static const route_rule_t *match_rule(const policy_t *p, const facts_t *f, const char *reason, json_t *trace,
                                      const route_rule_t **record)
{
    json_t *tried = json_array();
    json_object_set_new(trace, "rules_tried", tried);
    *record = NULL;
    for (size_t i = 0; i < p->n_routes; i++) {
        const route_rule_t *r = &p->routes[i];
        char why[256] = "";
        bool holds = cond_eval(&r->when, f, *record ? NULL : why, *record ? 0 : sizeof why);
        if (holds && !r->record)
            return r;
        if (holds && !*record && !strcmp(reason, "new")) {
            *record = r;
            json_object_set_new(trace, "record", json_string(r->name));
        }
        if (*record) /* what comes after it is the fallback only: not traced */
            continue;
        if (holds)
            snprintf(why, sizeof why, "it records new conversations only, and this one is work already (%s)", reason);
        json_array_append_new(tried, json_pack("{s:s, s:s}", "rule", r->name, "failed", why));
    }
    return NULL;
}

/* Why a closed team cannot take work now: "closed until Mon 09:00 Europe/Paris (calendar paris)"; closed_now()
 * tells that reason by its start. */
#define CLOSED_UNTIL "closed until "

static const char *closed_until(const team_t *t, int64_t now, char *buf, size_t bufsz)
{
    int64_t open = calendar_next_open(t->cal->cal, now);
    if (open < 0) {
        snprintf(buf, bufsz, "closed: calendar %s never opens", t->cal->name);
        return buf;
    }
    char when[96];
    calendar_describe(t->cal->cal, open, open - now >= 6 * 86400000LL, when, sizeof when);
    snprintf(buf, bufsz, CLOSED_UNTIL "%s (calendar %s)", when, t->cal->name);
    return buf;
}

/* Records in the trace entry why the target is skipped; never: true when no hour of the day would change it
 * (skills, languages, channel, contract), false when it is only for now (closed, a timed-out agent). */
static json_t *skip(json_t *tr, const char *why, bool never)
{
    json_object_set_new(tr, "skipped", json_string(why));
    json_object_set_new(tr, "never", json_boolean(never));
    return NULL;
}

/* True when a trace entry skipped its target only because its team is closed now and opens later
 * (closed_until()'s words; not "closed: calendar C never opens"). */
static bool closed_now(const json_t *tr)
{
    const char *why = json_string_value(json_object_get(tr, "skipped"));
    return why && json_is_false(json_object_get(tr, "never")) && !strncmp(why, CLOSED_UNTIL, strlen(CLOSED_UNTIL));
}

static void set_int_unless(json_t *o, const char *key, json_int_t v, json_int_t usual)
{
    if (v != usual)
        json_object_set_new(o, key, json_integer(v));
}

/* f: the facts with classification filled in. exclude: an agent not to offer it to (NULL: none). The
 * reasons that hold at any hour are looked for first, even when the team is closed: "closed" would tell a
 * person to wait for the opening when the work can never go there. */
static json_t *plan_target(const policy_t *p, const route_target_t *tg, size_t index, int kind,
                           const classification_t *cls, const facts_t *f, const route_input_t *in,
                           json_t *trace_targets)
{
    const team_t *t = tg->t;
    const char *exclude = in ? in->exclude_agent : NULL;
    char buf[256];
    json_t *tr = json_pack("{s:s, s:i}", "team", t->name, "target", (int)index);
    json_array_append_new(trace_targets, tr);
    const char *why = team_refuses(t, f, buf, sizeof buf);
    if (why)
        return skip(tr, why, true);
    /* A partner team that just gave it back is never offered it again: assign.lua reads the declined set and
     * decides (flagging the work when every target declined). Marked here only so that explain does not call
     * the team eligible. */
    if (in && in->exclude_team && !strcmp(in->exclude_team, t->name))
        json_object_set_new(tr, "declined", json_true());
    json_t *agents = json_array(), *skipped = json_object();
    size_t members = 0;
    bool excluded = false; /* an agent refused only for this move */
    for (size_t i = 0; i < p->n_agents; i++) {
        const agent_t *a = &p->agents[i];
        if (!has_item(a->teams, a->n_teams, t->name))
            continue;
        members++;
        const char *no = agent_refuses(a, kind, cls, f, exclude, buf, sizeof buf);
        if (no) {
            excluded |= exclude && !strcmp(a->id, exclude);
            json_object_set_new(skipped, a->id, json_string(no));
            continue;
        }
        json_array_append_new(agents, json_string(a->id));
    }
    if (json_object_size(skipped)) /* explain reads an absent list as empty */
        json_object_set_new(tr, "agents_skipped", skipped);
    else
        json_decref(skipped);
    /* An outsourced team with no agents listed is itself the assignee: the partner distributes inside, so
     * the skills it covers are the team's own. */
    bool team_level = t->kind == TEAM_OUTSOURCED && members == 0;
    why = NULL;
    for (size_t i = 0; team_level && !why && i < cls->n_skills; i++) {
        int have = policy_skill_level(t->skill, t->n_skill, cls->skills[i].name);
        if (have < cls->skills[i].level) {
            char prefix[80];
            snprintf(prefix, sizeof prefix, "team %s ", t->name);
            skill_gap(buf, sizeof buf, prefix, cls->skills[i].name, have, cls->skills[i].level);
            why = buf;
        }
    }
    if (!team_level && json_array_size(agents) == 0)
        why = members ? "no agent qualifies (each one's reason below)" : "the team has no agents";
    bool never = !excluded;
    if (!why && tg->when_open && t->cal && !calendar_open_at(t->cal->cal, f->now))
        why = closed_until(t, f->now, buf, sizeof buf), never = false;
    if (why) {
        json_decref(agents); /* skipped belongs to tr */
        return skip(tr, why, never);
    }
    /* Every agent of the team qualifies (the common case): the plan names none, and the script takes the
     * team's whole ready index (docs/redis.md), so a plan's size does not grow with the team. */
    bool everyone = !team_level && json_array_size(agents) == members;
    if (everyone)
        json_array_clear(agents);
    char day[40] = "";
    if (t->kind == TEAM_OUTSOURCED && t->contract.daily_quota > 0)
        team_day(t, f->now, day, sizeof day);
    json_t *plan_t = json_pack("{s:i, s:s, s:s, s:i, s:i}", "i", (int)index, "team", t->name, "strategy",
                               t->strategy == STRATEGY_ROUND_ROBIN    ? "round-robin"
                               : t->strategy == STRATEGY_LONGEST_IDLE ? "longest-idle"
                                                                      : "least-loaded",
                               "handle_time", t->handle_time_ms, "accept_timeout", t->accept_timeout_ms);
    /* The rest only when it is not the default PLAN_TARGET_SPEC declares (the script reads the default then). */
    set_int_unless(plan_t, "timeout", tg->timeout_ms, 0);
    set_int_unless(plan_t, "queue_below", tg->queue_below, 0);
    set_int_unless(plan_t, "wait_below", tg->wait_below_ms, 0);
    if (t->kind == TEAM_OUTSOURCED) {
        set_int_unless(plan_t, "max_concurrent", t->contract.max_concurrent, 0);
        set_int_unless(plan_t, "quota", t->contract.daily_quota, 0);
    }
    if (*day)
        json_object_set_new(plan_t, "day", json_string(day));
    if (everyone)
        json_object_set_new(plan_t, "everyone", json_true());
    if (json_array_size(agents))
        json_object_set_new(plan_t, "agents", agents);
    else
        json_decref(agents);
    if (team_level)
        json_object_set_new(plan_t, "team_level", json_true());
    if (t->auto_accept)
        json_object_set_new(plan_t, "auto_accept", json_true());
    return plan_t;
}

void route_sla(const policy_t *p, const facts_t *f, const team_t *team, int64_t now, int64_t *due,
               int64_t *escalate_at, const char **target_desc)
{
    *due = *escalate_at = -1;
    for (size_t i = 0; i < p->n_sla; i++) {
        const sla_target_t *s = &p->sla[i];
        if (!cond_eval(&s->when, f, NULL, 0))
            continue;
        int64_t target = s->first_response_ms, part = target * p->sla_escalate_pct / 100;
        const calendar_cfg_t *cal = s->cal ? s->cal : team ? team->cal : NULL;
        if (s->business_hours && cal) {
            *due = calendar_add_business(cal->cal, now, target);
            *escalate_at = calendar_add_business(cal->cal, now, part);
        } else {
            *due = now + target;
            *escalate_at = now + part;
        }
        if (target_desc)
            *target_desc = s->business_hours ? "business hours" : "clock hours";
        return;
    }
}

/* Why no target of the rule can take the work at any hour ("team core: ...; team bpo: ..."), or NULL when one
 * could once it opens or once this move is over. trace_targets: the plan's trace of its targets. Caller frees. */
static char *unservable(const route_rule_t *rule, json_t *trace_targets)
{
    if (json_array_size(trace_targets) == 0)
        return omni_asprintf("rule %s has no target left to try", rule->name);
    size_t i;
    json_t *v;
    char buf[1024] = "";
    size_t len = 0;
    json_array_foreach(trace_targets, i, v) {
        if (!json_is_true(json_object_get(v, "never")))
            return NULL;
        const char *team = json_string_value(json_object_get(v, "team"));
        const char *why = json_string_value(json_object_get(v, "skipped"));
        size_t tl = strlen(team);
        /* "team bpo lacks skill ..." names its team already */
        bool named = !strncmp(why, "team ", 5) && !strncmp(why + 5, team, tl) && why[5 + tl] == ' ';
        int n = snprintf(buf + len, sizeof buf - len, "%s%s%s%s%s", i ? "; " : "", named ? "" : "team ",
                         named ? "" : team, named ? "" : ": ", why);
        len = n > 0 && len + (size_t)n < sizeof buf ? len + (size_t)n : len;
    }
    return omni_strdup(buf);
}

/* Whether team could take the work at some hour by this plan: it is one of its targets, or is skipped only for
 * now (closed, a timed-out agent). */
static bool could_take(const char *team, json_t *targets, json_t *trace_targets)
{
    size_t i;
    json_t *v;
    json_array_foreach(targets, i, v) if (!strcmp(json_string_value(json_object_get(v, "team")), team)) return true;
    json_array_foreach(trace_targets, i, v) if (!strcmp(json_string_value(json_object_get(v, "team")), team) &&
                                                !json_is_true(json_object_get(v, "never"))) return true;
    return false;
}

/* Where the work waits when nobody takes it now: the rule's queue team when it could take the work at some hour;
 * else the first of the rule's targets that could (closed now, or full), so refused work waits where it can be
 * served and each team's queue holds only work that team can take; else nobody ever can, and it waits in the
 * rule's queue, flagged unservable. Records the move and its reason in the trace. */
static const team_t *waiting_team(const policy_t *p, const team_t *queue_team, json_t *targets, json_t *trace_targets,
                                  json_t *trace, const route_rule_t *rule, const route_input_t *in)
{
    if (!queue_team || could_take(queue_team->name, targets, trace_targets))
        return queue_team;
    size_t i;
    json_t *v;
    json_array_foreach(trace_targets, i, v) {
        const char *name = json_string_value(json_object_get(v, "team"));
        const team_t *t = policy_team(p, name);
        if (!t || t == queue_team || !could_take(name, targets, trace_targets))
            continue;
        const char *why = NULL;
        size_t j;
        json_t *w;
        json_array_foreach(trace_targets, j, w) if (!strcmp(json_string_value(json_object_get(w, "team")),
                                                            queue_team->name)) why = json_string_value(json_object_get(w, "skipped"));
        /* not in the trace: not a target of the rule, or one this move started past (a timeout, an escalation) */
        bool passed = false;
        for (size_t k = 0; !why && rule && k < (size_t)in->from_target && k < rule->n_targets; k++)
            passed |= rule->targets[k].t == queue_team;
        json_object_set_new(trace, "waits_on", json_string(t->name));
        json_object_set_new(trace, "waits_on_because",
                            json_sprintf("team %s can never take it: %s", queue_team->name,
                                         why      ? why
                                         : passed ? "the work moved past it (its target's timeout or an escalation)"
                                                  : "not a target of the rule"));
        return t;
    }
    return queue_team;
}

json_t *route_plan(const policy_t *p, const route_input_t *in_)
{
    route_input_t input = *in_;
    const route_input_t *in = &input;
    facts_t f = in->facts;
    classification_t cls;
    classify(p, &f, &cls);
    f.category = cls.category;
    f.priority = cls.priority;
    int kind = policy_channel_kind(f.channel);
    if (kind < 0)
        kind = CHANNEL_OTHER;

    json_t *trace = json_object(), *rules = json_array(), *skills = json_array();
    for (size_t i = 0; i < cls.n_rules; i++)
        json_array_append_new(rules, json_string(cls.rules[i]));
    for (size_t i = 0; i < cls.n_skills; i++)
        json_array_append_new(skills, json_sprintf("%s:%d", cls.skills[i].name, cls.skills[i].level));
    if (json_array_size(rules)) /* an empty list is left out (explain reads it as empty) */
        json_object_set_new(trace, "classified_by", rules);
    else
        json_decref(rules);
    json_object_set_new(trace, "reason", json_string(in->reason));
    json_object_set_new(trace, "planned_at", json_integer(f.now)); /* a drain decides later by this plan */

    const route_rule_t *record, *rule = match_rule(p, &f, in->reason, trace, &record);
    if (json_array_size(json_object_get(trace, "rules_tried")) == 0) /* the first rule held: nothing to tell */
        json_object_del(trace, "rules_tried");
    json_t *targets = json_array(), *trace_targets = json_array();
    json_object_set_new(trace, "targets", trace_targets);
    const team_t *queue_team = NULL;
    const team_t *to = in->transfer_team ? policy_team(p, in->transfer_team) : NULL;
    /* The move's place in the targets (from_target, the one left, the one waiting work started at) counts in the
     * rule its last decision was made under. The rule chosen again now can be another (a time condition, a
     * reload): its targets are another list, so the move starts at its first one, not at an index of the old. */
    if (rule && !to && in->held_rule && *in->held_rule && strcmp(in->held_rule, rule->name)) {
        json_object_set_new(trace, "rule_before", json_string(in->held_rule));
        input.from_target = 0;
    }
    if (in->transfer_team && !to)
        omni_warn("routing: conversation %s: transfer to team %s, which the policy does not have; routed by its rule",
                  in->conversation, in->transfer_team);
    if (to) {
        /* A transfer goes to the named team only, open or not, and so does every later move of the work while
         * that team has it (route_plan_due); it waits in that team's queue when nobody there can take it now.
         * The target index is the team's place in the rule (past its end when not in it): explain's "moved from"
         * names the team instead when it is past the end. */
        size_t index = rule ? rule->n_targets : 0;
        for (size_t i = 0; rule && i < rule->n_targets; i++)
            if (rule->targets[i].t == to && index == rule->n_targets)
                index = i;
        route_target_t tg = { .team = to->name, .t = to };
        json_object_set_new(trace, "transfer_to", json_string(to->name));
        if (rule)
            json_object_set_new(trace, "rule", json_string(rule->name));
        json_t *t = plan_target(p, &tg, index, kind, &cls, &f, in, trace_targets);
        if (t)
            json_array_append_new(targets, t);
        queue_team = to;
    } else if (rule) {
        json_object_set_new(trace, "rule", json_string(rule->name));
        for (size_t i = (size_t)in->from_target; i < rule->n_targets; i++) {
            json_t *t = plan_target(p, &rule->targets[i], i, kind, &cls, &f, in, trace_targets);
            if (t)
                json_array_append_new(targets, t);
        }
        queue_team = rule->queue_team ? rule->queue_team : rule->n_targets ? rule->targets[0].t : NULL;
        /* Moved past its last target, or none of the targets left can take it but by another move (they never
         * can, or their only qualified agent is the one this move leaves out): it waits in the rule's queue, and
         * the queue's own team must still be able to take it when capacity frees, or it would wait forever.
         * Nobody is excluded there. A target left that is only closed now is waited for instead: the re-plan at
         * its opening starts from the same target and finds it open. */
        bool opens_later = false;
        size_t k;
        json_t *tr;
        json_array_foreach(trace_targets, k, tr) opens_later |= closed_now(tr);
        if (json_array_size(targets) == 0 && in->from_target > 0 && queue_team && !opens_later) {
            for (size_t i = 0; i < rule->n_targets; i++)
                if (rule->targets[i].t == queue_team) {
                    json_t *t = plan_target(p, &rule->targets[i], i, kind, &cls, &f, NULL, trace_targets);
                    if (t) {
                        json_object_set_new(t, "timeout", json_integer(0)); /* no further moves */
                        json_array_append_new(targets, t);
                    }
                }
        }
    }
    /* A plan depends on which calendars are open now: it is good until the next opening or closing of a
     * team it names. A queued conversation is planned again then (due.lua, "replan"). */
    int64_t valid_until = -1;
    for (size_t i = 0; rule && !to && i < rule->n_targets; i++) {
        const team_t *t = rule->targets[i].t;
        if (!rule->targets[i].when_open || !t->cal)
            continue;
        int64_t next = calendar_open_at(t->cal->cal, f.now) ? calendar_next_close(t->cal->cal, f.now)
                                                             : calendar_next_open(t->cal->cal, f.now);
        if (next > 0 && (valid_until < 0 || next < valid_until))
            valid_until = next;
    }
    int64_t due, escalate_at;
    const char *sla_desc = NULL;
    route_sla(p, &f, queue_team, f.now, &due, &escalate_at, &sla_desc);
    queue_team = waiting_team(p, queue_team, targets, trace_targets, trace, to ? NULL : rule, in);
    json_t *plan = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s*, s:s*, s:I, s:I, s:I, s:o, s:s*, s:s*, s:o, s:i}",
                             "conv", in->conversation, "version", in->version ? in->version : "0", "channel",
                             policy_channel_kind_name(kind), "category", cls.category, "prio", cls.priority, "tier",
                             f.tier ? f.tier : "new", "reason", in->reason, "rule", rule ? rule->name : NULL, "queue",
                             queue_team ? queue_team->name : NULL, "now", (json_int_t)f.now, "due", (json_int_t)due,
                             "escalate_at", (json_int_t)escalate_at, "targets", targets, "prefer", in->prefer_agent,
                             "exclude", in->exclude_agent, "trace", trace, "aging", p->aging_every_ms);
    if (json_array_size(skills)) /* the rest only when not the default PLAN_SPEC declares */
        json_object_set_new(plan, "skills", skills);
    else
        json_decref(skills);
    if (sla_desc)
        json_object_set_new(trace, "sla", json_string(sla_desc));
    char *never = rule && !to && json_array_size(targets) == 0 ? unservable(rule, trace_targets) : NULL;
    /* A transfer to a team that can never take it (a language it does not speak, a skill its agents lack, a
     * contract that excludes it) waits in that team's queue for good: surfaced like any work nobody can take. */
    json_t *moved = to && json_array_size(targets) == 0 ? json_array_get(trace_targets, 0) : NULL;
    if (moved && json_is_true(json_object_get(moved, "never")))
        never = omni_asprintf("transferred to team %s, which cannot take it at any hour: %s", to->name,
                              json_string_value(json_object_get(moved, "skipped")));
    if (never)
        json_object_set_new(plan, "unservable", json_string(never));
    free(never);
    if (to) /* assign.lua keeps it on the conversation (transferred_to): the work's later moves are planned so too */
        json_object_set_new(plan, "transfer", json_string(to->name));
    if (record) /* not work: assign.lua stores it resolved, unless more joined it meanwhile */
        json_object_set_new(plan, "record", json_string(record->name));
    set_int_unless(plan, "valid_until", valid_until, -1);
    /* where this move starts in the rule's targets: work left waiting keeps it (assign.lua), so its re-plans and
     * escalations go on from there, not from the rule's first target again */
    set_int_unless(plan, "from", in->from_target, 0);
    return plan;
}

static const char *tier_of(const policy_t *p, const char *identity, long conversations, const char *stored)
{
    return stored && *stored ? stored : policy_tier(p, identity, conversations);
}

json_t *route_plan_new(const policy_t *p, const char *conversation, const omni_msg_t *msg, const char *identity,
                       long conversations, const char *tier, const char *last_owner, int64_t now)
{
    route_input_t in = {
        .conversation = conversation, .version = "0", .from_target = 0, .reason = "new",
        .prefer_agent = p->prefer_previous_owner && last_owner && *last_owner ? last_owner : NULL,
        .facts = { .channel = msg->channel, .identity = identity, .text = msg->text, .subject = msg->subject,
                   .language = msg->lang, .tier = tier_of(p, identity, conversations, tier), .now = now },
    };
    return route_plan(p, &in);
}

json_t *route_plan_due(const policy_t *p, const char *const f[DUE_REPLY_FIELDS], int64_t now)
{
    const char *conv = f[DUE_REPLY_CONVERSATION], *kind = f[DUE_REPLY_KIND], *owner = f[DUE_REPLY_OWNER];
    long target = strtol(f[DUE_REPLY_TARGET], NULL, 10);
    json_error_t e;
    json_t *m = json_loads(f[DUE_REPLY_FIRST_MESSAGE], 0, &e);
    if (!m) {
        omni_warn("routing: conversation %s: its first message cannot be read (%s); left as it is", conv, e.text);
        return NULL;
    }
    /* Timed out, rejected, offer expired: not that agent again for this move (assign.lua keeps the ones who
     * declined out for good). Gone offline: the presence check keeps them out while they are away, and when
     * the policy prefers previous owners, the work waiting in a queue goes back to them first when they
     * return. */
    const char *agent = !strncmp(owner, "agent:", 6) ? owner + 6 : NULL;
    bool declined = !strcmp(kind, "rejected") || !strcmp(kind, "offer expired");
    const char *exclude = agent && (!strcmp(kind, "timeout") || declined) ? agent : NULL;
    /* A partner team that rejected it or whose deliveries were dead-lettered is in its declined set for good. */
    const char *team = !strncmp(owner, "team:", 5) ? owner + 5 : NULL;
    const char *exclude_team = team && (declined || !strcmp(kind, "dead letter")) ? team : NULL;
    /* A timeout or an escalation moves on to the next target; work that lost its owner otherwise (rejected,
     * offer expired or revoked, dead letter) tries the same target first, its other agents. */
    bool next = !strcmp(kind, "timeout") || !strcmp(kind, "escalation");
    bool same = declined || !strcmp(kind, "offer revoked") || !strcmp(kind, "dead letter");
    int from = target < 0 ? 0 : next ? (int)target + 1 : same ? (int)target : 0;
    /* Waiting work re-planned (a calendar opened or closed) or escalated (more urgent) goes on with the move it
     * waits in: from the target that move started at, the agent it left out still left out (a timeout's). */
    const char *queued_from = f[DUE_REPLY_QUEUED_FROM], *queued_exclude = f[DUE_REPLY_QUEUED_EXCLUDE];
    if (target < 0 && (!strcmp(kind, "replan") || !strcmp(kind, "escalation"))) {
        long q = queued_from && *queued_from ? strtol(queued_from, NULL, 10) : 0;
        from = q > 0 && q < 1000 ? (int)q : 0;
        exclude = queued_exclude && *queued_exclude ? queued_exclude : NULL;
    }
    /* Work a transfer gave a team stays that team's until it is resolved or transferred again (docs/routing.md,
     * Offers): a transfer, and every later move of it (rejected, offer expired, escalated, its owner offline...),
     * is planned for that team only, from no target of the rule (a rejection starts again in the same team, the
     * agent who declined left out). due.lua's transfer_to says which team: the one a transfer asks for, else the
     * one a transfer gave it to (transferred_to). A conversation handed out as new is no move: by its rule. */
    const char *transfer = strcmp(kind, "new") && *f[DUE_REPLY_TRANSFER_TO] ? f[DUE_REPLY_TRANSFER_TO] : NULL;
    if (transfer)
        from = 0;
    const char *prefer = p->prefer_previous_owner && *f[DUE_REPLY_LAST_OWNER] ? f[DUE_REPLY_LAST_OWNER] : NULL;
    if (agent && !strcmp(kind, "owner offline") && p->prefer_previous_owner)
        prefer = agent;
    route_input_t in = {
        .conversation = conv, .version = f[DUE_REPLY_VERSION], .reason = kind, .exclude_agent = exclude, .exclude_team = exclude_team,
        .from_target = from,
        .prefer_agent = prefer,
        .transfer_team = transfer,
        .held_rule = f[DUE_REPLY_RULE],
        .facts = { .channel = json_string_value(json_object_get(m, "channel")), .identity = f[DUE_REPLY_IDENTITY],
                   .text = json_string_value(json_object_get(m, "text")),
                   .subject = json_string_value(json_object_get(m, "subject")),
                   .language = json_string_value(json_object_get(m, "lang")),
                   .tier = tier_of(p, f[DUE_REPLY_IDENTITY], strtol(f[DUE_REPLY_CONVERSATIONS], NULL, 10), f[DUE_REPLY_TIER]), .now = now },
    };
    json_t *plan = route_plan(p, &in);
    if (*owner) /* whom it left and from which target, for explain ("moved from ...") */
        json_object_set_new(json_object_get(plan, "trace"), "left",
                            json_pack("{s:s,s:I}", "owner", owner, "target", (json_int_t)target));
    if (!strcmp(kind, "escalation") && target < 0) { /* waiting work escalates by getting more urgent */
        json_int_t prio = json_integer_value(json_object_get(plan, "prio"));
        json_object_set_new(plan, "prio", json_integer(prio > 1 ? prio - 1 : 1));
    }
    json_decref(m);
    return plan;
}

char *route_drain_teams(const policy_t *p)
{
    size_t len = 1;
    for (size_t i = 0; i < p->n_teams; i++)
        len += strlen(p->teams[i].name) + 1;
    char *s = omni_malloc(len), *at = s;
    *s = '\0';
    for (size_t i = 0; i < p->n_teams; i++)
        at += sprintf(at, "%s%s", i ? " " : "", p->teams[i].name);
    return s;
}

char *route_quota_days(const policy_t *p, int64_t now)
{
    json_t *days = json_object();
    for (size_t i = 0; i < p->n_teams; i++) {
        const team_t *t = &p->teams[i];
        if (t->kind != TEAM_OUTSOURCED || t->contract.daily_quota <= 0)
            continue;
        char day[40];
        team_day(t, now, day, sizeof day);
        json_object_set_new(days, t->name, json_string(day));
    }
    char *s = omni_json_dumps(days, JSON_COMPACT);
    json_decref(days);
    return s;
}

/* Checks doc against one of the declarations of daemon/lua/_plan.lua (as Lua's check_fields does). */
static int check_fields(const json_t *doc, const char *spec, const char *where, char *err, size_t errsz)
{
    if (!json_is_object(doc)) {
        snprintf(err, errsz, "%s: not an object", where);
        return -1;
    }
    size_t declared = 0;
    for (const char *p = spec; *p;) {
        char word[64], name[48], type[16];
        size_t len = strcspn(p, " ");
        snprintf(word, sizeof word, "%.*s", (int)len, p);
        p += len + (p[len] == ' ');
        bool optional = word[0] == '?';
        if (sscanf(word + optional, "%47[^:]:%15[^= ]", name, type) != 2)
            continue;
        optional |= strchr(word, '=') != NULL; /* "name:type=default": absent means the default */
        const json_t *v = json_object_get(doc, name);
        if (!v || json_is_null(v)) {
            if (!optional) {
                snprintf(err, errsz, "%s.%s: missing", where, name);
                return -1;
            }
            continue;
        }
        declared++;
        bool ok = !strcmp(type, "str")    ? json_is_string(v)
                  : !strcmp(type, "int")  ? json_is_integer(v)
                  : !strcmp(type, "bool") ? json_is_boolean(v)
                  : !strcmp(type, "obj")  ? json_is_object(v)
                                          : json_is_array(v);
        if (!ok) {
            snprintf(err, errsz, "%s.%s: not a%s %s", where, name, type[0] == 'i' || type[0] == 'o' ? "n" : "", type);
            return -1;
        }
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            char at[160];
            snprintf(at, sizeof at, "%s.%s[%zu]", where, name, i + 1);
            if (!strcmp(type, "[str]") && !json_is_string(e)) {
                snprintf(err, errsz, "%s: not a string", at);
                return -1;
            }
            if (!strcmp(type, "[target]") && check_fields(e, LUA_PLAN_TARGET_SPEC, at, err, errsz) != 0)
                return -1;
        }
    }
    if (json_object_size(doc) != declared) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)doc, key, v) {
            char spaced[1024], probe[64], probe_opt[64];
            snprintf(spaced, sizeof spaced, " %s", spec);
            snprintf(probe, sizeof probe, " %s:", key);
            snprintf(probe_opt, sizeof probe_opt, " ?%s:", key);
            if (!strstr(spaced, probe) && !strstr(spaced, probe_opt)) {
                snprintf(err, errsz, "%s.%s: not a plan field", where, key);
                return -1;
            }
        }
    }
    return 0;
}

int route_plan_check(const json_t *plan, char *err, size_t errsz)
{
    return check_fields(plan, LUA_PLAN_SPEC, "plan", err, errsz);
}
