/* omnictl simulate: reading the input, counting, and the report. */
#include <jansson.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include "decision_record.h"
#include "simulate.h"
#include "omni/util.h"

static int by_time(const void *a, const void *b)
{
    const sim_msg_t *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line; /* stable: file order for equal times */
}

void sim_schedule(sim_t *s, const sim_event_t *e)
{
    if (s->n_ev == s->cap_ev) {
        s->cap_ev = s->cap_ev ? 2 * s->cap_ev : 256;
        s->ev = omni_realloc(s->ev, s->cap_ev * sizeof *s->ev);
    }
    size_t i = s->n_ev++; /* kept sorted by time, latest last: insertion from the end */
    while (i > 0 && s->ev[i - 1].t > e->t) {
        s->ev[i] = s->ev[i - 1];
        i--;
    }
    s->ev[i] = *e;
}

/* A presence line, {"presence": {"agent": ID, "status": available|away|offline, "at": RFC3339}}: 1 and the
 * event scheduled; 0 when the line is no presence line; -1 with why when it is a bad one. */
static int presence_line(sim_t *s, const char *line, size_t len, char *why, size_t whysz)
{
    json_t *root = json_loadb(line, len, 0, NULL), *p = json_object_get(root, "presence");
    if (!p) {
        json_decref(root);
        return 0;
    }
    const char *agent = json_string_value(json_object_get(p, "agent")),
               *status = json_string_value(json_object_get(p, "status")),
               *at = json_string_value(json_object_get(p, "at"));
    sim_event_t e = { .kind = SIM_PRESENCE };
    int rc = -1;
    bool known = false;
    for (size_t i = 0; agent && i < s->p->n_agents; i++)
        known |= !strcmp(s->p->agents[i].id, agent);
    if (!json_is_object(p) || json_object_size(p) != 3 || !agent || !status || !at)
        snprintf(why, whysz, "presence: needs exactly agent, status and at, all strings");
    else if (!known)
        snprintf(why, whysz, "presence.agent: \"%.64s\" is no agent of the policy", agent);
    else if (strcmp(status, "available") && strcmp(status, "away") && strcmp(status, "offline"))
        snprintf(why, whysz, "presence.status: \"%.32s\" is not available, away or offline", status);
    else if (omni_rfc3339_parse(at, &e.t) != 0)
        snprintf(why, whysz, "presence.at: \"%.40s\" is not an RFC 3339 time", at);
    else {
        snprintf(e.agent, sizeof e.agent, "%s", agent);
        snprintf(e.status, sizeof e.status, "%s", status);
        sim_schedule(s, &e); /* file order for equal times: input is read in order, the schedule is stable */
        s->n_presence++;
        rc = 1;
    }
    json_decref(root);
    return rc;
}

int sim_load(sim_t *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "omnictl: simulate: %s: cannot read: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0, alloc = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len == 0)
            continue;
        char bad[200];
        int pres = presence_line(s, line, (size_t)len, bad, sizeof bad);
        if (pres < 0) {
            fprintf(stderr, "%s:%zu: %s\n", path, lineno, bad);
            s->invalid++;
        }
        if (pres != 0)
            continue;
        omni_msg_error_t err;
        omni_msg_t *m = omni_msg_parse(line, (size_t)len, &s->cfg->limits, &err);
        char ident[OMNI_IDENTITY_MAX];
        const char *why = NULL;
        int64_t t = 0;
        if (m && omni_identity_key(m->channel, m->from_id, s->cfg->identity.default_country, ident, sizeof ident,
                                   &why) != 0) {
            snprintf(err.field, sizeof err.field, "from.id");
            snprintf(err.reason, sizeof err.reason, "%s", why);
            omni_msg_destroy(&m);
        }
        if (m)
            omni_rfc3339_parse(m->received_at, &t);
        if (!m) {
            char buf[600];
            fprintf(stderr, "%s:%zu: %s\n", path, lineno, omni_msg_error_str(&err, buf, sizeof buf));
            s->invalid++;
            continue;
        }
        if (s->n_msgs == alloc) {
            alloc = alloc ? 2 * alloc : 1024;
            s->msgs = omni_realloc(s->msgs, alloc * sizeof *s->msgs);
        }
        sim_msg_t *sm = &s->msgs[s->n_msgs++];
        sm->msg = m;
        sm->json = omni_strndup(line, (size_t)len);
        snprintf(sm->identity, sizeof sm->identity, "%s", ident);
        sm->t = t;
        sm->line = lineno;
    }
    free(line);
    fclose(f);
    qsort(s->msgs, s->n_msgs, sizeof *s->msgs, by_time);
    return 0;
}

