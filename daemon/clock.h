/* The router's one clock. Everything that decides by time (SLA deadlines, timeouts, calendars, aging)
 * reads clock_now(), so tests can move time instead of waiting for it (`omnictl simulate` passes its
 * simulated time to plan.c and the scripts explicitly).
 * Normally it is the wall clock. With OMNIROUTER_TEST_CLOCK=1 in the environment, the router adds an
 * offset it reads from Redis (<prefix>clock:offset, ms) on every tick; `omnictl clock advance 30m` moves
 * every router sharing that Redis at once; the router says it is ready only once it has read the offset.
 * Never set it in production. */
#ifndef OMNI_DAEMON_CLOCK_H
#define OMNI_DAEMON_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

int64_t clock_now(void);
/* Sets the offset added to the wall clock (test clock only). */
void clock_set_offset(int64_t offset_ms);
bool clock_test_mode(void);

#endif
