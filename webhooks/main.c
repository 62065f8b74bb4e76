/* omni-webhooks: delivers each partner team's inbox to the partner's HTTPS endpoint, signed per Standard
 * Webhooks, retried with backoff until taken or dead-lettered (docs/webhooks.md). One event loop
 * (daemon/loop.c) carries both the asynchronous Redis connection (daemon/store.c) and libcurl's multi
 * interface (http.c): a slow Redis never holds up a send, a slow partner never holds up Redis. All state is
 * in Redis: several may run, and one killed at any moment loses nothing. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <curl/curl.h>
#include <systemd/sd-daemon.h>

#include "config_cli.h"
#include "deliver.h"
#include "http.h"
#include "loop.h"
#include "omni/log.h"
#include "omni/secret.h"
#include "omni/util.h"
#include "sign.h"
#include "store.h"
#include "wh_config.h"
#include "wh_metrics.h"

#define DEFAULT_CONFIG "/etc/omnirouter/omni-webhooks.yaml"
#define STOP_MS 3000 /* on SIGTERM, attempts in flight get this long to finish and be recorded */

typedef struct app {
    const wh_config_t *cfg;
    loop_t *loop;
    store_t *store;
    http_t *http;
    deliver_t *deliver;
    wh_metrics_t *metrics; /* NULL: no webhooks.metrics_listen */
    int sigfd;
    bool ready_sent, stopping;
    uint64_t watchdog_usec;
    int64_t next_watchdog;
} app_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: omni-webhooks [--config FILE]\n"
            "       omni-webhooks --check-config FILE\n"
            "       omni-webhooks --config-reference\n"
            "       omni-webhooks --sign SECRET ID TIMESTAMP < BODY\n"
            "\n"
            "  -c, --config FILE        configuration file (default " DEFAULT_CONFIG ")\n"
            "  -t, --check-config FILE  check FILE (secrets read too): print \"configuration OK\" or every error\n"
            "      --config-reference   print every configuration key with its type, default and bounds\n"
            "      --sign SECRET ID TS  print the webhook-signature of the body read from stdin; SECRET names\n"
            "                           where the whsec_ secret is (a file, credential:NAME, env:NAME)\n"
            "  -h, --help               this text\n"
            "\n"
            "Runs in the foreground and logs to stderr (journald under systemd). SIGTERM or SIGINT stop it.\n");
}

static void on_store_state(store_t *store, int up, void *data)
{
    app_t *a = data;
    if (up && !a->ready_sent) {
        a->ready_sent = true;
        omni_info("ready: redis at %s, %zu partner%s", store_address(store), a->cfg->n_partners,
                  a->cfg->n_partners == 1 ? "" : "s");
        sd_notify(0, "READY=1\nSTATUS=delivering");
    } else if (!a->stopping) {
        sd_notify(0, up ? "STATUS=delivering" : "STATUS=redis unreachable; waiting");
    }
    if (up && a->deliver)
        deliver_poll(a->deliver); /* at once, not a poll period after (re)connecting */
}

static void tick(loop_t *loop, void *data)
{
    (void)loop;
    app_t *a = data;
    store_tick(a->store);
    deliver_poll(a->deliver);
    if (a->metrics)
        wh_metrics_tick(a->metrics);
    int64_t now = omni_mono_ms();
    if (a->watchdog_usec && now >= a->next_watchdog) {
        sd_notify(0, "WATCHDOG=1");
        a->next_watchdog = now + (int64_t)(a->watchdog_usec / 2000);
    }
}

static void on_signal(loop_t *loop, int fd, int events, void *data)
{
    (void)events;
    app_t *a = data;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            omni_info("SIGHUP: configuration is read at start-up; restart the service to apply changes");
            continue;
        }
        if (a->stopping)
            continue;
        omni_info("%s: stopping: no new deliveries claimed; %zu in flight finish", strsignal((int)si.ssi_signo),
                  deliver_inflight(a->deliver));
        a->stopping = true;
        sd_notify(0, "STOPPING=1");
        deliver_stop(a->deliver);
        loop_stop(loop);
    }
}

static void setup_signals(app_t *a)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    a->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (a->sigfd < 0)
        omni_fatal("signalfd: %s", strerror(errno));
    loop_add_fd(a->loop, a->sigfd, LOOP_READ, on_signal, a);
}

/* One turn: the loop waits no longer than libcurl's next timeout, then runs the timeouts due. */
static void turn(app_t *a)
{
    loop_once(a->loop, http_wait_ms(a->http));
    http_run_timers(a->http);
}

