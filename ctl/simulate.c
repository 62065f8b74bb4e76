/* omnictl simulate: replays messages through a policy on a scratch redis-server of its own, with a
 * simulated clock, and reports where the work went. It runs the router's own code on the way: the same
 * validation and identity normalization, ingest.lua, plan.c's plans, assign/due/drain/resolve scripts.
 *
 * The model of the people: an agent or partner answers a conversation --answer-after (default 0) after it
 * reaches them (the first response) and resolves it after its team's handle_time (or --handle-time), each
 * only while it still holds that assignment; presence changes come from the input. Time jumps from event
 * to event: message arrivals, the people's events, timers (timeouts, escalations, SLA deadlines, plan
 * expiries), unrouted work, owners offline past the grace period and a partner's new quota day. At each
 * instant it runs the router's tick (dispatch.c's argument builders, its order) until nothing more happens.
 * Live state is never touched: the scratch server lives in a temporary directory and is stopped at the end. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "dispatch.h"
#include "embedded.h"
#include "fold.h"
#include "omni/identity.h"
#include "omni/message.h"
#include "omni/util.h"
#include "plan.h"
#include "scripts.h"
#include "simulate.h"

static int start_scratch(sim_t *s)
{
    char tmpl[] = "/tmp/omnictl-simulate-XXXXXX";
    if (!mkdtemp(tmpl))
        return -1;
    s->dir = omni_strdup(tmpl);
    s->sock = omni_asprintf("%s/redis.sock", s->dir);
    s->redis_pid = redis_spawn(s->cfg->redis.server, s->dir, s->sock, 0);
    if (s->redis_pid < 0)
        return -1;
    for (int i = 0; i < 250; i++) { /* up to 5 s for the server to listen */
        struct timeval tv = { 1, 0 };
        s->rc = redisConnectUnixWithTimeout(s->sock, tv);
        if (s->rc && !s->rc->err)
            return 0;
        redisFree(s->rc);
        s->rc = NULL;
        usleep(20000);
    }
    return -1;
}

static void stop_scratch(sim_t *s)
{
    if (s->rc)
        redisFree(s->rc);
    if (s->redis_pid > 0) {
        kill(s->redis_pid, SIGTERM);
        waitpid(s->redis_pid, NULL, 0);
    }
    if (s->dir) {
        char *log = omni_asprintf("%s/redis.log", s->dir);
        unlink(log);
        unlink(s->sock);
        rmdir(s->dir);
        free(log);
    }
    free(s->dir);
    free(s->sock);
}

redisReply *sim_cmd(sim_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(s->rc, fmt, ap);
    va_end(ap);
    if (!r) {
        fprintf(stderr, "omnictl: simulate: scratch redis: %s\n", s->rc->errstr);
        exit(1);
    }
    return r;
}

redisReply *sim_run(sim_t *s, int script, int argc, const char **argv)
{
    char err[256];
    argv[0] = "omni:";
    redisReply *r = lua_call(s->rc, script, argc, argv, err, sizeof err);
    if (!r) {
        fprintf(stderr, "omnictl: simulate: scratch redis: %s\n", err);
        exit(1);
    }
    return r;
}

/* A conversation got an owner at now: the people model schedules its first response and its resolution. */
static void assigned(sim_t *s, const char *conv, int64_t now)
{
    redisReply *h = sim_cmd(s, "HMGET omni:" KEY_CONVERSATION " owner team assignments status", conv);
    const char *owner = h->element[0]->str, *team = h->element[1]->str, *n = h->element[2]->str;
    if (owner && h->element[3]->str && !strcmp(h->element[3]->str, "offered")) {
        /* the model's people accept an offer the moment it is made (docs/delivery.md, "Offers") */
        char snow[24];
        snprintf(snow, sizeof snow, "%lld", (long long)now);
        const char *args[ACCEPT_NARGS] = { [ACCEPT_ARG_CALLER] = owner, [ACCEPT_ARG_CONVERSATION] = conv,
                                           [ACCEPT_ARG_NOW] = snow };
        freeReplyObject(sim_run(s, LUA_ACCEPT, ACCEPT_NARGS, args));
    }
    if (owner && team) {
        sim_count(&s->owners, owner, 1);
        sim_count(&s->teams, team, 1);
        const team_t *t = policy_team(s->p, team);
        int64_t handle = s->handle_ms > 0 ? s->handle_ms : t ? t->handle_time_ms : 600000;
        sim_event_t e = { .t = now + s->answer_ms, .kind = SIM_RESPOND, .assignment = n ? atoll(n) : 0 };
        snprintf(e.conv, sizeof e.conv, "%s", conv);
        snprintf(e.owner, sizeof e.owner, "%s", owner);
        sim_schedule(s, &e);
        e.t = now + handle;
        e.kind = SIM_RESOLVE;
        sim_schedule(s, &e);
    }
    freeReplyObject(h);
}

