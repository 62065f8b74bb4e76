/* See calendar.h. "Open" is a property of local wall time: t is open when its local date is not a holiday
 * and its local minute lies in one of that weekday's spans. So a 00:00-24:00 day holds 23 h of open time
 * on a spring-forward day and 25 h on a fall-back day, and a span whose start falls in a skipped hour opens
 * when the clocks land after it.
 *
 * Business arithmetic walks open runs, never minutes: the timeline is cut into segments over which the UTC
 * offset is constant (between two transitions of the zone), within a segment local time is UTC plus a
 * constant, so the local open intervals of the days it covers map straight back to UTC. A run that reaches
 * the end of a segment continues if the next segment is open at its first instant.
 *
 * A holiday closes its whole local date, including the part of an overnight span that runs into it from the
 * day before. Times are clamped to the years 1..9999, which keeps every sum below from overflowing. */
#include "calendar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar_tz.h"
#include "omni/util.h"

#define MIN_MS 60000LL
#define DAY_MS 86400000LL
#define HORIZON_MS (400 * DAY_MS)
/* Inputs are clamped to years 1..9999 so that no sum below can overflow and a loop always ends. */
#define T_MIN (-62135596800000LL)
#define T_MAX 253402300800000LL
#define FAR_MS (T_MAX + 2 * HORIZON_MS)

typedef struct span {
    int16_t s, e; /* minutes after local midnight, s < e <= 1440 */
} span_t;

struct calendar {
    char *zone;
    tz_zone_t *tz;
    uint8_t bits[7][1440 / 8]; /* minute m of weekday w is open: the source of truth for spans */
    span_t *spans[7];          /* per weekday, sorted and merged, rebuilt from bits on every change */
    size_t nspans[7];
    bool any_hours;
    int64_t *holidays; /* local dates as days since 1970-01-01, sorted, unique */
    size_t n_holidays, cap_holidays;
};

static int64_t clamp(int64_t t) { return t < T_MIN ? T_MIN : t > T_MAX ? T_MAX : t; }
static int weekday(int64_t day) { return (int)(((day + 3) % 7 + 7) % 7); } /* 1970-01-01: a Thursday */
static bool bit(const calendar_t *cal, int wd, int m) { return cal->bits[wd][m / 8] >> (m % 8) & 1; }

calendar_t *calendar_new(const char *tz, char *err, size_t errsz)
{
    tz_zone_t *zone = tz_zone_load(tz, err, errsz);
    if (!zone)
        return NULL;
    calendar_t *cal = omni_calloc(1, sizeof *cal);
    cal->zone = omni_strdup(tz);
    cal->tz = zone;
    return cal;
}

void calendar_destroy(calendar_t **cal)
{
    if (!cal || !*cal)
        return;
    for (int i = 0; i < 7; i++)
        free((*cal)->spans[i]);
    tz_zone_destroy(&(*cal)->tz);
    free((*cal)->holidays);
    free((*cal)->zone);
    free(*cal);
    *cal = NULL;
}

const char *calendar_zone(const calendar_t *cal) { return cal->zone; }

const char *calendar_day_name(int weekday)
{
    static const char *const names[7] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
    return names[((weekday % 7) + 7) % 7];
}

void calendar_describe(const calendar_t *cal, int64_t t, bool with_date, char *buf, size_t bufsz)
{
    cal_local_t l;
    calendar_local(cal, t, &l);
    char date[24] = "";
    if (with_date)
        snprintf(date, sizeof date, "%04d-%02d-%02d ", l.year, l.month, l.day);
    snprintf(buf, bufsz, "%s %s%02d:%02d %s", calendar_day_name(l.weekday), date, l.minute_of_day / 60,
             l.minute_of_day % 60, cal->zone);
}

