/* See calendar_tz.h. Gregorian date arithmetic (after Howard Hinnant's days_from_civil) and POSIX TZ
 * rule strings, the form a TZif footer uses to describe every year after the file's last transition. */
#include "calendar_tz.h"

#include <stdio.h>
#include <string.h>

#define HOUR 3600

int64_t tz_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = tz_floordiv(y, 400);
    int64_t yoe = y - era * 400;                                  /* 0..399 */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365, from March 1 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* 0..146096 */
    return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = tz_floordiv(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int tz_month_days(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* Reads a decimal number of at most 3 digits in [lo, hi]; advances *s. */
static bool num(const char **s, int lo, int hi, int *out)
{
    int v = 0, n = 0;
    while (**s >= '0' && **s <= '9' && n < 3) {
        v = v * 10 + (**s - '0');
        (*s)++;
        n++;
    }
    *out = v;
    return n > 0 && v >= lo && v <= hi;
}

/* [+|-]hh[:mm[:ss]] with hh <= max_h, as seconds (sign kept as written). */
static bool hms(const char **s, int max_h, int32_t *out)
{
    int sign = 1, h, mi = 0, se = 0;
    if (**s == '+' || **s == '-')
        sign = *(*s)++ == '-' ? -1 : 1;
    if (!num(s, 0, max_h, &h))
        return false;
    if (**s == ':') {
        (*s)++;
        if (!num(s, 0, 59, &mi))
            return false;
        if (**s == ':') {
            (*s)++;
            if (!num(s, 0, 59, &se))
                return false;
        }
    }
    *out = sign * (h * HOUR + mi * 60 + se);
    return true;
}

/* A zone abbreviation: letters, or anything alphanumeric, '+' or '-' inside <...>. */
static bool abbr(const char **s)
{
    const char *p = *s;
    if (*p == '<') {
        for (p++; (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '+' ||
                  *p == '-';
             p++)
            ;
        if (*p != '>' || p == *s + 1)
            return false;
        *s = p + 1;
        return true;
    }
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    if (p == *s)
        return false;
    *s = p;
    return true;
}

static bool rule_date(const char **s, tz_rule_date_t *rd)
{
    memset(rd, 0, sizeof *rd);
    rd->secs = 2 * HOUR; /* POSIX default */
    if (**s == 'M') {
        (*s)++;
        rd->kind = 'M';
        if (!num(s, 1, 12, &rd->m) || *(*s)++ != '.' || !num(s, 1, 5, &rd->w) || *(*s)++ != '.' ||
            !num(s, 0, 6, &rd->d))
            return false;
    } else if (**s == 'J') {
        (*s)++;
        rd->kind = 'J';
        if (!num(s, 1, 365, &rd->n))
            return false;
    } else {
        rd->kind = 'D';
        if (!num(s, 0, 365, &rd->n))
            return false;
    }
    if (**s == '/') {
        (*s)++;
        return hms(s, 167, &rd->secs);
    }
    return true;
}

int tz_rule_parse(const char *s, tz_rule_t *out, char *err, size_t errsz)
{
    const char *p = s;
    int32_t off;
    memset(out, 0, sizeof *out);
    /* POSIX offsets count west of Greenwich: "CET-1" is UTC+1. */
    if (!abbr(&p) || !hms(&p, 24, &off))
        goto bad;
    out->std_off = -off;
    if (*p == '\0')
        return 0;
    if (!abbr(&p))
        goto bad;
    out->has_dst = true;
    out->dst_off = out->std_off + HOUR;
    if ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-') {
        if (!hms(&p, 24, &off))
            goto bad;
        out->dst_off = -off;
    }
    if (*p == '\0') /* no dates: the POSIX implementation-defined default, which glibc takes as US rules */
        p = ",M3.2.0,M11.1.0";
    if (*p++ != ',' || !rule_date(&p, &out->start) || *p++ != ',' || !rule_date(&p, &out->end) || *p != '\0')
        goto bad;
    return 0;
bad:
    snprintf(err, errsz, "bad POSIX TZ string \"%s\"", s);
    return -1;
}

/* Local second (as if UTC) at which rule date rd falls in year y. */
static int64_t rule_local(const tz_rule_date_t *rd, int64_t y)
{
    int64_t day = tz_days_from_civil(y, 1, 1);
    if (rd->kind == 'J')
        day += rd->n - 1 + (is_leap(y) && rd->n >= 60); /* Jn never names Feb 29, so March shifts by one */
    else if (rd->kind == 'D')
        day += rd->n;
    else {
        int64_t first = tz_days_from_civil(y, rd->m, 1);
        int wd = (int)((first + 4) % 7 + 7) % 7; /* 1970-01-01 was a Thursday; 0 = Sunday */
        int64_t mday = 1 + (rd->d - wd + 7) % 7 + (int64_t)(rd->w - 1) * 7;
        while (mday > tz_month_days(y, rd->m)) /* week 5 means the last one */
            mday -= 7;
        day = first + mday - 1;
    }
    return day * 86400 + rd->secs;
}

typedef struct event {
    int64_t at;
    bool dst; /* daylight time from `at` on */
} event_t;

int32_t tz_rule_offset(const tz_rule_t *r, int64_t t, int64_t *until)
{
    if (!r->has_dst) {
        *until = TZ_NEVER;
        return r->std_off;
    }
    /* The changes of the year around t and of both neighbours always bracket t, whichever hemisphere. */
    int64_t y;
    int m, d;
    tz_civil_from_days(tz_floordiv(t + r->std_off, 86400), &y, &m, &d);
    event_t ev[6];
    for (int i = 0; i < 3; i++) {
        ev[2 * i] = (event_t){rule_local(&r->start, y - 1 + i) - r->std_off, true};
        ev[2 * i + 1] = (event_t){rule_local(&r->end, y - 1 + i) - r->dst_off, false};
    }
    /* Insertion sort; at a tie the start goes last so a rule that is daylight all year stays daylight. */
    for (int i = 1; i < 6; i++)
        for (int j = i; j > 0 && (ev[j].at < ev[j - 1].at || (ev[j].at == ev[j - 1].at && !ev[j].dst && ev[j - 1].dst));
             j--) {
            event_t tmp = ev[j];
            ev[j] = ev[j - 1];
            ev[j - 1] = tmp;
        }
    bool dst = !ev[0].dst;
    *until = TZ_NEVER;
    for (int i = 0; i < 6; i++) {
        if (ev[i].at <= t)
            dst = ev[i].dst;
        else if (*until == TZ_NEVER)
            *until = ev[i].at;
    }
    return dst ? r->dst_off : r->std_off;
}
