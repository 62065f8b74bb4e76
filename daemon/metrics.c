/* See metrics.h. */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "omni/metrics.h"
#include "omni/util.h"
#include "scripts.h"

struct router_metrics {
    loop_t *loop;
    store_t *store;
    const router_config_t *cfg;
    const ingest_t *ingest;
    const routing_t *routing;
    omni_metrics_server_t *server;
    char **gauges;      /* metrics.lua's last answer, name/value pairs copied (owned); NULL before the first */
    size_t n_gauges;
    int64_t gauges_at, next_refresh; /* monotonic ms */
    int refreshing;
    int stopping; /* SIGTERM seen: /readyz says so */
};

static const char *gauge(const router_metrics_t *m, const char *name)
{
    for (size_t i = 0; i + 1 < m->n_gauges; i += 2)
        if (!strcmp(m->gauges[i], name))
            return m->gauges[i + 1];
    return NULL;
}

static double gauge_num(const router_metrics_t *m, const char *fmt, const char *a, const char *b)
{
    char name[256];
    snprintf(name, sizeof name, fmt, a, b);
    const char *v = gauge(m, name);
    return v ? strtod(v, NULL) : 0;
}

static const char *team_name(const policy_t *p, size_t i) { return p->teams[i].name; }
static const char *agent_id(const policy_t *p, size_t i) { return p->agents[i].id; }

/* The SLA report's running totals (report:<counter> fields, _report.lua) of each of the n teams (what, "team")
 * or agents ("agent") of the policy, name_of(policy, i) naming each: first responses and their time, met and
 * breached, resolutions, surveys. Counted by the scripts, so every router reports the same values. */
static void render_report_totals(omni_metrics_t *out, const router_metrics_t *m, const char *what,
                                 const char *(*name_of)(const policy_t *, size_t), size_t n)
{
    static const struct { const char *name, *help, *counter, *label, *value; double scale; } fam[] = {
        { "first_responses_total", "First responses recorded on its work.", "responded", NULL, NULL, 1 },
        { "first_response_seconds_total",
          "Their total time since each conversation opened (the mean: divided by first responses).", "response_ms",
          NULL, NULL, 1e-3 },
        { "sla_total", "First-response targets of its work, met or breached.", "met", "outcome", "met", 1 },
        { "sla_total", NULL, "breached", "outcome", "breached", 1 },
        { "resolved_total", "Conversations resolved while it held them.", "resolved", NULL, NULL, 1 },
        { "first_contact_resolved_total", "Of them, those with one assignment in all (first-contact resolution).",
          "first_contact", NULL, NULL, 1 },
        { "survey_answers_total", "Survey scores recorded for conversations resolved while it held them.", "csat",
          "measure", "csat", 1 },
        { "survey_answers_total", NULL, "ces", "measure", "ces", 1 },
        { "survey_answers_total", NULL, "nps", "measure", "nps", 1 },
        { "survey_score_total", "Their scores' sum, by measure (the mean: divided by answers).", "csat_sum",
          "measure", "csat", 1 },
        { "survey_score_total", NULL, "ces_sum", "measure", "ces", 1 },
        { "csat_satisfied_total", "CSAT scores of 4 and 5 (CSAT %: divided by answers).", "csat_satisfied", NULL,
          NULL, 1 },
        { "nps_answers_total", "NPS scores by group: promoters 9-10, detractors 0-6.", "nps_promoters", "group",
          "promoter", 1 },
        { "nps_answers_total", NULL, "nps_detractors", "group", "detractor", 1 },
    };
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        char name[96];
        snprintf(name, sizeof name, "omnirouter_%s_%s", what, fam[f].name);
        if (fam[f].help)
            omni_metrics_family(out, name, "counter", fam[f].help);
        for (size_t i = 0; i < n; i++) {
            const char *id = name_of(&m->cfg->policy, i);
            char key[160];
            snprintf(key, sizeof key, "%s_report|%%s|%%s", what);
            omni_metrics_sample(out, name, gauge_num(m, key, id, fam[f].counter) * fam[f].scale, what, id,
                                fam[f].label, fam[f].value, NULL);
        }
    }
}

