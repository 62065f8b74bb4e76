/* The connector runtime (connector.h): command line, config, signals, the OMNI/1 client, sd_notify, and
 * one poll(2) loop. A connector supplies only open/poll/close; everything that every connector must get
 * right the same way (spool before acknowledging, paced retries, clean shutdown) lives here once. */
#include "connector_int.h"
#include "omni/log.h"
#include "omni/metrics.h"
#include "omni/util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define STATUS_EVERY_MS 1000 /* STATUS= is refreshed at most this often, and only when it changed */

/* log.h keeps a pointer to the ident for the life of the program. */
static char log_ident[64];

static void usage(const omni_connector_def_t *def, FILE *out)
{
    fprintf(out, "usage: omni-%s [--config FILE] [-D key=value]... [--check-config] [--help]\n"
                 "%s\n\n"
                 "  --config FILE   read the YAML config FILE (without it: defaults and -D only)\n"
                 "  -D key=value    set a key (full dotted name; a list as [a, b], a section as {k: v}); repeatable\n"
                 "  --check-config  check the config and exit: 0 when good, 1 with every error\n"
                 "  --help          this text\n\nkeys:\n",
            def->name, def->summary ? def->summary : "");
    conn_config_print_reference(def, out);
}

static void on_nack(void *user, const char *id, const char *reason)
{
    omni_connector_t *ctx = user;
    ctx->st.nacked++;
    omni_log_event(OMNI_LOG_WARN, OMNI_MSGID_MESSAGE_REFUSED, (const char *[]){ "OMNI_MESSAGE", id, NULL },
                   "router refused message %s: %s (kept in %s/dead-letter.jsonl)", id, reason, ctx->cfg->spool_dir);
}

static void on_busy(void *user, const char *id, int retry_ms)
{
    (void)user;
    omni_debug("router busy for message %s: resending in %d ms", id, retry_ms);
}

static void check_def(const omni_connector_def_t *def)
{
    if (def == NULL || def->name == NULL || def->name[0] == '\0' || strlen(def->name) > 32 ||
        strspn(def->name, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(def->name))
        omni_panic("connector definition: bad name");
    if (def->channel == NULL || !omni_channel_valid(def->channel))
        omni_panic("connector %s: bad channel", def->name);
    if (def->poll == NULL)
        omni_panic("connector %s: no poll callback", def->name);
}

/* Parses argv. Returns -1 to go on, or an exit status. */
static int parse_args(const omni_connector_def_t *def, int argc, char **argv, const char **config,
                      const char ***ovs, size_t *n_ovs, bool *check_only)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(def, stdout);
            return 0;
        } else if (strcmp(a, "--check-config") == 0) {
            *check_only = true;
        } else if (strcmp(a, "--config") == 0 && i + 1 < argc) {
            *config = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            *config = a + 9;
        } else if ((strcmp(a, "-D") == 0 && i + 1 < argc) || (strncmp(a, "-D", 2) == 0 && a[2] != '\0')) {
            *ovs = omni_realloc(*ovs, (*n_ovs + 1) * sizeof **ovs);
            (*ovs)[(*n_ovs)++] = a[2] != '\0' ? a + 2 : argv[++i];
        } else {
            fprintf(stderr, "omni-%s: unknown or incomplete argument \"%s\" (try --help)\n", def->name, a);
            return 2;
        }
    }
    return -1;
}

static int setup_signals(omni_connector_t *ctx)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* Blocked before the client starts ZeroMQ's threads, which inherit the mask: only the signalfd sees
     * these signals, so no handler can interrupt the loop at an awkward point. */
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    ctx->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return ctx->sigfd < 0 ? -1 : 0;
}

