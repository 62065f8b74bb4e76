/* See server.h. Start-up order: state dir, embedded Redis (if any), store, ingest socket, then the loop.
 * READY=1 goes to systemd once ingest is bound, Redis has answered with the scripts loaded and its
 * durability checked, and this router's entry is in Redis (say_ready). Shutdown (SIGTERM, SIGINT): stop taking messages (new ones get BUSY), let Redis
 * answer what is in flight (up to DRAIN_MS), then exit. */
#include "server.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <zmq.h>

#include "archive.h"
#include "clock.h"
#include "embedded.h"
#include "ingest.h"
#include "loop.h"
#include "metrics.h"
#include "omni/log.h"
#include "omni/util.h"
#include "dispatch.h"
#include "scripts.h"
#include "store.h"

#define STATUS_EVERY_MS 1000 /* a router's counters are published at least this often */
#define STATUS_SOON_MS 100    /* and this soon after they changed, so status is not a second behind traffic */
#define DRAIN_MS 3000 /* on shutdown, how long to wait for Redis to answer messages in flight */
#define SETTLE_MS 100 /* on shutdown, exit only after this long without a new message to answer BUSY */

typedef struct router {
    router_config_t *cfg;
    const router_source_t *src;
    router_config_t **retired; /* configurations a reload replaced: freed at exit (replies may point into them) */
    size_t n_retired;
    char reload[PATH_MAX + 160]; /* the last reload's outcome, for omnictl status: "" before any (names the file) */
    unsigned long reloads;     /* SIGHUPs handled: omnictl reload waits for it to move */
    loop_t *loop;
    void *zctx;
    embedded_t *embedded;
    store_t *store;
    ingest_t *ingest;
    routing_t *routing;
    archive_t *archive;
    router_metrics_t *metrics; /* NULL without router.metrics_listen */
    int sigfd;
    int ready_sent;
    int entry_written; /* this router's entry (omni:router:<name>) written once: ready may be said */
    int waiting_said; /* STATUS= told systemd that start-up waits for Redis */
    int stopping;
    int exit_status;
    char name[128];
    uint64_t watchdog_usec;
    int64_t next_watchdog, next_status, last_status;
    unsigned long long published; /* the counters' sum at the last update: a change publishes soon */
    int status_busy;                     /* a status update is in flight: the next waits for it */
} router_t;

static void publish_status(router_t *r);

/* READY=1 and the "ready" line. */
static void announce_ready(router_t *r)
{
    r->ready_sent = 1;
    for (size_t i = 0; i < r->cfg->router.n_ingest; i++)
        omni_log_event(OMNI_LOG_INFO, OMNI_MSGID_READY, NULL, "ready: ingest on %s, redis at %s",
                       r->cfg->router.ingest[i], store_address(r->store));
    sd_notify(0, "READY=1\nSTATUS=accepting messages");
}

/* Ready once Redis is up and durable; with the test clock, also once the clock's offset has been read, so that
 * nothing a test sends after "ready" is stamped with the wall clock (clock.h); and once this router's entry is
 * in Redis (omni:router:<name>), so that `systemctl start omnirouted && omnictl reload` (or status) finds it:
 * the entry is written first, and on_status_reply says ready. Returns whether it is now. */
static int say_ready(router_t *r)
{
    if (r->ready_sent || !store_up(r->store) || !routing_clock_known(r->routing))
        return 0;
    if (!r->entry_written) { /* written first; its reply comes back here (on_status_reply) */
        if (!r->status_busy)
            publish_status(r);
        if (r->status_busy)
            return 0;
        /* it could not even be sent: ready all the same, the tick writes it */
    }
    announce_ready(r);
    return 1;
}

