/* See clock.h. */
#include "clock.h"

#include <stdlib.h>
#include <string.h>

#include "omni/util.h"

static int64_t offset_ms;

int64_t clock_now(void) { return omni_wall_ms() + offset_ms; }
void clock_set_offset(int64_t offset) { offset_ms = offset; }

bool clock_test_mode(void)
{
    const char *v = getenv("OMNIROUTER_TEST_CLOCK");
    return v && strcmp(v, "1") == 0;
}
