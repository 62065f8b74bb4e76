/* Conditions (`when:`): compiled once by policy_compile (regexes, calendars, the zone of local_time and
 * weekdays), then evaluated per message with a trace a person can read in `omnictl explain`.
 *
 * A holding condition's trace lists every reason it holds ("channel sms in [sms]; text matches /refund/
 * at \"Refund\""); a failing one gives only the first reason it fails, which is the one to fix. Keys are
 * looked at cheapest first and evaluation stops at the first failure, so a regex never runs for a
 * message the channel already rules out. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "policy.h"

#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config_schema.h"
#include "omni/util.h"

/* Customer text is untrusted: a pattern that backtracks badly gives up (and does not match) instead of
 * stalling the single-threaded router. A million steps is far beyond any sane pattern on 64 KiB. */
#define MATCH_LIMIT 1000000
#define RX_FLAGS (PCRE2_UTF | PCRE2_CASELESS | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF)

typedef struct compiled {
    pcre2_code **text, **subject;     /* one per pattern; owned */
    pcre2_match_context *mctx;        /* owned; only read while matching */
    const calendar_cfg_t *open_in, *closed_in; /* borrowed from the policy */
    calendar_t *zone;                 /* owned; for local_time and weekdays */
    int lt_start, lt_end;             /* minutes after local midnight; lt_start < 0: no local_time */
    unsigned weekdays;                /* bit 0 Monday .. bit 6 Sunday; 0: no weekdays condition */
} compiled_t;


/* ---- the walk-time check of a pattern: alone, so the error points at the exact entry ---- */

static pcre2_code *rx_compile(const char *pat, char *err, size_t errsz)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, RX_FLAGS, &code, &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        size_t chars = 0; /* PCRE2 counts bytes; a person counts characters */
        for (size_t i = 0; i < off && pat[i]; i++)
            chars += ((unsigned char)pat[i] & 0xc0) != 0x80;
        snprintf(err, errsz, "\"%s\" is not a valid regular expression: %s (at offset %zu in the pattern)", pat,
                 (const char *)msg, chars);
    }
    return re;
}

const char *cond_check_regex(const char *value, char *buf, size_t bufsz)
{
    pcre2_code *re = rx_compile(value, buf, bufsz);
    if (re == NULL)
        return buf;
    pcre2_code_free(re);
    return NULL;
}

/* ---- compilation ---- */

static void unknown_calendar(const policy_t *p, const cfg_where_t *w, const char *key, const char *name,
                             config_errors_t *errs)
{
    const char **names = omni_calloc(p->n_calendars + 1, sizeof *names);
    size_t n = 0;
    for (size_t i = 0; i < p->n_calendars; i++)
        if (p->calendars[i].name) /* NULL: a calendar whose name the walk refused */
            names[n++] = p->calendars[i].name;
    const char *sugg = cfg_suggest(name, names, n);
    if (sugg)
        cfg_error_key(errs, w, key, "unknown calendar \"%s\" (did you mean %s?)", name, sugg);
    else if (p->n_calendars == 0)
        cfg_error_key(errs, w, key, "unknown calendar \"%s\" (no calendars are defined)", name);
    else
        cfg_error_key(errs, w, key, "unknown calendar \"%s\"", name);
    free(names);
}

static int compile_rx(char **pats, size_t n, pcre2_code ***out, const cond_t *c, const char *key,
                      const char *what, config_errors_t *errs)
{
    int rc = 0;
    char err[512];
    *out = n ? omni_calloc(n, sizeof **out) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (((*out)[i] = rx_compile(pats[i], err, sizeof err)) == NULL) {
            char *k = omni_asprintf("%s.%s[%zu]", key, what, i);
            cfg_error_key(errs, &c->where, k, "%s", err);
            free(k);
            rc = -1;
        }
    }
    return rc;
}

static int compile_calendar(const policy_t *p, const cond_t *c, const char *key, const char *what,
                            const char *name, const calendar_cfg_t **out, config_errors_t *errs)
{
    if (name == NULL)
        return 0;
    if ((*out = policy_calendar(p, name)) != NULL)
        return 0;
    char *k = omni_asprintf("%s.%s", key, what);
    unknown_calendar(p, &c->where, k, name, errs);
    free(k);
    return -1;
}