/* The store logs its own changes (one line each); the router tells systemd. */
static void on_store_state(store_t *store, int up, void *data)
{
    router_t *r = data;
    if (up && !r->ready_sent) {
        say_ready(r); /* else the tick says it, once the test clock is known */
    } else if (up) {
        sd_notify(0, "STATUS=accepting messages");
    } else if (!r->stopping) {
        sd_notify(0, store_connected(store) ? "STATUS=redis durability not verified; answering BUSY"
                                            : "STATUS=redis unreachable; answering BUSY");
    }
}

static void on_status_reply(store_t *store, redisReply *reply, void *data)
{
    (void)store;
    router_t *r = data;
    r->status_busy = 0;
    if (reply && reply->type != REDIS_REPLY_ERROR) {
        r->entry_written = 1;
        if (!r->ready_sent && !r->stopping)
            say_ready(r);
    } /* else the tick writes it again, and says ready then */
}

/* The sum of the counters publish_status sends: it moves whenever one of them does. */
static unsigned long long counters_sum(router_t *r)
{
    const ingest_stats_t *st = ingest_stats(r->ingest);
    const routing_stats_t *rs = routing_stats(r->routing);
    return st->received + st->stored + st->duplicates + st->folded + st->nacked + st->busy + st->violations +
           ingest_inflight(r->ingest) + rs->routed + rs->assigned + rs->queued + rs->moved + rs->drained;
}

/* This router's own counters, for omnictl status: as of the last update (tick() sends one once a second,
 * and STATUS_SOON_MS after they change). The totals that must be exact when read (stats.messages, queues,
 * loads) are kept in Redis by the scripts that change them, in the same step. */
static void publish_status(router_t *r)
{
    const ingest_stats_t *st = ingest_stats(r->ingest);
    const routing_stats_t *rs = routing_stats(r->routing);
    r->published = counters_sum(r);
    const struct { const char *name; unsigned long long value; } fields[] = {
        { "received", st->received }, { "stored", st->stored }, { "duplicates", st->duplicates },
        { "folded", st->folded }, { "nacked", st->nacked }, { "busy", st->busy }, { "violations", st->violations },
        { "inflight", ingest_inflight(r->ingest) }, { "routed", rs->routed }, { "assigned", rs->assigned },
        { "queued", rs->queued }, { "moved", rs->moved }, { "drained", rs->drained },
        { "archived", r->archive ? archive_count(r->archive) : 0 }, { "pid", (unsigned long long)getpid() }, { "updated_at", (unsigned long long)omni_wall_ms() },
    };
    enum { N = sizeof fields / sizeof *fields };
    char values[N][24];
    const char *argv[STATUS_NARGS + 2 * N + 14];
    argv[STATUS_ARG_PREFIX] = r->cfg->redis.key_prefix, argv[STATUS_ARG_ROUTER] = r->name;
    argv[STATUS_ARG_TTL_S] = "10";
    for (int i = 0; i < N; i++) { /* then field / value pairs */
        snprintf(values[i], sizeof values[i], "%llu", fields[i].value);
        argv[STATUS_NARGS + 2 * i] = fields[i].name;
        argv[STATUS_NARGS + 2 * i + 1] = values[i];
    }
    const int n = STATUS_NARGS + 2 * N; /* then the store's own fields */
    argv[n] = "redis", argv[n + 1] = store_address(r->store);
    argv[n + 2] = "durability", argv[n + 3] = store_durability(r->store);
    argv[n + 4] = "durability_mode";
    argv[n + 5] = r->cfg->redis.durability == REDIS_DURABILITY_RELAXED ? "relaxed" : "strict";
    argv[n + 6] = "config_version", argv[n + 7] = r->cfg->version;
    argv[n + 8] = "reload", argv[n + 9] = r->reload;
    char reloads[24];
    snprintf(reloads, sizeof reloads, "%lu", r->reloads);
    argv[n + 10] = "reloads", argv[n + 11] = reloads;
    argv[n + 12] = "archive_error", argv[n + 13] = r->archive ? archive_error(r->archive) : "";
    if (store_script(r->store, LUA_STATUS, n + 14, argv, NULL, on_status_reply, r) == 0)
        r->status_busy = 1;
}

