/* See deliver.h. One attempt: claimed (webhook_claim.lua leases it), POSTed with its signatures made at
 * send time (webhook-timestamp is now; webhook-id is the same on every attempt), then its outcome and the
 * next try's time (retry.c) recorded by webhook_result.lua. */
#include "deliver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "omni/log.h"
#include "omni/util.h"
#include "retry.h"
#include "scripts.h"
#include "sign.h"

#define TAKE_BATCH 100        /* inbox entries one webhook_take call turns into deliveries */
#define LEASE_MARGIN_MS 5000  /* a lease is the longest attempt plus this (docs/delivery.md) */
/* Every omni-webhooks reads the group as this one consumer: webhook_take.lua acknowledges what it reads in
 * the same step, so nothing is ever pending for a consumer, and per-process names would only pile up. */
#define CONSUMER "omni-webhooks"

typedef struct attempt {
    deliver_t *d;
    const wh_partner_t *p;
    char *id, *conversation;
    int attempts; /* before this one */
    int64_t lease; /* its score in webhooks:due when claimed: webhook_result.lua tells a lost lease by it */
    struct timespec started;
    struct attempt *prev, *next;
} attempt_t;

struct deliver {
    const wh_config_t *cfg;
    store_t *store;
    http_t *http;
    bool *take_busy;   /* per partner: a webhook_take call is in flight */
    bool claim_busy;
    int64_t claim_lease; /* the lease of the claim in flight (now + lease_ms), the one of its deliveries */
    bool stopping;
    size_t inflight;   /* attempts claimed and not yet recorded */
    int lease_ms;
    attempt_t *attempts;
    wh_stats_t stats;
};

const char *const wh_fail_names[WH_FAIL_KINDS] = { "network", "gone", "4xx", "5xx", "other" };

static void attempt_free(deliver_t *d, attempt_t *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        d->attempts = a->next;
    if (a->next)
        a->next->prev = a->prev;
    d->inflight--;
    free(a->id);
    free(a->conversation);
    free(a);
}

deliver_t *deliver_new(const wh_config_t *cfg, store_t *store, http_t *http)
{
    deliver_t *d = omni_calloc(1, sizeof *d);
    d->cfg = cfg, d->store = store, d->http = http;
    d->take_busy = omni_calloc(cfg->n_partners, sizeof *d->take_busy);
    int longest = 0;
    for (size_t i = 0; i < cfg->n_partners; i++)
        if (cfg->partners[i].timeout_ms > longest)
            longest = cfg->partners[i].timeout_ms;
    d->lease_ms = longest + LEASE_MARGIN_MS;
    return d;
}

void deliver_destroy(deliver_t **dp)
{
    if (!dp || !*dp)
        return;
    deliver_t *d = *dp;
    while (d->attempts)
        attempt_free(d, d->attempts);
    free(d->take_busy);
    free(d);
    *dp = NULL;
}

void deliver_stop(deliver_t *d) { d->stopping = true; }
size_t deliver_inflight(const deliver_t *d) { return d->inflight; }
const wh_stats_t *deliver_stats(const deliver_t *d) { return &d->stats; }

static void claim(deliver_t *d);
static void take(deliver_t *d, size_t i);

/* ---- the outcome ---- */

static void on_result(store_t *store, redisReply *reply, void *data)
{
    (void)store;
    attempt_t *a = data;
    deliver_t *d = a->d;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        /* not recorded: the lease runs out and the delivery is sent again (the same webhook-id) */
        omni_warn("webhook %s: the outcome was not recorded (%s); it is sent again when its lease ends", a->id,
                  reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "redis unavailable");
    } else {
        const char *state = reply->element[WEBHOOK_RESULT_REPLY_STATE]->str;
        long long n = reply->element[WEBHOOK_RESULT_REPLY_ATTEMPTS]->integer;
        if (!strcmp(state, "dead")) {
            d->stats.dead++;
            omni_warn("webhook %s to %s (conversation %s): dead after %lld attempt%s%s", a->id, a->p->team,
                      a->conversation, n, n == 1 ? "" : "s",
                      reply->element[WEBHOOK_RESULT_REPLY_REROUTED]->integer ? "; the conversation is re-routed"
                                                                              : "");
        }
    }
    attempt_free(d, a);
    if (!d->stopping)
        claim(d); /* a delivery done may have made the next of its conversation due */
}