int calendar_add_hours(calendar_t *cal, int wd, int start_min, int end_min)
{
    if (wd < 0 || wd > 6 || start_min < 0 || start_min >= end_min || end_min > 1440)
        return -1;
    for (int m = start_min; m < end_min; m++)
        cal->bits[wd][m / 8] |= (uint8_t)(1u << (m % 8));
    size_t n = 0;
    span_t *v = omni_malloc(720 * sizeof *v); /* at most every other minute opens a span */
    for (int m = 0; m < 1440;) {
        if (!bit(cal, wd, m)) {
            m++;
            continue;
        }
        int s = m;
        while (m < 1440 && bit(cal, wd, m))
            m++;
        v[n++] = (span_t){(int16_t)s, (int16_t)m};
    }
    free(cal->spans[wd]);
    cal->spans[wd] = omni_realloc(v, n * sizeof *v);
    cal->nspans[wd] = n;
    cal->any_hours = true;
    return 0;
}

static bool is_holiday(const calendar_t *cal, int64_t day)
{
    size_t lo = 0, hi = cal->n_holidays;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cal->holidays[mid] == day)
            return true;
        if (cal->holidays[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

int calendar_add_holiday(calendar_t *cal, const char *date, char *err, size_t errsz)
{
    int y = 0, m = 0, d = 0;
    bool shape = date && strlen(date) == 10 && date[4] == '-' && date[7] == '-';
    for (int i = 0; shape && i < 10; i++)
        shape = i == 4 || i == 7 || (date[i] >= '0' && date[i] <= '9');
    if (shape) {
        y = atoi(date);
        m = atoi(date + 5);
        d = atoi(date + 8);
    }
    if (!shape || m < 1 || m > 12 || d < 1 || d > tz_month_days(y, m)) {
        snprintf(err, errsz, "holiday \"%s\": not a date (YYYY-MM-DD)", date ? date : "(null)");
        return -1;
    }
    int64_t day = tz_days_from_civil(y, m, d);
    if (is_holiday(cal, day))
        return 0;
    if (cal->n_holidays == cal->cap_holidays) {
        cal->cap_holidays = cal->cap_holidays ? cal->cap_holidays * 2 : 16;
        cal->holidays = omni_realloc(cal->holidays, cal->cap_holidays * sizeof *cal->holidays);
    }
    size_t i = cal->n_holidays++;
    for (; i > 0 && cal->holidays[i - 1] > day; i--)
        cal->holidays[i] = cal->holidays[i - 1];
    cal->holidays[i] = day;
    return 0;
}

/* The offset (ms) in effect at t; *until gets the instant it may next change, at most FAR_MS. */
static int64_t offset_ms(const calendar_t *cal, int64_t t, int64_t *until)
{
    int64_t u;
    int32_t off = tz_zone_offset(cal->tz, tz_floordiv(t, 1000), &u);
    *until = u >= FAR_MS / 1000 ? FAR_MS : u * 1000;
    return (int64_t)off * 1000;
}

void calendar_local(const calendar_t *cal, int64_t t, cal_local_t *out)
{
    int64_t until, off = offset_ms(cal, clamp(t), &until), local = clamp(t) + off;
    int64_t day = tz_floordiv(local, DAY_MS), ms = local - day * DAY_MS, y;
    tz_civil_from_days(day, &y, &out->month, &out->day);
    out->year = (int)y;
    out->weekday = weekday(day);
    out->minute_of_day = (int)(ms / MIN_MS);
    out->second = (int)(ms / 1000 % 60);
    out->utc_offset_s = (int)(off / 1000);
}

bool calendar_open_at(const calendar_t *cal, int64_t t)
{
    int64_t until, local = clamp(t) + offset_ms(cal, clamp(t), &until);
    int64_t day = tz_floordiv(local, DAY_MS);
    return !is_holiday(cal, day) && bit(cal, weekday(day), (int)((local - day * DAY_MS) / MIN_MS));
}

/* In local time (ms as if UTC): the first open interval [*la, *lb) that ends after l and starts before
 * llimit, its end carried across midnights into following days that open at 00:00 until it reaches llimit. */
static bool local_next(const calendar_t *cal, int64_t l, int64_t llimit, int64_t *la, int64_t *lb)
{
    if (!cal->any_hours)
        return false;
    for (int64_t day = tz_floordiv(l, DAY_MS); day * DAY_MS < llimit; day++) {
        if (is_holiday(cal, day))
            continue;
        const span_t *v = cal->spans[weekday(day)];
        for (size_t i = 0; i < cal->nspans[weekday(day)]; i++) {
            int64_t s = day * DAY_MS + v[i].s * MIN_MS, e = day * DAY_MS + v[i].e * MIN_MS;
            if (e <= l)
                continue;
            if (s >= llimit)
                return false;
            *la = s;
            while (v[i].e == 1440 && e < llimit) { /* merged spans: only the last one can reach midnight */
                int64_t next = e / DAY_MS;
                int wd = weekday(next);
                if (is_holiday(cal, next) || !cal->nspans[wd] || cal->spans[wd][0].s != 0)
                    break;
                v = cal->spans[wd];
                i = 0;
                e = next * DAY_MS + v[0].e * MIN_MS;
            }
            *lb = e;
            return true;
        }
    }
    return false;
}

/* The first open run with an instant in [t, limit): *a = its first instant >= t, *b = its end clipped to
 * limit. False when it is closed throughout [t, limit). */
static bool find_run(const calendar_t *cal, int64_t t, int64_t limit, int64_t *a, int64_t *b)
{
    bool found = false;
    for (int64_t cur = t; cur < limit;) {
        int64_t seg_end, la, lb, off = offset_ms(cal, cur, &seg_end);
        if (seg_end > limit)
            seg_end = limit;
        if (!local_next(cal, cur + off, seg_end + off, &la, &lb)) {
            if (found)
                break;
            cur = seg_end;
            continue;
        }
        int64_t ua = la - off > cur ? la - off : cur, ub = lb - off < seg_end ? lb - off : seg_end;
        if (found && ua != cur) /* the next segment is closed at its first instant: the run ended */
            break;
        if (!found)
            *a = ua;
        found = true;
        *b = ub;
        if (ub < seg_end)
            break;
        cur = seg_end;
    }
    return found;
}

int64_t calendar_next_open(const calendar_t *cal, int64_t t)
{
    int64_t a, b;
    t = clamp(t);
    return find_run(cal, t, t + HORIZON_MS + 1, &a, &b) ? a : -1;
}

int64_t calendar_next_close(const calendar_t *cal, int64_t t)
{
    int64_t a, b, limit;
    t = clamp(t);
    limit = t + HORIZON_MS + 1;
    if (!find_run(cal, t, limit, &a, &b) || a > t)
        return t;
    return b < limit ? b : -1;
}

int64_t calendar_add_business(const calendar_t *cal, int64_t start, int64_t business_ms)
{
    int64_t cur = clamp(start), left = business_ms > 0 ? business_ms : 0, a, b;
    /* A run is at most HORIZON_MS long, so each turn either finishes or moves cur on by a whole run. */
    while (cur <= T_MAX + HORIZON_MS) {
        if (!find_run(cal, cur, cur + HORIZON_MS + 1, &a, &b))
            return -1;
        if (left <= b - a)
            return a + left;
        left -= b - a;
        cur = b;
    }
    return -1;
}

int64_t calendar_business_between(const calendar_t *cal, int64_t a, int64_t b)
{
    int64_t sum = 0, ra, rb;
    a = clamp(a);
    b = clamp(b);
    if (!cal->any_hours)
        return 0;
    for (int64_t cur = a; cur < b;) {
        int64_t limit = b - cur > HORIZON_MS ? cur + HORIZON_MS : b;
        if (!find_run(cal, cur, limit, &ra, &rb)) {
            cur = limit;
            continue;
        }
        sum += rb - ra;
        cur = rb;
    }
    return sum;
}
