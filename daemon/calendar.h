/* Business calendars: a time zone (IANA, read from the system's zoneinfo), weekly opening hours and
 * holidays. Answers "is it open at t", "when does it next open", and business-time arithmetic for SLA
 * clocks counted in business hours. All times are wall-clock ms since the epoch (UTC); weekday and
 * hour logic happens in the calendar's own zone, DST included. No process-global TZ is touched. */
#ifndef OMNI_DAEMON_CALENDAR_H
#define OMNI_DAEMON_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct calendar calendar_t;

/* Local broken-down time in a calendar's zone. */
typedef struct cal_local {
    int year, month, day;  /* 2026, 1..12, 1..31 */
    int weekday;           /* 0 = Monday .. 6 = Sunday */
    int minute_of_day;     /* 0..1439 */
    int second;            /* 0..59 */
    int utc_offset_s;      /* local - UTC */
} cal_local_t;

/* tz: an IANA zone name ("Europe/Paris", "UTC", "America/New_York"), read from /usr/share/zoneinfo (or
 * $TZDIR). Returns NULL with the reason in err. The new calendar has no opening hours: it is never open
 * until calendar_add_hours() or calendar_parse_hours() is called. Caller owns it. */
calendar_t *calendar_new(const char *tz, char *err, size_t errsz);
void calendar_destroy(calendar_t **cal);

/* Opens the calendar on a weekday (0 = Monday) from start_min to end_min (minutes after local midnight,
 * 0 <= start < end <= 1440). Spans may overlap; a span ending at 1440 joins the next day's span at 0. */
int calendar_add_hours(calendar_t *cal, int weekday, int start_min, int end_min);
/* Parses one hours line: "mon-fri 09:00-18:00", "sat 10:00-14:00, 15:00-17:00", "mon-sun 00:00-24:00",
 * "sun,wed 08:00-12:00", and overnight spans "mon-fri 22:00-06:00" (runs into the next day). Returns 0, or
 * -1 with the reason in err naming the offending part. */
int calendar_parse_hours(calendar_t *cal, const char *line, char *err, size_t errsz);
/* A holiday "YYYY-MM-DD" (local date): closed all that day. Returns 0 or -1 with err. */
int calendar_add_holiday(calendar_t *cal, const char *date, char *err, size_t errsz);

/* Local time of t in the calendar's zone. */
void calendar_local(const calendar_t *cal, int64_t t, cal_local_t *out);
bool calendar_open_at(const calendar_t *cal, int64_t t);
/* The first instant >= t at which it is open; -1 when it never opens (no hours, or none within 400 days). */
int64_t calendar_next_open(const calendar_t *cal, int64_t t);
/* The first instant >= t at which it is closed; -1 when it is never closed (open around the clock, no holidays
 * within 400 days). */
int64_t calendar_next_close(const calendar_t *cal, int64_t t);
/* The instant at which `business_ms` of open time has passed since `start` (open time only counts). -1 when
 * it never opens. business_ms 0 gives calendar_next_open(start). */
int64_t calendar_add_business(const calendar_t *cal, int64_t start, int64_t business_ms);
/* Open time between a and b (0 when b <= a). */
int64_t calendar_business_between(const calendar_t *cal, int64_t a, int64_t b);
/* The zone name it was made with (borrowed). */
const char *calendar_zone(const calendar_t *cal);
/* "Mon" .. "Sun" for weekday 0 (Monday) .. 6 (static). */
const char *calendar_day_name(int weekday);
/* t as a person reads it in the calendar's zone: "Mon 09:00 Europe/Paris", or with the local date
 * ("Mon 2027-01-04 09:00 Europe/Paris") when with_date. */
void calendar_describe(const calendar_t *cal, int64_t t, bool with_date, char *buf, size_t bufsz);

#endif