int cond_compile(cond_t *c, const policy_t *p, const char *key, config_errors_t *errs)
{
    cond_release(c);
    compiled_t *k = omni_calloc(1, sizeof *k);
    c->compiled = k;
    k->lt_start = -1;
    int rc = 0;
    char err[256];
    if (c->n_text || c->n_subject) {
        k->mctx = pcre2_match_context_create(NULL);
        pcre2_set_match_limit(k->mctx, MATCH_LIMIT);
    }
    rc |= compile_rx(c->text, c->n_text, &k->text, c, key, "text", errs);
    rc |= compile_rx(c->subject, c->n_subject, &k->subject, c, key, "subject", errs);
    rc |= compile_calendar(p, c, key, "open_in", c->open_in, &k->open_in, errs);
    rc |= compile_calendar(p, c, key, "closed_in", c->closed_in, &k->closed_in, errs);
    if (c->local_time || c->n_weekdays) {
        /* A calendar without hours is just a zone: calendar_local gives the weekday and the minute. */
        if ((k->zone = calendar_new(c->zone ? c->zone : "UTC", err, sizeof err)) == NULL) {
            char *kz = omni_asprintf("%s.zone", key);
            cfg_error_key(errs, &c->where, kz, "%s", err);
            free(kz);
            rc = -1;
        }
    }
    if (c->local_time && policy_parse_span(c->local_time, &k->lt_start, &k->lt_end) < 0)
        k->lt_start = -1; /* refused while the file was read; kept consistent for a hand-made cond */
    for (size_t i = 0; i < c->n_weekdays; i++)
        policy_parse_weekdays(c->weekdays[i], &k->weekdays);
    for (size_t i = 0; i < c->n_category; i++) {
        if (*c->category[i] && !policy_has_category(p, c->category[i])) { /* "": refused in the walk */
            char *kc = omni_asprintf("%s.category[%zu]", key, i);
            cfg_error_key(errs, &c->where, kc, "no classification rule sets the category \"%s\" (nor is it "
                         "classification.default_category), so this can never hold", c->category[i]);
            free(kc);
            rc = -1;
        }
    }
    for (size_t i = 0; i < c->n_any; i++) {
        char *ks = omni_asprintf("%s.any[%zu]", key, i);
        rc |= cond_compile(&c->any[i], p, ks, errs);
        free(ks);
    }
    for (size_t i = 0; i < c->n_not; i++) {
        char *ks = omni_asprintf("%s.not[%zu]", key, i);
        rc |= cond_compile(&c->not_[i], p, ks, errs);
        free(ks);
    }
    return rc ? -1 : 0;
}

void cond_release(cond_t *c)
{
    for (size_t i = 0; i < c->n_any; i++)
        cond_release(&c->any[i]);
    for (size_t i = 0; i < c->n_not; i++)
        cond_release(&c->not_[i]);
    compiled_t *k = c->compiled;
    if (k == NULL)
        return;
    for (size_t i = 0; k->text && i < c->n_text; i++)
        pcre2_code_free(k->text[i]);
    for (size_t i = 0; k->subject && i < c->n_subject; i++)
        pcre2_code_free(k->subject[i]);
    free(k->text);
    free(k->subject);
    pcre2_match_context_free(k->mctx);
    calendar_destroy(&k->zone);
    free(k);
    c->compiled = NULL;
}

/* ---- evaluation ---- */

/* The trace being written: len is always strlen(buf); once full, further text is dropped. */
typedef struct trace {
    char *buf;
    size_t sz, len;
    bool full;
} trace_t;

