/* Redis Sentinel, as a client uses it (https://redis.io/docs/latest/develop/reference/sentinel-clients/): ask
 * the sentinels, one at a time, for the current primary of a master name; listen on one of them for
 * +switch-master; ask again whenever the store finds its primary gone or demoted (ROLE). Everything is
 * asynchronous on the router's loop: a sentinel that does not answer is left for the next one. */
#ifndef OMNI_DAEMON_SENTINEL_H
#define OMNI_DAEMON_SENTINEL_H

#include "loop.h"
#include "redis_address.h"

typedef struct sentinel sentinel_t;

/* The primary is (host, port) now (host numeric, borrowed for the call). */
typedef void sentinel_primary_fn(void *data, const char *host, int port);

/* sentinels: n tcp addresses, resolved (copied). master_name and password (NULL: none; the sentinels'
 * requirepass) are copied. Nothing is sent before sentinel_tick. */
sentinel_t *sentinel_new(loop_t *loop, const redis_address_t *sentinels, size_t n, const char *master_name,
                         const char *password, int timeout_ms, sentinel_primary_fn *fn, void *data);
/* Asks again (the primary failed, or answered ROLE as a replica): the answer comes through fn. */
void sentinel_ask(sentinel_t *s);
/* From the cron tick: (re)connects, times out a silent sentinel and moves to the next. */
void sentinel_tick(sentinel_t *s);
/* "sentinel 127.0.0.1:26379 (master mymaster)" for logs (borrowed). */
const char *sentinel_describe(const sentinel_t *s);
/* Closes every connection, frees, sets *s = NULL. */
void sentinel_destroy(sentinel_t **s);

#endif