static void on_http(const http_result_t *res, void *data)
{
    attempt_t *a = data;
    deliver_t *d = a->d;
    const wh_partner_t *p = a->p;
    int64_t now = omni_wall_ms();
    int failed = a->attempts + 1;
    char why[300] = "";
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    omni_histogram_observe(&d->stats.latency, (double)(end.tv_sec - a->started.tv_sec) +
                                                  (double)(end.tv_nsec - a->started.tv_nsec) / 1e9);
    d->stats.attempts++;
    d->stats.retries += a->attempts > 0;
    if (res->status >= 200 && res->status < 300)
        d->stats.delivered++;
    else
        d->stats.failed[!res->status ? WH_FAIL_NETWORK : res->status == 410 ? WH_FAIL_GONE
                        : res->status >= 400 && res->status < 500 ? WH_FAIL_4XX
                        : res->status >= 500 && res->status < 600 ? WH_FAIL_5XX : WH_FAIL_OTHER]++;
    if (res->status >= 200 && res->status < 300) {
        omni_info("webhook %s to %s: delivered (HTTP %ld, attempt %d)", a->id, p->team, res->status, failed);
    } else if (res->status == 410) {
        snprintf(why, sizeof why, "HTTP 410 Gone");
        omni_warn("webhook endpoint of %s (%s) answered 410 Gone: disabled; its deliveries are dead-lettered "
                  "until it is enabled again (omnictl webhooks enable %s)", p->team, p->url, p->team);
    } else {
        if (res->status)
            snprintf(why, sizeof why, "HTTP %ld", res->status);
        else
            snprintf(why, sizeof why, "%s", res->error);
    }
    int64_t retry_after = res->retry_after[0] ? wh_retry_after_ms(res->retry_after, now) : -1;
    int64_t delay = wh_retry_delay_ms(failed, p->backoff_base_ms, p->backoff_max_ms,
                                      (double)random() / ((double)RAND_MAX + 1.0), retry_after);
    if (why[0] && res->status != 410 && failed < p->max_attempts)
        omni_info("webhook %s to %s: attempt %d of %d failed (%s); next in %lld ms%s", a->id, p->team, failed,
                  p->max_attempts, why, (long long)delay, retry_after >= 0 ? " (Retry-After)" : "");
    else if (why[0] && res->status != 410)
        omni_info("webhook %s to %s: attempt %d of %d failed (%s): the last", a->id, p->team, failed,
                  p->max_attempts, why);
    char now_s[24], status_s[24], next_s[24], max_s[24], keep_s[24];
    snprintf(now_s, sizeof now_s, "%lld", (long long)now);
    snprintf(status_s, sizeof status_s, "%ld", res->status);
    snprintf(next_s, sizeof next_s, "%lld", (long long)(now + delay));
    snprintf(max_s, sizeof max_s, "%d", p->max_attempts);
    snprintf(keep_s, sizeof keep_s, "%d", d->cfg->webhooks.keep_delivered_ms);
    char lease_s[24];
    snprintf(lease_s, sizeof lease_s, "%lld", (long long)a->lease);
    const char *argv[WEBHOOK_RESULT_NARGS];
    argv[WEBHOOK_RESULT_ARG_PREFIX] = d->cfg->redis.key_prefix;
    argv[WEBHOOK_RESULT_ARG_ID] = a->id;
    argv[WEBHOOK_RESULT_ARG_NOW] = now_s;
    argv[WEBHOOK_RESULT_ARG_STATUS] = status_s;
    argv[WEBHOOK_RESULT_ARG_ERROR] = why;
    argv[WEBHOOK_RESULT_ARG_NEXT_AT] = next_s;
    argv[WEBHOOK_RESULT_ARG_MAX_ATTEMPTS] = max_s;
    argv[WEBHOOK_RESULT_ARG_KEEP_MS] = keep_s;
    argv[WEBHOOK_RESULT_ARG_LEASE] = lease_s;
    if (store_script(d->store, LUA_WEBHOOK_RESULT, WEBHOOK_RESULT_NARGS, argv, NULL, on_result, a) != 0) {
        omni_warn("webhook %s: redis unavailable, the outcome is not recorded; it is sent again when its lease "
                  "ends", a->id);
        attempt_free(d, a);
    }
}

