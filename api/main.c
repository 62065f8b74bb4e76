/* omni-api: the HTTP+JSON API for agents, partners and operators (docs/api.md). Reads its configuration,
 * serves until SIGTERM or SIGINT, and tells systemd where it is (Type=notify: READY, STOPPING, WATCHDOG). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "api_metrics.h"
#include "config_cli.h"
#include "omni/log.h"
#include "omni/util.h"
#include "scripts.h"
#include "server.h"

#define DEFAULT_CONFIG "/etc/omnirouter/omni-api.yaml"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: omni-api [--config FILE] [-D KEY=VALUE ...]\n"
            "       omni-api --check-config FILE [-D KEY=VALUE ...]\n"
            "       omni-api --config-reference\n"
            "\n"
            "  -c, --config FILE        configuration file (default " DEFAULT_CONFIG ")\n"
            "  -t, --check-config FILE  check FILE: print \"configuration OK\", or every error as FILE:LINE:COLUMN\n"
            "  -D KEY=VALUE             override one key, e.g. -D api.listen=127.0.0.1:0\n"
            "      --config-reference   every configuration key with its type, default and bounds\n"
            "  -h, --help               this text\n"
            "\n"
            "Runs in the foreground and logs to stderr (journald under systemd). SIGTERM or SIGINT stop it;\n"
            "SIGHUP is logged and ignored (the configuration is read at start-up).\n");
}

/* Whether the server still accepts connections: a connection to its own port that is answered or closed by
 * it within a second. */
static bool answers(const api_config_t *cfg, int port)
{
    struct sockaddr_storage a = cfg->api.addr;
    if (a.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&a;
        in->sin_port = htons((uint16_t)port);
        if (in->sin_addr.s_addr == htonl(INADDR_ANY))
            in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a;
        in6->sin6_port = htons((uint16_t)port);
        if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
            in6->sin6_addr = in6addr_loopback;
    }
    int fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    static const char probe[] = "GET /healthz HTTP/1.0\r\n\r\n";
    char buf[16];
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, cfg->api.addr_len) == 0 &&
              write(fd, probe, sizeof probe - 1) == (ssize_t)(sizeof probe - 1) && read(fd, buf, sizeof buf) >= 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Waits for SIGTERM or SIGINT (blocked in every thread: read from a signalfd), serving the metrics listener
 * when there is one, and telling the systemd watchdog at half its interval that the server answers. */
static void wait_for_stop(const api_config_t *cfg, const api_server_t *srv, api_metrics_server_t *metrics)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    int sigfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sigfd < 0)
        omni_fatal("signalfd: %s", strerror(errno));
    uint64_t wd_usec = 0;
    bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0;
    int64_t next_watchdog = omni_mono_ms() + (int64_t)(wd_usec / 2000);
    for (;;) {
        struct pollfd fds[2] = { { .fd = sigfd, .events = POLLIN },
                                 { .fd = metrics ? api_metrics_server_fd(metrics) : -1, .events = POLLIN } };
        int64_t wait = watchdog ? next_watchdog - omni_mono_ms() : 1000;
        if (poll(fds, 2, (int)(wait < 0 ? 0 : wait > 1000 ? 1000 : wait)) < 0 && errno != EINTR)
            omni_fatal("poll: %s", strerror(errno));
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGHUP) {
                    /* a reload sent to every omnirouter unit must not stop the API (omni-webhooks does the same) */
                    omni_info("SIGHUP: configuration is read at start-up; restart the service to apply changes");
                    continue;
                }
                omni_info("%s: stopping", strsignal((int)si.ssi_signo));
                close(sigfd);
                return;
            }
        }
        if (metrics) /* when readable, and once a second for its timeouts */
            api_metrics_server_run(metrics);
        if (!watchdog || omni_mono_ms() < next_watchdog)
            continue;
        next_watchdog = omni_mono_ms() + (int64_t)(wd_usec / 2000);
        /* at max_connections a probe would wait in the listen queue like any client: every thread is busy
         * serving, which is alive enough */
        if (api_server_connections(srv) >= cfg->api.max_connections || answers(cfg, api_server_port(srv)))
            sd_notify(0, "WATCHDOG=1");
        else
            omni_warn("watchdog: the server did not answer on its own port within 1 s");
    }
}

int main(int argc, char **argv)
{
    static const config_cli_spec_t spec = { .prog = "omni-api", .default_path = DEFAULT_CONFIG, .overrides = true,
                                            .usage = usage, .reference = api_config_print_reference };
    config_cli_t cli;
    omni_log_init("omni-api", OMNI_LOG_INFO);
    int rc = config_cli_parse(&spec, argc, argv, &cli);
    if (rc >= 0)
        return rc;
    config_errors_t errs = { 0 };
    api_config_t *cfg = api_config_load(cli.path, cli.overrides, cli.n_overrides, &errs);
    if (!cfg)
        return config_cli_refused(spec.prog, &errs);
    if (cli.check) {
        printf("configuration OK\n");
        api_config_destroy(&cfg);
        return 0;
    }
    omni_log_set_level(cfg->api.log_level);
    /* before any thread: the signals go to sigtimedwait only, and no thread writes the scripts' caches */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    lua_contract_init();
    json_object_seed(0); /* jansson's hash seed, made once here rather than raced for by the first threads */
    api_redis_init();
    api_server_t *srv = api_server_start(cfg);
    if (!srv) {
        api_config_destroy(&cfg);
        return 1;
    }
    api_metrics_server_t *metrics = NULL;
    if (cfg->api.metrics_listen) {
        char err[300];
        metrics = api_metrics_server_new(cfg->api.metrics_listen, err, sizeof err);
        if (!metrics) {
            omni_error("api.metrics_listen %s: %s", cfg->api.metrics_listen, err);
            api_server_stop(&srv);
            api_config_destroy(&cfg);
            return 1;
        }
        omni_info("metrics on http://%s/metrics", cfg->api.metrics_listen);
    }
    char redis[300];
    if (cfg->redis.n_sentinels > 0)
        snprintf(redis, sizeof redis, "master %s via %zu sentinels", cfg->redis.master_name, cfg->redis.n_sentinels);
    else
        snprintf(redis, sizeof redis, "%s", cfg->redis.address);
    char index[4200];
    snprintf(index, sizeof index, "%s/index.html", cfg->console.directory ? cfg->console.directory : "");
    if (cfg->console.directory && access(index, R_OK) != 0) /* the default names /usr/local: another PREFIX */
        omni_warn("console.directory %s: %s: /console/ answers 404 (make install puts the console in "
                  "PREFIX/share/omnirouter/console: set console.directory to it, or to \"\" for no console)",
                  cfg->console.directory, strerror(errno));
    omni_info("ready: listening on %s port %d, redis %s, at most %d connections", cfg->api.listen,
              api_server_port(srv), redis, cfg->api.max_connections);
    sd_notifyf(0, "READY=1\nSTATUS=listening on port %d", api_server_port(srv));
    wait_for_stop(cfg, srv, metrics);
    api_metrics_server_destroy(&metrics);
    sd_notify(0, "STOPPING=1");
    api_server_stop(&srv);
    api_config_destroy(&cfg);
    omni_info("stopped");
    return 0;
}