static int run(const wh_config_t *cfg)
{
    app_t a = { .cfg = cfg, .sigfd = -1 };
    a.loop = loop_new();
    setup_signals(&a);
    store_opts_t opts = { .password = cfg->redis.password_value, .database = cfg->redis.database,
                          .timeout_ms = cfg->redis.timeout_ms, .reconnect_ms = cfg->redis.reconnect_ms,
                          .connections = 1, .relaxed = 1, /* the router checks durability; we only run scripts */
                          .meanwhile = "delivering nothing",
                          .on_state = on_store_state, .data = &a };
    if (cfg->redis.n_sentinels > 0) /* the store asks the sentinels and follows a failover, as the router's */
        opts.sentinels = cfg->redis.sentinel_addrs, opts.n_sentinels = cfg->redis.n_sentinels,
        opts.master_name = cfg->redis.master_name;
    else if (cfg->redis.addr.path[0])
        opts.unix_path = cfg->redis.addr.path;
    else
        opts.tcp_host = cfg->redis.addr.host, opts.tcp_port = cfg->redis.addr.port;
    a.store = store_new(a.loop, &opts);
    a.http = http_new(a.loop);
    a.deliver = deliver_new(cfg, a.store, a.http);
    if (cfg->webhooks.metrics_listen) {
        char err[300];
        a.metrics = wh_metrics_new(a.loop, cfg->webhooks.metrics_listen, a.store, a.deliver, err, sizeof err);
        if (!a.metrics) {
            omni_error("webhooks.metrics_listen %s: %s", cfg->webhooks.metrics_listen, err);
            deliver_destroy(&a.deliver);
            http_destroy(&a.http);
            store_destroy(&a.store);
            close(a.sigfd);
            loop_destroy(&a.loop);
            return 1;
        }
        omni_info("metrics on http://%s/metrics", cfg->webhooks.metrics_listen);
    }
    if (sd_watchdog_enabled(0, &a.watchdog_usec) <= 0)
        a.watchdog_usec = 0;
    for (size_t i = 0; i < cfg->n_partners; i++)
        omni_info("partner %s: %s, %zu secret%s, %d attempts at most", cfg->partners[i].team, cfg->partners[i].url,
                  cfg->partners[i].n_secrets, cfg->partners[i].n_secrets == 1 ? "" : "s",
                  cfg->partners[i].max_attempts);
    loop_set_tick(a.loop, cfg->webhooks.poll_ms, tick, &a);
    store_tick(a.store); /* connect now rather than one tick from now */
    while (!a.stopping)
        turn(&a);
    /* Attempts in flight: let them finish and their outcome be recorded; what is left is sent again by
     * any omni-webhooks when its lease runs out. */
    for (int64_t until = omni_mono_ms() + STOP_MS; deliver_inflight(a.deliver) > 0 && omni_mono_ms() < until;)
        turn(&a);
    if (deliver_inflight(a.deliver) > 0)
        omni_warn("stopping with %zu attempts unrecorded: they are sent again when their lease ends",
                  deliver_inflight(a.deliver));
    wh_metrics_destroy(&a.metrics);
    http_destroy(&a.http);
    store_destroy(&a.store);
    deliver_destroy(&a.deliver);
    close(a.sigfd);
    loop_destroy(&a.loop);
    omni_info("stopped");
    return 0;
}

/* --sign: the signature for a partner checking their verifier, or for us checking the vector. */
static int sign_stdin(const char *spec, const char *id, const char *ts)
{
    char secret[OMNI_SECRET_MAX + 1], err[600];
    if (omni_secret_load(spec, "--sign", secret, sizeof secret, err, sizeof err) < 0) {
        fprintf(stderr, "omni-webhooks: %s\n", err);
        return 2;
    }
    unsigned char key[WH_KEY_MAX];
    long n = wh_secret_key(secret, key, sizeof key);
    explicit_bzero(secret, sizeof secret);
    if (n < 0) {
        fprintf(stderr, "omni-webhooks: --sign: %s does not hold a whsec_ secret (whsec_ then base64)\n", spec);
        return 2;
    }
    size_t cap = 65536, len = 0, got;
    char *body = omni_malloc(cap);
    while ((got = fread(body + len, 1, cap - len, stdin)) > 0)
        if ((len += got) == cap)
            body = omni_realloc(body, cap *= 2);
    char sig[WH_SIGNATURE_LEN];
    wh_signature(key, (size_t)n, id, ts, body, len, sig);
    explicit_bzero(key, sizeof key);
    free(body);
    printf("%s\n", sig);
    return 0;
}

int main(int argc, char **argv)
{
    static const config_cli_spec_t spec = { .prog = "omni-webhooks", .default_path = DEFAULT_CONFIG,
                                            .usage = usage, .reference = wh_config_print_reference };
    omni_log_init("omni-webhooks", OMNI_LOG_INFO);
    if (argc > 1 && !strcmp(argv[1], "--sign")) {
        if (argc != 5) {
            usage(stderr);
            return 2;
        }
        return sign_stdin(argv[2], argv[3], argv[4]);
    }
    config_cli_t cli;
    int rc = config_cli_parse(&spec, argc, argv, &cli);
    if (rc >= 0)
        return rc;
    config_errors_t errs = { 0 };
    wh_config_t *cfg = wh_config_load(cli.path, &errs);
    if (!cfg)
        return config_cli_refused(spec.prog, &errs);
    if (cli.check) {
        printf("configuration OK\n");
        wh_config_destroy(&cfg);
        return 0;
    }
    omni_log_set_level((omni_log_level_t)cfg->webhooks.log_level);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    srandom((unsigned)(omni_wall_ms() ^ getpid())); /* jitter only: not a secret */
    omni_info("starting with %s", cfg->source);
    int status = run(cfg);
    wh_config_destroy(&cfg);
    curl_global_cleanup();
    return status;
}
