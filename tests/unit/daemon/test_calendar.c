/* Business calendars: local time in real zones against `date` output (computed once, pasted as literals),
 * opening edges, DST days, next open/close over weekends and holidays, business arithmetic and its inverse,
 * the hours syntax and its errors, zone name checks, and TZif files written here (version 1, footer rules
 * in the J/n/M forms, version 3 negative rule times, truncated and corrupt files). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "calendar.h"
#include "omni/util.h"

#define H (3600 * 1000LL)
#define NEVER_STR NULL /* "want -1" in a table */

/* RFC 3339 with an offset -> ms; the expected instants are written as the local clock reads them. */
static int64_t at(const char *s)
{
    int64_t t;
    if (omni_rfc3339_parse(s, &t) != 0)
        fail_msg("bad test time %s", s);
    return t;
}

/* A calendar in zone with each hours line and holiday (NULL-terminated lists, either may be NULL). */
static calendar_t *make(const char *zone, const char *const *lines, const char *const *holidays)
{
    char err[256] = "";
    calendar_t *cal = calendar_new(zone, err, sizeof err);
    if (!cal)
        fail_msg("calendar_new(%s): %s", zone, err);
    for (size_t i = 0; lines && lines[i]; i++)
        if (calendar_parse_hours(cal, lines[i], err, sizeof err) != 0)
            fail_msg("%s", err);
    for (size_t i = 0; holidays && holidays[i]; i++)
        if (calendar_add_holiday(cal, holidays[i], err, sizeof err) != 0)
            fail_msg("%s", err);
    return cal;
}

static const char *const OFFICE[] = {"mon-fri 09:00-18:00", NULL};
static const char *const ALWAYS[] = {"mon-sun 00:00-24:00", NULL};
static const char *const SUNDAY[] = {"sun 00:00-24:00", NULL};
static const char *const NIGHTS[] = {"mon-fri 22:00-06:00", NULL};
static const char *const MAY_DAYS[] = {"2026-05-01", "2026-05-14", NULL};

typedef struct local_case {
    const char *zone;
    int64_t t;
    int year, month, day, weekday, minute, second, off;
} local_case_t;

/* From `TZ=<zone> date -d @<t> '+%Y %m %d %u %H %M %S %z'` (tzdata 2025b), once. */
static const local_case_t LOCAL[] = {
    {"UTC", 1767225600000LL, 2026, 1, 1, 3, 0, 0, 0},                    /* 2026-01-01 00:00:00 +0000 */
    {"UTC", -1000LL, 1969, 12, 31, 2, 1439, 59, 0},                      /* 1969-12-31 23:59:59 +0000 */
    {"Europe/Paris", 1774745999000LL, 2026, 3, 29, 6, 119, 59, 3600},    /* 2026-03-29 01:59:59 +0100 */
    {"Europe/Paris", 1774746000000LL, 2026, 3, 29, 6, 180, 0, 7200},     /* 2026-03-29 03:00:00 +0200 */
    {"Europe/Paris", 1792889999000LL, 2026, 10, 25, 6, 179, 59, 7200},   /* 2026-10-25 02:59:59 +0200 */
    {"Europe/Paris", 1792890000000LL, 2026, 10, 25, 6, 120, 0, 3600},    /* 2026-10-25 02:00:00 +0100 */
    {"Europe/Paris", 2224756800000LL, 2040, 7, 1, 6, 840, 0, 7200},      /* 2040-07-01 14:00:00 +0200 */
    {"Europe/Paris", 4109878800000LL, 2100, 3, 28, 6, 180, 0, 7200},     /* 2100-03-28 03:00:00 +0200 */
    {"Europe/Paris", -302443200000LL, 1960, 6, 1, 2, 780, 0, 3600},      /* 1960-06-01 13:00:00 +0100 */
    {"America/New_York", 1772953199000LL, 2026, 3, 8, 6, 119, 59, -18000}, /* 2026-03-08 01:59:59 -0500 */
    {"America/New_York", 1772953200000LL, 2026, 3, 8, 6, 180, 0, -14400},  /* 2026-03-08 03:00:00 -0400 */
    {"America/New_York", 1793512799000LL, 2026, 11, 1, 6, 119, 59, -14400}, /* 2026-11-01 01:59:59 -0400 */
    {"America/New_York", 1793512800000LL, 2026, 11, 1, 6, 60, 0, -18000},   /* 2026-11-01 01:00:00 -0500 */
    {"America/New_York", 2551327200000LL, 2050, 11, 6, 6, 60, 0, -18000},   /* 2050-11-06 01:00:00 -0500 */
    {"Asia/Kolkata", 1781548140000LL, 2026, 6, 15, 0, 1439, 0, 19800},      /* 2026-06-15 23:59:00 +0530 */
    {"Asia/Kolkata", 1781548200000LL, 2026, 6, 16, 1, 0, 0, 19800},         /* 2026-06-16 00:00:00 +0530 */
    {"Australia/Sydney", 1775318399000LL, 2026, 4, 5, 6, 179, 59, 39600},   /* 2026-04-05 02:59:59 +1100 */
    {"Australia/Sydney", 1775318400000LL, 2026, 4, 5, 6, 120, 0, 36000},    /* 2026-04-05 02:00:00 +1000 */
    {"Australia/Sydney", 1791043199000LL, 2026, 10, 4, 6, 119, 59, 36000},  /* 2026-10-04 01:59:59 +1000 */
    {"Australia/Sydney", 1791043200000LL, 2026, 10, 4, 6, 180, 0, 39600},   /* 2026-10-04 03:00:00 +1100 */
    {"Australia/Sydney", 2366841600000LL, 2045, 1, 1, 6, 660, 0, 39600},    /* 2045-01-01 11:00:00 +1100 */
    {"Asia/Kathmandu", 1767291299000LL, 2026, 1, 1, 3, 1439, 59, 20700},    /* 2026-01-01 23:59:59 +0545 */
    {"Asia/Kathmandu", 1767291300000LL, 2026, 1, 2, 4, 0, 0, 20700},        /* 2026-01-02 00:00:00 +0545 */
    {"Asia/Kathmandu", 486432000000LL, 1985, 6, 1, 5, 330, 0, 19800},       /* 1985-06-01 05:30:00 +0530 */
    {"America/Nuuk", 1774745999000LL, 2026, 3, 28, 5, 1379, 59, -7200},     /* 2026-03-28 22:59:59 -0200 */
    {"America/Nuuk", 1774746000000LL, 2026, 3, 29, 6, 0, 0, -3600},         /* 2026-03-29 00:00:00 -0100 */
    {"America/Nuuk", 1792889999000LL, 2026, 10, 24, 5, 1439, 59, -3600},    /* 2026-10-24 23:59:59 -0100 */
    {"America/Nuuk", 1792890000000LL, 2026, 10, 24, 5, 1380, 0, -7200},     /* 2026-10-24 23:00:00 -0200 */
};