static void render_team_gauges(omni_metrics_t *out, const router_metrics_t *m)
{
    const policy_t *p = &m->cfg->policy;
    omni_metrics_family(out, "omnirouter_team_holding", "gauge", "Conversations a team (or its agents) holds now.");
    for (size_t i = 0; i < p->n_teams; i++)
        omni_metrics_sample(out, "omnirouter_team_holding", gauge_num(m, "load|%s", p->teams[i].name, ""), "team",
                            p->teams[i].name, NULL);
    omni_metrics_family(out, "omnirouter_team_assignments_total", "counter", "Conversations assigned to a team.");
    for (size_t i = 0; i < p->n_teams; i++)
        omni_metrics_sample(out, "omnirouter_team_assignments_total", gauge_num(m, "assigned|%s", p->teams[i].name, ""),
                            "team", p->teams[i].name, "kind",
                            p->teams[i].kind == TEAM_OUTSOURCED ? "partner" : "in-house", NULL);
    omni_metrics_family(out, "omnirouter_queue_depth", "gauge", "Conversations waiting in a team's queue, by priority.");
    for (size_t i = 0; i < p->n_teams; i++)
        for (int prio = 1; prio <= PRIO_LEVELS; prio++) {
            char level[12];
            snprintf(level, sizeof level, "%d", prio);
            omni_metrics_sample(out, "omnirouter_queue_depth", gauge_num(m, "depth|%s|%s", p->teams[i].name, level),
                                "team", p->teams[i].name, "priority", policy_priority_name(prio), NULL);
        }
    omni_metrics_family(out, "omnirouter_queue_oldest_wait_seconds", "gauge",
                        "How long the longest-waiting conversation of a team's queue has waited (0: none).");
    int64_t now = clock_now();
    for (size_t i = 0; i < p->n_teams; i++) {
        double at = gauge_num(m, "oldest|%s", p->teams[i].name, "");
        omni_metrics_sample(out, "omnirouter_queue_oldest_wait_seconds", at > 0 ? (double)(now - (int64_t)at) / 1000.0 : 0,
                            "team", p->teams[i].name, NULL);
    }
    /* Time to breach: the earliest SLA due time among the team's waiting work (queues are scored by it; work
     * without an SLA by when it was queued + 1e11 ms, so a score that far ahead is none). */
    omni_metrics_family(out, "omnirouter_queue_next_breach_seconds", "gauge",
                        "Seconds until the first SLA due time among a team's waiting work (negative: overdue). "
                        "Absent when no waiting work has an SLA.");
    for (size_t i = 0; i < p->n_teams; i++) {
        double due = gauge_num(m, "due|%s", p->teams[i].name, "");
        if (due > 0 && due < (double)now + 5e10)
            omni_metrics_sample(out, "omnirouter_queue_next_breach_seconds", (due - (double)now) / 1000.0, "team",
                                p->teams[i].name, NULL);
    }
    omni_metrics_family(out, "omnirouter_agent_holding", "gauge", "Conversations an agent holds or is offered now.");
    for (size_t i = 0; i < p->n_agents; i++)
        omni_metrics_sample(out, "omnirouter_agent_holding", gauge_num(m, "agent_load|%s", p->agents[i].id, ""),
                            "agent", p->agents[i].id, NULL);
    omni_metrics_family(out, "omnirouter_agent_assignments_total", "counter",
                        "Conversations assigned or offered to an agent.");
    for (size_t i = 0; i < p->n_agents; i++)
        omni_metrics_sample(out, "omnirouter_agent_assignments_total",
                            gauge_num(m, "agent_assigned|%s", p->agents[i].id, ""), "agent", p->agents[i].id, NULL);
    omni_metrics_family(out, "omnirouter_agent_available", "gauge", "1 when the agent's presence is available.");
    for (size_t i = 0; i < p->n_agents; i++)
        omni_metrics_sample(out, "omnirouter_agent_available", gauge_num(m, "agent_available|%s", p->agents[i].id, ""),
                            "agent", p->agents[i].id, NULL);
    static const struct { const char *field, *name, *help; } stats[] = {
        { "sla_breached", "omnirouter_sla_breaches_total", "Conversations whose first-response target passed unmet." },
        { "sla_met", "omnirouter_sla_met_total", "First responses within the target." },
        { "sla_escalated", "omnirouter_sla_escalations_total", "Conversations escalated before their SLA breached." },
        { "resolved", "omnirouter_conversations_resolved_total", "Conversations resolved." },
        { "recorded", "omnirouter_conversations_recorded_total",
          "New conversations a rule with record: true stored resolved at once (not work)." },
        { "unservable", "omnirouter_unservable_total", "Conversations found that no target of their rule can ever take." },
        { "follow_ups", "omnirouter_follow_ups_opened_total", "Follow-ups opened (follow_up.after) as new work." },
        { "follow_ups_skipped", "omnirouter_follow_ups_skipped_total",
          "Follow-ups not opened when due: the customer had an open or later conversation." },
        { "surveys", "omnirouter_surveys_total",
          "Survey answers recorded (CSAT, CES, NPS of resolved conversations; omni-api, omnictl)." },
        { "duplicates", "omnirouter_redis_duplicates_total", "Messages found already stored, by every router." },
        { "linked", "omnirouter_identities_linked_total", "Identities linked to one customer (omnictl customer link)." },
        { "unlinked", "omnirouter_identities_unlinked_total", "Links undone." },
    };
    static const char *const offer_outcomes[] = { "accepted", "rejected", "expired", "transferred" };
    omni_metrics_family(out, "omnirouter_offers_total", "counter",
                        "Offers to agents by how they ended (every router, omni-api and omni-webhooks counted).");
    for (size_t i = 0; i < sizeof offer_outcomes / sizeof *offer_outcomes; i++)
        omni_metrics_sample(out, "omnirouter_offers_total", gauge_num(m, "stats|offers_%s%s", offer_outcomes[i], ""),
                            "outcome", offer_outcomes[i], NULL);
    for (size_t i = 0; i < sizeof stats / sizeof *stats; i++) {
        omni_metrics_family(out, stats[i].name, "counter", stats[i].help);
        omni_metrics_sample(out, stats[i].name, gauge_num(m, "stats|%s%s", stats[i].field, ""), NULL);
    }
    omni_metrics_family(out, "omnirouter_redis_gauges_age_seconds", "gauge",
                        "How old the gauges read from Redis are (they are read every 5 s; -1: never yet).");
    omni_metrics_sample(out, "omnirouter_redis_gauges_age_seconds",
                        m->gauges ? (double)(omni_mono_ms() - m->gauges_at) / 1000.0 : -1, NULL);
}

