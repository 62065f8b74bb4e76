/* omnirouted: the omnirouter daemon. Reads its configuration, then runs the router (server.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "omni/log.h"
#include "server.h"

#define DEFAULT_CONFIG "/etc/omnirouter/omnirouter.yaml"
#define MAX_OVERRIDES 64

static void usage(FILE *out)
{
    fprintf(out,
            "usage: omnirouted [--config FILE] [-D KEY=VALUE ...]\n"
            "       omnirouted --check-config FILE [-D KEY=VALUE ...]\n"
            "       omnirouted --config-reference\n"
            "\n"
            "  -c, --config FILE        configuration file (default " DEFAULT_CONFIG ")\n"
            "  -t, --check-config FILE  check FILE, print every warning and \"configuration OK\", or every error, and exit\n"
            "  -D KEY=VALUE             override one key, e.g. -D router.state_dir=/tmp/omni\n"
            "      --config-reference   print every configuration key with its type, default and bounds\n"
            "  -h, --help               this text\n"
            "\n"
            "Runs in the foreground and logs to stderr (journald under systemd). SIGTERM or SIGINT stop it; SIGHUP\n"
            "(or omnictl reload) reads the configuration again and applies it when it is valid.\n");
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
    omni_log_init("omnirouted", OMNI_LOG_INFO);
    while ((opt = getopt_long(argc, argv, "c:t:D:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 't': path = optarg, check = 1; break;
        case 'D':
            if (n_overrides == MAX_OVERRIDES) {
                fprintf(stderr, "omnirouted: more than %d -D overrides\n", MAX_OVERRIDES);
                return 2;
            }
            overrides[n_overrides++] = optarg;
            break;
        case 'R': config_print_reference(stdout); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "omnirouted: unexpected argument: %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    config_errors_t errs = { 0 };
    router_config_t *cfg = config_load(path, overrides, n_overrides, &errs);
    if (!cfg) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        fprintf(stderr, "omnirouted: %zu configuration error%s; not started\n", errs.n, errs.n == 1 ? "" : "s");
        config_errors_free(&errs);
        return 1;
    }
    /* Warnings do not stop the router: what they describe may be meant (work waiting in a queue). */
    config_errors_t warns = { 0 };
    config_warnings(cfg, &warns);
    if (check) {
        for (size_t i = 0; i < warns.n; i++)
            fprintf(stderr, "%s\n", warns.lines[i]);
        config_errors_free(&warns);
        printf("configuration OK\n");
        config_destroy(&cfg);
        return 0;
    }
    omni_log_set_level((omni_log_level_t)cfg->router.log_level);
    for (size_t i = 0; i < warns.n; i++)
        omni_warn("%s", warns.lines[i]);
    config_errors_free(&warns);
    omni_info("starting with %s", cfg->source);
    router_source_t src = { .path = path, .overrides = overrides, .n_overrides = n_overrides };
    return router_run(cfg, &src);
}
