/* omni-api's metrics (docs/api.md "Metrics"): requests by route and status, open event streams, request
 * latency, counted from the connections' threads under one lock, and served on api.metrics_listen by the main
 * thread (libomni's metrics server, which also answers /healthz and /readyz there). */
#ifndef OMNI_API_METRICS_H
#define OMNI_API_METRICS_H

#include <stddef.h>
#include "request.h"

/* One answered request: its route (ROUTE_NONE: no such path), HTTP status, and seconds from its headers to
 * the answer queued (for an event stream: to the stream started). Any thread. */
void api_metrics_request(api_route_t route, unsigned status, double seconds);
/* An event stream opened (+1) or ended (-1). Any thread. */
void api_metrics_stream(int delta);

typedef struct api_metrics_server api_metrics_server_t;
/* Listens on listen (numeric HOST:PORT). Returns NULL with why in err. */
api_metrics_server_t *api_metrics_server_new(const char *listen, char *err, size_t errsz);
/* The fd to poll for reading, and what to call when it is readable (and once a second). */
int api_metrics_server_fd(const api_metrics_server_t *s);
void api_metrics_server_run(api_metrics_server_t *s);
/* Closes, frees, sets *s = NULL; NULL is fine. */
void api_metrics_server_destroy(api_metrics_server_t **s);

#endif