static void render(omni_metrics_t *out, void *data)
{
    const router_metrics_t *m = data;
    const ingest_stats_t *st = ingest_stats(m->ingest);
    const routing_stats_t *rs = routing_stats(m->routing);
    omni_metrics_family(out, "omnirouter_messages_received_total", "counter", "Messages received from connectors.");
    omni_metrics_sample(out, "omnirouter_messages_received_total", (double)st->received, NULL);
    omni_metrics_family(out, "omnirouter_messages_stored_total", "counter", "Messages stored (and ACKed), by channel.");
    for (int k = 0; k < CHANNEL_KINDS; k++)
        omni_metrics_sample(out, "omnirouter_messages_stored_total", (double)st->stored_by_channel[k], "channel",
                            policy_channel_kind_name(k), NULL);
    omni_metrics_family(out, "omnirouter_messages_duplicate_total", "counter", "Messages already stored: ACKed again.");
    omni_metrics_sample(out, "omnirouter_messages_duplicate_total", (double)st->duplicates, NULL);
    omni_metrics_family(out, "omnirouter_messages_folded_total", "counter", "Near-copies folded into their first copy.");
    omni_metrics_sample(out, "omnirouter_messages_folded_total", (double)st->folded, NULL);
    omni_metrics_family(out, "omnirouter_messages_nacked_total", "counter",
                        "Messages refused, by the field that failed (\"protocol\": frames that break OMNI/1).");
    for (size_t i = 0; i < st->n_nack_kinds + (st->nacks[INGEST_NACK_KINDS].n > 0); i++) {
        size_t j = i < st->n_nack_kinds ? i : INGEST_NACK_KINDS;
        omni_metrics_sample(out, "omnirouter_messages_nacked_total", (double)st->nacks[j].n, "field", st->nacks[j].field,
                            NULL);
    }
    omni_metrics_family(out, "omnirouter_messages_busy_total", "counter",
                        "BUSY answers (Redis away or not durable, max_inflight reached, or stopping).");
    omni_metrics_sample(out, "omnirouter_messages_busy_total", (double)st->busy, NULL);
    omni_metrics_family(out, "omnirouter_peers_dropped_total", "counter", "Connectors dropped for protocol violations.");
    omni_metrics_sample(out, "omnirouter_peers_dropped_total", (double)st->peers_dropped, NULL);
    omni_metrics_family(out, "omnirouter_inflight_messages", "gauge", "Messages waiting for Redis to store them.");
    omni_metrics_sample(out, "omnirouter_inflight_messages", (double)ingest_inflight(m->ingest), NULL);
    omni_metrics_family(out, "omnirouter_redis_up", "gauge", "1 when Redis is reached and durable: messages are ACKed.");
    omni_metrics_sample(out, "omnirouter_redis_up", store_up(m->store) ? 1 : 0, NULL);
    omni_metrics_family(out, "omnirouter_routing_decisions_total", "counter", "Routing decisions by outcome.");
    omni_metrics_sample(out, "omnirouter_routing_decisions_total", (double)rs->assigned, "outcome", "assigned", NULL);
    omni_metrics_sample(out, "omnirouter_routing_decisions_total", (double)rs->queued, "outcome", "queued", NULL);
    omni_metrics_sample(out, "omnirouter_routing_decisions_total", (double)rs->recorded, "outcome", "recorded", NULL);
    omni_metrics_sample(out, "omnirouter_routing_decisions_total", (double)rs->stale, "outcome", "stale", NULL);
    omni_metrics_family(out, "omnirouter_routing_moved_total", "counter",
                        "Conversations routed again (timeout, escalation, owner offline, plan expired).");
    omni_metrics_sample(out, "omnirouter_routing_moved_total", (double)rs->moved, NULL);
    omni_metrics_family(out, "omnirouter_queue_drained_total", "counter", "Waiting conversations assigned by drains.");
    omni_metrics_sample(out, "omnirouter_queue_drained_total", (double)rs->drained, NULL);
    omni_metrics_histogram(out, "omnirouter_redis_roundtrip_seconds",
                           "From sending a script call to Redis to its reply (every router-side script).",
                           store_rtt(m->store));
    omni_metrics_histogram(out, "omnirouter_routing_latency_seconds",
                           "From a new conversation's ACK to its routing decision committed in Redis.", &rs->latency);
    omni_metrics_family(out, "omnirouter_config_info", "gauge", "The configuration version this router runs.");
    omni_metrics_sample(out, "omnirouter_config_info", 1, "version", m->cfg->version, NULL);
    render_team_gauges(out, m);
    render_report_totals(out, m, "team", team_name, m->cfg->policy.n_teams);
    render_report_totals(out, m, "agent", agent_id, m->cfg->policy.n_agents);
}

