/* omnictl simulate: replays messages through a policy on a scratch redis-server of its own, with a
 * simulated clock, and reports where the work went. It runs the router's own code on the way: the same
 * validation and identity normalization, ingest.lua, plan.c's plans, assign/due/drain/resolve scripts.
 *
 * The model of the people: an agent or partner answers a conversation when it reaches them (the first
 * response) and resolves it after its team's handle_time (or --handle-time). Time jumps from event to
 * event: message arrivals, resolutions, timers (timeouts, escalations, SLA deadlines). Live state is never
 * touched: the scratch server lives in a temporary directory and is stopped at the end. */
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

/* Runs a script with argv as its "@args" line declares them (argv[0], the prefix, filled in here). Exits on
 * a scratch-server failure (nothing to save). */
static redisReply *run(sim_t *s, int script, int argc, const char **argv)
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

static void schedule_resolution(sim_t *s, int64_t t, const char *conv)
{
    if (s->n_res == s->cap_res) {
        s->cap_res = s->cap_res ? 2 * s->cap_res : 256;
        s->res = omni_realloc(s->res, s->cap_res * sizeof *s->res);
    }
    size_t i = s->n_res++; /* kept sorted by time, latest last: insertion from the end */
    while (i > 0 && s->res[i - 1].t > t) {
        s->res[i] = s->res[i - 1];
        i--;
    }
    s->res[i].t = t;
    snprintf(s->res[i].conv, sizeof s->res[i].conv, "%s", conv);
}

/* A conversation got an owner at now: it answers now and resolves after the handle time. */
static void assigned(sim_t *s, const char *conv, int64_t now)
{
    redisReply *h = sim_cmd(s, "HMGET omni:" KEY_CONVERSATION " owner team", conv);
    const char *owner = h->element[0]->str, *team = h->element[1]->str;
    if (owner && team) {
        sim_count(&s->owners, owner, 1);
        sim_count(&s->teams, team, 1);
        const team_t *t = policy_team(s->p, team);
        int64_t handle = s->handle_ms > 0 ? s->handle_ms : t ? t->handle_time_ms : 600000;
        char snow[24];
        snprintf(snow, sizeof snow, "%lld", (long long)now);
        const char *args[RESPOND_NARGS] = { [RESPOND_ARG_CONVERSATION] = conv, [RESPOND_ARG_WHO] = "simulate",
                                            [RESPOND_ARG_NOW] = snow };
        redisReply *r = run(s, LUA_RESPOND, RESPOND_NARGS, args);
        if (r->type == REDIS_REPLY_ARRAY && strcmp(r->element[RESPOND_REPLY_OUTCOME]->str, "already"))
            sim_delay(s, r->element[RESPOND_REPLY_MS]->integer);
        freeReplyObject(r);
        schedule_resolution(s, now + handle, conv);
    }
    freeReplyObject(h);
}

static void decide(sim_t *s, json_t *plan, int64_t now)
{
    char *body = omni_json_dumps(plan, JSON_COMPACT), *days = route_quota_days(s->p, now);
    const char *conv = json_string_value(json_object_get(plan, "conv"));
    const char *args[ASSIGN_NARGS] = { [ASSIGN_ARG_PLAN] = body,
                                       [ASSIGN_ARG_DEFAULT_QUEUE] = s->cfg->conversations.default_queue,
                                       [ASSIGN_ARG_DAYS] = days };
    redisReply *r = run(s, LUA_ASSIGN, ASSIGN_NARGS, args);
    if (r->type == REDIS_REPLY_ARRAY && !strcmp(r->element[ASSIGN_REPLY_OUTCOME]->str, "assigned"))
        assigned(s, conv, now);
    freeReplyObject(r);
    free(body);
    free(days);
    json_decref(plan);
}

/* Everything that happens at instant now besides arrivals: resolutions due, timers, drains. */
static void step(sim_t *s, int64_t now)
{
    char snow[24];
    snprintf(snow, sizeof snow, "%lld", (long long)now);
    size_t done = 0;
    while (done < s->n_res && s->res[done].t <= now) {
        const char *args[RESOLVE_NARGS] = { [RESOLVE_ARG_CONVERSATION] = s->res[done].conv,
                                            [RESOLVE_ARG_WHO] = "simulate", [RESOLVE_ARG_NOW] = snow };
        freeReplyObject(run(s, LUA_RESOLVE, RESOLVE_NARGS, args)); /* merged or resolved meanwhile: nothing to do */
        s->resolved++;
        done++;
    }
    memmove(s->res, s->res + done, (s->n_res - done) * sizeof *s->res);
    s->n_res -= done;
    char grace[24];
    snprintf(grace, sizeof grace, "%d", s->p->offline_grace_ms);
    const char *dargs[DUE_NARGS] = { [DUE_ARG_NOW] = snow, [DUE_ARG_LIMIT] = "1000", [DUE_ARG_GRACE_MS] = grace,
                                     [DUE_ARG_UNROUTED_AFTER_MS] = "0", [DUE_ARG_LEASE_MS] = "1000",
                                     [DUE_ARG_TEST_CLOCK] = "0" };
    redisReply *due = run(s, LUA_DUE, DUE_NARGS, dargs);
    for (size_t i = 0; due->type == REDIS_REPLY_ARRAY && i + DUE_REPLY_FIELDS <= due->elements;
         i += DUE_REPLY_FIELDS) {
        const char *f[DUE_REPLY_FIELDS];
        for (int j = 0; j < DUE_REPLY_FIELDS; j++)
            f[j] = due->element[i + j]->str;
        json_t *plan = route_plan_due(s->p, f, now);
        if (plan)
            decide(s, plan, now);
    }
    freeReplyObject(due);
    char *days = route_quota_days(s->p, now), aging[16];
    snprintf(aging, sizeof aging, "%d", s->p->aging_every_ms);
    for (size_t t = 0; t < s->p->n_teams; t++) {
        const char *args[DRAIN_NARGS] = { [DRAIN_ARG_TEAM] = s->p->teams[t].name, [DRAIN_ARG_NOW] = snow,
                                          [DRAIN_ARG_SCAN] = "1000", [DRAIN_ARG_AGING_MS] = aging,
                                          [DRAIN_ARG_DAYS] = days, [DRAIN_ARG_FORCE] = "1" };
        redisReply *r = run(s, LUA_DRAIN, DRAIN_NARGS, args);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
            assigned(s, r->element[i]->str, now);
        freeReplyObject(r);
    }
    free(days);
}