static long *slot(sim_counter_t *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->names[i], name))
            return &c->counts[i];
    c->names = omni_realloc(c->names, (c->n + 1) * sizeof *c->names);
    c->counts = omni_realloc(c->counts, (c->n + 1) * sizeof *c->counts);
    c->names[c->n] = omni_strdup(name);
    c->counts[c->n] = 0;
    return &c->counts[c->n++];
}

void sim_count(sim_counter_t *c, const char *name, long add) { *slot(c, name) += add; }

void sim_peak(sim_counter_t *c, const char *name, long value)
{
    long *v = slot(c, name);
    if (value > *v)
        *v = value;
}

void sim_delay(sim_t *s, int64_t ms)
{
    if (s->n_delays == s->cap_delays) {
        s->cap_delays = s->cap_delays ? 2 * s->cap_delays : 1024;
        s->delays = omni_realloc(s->delays, s->cap_delays * sizeof *s->delays);
    }
    s->delays[s->n_delays++] = ms;
}

/* Conversations waiting on a team's queues, all priorities (pipelined: one round trip). */
static long team_waiting(sim_t *s, const char *team)
{
    for (int p = 1; p <= PRIO_LEVELS; p++) {
        char level[12];
        snprintf(level, sizeof level, "%d", p);
        redisAppendCommand(s->rc, "ZCARD omni:" KEY_TEAM_QUEUE, team, level);
    }
    long n = 0;
    for (int p = 1; p <= PRIO_LEVELS; p++) {
        redisReply *r = NULL;
        if (redisGetReply(s->rc, (void **)&r) != REDIS_OK || !r) {
            fprintf(stderr, "omnictl: simulate: scratch redis: %s\n", s->rc->errstr);
            exit(1);
        }
        if (r->type == REDIS_REPLY_INTEGER)
            n += r->integer;
        freeReplyObject(r);
    }
    return n;
}

void sim_measure_queues(sim_t *s)
{
    for (size_t t = 0; t < s->p->n_teams; t++)
        sim_peak(&s->queue_peaks, s->p->teams[t].name, team_waiting(s, s->p->teams[t].name));
}

/* "team: why; team: why" for the targets of a decision (d, borrowed) up to the one that took the work, into buf:
 * what the script found when it tried one (live: its tried list; "considered" for the one that took it), else why
 * the plan passed it over (static: the plan's trace, as omnictl explain shows them). */
static const char *why_not(json_t *d, char *buf, size_t sz)
{
    json_t *tried = json_object_get(d, "tried"), *traced = json_object_get(json_object_get(d, "plan"), "targets");
    size_t i, j, len = 0;
    json_t *t, *u;
    buf[0] = 0;
#define SAY(team, why)                                                                                                  \
    len += (size_t)snprintf(buf + len, len < sz ? sz - len : 0, "%s%s: %s", len ? "; " : "", team, why)
    json_array_foreach(traced, i, t) {
        const char *team = json_string_value(json_object_get(t, "team")), *why = NULL;
        bool live = false;
        json_array_foreach(tried, j, u) if (json_integer_value(json_object_get(u, "target")) ==
                                            json_integer_value(json_object_get(t, "target"))) {
            live = true;
            why = json_string_value(json_object_get(u, "skipped"));
        }
        if (!live)
            why = json_string_value(json_object_get(t, "skipped"));
        if (!live && !why && json_is_true(json_object_get(t, "declined")))
            why = "gave this conversation back";
        if (why && !strcmp(why, "no agent qualifies (each one's reason below)")) /* explain lists them; not here */
            why = "no agent qualifies";
        if (team)
            SAY(team, why ? why : live ? "considered" : "not tried");
        if (len >= sz || (live && !why)) /* the target that took it: those after it were not looked at */
            return buf;
    }
    json_array_foreach(tried, j, u) { /* tried, but not in the trace (a record of an older version) */
        bool shown = false;
        json_array_foreach(traced, i, t) shown |= json_integer_value(json_object_get(u, "target")) ==
                                                  json_integer_value(json_object_get(t, "target"));
        const char *why = json_string_value(json_object_get(u, "skipped"));
        if (!shown && json_string_value(json_object_get(u, "team")))
            SAY(json_string_value(json_object_get(u, "team")), why ? why : "considered");
        if (len >= sz)
            break;
    }
#undef SAY
    return buf;
}