static void check_local(const calendar_t *cal, int64_t t, const local_case_t *c)
{
    cal_local_t l;
    calendar_local(cal, t, &l);
    if (l.year != c->year || l.month != c->month || l.day != c->day || l.weekday != c->weekday ||
        l.minute_of_day != c->minute || l.second != c->second || l.utc_offset_s != c->off)
        fail_msg("%s at %lld: got %d-%02d-%02d wd %d min %d s %d off %d", c->zone, (long long)t, l.year, l.month,
                 l.day, l.weekday, l.minute_of_day, l.second, l.utc_offset_s);
}

static void test_local(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof LOCAL / sizeof LOCAL[0]; i++) {
        calendar_t *cal = make(LOCAL[i].zone, NULL, NULL);
        check_local(cal, LOCAL[i].t, &LOCAL[i]);
        check_local(cal, LOCAL[i].t + 999, &LOCAL[i]); /* the whole second, to the last millisecond */
        assert_string_equal(calendar_zone(cal), LOCAL[i].zone);
        calendar_destroy(&cal);
        assert_null(cal);
    }
    calendar_t *utc = make("UTC", NULL, NULL);
    check_local(utc, -1, &LOCAL[1]); /* one ms before the epoch is still 23:59:59 */
    calendar_destroy(&utc);
}

typedef struct probe {
    const char *zone;
    const char *const *hours;
    const char *when;
    bool open;
} probe_t;

static void test_open_at(void **state)
{
    (void)state;
    static const char *const SUN_2_3[] = {"sun 02:00-03:00", NULL}, *const IST[] = {"mon-fri 09:30-18:00", NULL};
    static const probe_t P[] = {
        {"Europe/Paris", OFFICE, "2026-06-15T09:00:00.000+02:00", true}, /* exactly at open: open */
        {"Europe/Paris", OFFICE, "2026-06-15T08:59:59.999+02:00", false},
        {"Europe/Paris", OFFICE, "2026-06-15T17:59:59.999+02:00", true},
        {"Europe/Paris", OFFICE, "2026-06-15T18:00:00.000+02:00", false}, /* exactly at close: closed */
        {"Europe/Paris", OFFICE, "2026-06-20T12:00:00+02:00", false},     /* Saturday */
        {"Europe/Paris", SUN_2_3, "2026-10-25T02:00:00+02:00", true},     /* the repeated hour, both times */
        {"Europe/Paris", SUN_2_3, "2026-10-25T02:59:59.999+02:00", true},
        {"Europe/Paris", SUN_2_3, "2026-10-25T02:00:00+01:00", true},
        {"Europe/Paris", SUN_2_3, "2026-10-25T03:00:00+01:00", false},
        {"Europe/Paris", SUN_2_3, "2026-03-29T03:00:00+02:00", false}, /* 02:00-03:00 never happens */
        {"Asia/Kolkata", IST, "2026-06-15T09:30:00+05:30", true},
        {"Asia/Kolkata", IST, "2026-06-15T09:29:59.999+05:30", false},
        {"Asia/Kathmandu", OFFICE, "2026-06-15T09:00:00+05:45", true},
        {"Asia/Kathmandu", OFFICE, "2026-06-15T08:59:00+05:45", false},
        {"Europe/Paris", NIGHTS, "2026-06-20T05:59:59.999+02:00", true}, /* Friday's night runs into Saturday */
        {"Europe/Paris", NIGHTS, "2026-06-22T05:00:00+02:00", false},    /* Sunday has no night */
    };
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        calendar_t *cal = make(P[i].zone, P[i].hours, NULL);
        if (calendar_open_at(cal, at(P[i].when)) != P[i].open)
            fail_msg("%s %s: expected %s", P[i].zone, P[i].when, P[i].open ? "open" : "closed");
        calendar_destroy(&cal);
    }
}

typedef struct span_case {
    const char *zone;
    const char *const *hours;
    const char *from, *to;
    int64_t ms;
} span_case_t;

