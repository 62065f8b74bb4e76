/* omnictl report: the SLA report (docs/routing.md "SLA reports"): the days asked for summed by sla_report.c
 * (shared with omni-api's GET /v1/report), printed as a table, one row per team and channel and the totals, or
 * as the same JSON the API answers. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "sla_report.h"

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

/* The surveys' figures: CSAT as the share of 4s and 5s, CES as the mean score, NPS as promoters' share less
 * detractors' (-100..100); "-" when no answer was recorded. */
static void surveys(const sla_row_t *r, char *csat, char *ces, char *nps, size_t sz)
{
    percent(csat, sz, r->n[SLA_CSAT_SATISFIED], r->n[SLA_CSAT]);
    if (r->n[SLA_CES] > 0)
        snprintf(ces, sz, "%.1f", (double)r->n[SLA_CES_SUM] / (double)r->n[SLA_CES]);
    else
        snprintf(ces, sz, "-");
    /* a whole number, rounded half away from zero, so that a score just under 0 reads "+0", never "-0" */
    if (r->n[SLA_NPS] > 0)
        snprintf(nps, sz, "%+ld", lround(100.0 * (double)(r->n[SLA_NPS_PROMOTERS] - r->n[SLA_NPS_DETRACTORS]) /
                                         (double)r->n[SLA_NPS]));
    else
        snprintf(nps, sz, "-");
}

static void print_row(const sla_row_t *r)
{
    char met[16], fcr[16], mean[24], csat[16], ces[16], nps[16];
    percent(met, sizeof met, r->n[SLA_MET], r->n[SLA_MET] + r->n[SLA_BREACHED]);
    percent(fcr, sizeof fcr, r->n[SLA_FIRST_CONTACT], r->n[SLA_RESOLVED]);
    span(mean, sizeof mean, r->n[SLA_RESPONSE_MS], r->n[SLA_RESPONDED]);
    surveys(r, csat, ces, nps, sizeof csat);
    printf("%-16s %-12s %9lld %6lld %8lld %7s %13s %8lld %13lld %7s %7s %4s %4s\n", r->team, r->channel,
           r->n[SLA_RESPONDED], r->n[SLA_MET], r->n[SLA_BREACHED], met, mean, r->n[SLA_RESOLVED],
           r->n[SLA_FIRST_CONTACT], fcr, csat, ces, nps);
}

static int usage(void)
{
    fprintf(stderr, "omnictl: report [--json] [--days N | FROM [TO]]   (days YYYY-MM-DD, UTC; N 1..%d)\n",
            SLA_REPORT_DAYS_MAX);
    return 2;
}

int ctl_report(ctl_t *c, int argc, char **argv)
{
    bool json = false;
    long long days = 0;
    const char *pos[2] = { NULL, NULL };
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            if (json) /* an option given twice is a mistake, said as one (omnictl(1)) */
                return usage();
            json = true;
        } else if (!strcmp(argv[i], "--days") && i + 1 < argc) {
            if (days > 0)
                return usage();
            char *end;
            days = strtoll(argv[++i], &end, 10);
            if (*end || days < 1 || days > SLA_REPORT_DAYS_MAX)
                return usage();
        } else if (argv[i][0] != '-' && npos < 2) {
            pos[npos++] = argv[i];
        } else {
            return usage();
        }
    }
    if (days > 0 && npos > 0) /* --days N or FROM [TO], not both: which one was meant? */
        return usage();
    sla_report_t r;
    char why[200];
    if (sla_report_range(&r, pos[0], pos[1], days, ctl_now(c) / 86400000, why, sizeof why) != 0) {
        fprintf(stderr, "omnictl: report: %s\n", why);
        return 2;
    }
    for (long long day = r.from; day <= r.to; day++) {
        char d[11];
        sla_report_day_text(day, d);
        redisReply *h = ctl_cmd(c, "HGETALL %s" KEY_REPORT, c->prefix, d);
        if (h->type == REDIS_REPLY_ERROR) { /* not a hash: a broken store, said rather than left out */
            fprintf(stderr, "omnictl: report: %s" KEY_REPORT ": %s\n", c->prefix, d, h->str);
            freeReplyObject(h);
            sla_report_clear(&r);
            return 1;
        }
        sla_report_add(&r, h);
        freeReplyObject(h);
    }
    sla_report_finish(&r);
    if (json) {
        json_t *doc = sla_report_json(&r);
        char *text = json_dumps(doc, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        json_decref(doc);
    } else {
        char f[11], t[11];
        sla_report_day_text(r.from, f);
        sla_report_day_text(r.to, t);
        printf("SLA report %s .. %s (UTC days)\n", f, t);
        printf("%-16s %-12s %9s %6s %8s %7s %13s %8s %13s %7s %7s %4s %4s\n", "team", "channel", "responded", "met",
               "breached", "in SLA", "mean response", "resolved", "first contact", "FCR", "CSAT", "CES", "NPS");
        for (size_t i = 0; i < r.n; i++)
            print_row(&r.rows[i]);
        print_row(&r.total);
    }
    sla_report_clear(&r);
    return 0;
}