/* Ready: Redis reached, durable, taking messages (what store_up says). */
static int ready(void *data, char *why, size_t whysz)
{
    const router_metrics_t *m = data;
    if (store_up(m->store) && !m->stopping)
        return 1;
    snprintf(why, whysz, "%s", m->stopping ? "stopping: answering BUSY"
                               : store_connected(m->store) ? "redis durability not verified: answering BUSY"
                                                           : "redis unreachable: answering BUSY");
    return 0;
}

static void on_metrics_fd(loop_t *loop, int fd, int events, void *data)
{
    (void)loop, (void)fd, (void)events;
    router_metrics_t *m = data;
    omni_metrics_server_run(m->server);
}

void router_metrics_set_stopping(router_metrics_t *m) { m->stopping = 1; }

int router_metrics_port(const router_metrics_t *m) { return omni_metrics_server_port(m->server); }

router_metrics_t *router_metrics_new(loop_t *loop, store_t *store, const router_config_t *cfg, const ingest_t *ingest,
                                     const routing_t *routing, char *err, size_t errsz)
{
    router_metrics_t *m = omni_calloc(1, sizeof *m);
    *m = (router_metrics_t){ .loop = loop, .store = store, .cfg = cfg, .ingest = ingest, .routing = routing };
    m->server = omni_metrics_server_new(cfg->router.metrics_listen, render, m, err, errsz);
    if (!m->server) {
        free(m);
        return NULL;
    }
    omni_metrics_server_set_ready(m->server, ready);
    loop_add_fd(loop, omni_metrics_server_fd(m->server), LOOP_READ, on_metrics_fd, m);
    return m;
}

