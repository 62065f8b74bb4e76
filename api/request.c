/* See request.h. Nothing here allocates but api_body's JSON, so a hostile request costs no more than its
 * bytes (the server caps those: limits.body_bytes, and MHD's header memory). */
#include "request.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "omni/token.h"
#include "survey.h"

int api_error_set(api_error_t *err, unsigned status, const char *code, const char *field, const char *fmt, ...)
{
    err->status = status;
    err->code = code;
    err->field = field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* A conversation id: the decimal numbers the router gives (1..20 digits, no leading zero). */
static bool conversation_id(const char *s, size_t n)
{
    if (n == 0 || n > 20 || s[0] == '0')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* An agent id as the policy writes it: 1..64 of a-z, 0-9, '.', '_', '-'. */
static bool agent_id(const char *s, size_t n)
{
    if (n == 0 || n > API_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789._-", s[i]) || s[i] == 0)
            return false;
    return true;
}

static const struct {
    const char *verb;
    api_route_t route;
} VERBS[] = {
    { "accept", ROUTE_ACCEPT }, { "reject", ROUTE_REJECT }, { "respond", ROUTE_RESPOND },
    { "resolve", ROUTE_RESOLVE }, { "transfer", ROUTE_TRANSFER }, { "survey", ROUTE_SURVEY },
};

static int method_is(const char *method, const char *allow, api_path_t *out, api_error_t *err)
{
    out->allow = allow;
    /* allow is "GET", "PUT", "POST", "GET, PUT" or "GET, HEAD" (the console's files; the API serves no HEAD) */
    size_t n = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return 0;
    return api_error_set(err, 405, "method_not_allowed", NULL, "%s is not served on this path (it takes %s)",
                         method, allow);
}

bool api_console_name(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= API_ID_MAX && s[0] != '.' &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

int api_route(const char *method, const char *url, api_path_t *out, api_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (!strcmp(url, "/healthz"))
        return out->route = ROUTE_HEALTHZ, method_is(method, "GET", out, err);
    if (!strcmp(url, "/console")) /* HEAD too: the files are plain web content (MHD sends no body for it) */
        return out->route = ROUTE_CONSOLE_ROOT, method_is(method, "GET, HEAD", out, err);
    if (!strncmp(url, "/console/", 9)) {
        const char *name = url[9] ? url + 9 : "index.html";
        if (!api_console_name(name)) /* a '/', "..", a hidden file: nothing the console has */
            return api_error_set(err, 404, "not_found", NULL, "no such file in the console");
        snprintf(out->id, sizeof out->id, "%s", name);
        return out->route = ROUTE_CONSOLE, method_is(method, "GET, HEAD", out, err);
    }
    if (strncmp(url, "/v1/", 4) != 0)
        return api_error_set(err, 404, "not_found", NULL, "no such path (the API is under /v1/)");
    const char *p = url + 4;
    if (!strcmp(p, "me"))
        return out->route = ROUTE_ME, method_is(method, "GET", out, err);
    if (!strcmp(p, "presence"))
        return out->route = ROUTE_PRESENCE, method_is(method, "GET, PUT", out, err);
    if (!strcmp(p, "work"))
        return out->route = ROUTE_WORK, method_is(method, "GET", out, err);
    if (!strcmp(p, "events"))
        return out->route = ROUTE_EVENTS, method_is(method, "GET", out, err);
    if (!strcmp(p, "overview"))
        return out->route = ROUTE_OVERVIEW, method_is(method, "GET", out, err);
    if (!strcmp(p, "report"))
        return out->route = ROUTE_REPORT, method_is(method, "GET", out, err);
    if (!strncmp(p, "agents/", 7)) {
        const char *id = p + 7, *slash = strchr(id, '/');
        if (!slash || strcmp(slash, "/presence") != 0)
            return api_error_set(err, 404, "not_found", NULL, "no such path");
        if (!agent_id(id, (size_t)(slash - id)))
            return api_error_set(err, 404, "not_found", NULL, "no agent with that id");
        memcpy(out->id, id, (size_t)(slash - id));
        return out->route = ROUTE_AGENT_PRESENCE, method_is(method, "PUT", out, err);
    }
    if (!strncmp(p, "conversations/", 14)) {
        const char *id = p + 14, *slash = strchr(id, '/');
        size_t n = slash ? (size_t)(slash - id) : strlen(id);
        if (!conversation_id(id, n))
            return api_error_set(err, 404, "not_found", NULL, "no conversation with that id");
        memcpy(out->id, id, n);
        if (!slash)
            return out->route = ROUTE_CONVERSATION, method_is(method, "GET", out, err);
        for (size_t i = 0; i < sizeof VERBS / sizeof VERBS[0]; i++)
            if (!strcmp(slash + 1, VERBS[i].verb))
                return out->route = VERBS[i].route, method_is(method, "POST", out, err);
    }
    return api_error_set(err, 404, "not_found", NULL, "no such path");
}

int api_bearer(const char *h, const char **tok, size_t *len, api_error_t *err)
{
    if (!h)
        return api_error_set(err, 401, "unauthorized", NULL,
                             "no token: send Authorization: Bearer omni_... (omnictl token create)");
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return api_error_set(err, 401, "invalid_token", "Authorization",
                             "Authorization is not \"Bearer TOKEN\"");
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t n = strcspn(h, " \t");
    const char *rest = h + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (*rest || !omni_token_shape(h, n))
        return api_error_set(err, 401, "invalid_token", "Authorization",
                             "the bearer token is not an omni-api token (omni_ and 43 base64url characters)");
    *tok = h;
    *len = n;
    return 0;
}

/* The fields a route's body may hold. */
typedef struct field {
    const char *name;
    bool required;
    size_t max;                 /* longest value in bytes */
    const char *const *one_of;  /* NULL: any string */
    bool name_chars;            /* a policy name: a-z 0-9 . _ - */
    int measure;                /* > 0: an integer, the score of survey_measures[measure - 1] (its range) */
} field_t;

static const char *const PRESENCES[] = { "available", "away", "offline", NULL };
static const field_t PRESENCE_FIELDS[] = { { "presence", true, 16, PRESENCES, false, 0 }, { .name = NULL } };
static const field_t REJECT_FIELDS[] = { { "reason", true, 500, NULL, false, 0 }, { .name = NULL } };
static const field_t TRANSFER_FIELDS[] = { { "team", true, 64, NULL, true, 0 }, { "note", false, 500, NULL, false, 0 },
                                           { .name = NULL } };
/* a survey's scores, by the names and ranges survey.h declares; "at least one" is checked by api_body's caller
 * (handlers.c) */
#define SCORE(m) { .name = m##_NAME, .max = 2, .measure = (m) + 1 }
static const field_t SURVEY_FIELDS[] = { SCORE(SURVEY_CSAT), SCORE(SURVEY_CES), SCORE(SURVEY_NPS), { .name = NULL } };
static const field_t NO_FIELDS[] = { { .name = NULL } };

static const field_t *fields_of(api_route_t route)
{
    switch (route) {
    case ROUTE_PRESENCE:
    case ROUTE_AGENT_PRESENCE: return PRESENCE_FIELDS;
    case ROUTE_REJECT: return REJECT_FIELDS;
    case ROUTE_TRANSFER: return TRANSFER_FIELDS;
    case ROUTE_SURVEY: return SURVEY_FIELDS;
    case ROUTE_ACCEPT:
    case ROUTE_RESPOND:
    case ROUTE_RESOLVE: return NO_FIELDS;
    default: return NULL;
    }
}

bool api_route_has_body(api_route_t route) { return fields_of(route) != NULL; }

static void list_names(const field_t *f, char *buf, size_t sz)
{
    buf[0] = '\0';
    for (size_t used = 0; f->name; f++)
        used += (size_t)snprintf(buf + used, used < sz ? sz - used : 0, "%s%s", used ? ", " : "", f->name);
    if (!buf[0])
        snprintf(buf, sz, "none");
}

static int check_field(const field_t *f, json_t *v, api_error_t *err)
{
    if (f->measure > 0) {
        const survey_measure_t *m = &survey_measures[f->measure - 1];
        if (!json_is_integer(v) || json_integer_value(v) < m->min || json_integer_value(v) > m->max)
            return api_error_set(err, 400, "invalid_field", f->name, "%s: expected an integer %d..%d", f->name, m->min,
                                 m->max);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s)
        return api_error_set(err, 400, "invalid_field", f->name, "%s: expected a string", f->name);
    size_t n = json_string_length(v);
    if (n == 0 || n > f->max)
        return api_error_set(err, 400, "invalid_field", f->name, "%s: %zu bytes; 1..%zu expected", f->name, n,
                             f->max);
    if (strlen(s) != n)
        return api_error_set(err, 400, "invalid_field", f->name, "%s: holds a NUL character", f->name);
    if (f->name_chars && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n)
        return api_error_set(err, 400, "invalid_field", f->name,
                             "%s: \"%.64s\" is not a name (a-z, 0-9, '.', '_', '-')", f->name, s);
    if (f->one_of) {
        for (const char *const *o = f->one_of; *o; o++)
            if (!strcmp(*o, s))
                return 0;
        char names[120];
        size_t used = 0;
        names[0] = '\0';
        for (const char *const *o = f->one_of; *o && used < sizeof names; o++)
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", *o);
        return api_error_set(err, 400, "invalid_field", f->name, "%s: \"%.40s\" is not one of %s", f->name, s, names);
    }
    return 0;
}

/* A body whose integer does not fit in 64 bits is JSON all the same ({"csat": 99999999999999999999} is a score out
 * of its range, not "not JSON"): read again with every integer a real, then those that fit made integers again,
 * so the checks below refuse the one that does not fit (a real: not an integer, not a string), naming its field. */
static json_t *big_integers_as_reals(const char *body, size_t len, json_error_t *je)
{
    json_t *obj = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL |
                                            JSON_DECODE_INT_AS_REAL, je);
    if (!json_is_object(obj))
        return obj;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        double d = json_real_value(v);
        if (json_is_real(v) && d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == (double)(json_int_t)d)
            json_object_set_new(obj, key, json_integer((json_int_t)d));
    }
    return obj;
}

json_t *api_body(api_route_t route, const char *body, size_t len, api_error_t *err)
{
    const field_t *fields = fields_of(route);
    char names[120];
    if (!fields) {
        api_error_set(err, 400, "invalid_request", "body", "this request takes no body");
        return NULL;
    }
    list_names(fields, names, sizeof names);
    size_t blank = 0;
    while (blank < len && strchr(" \t\r\n", body[blank]) && body[blank])
        blank++;
    json_t *obj;
    if (blank == len) {
        obj = json_object();
    } else {
        json_error_t je;
        /* any JSON (null, 7: "not an object" below); "\u0000" in a value is JSON too: check_field refuses it,
         * naming the field */
        obj = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!obj && !strncmp(je.text, "too big ", 8)) /* "too big integer", "too big negative integer" */
            obj = big_integers_as_reals(body, len, &je);
        if (!obj) {
            api_error_set(err, 400, "invalid_json", "body", "body is not JSON: %s (line %d, column %d)", je.text,
                          je.line, je.column);
            return NULL;
        }
        if (!json_is_object(obj)) {
            json_decref(obj);
            api_error_set(err, 400, "invalid_json", "body", "body is not a JSON object (fields: %s)", names);
            return NULL;
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        const field_t *f = fields;
        while (f->name && strcmp(f->name, key))
            f++;
        if (!f->name) {
            /* the field is named in the sentence, not in "field": that must be one this request takes */
            api_error_set(err, 400, "unknown_field", "body", "%.64s: not a field of this request (fields: %s)", key,
                          names);
            json_decref(obj);
            return NULL;
        }
        if (check_field(f, v, err) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    for (const field_t *f = fields; f->name; f++)
        if (f->required && !json_object_get(obj, f->name)) {
            api_error_set(err, 400, "missing_field", f->name, "%s: missing (fields: %s)", f->name, names);
            json_decref(obj);
            return NULL;
        }
    return obj;
}

/* 1..20 digits that fit in 64 bits (Redis refuses a larger stream id part, after the 200 has gone out) */
static bool u64_digits(const char *s, size_t n)
{
    if (n == 0 || n > 20)
        return false;
    return n < 20 || strncmp(s, "18446744073709551615", 20) <= 0;
}

bool api_stream_id(const char *s)
{
    size_t a = strspn(s, "0123456789");
    if (!u64_digits(s, a) || s[a] != '-')
        return false;
    size_t b = strspn(s + a + 1, "0123456789");
    return u64_digits(s + a + 1, b) && s[a + 1 + b] == '\0';
}
