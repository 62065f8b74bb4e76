/* Conditions: every kind of key holding and failing with its trace, any/not nesting, PCRE2's Unicode
 * caseless matching (what it folds and what it does not), language subtags, sender globs, calendars and
 * local time across midnight, and the trace buffer's limits. Each case is compiled from YAML through the
 * real config loader, as the router does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "omni/util.h"

/* The policy around each case: a calendar for open_in/closed_in, categories classification can set. */
static const char base[] =
    "calendars:\n"
    "  - {name: office, timezone: Europe/Paris, hours: [mon-fri 09:00-18:00], holidays: [2026-12-25]}\n"
    "classification:\n"
    "  rules:\n"
    "    - {name: b, when: {text: [invoice]}, category: billing}\n"
    "    - {name: t, when: {text: [crash]}, category: technical}\n"
    "sla:\n"
    "  targets:\n"
    "    - first_response: 1h\n"
    "      when: ";

/* Loads base + when (a flow mapping); the condition is the SLA target's. Caller destroys. */
static router_config_t *load_when(const char *when)
{
    char path[] = "/tmp/test_cond_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char *text = omni_asprintf("%s%s\n", base, when);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    free(text);
    config_errors_t errs = { 0 };
    router_config_t *cfg = config_load(path, NULL, 0, &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_message("  %s\n", errs.lines[i]);
    config_errors_free(&errs);
    unlink(path);
    assert_non_null(cfg);
    return cfg;
}

typedef struct tcase {
    const char *when;                   /* the condition, YAML flow */
    const char *channel, *text, *language, *tier, *category, *identity, *subject;
    int priority;
    const char *now;                    /* RFC 3339; default Tue 2026-11-24 10:15 UTC (11:15 in Paris) */
    bool holds;
    const char *trace;
} tcase_t;

/* Every case starts from the default facts below; a field the case gives replaces its default, and NONE
 * stands for "absent" (NULL). */
static const char NONE[] = "(none)";
static const char *pick(const char *given, const char *def)
{
    return given == NONE ? NULL : given ? given : def;
}

static const tcase_t cases[] = {
    /* channel, with globs for third-party channels */
    { .when = "{channel: [sms, email]}", .holds = true, .trace = "channel email in [sms, email]" },
    { .when = "{channel: [sms]}", .holds = false, .trace = "channel email not in [sms]" },
    { .when = "{channel: [x-*]}", .channel = "x-whatsapp", .holds = true, .trace = "channel x-whatsapp matches x-*" },
    { .when = "{channel: [x-*]}", .channel = NONE, .holds = false, .trace = "no channel" },
    /* category and priority: what classification decided */
    { .when = "{category: [billing]}", .category = "billing", .holds = true, .trace = "category billing in [billing]" },
    { .when = "{category: [billing, technical]}", .holds = false, .trace = "no category" },
    { .when = "{priority: [urgent, high]}", .priority = 2, .holds = true, .trace = "priority high in [urgent, high]" },
    { .when = "{priority: [urgent, high]}", .priority = 3, .holds = false, .trace = "priority normal not in [urgent, high]" },
    { .when = "{priority: [low]}", .holds = false, .trace = "no priority" },
    { .when = "{tier: [vip]}", .holds = false, .trace = "tier new not in [vip]" },
    { .when = "{tier: [vip, repeat]}", .tier = "repeat", .holds = true, .trace = "tier repeat in [vip, repeat]" },
    /* language: the primary subtag matches its regional forms, not the other way round */
    { .when = "{language: [en, fr]}", .holds = true, .trace = "language fr-CA matches fr" },
    { .when = "{language: [fr-CA]}", .language = "fr", .holds = false, .trace = "language fr not in [fr-CA]" },
    { .when = "{language: [pt-BR]}", .language = "pt-br", .holds = true, .trace = "language pt-br matches pt-BR" },
    { .when = "{language: [pt]}", .language = "pt_BR", .holds = true, .trace = "language pt_BR matches pt" },
    { .when = "{language: [fr]}", .language = "fra", .holds = false, .trace = "language fra not in [fr]" },
    { .when = "{language: [en]}", .language = NONE, .holds = false, .trace = "no language" },
    /* text: PCRE2, caseless over Unicode */
    { .when = "{text: [refund]}", .text = "I want a REFUND now", .holds = true, .trace = "text matches /refund/ at \"REFUND\"" },
    { .when = "{text: ['échec']}", .text = "ÉCHEC de connexion", .holds = true, .trace = "text matches /échec/ at \"ÉCHEC\"" },
    { .when = "{text: ['ошибка']}", .text = "ОШИБКА входа", .holds = true, .trace = "text matches /ошибка/ at \"ОШИБКА\"" },
    /* Greek: Σ folds to both σ and the final ς */
    { .when = "{text: ['ΛΌΓΟΣ']}", .text = "ο λόγος", .holds = true, .trace = "text matches /ΛΌΓΟΣ/ at \"λόγος\"" },
    /* no multi-character folding: ß is not SS */
    { .when = "{text: ['straße']}", .text = "STRASSE 5", .holds = false, .trace = "text matches none of [/straße/]" },
    /* \b knows accented letters are letters (UCP) */
    { .when = "{text: ['\\bété\\b']}", .text = "l'été dernier", .holds = true, .trace = "text matches /\\bété\\b/ at \"été\"" },
    { .when = "{text: ['\\bpanne\\b']}", .text = "dépannage", .holds = false, .trace = "text matches none of [/\\bpanne\\b/]" },
    { .when = "{text: [a, b]}", .text = "zzz", .holds = false, .trace = "text matches none of [/a/, /b/]" },
    { .when = "{text: [a]}", .text = NONE, .holds = false, .trace = "no text" },
    { .when = "{text: ['^$']}", .text = "", .holds = true, .trace = "text matches /^$/ at \"\"" },
    /* a pattern that backtracks without end gives up instead of stalling the router */
    { .when = "{text: ['^(a|aa)+$']}", .text = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", .holds = false,
      .trace = "text matches none of [/^(a|aa)+$/] (1 gave up at the match limit)" },
    { .when = "{subject: [invoice]}", .subject = "Your Invoice #12", .holds = true, .trace = "subject matches /invoice/ at \"Invoice\"" },
    { .when = "{subject: [invoice]}", .holds = false, .trace = "no subject" },
    /* sender globs */
    { .when = "{sender: ['email:*@bigcorp.com']}", .holds = true, .trace = "sender email:ann@bigcorp.com matches email:*@bigcorp.com" },
    { .when = "{sender: ['email:*@BigCorp.COM']}", .holds = true, .trace = "sender email:ann@bigcorp.com matches email:*@BigCorp.COM" },
    { .when = "{sender: ['phone:+44*']}", .identity = "phone:+33612345678", .holds = false,
      .trace = "sender phone:+33612345678 not in [phone:+44*]" },
    { .when = "{sender: ['email:?@x.com']}", .identity = "email:é@x.com", .holds = true, .trace = "sender email:é@x.com matches email:?@x.com" },
    { .when = "{sender: ['email:?@x.com']}", .identity = "email:ab@x.com", .holds = false, .trace = "sender email:ab@x.com not in [email:?@x.com]" },
    /* calendars: Paris office hours, Christmas a holiday */
    { .when = "{open_in: office}", .holds = true, .trace = "calendar office open (Tue 11:15 Europe/Paris)" },
    { .when = "{open_in: office}", .now = "2026-11-28T10:00:00Z", .holds = false, .trace = "calendar office closed (Sat 11:00 Europe/Paris)" },
    { .when = "{closed_in: office}", .now = "2026-12-25T10:00:00Z", .holds = true, .trace = "calendar office closed (Fri 11:00 Europe/Paris)" },
    { .when = "{closed_in: office}", .holds = false, .trace = "calendar office open (Tue 11:15 Europe/Paris)" },
    { .when = "{closed_in: office}", .now = "2026-11-24T17:00:00Z", .holds = true, .trace = "calendar office closed (Tue 18:00 Europe/Paris)" },
    /* local time across midnight */
    { .when = "{local_time: '22:00-06:00'}", .now = "2026-11-24T23:10:00Z", .holds = true, .trace = "local time 23:10 (UTC) in 22:00-06:00" },
    { .when = "{local_time: '22:00-06:00'}", .now = "2026-11-25T05:59:00Z", .holds = true, .trace = "local time 05:59 (UTC) in 22:00-06:00" },
    { .when = "{local_time: '22:00-06:00'}", .now = "2026-11-25T06:00:00Z", .holds = false, .trace = "local time 06:00 (UTC) not in 22:00-06:00" },
    { .when = "{local_time: '22:00-06:00'}", .now = "2026-11-24T21:59:00Z", .holds = false, .trace = "local time 21:59 (UTC) not in 22:00-06:00" },
    { .when = "{local_time: '09:00-17:00', zone: America/New_York}", .now = "2026-11-24T14:30:00Z", .holds = true,
      .trace = "local time 09:30 (America/New_York) in 09:00-17:00" },
    { .when = "{local_time: '00:00-24:00'}", .now = "2026-11-24T23:59:00Z", .holds = true, .trace = "local time 23:59 (UTC) in 00:00-24:00" },
    /* weekdays, ranges that wrap, zones where the date differs from UTC's */
    { .when = "{weekdays: [mon-fri]}", .holds = true, .trace = "weekday Tue (UTC) in [mon-fri]" },
    { .when = "{weekdays: [fri-mon]}", .now = "2026-11-29T12:00:00Z", .holds = true, .trace = "weekday Sun (UTC) in [fri-mon]" },
    { .when = "{weekdays: [fri-mon]}", .now = "2026-11-25T12:00:00Z", .holds = false, .trace = "weekday Wed (UTC) not in [fri-mon]" },
    { .when = "{weekdays: [sat, sun], zone: Asia/Tokyo}", .now = "2026-11-27T16:00:00Z", .holds = true,
      .trace = "weekday Sat (Asia/Tokyo) in [sat, sun]" },
    /* several keys: all must hold; the trace gives every reason, or the first failure alone */
    { .when = "{}", .holds = true, .trace = "always (no condition)" },
    { .when = "{channel: [email], text: [hello]}", .holds = true,
      .trace = "channel email in [email]; text matches /hello/ at \"Hello\"" },
    { .when = "{text: [hello], channel: [sms]}", .holds = false, .trace = "channel email not in [sms]" },
    { .when = "{channel: [email], tier: [vip]}", .holds = false, .trace = "tier new not in [vip]" },
    /* any / not, nested */
    { .when = "{any: [{tier: [vip]}, {category: [technical]}]}", .category = "technical", .holds = true,
      .trace = "any: {category technical in [technical]}" },
    { .when = "{any: [{tier: [vip]}, {category: [technical]}]}", .category = "billing", .holds = false,
      .trace = "any: none holds: {tier new not in [vip]} {category billing not in [technical]}" },
    { .when = "{not: [{channel: [sms]}, {tier: [vip]}]}", .holds = true,
      .trace = "not: none holds: {channel email not in [sms]} {tier new not in [vip]}" },
    { .when = "{not: [{channel: [sms]}, {tier: [vip]}]}", .tier = "vip", .holds = false, .trace = "not: {tier vip in [vip]} holds" },
    { .when = "{not: [{}]}", .holds = false, .trace = "not: {always (no condition)} holds" },
    { .when = "{any: [{tier: [vip]}, {channel: [email], not: [{language: [en]}]}]}", .holds = true,
      .trace = "any: {channel email in [email]; not: none holds: {language fr-CA not in [en]}}" },
    { .when = "{channel: [email], not: [{any: [{tier: [new]}]}]}", .holds = false,
      .trace = "not: {any: {tier new in [new]}} holds" },
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const tcase_t *c = &cases[i];
        router_config_t *cfg = load_when(c->when);
        facts_t f = { .channel = pick(c->channel, "email"), .identity = pick(c->identity, "email:ann@bigcorp.com"),
                      .text = pick(c->text, "Hello there"), .subject = pick(c->subject, NULL),
                      .language = pick(c->language, "fr-CA"), .tier = pick(c->tier, "new"),
                      .category = pick(c->category, NULL), .priority = c->priority };
        assert_int_equal(omni_rfc3339_parse(c->now ? c->now : "2026-11-24T10:15:00Z", &f.now), 0);
        char trace[512];
        bool holds = cond_eval(&cfg->policy.sla[0].when, &f, trace, sizeof trace);
        if (holds != c->holds || strcmp(trace, c->trace) != 0)
            fail_msg("case %zu %s: got %s \"%s\", want %s \"%s\"", i, c->when, holds ? "true" : "false", trace,
                     c->holds ? "true" : "false", c->trace);
        /* The outcome never depends on whether a trace is asked for. */
        assert_int_equal(cond_eval(&cfg->policy.sla[0].when, &f, NULL, 0), holds);
        config_destroy(&cfg);
    }
}