/* systemd's status line, once a second while Redis takes messages: what `systemctl status` shows. */
static void notify_counts(router_t *r)
{
    if (!store_up(r->store) || r->stopping)
        return;
    const ingest_stats_t *st = ingest_stats(r->ingest);
    const routing_stats_t *rs = routing_stats(r->routing);
    bool refused = !strncmp(r->reload, "refused", 7);
    sd_notifyf(0, "STATUS=accepting messages: %llu stored, %llu duplicates, %llu refused, %zu in flight; %llu assigned, "
                  "%llu queued, %llu moved; configuration %s%s%s",
               st->stored, st->duplicates, st->nacked, ingest_inflight(r->ingest), rs->assigned, rs->queued, rs->moved,
               r->cfg->version, refused ? "; last reload " : "", refused ? r->reload : "");
}

static void on_opened(void *data, const char *conv, const omni_msg_t *msg, const char *identity, long conversations,
                      const char *tier, const char *last_owner)
{
    router_t *r = data;
    routing_customer_t cu = { .conversations = conversations, .tier = tier, .last_owner = last_owner };
    routing_new_conversation(r->routing, conv, msg, identity, &cu);
}

static char *first_plan(void *data, const omni_msg_t *msg, const char *identity)
{
    return routing_first_plan(((router_t *)data)->routing, msg, identity);
}

static char *first_days(void *data) { return routing_days(((router_t *)data)->routing); }

static void first_decided(void *data, const char *conv, const char *outcome, const char *detail, int64_t planned)
{
    routing_first_decided(((router_t *)data)->routing, conv, outcome, detail, planned);
}

/* A new customer's first conversation routed in the call that stores its message (dispatch.h). */
static const ingest_first_route_t first_route = { first_plan, first_days, first_decided };

/* Before the loop sleeps: what this turn decided goes to Redis as one call (routing_flush). */
static void before_sleep(loop_t *loop, void *data)
{
    (void)loop;
    router_t *r = data;
    if (r->routing)
        routing_flush(r->routing);
}

static void tick(loop_t *loop, void *data)
{
    (void)loop;
    router_t *r = data;
    int64_t now = omni_mono_ms();
    if (r->embedded)
        embedded_tick(r->embedded, !r->stopping); /* a router stopping starts no new one */
    store_tick(r->store);
    ingest_tick(r->ingest);
    routing_tick(r->routing);
    if (!r->ready_sent && !r->stopping)
        say_ready(r);
    if (r->archive && !r->stopping)
        archive_tick(r->archive, r->cfg, clock_now(), routing_clock_known(r->routing));
    if (r->metrics)
        router_metrics_tick(r->metrics);
    if (!r->ready_sent && !r->waiting_said && !r->stopping && !store_connected(r->store)) {
        /* no READY=1 until Redis answers (the unit waits: TimeoutStartSec=infinity); say why meanwhile */
        sd_notifyf(0, "STATUS=waiting for redis at %s; answering BUSY", store_address(r->store));
        r->waiting_said = 1;
    }
    if (r->watchdog_usec && now >= r->next_watchdog) {
        sd_notify(0, "WATCHDOG=1");
        r->next_watchdog = now + (int64_t)(r->watchdog_usec / 2000);
    }
    bool due = now >= r->next_status || (now >= r->last_status + STATUS_SOON_MS && counters_sum(r) != r->published);
    if (due && store_connected(r->store) && !r->status_busy) {
        if (now >= r->next_status)
            notify_counts(r);
        publish_status(r);
        r->last_status = now;
        r->next_status = now + STATUS_EVERY_MS;
    }
}

/* SIGHUP: the configuration is read again and checked completely; a valid one replaces the running one at
 * once (between two events of the loop: no decision sees half of each), an invalid one is refused with every
 * error and the running one stays. Work in flight keeps what it was decided with. */