static void free_gauges(router_metrics_t *m)
{
    for (size_t i = 0; i < m->n_gauges; i++)
        free(m->gauges[i]);
    free(m->gauges);
    m->gauges = NULL;
    m->n_gauges = 0;
}

static void on_gauges(store_t *store, redisReply *rep, void *data)
{
    (void)store;
    router_metrics_t *m = data;
    m->refreshing = 0;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) /* checked against metrics.lua's @reply by the store */
        return;
    free_gauges(m);
    m->gauges = omni_calloc(rep->elements + 1, sizeof *m->gauges);
    for (size_t i = 0; i < rep->elements; i++)
        m->gauges[i] = omni_strdup(rep->element[i]->str);
    m->n_gauges = rep->elements;
    m->gauges_at = omni_mono_ms();
}

void router_metrics_tick(router_metrics_t *m)
{
    omni_metrics_server_run(m->server);
    int64_t now = omni_mono_ms();
    if (m->refreshing || now < m->next_refresh || !store_connected(m->store))
        return;
    const policy_t *p = &m->cfg->policy;
    const char **argv = omni_calloc(METRICS_NARGS + p->n_teams, sizeof *argv);
    argv[METRICS_ARG_PREFIX] = m->cfg->redis.key_prefix;
    for (size_t i = 0; i < p->n_teams; i++)
        argv[METRICS_NARGS + i] = p->teams[i].name;
    if (store_script(m->store, LUA_METRICS, (int)(METRICS_NARGS + p->n_teams), argv, NULL, on_gauges, m) == 0)
        m->refreshing = 1;
    m->next_refresh = now + METRICS_REFRESH_MS;
    free(argv);
}

void router_metrics_set_config(router_metrics_t *m, const router_config_t *cfg)
{
    m->cfg = cfg;
    m->next_refresh = 0;
}

void router_metrics_destroy(router_metrics_t **m)
{
    if (!m || !*m)
        return;
    loop_del_fd((*m)->loop, omni_metrics_server_fd((*m)->server));
    omni_metrics_server_destroy(&(*m)->server);
    free_gauges(*m);
    free(*m);
    *m = NULL;
}
