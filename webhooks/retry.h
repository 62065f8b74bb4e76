/* When a failed delivery is tried again: exponential backoff with jitter, or the partner's Retry-After. */
#ifndef OMNI_WEBHOOKS_RETRY_H
#define OMNI_WEBHOOKS_RETRY_H

#include <stdint.h>

#define WH_RETRY_AFTER_MAX_MS 3600000 /* a Retry-After asking for more than 1 h gets 1 h */

/* The delay after the failed-th failed attempt (1 for the first): base * 2^(failed-1), at most max, then
 * "equal jitter": a uniformly random point in its upper half (unit in [0, 1)), so senders that failed
 * together do not come back together, and the delay never falls below half its step. */
int64_t wh_backoff_ms(int failed, int base_ms, int max_ms, double unit);

/* A Retry-After value (delta-seconds, or an HTTP-date) as milliseconds from now_wall_ms, capped at
 * WH_RETRY_AFTER_MAX_MS; -1 when it is neither. value is borrowed. */
int64_t wh_retry_after_ms(const char *value, int64_t now_wall_ms);

/* The delay to use: Retry-After when given and longer than the backoff, else the backoff. */
int64_t wh_retry_delay_ms(int failed, int base_ms, int max_ms, double unit, int64_t retry_after_ms);

#endif