/* The newest decision recorded on conv, decoded; NULL when none. The caller owns it. */
static json_t *last_decision(sim_t *s, const char *conv)
{
    redisReply *r = sim_cmd(s, "LINDEX omni:" KEY_CONVERSATION_DECISIONS " -1", conv);
    json_t *d = r->type == REDIS_REPLY_STRING ? json_loads(r->str, 0, NULL) : NULL;
    freeReplyObject(r);
    decision_record_complete(d);
    return d;
}

void sim_trace(sim_t *s, const char *conv)
{
    json_t *d = s->trace ? last_decision(s, conv) : NULL;
    if (!d)
        return;
    char at[40], why[1024];
    const char *owner = json_string_value(json_object_get(d, "owner"));
    redisReply *h = sim_cmd(s, "HGET omni:" KEY_CONVERSATION " team", conv);
    const char *team = owner ? h->str : json_string_value(json_object_get(d, "queue"));
    json_t *tried = json_object_get(d, "tried"), *last = json_array_get(tried, json_array_size(tried) - 1);
    json_t *line = json_pack("{s:s, s:s, s:O, s:O, s:s?, s:O?, s:s?, s:s}", "conversation", conv, "at",
                             omni_rfc3339(json_integer_value(json_object_get(d, "at")), at, sizeof at), "reason",
                             json_object_get(d, "reason"), "outcome", json_object_get(d, "outcome"), "team", team,
                             "target", owner ? json_object_get(last, "target") : NULL, "agent", owner, "why",
                             why_not(d, why, sizeof why));
    char *text = line ? omni_json_dumps(line, JSON_COMPACT) : NULL;
    if (text)
        fprintf(s->trace, "%s\n", text);
    free(text);
    json_decref(line);
    freeReplyObject(h);
    json_decref(d);
}