static void tr_add(trace_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tr_add(trace_t *t, const char *fmt, ...)
{
    if (t->buf == NULL || t->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->sz - t->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < t->sz - t->len) {
        t->len += (size_t)n;
        return;
    }
    /* Cut on a character boundary and say so, rather than end in half a UTF-8 sequence. */
    size_t keep = t->sz > 4 ? t->sz - 4 : 0;
    while (keep > 0 && ((unsigned char)t->buf[keep] & 0xc0) == 0x80)
        keep--;
    t->len = keep + (size_t)snprintf(t->buf + keep, t->sz - keep, "%s", t->sz > 4 ? "..." : "");
    t->full = true;
}

/* Removes buf[from, to): what is kept of a trace once the outcome is known. */
static void tr_cut(trace_t *t, size_t from, size_t to)
{
    if (t->buf == NULL || from >= to || to > t->len)
        return;
    memmove(t->buf + from, t->buf + to, t->len - to + 1);
    t->len -= to - from;
    t->full = false;
}

static void tr_list(trace_t *t, char *const *list, size_t n)
{
    tr_add(t, "[");
    for (size_t i = 0; i < n; i++)
        tr_add(t, "%s%s", i ? ", " : "", list[i]);
    tr_add(t, "]");
}

static int in_list(trace_t *t, const char *what, const char *value, char *const *list, size_t n,
                   bool (*match)(const char *entry, const char *value))
{
    if (n == 0)
        return -1;
    if (value == NULL) {
        tr_add(t, "no %s", what);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (match(list[i], value)) {
            if (strcmp(list[i], value) == 0) {
                tr_add(t, "%s %s in ", what, value);
                tr_list(t, list, n);
            } else { /* a glob or a language prefix: show which entry */
                tr_add(t, "%s %s matches %s", what, value, list[i]);
            }
            return 1;
        }
    }
    tr_add(t, "%s %s not in ", what, value);
    tr_list(t, list, n);
    return 0;
}

static bool same(const char *e, const char *v) { return strcmp(e, v) == 0; }

static bool lang_match(const char *e, const char *v)
{
    /* "fr" holds for "fr-CA" (and a connector's "fr_CA"), not the other way round. */
    size_t n = strlen(e);
    return strncasecmp(e, v, n) == 0 && (v[n] == '\0' || v[n] == '-' || v[n] == '_');
}

static void tr_local(trace_t *t, const calendar_t *cal, int64_t now)
{
    char when[96];
    calendar_describe(cal, now, false, when, sizeof when);
    tr_add(t, "%s", when);
}

static int calendar_state(const calendar_cfg_t *cc, const facts_t *f, trace_t *t, bool want_open)
{
    if (cc == NULL || cc->cal == NULL) {
        tr_add(t, "calendar not compiled");
        return 0;
    }
    bool open = calendar_open_at(cc->cal, f->now);
    tr_add(t, "calendar %s %s (", cc->name, open ? "open" : "closed");
    tr_local(t, cc->cal, f->now);
    tr_add(t, ")");
    return open == want_open;
}

static int k_weekdays(const cond_t *c, const compiled_t *k, const facts_t *f, trace_t *t)
{
    if (c->n_weekdays == 0)
        return -1;
    if (k->zone == NULL)
        return tr_add(t, "zone not compiled"), 0;
    cal_local_t l;
    calendar_local(k->zone, f->now, &l);
    bool in = (k->weekdays >> (l.weekday % 7)) & 1u;
    tr_add(t, "weekday %s (%s) %s ", calendar_day_name(l.weekday), calendar_zone(k->zone), in ? "in" : "not in");
    tr_list(t, c->weekdays, c->n_weekdays);
    return in;
}

static int k_local_time(const cond_t *c, const compiled_t *k, const facts_t *f, trace_t *t)
{
    if (c->local_time == NULL)
        return -1;
    if (k->zone == NULL || k->lt_start < 0)
        return tr_add(t, "local_time not compiled"), 0;
    cal_local_t l;
    calendar_local(k->zone, f->now, &l);
    int m = l.minute_of_day;
    /* start > end runs across midnight: 22:00-06:00 holds from 22:00 to 05:59. */
    bool in = k->lt_start < k->lt_end ? m >= k->lt_start && m < k->lt_end : m >= k->lt_start || m < k->lt_end;
    tr_add(t, "local time %02d:%02d (%s) %s %s", m / 60, m % 60, calendar_zone(k->zone), in ? "in" : "not in",
           c->local_time);
    return in;
}

static int match_rx(const char *what, char *const *pats, pcre2_code *const *codes, size_t n, const char *value,
                    const compiled_t *k, trace_t *t)
{
    if (n == 0)
        return -1;
    if (value == NULL) {
        tr_add(t, "no %s", what);
        return 0;
    }
    if (codes == NULL)
        return tr_add(t, "%s patterns not compiled", what), 0;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int result = 0;
    size_t gave_up = 0;
    for (size_t i = 0; i < n && !result; i++) {
        int rc = pcre2_match(codes[i], (PCRE2_SPTR)value, strlen(value), 0, 0, md, k->mctx);
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t len = ov[1] - ov[0], shown = len > 40 ? 40 : len;
            while (shown < len && shown > 0 && ((unsigned char)value[ov[0] + shown] & 0xc0) == 0x80)
                shown--;
            tr_add(t, "%s matches /%s/ at \"%.*s%s\"", what, pats[i], (int)shown, value + ov[0],
                   shown < len ? "..." : "");
            result = 1;
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            gave_up++; /* match limit hit: counted as no match, and said so */
        }
    }
    pcre2_match_data_free(md);
    if (!result) {
        tr_add(t, "%s matches none of [", what);
        for (size_t i = 0; i < n; i++)
            tr_add(t, "%s/%s/", i ? ", " : "", pats[i]);
        tr_add(t, "]");
        if (gave_up)
            tr_add(t, " (%zu gave up at the match limit)", gave_up);
    }
    return result;
}