static void reload(router_t *r)
{
    r->reloads++;
    uint64_t usec = (uint64_t)omni_mono_ms() * 1000;
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s", (unsigned long long)usec,
               r->src->path);
    config_errors_t errs = { 0 };
    char kept[512];
    router_config_t *fresh =
        config_reload(r->cfg, r->src->path, r->src->overrides, r->src->n_overrides, &errs, kept, sizeof kept);
    if (!fresh) {
        for (size_t i = 0; i < errs.n; i++)
            omni_log_event(OMNI_LOG_ERROR, OMNI_MSGID_RELOAD_REFUSED, NULL, "reload: %s", errs.lines[i]);
        snprintf(r->reload, sizeof r->reload, "refused: %zu error%s in %s; running version %s", errs.n,
                 errs.n == 1 ? "" : "s", r->src->path, r->cfg->version);
        omni_log_event(OMNI_LOG_ERROR, OMNI_MSGID_RELOAD_REFUSED, NULL, "reload %s", r->reload);
        sd_notifyf(0, "READY=1\nSTATUS=reload %s", r->reload);
        config_errors_free(&errs);
        r->next_status = 0; /* published on this tick */
        return;
    }
    config_errors_t warns = { 0 };
    config_warnings(fresh, &warns);
    for (size_t i = 0; i < warns.n; i++)
        omni_warn("%s", warns.lines[i]);
    config_errors_free(&warns);
    if (*kept)
        omni_warn("reload: %s changed in %s: a reload keeps the running value; restart to apply it", kept,
                  r->src->path);
    r->retired = omni_realloc(r->retired, (r->n_retired + 1) * sizeof *r->retired);
    r->retired[r->n_retired++] = r->cfg;
    r->cfg = fresh;
    omni_log_set_level((omni_log_level_t)fresh->router.log_level);
    ingest_set_config(r->ingest, fresh);
    routing_set_config(r->routing, fresh);
    if (r->metrics)
        router_metrics_set_config(r->metrics, fresh);
    ingest_on_opened(r->ingest, routing_enabled(r->routing) ? on_opened : NULL, &first_route, r);
    snprintf(r->reload, sizeof r->reload, "applied version %s", fresh->version);
    omni_log_event(OMNI_LOG_INFO, OMNI_MSGID_RELOADED, NULL, "reload: %s: version %s applied: %zu rules, %zu teams, %zu agents",
                   r->src->path, fresh->version, fresh->policy.n_routes, fresh->policy.n_teams, fresh->policy.n_agents);
    /* the status says what is true now: a reload while Redis is away does not bring it back */
    sd_notify(0, store_up(r->store) ? "READY=1\nSTATUS=accepting messages (configuration reloaded)"
                                    : "READY=1\nSTATUS=configuration reloaded; redis unreachable or not durable: "
                                      "answering BUSY");
    r->next_status = 0;
}

static void on_signal(loop_t *loop, int fd, int events, void *data)
{
    (void)events;
    router_t *r = data;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        switch (si.ssi_signo) {
        case SIGINT:
        case SIGTERM:
            if (r->stopping)
                break;
            omni_log_event(OMNI_LOG_INFO, OMNI_MSGID_STOPPING, NULL,
                           "%s: shutting down: new messages get BUSY; answering the %zu in flight",
                           strsignal((int)si.ssi_signo), r->ingest ? ingest_inflight(r->ingest) : (size_t)0);
            r->stopping = 1;
            if (r->metrics)
                router_metrics_set_stopping(r->metrics);
            sd_notify(0, "STOPPING=1");
            store_drain(r->store);
            loop_stop(loop);
            break;
        case SIGCHLD:
            if (r->embedded)
                embedded_tick(r->embedded, false); /* reap now; it restarts on a later tick */
            break;
        case SIGHUP:
            if (!r->stopping && r->ingest)
                reload(r);
            break;
        default:
            break;
        }
    }
}

