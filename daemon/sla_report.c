/* The SLA report's sums (sla_report.h). */
#include "sla_report.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "omni/util.h"

const char *const sla_counter_names[SLA_COUNTERS] = {
    "responded", "response_ms", "met", "breached", "resolved", "first_contact", "csat", "csat_sum", "csat_satisfied",
    "ces", "ces_sum", "nps", "nps_promoters", "nps_detractors"
};

long long sla_report_day(const char *s)
{
    int y, m, d;
    /* digits exactly where the form has them: sscanf alone takes " 2026-12-1" and "+026-12-01" */
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return SLA_REPORT_NO_DAY;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return SLA_REPORT_NO_DAY;
    if (sscanf(s, "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
        return SLA_REPORT_NO_DAY;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12 };
    time_t t = timegm(&tm);
    struct tm back;
    gmtime_r(&t, &back);
    if (back.tm_mday != d || back.tm_mon != m - 1) /* 2026-02-30 */
        return SLA_REPORT_NO_DAY;
    return ((long long)t - 12 * 3600) / 86400; /* exact: also before 1970, where '/' would round up */
}

void sla_report_day_text(long long day, char out[11])
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

int sla_report_range(sla_report_t *r, const char *from, const char *to, long long days, long long today, char *why,
                     size_t whysz)
{
    memset(r, 0, sizeof *r);
    snprintf(r->total.team, sizeof r->total.team, "(all)");
    snprintf(r->total.channel, sizeof r->total.channel, "(all)");
    if (days > 0 && (from || to)) { /* which one was meant? */
        snprintf(why, whysz, "give the last N days or FROM [TO], not both");
        return -1;
    }
    if (!from && to) {
        snprintf(why, whysz, "TO needs FROM");
        return -1;
    }
    if (!from) {
        if (days <= 0)
            days = 7;
        if (days > SLA_REPORT_DAYS_MAX) {
            snprintf(why, whysz, "%lld days: at most %d", days, SLA_REPORT_DAYS_MAX);
            return -1;
        }
        r->to = today, r->from = today - days + 1;
        return 0;
    }
    r->from = sla_report_day(from);
    r->to = to ? sla_report_day(to) : today;
    if (r->from == SLA_REPORT_NO_DAY || r->to == SLA_REPORT_NO_DAY) {
        snprintf(why, whysz, "\"%s\" is not a day (YYYY-MM-DD)", r->from == SLA_REPORT_NO_DAY ? from : to);
        return -1;
    }
    if (r->to < r->from || r->to - r->from >= SLA_REPORT_DAYS_MAX) {
        snprintf(why, whysz, "from %s to %s is not 1..%d days", from, to ? to : "today", SLA_REPORT_DAYS_MAX);
        return -1;
    }
    return 0;
}

static sla_row_t *row_of(sla_report_t *r, const char *team, size_t tlen, const char *channel, size_t clen)
{
    for (size_t i = 0; i < r->n; i++)
        if (strlen(r->rows[i].team) == tlen && !strncmp(r->rows[i].team, team, tlen) &&
            strlen(r->rows[i].channel) == clen && !strncmp(r->rows[i].channel, channel, clen))
            return &r->rows[i];
    r->rows = omni_realloc(r->rows, (r->n + 1) * sizeof *r->rows);
    sla_row_t *row = &r->rows[r->n++];
    memset(row, 0, sizeof *row);
    snprintf(row->team, sizeof row->team, "%.*s", (int)tlen, team);
    snprintf(row->channel, sizeof row->channel, "%.*s", (int)clen, channel);
    return row;
}

void sla_report_add(sla_report_t *r, const redisReply *h)
{
    for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        /* <team>|<channel>|<counter>: team and channel names never hold '|' */
        const char *f = h->element[i]->str, *a = f ? strchr(f, '|') : NULL, *b = a ? strchr(a + 1, '|') : NULL;
        if (b == NULL || h->element[i + 1]->str == NULL)
            continue;
        for (int k = 0; k < SLA_COUNTERS; k++)
            if (!strcmp(b + 1, sla_counter_names[k]))
                row_of(r, f, (size_t)(a - f), a + 1, (size_t)(b - a - 1))->n[k] +=
                    strtoll(h->element[i + 1]->str, NULL, 10);
    }
}

static int by_team_channel(const void *a, const void *b)
{
    const sla_row_t *x = a, *y = b;
    int c = strcmp(x->team, y->team);
    return c ? c : strcmp(x->channel, y->channel);
}

void sla_report_finish(sla_report_t *r)
{
    if (r->n > 1)
        qsort(r->rows, r->n, sizeof *r->rows, by_team_channel);
    for (size_t i = 0; i < r->n; i++)
        for (int k = 0; k < SLA_COUNTERS; k++)
            r->total.n[k] += r->rows[i].n[k];
}

static json_t *json_row(const sla_row_t *row)
{
    json_t *o = json_pack("{s:s, s:s}", "team", row->team, "channel", row->channel);
    for (int k = 0; k < SLA_COUNTERS; k++)
        json_object_set_new(o, sla_counter_names[k], json_integer(row->n[k]));
    return o;
}

json_t *sla_report_json(const sla_report_t *r)
{
    char f[11], t[11];
    sla_report_day_text(r->from, f);
    sla_report_day_text(r->to, t);
    json_t *list = json_array();
    for (size_t i = 0; i < r->n; i++)
        json_array_append_new(list, json_row(&r->rows[i]));
    return json_pack("{s:s, s:s, s:o, s:o}", "from", f, "to", t, "rows", list, "total", json_row(&r->total));
}

void sla_report_clear(sla_report_t *r)
{
    free(r->rows);
    r->rows = NULL;
    r->n = 0;
}
