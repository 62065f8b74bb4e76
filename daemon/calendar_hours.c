/* See calendar.h: calendar_parse_hours(). A line is a day list then a list of spans:
 *     days  = item *( [ws] "," [ws] item ),  item = day [ "-" day ]   ("fri-mon" wraps over the weekend)
 *     spans = span *( [ws] "," [ws] span ),  span = HH:MM "-" HH:MM    (end before start: runs overnight)
 * A word is a run of characters other than blanks, commas and dashes, so an error can quote exactly the
 * part at fault. The whole line is checked before any hours are added: a bad line changes nothing. */
#include "calendar.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_SPANS 64

typedef struct parser {
    const char *line, *p;
    char *err;
    size_t errsz;
} parser_t;

typedef struct want {
    int start, end; /* minutes; end <= start means overnight */
} want_t;

static int fail(parser_t *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser_t *ps, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errsz, "\"%s\": %s", ps->line, why);
    return -1;
}

static void blanks(parser_t *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t')
        ps->p++;
}

/* The next word: its length (0 at a separator or the end). */
static size_t word(const parser_t *ps) { return strcspn(ps->p, " \t,-"); }

static int day(parser_t *ps, int *out)
{
    static const char *const names[7] = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"};
    size_t n = word(ps);
    if (n == 0)
        return *ps->p ? fail(ps, "expected a day at \"%s\"", ps->p) : fail(ps, "missing day");
    for (int i = 0; i < 7; i++)
        if ((n == 3 || n == strlen(names[i])) && strncasecmp(ps->p, names[i], n) == 0) {
            *out = i;
            ps->p += n;
            return 0;
        }
    if (isdigit((unsigned char)*ps->p))
        return fail(ps, "expected days (\"mon-fri\") before \"%.*s\"", (int)n, ps->p);
    return fail(ps, "unknown day \"%.*s\"", (int)n, ps->p);
}

/* HH:MM, 00:00 to 24:00; 24:00 only as an end. */
static int hhmm(parser_t *ps, bool is_end, int *out)
{
    size_t n = word(ps);
    const char *w = ps->p;
    int h = -1, m = -1;
    if (n == 0)
        return *ps->p ? fail(ps, "expected a time at \"%s\"", ps->p) : fail(ps, "missing time");
    if ((n == 4 || n == 5) && w[n - 3] == ':' && isdigit((unsigned char)w[0]) && isdigit((unsigned char)w[n - 4]) &&
        isdigit((unsigned char)w[n - 2]) && isdigit((unsigned char)w[n - 1])) {
        h = n == 5 ? (w[0] - '0') * 10 + (w[1] - '0') : w[0] - '0';
        m = (w[n - 2] - '0') * 10 + (w[n - 1] - '0');
    }
    if (h < 0 || h > 24 || m > 59 || (h == 24 && m != 0))
        return fail(ps, "\"%.*s\" is not a time (HH:MM, 00:00 to 24:00)", (int)n, w);
    if (h == 24 && !is_end)
        return fail(ps, "\"%.*s\" cannot start a span", (int)n, w);
    *out = h * 60 + m;
    ps->p += n;
    return 0;
}

/* A separator "," with optional blanks around it; true when one was taken. */
static bool comma(parser_t *ps)
{
    const char *save = ps->p;
    blanks(ps);
    if (*ps->p == ',') {
        ps->p++;
        blanks(ps);
        return true;
    }
    ps->p = save;
    return false;
}

static int days(parser_t *ps, bool set[7])
{
    do {
        int a, b;
        if (day(ps, &a) < 0)
            return -1;
        b = a;
        if (*ps->p == '-') {
            ps->p++;
            if (day(ps, &b) < 0)
                return -1;
        }
        for (int d = a;; d = (d + 1) % 7) { /* "fri-mon" runs fri, sat, sun, mon */
            set[d] = true;
            if (d == b)
                break;
        }
    } while (comma(ps));
    return 0;
}

static int spans(parser_t *ps, want_t *v, size_t *n)
{
    do {
        const char *at = ps->p;
        if (*n == MAX_SPANS)
            return fail(ps, "more than %d spans", MAX_SPANS);
        if (hhmm(ps, false, &v[*n].start) < 0)
            return -1;
        if (*ps->p != '-')
            return fail(ps, "\"%.*s\" needs an end (\"09:00-18:00\")", (int)(ps->p - at), at);
        ps->p++;
        if (hhmm(ps, true, &v[*n].end) < 0)
            return -1;
        if (v[*n].start == v[*n].end)
            return fail(ps, "\"%.*s\" is empty (start equals end)", (int)(ps->p - at), at);
        (*n)++;
    } while (comma(ps));
    return 0;
}

int calendar_parse_hours(calendar_t *cal, const char *line, char *err, size_t errsz)
{
    parser_t ps = {line ? line : "", line ? line : "", err, errsz};
    bool set[7] = {false};
    want_t v[MAX_SPANS];
    size_t n = 0;
    blanks(&ps);
    if (!*ps.p)
        return fail(&ps, "empty hours line");
    if (days(&ps, set) < 0)
        return -1;
    const char *after_days = ps.p;
    blanks(&ps);
    if (!*ps.p)
        return fail(&ps, "missing opening times after \"%.*s\"", (int)(after_days - line), line);
    if (ps.p == after_days)
        return fail(&ps, "unexpected \"%s\"", ps.p);
    if (spans(&ps, v, &n) < 0)
        return -1;
    blanks(&ps);
    if (*ps.p)
        return fail(&ps, "unexpected \"%s\"", ps.p);
    for (int d = 0; d < 7; d++)
        for (size_t i = 0; set[d] && i < n; i++) {
            if (v[i].start < v[i].end) {
                calendar_add_hours(cal, d, v[i].start, v[i].end);
                continue;
            }
            calendar_add_hours(cal, d, v[i].start, 1440); /* overnight: the rest runs into the next day */
            if (v[i].end > 0)
                calendar_add_hours(cal, (d + 1) % 7, 0, v[i].end);
        }
    return 0;
}
