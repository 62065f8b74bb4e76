/* The router's GET /metrics (router.metrics_listen; docs/operations.md lists every metric): its own counters as
 * they stand, and per-team gauges read from Redis by metrics.lua every METRICS_REFRESH_MS in the cron tick, so
 * a scrape never waits on Redis. */
#ifndef OMNI_DAEMON_METRICS_H
#define OMNI_DAEMON_METRICS_H

#include "config.h"
#include "dispatch.h"
#include "ingest.h"
#include "loop.h"
#include "store.h"

#define METRICS_REFRESH_MS 5000

typedef struct router_metrics router_metrics_t;

/* Listens on cfg->router.metrics_listen (the caller checks it is set). Everything is borrowed and must outlive
 * the metrics. Returns NULL with a sentence in err. */
router_metrics_t *router_metrics_new(loop_t *loop, store_t *store, const router_config_t *cfg, const ingest_t *ingest,
                                     const routing_t *routing, char *err, size_t errsz);
/* From the cron tick: refreshes the Redis gauges when due, serves connections' timeouts. */
void router_metrics_tick(router_metrics_t *m);
/* The port /metrics is served on (the system's choice when router.metrics_listen says port 0). */
int router_metrics_port(const router_metrics_t *m);
/* The router is stopping (SIGTERM): /readyz answers 503 "not ready: stopping: answering BUSY". */
void router_metrics_set_stopping(router_metrics_t *m);
/* A reload: the teams to report are cfg's from now on (borrowed). */
void router_metrics_set_config(router_metrics_t *m, const router_config_t *cfg);
/* Stops listening, frees, sets *m = NULL. Destroy it after the store: a refresh in flight calls back into it. */
void router_metrics_destroy(router_metrics_t **m);

#endif