static int setup_signals(router_t *r)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    r->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (r->sigfd < 0)
        return -1;
    loop_add_fd(r->loop, r->sigfd, LOOP_READ, on_signal, r);
    return 0;
}

static int open_store(router_t *r)
{
    const router_config_t *cfg = r->cfg;
    store_opts_t opts = { .password = cfg->redis.password, .database = cfg->redis.database,
                          .meanwhile = "answering BUSY",
                          .timeout_ms = cfg->redis.timeout_ms, .reconnect_ms = cfg->redis.reconnect_ms,
                          .connections = cfg->redis.connections,
                          .relaxed = cfg->redis.durability == REDIS_DURABILITY_RELAXED,
                          .sentinels = cfg->redis.sentinel_addrs, .n_sentinels = cfg->redis.n_sentinels,
                          .master_name = cfg->redis.master_name, .wait_replicas = cfg->redis.wait_replicas,
                          .wait_timeout_ms = cfg->redis.wait_timeout_ms,
                          .on_state = on_store_state, .data = r };
    if (opts.relaxed)
        omni_warn("redis.durability is relaxed: messages are ACKed even when Redis does not fsync every write, "
                  "so an ACKed message can be lost if Redis dies");
    if (cfg->redis.n_sentinels > 0) {
        /* the store asks the sentinels (resolved when the configuration was read) */
    } else if (cfg->redis.address && *cfg->redis.address) {
        /* resolved to a number when the configuration was read: connecting never waits on DNS */
        if (cfg->redis.addr.path[0]) {
            opts.unix_path = cfg->redis.addr.path;
        } else {
            opts.tcp_host = cfg->redis.addr.host;
            opts.tcp_port = cfg->redis.addr.port;
        }
    } else {
        r->embedded = embedded_new(cfg->redis.server, cfg->router.state_dir);
        if (!r->embedded || embedded_start(r->embedded) != 0)
            return -1;
        opts.unix_path = embedded_socket(r->embedded);
        opts.grace_ms = 5000; /* redis-server needs a moment to create its socket */
    }
    r->store = store_new(r->loop, &opts);
    r->routing = routing_new(r->store, cfg);
    return 0;
}

/* After the loop stops (the store already takes nothing new): let Redis answer what is in flight, so
 * those connectors get their ACK now rather than resending later, and answer BUSY to messages still
 * arriving until none came for SETTLE_MS, all within DRAIN_MS. */
static void drain(router_t *r)
{
    int64_t deadline = omni_mono_ms() + DRAIN_MS, quiet_since = omni_mono_ms();
    unsigned long long seen = ingest_stats(r->ingest)->received;
    while (omni_mono_ms() < deadline) {
        if (ingest_stats(r->ingest)->received != seen) {
            seen = ingest_stats(r->ingest)->received;
            quiet_since = omni_mono_ms();
        }
        int waiting = ingest_inflight(r->ingest) > 0 && store_connected(r->store);
        if (!waiting && omni_mono_ms() - quiet_since >= SETTLE_MS)
            break;
        if (loop_once(r->loop, 20) != 0)
            break;
    }
    /* the last counts, for omnictl status while the entry lasts */
    while (r->status_busy && store_connected(r->store) && omni_mono_ms() < deadline)
        loop_once(r->loop, 50);
    if (store_connected(r->store))
        publish_status(r);
    while (r->status_busy && store_connected(r->store) && omni_mono_ms() < deadline)
        loop_once(r->loop, 50);
    if (ingest_inflight(r->ingest) > 0) {
        /* Redis is gone or slower than DRAIN_MS: answer BUSY now (the connectors resend), and give the
         * answers a moment to leave before the ingest socket closes, which drops what it still holds. */
        omni_warn("shutdown: %zu messages unanswered by redis get BUSY; their connectors resend them",
                  ingest_inflight(r->ingest));
        store_close(r->store);
        for (int64_t until = omni_mono_ms() + SETTLE_MS; omni_mono_ms() < until;)
            if (loop_once(r->loop, 20) != 0)
                break;
    }
}

