/* Numbers with units (omni/units.h), shared by the router's config and the connectors'. */
#include "omni/units.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static long long sat_mul(long long v, long long m)
{
    if (v > LLONG_MAX / m)
        return LLONG_MAX;
    if (v < LLONG_MIN / m)
        return LLONG_MIN;
    return v * m;
}

/* The multiplier a unit stands for in kind, 0 when it means nothing there. Durations are case-sensitive:
 * "m" is minutes and "M" nothing, where a size's "M" is as good as its "m". */
static long long unit_mult(omni_num_kind_t kind, const char *sfx)
{
    static const struct { const char *s; long long m; } sizes[] = {
        { "b", 1 }, { "k", 1LL << 10 }, { "kb", 1LL << 10 }, { "kib", 1LL << 10 }, { "m", 1LL << 20 },
        { "mb", 1LL << 20 }, { "mib", 1LL << 20 }, { "g", 1LL << 30 }, { "gb", 1LL << 30 }, { "gib", 1LL << 30 },
    }, durations[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 } };
    if (kind == OMNI_NUM_SIZE)
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
            if (strcasecmp(sfx, sizes[i].s) == 0)
                return sizes[i].m;
    if (kind == OMNI_NUM_DURATION)
        for (size_t i = 0; i < sizeof durations / sizeof *durations; i++)
            if (strcmp(sfx, durations[i].s) == 0)
                return durations[i].m;
    return 0;
}

int omni_number_parse(const char *text, omni_num_kind_t kind, long long unit, long long *out)
{
    const char *p = text;
    if (*p == '+' || *p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return OMNI_NUM_BAD;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10); /* out of range saturates */
    if (*end != '\0') {
        long long mult = unit_mult(kind, end);
        if (mult == 0)
            return OMNI_NUM_BAD;
        v = sat_mul(v, mult);
        if (unit > 1 && v % unit != 0)
            return OMNI_NUM_FRACTION;
        if (unit > 1)
            v /= unit;
    }
    *out = v;
    return OMNI_NUM_OK;
}

const char *omni_number_wanted(omni_num_kind_t kind, long long unit)
{
    switch (kind) {
    case OMNI_NUM_DURATION:
        return unit == 1000 ? "a duration in seconds (60, 60s, 1m)" : "a duration in milliseconds (500, 500ms, 5s)";
    case OMNI_NUM_SIZE:
        return "a size in bytes (262144, 256k, 1m)";
    default:
        return "an integer";
    }
}