/* Each conversation still queued at the end, with where it waits and why its last decision left it there. */
static void report_waiting(sim_t *s, FILE *out)
{
    for (size_t t = 0; t < s->p->n_teams; t++)
        for (int p = 1; p <= PRIO_LEVELS; p++) {
            char level[12];
            snprintf(level, sizeof level, "%d", p);
            redisReply *q = sim_cmd(s, "ZRANGE omni:" KEY_TEAM_QUEUE " 0 -1", s->p->teams[t].name, level);
            for (size_t i = 0; q->type == REDIS_REPLY_ARRAY && i < q->elements; i++) {
                json_t *d = last_decision(s, q->element[i]->str);
                const char *reason = json_string_value(json_object_get(d, "reason"));
                char at[40], why[1024];
                fprintf(out, "  conversation %s waits on %s (priority %d); last decided %s (%s): %s\n",
                        q->element[i]->str, s->p->teams[t].name, p,
                        omni_rfc3339(json_integer_value(json_object_get(d, "at")), at, sizeof at),
                        reason ? reason : "?", why_not(d, why, sizeof why));
                json_decref(d);
            }
            freeReplyObject(q);
        }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static const char *human(int64_t ms, char *buf, size_t sz)
{
    if (ms < 60000)
        snprintf(buf, sz, "%llds", (long long)(ms / 1000));
    else if (ms < 3600000)
        snprintf(buf, sz, "%lldm", (long long)(ms / 60000));
    else
        snprintf(buf, sz, "%.1fh", ms / 3600000.0);
    return buf;
}

static long stat(sim_t *s, const char *field)
{
    redisReply *r = sim_cmd(s, "HGET omni:" KEY_STATS " %s", field);
    long v = r->type == REDIS_REPLY_STRING ? atol(r->str) : 0;
    freeReplyObject(r);
    return v;
}

void sim_report(sim_t *s, FILE *out)
{
    char a[40], b[40], c[40];
    fprintf(out, "simulated %zu messages and %zu presence changes (%zu bad lines skipped)", s->n_msgs, s->n_presence,
            s->invalid);
    if (s->n_msgs)
        fprintf(out, " from %s to %s, then the clock ran on to %s for the work left "
                "(its last stop, at most 30 days after the last message)", omni_rfc3339(s->msgs[0].t, a, sizeof a),
                omni_rfc3339(s->msgs[s->n_msgs - 1].t, b, sizeof b), omni_rfc3339(s->until, c, sizeof c));
    fprintf(out, "\n  %ld conversations, %ld folded near-duplicates, %ld duplicates, %ld resolved\n\n",
            s->conversations, s->folded, s->duplicates, s->resolved);
    fprintf(out, "%-16s %-11s %10s %12s\n", "team", "kind", "assigned", "queue peak");
    for (size_t i = 0; i < s->p->n_teams; i++) {
        const team_t *t = &s->p->teams[i];
        long n = 0, peak = 0;
        for (size_t j = 0; j < s->teams.n; j++)
            if (!strcmp(s->teams.names[j], t->name))
                n = s->teams.counts[j];
        for (size_t j = 0; j < s->queue_peaks.n; j++)
            if (!strcmp(s->queue_peaks.names[j], t->name))
                peak = s->queue_peaks.counts[j];
        fprintf(out, "%-16s %-11s %10ld %12ld\n", t->name, t->kind == TEAM_OUTSOURCED ? "partner" : "in-house", n, peak);
    }
    fprintf(out, "\n%-24s %10s\n", "owner", "assigned");
    for (size_t i = 0; i < s->owners.n; i++)
        fprintf(out, "%-24s %10ld\n", s->owners.names[i], s->owners.counts[i]);
    long waiting = 0; /* the policy names every team, so no need to look for queue keys */
    for (size_t t = 0; t < s->p->n_teams; t++)
        waiting += team_waiting(s, s->p->teams[t].name);
    fprintf(out, "\nSLA: %ld met, %ld breached, %ld escalated; still waiting at the end: %ld\n", stat(s, "sla_met"),
            stat(s, "sla_breached"), stat(s, "sla_escalated"), waiting);
    report_waiting(s, out);
    if (s->n_delays) {
        qsort(s->delays, s->n_delays, sizeof *s->delays, cmp_i64);
        char p50[32], p90[32], p99[32], max[32];
        fprintf(out, "first response: median %s, 90%% %s, 99%% %s, longest %s\n",
                human(s->delays[s->n_delays / 2], p50, sizeof p50),
                human(s->delays[s->n_delays * 9 / 10], p90, sizeof p90),
                human(s->delays[s->n_delays * 99 / 100], p99, sizeof p99),
                human(s->delays[s->n_delays - 1], max, sizeof max));
    }
}

static void counter_free(sim_counter_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->names[i]);
    free(c->names);
    free(c->counts);
}

void sim_free(sim_t *s)
{
    for (size_t i = 0; i < s->n_msgs; i++) {
        omni_msg_destroy(&s->msgs[i].msg);
        free(s->msgs[i].json);
    }
    free(s->msgs);
    free(s->ev);
    free(s->delays);
    counter_free(&s->owners);
    counter_free(&s->teams);
    counter_free(&s->queue_peaks);
}
