/* The running router (after Redis's server.c): owns the loop, the store, the embedded Redis, ingest,
 * and the cron tick that does every piece of periodic work. */
#ifndef OMNI_DAEMON_SERVER_H
#define OMNI_DAEMON_SERVER_H

#include "config.h"

/* Runs the router with cfg (borrowed) until SIGTERM or SIGINT. Returns the process exit status. */
int router_run(const router_config_t *cfg);

#endif
