/* Private to the business calendar (calendar*.c): IANA time zones read from TZif files (RFC 8536,
 * versions 1 to 3, and 4 which only adds leap-second table rules we refuse anyway), the POSIX TZ rule
 * strings that extend them past their last transition, and the proleptic Gregorian date arithmetic both
 * need. Nothing here reads or sets the process-global TZ; all times are UTC seconds since the epoch. */
#ifndef OMNI_DAEMON_CALENDAR_TZ_H
#define OMNI_DAEMON_CALENDAR_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "No later change": the until of an offset that holds forever. */
#define TZ_NEVER INT64_MAX

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31), and back. */
int64_t tz_days_from_civil(int64_t y, int m, int d);
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
int tz_month_days(int64_t y, int m);
/* a / b rounded toward minus infinity (b > 0), so times before 1970 land on the right day. */
int64_t tz_floordiv(int64_t a, int64_t b);

/* One end of a daylight-saving period in a POSIX TZ rule: "Jn", "n" or "Mm.w.d", then "/time". */
typedef struct tz_rule_date {
    char kind;    /* 'J' (1..365, no Feb 29), 'D' (0..365, Feb 29 counted), 'M' */
    int n;        /* for J and D */
    int m, w, d;  /* for M: month 1..12, week 1..5 (5 = last), weekday 0 = Sunday */
    int32_t secs; /* local time of day, -167 h .. 167 h (RFC 8536 version 3) */
} tz_rule_date_t;

/* A parsed POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3" (offsets stored as local - UTC). */
typedef struct tz_rule {
    int32_t std_off, dst_off;
    bool has_dst;
    tz_rule_date_t start, end; /* start is in standard time, end in daylight time */
} tz_rule_t;

/* Parses s (borrowed) into *out. Returns 0, or -1 with the reason in err. */
int tz_rule_parse(const char *s, tz_rule_t *out, char *err, size_t errsz);
/* The offset (local - UTC, seconds) in effect at UTC second t; *until gets the next UTC second at which
 * it may change (TZ_NEVER when it never does). */
int32_t tz_rule_offset(const tz_rule_t *r, int64_t t, int64_t *until);

typedef struct tz_zone tz_zone_t;

/* Loads zone name (borrowed) from $TZDIR or /usr/share/zoneinfo. "UTC" is built in and needs no file.
 * Returns NULL with the reason in err. Caller owns the zone. */
tz_zone_t *tz_zone_load(const char *name, char *err, size_t errsz);
/* Parses a TZif image buf[0..len) (borrowed). Returns NULL with the reason in err. Caller owns the zone. */
tz_zone_t *tz_zone_parse(const uint8_t *buf, size_t len, char *err, size_t errsz);
void tz_zone_destroy(tz_zone_t **z);
/* As tz_rule_offset(), for the zone's whole history. */
int32_t tz_zone_offset(const tz_zone_t *z, int64_t t, int64_t *until);

#endif