/* Open time over whole local days: a 00:00-24:00 day is as long as the clocks make it. */
static void test_dst_days(void **state)
{
    (void)state;
    static const char *const SAT_NIGHT[] = {"sat 22:00-06:00", NULL}, *const SUN_2_3[] = {"sun 02:00-03:00", NULL};
    static const span_case_t C[] = {
        {"Europe/Paris", SUNDAY, "2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 23 * H},
        {"Europe/Paris", SUNDAY, "2026-10-19T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 25 * H},
        {"Europe/Paris", ALWAYS, "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 23 * H},
        {"America/New_York", SUNDAY, "2026-03-02T00:00:00-05:00", "2026-03-09T00:00:00-04:00", 23 * H},
        {"America/New_York", SUNDAY, "2026-10-26T00:00:00-04:00", "2026-11-02T00:00:00-05:00", 25 * H},
        {"Australia/Sydney", SUNDAY, "2026-03-30T00:00:00+11:00", "2026-04-06T00:00:00+10:00", 25 * H},
        {"Australia/Sydney", SUNDAY, "2026-09-28T00:00:00+10:00", "2026-10-05T00:00:00+11:00", 23 * H},
        {"Asia/Kathmandu", SUNDAY, "2026-03-23T00:00:00+05:45", "2026-03-30T00:00:00+05:45", 24 * H},
        {"Europe/Paris", SAT_NIGHT, "2026-03-28T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 7 * H},
        {"Europe/Paris", SAT_NIGHT, "2026-10-24T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 9 * H},
        {"Europe/Paris", SUN_2_3, "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 2 * H},
        {"Europe/Paris", SUN_2_3, "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 0},
        {"Europe/Paris", OFFICE, "2026-06-15T09:00:00.001+02:00", "2026-06-15T17:59:59.999+02:00", 9 * H - 2},
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        calendar_t *cal = make(C[i].zone, C[i].hours, NULL);
        int64_t got = calendar_business_between(cal, at(C[i].from), at(C[i].to));
        if (got != C[i].ms)
            fail_msg("%s %s..%s: %lld ms, want %lld", C[i].zone, C[i].from, C[i].to, (long long)got,
                     (long long)C[i].ms);
        calendar_destroy(&cal);
    }
}

typedef struct next_case {
    const char *zone;
    const char *const *hours, *const *holidays;
    bool close; /* next_close, else next_open */
    const char *from, *want; /* want NULL: -1 */
} next_case_t;

static void test_next(void **state)
{
    (void)state;
    static const char *const XMAS[] = {"2026-12-24", "2026-12-25", NULL};
    static const char *const LONG_WEEKEND[] = {"fri 22:00-24:00", "sat 00:00-24:00", "sun 00:00-12:00", NULL};
    static const char *const SPRING_LATE[] = {"sun 02:30-05:00", NULL}, *const HALF[] = {"sun 02:30-03:00", NULL};
    static const char *const TO_GAP[] = {"sun 01:00-02:00", NULL}, *const OVER_FOLD[] = {"sun 01:00-03:00", NULL};
    static const next_case_t C[] = {
        {"Europe/Paris", OFFICE, NULL, false, "2026-06-19T18:00:00+02:00", "2026-06-22T09:00:00+02:00"}, /* weekend */
        {"Europe/Paris", OFFICE, MAY_DAYS, false, "2026-04-30T18:00:00+02:00", "2026-05-04T09:00:00+02:00"},
        {"Europe/Paris", OFFICE, NULL, false, "2026-06-15T10:00:00+02:00", "2026-06-15T10:00:00+02:00"},
        {"Europe/Paris", OFFICE, NULL, false, "2026-06-15T07:00:00+02:00", "2026-06-15T09:00:00+02:00"},
        {"Europe/Paris", OFFICE, NULL, false, "2026-03-27T18:00:00+01:00", "2026-03-30T09:00:00+02:00"},
        {"Europe/Paris", ALWAYS, XMAS, false, "2026-12-24T10:00:00+01:00", "2026-12-26T00:00:00+01:00"},
        {"Europe/Paris", SPRING_LATE, NULL, false, "2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00"},
        {"America/New_York", OFFICE, NULL, false, "2026-03-06T18:00:00-05:00", "2026-03-09T09:00:00-04:00"},
        {"Europe/Paris", OFFICE, NULL, true, "2026-06-15T10:00:00+02:00", "2026-06-15T18:00:00+02:00"},
        {"Europe/Paris", OFFICE, NULL, true, "2026-06-15T19:00:00+02:00", "2026-06-15T19:00:00+02:00"},
        {"Europe/Paris", ALWAYS, NULL, true, "2026-06-15T10:00:00+02:00", NEVER_STR},
        {"Europe/Paris", ALWAYS, XMAS, true, "2026-12-20T10:00:00+01:00", "2026-12-24T00:00:00+01:00"},
        {"Europe/Paris", NIGHTS, NULL, true, "2026-06-15T23:00:00+02:00", "2026-06-16T06:00:00+02:00"},
        {"Europe/Paris", LONG_WEEKEND, NULL, true, "2026-06-19T23:00:00+02:00", "2026-06-21T12:00:00+02:00"},
        {"Europe/Paris", ALWAYS, NULL, true, "2026-03-28T12:00:00+01:00", NEVER_STR}, /* across a DST change */
        /* Runs that meet a DST change: they end there, or go on when the new offset lands in open time. */
        {"Europe/Paris", HALF, NULL, true, "2026-10-25T02:40:00+02:00", "2026-10-25T03:00:00+02:00"},
        {"Europe/Paris", HALF, NULL, false, "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00"},
        {"Europe/Paris", TO_GAP, NULL, true, "2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00"},
        {"Europe/Paris", OVER_FOLD, NULL, true, "2026-10-25T01:30:00+02:00", "2026-10-25T03:00:00+01:00"},
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        calendar_t *cal = make(C[i].zone, C[i].hours, C[i].holidays);
        int64_t t = at(C[i].from), want = C[i].want ? at(C[i].want) : -1;
        int64_t got = C[i].close ? calendar_next_close(cal, t) : calendar_next_open(cal, t);
        if (got != want)
            fail_msg("case %zu: next_%s(%s) = %lld, want %lld", i, C[i].close ? "close" : "open", C[i].from,
                     (long long)got, (long long)want);
        calendar_destroy(&cal);
    }
}

/* "Never" means nothing within 400 days. */
static void test_horizon(void **state)
{
    (void)state;
    static const char *const MON[] = {"mon 09:00-10:00", NULL};
    char date[32], err[128];
    calendar_t *cal = make("UTC", MON, NULL);
    for (int w = 0; w < 60; w++) { /* every Monday from 2026-01-05 for 420 days is a holiday */
        int64_t day = at("2026-01-05T00:00:00Z") + (int64_t)w * 7 * 24 * H;
        omni_rfc3339(day, date, sizeof date);
        date[10] = '\0';
        assert_int_equal(calendar_add_holiday(cal, date, err, sizeof err), 0);
        if (w == 55) /* 55 weeks of holidays leave the Monday of week 56, 392 days on: found */
            assert_int_equal(calendar_next_open(cal, at("2026-01-01T00:00:00Z")),
                             at("2026-01-05T09:00:00Z") + 56 * 7 * 24 * H);
    }
    assert_int_equal(calendar_next_open(cal, at("2026-01-01T00:00:00Z")), -1);
    assert_int_equal(calendar_add_business(cal, at("2026-01-01T00:00:00Z"), H), -1);
    calendar_destroy(&cal);

    calendar_t *xmas = make("UTC", ALWAYS, NULL); /* open around the clock: the close is 399 days away */
    assert_int_equal(calendar_add_holiday(xmas, "2027-02-04", err, sizeof err), 0);
    assert_int_equal(calendar_next_close(xmas, at("2026-01-01T00:00:00Z")), at("2027-02-04T00:00:00Z"));
    assert_int_equal(calendar_next_close(xmas, at("2025-12-30T00:00:00Z")), -1); /* 401 days away */
    calendar_destroy(&xmas);
}

static void test_no_hours(void **state)
{
    (void)state;
    calendar_t *cal = make("Europe/Paris", NULL, NULL);
    int64_t t = at("2026-06-15T10:00:00+02:00");
    assert_false(calendar_open_at(cal, t));
    assert_int_equal(calendar_next_open(cal, t), -1);
    assert_int_equal(calendar_next_close(cal, t), t);
    assert_int_equal(calendar_add_business(cal, t, 0), -1);
    assert_int_equal(calendar_add_business(cal, t, H), -1);
    assert_int_equal(calendar_business_between(cal, t, t + 1000 * 24 * H), 0);
    calendar_destroy(&cal);
    calendar_destroy(&cal); /* a second destroy of the nulled pointer is harmless */
}

typedef struct add_case {
    const char *zone;
    const char *const *hours, *const *holidays;
    const char *from;
    int64_t ms;
    const char *want;
} add_case_t;

static const add_case_t ADD[] = {
    {"Europe/Paris", OFFICE, NULL, "2026-06-15T17:00:00+02:00", 2 * H, "2026-06-16T10:00:00+02:00"}, /* night */
    {"Europe/Paris", OFFICE, NULL, "2026-06-19T17:00:00+02:00", 2 * H, "2026-06-22T10:00:00+02:00"}, /* weekend */
    {"Europe/Paris", OFFICE, MAY_DAYS, "2026-04-30T17:00:00+02:00", 2 * H, "2026-05-04T10:00:00+02:00"},
    {"Europe/Paris", OFFICE, MAY_DAYS, "2026-05-13T17:00:00+02:00", 10 * H, "2026-05-15T18:00:00+02:00"},
    {"Europe/Paris", OFFICE, NULL, "2026-03-27T17:00:00+01:00", 2 * H, "2026-03-30T10:00:00+02:00"}, /* DST */
    {"Europe/Paris", OFFICE, NULL, "2026-10-23T17:00:00+02:00", 2 * H, "2026-10-26T10:00:00+01:00"},
    {"Europe/Paris", OFFICE, NULL, "2026-06-20T12:00:00+02:00", 30 * 60000, "2026-06-22T09:30:00+02:00"},
    {"Europe/Paris", OFFICE, NULL, "2026-06-20T12:00:00+02:00", 0, "2026-06-22T09:00:00+02:00"},
    {"Europe/Paris", OFFICE, NULL, "2026-06-15T09:00:00+02:00", 9 * H, "2026-06-15T18:00:00+02:00"}, /* to close */
    {"Europe/Paris", OFFICE, NULL, "2026-06-15T09:00:00+02:00", 45 * H, "2026-06-19T18:00:00+02:00"},
    {"Europe/Paris", OFFICE, NULL, "2026-06-15T09:00:00+02:00", 46 * H, "2026-06-22T10:00:00+02:00"},
    {"Europe/Paris", OFFICE, NULL, "2026-06-15T09:00:00+02:00", 1, "2026-06-15T09:00:00.001+02:00"},
    {"Europe/Paris", ALWAYS, NULL, "2026-03-28T12:00:00+01:00", 24 * H, "2026-03-29T13:00:00+02:00"},
    {"Europe/Paris", ALWAYS, (const char *const[]){"2026-03-29", NULL}, "2026-03-28T12:00:00+01:00", 13 * H,
     "2026-03-30T01:00:00+02:00"},
    {"Europe/Paris", NIGHTS, NULL, "2026-06-19T22:00:00+02:00", 9 * H, "2026-06-22T23:00:00+02:00"},
    {"Europe/Paris", NIGHTS, NULL, "2026-06-21T23:00:00+02:00", 0, "2026-06-22T22:00:00+02:00"},
    {"America/New_York", OFFICE, NULL, "2026-03-06T17:00:00-05:00", 2 * H, "2026-03-09T10:00:00-04:00"},
    {"America/New_York", OFFICE, NULL, "2026-10-30T17:00:00-04:00", 2 * H, "2026-11-02T10:00:00-05:00"},
    {"Australia/Sydney", OFFICE, NULL, "2026-04-03T17:00:00+11:00", 2 * H, "2026-04-06T10:00:00+10:00"},
    {"Asia/Kathmandu", OFFICE, NULL, "2026-06-19T17:30:00+05:45", H, "2026-06-22T09:30:00+05:45"},
    {"UTC", (const char *const[]){"mon-fri 09:00-17:00", NULL}, NULL, "2026-01-05T09:00:00Z", 2000 * H,
     "2026-12-18T17:00:00Z"}, /* 50 weeks of 40 h */
};

static void test_add_business(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ADD / sizeof ADD[0]; i++) {
        const add_case_t *c = &ADD[i];
        calendar_t *cal = make(c->zone, c->hours, c->holidays);
        int64_t from = at(c->from), got = calendar_add_business(cal, from, c->ms);
        if (got != at(c->want)) {
            char buf[40];
            fail_msg("case %zu: %s + %lld ms = %s, want %s", i, c->from, (long long)c->ms,
                     omni_rfc3339(got, buf, sizeof buf), c->want);
        }
        if (c->ms > 0)
            assert_int_equal(calendar_business_between(cal, from, got), c->ms);
        calendar_destroy(&cal);
    }
}

/* business_between undoes add_business from any start, open or closed, across DST and holidays. */
static void test_inverse(void **state)
{
    (void)state;
    static const char *const MIXED[] = {"mon-fri 09:00-18:00", "sat 10:00-14:00, 15:00-17:00", "sun 22:00-02:00",
                                        "wed 01:30-02:45", NULL};
    static const char *const EASTER[] = {"2026-04-03", "2026-04-06", NULL};
    static const int64_t MS[] = {1, H, 9 * H + 1, 50 * H, 123456789};
    const char *zones[] = {"Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kathmandu"};
    for (size_t z = 0; z < 4; z++) {
        calendar_t *cal = make(zones[z], MIXED, EASTER);
        for (int64_t s = at("2026-03-20T00:00:00Z"); s < at("2026-04-12T00:00:00Z"); s += 97 * 60000 + 7) {
            for (size_t i = 0; i < sizeof MS / sizeof MS[0]; i++) {
                int64_t end = calendar_add_business(cal, s, MS[i]);
                assert_true(end > s);
                if (calendar_business_between(cal, s, end) != MS[i])
                    fail_msg("%s: between(%lld, add(+%lld)) != itself", zones[z], (long long)s, (long long)MS[i]);
                assert_true(calendar_open_at(cal, end - 1));
            }
            int64_t open = calendar_next_open(cal, s);
            assert_true(open >= s && calendar_open_at(cal, open));
            assert_true(open == s || !calendar_open_at(cal, open - 1));
            int64_t close = calendar_next_close(cal, s);
            assert_true(close >= s && !calendar_open_at(cal, close));
            assert_true(close == s || calendar_open_at(cal, close - 1));
        }
        calendar_destroy(&cal);
    }
}

typedef struct hours_case {
    const char *line;
    int64_t week_ms;                 /* open time from Monday 2026-01-05 00:00 UTC over 7 days */
    const char *open_at, *closed_at; /* a probe each, UTC; NULL skips */
} hours_case_t;

static void test_parse_hours(void **state)
{
    (void)state;
    static const hours_case_t C[] = {
        {"mon-fri 09:00-18:00", 45 * H, "2026-01-05T09:00:00Z", "2026-01-05T18:00:00Z"},
        {"sat 10:00-14:00, 15:00-17:00", 6 * H, "2026-01-10T15:00:00Z", "2026-01-10T14:30:00Z"},
        {"sun,wed 08:00-12:00", 8 * H, "2026-01-07T08:00:00Z", "2026-01-08T08:00:00Z"},
        {"mon-sun 00:00-24:00", 168 * H, "2026-01-11T23:59:59Z", NULL},
        {"fri-mon 10:00-11:00", 4 * H, "2026-01-11T10:30:00Z", "2026-01-06T10:30:00Z"},
        {"mon-fri 22:00-06:00", 40 * H, "2026-01-10T05:59:00Z", "2026-01-05T05:00:00Z"},
        {"  Mon , Thu 9:00-10:00,11:00-12:00  ", 4 * H, "2026-01-08T11:00:00Z", "2026-01-08T10:00:00Z"},
        {"saturday 22:00-00:00", 2 * H, "2026-01-10T23:00:00Z", "2026-01-11T00:00:00Z"},
        {"sun 23:00-01:00", 2 * H, "2026-01-05T00:30:00Z", "2026-01-05T01:00:00Z"},
        {"mon 09:00-12:00, 10:00-13:00", 4 * H, "2026-01-05T12:30:00Z", "2026-01-05T13:00:00Z"}, /* overlap */
    };
    char err[256];
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        calendar_t *cal = make("UTC", NULL, NULL);
        if (calendar_parse_hours(cal, C[i].line, err, sizeof err) != 0)
            fail_msg("%s", err);
        int64_t got = calendar_business_between(cal, at("2026-01-05T00:00:00Z"), at("2026-01-12T00:00:00Z"));
        if (got != C[i].week_ms)
            fail_msg("\"%s\": %lld ms a week, want %lld", C[i].line, (long long)got, (long long)C[i].week_ms);
        assert_true(calendar_open_at(cal, at(C[i].open_at)));
        assert_true(!C[i].closed_at || !calendar_open_at(cal, at(C[i].closed_at)));
        calendar_destroy(&cal);
    }
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *const C[][2] = {
        {"mon-fry 09:00-18:00", "\"mon-fry 09:00-18:00\": unknown day \"fry\""},
        {"mon 25:00-26:00", "\"mon 25:00-26:00\": \"25:00\" is not a time (HH:MM, 00:00 to 24:00)"},
        {"mon 9:60-10:00", "\"mon 9:60-10:00\": \"9:60\" is not a time (HH:MM, 00:00 to 24:00)"},
        {"mon 9am-5pm", "\"mon 9am-5pm\": \"9am\" is not a time (HH:MM, 00:00 to 24:00)"},
        {"mon 09:00-09:00", "\"mon 09:00-09:00\": \"09:00-09:00\" is empty (start equals end)"},
        {"mon 24:00-06:00", "\"mon 24:00-06:00\": \"24:00\" cannot start a span"},
        {"mon-fri", "\"mon-fri\": missing opening times after \"mon-fri\""},
        {"09:00-18:00", "\"09:00-18:00\": expected days (\"mon-fri\") before \"09:00\""},
        {"mon 09:00", "\"mon 09:00\": \"09:00\" needs an end (\"09:00-18:00\")"},
        {"mon 09:00-18:00 extra", "\"mon 09:00-18:00 extra\": unexpected \"extra\""},
        {"mon,,tue 09:00-10:00", "\"mon,,tue 09:00-10:00\": expected a day at \",tue 09:00-10:00\""},
        {"mon 09:00-18:00,", "\"mon 09:00-18:00,\": missing time"},
        {"mon 10:00-12:00, 25:00-26:00",
         "\"mon 10:00-12:00, 25:00-26:00\": \"25:00\" is not a time (HH:MM, 00:00 to 24:00)"},
        {"", "\"\": empty hours line"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        calendar_t *cal = make("UTC", NULL, NULL);
        assert_int_equal(calendar_parse_hours(cal, C[i][0], err, sizeof err), -1);
        assert_string_equal(err, C[i][1]);
        assert_int_equal(calendar_next_open(cal, 0), -1); /* a bad line adds nothing, not even its good part */
        calendar_destroy(&cal);
    }
    calendar_t *cal = make("UTC", NULL, NULL);
    assert_int_equal(calendar_add_hours(cal, 7, 0, 60), -1);
    assert_int_equal(calendar_add_hours(cal, 0, 60, 60), -1);
    assert_int_equal(calendar_add_hours(cal, 0, -1, 60), -1);
    assert_int_equal(calendar_add_hours(cal, 0, 0, 1441), -1);
    assert_int_equal(calendar_add_hours(cal, 1, 0, 1440), 0); /* Tuesdays */
    static const char *const BAD_DATES[] = {"2026-02-29", "2026-13-01", "2026-1-05", "2026-01-05x", "", "26-01-05"};
    for (size_t i = 0; i < sizeof BAD_DATES / sizeof BAD_DATES[0]; i++) {
        assert_int_equal(calendar_add_holiday(cal, BAD_DATES[i], err, sizeof err), -1);
        char want[64];
        snprintf(want, sizeof want, "holiday \"%s\": not a date (YYYY-MM-DD)", BAD_DATES[i]);
        assert_string_equal(err, want);
    }
    assert_int_equal(calendar_add_holiday(cal, "2028-02-29", err, sizeof err), 0);
    assert_int_equal(calendar_add_holiday(cal, "2028-02-29", err, sizeof err), 0); /* twice is once */
    assert_int_equal(calendar_next_open(cal, at("2028-02-29T12:00:00Z")), at("2028-03-07T00:00:00Z"));
    calendar_destroy(&cal);
}

static void test_bad_zones(void **state)
{
    (void)state;
    static const char *const C[][2] = {
        {"", "zone \"\": empty zone name"},
        {"../etc/passwd", "zone \"../etc/passwd\": \"..\" not allowed"},
        {"Europe/../../etc/passwd", "zone \"Europe/../../etc/passwd\": \"..\" not allowed"},
        {"/etc/localtime", "zone \"/etc/localtime\": absolute path not allowed"},
        {"Europe/Paris;rm", "zone \"Europe/Paris;rm\": characters other than A-Z a-z 0-9 _ + - / not allowed"},
        {"Europe/Paris ", "zone \"Europe/Paris \": characters other than A-Z a-z 0-9 _ + - / not allowed"},
        {"Nowhere/City", "zone \"Nowhere/City\": /usr/share/zoneinfo/Nowhere/City: no such zone"},
        {"Europe", "zone \"Europe\": /usr/share/zoneinfo/Europe: not a zone file"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        assert_null(calendar_new(C[i][0], err, sizeof err));
        assert_string_equal(err, C[i][1]);
    }
    assert_null(calendar_new(NULL, err, sizeof err));
    assert_string_equal(err, "zone \"(null)\": empty zone name");
}

/* --- TZif files written here ---------------------------------------------------------------------- */

typedef struct buf {
    uint8_t b[512];
    size_t n;
} buf_t;

static void put(buf_t *b, const void *p, size_t n)
{
    if (n == 0) /* memcpy from NULL is undefined even for 0 bytes */
        return;
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void put32(buf_t *b, int64_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 4);
}
static void put64(buf_t *b, int64_t v)
{
    put32(b, v >> 32);
    put32(b, v & 0xffffffff);
}

/* A header with version v ('\0', '2', '3') and counts for `times` transitions, `types` types, 8 chars. */
static void header(buf_t *b, char v, uint32_t times, uint32_t types)
{
    put(b, "TZif", 4);
    put(b, &v, 1);
    put(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15);
    const int64_t counts[6] = {0, 0, 0, times, types, 8}; /* isut, isstd, leap, time, type, char */
    for (int i = 0; i < 6; i++)
        put32(b, counts[i]);
}

/* A data block: transitions at[i] to type idx[i], types with offsets off[] (abbreviations "AAA", "BBB"). */
static void block(buf_t *b, size_t tsize, size_t n, const int64_t *at_, const uint8_t *idx, size_t nt,
                  const int32_t *off)
{
    for (size_t i = 0; i < n; i++)
        tsize == 8 ? put64(b, at_[i]) : put32(b, at_[i]);
    put(b, idx, n);
    for (size_t i = 0; i < nt; i++) {
        uint8_t flags[2] = {i > 0, (uint8_t)(i > 0 ? 4 : 0)};
        put32(b, off[i]);
        put(b, flags, 2);
    }
    put(b, "AAA\0BBB\0", 8);
}

/* A version 2+ file with no transitions, one type (off0) and the given footer rule. */
static void footer_file(buf_t *b, char v, int32_t off0, const char *rule)
{
    header(b, v, 0, 1);
    block(b, 4, 0, NULL, NULL, 1, &off0);
    header(b, v, 0, 1);
    block(b, 8, 0, NULL, NULL, 1, &off0);
    put(b, "\n", 1);
    put(b, rule, strlen(rule));
    put(b, "\n", 1);
}

static char tzdir[64];

static void write_zone(const char *name, const void *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tzdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static int tzdir_setup(void **state)
{
    (void)state;
    snprintf(tzdir, sizeof tzdir, "/tmp/test_calendar_XXXXXX");
    if (!mkdtemp(tzdir))
        return -1;
    char sub[96];
    snprintf(sub, sizeof sub, "%s/Test", tzdir);
    mkdir(sub, 0700);
    setenv("TZDIR", tzdir, 1);
    return 0;
}

static int tzdir_teardown(void **state)
{
    (void)state;
    unsetenv("TZDIR");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tzdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int32_t offset_at(calendar_t *cal, int64_t t)
{
    cal_local_t l;
    calendar_local(cal, t, &l);
    return l.utc_offset_s;
}

static void test_tzif_v1(void **state)
{
    (void)state;
    buf_t b = {.n = 0};
    static const int64_t AT[] = {1000000000, 1100000000};
    static const uint8_t IDX[] = {1, 0};
    static const int32_t OFF[] = {3600, 7200};
    header(&b, '\0', 2, 2);
    block(&b, 4, 2, AT, IDX, 2, OFF);
    write_zone("Test/V1", b.b, b.n);
    char err[256];
    calendar_t *cal = calendar_new("Test/V1", err, sizeof err);
    if (!cal)
        fail_msg("%s", err);
    assert_int_equal(offset_at(cal, 999999999999LL), 3600); /* before the first: type 0 */
    assert_int_equal(offset_at(cal, 1000000000000LL), 7200);
    assert_int_equal(offset_at(cal, 1099999999999LL), 7200);
    assert_int_equal(offset_at(cal, 1100000000000LL), 3600); /* after the last, with no footer: for ever */
    assert_int_equal(offset_at(cal, 4000000000000LL), 3600);
    calendar_destroy(&cal);

    /* Version 2: the 64-bit block is the one read (its transition is before 1901, out of 32-bit reach, and
     * the version 1 block says +03:00 throughout); an empty footer keeps the last offset for ever. */
    static const int64_t AT2[] = {-3000000000LL};
    static const uint8_t IDX2[] = {1};
    static const int32_t OFF1[] = {10800};
    b.n = 0;
    header(&b, '2', 0, 1);
    block(&b, 4, 0, NULL, NULL, 1, OFF1);
    header(&b, '2', 1, 2);
    block(&b, 8, 1, AT2, IDX2, 2, OFF);
    put(&b, "\n\n", 2);
    write_zone("Test/V2", b.b, b.n);
    cal = calendar_new("Test/V2", err, sizeof err);
    if (!cal)
        fail_msg("%s", err);
    assert_int_equal(offset_at(cal, -3000000000001LL), 3600);
    assert_int_equal(offset_at(cal, -3000000000000LL), 7200);
    assert_int_equal(offset_at(cal, 4000000000000LL), 7200);
    calendar_destroy(&cal);

    cal = calendar_new("UTC", err, sizeof err); /* built in: this TZDIR has no UTC file */
    assert_non_null(cal);
    assert_int_equal(offset_at(cal, 1000000000000LL), 0);
    calendar_destroy(&cal);
    assert_null(calendar_new("Etc/UTC", err, sizeof err));
}

typedef struct rule_case {
    const char *rule;
    char version;
    const char *when; /* UTC */
    int32_t off;
} rule_case_t;

/* Footer rules alone decide every offset here: the files have no transitions. */
static void test_tzif_rules(void **state)
{
    (void)state;
    static const rule_case_t C[] = {
        {"CET-1CEST,M3.5.0,M10.5.0/3", '2', "2026-03-29T00:59:59Z", 3600},
        {"CET-1CEST,M3.5.0,M10.5.0/3", '2', "2026-03-29T01:00:00Z", 7200},
        {"CET-1CEST,M3.5.0,M10.5.0/3", '2', "2026-10-25T00:59:59Z", 7200},
        {"CET-1CEST,M3.5.0,M10.5.0/3", '2', "2026-10-25T01:00:00Z", 3600},
        {"CET-1CEST,M3.5.0,M10.5.0/3", '2', "2026-12-31T23:30:00Z", 3600}, /* local date already next year */
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", '3', "2026-03-29T00:59:59Z", -7200}, /* version 3: negative time */
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", '3', "2026-03-29T01:00:00Z", -3600},
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", '3', "2026-10-25T01:00:00Z", -7200},
        {"XST-2XDT,J60,J300/3", '2', "2028-02-29T23:59:59Z", 7200}, /* J60 is March 1 even in a leap year */
        {"XST-2XDT,J60,J300/3", '2', "2028-03-01T00:00:00Z", 10800},
        {"XST-2XDT,J60,J300/3", '2', "2028-10-26T23:59:59Z", 10800}, /* J300: October 27 */
        {"XST-2XDT,J60,J300/3", '2', "2028-10-27T00:00:00Z", 7200},
        {"XST-2XDT,59,J300/3", '2', "2028-02-28T23:59:59Z", 7200}, /* zero-based 59: Feb 29 in a leap year */
        {"XST-2XDT,59,J300/3", '2', "2028-02-29T00:00:00Z", 10800},
        {"XST-2XDT,59,J300/3", '2', "2027-03-01T00:00:00Z", 10800}, /* and March 1 in another */
        {"AEST-10AEDT,M10.1.0,M4.1.0/3", '2', "2030-04-06T15:59:59Z", 39600}, /* southern hemisphere */
        {"AEST-10AEDT,M10.1.0,M4.1.0/3", '2', "2030-04-06T16:00:00Z", 36000},
        {"<+0545>-5:45", '2', "2030-01-01T00:00:00Z", 20700},
        {"EST5EDT", '2', "2026-03-08T07:00:00Z", -14400}, /* no dates: the US rules */
    };
    char err[256];
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        buf_t b = {.n = 0};
        footer_file(&b, C[i].version, 0, C[i].rule);
        write_zone("Test/Rule", b.b, b.n);
        calendar_t *cal = calendar_new("Test/Rule", err, sizeof err);
        if (!cal)
            fail_msg("%s: %s", C[i].rule, err);
        if (offset_at(cal, at(C[i].when)) != C[i].off)
            fail_msg("%s at %s: %d, want %d", C[i].rule, C[i].when, offset_at(cal, at(C[i].when)), C[i].off);
        calendar_destroy(&cal);
    }
}

static void test_tzif_corrupt(void **state)
{
    (void)state;
    static uint8_t paris[4096];
    FILE *f = fopen("/usr/share/zoneinfo/Europe/Paris", "rb");
    assert_non_null(f);
    size_t n = fread(paris, 1, sizeof paris, f);
    fclose(f);
    static const uint8_t magic[44] = "TZjf2";
    buf_t bad_idx = {.n = 0}, not_asc = {.n = 0}, bad_rule = {.n = 0}, v5 = {.n = 0};
    static const int64_t AT[] = {2000, 1000};
    static const uint8_t IDX_BAD[] = {0, 5}, IDX[] = {0, 0};
    static const int32_t OFF[] = {3600};
    header(&bad_idx, '\0', 2, 1);
    block(&bad_idx, 4, 2, (const int64_t[]){1000, 2000}, IDX_BAD, 1, OFF);
    header(&not_asc, '\0', 2, 1);
    block(&not_asc, 4, 2, AT, IDX, 1, OFF);
    footer_file(&bad_rule, '2', 3600, "CET-1CEST,M13.5.0,M10.5.0/3");
    footer_file(&v5, '5', 3600, "CET-1");
    const struct {
        const void *p;
        size_t n;
        const char *why;
    } C[] = {
        {paris, 0, "truncated TZif file (header needs 44 bytes, 0 left)"},
        {paris, 100, "truncated TZif file (version 1 block needs"},
        {paris, n - 200, "truncated TZif file (data block needs"},
        {paris, n - 1, "truncated TZif file (footer missing or unterminated)"},
        {magic, sizeof magic, "not a TZif file (bad magic)"},
        {v5.b, v5.n, "unsupported TZif version 0x35"},
        {bad_idx.b, bad_idx.n, "corrupt TZif file (transition 1: bad type index)"},
        {not_asc.b, not_asc.n, "corrupt TZif file (transition 1: times not ascending)"},
        {bad_rule.b, bad_rule.n, "bad POSIX TZ string \"CET-1CEST,M13.5.0,M10.5.0/3\""},
    };
    char err[256], want[256];
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        write_zone("Test/Bad", C[i].p, C[i].n);
        assert_null(calendar_new("Test/Bad", err, sizeof err));
        snprintf(want, sizeof want, "zone \"Test/Bad\": %s/Test/Bad: %s", tzdir, C[i].why);
        if (strncmp(err, want, strlen(want)) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, err, want);
    }
    write_zone("Test/Good", paris, n); /* the same bytes whole are a good zone */
    calendar_t *cal = calendar_new("Test/Good", err, sizeof err);
    assert_non_null(cal);
    assert_int_equal(offset_at(cal, at("2026-03-29T01:00:00Z")), 7200);
    calendar_destroy(&cal);
}

int main(void)
{
    unsetenv("TZDIR"); /* the system zones, at the path the messages name */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local),         cmocka_unit_test(test_open_at),
        cmocka_unit_test(test_dst_days),      cmocka_unit_test(test_next),
        cmocka_unit_test(test_horizon),       cmocka_unit_test(test_no_hours),
        cmocka_unit_test(test_add_business),  cmocka_unit_test(test_inverse),
        cmocka_unit_test(test_parse_hours),   cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_bad_zones),
        cmocka_unit_test_setup_teardown(test_tzif_v1, tzdir_setup, tzdir_teardown),
        cmocka_unit_test_setup_teardown(test_tzif_rules, tzdir_setup, tzdir_teardown),
        cmocka_unit_test_setup_teardown(test_tzif_corrupt, tzdir_setup, tzdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