/* GET /metrics: what the runtime counts for this connector, labelled with its name. */
static void render_metrics(omni_metrics_t *m, void *data)
{
    const omni_connector_t *ctx = data;
    omni_client_stats_t cs;
    omni_client_stats(ctx->client, &cs);
    const char *name = ctx->def->name;
    static const struct { const char *metric, *type, *help; } f[] = {
        { "omnirouter_connector_polls_total", "counter", "Times the source was read." },
        { "omnirouter_connector_poll_errors_total", "counter", "Reads of the source that failed." },
        { "omnirouter_connector_messages_submitted_total", "counter", "Messages spooled for the router." },
        { "omnirouter_connector_messages_invalid_total", "counter", "Source messages that were not valid messages." },
        { "omnirouter_connector_messages_acked_total", "counter", "Messages the router stored (ACK)." },
        { "omnirouter_connector_messages_nacked_total", "counter", "Messages the router refused (dead-lettered)." },
        { "omnirouter_connector_busy_total", "counter", "BUSY answers from the router." },
        { "omnirouter_connector_spooled_messages", "gauge", "Messages in the spool waiting for the router." },
        { "omnirouter_connector_source_up", "gauge", "1 while the source answers." },
    };
    const double v[] = { (double)ctx->st.polls, (double)ctx->st.poll_errors, (double)ctx->st.submitted,
                         (double)ctx->st.invalid, (double)cs.acked, (double)cs.nacked, (double)cs.busy,
                         (double)omni_client_pending(ctx->client), ctx->backoff_ms == 0 && ctx->ready ? 1 : 0 };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        omni_metrics_family(m, f[i].metric, f[i].type, f[i].help);
        omni_metrics_sample(m, f[i].metric, v[i], "connector", name, NULL);
    }
}

/* Ready: the source answers and the spool has room (the router takes what it holds). */
static int connector_ready(void *data, char *why, size_t whysz)
{
    const omni_connector_t *ctx = data;
    if (!ctx->ready || ctx->backoff_ms > 0)
        snprintf(why, whysz, "%s", ctx->ready ? "the source fails; retrying" : "the source has not answered yet");
    else if (ctx->spool_full)
        snprintf(why, whysz, "the spool is full: the router is away");
    else
        return 1;
    return 0;
}

omni_connector_t *omni_connector_new(const omni_connector_def_t *def, int argc, char **argv, int *status)
{
    check_def(def);
    snprintf(log_ident, sizeof log_ident, "omni-%s", def->name);
    omni_log_init(log_ident, OMNI_LOG_INFO);
    const char *config = NULL, **ovs = NULL;
    size_t n_ovs = 0;
    bool check_only = false;
    int rc = parse_args(def, argc, argv, &config, &ovs, &n_ovs, &check_only);
    if (rc >= 0) {
        free(ovs);
        *status = rc;
        return NULL;
    }
    conn_errors_t errs = { 0 };
    conn_config_t *cfg = conn_config_load(def, config, ovs, n_ovs, &errs);
    free(ovs);
    if (cfg == NULL) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s: %s\n", log_ident, errs.lines[i]);
        conn_errors_free(&errs);
        *status = 1;
        return NULL;
    }
    omni_log_set_level((omni_log_level_t)cfg->log_level);
    omni_connector_t *ctx = omni_calloc(1, sizeof *ctx);
    ctx->def = def;
    ctx->cfg = cfg;
    ctx->sigfd = ctx->watch_fd = -1;
    omni_limits_default(&ctx->limits);
    char err[512] = "";
    /* A check reports each error it finds (omni_connector_check_error, printed at once, located at the key) and
     * goes on; one that only returns -1 with a sentence in err (the older form) is printed as before. */
    if (def->check != NULL && (def->check(ctx, err, sizeof err) != 0 || ctx->check_errors > 0)) {
        if (err[0] != '\0')
            fprintf(stderr, "%s: %s: %s\n", log_ident, config ? config : "config", err);
        *status = 1;
        omni_connector_destroy(&ctx);
        return NULL;
    }
    if (check_only) {
        printf("%s: %s: config OK\n", log_ident, config ? config : "(defaults)");
        *status = 0;
        omni_connector_destroy(&ctx);
        return NULL;
    }
    if (omni_mkdir_p(cfg->state_dir, 0700) != 0) {
        /* state_dir defaults to spool_dir: name the key the user set, not the one derived from it. */
        const char *key = strcmp(cfg->state_dir, cfg->spool_dir) == 0 ? "spool_dir" : "state_dir";
        fprintf(stderr, "%s: %s %s: %s\n", log_ident, key, cfg->state_dir, strerror(errno));
    } else if (setup_signals(ctx) != 0) {
        fprintf(stderr, "%s: signals: %s\n", log_ident, strerror(errno));
    } else {
        omni_client_opts_t o = { .endpoint = cfg->endpoint, .spool_dir = cfg->spool_dir,
                                 .resend_ms = cfg->resend_ms, .ping_ms = cfg->ping_ms,
                                 .max_spooled = cfg->max_spooled, .on_nack = on_nack, .on_busy = on_busy,
                                 .server_public_key = cfg->server_public_key,
                                 .curve_secret_key_file = cfg->curve_secret_key_file,
                                 .curve_public_key_file = cfg->curve_public_key_file,
                                 .user = ctx };
        ctx->client = omni_client_new(&o, err, sizeof err);
        if (ctx->client == NULL)
            fprintf(stderr, "%s: %s\n", log_ident, err);
    }
    if (ctx->client != NULL && cfg->metrics_listen != NULL) {
        ctx->metrics = omni_metrics_server_new(cfg->metrics_listen, render_metrics, ctx, err, sizeof err);
        if (ctx->metrics)
            omni_metrics_server_set_ready(ctx->metrics, connector_ready);
        if (ctx->metrics == NULL) {
            fprintf(stderr, "%s: metrics_listen: %s\n", log_ident, err);
            omni_client_destroy(&ctx->client);
        }
    }
    if (ctx->client == NULL) {
        *status = 1;
        omni_connector_destroy(&ctx);
        return NULL;
    }
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
        ctx->wd_every_ms = (int64_t)(usec / 2000) > 0 ? (int64_t)(usec / 2000) : 1;
    omni_info("started: router %s, spool %s, polling every %d ms", cfg->endpoint, cfg->spool_dir, cfg->poll_ms);
    *status = 0;
    return ctx;
}

