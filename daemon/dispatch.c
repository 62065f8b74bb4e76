/* See dispatch.h. */
#include "dispatch.h"
#include <errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"

#include "omni/log.h"
#include "omni/secret.h"
#include "omni/util.h"
#include "plan.h"
#include "scripts.h"

/* Plans per assign.lua call: a call costs Redis more than a decision's own writes, so the plans made in one
 * turn of the loop go together (routing_flush, before the loop sleeps); bounded, as a call holds Redis while
 * it runs (~100-200 us a decision). */
#define ASSIGN_BATCH 16

/* The senders this router has made a first plan for (routing_first_plan): a Bloom filter of 2^22 bits and
 * three probes (512 KiB). A false "seen" only means the usual path; it is cleared when it holds so many that
 * false ones would become common, so a long-running router keeps making first plans for new senders. */
#define SEEN_BITS (1u << 22)
#define SEEN_MAX 500000
#define CATCHUP_MAX 64
#define CATCHUP_KEEP_MS 10000

typedef struct decision_ctx {
    char conv[32];
    char reason[32];
    int64_t started; /* monotonic ms when the plan was made */
} decision_ctx_t;

/* Plans made and not sent yet, or sent and waiting for their answer (then the callback's, owned). */
typedef struct plan_batch {
    routing_t *r;
    size_t n;
    char *bodies[ASSIGN_BATCH]; /* owned: each plan's JSON until sent */
    decision_ctx_t ctx[ASSIGN_BATCH];
} plan_batch_t;

struct routing {
    plan_batch_t *batch; /* plans waiting for routing_flush (NULL: none) */
    store_t *store;
    const router_config_t *cfg;
    const policy_t *p;
    routing_stats_t stats;
    int due_busy, drains_busy, clock_busy;
    bool clock_known; /* test clock: its offset read at least once, so decisions carry the test time */
    int64_t next_forced_drain; /* monotonic ms */
    bool seeded;    /* seed.lua sent since the store came up or the policy changed */
    bool seed_done; /* seed.lua answered once: the ready index exists, decisions can use it */
    bool unrouted_now; /* the next due scan takes what arrived before the seed, however new (the catch-up) */
    bool catchup_busy; /* the catch-up is in flight */
    int64_t seed_done_at; /* router clock ms */
    /* A conversation stored around the seed's answer may reach both the catch-up and routing_new_conversation
     * (when its store's answer comes after the seed's): each one decides it only if the other did not, or the
     * second decision would only come back stale (yet counted as routed, omnictl status). early: decided by
     * routing_new_conversation before the catch-up answered; handed: what the catch-up handed out, kept
     * CATCHUP_KEEP_MS for stores answered late. Bounded: past that, a stale second decision at worst. */
    char early[CATCHUP_MAX][32], handed[CATCHUP_MAX][32];
    size_t n_early, n_handed;
    uint64_t *seen;       /* owned: SEEN_BITS bits, see routing_first_plan */
    size_t seen_n;        /* senders added since it was cleared */
};

routing_t *routing_new(store_t *store, const router_config_t *cfg)
{
    routing_t *r = omni_calloc(1, sizeof *r);
    r->store = store;
    r->cfg = cfg;
    r->p = &cfg->policy;
    r->seen = omni_calloc(SEEN_BITS / 64, sizeof *r->seen);
    return r;
}

static void batch_free(plan_batch_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->bodies[i]);
    free(b);
}

void routing_destroy(routing_t **r)
{
    if (!r || !*r)
        return;
    batch_free((*r)->batch); /* plans never sent: their conversations stay unrouted, for any router's tick */
    free((*r)->seen);
    free(*r);
    *r = NULL;
}

void routing_set_config(routing_t *r, const router_config_t *cfg)
{
    r->cfg = cfg;
    r->p = &cfg->policy;
    r->seeded = false;
}

bool routing_enabled(const routing_t *r) { return r->p->n_routes > 0; }
bool routing_clock_known(const routing_t *r) { return !clock_test_mode() || r->clock_known; }
const routing_stats_t *routing_stats(const routing_t *r) { return &r->stats; }