static bool eval(const cond_t *c, const facts_t *f, trace_t *t);

/* any (want = true: one sub-condition holds) or not (want = false: none holds). */
static int sublist(const char *what, const cond_t *subs, size_t n, bool want, const facts_t *f, trace_t *t)
{
    if (n == 0)
        return -1;
    tr_add(t, "%s: ", what);
    size_t head = t->len;
    tr_add(t, "none holds: ");
    for (size_t i = 0; i < n; i++) {
        size_t at = t->len;
        tr_add(t, "%s{", i ? " " : "");
        bool r = eval(&subs[i], f, t);
        tr_add(t, "}");
        if (r) {
            tr_cut(t, head, at + (i ? 1 : 0)); /* "any: {tier vip in [vip]}" */
            if (!want)
                tr_add(t, " holds");
            return want;
        }
    }
    return !want;
}

enum { N_KEYS = 14 };

/* Key i of c: -1 when not written, else whether it holds, with its reason appended to t. Cheapest first:
 * string compares, calendars, regexes, then nested conditions. */
static int key(int i, const cond_t *c, const compiled_t *k, const facts_t *f, trace_t *t)
{
    switch (i) {
    case 0: return in_list(t, "channel", f->channel, c->channel, c->n_channel, policy_glob);
    case 1: return in_list(t, "tier", f->tier, c->tier, c->n_tier, same);
    case 2: return in_list(t, "category", f->category, c->category, c->n_category, same);
    case 3: return in_list(t, "priority", f->priority > 0 ? policy_priority_name(f->priority) : NULL, c->priority,
                           c->n_priority, same);
    case 4: return in_list(t, "language", f->language, c->language, c->n_language, lang_match);
    case 5: return in_list(t, "sender", f->identity, c->sender, c->n_sender, policy_glob);
    case 6: return c->open_in ? calendar_state(k->open_in, f, t, true) : -1;
    case 7: return c->closed_in ? calendar_state(k->closed_in, f, t, false) : -1;
    case 8: return k_weekdays(c, k, f, t);
    case 9: return k_local_time(c, k, f, t);
    case 10: return match_rx("subject", c->subject, k->subject, c->n_subject, f->subject, k, t);
    case 11: return match_rx("text", c->text, k->text, c->n_text, f->text, k, t);
    case 12: return sublist("any", c->any, c->n_any, true, f, t);
    default: return sublist("not", c->not_, c->n_not, false, f, t);
    }
}

static bool eval(const cond_t *c, const facts_t *f, trace_t *t)
{
    const compiled_t *k = c->compiled;
    static const compiled_t none = { .lt_start = -1 };
    size_t start = t->len;
    bool wrote = false;
    for (int i = 0; i < N_KEYS; i++) {
        size_t at = t->len;
        if (wrote)
            tr_add(t, "; ");
        size_t reason = t->len;
        int r = key(i, c, k ? k : &none, f, t);
        if (r < 0) {
            tr_cut(t, at, t->len);
        } else if (r == 0) {
            tr_cut(t, start, reason); /* only the failing reason */
            return false;
        } else {
            wrote = true;
        }
    }
    if (!wrote)
        tr_add(t, "always (no condition)");
    return true;
}

bool cond_eval(const cond_t *c, const facts_t *f, char *trace, size_t tracesz)
{
    trace_t t = { trace && tracesz ? trace : NULL, tracesz, 0, false };
    if (t.buf)
        t.buf[0] = '\0';
    return eval(c, f, &t);
}