/* Sends plan (taken) to assign.lua, as the router's decide() does. */
static void decide(sim_t *s, json_t *plan, int64_t now)
{
    char *body = omni_json_dumps(plan, JSON_COMPACT), *days = route_quota_days(s->p, now);
    char conv[24];
    snprintf(conv, sizeof conv, "%s", json_string_value(json_object_get(plan, "conv")));
    json_decref(plan);
    /* one plan a call (assign.lua takes several: ...plans) */
    const char *args[ASSIGN_NARGS + 1] = { [ASSIGN_ARG_DEFAULT_QUEUE] = s->cfg->conversations.default_queue,
                                           [ASSIGN_ARG_DAYS] = days, [ASSIGN_NARGS] = body };
    redisReply *r = sim_run(s, LUA_ASSIGN, ASSIGN_NARGS + 1, args);
    const char *what = r->type == REDIS_REPLY_ARRAY && r->elements == ASSIGN_REPLY_FIELDS
                           ? r->element[ASSIGN_REPLY_OUTCOME]->str : "";
    bool offered = !strcmp(what, "offered");
    if (offered || !strcmp(what, "assigned") || !strcmp(what, "queued") || !strcmp(what, "recorded"))
        sim_trace(s, conv);
    if (offered || !strcmp(what, "assigned"))
        assigned(s, conv, now);
    freeReplyObject(r);
    free(body);
    free(days);
}

/* One of the router's ticks at now, in its order (daemon/dispatch.c, routing_tick): the due scan, the
 * drains of every team, then the decisions on what the scan handed out (their answers come back after
 * the drains were sent). Drains are forced: the router forces one every ROUTING_DRAIN_FORCE_MS, well
 * within any one instant of a simulation. Returns how many decisions it made. */
static size_t tick(sim_t *s, int64_t now)
{
    routing_argbuf_t b;
    const char *dargs[DUE_NARGS];
    routing_due_argv(&b, "omni:", s->p, now, false, dargs);
    redisReply *due = sim_run(s, LUA_DUE, DUE_NARGS, dargs);
    size_t made = 0;
    char *days = route_quota_days(s->p, now), *teams = route_drain_teams(s->p);
    if (s->p->n_teams) { /* one call drains every team's queue, as the router's does */
        const char *args[DRAIN_NARGS];
        routing_drain_argv(&b, "omni:", s->p, teams, now, days, true, args);
        redisReply *r = sim_run(s, LUA_DRAIN, DRAIN_NARGS, args);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            sim_trace(s, r->element[i]->str);
            assigned(s, r->element[i]->str, now);
            made++;
        }
        freeReplyObject(r);
    }
    free(teams);
    free(days);
    for (size_t i = 0; due->type == REDIS_REPLY_ARRAY && i + DUE_REPLY_FIELDS <= due->elements;
         i += DUE_REPLY_FIELDS) {
        const char *f[DUE_REPLY_FIELDS];
        for (int j = 0; j < DUE_REPLY_FIELDS; j++)
            f[j] = due->element[i + j]->str;
        json_t *plan = route_plan_due(s->p, f, now);
        if (plan) {
            decide(s, plan, now);
            made++;
        }
    }
    freeReplyObject(due);
    return made;
}

/* Ticks at now until nothing more happens, as the running router does while its clock stays at one
 * instant (a test holding the test clock, or seconds of real time between events). */
static void settle(sim_t *s, int64_t now)
{
    for (int i = 0; i < 100 && tick(s, now) > 0; i++)
        ;
}

