/* When a feed may call the API again: X's rate-limit headers, and backoff with jitter after failures.
 * Pure functions of their arguments (the clock and the random draw are passed in), so tests pin them.
 *
 * X answers every v2 call with x-rate-limit-limit, x-rate-limit-remaining (calls left in the 15-minute
 * window of that endpoint) and x-rate-limit-reset (when the window restarts, in epoch seconds). */
#ifndef TW_PACE_H
#define TW_PACE_H

#include <stdint.h>

#define TW_RESET_MAX_MS (16 * 60 * 1000) /* a reset further away than the 15-minute window is clock skew: cap */
#define TW_429_DEFAULT_MS 60000          /* a 429 that names neither reset nor Retry-After waits this long */

/* The wait (ms) the rate-limit headers impose after a response with this status: a 429 waits until
 * x-rate-limit-reset (else Retry-After seconds, else TW_429_DEFAULT_MS), at least 1 s; any other answer
 * with x-rate-limit-remaining "0" waits until the reset. Returns -1 when nothing is imposed.
 * remaining, reset and retry_after are the header values or NULL; now_wall_ms is the wall clock. */
int64_t tw_ratelimit_wait(int status, const char *remaining, const char *reset, const char *retry_after,
                          int64_t now_wall_ms);

/* The pause after the failures-th failure in a row (failures >= 1): base_ms doubled each time up to max_ms,
 * then a uniform draw from its upper half ("equal jitter"), so connectors that failed together do not
 * come back together. rnd is a random 32-bit number. */
int64_t tw_backoff_ms(int failures, int base_ms, int max_ms, uint32_t rnd);

#endif
