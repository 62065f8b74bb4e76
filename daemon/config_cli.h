/* The command line every configured daemon shares (omnirouted, omni-api, omni-webhooks): --config FILE,
 * --check-config FILE, -D KEY=VALUE overrides (for the daemons that take them), --config-reference, --help;
 * and what each says when its configuration is refused. Declared once so the three stay alike. */
#ifndef OMNI_CONFIG_CLI_H
#define OMNI_CONFIG_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

#define CONFIG_CLI_MAX_OVERRIDES 64

typedef struct config_cli_spec {
    const char *prog;         /* in messages: "omni-api" */
    const char *default_path; /* the configuration file without --config */
    bool overrides;           /* takes -D KEY=VALUE */
    void (*usage)(FILE *out);
    void (*reference)(FILE *out); /* --config-reference */
} config_cli_spec_t;

typedef struct config_cli {
    const char *path; /* the configuration file (borrowed from argv or the spec) */
    bool check;       /* --check-config: check it, report, exit */
    const char *overrides[CONFIG_CLI_MAX_OVERRIDES]; /* -D's KEY=VALUE, in order, borrowed from argv */
    size_t n_overrides;
} config_cli_t;

/* Reads argv into *cli (its strings stay argv's). Returns -1 when the daemon goes on, else the status to exit
 * with: 0 after --help or --config-reference (printed on stdout), 2 after a usage error (said on stderr). */
int config_cli_parse(const config_cli_spec_t *spec, int argc, char **argv, config_cli_t *cli);

/* A configuration that did not load: prints each error, then "PROG: N configuration errors; not started", on
 * stderr, and frees errs' lines. Returns 1, the status to exit with. */
int config_cli_refused(const char *prog, config_errors_t *errs);

#endif
