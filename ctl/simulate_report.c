/* omnictl simulate: reading the input, counting, and the report. */
#include <stdlib.h>
#include <string.h>

#include "simulate.h"
#include "omni/util.h"

static int by_time(const void *a, const void *b)
{
    const sim_msg_t *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line; /* stable: file order for equal times */
}

int sim_load(sim_t *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "omnictl: simulate: %s: cannot read\n", path);
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
    char a[40], b[40];
    fprintf(out, "simulated %zu messages (%zu invalid, skipped)", s->n_msgs, s->invalid);
    if (s->n_msgs)
        fprintf(out, " from %s to %s", omni_rfc3339(s->msgs[0].t, a, sizeof a),
                omni_rfc3339(s->msgs[s->n_msgs - 1].t, b, sizeof b));
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
    free(s->res);
    free(s->delays);
    counter_free(&s->owners);
    counter_free(&s->teams);
    counter_free(&s->queue_peaks);
}