/* ---- sending ---- */

static void send_one(deliver_t *d, const wh_partner_t *p, const char *id, const char *conversation,
                     const char *body, size_t len, int attempts, int64_t lease)
{
    attempt_t *a = omni_calloc(1, sizeof *a);
    a->d = d, a->p = p, a->attempts = attempts, a->lease = lease;
    a->id = omni_strdup(id);
    a->conversation = omni_strdup(conversation);
    a->next = d->attempts;
    if (d->attempts)
        d->attempts->prev = a;
    d->attempts = a;
    d->inflight++;
    clock_gettime(CLOCK_MONOTONIC, &a->started);
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)(omni_wall_ms() / 1000));
    const unsigned char *keys[WH_SECRETS_MAX];
    for (size_t i = 0; i < p->n_secrets; i++)
        keys[i] = p->key[i];
    char sigs[WH_SECRETS_MAX * WH_SIGNATURE_LEN];
    wh_signature_header(keys, p->key_len, p->n_secrets, id, ts, body, len, sigs);
    char *h_id = omni_asprintf("webhook-id: %s", id);
    char *h_ts = omni_asprintf("webhook-timestamp: %s", ts);
    char *h_sig = omni_asprintf("webhook-signature: %s", sigs);
    const char *headers[] = { "Content-Type: application/json", h_id, h_ts, h_sig };
    int rc = http_post(d->http, p->url, headers, 4, body, len, p->ca_path, p->connect_timeout_ms, p->timeout_ms,
                       on_http, a);
    free(h_id), free(h_ts), free(h_sig);
    if (rc != 0) {
        omni_error("webhook %s: cannot start the request to %s; it is sent again when its lease ends", id, p->url);
        attempt_free(d, a);
        return;
    }
    omni_debug("webhook %s to %s: attempt %d", id, p->team, attempts + 1);
}

static void on_claim(store_t *store, redisReply *reply, void *data)
{
    (void)store;
    deliver_t *d = data;
    d->claim_busy = false;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            omni_warn("webhook_claim: %s", reply->str);
        return;
    }
    for (size_t i = 0; i + WEBHOOK_CLAIM_REPLY_FIELDS <= reply->elements; i += WEBHOOK_CLAIM_REPLY_FIELDS) {
        redisReply **f = reply->element + i;
        const wh_partner_t *p = wh_config_partner(d->cfg, f[WEBHOOK_CLAIM_REPLY_TEAM]->str);
        if (!p) /* the script takes only the teams it is given: a bug */
            omni_panic("webhook_claim returned %s of team %s, not configured", f[0]->str,
                       f[WEBHOOK_CLAIM_REPLY_TEAM]->str);
        send_one(d, p, f[WEBHOOK_CLAIM_REPLY_ID]->str, f[WEBHOOK_CLAIM_REPLY_CONVERSATION]->str,
                 f[WEBHOOK_CLAIM_REPLY_BODY]->str, f[WEBHOOK_CLAIM_REPLY_BODY]->len,
                 (int)f[WEBHOOK_CLAIM_REPLY_ATTEMPTS]->integer, d->claim_lease);
    }
}