int router_run(router_config_t *cfg, const router_source_t *src)
{
    router_t r = { .cfg = cfg, .src = src, .sigfd = -1, .exit_status = 0 };
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    snprintf(r.name, sizeof r.name, "%s:%d", host, (int)getpid());
    if (omni_mkdir_p(cfg->router.state_dir, 0750) != 0)
        omni_fatal("router.state_dir %s: %s", cfg->router.state_dir, strerror(errno));
    r.loop = loop_new();
    r.zctx = zmq_ctx_new();
    if (!r.zctx)
        omni_fatal("zmq_ctx_new: %s", zmq_strerror(errno));
    if (setup_signals(&r) != 0)
        omni_fatal("signalfd: %s", strerror(errno));
    if (open_store(&r) != 0) {
        r.exit_status = 1;
        goto out;
    }
    char err[512];
    r.ingest = ingest_new(r.zctx, r.loop, r.store, cfg, err, sizeof err);
    if (!r.ingest) {
        omni_log(OMNI_LOG_FATAL, "ingest: %s", err); /* exits 1: docs/logging.md's fatal */
        r.exit_status = 1;
        goto out;
    }
    if (routing_enabled(r.routing)) {
        ingest_on_opened(r.ingest, on_opened, &first_route, &r);
        omni_info("routing: %zu rules, %zu teams, %zu agents", cfg->policy.n_routes, cfg->policy.n_teams,
                  cfg->policy.n_agents);
    } else {
        omni_info("routing: no routing rules; new conversations wait on queue %s", cfg->conversations.default_queue);
    }
    r.archive = archive_new(r.loop, r.store, r.name);
    if (!r.archive) {
        r.exit_status = 1;
        goto out;
    }
    omni_info("retention: message ids remembered %d s, resolved conversations kept %d s, then archived to %s",
              cfg->retention.dedup_s, cfg->retention.resolved_s, cfg->retention.archive_dir);
    if (cfg->router.metrics_listen) {
        r.metrics = router_metrics_new(r.loop, r.store, cfg, r.ingest, r.routing, err, sizeof err);
        if (!r.metrics) {
            omni_log(OMNI_LOG_FATAL, "router.metrics_listen: %s", err);
            r.exit_status = 1;
            goto out;
        }
        const char *listen = cfg->router.metrics_listen, *colon = strrchr(listen, ':'); /* the port bound */
        omni_info("metrics: GET http://%.*s:%d/metrics", (int)(colon - listen), listen, router_metrics_port(r.metrics));
    }
    if (sd_watchdog_enabled(0, &r.watchdog_usec) <= 0)
        r.watchdog_usec = 0;
    loop_set_tick(r.loop, cfg->router.tick_ms, tick, &r);
    loop_set_before_sleep(r.loop, before_sleep, &r);
    store_tick(r.store); /* connect now rather than one tick from now */
    if (loop_run(r.loop) != 0)
        r.exit_status = 1;
    if (!r.stopping) { /* the loop failed: stop taking messages all the same */
        sd_notify(0, "STOPPING=1");
        store_drain(r.store);
    }
    if (r.ingest)
        drain(&r);
out:
    store_destroy(&r.store); /* fails what is still in flight: those connectors resend */
    routing_destroy(&r.routing); /* after the store: its callbacks use it */
    archive_destroy(&r.archive);  /* the same */
    router_metrics_destroy(&r.metrics);
    ingest_destroy(&r.ingest);
    embedded_destroy(&r.embedded);
    if (r.sigfd >= 0)
        close(r.sigfd);
    zmq_ctx_term(r.zctx);
    loop_destroy(&r.loop);
    for (size_t i = 0; i < r.n_retired; i++)
        config_destroy(&r.retired[i]);
    free(r.retired);
    config_destroy(&r.cfg);
    omni_info("stopped");
    return r.exit_status;
}
