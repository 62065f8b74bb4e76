/* See clock.h. */
#include "clock.h"

#include <stdlib.h>
#include <string.h>

#include "omni/util.h"

static int64_t offset_ms, fixed_ms = -1;

int64_t clock_now(void) { return fixed_ms >= 0 ? fixed_ms : omni_wall_ms() + offset_ms; }
void clock_set_offset(int64_t offset) { offset_ms = offset; }
void clock_set_fixed(int64_t t) { fixed_ms = t; }

bool clock_test_mode(void)
{
    const char *v = getenv("OMNIROUTER_TEST_CLOCK");
    return v && strcmp(v, "1") == 0;
}