/* One decision's answer (outcome and detail, borrowed), or why there is none (rep: NULL or an error). */
static void decided(routing_t *r, const decision_ctx_t *c, const redisReply *rep, const char *what, const char *who)
{
    if (!what) {
        /* Not decided: the conversation stays unrouted, or keeps its owner, until due.lua hands it out again. */
        omni_log_event(OMNI_LOG_WARN, OMNI_MSGID_ROUTING_FAILED, (const char *[]){ "CONVERSATION", c->conv, NULL },
                       "routing: conversation %s (%s): %s", c->conv, c->reason,
                       rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no answer from redis; it will be retried");
        return;
    }
    if (!strcmp(c->reason, "new"))
        omni_histogram_observe(&r->stats.latency, (double)(omni_mono_ms() - c->started) / 1000.0);
    if (!strcmp(what, "assigned") || !strcmp(what, "offered")) {
        r->stats.assigned++;
        bool agent = !strncmp(who, "agent:", 6);
        const char *id = strchr(who, ':') ? strchr(who, ':') + 1 : who;
        omni_log_event(OMNI_LOG_DEBUG, OMNI_MSGID_ASSIGNED,
                       (const char *[]){ "CONVERSATION", c->conv, agent ? "AGENT" : "PARTNER", id, NULL },
                       "conversation %s: %s %s (%s)", c->conv, what[0] == 'a' ? "assigned to" : "offered to", who,
                       c->reason);
    } else if (!strcmp(what, "queued")) {
        r->stats.queued++;
        omni_log_event(OMNI_LOG_DEBUG, OMNI_MSGID_QUEUED, (const char *[]){ "CONVERSATION", c->conv, "TEAM", who, NULL },
                       "conversation %s: queued on %s (%s); nobody can take it now", c->conv, who, c->reason);
    } else if (!strcmp(what, "recorded")) {
        r->stats.recorded++;
        omni_debug("conversation %s: recorded by rule %s: stored resolved, nobody's work", c->conv, who);
    } else if (!strcmp(what, "stale")) {
        r->stats.stale++;
        omni_debug("conversation %s: changed by someone else meanwhile; left as it is", c->conv);
    } else {
        omni_debug("conversation %s: %s; not routed", c->conv, who);
    }
}

/* assign.lua's answer to a batch (data: the batch, owned here): a record per plan, in order. */
static void on_decided(store_t *store, redisReply *rep, void *data)
{
    (void)store;
    plan_batch_t *b = data;
    /* checked against assign.lua's "@reply" declaration by the store: whole records; here, one per plan */
    bool ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == b->n * ASSIGN_REPLY_FIELDS;
    if (rep && rep->type == REDIS_REPLY_ARRAY && !ok)
        omni_warn("routing: assign.lua answered %zu records for %zu plans", rep->elements / ASSIGN_REPLY_FIELDS, b->n);
    for (size_t i = 0; i < b->n; i++) {
        redisReply **f = ok ? rep->element + i * ASSIGN_REPLY_FIELDS : NULL;
        decided(b->r, &b->ctx[i], rep, f ? f[ASSIGN_REPLY_OUTCOME]->str : NULL, f ? f[ASSIGN_REPLY_DETAIL]->str : NULL);
    }
    b->n = 0; /* the bodies went with the call */
    free(b);
}

void routing_flush(routing_t *r)
{
    plan_batch_t *b = r->batch;
    if (!b)
        return;
    r->batch = NULL;
    char *days = route_quota_days(r->p, clock_now());
    const char *argv[ASSIGN_NARGS + ASSIGN_BATCH] = { [ASSIGN_ARG_PREFIX] = r->cfg->redis.key_prefix,
                                                     [ASSIGN_ARG_DEFAULT_QUEUE] = r->cfg->conversations.default_queue,
                                                     [ASSIGN_ARG_DAYS] = days };
    for (size_t i = 0; i < b->n; i++)
        argv[ASSIGN_NARGS + i] = b->bodies[i];
    int sent = store_script(r->store, LUA_ASSIGN, ASSIGN_NARGS + (int)b->n, argv, NULL, on_decided, b);
    free(days);
    for (size_t i = 0; i < b->n; i++) { /* the store copied what it sends */
        free(b->bodies[i]);
        b->bodies[i] = NULL;
    }
    if (sent != 0) {
        for (size_t i = 0; i < b->n; i++)
            omni_debug("routing: conversation %s waits for redis", b->ctx[i].conv);
        b->n = 0;
        free(b);
    } else {
        r->stats.routed += b->n;
    }
}

/* Adds a plan to the next assign.lua call (routing_flush sends it). Takes ownership of plan. */
static void decide(routing_t *r, json_t *plan, const char *conv, const char *reason)
{
    if (!r->batch) {
        r->batch = omni_calloc(1, sizeof *r->batch);
        r->batch->r = r;
    }
    plan_batch_t *b = r->batch;
    b->bodies[b->n] = omni_json_dumps(plan, JSON_COMPACT);
    json_decref(plan);
    decision_ctx_t *c = &b->ctx[b->n++];
    snprintf(c->conv, sizeof c->conv, "%s", conv);
    snprintf(c->reason, sizeof c->reason, "%s", reason);
    c->started = omni_mono_ms();
    if (b->n == ASSIGN_BATCH)
        routing_flush(r);
}

void routing_new_conversation(routing_t *r, const char *conversation, const omni_msg_t *msg, const char *identity,
                              const routing_customer_t *cu)
{
    if (!routing_enabled(r) || (clock_test_mode() && !r->clock_known) || !r->seed_done)
        return; /* stays unrouted: the tick routes it once the test clock is known and the policy seeded */
    for (size_t i = 0; i < r->n_handed; i++)
        if (!strcmp(r->handed[i], conversation))
            return; /* the catch-up handed it out: decided already */
    if ((r->unrouted_now || r->catchup_busy) && r->n_early < CATCHUP_MAX)
        snprintf(r->early[r->n_early++], sizeof r->early[0], "%s", conversation);
    decide(r, route_plan_new(r->p, conversation, msg, identity, cu->conversations, cu->tier, cu->last_owner,
                             clock_now()),
           conversation, "new");
}

/* Whether identity was added to the filter before; adds it. */
static bool seen_before(routing_t *r, const char *identity)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a, then three probes by double hashing */
    for (const char *c = identity; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    uint32_t a = (uint32_t)h, b = (uint32_t)(h >> 32) | 1u;
    bool all = true;
    for (uint32_t k = 0; k < 3; k++) {
        uint32_t bit = (a + k * b) & (SEEN_BITS - 1);
        if (!(r->seen[bit / 64] & (1ull << (bit % 64)))) {
            all = false;
            r->seen[bit / 64] |= 1ull << (bit % 64);
        }
    }
    if (!all && ++r->seen_n >= SEEN_MAX) {
        memset(r->seen, 0, SEEN_BITS / 8);
        r->seen_n = 0;
    }
    return all;
}

char *routing_first_plan(routing_t *r, const omni_msg_t *msg, const char *identity)
{
    if (!routing_enabled(r) || (clock_test_mode() && !r->clock_known) || !r->seed_done || seen_before(r, identity))
        return NULL;
    json_t *plan = route_plan_new(r->p, "", msg, identity, 1, "", "", clock_now());
    char *body = omni_json_dumps(plan, JSON_COMPACT);
    json_decref(plan);
    return body;
}

char *routing_days(routing_t *r) { return route_quota_days(r->p, clock_now()); }

void routing_first_decided(routing_t *r, const char *conversation, const char *outcome, const char *detail,
                           int64_t planned)
{
    decision_ctx_t c = { .started = planned };
    snprintf(c.conv, sizeof c.conv, "%s", conversation);
    snprintf(c.reason, sizeof c.reason, "new");
    r->stats.routed++;
    decided(r, &c, NULL, outcome, detail);
}

/* One record of due.lua's answer (DUE_REPLY_FIELDS strings, checked by the store). */
static void route_due(routing_t *r, redisReply **f)
{
    const char *s[DUE_REPLY_FIELDS];
    for (int i = 0; i < DUE_REPLY_FIELDS; i++)
        s[i] = f[i]->str;
    json_t *plan = route_plan_due(r->p, s, clock_now());
    if (!plan)
        return;
    if (strcmp(s[DUE_REPLY_KIND], "new"))
        r->stats.moved++;
    omni_log_event(OMNI_LOG_DEBUG, OMNI_MSGID_REROUTED, (const char *[]){ "CONVERSATION", s[DUE_REPLY_CONVERSATION], NULL },
                   "conversation %s: %s; routing it again", s[DUE_REPLY_CONVERSATION], s[DUE_REPLY_KIND]);
    decide(r, plan, s[DUE_REPLY_CONVERSATION], s[DUE_REPLY_KIND]);
}

static void on_due(store_t *store, redisReply *rep, void *data)
{
    (void)store;
    routing_t *r = data;
    r->due_busy = 0;
    bool catchup = r->catchup_busy;
    r->catchup_busy = false;
    for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i + DUE_REPLY_FIELDS <= rep->elements;
         i += DUE_REPLY_FIELDS) {
        const char *conv = rep->element[i + DUE_REPLY_CONVERSATION]->str;
        bool skip = false;
        if (catchup && !strcmp(rep->element[i + DUE_REPLY_KIND]->str, "new")) {
            for (size_t j = 0; j < r->n_early && !skip; j++)
                skip = !strcmp(r->early[j], conv); /* routing_new_conversation decided it */
            if (!skip && r->n_handed < CATCHUP_MAX)
                snprintf(r->handed[r->n_handed++], sizeof r->handed[0], "%s", conv);
        }
        if (!skip)
            route_due(r, rep->element + i);
    }
    if (catchup)
        r->n_early = 0;
}

