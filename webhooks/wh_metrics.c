/* See wh_metrics.h. */
#include "wh_metrics.h"

#include <stdio.h>
#include <stdlib.h>

#include "omni/metrics.h"
#include "omni/util.h"

struct wh_metrics {
    loop_t *loop;
    store_t *store;
    const deliver_t *deliver;
    omni_metrics_server_t *server;
};

static void render(omni_metrics_t *out, void *data)
{
    const wh_metrics_t *m = data;
    const wh_stats_t *st = deliver_stats(m->deliver);
    omni_metrics_family(out, "omnirouter_webhook_attempts_total", "counter", "HTTP attempts made (answered or failed).");
    omni_metrics_sample(out, "omnirouter_webhook_attempts_total", (double)st->attempts, NULL);
    omni_metrics_family(out, "omnirouter_webhook_deliveries_total", "counter", "Deliveries a partner took (2xx).");
    omni_metrics_sample(out, "omnirouter_webhook_deliveries_total", (double)st->delivered, NULL);
    omni_metrics_family(out, "omnirouter_webhook_failures_total", "counter",
                        "Attempts that failed, by reason: network (no answer), gone (410), 4xx, 5xx, other.");
    for (int k = 0; k < WH_FAIL_KINDS; k++)
        omni_metrics_sample(out, "omnirouter_webhook_failures_total", (double)st->failed[k], "reason", wh_fail_names[k],
                            NULL);
    omni_metrics_family(out, "omnirouter_webhook_retries_total", "counter", "Attempts that were not a delivery's first.");
    omni_metrics_sample(out, "omnirouter_webhook_retries_total", (double)st->retries, NULL);
    omni_metrics_family(out, "omnirouter_webhook_dead_letters_total", "counter",
                        "Deliveries dead-lettered (last attempt failed, or the endpoint answered 410).");
    omni_metrics_sample(out, "omnirouter_webhook_dead_letters_total", (double)st->dead, NULL);
    omni_metrics_family(out, "omnirouter_webhook_inflight", "gauge", "Attempts started and not yet recorded in Redis.");
    omni_metrics_sample(out, "omnirouter_webhook_inflight", (double)deliver_inflight(m->deliver), NULL);
    omni_metrics_family(out, "omnirouter_webhook_redis_up", "gauge", "1 while Redis (the primary) is reached.");
    omni_metrics_sample(out, "omnirouter_webhook_redis_up", store_up(m->store) ? 1 : 0, NULL);
    omni_metrics_histogram(out, "omnirouter_webhook_delivery_seconds",
                           "One attempt, from the request started to the partner's answer (or the failure).",
                           &st->latency);
}

static int ready(void *data, char *why, size_t whysz)
{
    const wh_metrics_t *m = data;
    if (store_up(m->store))
        return 1;
    snprintf(why, whysz, "redis unreachable (%s): nothing is claimed or recorded", store_address(m->store));
    return 0;
}

static void on_fd(loop_t *loop, int fd, int events, void *data)
{
    (void)loop, (void)fd, (void)events;
    wh_metrics_t *m = data;
    omni_metrics_server_run(m->server);
}

wh_metrics_t *wh_metrics_new(loop_t *loop, const char *listen, store_t *store, const deliver_t *deliver, char *err,
                             size_t errsz)
{
    wh_metrics_t *m = omni_calloc(1, sizeof *m);
    *m = (wh_metrics_t){ .loop = loop, .store = store, .deliver = deliver };
    m->server = omni_metrics_server_new(listen, render, m, err, errsz);
    if (!m->server) {
        free(m);
        return NULL;
    }
    omni_metrics_server_set_ready(m->server, ready);
    loop_add_fd(loop, omni_metrics_server_fd(m->server), LOOP_READ, on_fd, m);
    return m;
}

void wh_metrics_tick(wh_metrics_t *m) { omni_metrics_server_run(m->server); }

void wh_metrics_destroy(wh_metrics_t **m)
{
    if (!m || !*m)
        return;
    loop_del_fd((*m)->loop, omni_metrics_server_fd((*m)->server));
    omni_metrics_server_destroy(&(*m)->server);
    free(*m);
    *m = NULL;
}