static void test_trace_limits(void **state)
{
    (void)state;
    router_config_t *cfg = load_when("{channel: [email], text: [hello], language: [fr], tier: [new]}");
    facts_t f = { .channel = "email", .text = "Hello there", .language = "fr-CA", .tier = "new" };
    char small[24];
    memset(small, 'x', sizeof small);
    assert_true(cond_eval(&cfg->policy.sla[0].when, &f, small, sizeof small));
    assert_string_equal(small, "channel email in [em..."); /* cut, marked, terminated */
    char one[1] = { 'x' };
    assert_true(cond_eval(&cfg->policy.sla[0].when, &f, one, sizeof one));
    assert_int_equal(one[0], '\0');
    config_destroy(&cfg);

    /* A truncated trace is cut on a character boundary, never inside a UTF-8 sequence. */
    cfg = load_when("{text: ['é+']}");
    f.text = "éééééééééééééééééééééééééééééééééééééééééééééééé"; /* 48 characters, 96 bytes */
    char trace[512];
    assert_true(cond_eval(&cfg->policy.sla[0].when, &f, trace, sizeof trace));
    /* the match is shown up to 40 bytes: 20 characters, then "..." */
    assert_string_equal(trace, "text matches /é+/ at \"éééééééééééééééééééé...\"");
    char odd[19]; /* the cut falls inside "é": it moves back before it */
    assert_true(cond_eval(&cfg->policy.sla[0].when, &f, odd, sizeof odd));
    assert_true(omni_utf8_valid(odd, strlen(odd), NULL));
    assert_string_equal(odd, "text matches /...");
    config_destroy(&cfg);
}

/* Invalid UTF-8 in a message (which ingest refuses, but conditions must not trust it) does not crash
 * the matcher: the valid parts still match. */
static void test_invalid_utf8(void **state)
{
    (void)state;
    router_config_t *cfg = load_when("{text: [refund]}");
    facts_t f = { .channel = "email", .text = "bad \xff\xfe bytes, refund please" };
    char trace[256];
    assert_true(cond_eval(&cfg->policy.sla[0].when, &f, trace, sizeof trace));
    assert_string_equal(trace, "text matches /refund/ at \"refund\"");
    config_destroy(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_trace_limits),
        cmocka_unit_test(test_invalid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
