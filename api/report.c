/* GET /v1/report: the SLA report for operators (docs/api.md "Report"): the days asked for, summed by
 * sla_report.c as omnictl report sums them, answered as the same JSON. The query takes `days` (the last N UTC
 * days, today the last) or `from` and optionally `to` (YYYY-MM-DD); nothing else, each at most once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "sla_report.h"

void api_report(api_req_t *req)
{
    if (req->caller.kind != CALLER_OPERATOR)
        return api_fail(req, 404, "not_found", NULL, "the report is for operators; this token is %s",
                        req->caller.subject);
    const char *key;
    json_t *v;
    json_object_foreach(req->query, key, v) {
        if (strcmp(key, "days") && strcmp(key, "from") && strcmp(key, "to"))
            return api_fail(req, 400, "unknown_field", key, "the report takes days, or from and to; not \"%.64s\"",
                            key);
        if (json_is_null(v))
            return api_fail(req, 400, "invalid_field", key, "%s is given more than once", key);
    }
    const char *days_s = json_string_value(json_object_get(req->query, "days"));
    long long days = 0;
    if (days_s) {
        char *end;
        days = strtoll(days_s, &end, 10);
        /* digits only (docs/openapi.yaml's pattern): strtoll alone would take " 5" and "+5" */
        if (!*days_s || strspn(days_s, "0123456789") != strlen(days_s) || *end || days < 1 ||
            days > SLA_REPORT_DAYS_MAX)
            return api_fail(req, 400, "invalid_field", "days", "days is 1..%d, not \"%.40s\"", SLA_REPORT_DAYS_MAX,
                            days_s);
    }
    int64_t now;
    if (api_now(req, &now) != 0)
        return;
    sla_report_t r;
    char why[200];
    const char *from = json_string_value(json_object_get(req->query, "from")),
               *to = json_string_value(json_object_get(req->query, "to"));
    if (sla_report_range(&r, from, to, days, now / 86400000, why, sizeof why) != 0) {
        const char *field = days_s ? "days" : !from ? "to" : sla_report_day(from) == SLA_REPORT_NO_DAY ? "from" : "to";
        return api_fail(req, 400, "invalid_field", field, "%s", why);
    }
    for (long long day = r.from; day <= r.to; day++) {
        char d[11];
        sla_report_day_text(day, d);
        redisReply *h = api_cmd(req, "HGETALL %s" KEY_REPORT, req->cfg->redis.key_prefix, d);
        if (!h || h->type == REDIS_REPLY_ERROR) { /* Redis failed: the 503 is set; or the key is not a hash */
            if (h)
                api_fail(req, 500, "internal", NULL, "%s" KEY_REPORT ": %s", req->cfg->redis.key_prefix, d, h->str);
            freeReplyObject(h);
            sla_report_clear(&r);
            return;
        }
        sla_report_add(&r, h);
        freeReplyObject(h);
    }
    sla_report_finish(&r);
    api_answer(req, 200, sla_report_json(&r));
    sla_report_clear(&r);
}
