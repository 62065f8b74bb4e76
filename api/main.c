/* omni-api: the HTTP+JSON API for agents, partners and operators (docs/api.md). Reads its configuration,
 * serves until SIGTERM or SIGINT, and tells systemd where it is (Type=notify: READY, STOPPING, WATCHDOG). */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "omni/log.h"
#include "scripts.h"
#include "server.h"

#define DEFAULT_CONFIG "/etc/omnirouter/omni-api.yaml"
#define MAX_OVERRIDES 64

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
            "Runs in the foreground and logs to stderr (journald under systemd). SIGTERM or SIGINT stop it.\n");
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

/* Waits for SIGTERM or SIGINT, telling the systemd watchdog at half its interval that the server answers. */
static void wait_for_stop(const api_config_t *cfg, const api_server_t *srv)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    uint64_t wd_usec = 0;
    bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0;
    struct timespec period = { 3600, 0 };
    if (watchdog)
        period = (struct timespec){ (time_t)(wd_usec / 2 / 1000000), (long)(wd_usec / 2 % 1000000 * 1000) };
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &period);
        if (sig == SIGTERM || sig == SIGINT) {
            omni_info("%s: stopping", strsignal(sig));
            return;
        }
        /* at max_connections a probe would wait in the listen queue like any client: every thread is busy
         * serving, which is alive enough */
        if (watchdog && (api_server_connections(srv) >= cfg->api.max_connections ||
                         answers(cfg, api_server_port(srv))))
            sd_notify(0, "WATCHDOG=1");
        else if (watchdog)
            omni_warn("watchdog: the server did not answer on its own port within 1 s");
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, 0, 'c' },      { "check-config", required_argument, 0, 't' },
        { "config-reference", no_argument, 0, 'R' }, { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    const char *path = DEFAULT_CONFIG, *overrides[MAX_OVERRIDES];
    size_t n_overrides = 0;
    int check = 0, opt;
    omni_log_init("omni-api", OMNI_LOG_INFO);
    while ((opt = getopt_long(argc, argv, "c:t:D:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 't': path = optarg, check = 1; break;
        case 'D':
            if (n_overrides == MAX_OVERRIDES) {
                fprintf(stderr, "omni-api: more than %d -D overrides\n", MAX_OVERRIDES);
                return 2;
            }
            overrides[n_overrides++] = optarg;
            break;
        case 'R': api_config_print_reference(stdout); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "omni-api: unexpected argument: %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    config_errors_t errs = { 0 };
    api_config_t *cfg = api_config_load(path, overrides, n_overrides, &errs);
    if (!cfg) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        fprintf(stderr, "omni-api: %zu configuration error%s; not started\n", errs.n, errs.n == 1 ? "" : "s");
        config_errors_free(&errs);
        return 1;
    }
    if (check) {
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
    omni_info("ready: listening on %s port %d, redis %s, at most %d connections", cfg->api.listen,
              api_server_port(srv), cfg->redis.address, cfg->api.max_connections);
    sd_notifyf(0, "READY=1\nSTATUS=listening on port %d", api_server_port(srv));
    wait_for_stop(cfg, srv);
    sd_notify(0, "STOPPING=1");
    api_server_stop(&srv);
    api_config_destroy(&cfg);
    omni_info("stopped");
    return 0;
}
