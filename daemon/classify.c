/* Classification (category, priority, required skills) by the policy's rules, customer tiers, and the
 * small name vocabularies the policy is written in: priorities, channels, tiers, languages, skills,
 * identity globs. Semantics are documented in docs/routing.md. */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "omni/util.h"

static const char *const prio_names[] = { "urgent", "high", "normal", "low" };
static const char *const kind_names[CHANNEL_KINDS] = { "email", "sms", "phone", "twitter", "facebook", "other" };

int policy_priority_parse(const char *name)
{
    for (int i = 0; name && i < PRIO_LEVELS; i++)
        if (strcmp(name, prio_names[i]) == 0)
            return PRIO_URGENT + i;
    return -1;
}

const char *policy_priority_name(int prio)
{
    return prio >= PRIO_URGENT && prio <= PRIO_LOW ? prio_names[prio - PRIO_URGENT] : "none";
}

int policy_channel_kind(const char *channel)
{
    if (channel == NULL)
        return -1;
    for (int i = 0; i < CHANNEL_OTHER; i++)
        if (strcmp(channel, kind_names[i]) == 0)
            return i;
    /* Third-party connectors name their channel "x-<name>" (DESIGN.md); they share one capacity. */
    return strncmp(channel, "x-", 2) == 0 && channel[2] ? CHANNEL_OTHER : -1;
}

const char *policy_channel_kind_name(int kind)
{
    return kind >= 0 && kind < CHANNEL_KINDS ? kind_names[kind] : "unknown";
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Bytes of the UTF-8 character at s (1 for a stray continuation byte, so a walk always advances). */
static size_t u8_char(const char *s)
{
    size_t n = 1;
    while (s[n] && ((unsigned char)s[n] & 0xc0) == 0x80)
        n++;
    return n;
}

bool policy_glob(const char *pat, const char *s)
{
    /* Iterative: on a mismatch, the last '*' takes one more character. Linear in practice, and never
     * exponential, because only the latest star is ever retried. */
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*pat == '*') {
            star = ++pat;
            resume = s;
        } else if (*pat == '?') {
            pat++;
            s += u8_char(s);
        } else if (*pat && lower((unsigned char)*pat) == lower((unsigned char)*s)) {
            pat++;
            s++;
        } else if (star) {
            pat = star;
            resume += u8_char(resume);
            s = resume;
        } else {
            return false;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

const char *policy_check_name(const char *value, char *buf, size_t bufsz)
{
    size_t len = strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789._-");
    if (value[len] == '\0' && len <= 64)
        return NULL;
    snprintf(buf, bufsz, "\"%s\" is not a name: 1..64 of a-z, 0-9, '.', '_' and '-'", value);
    return buf;
}

const char *policy_check_priority(const char *value, char *buf, size_t bufsz)
{
    if (policy_priority_parse(value) > 0)
        return NULL;
    snprintf(buf, bufsz, "\"%s\" is not a priority: urgent, high, normal or low", value);
    return buf;
}

const char *policy_check_channel(const char *value, char *buf, size_t bufsz)
{
    if (policy_channel_kind(value) >= 0)
        return NULL;
    snprintf(buf, bufsz, "\"%s\" is not a channel: email, sms, phone, twitter, facebook, x-NAME (x-* for any "
             "third-party channel)", value);
    return buf;
}

const char *policy_check_tier(const char *value, char *buf, size_t bufsz)
{
    if (strcmp(value, "vip") == 0 || strcmp(value, "repeat") == 0 || strcmp(value, "new") == 0)
        return NULL;
    snprintf(buf, bufsz, "\"%s\" is not a tier: vip, repeat or new", value);
    return buf;
}

static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_alnum(int c) { return is_alpha(c) || (c >= '0' && c <= '9'); }

const char *policy_check_language(const char *value, char *buf, size_t bufsz)
{
    /* BCP 47's shape, not its registry: a 2..8 letter primary subtag, then -subtags of 1..8 letters or
     * digits ("fr", "pt-BR", "zh-Hant-TW"). Which languages exist is the operator's business. */
    const char *p = value;
    size_t n = 0;
    while (is_alpha((unsigned char)p[n]))
        n++;
    bool ok = n >= 2 && n <= 8;
    for (p += n; ok && *p == '-'; p += n) {
        for (n = 0, p++; is_alnum((unsigned char)p[n]); n++)
            ;
        ok = n >= 1 && n <= 8;
    }
    if (ok && *p == '\0')
        return NULL;
    snprintf(buf, bufsz, "\"%s\" is not a language tag: e.g. en, fr, pt-BR", value);
    return buf;
}

int policy_skill_parse(const char *text, skill_t *out, char *err, size_t errsz)
{
    const char *colon = strchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    char name[72];
    if (len == 0 || len > 64) {
        snprintf(err, errsz, "\"%s\" is not a skill: NAME or NAME:LEVEL, e.g. technical:3", text);
        return -1;
    }
    snprintf(name, sizeof name, "%.*s", (int)len, text);
    if (policy_check_name(name, err, errsz) != NULL) {
        snprintf(err, errsz, "\"%s\" is not a skill: its name is 1..64 of a-z, 0-9, '.', '_' and '-'", text);
        return -1;
    }
    int level = 1;
    if (colon) {
        if (colon[1] < '1' || colon[1] > '5' || colon[2] != '\0') {
            snprintf(err, errsz, "\"%s\": the level after ':' is 1..5 (1 basic, 5 expert)", text);
            return -1;
        }
        level = colon[1] - '0';
    }
    out->name = omni_strdup(name);
    out->level = level;
    return 0;
}

const char *policy_check_skill(const char *value, char *buf, size_t bufsz)
{
    skill_t s;
    if (policy_skill_parse(value, &s, buf, bufsz) < 0)
        return buf;
    free(s.name);
    return NULL;
}

const char *policy_check_identity_glob(const char *value, char *buf, size_t bufsz)
{
    /* The kind is spelled out so a glob cannot silently match nothing ("mail:*" for "email:*"). */
    static const char *const kinds[] = { "email:", "phone:", "twitter:", "facebook:", "x-", "*:" };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        size_t n = strlen(kinds[i]);
        if (strncmp(value, kinds[i], n) == 0 && value[n] != '\0' && (i != 4 || strchr(value + n, ':')))
            return NULL;
    }
    snprintf(buf, bufsz, "\"%s\" is not an identity glob: KIND:PATTERN with KIND email, phone, twitter, facebook "
             "or x-NAME, e.g. email:*@bigcorp.com, phone:+44*", value);
    return buf;
}

static const char *const day_names[7] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };

/* "HH:MM" at s into minutes (24:00 allowed for an end). Returns the minutes or -1. */
static int parse_hhmm(const char *s, bool end)
{
    if (strlen(s) < 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int h = (s[0] - '0') * 10 + s[1] - '0', m = (s[3] - '0') * 10 + s[4] - '0';
    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !end)))
        return -1;
    return h * 60 + m;
}

int policy_parse_span(const char *v, int *start, int *end)
{
    if (strlen(v) != 11 || v[5] != '-')
        return -1;
    *start = parse_hhmm(v, false);
    *end = parse_hhmm(v + 6, true);
    return *start < 0 || *end < 0 || *start == *end ? -1 : 0;
}

const char *policy_check_local_time(const char *value, char *buf, size_t bufsz)
{
    int s, e;
    if (policy_parse_span(value, &s, &e) == 0)
        return NULL;
    snprintf(buf, bufsz, "\"%s\" is not a time span: HH:MM-HH:MM, e.g. 09:00-18:00, or 22:00-06:00 across "
             "midnight (00:00-24:00 is the whole day)", value);
    return buf;
}

static int day_index(const char *s, size_t len)
{
    for (int i = 0; i < 7; i++)
        if (len == 3 && strncasecmp(s, day_names[i], 3) == 0)
            return i;
    return -1;
}

int policy_parse_weekdays(const char *v, unsigned *mask)
{
    const char *dash = strchr(v, '-');
    int a = day_index(v, dash ? (size_t)(dash - v) : strlen(v)), b = dash ? day_index(dash + 1, strlen(dash + 1)) : a;
    if (a < 0 || b < 0)
        return -1;
    for (int d = a;; d = (d + 1) % 7) {
        *mask |= 1u << d;
        if (d == b)
            break;
    }
    return 0;
}

const char *policy_check_weekdays(const char *value, char *buf, size_t bufsz)
{
    unsigned mask = 0;
    if (policy_parse_weekdays(value, &mask) == 0)
        return NULL;
    snprintf(buf, bufsz, "\"%s\" is not a weekday: mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri",
             value);
    return buf;
}

const char *policy_check_zone(const char *value, char *buf, size_t bufsz)
{
    char why[160];
    calendar_t *cal = calendar_new(value, why, sizeof why);
    if (cal) {
        calendar_destroy(&cal);
        return NULL;
    }
    snprintf(buf, bufsz, "\"%s\" is not a time zone: %s", value, why);
    return buf;
}

const char *policy_tier(const policy_t *p, const char *identity, long conversations)
{
    for (size_t i = 0; identity && i < p->n_vip; i++)
        if (policy_glob(p->vip[i], identity))
            return "vip";
    if (p->repeat_after > 0 && conversations >= p->repeat_after)
        return "repeat";
    return "new";
}

/* Adds skill s to out, keeping the highest level asked for a skill named twice. The table has room for
 * every distinct skill the rules name: policy_compile refuses more than it holds. */
static void add_skill(classification_t *out, const skill_t *s)
{
    for (size_t i = 0; i < out->n_skills; i++) {
        if (strcmp(out->skills[i].name, s->name) == 0) {
            if (s->level > out->skills[i].level)
                out->skills[i].level = s->level;
            return;
        }
    }
    if (out->n_skills < sizeof out->skills / sizeof *out->skills)
        out->skills[out->n_skills++] = *s; /* name borrowed from the policy */
}

void classify(const policy_t *p, const facts_t *f, classification_t *out)
{
    memset(out, 0, sizeof *out);
    /* Later rules see what earlier ones decided: `when: {category: billing}` refines a billing case. */
    facts_t seen = *f;
    seen.category = NULL;
    seen.priority = 0;
    for (size_t i = 0; i < p->n_classify; i++) {
        const classify_rule_t *r = &p->classify[i];
        if (!cond_eval(&r->when, &seen, NULL, 0))
            continue;
        if (out->n_rules < sizeof out->rules / sizeof *out->rules)
            out->rules[out->n_rules++] = r->name;
        if (r->category && out->category == NULL)
            out->category = seen.category = r->category;
        if (r->priority && out->priority == 0)
            out->priority = seen.priority = policy_priority_parse(r->priority);
        for (size_t j = 0; j < r->n_skill; j++)
            add_skill(out, &r->skill[j]);
        if (r->stop)
            break;
    }
    if (out->category == NULL)
        out->category = p->default_category ? p->default_category : "general";
    if (out->priority <= 0)
        out->priority = p->default_priority ? policy_priority_parse(p->default_priority) : PRIO_NORMAL;
    if (out->priority <= 0)
        out->priority = PRIO_NORMAL;
}