void omni_connector_destroy(omni_connector_t **ctxp)
{
    if (ctxp == NULL || *ctxp == NULL)
        return;
    omni_connector_t *ctx = *ctxp;
    if (ctx->phase == PHASE_OPEN && ctx->def->close != NULL)
        ctx->def->close(ctx);
    omni_client_destroy(&ctx->client);
    omni_metrics_server_destroy(&ctx->metrics);
    if (ctx->sigfd >= 0)
        close(ctx->sigfd);
    conn_config_destroy(&ctx->cfg);
    free(ctx);
    *ctxp = NULL;
}

static void notify_status(omni_connector_t *ctx, int64_t now, bool force)
{
    if (!force && now < ctx->next_status)
        return;
    ctx->next_status = now + STATUS_EVERY_MS;
    omni_client_stats_t cs = { 0 };
    omni_client_stats(ctx->client, &cs);
    char line[sizeof ctx->sent_status];
    snprintf(line, sizeof line, "STATUS=%s%s%spending %zu, submitted %llu, acked %llu, nacked %llu, "
             "invalid %llu, source errors %llu",
             ctx->backoff_ms > 0 ? "source failing; " : "", ctx->status, ctx->status[0] ? "; " : "",
             omni_client_pending(ctx->client), ctx->st.submitted, cs.acked, ctx->st.nacked, ctx->st.invalid,
             ctx->st.poll_errors);
    if (strcmp(line, ctx->sent_status) != 0) {
        sd_notify(0, line);
        memcpy(ctx->sent_status, line, sizeof line);
    }
}

static void do_poll(omni_connector_t *ctx, int64_t now)
{
    const conn_config_t *cfg = ctx->cfg;
    ctx->next_poll = now + cfg->poll_ms; /* poll_in() inside poll() may bring it forward */
    int rc = ctx->def->poll(ctx);
    /* Not in yet (work under way on the connector's thread or transfer): nothing is decided, and a batch
     * under way may span several polls, so no commit for it either; the connector commits it whole. */
    ctx->pending = rc == OMNI_POLL_PENDING;
    if (ctx->pending)
        return;
    ctx->st.polls++;
    if (ctx->dirty) {
        /* A connector that forgot to commit: make the batch durable anyway; it is cheap and safe. */
        omni_debug("poll returned with uncommitted messages; committing");
        if (omni_connector_commit(ctx) != 0)
            omni_error("spool sync: %s", strerror(errno));
    }
    if (rc == 0) {
        if (ctx->backoff_ms > 0)
            omni_info("source reachable again");
        ctx->backoff_ms = 0;
        if (!ctx->ready) {
            ctx->ready = true;
            notify_status(ctx, now, true);
            sd_notify(0, "READY=1");
            omni_log_event(OMNI_LOG_INFO, OMNI_MSGID_READY, NULL, "ready: the source answered");
        }
    } else {
        ctx->st.poll_errors++;
        ctx->backoff_ms = ctx->backoff_ms == 0 ? cfg->poll_ms : ctx->backoff_ms * 2;
        if (ctx->backoff_ms > cfg->retry_max_ms)
            ctx->backoff_ms = cfg->retry_max_ms;
        ctx->next_poll = now + ctx->backoff_ms;
        omni_info("source failed; next try in %d ms", ctx->backoff_ms);
    }
}

