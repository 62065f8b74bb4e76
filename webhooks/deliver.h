/* The deliveries' life, driven from the loop: intake (each partner's inbox into deliveries,
 * webhook_take.lua), claiming due deliveries under a lease (webhook_claim.lua), sending each signed
 * (http.c, sign.c), and recording the outcome (webhook_result.lua). All state is in Redis: a killed
 * omni-webhooks loses nothing (a leased delivery comes due again when the lease runs out) and several can
 * run on one Redis. Redis commands are asynchronous (store.c) and HTTP is libcurl's multi interface, both on
 * the one loop, so a slow Redis never holds up a send and a slow partner never holds up Redis. */
#ifndef OMNI_WEBHOOKS_DELIVER_H
#define OMNI_WEBHOOKS_DELIVER_H

#include <stddef.h>
#include <stdint.h>
#include "http.h"
#include "omni/metrics.h"
#include "store.h"
#include "wh_config.h"

typedef struct deliver deliver_t;

/* Why an attempt failed, for /metrics: no HTTP answer (connection, TLS, timeout), 410 Gone, 4xx, 5xx, other. */
enum { WH_FAIL_NETWORK, WH_FAIL_GONE, WH_FAIL_4XX, WH_FAIL_5XX, WH_FAIL_OTHER, WH_FAIL_KINDS };
extern const char *const wh_fail_names[WH_FAIL_KINDS];

/* This process's counters since it started (docs/webhooks.md "Metrics"). */
typedef struct wh_stats {
    uint64_t attempts;              /* HTTP attempts answered or failed */
    uint64_t delivered;             /* answered 2xx */
    uint64_t failed[WH_FAIL_KINDS]; /* by why */
    uint64_t retries;               /* attempts that were not a delivery's first */
    uint64_t dead;                  /* deliveries dead-lettered (their last attempt failed, or 410) */
    omni_histogram_t latency;       /* one attempt, from the request started to its answer (seconds) */
} wh_stats_t;

/* cfg, store and http are borrowed and must outlive it. */
deliver_t *deliver_new(const wh_config_t *cfg, store_t *store, http_t *http);
/* Frees the attempts still held (after http_destroy and store_destroy: their callbacks are done), sets
 * *d = NULL. */
void deliver_destroy(deliver_t **d);

/* One turn of intake and claiming (the loop's tick calls it every webhooks.poll). */
void deliver_poll(deliver_t *d);
/* No more intake or claims (shutdown); what is in flight completes. */
void deliver_stop(deliver_t *d);
/* Attempts started and not yet recorded in Redis. */
size_t deliver_inflight(const deliver_t *d);
/* The counters (borrowed, valid as long as d). */
const wh_stats_t *deliver_stats(const deliver_t *d);

#endif