/* The people's events due at now, in time order. */
static void people(sim_t *s, int64_t now)
{
    char snow[24];
    snprintf(snow, sizeof snow, "%lld", (long long)now);
    size_t done = 0;
    for (; done < s->n_ev && s->ev[done].t <= now; done++) {
        const sim_event_t *e = &s->ev[done];
        if (e->kind == SIM_PRESENCE) {
            const char *args[PRESENCE_NARGS] = { [PRESENCE_ARG_AGENT] = e->agent, [PRESENCE_ARG_PRESENCE] = e->status,
                                                 [PRESENCE_ARG_NOW] = snow };
            freeReplyObject(sim_run(s, LUA_PRESENCE, PRESENCE_NARGS, args));
            continue;
        }
        /* Only the owner who was given the work answers or resolves it, and only while that assignment holds:
         * work moved on (timeout, escalation, owner offline) is the next owner's to answer. */
        redisReply *h = sim_cmd(s, "HMGET omni:" KEY_CONVERSATION " owner assignments status", e->conv);
        bool holds = h->element[0]->str && !strcmp(h->element[0]->str, e->owner) && h->element[1]->str &&
                     atoll(h->element[1]->str) == e->assignment && h->element[2]->str &&
                     !strcmp(h->element[2]->str, "assigned");
        freeReplyObject(h);
        if (!holds)
            continue;
        if (e->kind == SIM_RESPOND) {
            const char *args[RESPOND_NARGS] = { [RESPOND_ARG_CALLER] = "operator:simulate",
                                                [RESPOND_ARG_CONVERSATION] = e->conv, [RESPOND_ARG_WHO] = "simulate",
                                                [RESPOND_ARG_NOW] = snow };
            redisReply *r = sim_run(s, LUA_RESPOND, RESPOND_NARGS, args);
            if (r->type == REDIS_REPLY_ARRAY && strcmp(r->element[RESPOND_REPLY_OUTCOME]->str, "already"))
                sim_delay(s, r->element[RESPOND_REPLY_MS]->integer);
            freeReplyObject(r);
        } else {
            const char *args[RESOLVE_NARGS] = { [RESOLVE_ARG_CALLER] = "operator:simulate",
                                                [RESOLVE_ARG_CONVERSATION] = e->conv, [RESOLVE_ARG_WHO] = "simulate",
                                                [RESOLVE_ARG_NOW] = snow };
            freeReplyObject(sim_run(s, LUA_RESOLVE, RESOLVE_NARGS, args));
            s->resolved++;
        }
    }
    if (done > 0) /* s->ev is NULL before the first event: memmove must not be given it */
        memmove(s->ev, s->ev + done, (s->n_ev - done) * sizeof *s->ev);
    s->n_ev -= done;
}

/* Everything that happens at instant now besides arrivals: the people's events, then the router's ticks. */
static void step(sim_t *s, int64_t now)
{
    s->clock = now;
    people(s, now);
    settle(s, now);
}

/* The earliest score of a sorted set plus add; INT64_MAX when empty. */
static int64_t first_score(sim_t *s, const char *key, int64_t add)
{
    redisReply *t = sim_cmd(s, "ZRANGE %s 0 0 WITHSCORES", key);
    int64_t v = INT64_MAX;
    if (t->type == REDIS_REPLY_ARRAY && t->elements == 2)
        v = strtoll(t->element[1]->str, NULL, 10) + add;
    freeReplyObject(t);
    return v;
}

/* The first instant after now at which a partner with a daily quota starts a new local day (its quota comes
 * back, which the router sees at its next forced drain, within a second); INT64_MAX when none has a quota. */
static int64_t next_quota_day(sim_t *s, int64_t now)
{
    char *today = route_quota_days(s->p, now);
    int64_t lo = now, hi = now + 26 * 3600000LL; /* a local day is at most 25 h (daylight saving time) */
    char *d = route_quota_days(s->p, hi);
    bool changes = strcmp(today, "{}") && strcmp(today, d);
    free(d);
    while (changes && hi - lo > 1) { /* the first instant whose days differ from today's */
        int64_t mid = lo + (hi - lo) / 2;
        d = route_quota_days(s->p, mid);
        *(strcmp(today, d) ? &hi : &lo) = mid;
        free(d);
    }
    free(today);
    return changes ? hi : INT64_MAX;
}

