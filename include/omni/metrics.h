/* Prometheus metrics: the text exposition format, and a small HTTP listener serving GET /metrics from a
 * program's own event loop (libmicrohttpd, no thread of its own: the program calls it when its fd is
 * readable, so rendering reads the program's counters without a lock).
 *
 * Names follow Prometheus conventions: omnirouter_ prefix, base units (seconds, bytes), _total for counters.
 * docs/operations.md lists every metric of every program. */
#ifndef OMNI_METRICS_H
#define OMNI_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* ---- writing the exposition text ---- */

typedef struct omni_metrics omni_metrics_t; /* the page being written */

/* Starts a family: "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). Each family once. */
void omni_metrics_family(omni_metrics_t *m, const char *name, const char *type, const char *help);
/* One sample: name{label="value",...} value. Labels are NAME, value pairs ending with NULL; values are
 * escaped as the format says (backslash, quote, newline). */
void omni_metrics_sample(omni_metrics_t *m, const char *name, double value, ...) __attribute__((sentinel));

/* A histogram with fixed upper bounds (seconds), observed from the loop. */
#define OMNI_HISTOGRAM_BUCKETS 12
typedef struct omni_histogram {
    uint64_t counts[OMNI_HISTOGRAM_BUCKETS + 1]; /* the last: above every bound (+Inf) */
    double sum;
    uint64_t n;
} omni_histogram_t;
/* The bounds every histogram here uses: 1 ms .. 10 s. */
extern const double omni_histogram_bounds[OMNI_HISTOGRAM_BUCKETS];
void omni_histogram_observe(omni_histogram_t *h, double seconds);
/* Writes the family and its _bucket/_sum/_count samples (no labels). */
void omni_metrics_histogram(omni_metrics_t *m, const char *name, const char *help, const omni_histogram_t *h);

/* ---- serving it ---- */

typedef struct omni_metrics_server omni_metrics_server_t;
/* Renders the page: called for each GET /metrics; data is the caller's. */
typedef void omni_metrics_render_fn(omni_metrics_t *m, void *data);

/* Listens on listen ("127.0.0.1:9464", "[::1]:9464", ":9464" for every address; numeric hosts only, so
 * starting never waits on DNS). Returns NULL with a sentence in err. data is borrowed until destroy. */
omni_metrics_server_t *omni_metrics_server_new(const char *listen, omni_metrics_render_fn *render, void *data,
                                               char *err, size_t errsz);
/* GET /healthz answers 200 whenever the program's loop serves the listener; GET /readyz answers 200 when ready
 * says so, else 503 with its reason (written into why). Without a ready function /readyz is /healthz. */
typedef int omni_metrics_ready_fn(void *data, char *why, size_t whysz);
void omni_metrics_server_set_ready(omni_metrics_server_t *s, omni_metrics_ready_fn *ready);
/* Whether listen is an address omni_metrics_server_new takes: NULL, or why not (formatted into buf). */
const char *omni_metrics_listen_check(const char *listen, char *buf, size_t bufsz);
/* The port it listens on: the one listen named, or the one the system chose for port 0. */
int omni_metrics_server_port(const omni_metrics_server_t *s);
/* The fd to watch for reading; call omni_metrics_server_run when it is readable and on each tick (timeouts). */
int omni_metrics_server_fd(const omni_metrics_server_t *s);
void omni_metrics_server_run(omni_metrics_server_t *s);
/* Closes the listener and every connection; sets *s = NULL. NULL and *s == NULL are fine. */
void omni_metrics_server_destroy(omni_metrics_server_t **s);

#endif
