/* The running router (after Redis's server.c): owns the loop, the store, the embedded Redis, ingest,
 * and the cron tick that does every piece of periodic work. */
#ifndef OMNI_DAEMON_SERVER_H
#define OMNI_DAEMON_SERVER_H

#include "config.h"

/* Where the configuration was read from, so SIGHUP can read it again. Borrowed for the run. */
typedef struct router_source {
    const char *path;
    const char *const *overrides;
    size_t n_overrides;
} router_source_t;

/* Runs the router until SIGTERM or SIGINT; returns the process exit status. cfg is the router's from here: freed before it returns, with every
 * configuration a reload replaced (kept until then: replies in flight may still point into them). */
int router_run(router_config_t *cfg, const router_source_t *src);

#endif