/* Moves the clock to until, stopping at every event on the way: the people's, and each trigger the router's
 * due scan looks at (timers, unrouted work, agents offline past the grace period). */
static void advance(sim_t *s, int64_t until)
{
    int64_t prev = INT64_MIN;
    for (int same = 0;;) {
        int64_t next = s->n_ev ? s->ev[0].t : INT64_MAX, v;
        if ((v = first_score(s, "omni:" KEY_TIMERS, 0)) < next)
            next = v;
        if ((v = first_score(s, "omni:" KEY_UNROUTED, ROUTING_UNROUTED_AFTER_MS)) < next)
            next = v;
        if ((v = first_score(s, "omni:" KEY_AGENTS_OFFLINE, s->p->offline_grace_ms)) < next)
            next = v;
        if (s->clock && (v = next_quota_day(s, s->clock)) < next)
            next = v;
        if (next > until || next == INT64_MAX)
            break;
        same = next <= prev ? same + 1 : 0;
        if (same > 3) /* a trigger nothing acts on: its lease brings it back later, as in the router */
            next = prev + ROUTING_LEASE_MS;
        step(s, next);
        prev = next;
    }
}

/* What the router writes at start (dispatch.c): agents' presence, team masking, the salt. */
static void seed(sim_t *s)
{
    routing_seed_t sd;
    if (routing_seed_init(&sd, "omni:", s->p) != 0)
        return; /* only the salt is missing then: _mask.lua makes one */
    freeReplyObject(sim_run(s, LUA_SEED, sd.argc, sd.argv));
    routing_seed_clear(&sd);
}

static void arrive(sim_t *s, const sim_msg_t *m)
{
    const omni_msg_t *msg = m->msg;
    s->clock = m->t;
    char snow[24], fp[17] = "", window[16], bits[8];
    snprintf(snow, sizeof snow, "%lld", (long long)m->t);
    uint64_t h = s->p->fold_window_ms > 0 ? fold_hash(msg->text) : 0;
    if (h)
        snprintf(fp, sizeof fp, "%016llx", (unsigned long long)h);
    snprintf(window, sizeof window, "%d", s->p->fold_window_ms);
    snprintf(bits, sizeof bits, "%d", fold_max_bits(s->p->fold_similarity_pct));
    /* one message a call (ingest.lua takes several: ...messages, six arguments each); no first plan: the
     * conversation is decided by assign.lua below, the same decision the router makes in either call */
    const char *args[INGEST_NARGS + 6] = {
        [INGEST_ARG_NOW] = snow, [INGEST_ARG_QUEUE] = s->cfg->conversations.default_queue,
        [INGEST_ARG_ROUTING] = s->p->n_routes ? "1" : "0", [INGEST_ARG_FOLD_WINDOW_MS] = window,
        [INGEST_ARG_FOLD_MAX_BITS] = bits, [INGEST_ARG_DAYS] = "{}",
        [INGEST_NARGS] = msg->id, m->identity, msg->channel, m->json, fp, "",
    };
    redisReply *r = sim_run(s, LUA_INGEST, INGEST_NARGS + 6, args);
    redisReply **f = r->element;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == INGEST_REPLY_FIELDS) {
        if (f[INGEST_REPLY_FOLDED_INTO]->len > 0)
            s->folded++;
        else if (f[INGEST_REPLY_STORED]->integer == 0)
            s->duplicates++;
        if (f[INGEST_REPLY_OPENED]->integer && s->p->n_routes) {
            s->conversations++;
            decide(s, route_plan_new(s->p, f[INGEST_REPLY_CONVERSATION]->str, msg, m->identity,
                                     (long)f[INGEST_REPLY_CONVERSATIONS]->integer, f[INGEST_REPLY_TIER]->str,
                                     f[INGEST_REPLY_LAST_OWNER]->str, m->t),
                   m->t);
        } else if (f[INGEST_REPLY_OPENED]->integer) {
            s->conversations++;
        }
    }
    freeReplyObject(r);
    settle(s, m->t);
    sim_measure_queues(s);
}

