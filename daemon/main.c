/* omnirouted: the omnirouter daemon. Reads its configuration, then runs the router (server.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_cli.h"
#include "omni/log.h"
#include "server.h"

#define DEFAULT_CONFIG "/etc/omnirouter/omnirouter.yaml"

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
    static const config_cli_spec_t spec = { .prog = "omnirouted", .default_path = DEFAULT_CONFIG, .overrides = true,
                                            .usage = usage, .reference = config_print_reference };
    config_cli_t cli;
    omni_log_init("omnirouted", OMNI_LOG_INFO);
    int rc = config_cli_parse(&spec, argc, argv, &cli);
    if (rc >= 0)
        return rc;
    config_errors_t errs = { 0 };
    config_read_key_files(true);
    router_config_t *cfg = config_load(cli.path, cli.overrides, cli.n_overrides, &errs);
    if (!cfg)
        return config_cli_refused(spec.prog, &errs);
    /* Warnings do not stop the router: what they describe may be meant (work waiting in a queue). */
    config_errors_t warns = { 0 };
    config_warnings(cfg, &warns);
    if (cli.check) {
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
    router_source_t src = { .path = cli.path, .overrides = cli.overrides, .n_overrides = cli.n_overrides };
    return router_run(cfg, &src);
}