static void read_signals(omni_connector_t *ctx)
{
    struct signalfd_siginfo si;
    while (read(ctx->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            omni_info("SIGHUP ignored: restart the connector to read its config again");
        } else if (!ctx->stopping) {
            omni_log_event(OMNI_LOG_INFO, OMNI_MSGID_STOPPING, NULL, "stopping on %s",
                           si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            ctx->stopping = true;
            ctx->stop_status = 0;
        }
    }
}

/* The smaller of a delay a >= 0 and a candidate b in ms, where a negative b means "nothing scheduled". */
static int64_t min_delay(int64_t a, int64_t b)
{
    return b >= 0 && b < a ? b : a;
}

int omni_connector_step(omni_connector_t *ctx, int timeout_ms)
{
    if (ctx->phase == PHASE_FAILED)
        return -1;
    if (ctx->phase == PHASE_NEW) {
        if (ctx->def->open != NULL && ctx->def->open(ctx) != 0) {
            ctx->phase = PHASE_FAILED;
            return -1;
        }
        ctx->phase = PHASE_OPEN;
        ctx->next_poll = omni_mono_ms();
    }
    if (ctx->stopping)
        return 1;
    int64_t now = omni_mono_ms();
    /* Every candidate is a delay in ms; deadlines already passed count as 0. */
    int64_t wait = ctx->next_poll > now ? ctx->next_poll - now : 0;
    wait = min_delay(wait, omni_client_next_timeout(ctx->client));
    if (ctx->wd_every_ms > 0)
        wait = min_delay(wait, ctx->next_wd > now ? ctx->next_wd - now : 0);
    wait = min_delay(wait, ctx->next_status > now ? ctx->next_status - now : 0);
    if (timeout_ms >= 0)
        wait = min_delay(wait, timeout_ms);
    struct pollfd fds[4] = { { ctx->sigfd, POLLIN, 0 }, { omni_client_fd(ctx->client), POLLIN, 0 },
                             { ctx->metrics ? omni_metrics_server_fd(ctx->metrics) : -1, POLLIN, 0 },
                             { ctx->watch_fd, POLLIN, 0 } };
    /* While the source fails, its fd waits for the paced retry (a dead socket stays readable forever),
     * unless the retry is under way (poll() said OMNI_POLL_PENDING): its answer comes through the fd. */
    nfds_t n = ctx->watch_fd >= 0 && (ctx->backoff_ms == 0 || ctx->pending) ? 4 : 3;
    if (ctx->metrics) /* connections' timeouts are served at least once a second */
        wait = min_delay(wait, 1000);
    if (poll(fds, n, (int)(wait > 3600000 ? 3600000 : wait)) < 0 && errno != EINTR) {
        omni_error("poll: %s", strerror(errno));
        return -1;
    }
    if (fds[0].revents & POLLIN)
        read_signals(ctx);
    if (ctx->metrics)
        omni_metrics_server_run(ctx->metrics);
    if (omni_client_poll(ctx->client, 0) < 0) {
        omni_error("router client: %s", strerror(errno));
        return -1;
    }
    now = omni_mono_ms();
    bool readable = n == 4 && (fds[3].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
    if (!ctx->stopping && (now >= ctx->next_poll || readable)) {
        do_poll(ctx, now);
        /* Send what poll() submitted now rather than after the next wait. */
        if (omni_client_poll(ctx->client, 0) < 0) {
            omni_error("router client: %s", strerror(errno));
            return -1;
        }
    }
    if (ctx->wd_every_ms > 0 && now >= ctx->next_wd) {
        sd_notify(0, "WATCHDOG=1");
        ctx->next_wd = now + ctx->wd_every_ms;
    }
    notify_status(ctx, now, false);
    return ctx->stopping ? 1 : 0;
}

int omni_connector_run(omni_connector_t *ctx)
{
    int rc;
    while ((rc = omni_connector_step(ctx, -1)) == 0)
        continue;
    sd_notify(0, "STOPPING=1");
    if (rc < 0)
        return 1;
    omni_info("stopped; %zu message(s) wait in the spool for the router", omni_client_pending(ctx->client));
    return ctx->stop_status;
}

int omni_connector_main(const omni_connector_def_t *def, int argc, char **argv)
{
    int status = 0;
    omni_connector_t *ctx = omni_connector_new(def, argc, argv, &status);
    if (ctx == NULL)
        return status;
    status = omni_connector_run(ctx);
    omni_connector_destroy(&ctx);
    return status;
}

void omni_connector_stop(omni_connector_t *ctx, int status)
{
    ctx->stopping = true;
    ctx->stop_status = status;
}
