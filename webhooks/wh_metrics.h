/* omni-webhooks' GET /metrics, /healthz and /readyz (webhooks.metrics_listen; docs/webhooks.md "Metrics"): the
 * delivery counters of deliver.c as they stand, served from the program's loop (libomni's metrics server). */
#ifndef OMNI_WEBHOOKS_METRICS_H
#define OMNI_WEBHOOKS_METRICS_H

#include <stddef.h>
#include "deliver.h"
#include "loop.h"
#include "store.h"

typedef struct wh_metrics wh_metrics_t;

/* Listens on listen. loop, store and deliver are borrowed and must outlive it. Returns NULL with why in err. */
wh_metrics_t *wh_metrics_new(loop_t *loop, const char *listen, store_t *store, const deliver_t *deliver, char *err,
                             size_t errsz);
/* From the tick: connections' timeouts. */
void wh_metrics_tick(wh_metrics_t *m);
/* Stops listening, frees, sets *m = NULL; NULL is fine. */
void wh_metrics_destroy(wh_metrics_t **m);

#endif