static void on_drained(store_t *store, redisReply *rep, void *data)
{
    (void)store;
    routing_t *r = data;
    r->drains_busy--;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0) { /* DRAIN_REPLY_FIELDS == 1 */
        r->stats.drained += rep->elements;
        omni_debug("queues: %zu waiting conversations assigned", rep->elements);
    } else if (rep && rep->type == REDIS_REPLY_ERROR) {
        omni_warn("routing: drain: %s", rep->str);
    }
}

static void on_clock(store_t *store, redisReply *rep, void *data)
{
    (void)store;
    routing_t *r = data;
    r->clock_busy = 0;
    if (rep && rep->type == REDIS_REPLY_STRING) {
        clock_set_offset(strtoll(rep->str, NULL, 10));
        r->clock_known = true;
    }
}

static void on_seeded(store_t *store, redisReply *rep, void *data)
{
    (void)store;
    routing_t *r = data;
    r->seeded = rep && rep->type == REDIS_REPLY_INTEGER;
    if (r->seeded && !r->seed_done) /* what arrived before it waits unrouted: route it at the next tick */
        r->seed_done = r->unrouted_now = true, r->seed_done_at = clock_now();
    else if (!r->seeded)
        omni_warn("routing: seed.lua: %s", rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no reply");
}

/* "core:0:ll tier2:3:rr": the teams agent a is in, its place in each team's roster (policy order) and the
 * team's strategy, as seed.lua keeps them for the ready index (docs/redis.md). */
static bool has_team(const agent_t *a, const char *team)
{
    for (size_t i = 0; i < a->n_teams; i++)
        if (!strcmp(a->teams[i], team))
            return true;
    return false;
}

static void agent_rosters(const policy_t *p, const agent_t *a, FILE *out)
{
    static const char *const strategy[] = { [STRATEGY_LEAST_LOADED] = "ll", [STRATEGY_ROUND_ROBIN] = "rr",
                                            [STRATEGY_LONGEST_IDLE] = "li" };
    bool first = true;
    for (size_t t = 0; t < p->n_teams; t++) {
        const team_t *team = &p->teams[t];
        size_t pos = 0;
        for (size_t i = 0; i < p->n_agents && &p->agents[i] != a; i++)
            pos += has_team(&p->agents[i], team->name);
        if (!has_team(a, team->name))
            continue;
        fprintf(out, "%s%s:%zu:%s", first ? "" : " ", team->name, pos, strategy[team->strategy]);
        first = false;
    }
}

int routing_seed_init(routing_seed_t *sd, const char *prefix, const policy_t *p)
{
    static const char *const names[] = { "available", "away", "offline" };
    unsigned char raw[16];
    /* the kernel's pool is ready long before a router starts: this never waits */
    if (getrandom(raw, sizeof raw, GRND_NONBLOCK) != (ssize_t)sizeof raw)
        return -1;
    omni_hex(raw, sizeof raw, sd->salt);
    json_t *teams = json_object();
    for (size_t i = 0; i < p->n_teams; i++) {
        const team_t *t = &p->teams[i];
        json_object_set_new(teams, t->name, json_boolean(t->kind == TEAM_OUTSOURCED && t->contract.mask_contact));
    }
    sd->masks = omni_json_dumps(teams, JSON_COMPACT);
    json_decref(teams);
    /* each agent's caps ("email=5 sms=3") and rosters, NUL-terminated one after the other */
    size_t len = 0, *at = omni_calloc(2 * p->n_agents + 1, sizeof *at);
    FILE *text = open_memstream(&sd->text, &len);
    if (!text)
        omni_panic("open_memstream: %s", strerror(errno));
    for (size_t i = 0; i < p->n_agents; i++) {
        const agent_t *a = &p->agents[i];
        at[2 * i] = (size_t)ftell(text);
        bool first = true;
        for (int k = 0; k < CHANNEL_KINDS; k++)
            if (a->capacity[k] > 0) {
                fprintf(text, "%s%s=%d", first ? "" : " ", policy_channel_kind_name(k), a->capacity[k]);
                first = false;
            }
        fputc('\0', text);
        at[2 * i + 1] = (size_t)ftell(text);
        agent_rosters(p, a, text);
        fputc('\0', text);
    }
    fclose(text);
    sd->argc = (int)(SEED_NARGS + 4 * p->n_agents);
    sd->argv = omni_calloc((size_t)sd->argc, sizeof *sd->argv);
    sd->argv[SEED_ARG_PREFIX] = prefix;
    sd->argv[SEED_ARG_SALT] = sd->salt;
    sd->argv[SEED_ARG_TEAMS] = sd->masks;
    snprintf(sd->follow_up, sizeof sd->follow_up, "%lld", (long long)p->follow_up_after_s * 1000);
    sd->argv[SEED_ARG_FOLLOW_UP_AFTER_MS] = sd->follow_up;
    for (size_t i = 0; i < p->n_agents; i++) { /* then the agents: id, presence, caps, rosters */
        sd->argv[SEED_NARGS + 4 * i] = p->agents[i].id;
        sd->argv[SEED_NARGS + 4 * i + 1] = names[p->agents[i].presence];
        sd->argv[SEED_NARGS + 4 * i + 2] = sd->text + at[2 * i];
        sd->argv[SEED_NARGS + 4 * i + 3] = sd->text + at[2 * i + 1];
    }
    free(at);
    return 0;
}

void routing_seed_clear(routing_seed_t *sd)
{
    free(sd->masks);
    free(sd->text);
    free(sd->argv);
    sd->masks = sd->text = NULL;
    sd->argv = NULL;
}

/* Agents start with the presence the policy gives them, unless Redis already has one; each team's masking
 * and the installation's pseudonym salt are written too (seed.lua). */
static void seed_agents(routing_t *r)
{
    routing_seed_t sd;
    if (routing_seed_init(&sd, r->cfg->redis.key_prefix, r->p) != 0) {
        omni_warn("routing: no random bytes for the masking salt yet; seeding at the next tick");
        return;
    }
    r->seeded = store_script(r->store, LUA_SEED, sd.argc, sd.argv, NULL, on_seeded, r) == 0;
    routing_seed_clear(&sd);
}

void routing_due_argv(routing_argbuf_t *b, const char *prefix, const policy_t *p, int64_t now, bool test_clock,
                      const char *argv[DUE_NARGS])
{
    snprintf(b->now, sizeof b->now, "%lld", (long long)now);
    snprintf(b->limit, sizeof b->limit, "%d", ROUTING_DUE_BATCH);
    snprintf(b->grace, sizeof b->grace, "%d", p->offline_grace_ms);
    snprintf(b->after, sizeof b->after, "%d", ROUTING_UNROUTED_AFTER_MS);
    snprintf(b->lease, sizeof b->lease, "%d", ROUTING_LEASE_MS);
    argv[DUE_ARG_PREFIX] = prefix;
    argv[DUE_ARG_NOW] = b->now;
    argv[DUE_ARG_LIMIT] = b->limit;
    argv[DUE_ARG_GRACE_MS] = b->grace;
    argv[DUE_ARG_UNROUTED_AFTER_MS] = b->after;
    argv[DUE_ARG_LEASE_MS] = b->lease;
    argv[DUE_ARG_TEST_CLOCK] = test_clock ? "1" : "0";
}

void routing_drain_argv(routing_argbuf_t *b, const char *prefix, const policy_t *p, const char *team, int64_t now,
                        const char *days, bool force, const char *argv[DRAIN_NARGS])
{
    snprintf(b->now, sizeof b->now, "%lld", (long long)now);
    snprintf(b->scan, sizeof b->scan, "%d", ROUTING_DRAIN_SCAN);
    snprintf(b->aging, sizeof b->aging, "%d", p->aging_every_ms);
    argv[DRAIN_ARG_PREFIX] = prefix;
    argv[DRAIN_ARG_TEAM] = team;
    argv[DRAIN_ARG_NOW] = b->now;
    argv[DRAIN_ARG_SCAN] = b->scan;
    argv[DRAIN_ARG_AGING_MS] = b->aging;
    argv[DRAIN_ARG_DAYS] = days;
    argv[DRAIN_ARG_FORCE] = force ? "1" : "0";
}

void routing_tick(routing_t *r)
{
    if (!store_up(r->store)) {
        r->seeded = false;
        return;
    }
    const char *prefix = r->cfg->redis.key_prefix;
    if (!r->seeded && (r->p->n_agents || r->p->n_teams))
        seed_agents(r);
    if (clock_test_mode() && !r->clock_busy) {
        const char *argv[CLOCK_NARGS] = { [CLOCK_ARG_PREFIX] = prefix };
        if (store_script(r->store, LUA_CLOCK, CLOCK_NARGS, argv, NULL, on_clock, r) == 0)
            r->clock_busy = 1;
    }
    routing_argbuf_t b;
    if (!routing_enabled(r) && clock_test_mode() && r->clock_known && !r->due_busy) {
        /* Nothing routes, so nothing is due; the scan still records the time it has seen (omni:due:scanned),
         * which tests wait on whatever the policy (docs/redis.md). A limit of 0 hands nothing out. */
        const char *argv[DUE_NARGS];
        routing_due_argv(&b, prefix, r->p, clock_now(), true, argv);
        argv[DUE_ARG_LIMIT] = "0";
        if (store_script(r->store, LUA_DUE, DUE_NARGS, argv, NULL, on_due, r) == 0)
            r->due_busy = 1;
    }
    if (!routing_enabled(r) || (clock_test_mode() && !r->clock_known) || !r->seed_done)
        return;
    int64_t now = clock_now();
    if (!r->due_busy) {
        const char *argv[DUE_NARGS];
        routing_due_argv(&b, prefix, r->p, now, clock_test_mode(), argv);
        /* only what arrived before the seed answered: what came after went to assign.lua itself, and may be
         * in flight (handing it out again would only make a stale second decision; so would what arrived
         * before and was answered after: early and handed) */
        bool catchup = r->unrouted_now;
        if (catchup)
            snprintf(b.after, sizeof b.after, "%lld", (long long)(now - r->seed_done_at + 1));
        if (r->n_handed && !catchup && now - r->seed_done_at > CATCHUP_KEEP_MS)
            r->n_handed = 0; /* every store begun before the seed answered has long been answered */
        if (store_script(r->store, LUA_DUE, DUE_NARGS, argv, NULL, on_due, r) == 0)
            r->due_busy = 1, r->unrouted_now = false, r->catchup_busy = catchup;
    }
    if (r->drains_busy == 0) {
        /* Drains run when capacity was freed (drain.lua checks), and now and then regardless: a partner's
         * day can start, giving its quota back, with nothing freed. */
        bool force = omni_mono_ms() >= r->next_forced_drain;
        if (force)
            r->next_forced_drain = omni_mono_ms() + ROUTING_DRAIN_FORCE_MS;
        char *days = route_quota_days(r->p, now), *teams = route_drain_teams(r->p);
        /* Every team's queue in one call: when one freed agent could serve work waiting on two teams' queues,
         * the most urgent of it goes first (the serving order of docs/routing.md, Queues, across queues), the
         * same every time and in omnictl simulate. */
        const char *argv[DRAIN_NARGS];
        routing_drain_argv(&b, prefix, r->p, teams, now, days, force, argv);
        if (r->p->n_teams &&
            store_script_for(r->store, "drains", LUA_DRAIN, DRAIN_NARGS, argv, NULL, on_drained, r) == 0)
            r->drains_busy++;
        free(teams);
        free(days);
    }
}
