/* Rate limits and backoff (tw_pace.h). */
#include "tw_pace.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A header holding a non-negative decimal integer; -1 otherwise (missing, junk, overflow). */
static long long header_num(const char *v)
{
    if (v == NULL)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\r')
        end++;
    if (end == v || *end != '\0' || errno != 0 || n < 0 || v[0] == '-' || v[0] == '+')
        return -1;
    return n;
}

static int64_t until(long long reset_s, int64_t now_wall_ms)
{
    if (reset_s > INT64_MAX / 1000)
        return TW_RESET_MAX_MS;
    int64_t ms = (int64_t)reset_s * 1000 - now_wall_ms;
    if (ms < 0)
        return 0;
    return ms > TW_RESET_MAX_MS ? TW_RESET_MAX_MS : ms;
}

int64_t tw_ratelimit_wait(int status, const char *remaining, const char *reset, const char *retry_after,
                          int64_t now_wall_ms)
{
    long long rs = header_num(reset);
    if (status == 429) {
        int64_t ms;
        long long ra = header_num(retry_after);
        if (rs >= 0)
            ms = until(rs, now_wall_ms);
        else if (ra >= 0)
            ms = ra > TW_RESET_MAX_MS / 1000 ? TW_RESET_MAX_MS : (int64_t)ra * 1000;
        else
            ms = TW_429_DEFAULT_MS;
        return ms < 1000 ? 1000 : ms;
    }
    if (header_num(remaining) == 0 && rs >= 0)
        return until(rs, now_wall_ms);
    return -1;
}

int64_t tw_backoff_ms(int failures, int base_ms, int max_ms, uint32_t rnd)
{
    int64_t b = base_ms > 0 ? base_ms : 1;
    for (int i = 1; i < failures && b < max_ms; i++)
        b *= 2;
    if (b > max_ms)
        b = max_ms;
    int64_t half = b / 2;
    return b - half + (int64_t)(rnd % (uint64_t)(half + 1));
}