static const char usage[] =
    "usage: omnictl simulate --config FILE --input FILE [--handle-time DURATION] [--answer-after DURATION]\n"
    "                        [--trace FILE]\n"
    "Replays the input's messages and presence changes through FILE's policy on a scratch redis-server with a\n"
    "simulated clock, and reports where each conversation went (docs/routing.md, \"Simulate\").\n"
    "  --config FILE          the router's configuration (its policy)\n"
    "  --input FILE           JSON lines: messages (docs/protocol.md) and presence changes\n"
    "                         {\"presence\": {\"agent\": ID, \"status\": available|away|offline, \"at\": TIME}}\n"
    "  --handle-time D        an owner resolves work this long after getting it (default: its team's handle_time)\n"
    "  --answer-after D       an owner's first response comes this long after getting the work (default 0)\n"
    "  --trace FILE           one JSON line per decision: conversation, at, reason, outcome, team, target,\n"
    "                         agent, why\n"
    "  --help                 this text\n";

int ctl_simulate(int argc, char **argv)
{
    static const struct option longopts[] = { { "config", required_argument, 0, 'c' },
                                              { "input", required_argument, 0, 'i' },
                                              { "handle-time", required_argument, 0, 'H' },
                                              { "answer-after", required_argument, 0, 'A' },
                                              { "trace", required_argument, 0, 't' },
                                              { "help", no_argument, 0, 'h' },
                                              { 0, 0, 0, 0 } };
    const char *config = NULL, *input = NULL, *trace = NULL;
    sim_t s = { .handle_ms = 0 };
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "c:i:H:A:t:h", longopts, NULL)) != -1) {
        if (opt == 'h')
            return fputs(usage, stdout), 0;
        if (opt == 'c')
            config = optarg;
        else if (opt == 'i')
            input = optarg;
        else if (opt == 't')
            trace = optarg;
        else if (opt == 'H' && (s.handle_ms = ctl_duration(optarg)) <= 0)
            return fprintf(stderr, "omnictl: simulate: --handle-time %s: not a duration (10m, 1h)\n", optarg), 2;
        else if (opt == 'A' && (s.answer_ms = ctl_duration(optarg)) < 0)
            return fprintf(stderr, "omnictl: simulate: --answer-after %s: not a duration (0, 5m, 1h)\n", optarg), 2;
        else if (opt == '?') /* getopt named the option */
            return fputs(usage, stderr), 2;
    }
    if (optind < argc)
        return fprintf(stderr, "omnictl: simulate: unexpected argument %s\n%s", argv[optind], usage), 2;
    if (!config || !input)
        return fprintf(stderr, "omnictl: simulate: --config and --input are required\n%s", usage), 2;
    config_errors_t errs = { 0 };
    s.cfg = config_load(config, NULL, 0, &errs);
    if (!s.cfg) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        config_errors_free(&errs);
        return 1;
    }
    s.p = &s.cfg->policy;
    if (trace && !(s.trace = fopen(trace, "w"))) {
        fprintf(stderr, "omnictl: simulate: --trace %s: %s\n", trace, strerror(errno));
        config_destroy(&s.cfg);
        return 1;
    }
    int rc = 1;
    if (sim_load(&s, input) == 0) {
        if (start_scratch(&s) != 0) {
            fprintf(stderr, "omnictl: simulate: cannot start a scratch redis-server: %s\n", strerror(errno));
        } else {
            seed(&s);
            for (size_t i = 0; i < s.n_msgs; i++) {
                advance(&s, s.msgs[i].t);
                arrive(&s, &s.msgs[i]);
            }
            if (s.n_msgs) /* let the work that is left play out, up to 30 days */
                advance(&s, s.msgs[s.n_msgs - 1].t + 30LL * 86400000);
            s.until = s.clock;
            sim_report(&s, stdout);
            rc = 0;
        }
    }
    if (s.trace && fclose(s.trace) != 0) {
        fprintf(stderr, "omnictl: simulate: --trace %s: %s\n", trace, strerror(errno));
        rc = 1;
    }
    stop_scratch(&s);
    sim_free(&s);
    config_destroy(&s.cfg);
    return rc;
}
