/* The daemons' shared command line (config_cli.h). */
#include "config_cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "omni/log.h"

int config_cli_parse(const config_cli_spec_t *spec, int argc, char **argv, config_cli_t *cli)
{
    static const struct option longopts[] = {
        { "config", required_argument, 0, 'c' },      { "check-config", required_argument, 0, 't' },
        { "config-reference", no_argument, 0, 'R' }, { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    *cli = (config_cli_t){ .path = spec->default_path };
    int opt;
    optind = 0; /* glibc: start afresh, whatever was parsed before (the tests parse several times) */
    while ((opt = getopt_long(argc, argv, spec->overrides ? "c:t:D:h" : "c:t:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': cli->path = optarg; break;
        case 't': cli->path = optarg, cli->check = true; break;
        case 'D':
            if (cli->n_overrides == CONFIG_CLI_MAX_OVERRIDES) {
                fprintf(stderr, "%s: more than %d -D overrides\n", spec->prog, CONFIG_CLI_MAX_OVERRIDES);
                return 2;
            }
            if (optarg[0] == '=' || strchr(optarg, '=') == NULL) { /* a bad argument: 2, as omnictl's -D */
                fprintf(stderr, "%s: command line:%zu:1: expected -D KEY=VALUE, got \"%s\"\n", spec->prog,
                        cli->n_overrides + 1, optarg);
                return 2;
            }
            cli->overrides[cli->n_overrides++] = optarg;
            break;
        case 'R': spec->reference(stdout); return 0;
        case 'h': spec->usage(stdout); return 0;
        default: spec->usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "%s: unexpected argument: %s\n", spec->prog, argv[optind]);
        spec->usage(stderr);
        return 2;
    }
    return -1;
}

/* Whether stderr is the journal stream systemd gave the service (JOURNAL_STREAM names its device and inode),
 * as libomni's log decides it (docs/logging.md). */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
           (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int config_cli_refused(const char *prog, config_errors_t *errs)
{
    if (stderr_is_journal()) {
        /* A service that did not start: each error an entry at priority err, the outcome at crit (fatal), so
         * journalctl -p err shows them; a plain line on the journal stream would be filed at info. */
        for (size_t i = 0; i < errs->n; i++)
            omni_log(OMNI_LOG_ERROR, "%s", errs->lines[i]);
        omni_log(OMNI_LOG_FATAL, "%zu configuration error%s; not started", errs->n, errs->n == 1 ? "" : "s");
    } else {
        for (size_t i = 0; i < errs->n; i++)
            fprintf(stderr, "%s\n", errs->lines[i]);
        fprintf(stderr, "%s: %zu configuration error%s; not started\n", prog, errs->n, errs->n == 1 ? "" : "s");
    }
    config_errors_free(errs);
    return 1;
}
