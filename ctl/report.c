/* omnictl report: the SLA report (docs/routing.md "SLA reports"). The scripts count, per UTC day, team and
 * channel, first responses (met, breached, their total time) and resolutions (first contact or not) in
 * omni:report:<day> (_report.lua); this sums the days asked for and prints one row per team and channel, and
 * the totals, as a table or as JSON. */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "omni/util.h"

#define REPORT_DAYS_MAX 400 /* what Redis keeps (_report.lua's REPORT_KEEP_S) */

enum { C_RESPONDED, C_RESPONSE_MS, C_MET, C_BREACHED, C_RESOLVED, C_FIRST_CONTACT, COUNTERS };
static const char *const counter_names[COUNTERS] = { "responded", "response_ms", "met", "breached", "resolved",
                                                     "first_contact" };

typedef struct row {
    char team[80], channel[80];
    long long n[COUNTERS];
} row_t;

/* "YYYY-MM-DD" -> days since the epoch (negative before 1970); NO_DAY when it is not a real date (digits
 * exactly where the form has them: sscanf alone takes " 2026-12-1" and "+026-12-01"). */
#define NO_DAY LLONG_MIN
static long long parse_day(const char *s)
{
    int y, m, d;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return NO_DAY;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return NO_DAY;
    if (sscanf(s, "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
        return NO_DAY;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12 };
    time_t t = timegm(&tm);
    struct tm back;
    gmtime_r(&t, &back);
    if (back.tm_mday != d || back.tm_mon != m - 1) /* 2026-02-30 */
        return NO_DAY;
    return ((long long)t - 12 * 3600) / 86400; /* exact: also before 1970, where '/' would round up */
}

static void format_day(long long day, char out[11])
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

static row_t *row_of(row_t **rows, size_t *n, const char *team, size_t tlen, const char *channel, size_t clen)
{
    for (size_t i = 0; i < *n; i++)
        if (strlen((*rows)[i].team) == tlen && !strncmp((*rows)[i].team, team, tlen) &&
            strlen((*rows)[i].channel) == clen && !strncmp((*rows)[i].channel, channel, clen))
            return &(*rows)[i];
    *rows = omni_realloc(*rows, (*n + 1) * sizeof **rows);
    row_t *r = &(*rows)[(*n)++];
    memset(r, 0, sizeof *r);
    snprintf(r->team, sizeof r->team, "%.*s", (int)tlen, team);
    snprintf(r->channel, sizeof r->channel, "%.*s", (int)clen, channel);
    return r;
}

static int by_team_channel(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    int c = strcmp(x->team, y->team);
    return c ? c : strcmp(x->channel, y->channel);
}

static void percent(char *out, size_t outsz, long long part, long long whole)
{
    if (whole > 0)
        snprintf(out, outsz, "%.1f%%", 100.0 * (double)part / (double)whole);
    else
        snprintf(out, outsz, "-");
}

/* "1h02m", "14m20s", "45s": a mean first-response time. */
static void span(char *out, size_t outsz, long long ms, long long count)
{
    if (count <= 0) {
        snprintf(out, outsz, "-");
        return;
    }
    long long s = (ms / count + 500) / 1000;
    if (s >= 3600)
        snprintf(out, outsz, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, outsz, "%lldm%02llds", s / 60, s % 60);
    else
        snprintf(out, outsz, "%llds", s);
}

static void print_row(const row_t *r)
{
    char met[16], fcr[16], mean[24];
    percent(met, sizeof met, r->n[C_MET], r->n[C_MET] + r->n[C_BREACHED]);
    percent(fcr, sizeof fcr, r->n[C_FIRST_CONTACT], r->n[C_RESOLVED]);
    span(mean, sizeof mean, r->n[C_RESPONSE_MS], r->n[C_RESPONDED]);
    printf("%-16s %-12s %9lld %6lld %8lld %7s %13s %8lld %13lld %7s\n", r->team, r->channel, r->n[C_RESPONDED],
           r->n[C_MET], r->n[C_BREACHED], met, mean, r->n[C_RESOLVED], r->n[C_FIRST_CONTACT], fcr);
}

static json_t *json_row(const row_t *r)
{
    json_t *o = json_pack("{s:s, s:s}", "team", r->team, "channel", r->channel);
    for (int k = 0; k < COUNTERS; k++)
        json_object_set_new(o, counter_names[k], json_integer(r->n[k]));
    return o;
}

static int usage(void)
{
    fprintf(stderr, "omnictl: report [--json] [--days N | FROM [TO]]   (days YYYY-MM-DD, UTC; N 1..%d)\n",
            REPORT_DAYS_MAX);
    return 2;
}

int ctl_report(ctl_t *c, int argc, char **argv)
{
    bool json = false;
    long long days = 7, from = -1, to = -1;
    const char *pos[2];
    int npos = 0;
    bool days_given = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--days") && i + 1 < argc) {
            char *end;
            days = strtoll(argv[++i], &end, 10);
            if (*end || days < 1 || days > REPORT_DAYS_MAX)
                return usage();
            days_given = true;
        } else if (argv[i][0] != '-' && npos < 2) {
            pos[npos++] = argv[i];
        } else {
            return usage();
        }
    }
    if (days_given && npos > 0) /* --days N or FROM [TO], not both: which one was meant? */
        return usage();
    long long today = (long long)(ctl_now(c) / 86400000);
    if (npos > 0) {
        from = parse_day(pos[0]);
        to = npos == 2 ? parse_day(pos[1]) : today;
        if (from == NO_DAY || to == NO_DAY) {
            fprintf(stderr, "omnictl: report: \"%s\" is not a day (YYYY-MM-DD)\n", from == NO_DAY ? pos[0] : pos[1]);
            return 2;
        }
        if (to < from || to - from >= REPORT_DAYS_MAX) {
            fprintf(stderr, "omnictl: report: from %s to %s is not 1..%d days\n", pos[0], npos == 2 ? pos[1] : "today",
                    REPORT_DAYS_MAX);
            return 2;
        }
    } else {
        to = today, from = today - days + 1;
    }
    row_t *rows = NULL;
    size_t n = 0;
    for (long long day = from; day <= to; day++) {
        char d[11];
        format_day(day, d);
        redisReply *h = ctl_cmd(c, "HGETALL %s" KEY_REPORT, c->prefix, d);
        for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
            /* <team>|<channel>|<counter>: team and channel names never hold '|' */
            const char *f = h->element[i]->str, *a = strchr(f, '|'), *b = a ? strchr(a + 1, '|') : NULL;
            if (b == NULL)
                continue;
            for (int k = 0; k < COUNTERS; k++)
                if (!strcmp(b + 1, counter_names[k]))
                    row_of(&rows, &n, f, (size_t)(a - f), a + 1, (size_t)(b - a - 1))->n[k] +=
                        strtoll(h->element[i + 1]->str, NULL, 10);
        }
        freeReplyObject(h);
    }
    if (n > 1)
        qsort(rows, n, sizeof *rows, by_team_channel);
    row_t all = { .team = "(all)", .channel = "(all)" };
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < COUNTERS; k++)
            all.n[k] += rows[i].n[k];
    char f1[11], f2[11];
    format_day(from, f1);
    format_day(to, f2);
    if (json) {
        json_t *list = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(list, json_row(&rows[i]));
        json_t *doc = json_pack("{s:s, s:s, s:o, s:o}", "from", f1, "to", f2, "rows", list, "total", json_row(&all));
        char *text = json_dumps(doc, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        json_decref(doc);
    } else {
        printf("SLA report %s .. %s (UTC days)\n", f1, f2);
        printf("%-16s %-12s %9s %6s %8s %7s %13s %8s %13s %7s\n", "team", "channel", "responded", "met", "breached",
               "in SLA", "mean response", "resolved", "first contact", "FCR");
        for (size_t i = 0; i < n; i++)
            print_row(&rows[i]);
        print_row(&all);
    }
    free(rows);
    return 0;
}