/* Moves the clock to until, stopping at every resolution and timer on the way. */
static void advance(sim_t *s, int64_t until)
{
    for (;;) {
        int64_t next = s->n_res ? s->res[0].t : INT64_MAX;
        redisReply *t = sim_cmd(s, "ZRANGE omni:" KEY_TIMERS " 0 0 WITHSCORES");
        if (t->type == REDIS_REPLY_ARRAY && t->elements == 2) {
            int64_t tt = strtoll(t->element[1]->str, NULL, 10);
            if (tt < next)
                next = tt;
        }
        freeReplyObject(t);
        if (next > until || next == INT64_MAX)
            break;
        step(s, next);
    }
}

static void arrive(sim_t *s, const sim_msg_t *m)
{
    const omni_msg_t *msg = m->msg;
    char snow[24], fp[17] = "", window[16], bits[8];
    snprintf(snow, sizeof snow, "%lld", (long long)m->t);
    uint64_t h = s->p->fold_window_ms > 0 ? fold_hash(msg->text) : 0;
    if (h)
        snprintf(fp, sizeof fp, "%016llx", (unsigned long long)h);
    snprintf(window, sizeof window, "%d", s->p->fold_window_ms);
    snprintf(bits, sizeof bits, "%d", fold_max_bits(s->p->fold_similarity_pct));
    const char *args[INGEST_NARGS] = {
        [INGEST_ARG_ID] = msg->id, [INGEST_ARG_IDENTITY] = m->identity, [INGEST_ARG_CHANNEL] = msg->channel,
        [INGEST_ARG_MESSAGE] = m->json, [INGEST_ARG_NOW] = snow,
        [INGEST_ARG_QUEUE] = s->cfg->conversations.default_queue, [INGEST_ARG_ROUTING] = s->p->n_routes ? "1" : "0",
        [INGEST_ARG_FINGERPRINT] = fp, [INGEST_ARG_FOLD_WINDOW_MS] = window, [INGEST_ARG_FOLD_MAX_BITS] = bits,
    };
    redisReply *r = run(s, LUA_INGEST, INGEST_NARGS, args);
    redisReply **f = r->element;
    if (r->type == REDIS_REPLY_ARRAY) {
        if (r->elements > INGEST_REPLY_FOLDED_INTO)
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
    step(s, m->t);
    sim_measure_queues(s);
}

int ctl_simulate(int argc, char **argv)
{
    static const struct option longopts[] = { { "config", required_argument, 0, 'c' },
                                              { "input", required_argument, 0, 'i' },
                                              { "handle-time", required_argument, 0, 'H' },
                                              { 0, 0, 0, 0 } };
    const char *config = NULL, *input = NULL;
    sim_t s = { .handle_ms = 0 };
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "c:i:H:", longopts, NULL)) != -1) {
        if (opt == 'c')
            config = optarg;
        else if (opt == 'i')
            input = optarg;
        else if (opt == 'H' && (s.handle_ms = ctl_duration(optarg)) > 0)
            ;
        else
            return fprintf(stderr, "omnictl: simulate --config FILE --input MESSAGES.jsonl [--handle-time 10m]\n"), 2;
    }
    if (!config || !input)
        return fprintf(stderr, "omnictl: simulate --config FILE --input MESSAGES.jsonl [--handle-time 10m]\n"), 2;
    config_errors_t errs = { 0 };
    s.cfg = config_load(config, NULL, 0, &errs);
    if (!s.cfg) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        config_errors_free(&errs);
        return 1;
    }
    s.p = &s.cfg->policy;
    int rc = 1;
    if (sim_load(&s, input) == 0) {
        if (start_scratch(&s) != 0) {
            fprintf(stderr, "omnictl: simulate: cannot start a scratch redis-server: %s\n", strerror(errno));
        } else {
            for (size_t i = 0; i < s.n_msgs; i++) {
                advance(&s, s.msgs[i].t);
                arrive(&s, &s.msgs[i]);
            }
            if (s.n_msgs) /* let the work that is left play out, up to 30 days */
                advance(&s, s.msgs[s.n_msgs - 1].t + 30LL * 86400000);
            sim_report(&s, stdout);
            rc = 0;
        }
    }
    stop_scratch(&s);
    sim_free(&s);
    config_destroy(&s.cfg);
    return rc;
}