/* Leases as many due deliveries as the concurrency limit leaves room for. */
static void claim(deliver_t *d)
{
    int room = d->cfg->webhooks.concurrency - (int)d->inflight;
    if (d->claim_busy || d->stopping || room <= 0 || !store_connected(d->store))
        return;
    char now_s[24], limit_s[24], lease_s[24];
    int64_t now = omni_wall_ms();
    snprintf(now_s, sizeof now_s, "%lld", (long long)now);
    snprintf(limit_s, sizeof limit_s, "%d", room);
    snprintf(lease_s, sizeof lease_s, "%d", d->lease_ms);
    size_t n = d->cfg->n_partners;
    const char **argv = omni_calloc(WEBHOOK_CLAIM_NARGS + n, sizeof *argv);
    argv[WEBHOOK_CLAIM_ARG_PREFIX] = d->cfg->redis.key_prefix;
    argv[WEBHOOK_CLAIM_ARG_NOW] = now_s;
    argv[WEBHOOK_CLAIM_ARG_LIMIT] = limit_s;
    argv[WEBHOOK_CLAIM_ARG_LEASE_MS] = lease_s;
    for (size_t i = 0; i < n; i++)
        argv[WEBHOOK_CLAIM_NARGS + i] = d->cfg->partners[i].team;
    if (store_script(d->store, LUA_WEBHOOK_CLAIM, (int)(WEBHOOK_CLAIM_NARGS + n), argv, NULL, on_claim, d) == 0) {
        d->claim_busy = true;
        d->claim_lease = now + d->lease_ms; /* the score webhook_claim.lua gives what it leases */
    }
    free(argv);
}

/* ---- intake ---- */

typedef struct take {
    deliver_t *d;
    size_t partner;
} take_t;

static void on_take(store_t *store, redisReply *reply, void *data)
{
    (void)store;
    take_t *t = data;
    deliver_t *d = t->d;
    size_t i = t->partner;
    d->take_busy[i] = false;
    const char *team = d->cfg->partners[i].team;
    free(t);
    if (!reply)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        omni_warn("webhook_take %s: %s", team, reply->str);
        return;
    }
    if (reply->integer > 0) {
        omni_debug("inbox of %s: %lld new deliveries", team, reply->integer);
        if (reply->integer == TAKE_BATCH && !d->stopping && store_connected(d->store))
            take(d, i); /* more may wait: a backlog is taken at Redis's pace, not one batch per poll */
        claim(d);
    }
}

static void take(deliver_t *d, size_t i)
{
    char now_s[24], text[40], limit_s[24];
    int64_t now = omni_wall_ms();
    snprintf(now_s, sizeof now_s, "%lld", (long long)now);
    omni_rfc3339(now, text, sizeof text);
    snprintf(limit_s, sizeof limit_s, "%d", TAKE_BATCH);
    const char *argv[WEBHOOK_TAKE_NARGS];
    argv[WEBHOOK_TAKE_ARG_PREFIX] = d->cfg->redis.key_prefix;
    argv[WEBHOOK_TAKE_ARG_TEAM] = d->cfg->partners[i].team;
    argv[WEBHOOK_TAKE_ARG_NOW] = now_s;
    argv[WEBHOOK_TAKE_ARG_NOW_TEXT] = text;
    argv[WEBHOOK_TAKE_ARG_LIMIT] = limit_s;
    argv[WEBHOOK_TAKE_ARG_CONSUMER] = CONSUMER;
    take_t *t = omni_calloc(1, sizeof *t);
    t->d = d, t->partner = i;
    if (store_script(d->store, LUA_WEBHOOK_TAKE, WEBHOOK_TAKE_NARGS, argv, NULL, on_take, t) == 0)
        d->take_busy[i] = true;
    else
        free(t);
}

void deliver_poll(deliver_t *d)
{
    if (d->stopping || !store_connected(d->store))
        return;
    for (size_t i = 0; i < d->cfg->n_partners; i++)
        if (!d->take_busy[i])
            take(d, i);
    claim(d);
}
