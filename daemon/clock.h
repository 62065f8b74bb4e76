/* The router's one clock. Everything that decides by time (SLA deadlines, timeouts, calendars, aging)
 * reads clock_now(), so tests and `omnictl simulate` can move time instead of waiting for it.
 * Normally it is the wall clock. With OMNIROUTER_TEST_CLOCK=1 in the environment, the router adds an
 * offset it reads from Redis (<prefix>clock:offset, ms) on every tick; `omnictl clock advance 30m` moves
 * every router sharing that Redis at once. Never set it in production. */
#ifndef OMNI_DAEMON_CLOCK_H
#define OMNI_DAEMON_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

int64_t clock_now(void);
/* Sets the offset added to the wall clock (test clock only). */
void clock_set_offset(int64_t offset_ms);
/* Fixes the clock at t (simulate); t < 0 returns to the wall clock plus offset. */
void clock_set_fixed(int64_t t);
bool clock_test_mode(void);

#endif
