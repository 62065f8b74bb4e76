/* See retry.h. */
#include "retry.h"

#include <ctype.h>
#include <stdlib.h>
#include <curl/curl.h>

int64_t wh_backoff_ms(int failed, int base_ms, int max_ms, double unit)
{
    int64_t step = base_ms;
    for (int i = 1; i < failed && step < max_ms; i++)
        step *= 2;
    if (step > max_ms)
        step = max_ms;
    if (unit < 0 || unit >= 1)
        unit = 0;
    return step / 2 + (int64_t)((double)(step - step / 2) * unit);
}

int64_t wh_retry_after_ms(const char *value, int64_t now_wall_ms)
{
    while (*value == ' ' || *value == '\t')
        value++;
    int64_t ms = -1;
    if (isdigit((unsigned char)*value)) {
        char *end;
        long long s = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end)
            return -1;
        ms = s > WH_RETRY_AFTER_MAX_MS / 1000 ? WH_RETRY_AFTER_MAX_MS : s * 1000;
    } else {
        time_t t = curl_getdate(value, NULL); /* RFC 7231 IMF-fixdate and the obsolete forms */
        if (t < 0)
            return -1;
        ms = (int64_t)t * 1000 - now_wall_ms;
        if (ms < 0)
            ms = 0;
    }
    return ms > WH_RETRY_AFTER_MAX_MS ? WH_RETRY_AFTER_MAX_MS : ms;
}

int64_t wh_retry_delay_ms(int failed, int base_ms, int max_ms, double unit, int64_t retry_after_ms)
{
    int64_t backoff = wh_backoff_ms(failed, base_ms, max_ms, unit);
    return retry_after_ms > backoff ? retry_after_ms : backoff;
}
