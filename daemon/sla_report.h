/* The SLA report's sums (docs/routing.md "SLA reports", "Surveys"): the scripts count per UTC day, team and channel in
 * omni:report:<day> (_report.lua); this reads those days' hashes into one row per team and channel, for
 * omnictl report and omni-api's GET /v1/report, which both print what it makes. */
#ifndef OMNI_DAEMON_SLA_REPORT_H
#define OMNI_DAEMON_SLA_REPORT_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <limits.h>
#include <stddef.h>

#define SLA_REPORT_DAYS_MAX 400 /* what Redis keeps (_report.lua's REPORT_KEEP_S) */
#define SLA_REPORT_NO_DAY LLONG_MIN

/* the survey's counters (survey.lua): scores recorded, their sums, CSAT 4-5, NPS 9-10 and 0-6 */
enum { SLA_RESPONDED, SLA_RESPONSE_MS, SLA_MET, SLA_BREACHED, SLA_RESOLVED, SLA_FIRST_CONTACT, SLA_CSAT, SLA_CSAT_SUM,
       SLA_CSAT_SATISFIED, SLA_CES, SLA_CES_SUM, SLA_NPS, SLA_NPS_PROMOTERS, SLA_NPS_DETRACTORS, SLA_COUNTERS };
extern const char *const sla_counter_names[SLA_COUNTERS]; /* as the hashes and the JSON name them */

typedef struct sla_row {
    char team[80], channel[80];
    long long n[SLA_COUNTERS];
} sla_row_t;

typedef struct sla_report {
    long long from, to; /* days since the epoch, UTC */
    sla_row_t *rows;    /* by team, then channel (after sla_report_sort) */
    size_t n;
    sla_row_t total;    /* team and channel "(all)" */
} sla_report_t;

/* "YYYY-MM-DD" (digits exactly where the form has them, a real date) -> days since the epoch (negative before
 * 1970), or SLA_REPORT_NO_DAY. */
long long sla_report_day(const char *text);
/* The day as "YYYY-MM-DD" into out. */
void sla_report_day_text(long long day, char out[11]);

/* Which days: from/to as given (NULL: none), or the last `days` up to today (days since the epoch). Returns 0,
 * or -1 with a sentence in why: a day that is not one, TO before FROM, more than SLA_REPORT_DAYS_MAX days, days
 * given with FROM. days <= 0: not given (7). */
int sla_report_range(sla_report_t *r, const char *from, const char *to, long long days, long long today, char *why,
                     size_t whysz);
/* Adds one day's HGETALL reply (borrowed; fields <team>|<channel>|<counter>, others ignored). */
void sla_report_add(sla_report_t *r, const redisReply *day);
/* Sorts the rows and sums the total. */
void sla_report_finish(sla_report_t *r);
/* {"from", "to", "rows": [{"team", "channel", counters...}], "total": {...}}: a new object. */
json_t *sla_report_json(const sla_report_t *r);
/* Frees the rows; r itself is the caller's. */
void sla_report_clear(sla_report_t *r);

#endif
