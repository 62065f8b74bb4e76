/* Classification (rule order, first category and priority win, skills accumulate at their highest level,
 * stop, defaults, later rules seeing earlier decisions), customer tiers, and the name vocabularies:
 * priorities, channels, globs, skills, languages, identity globs. */
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

static router_config_t *load(const char *text, const char *const *ov, size_t n_ov)
{
    char path[] = "/tmp/test_classify_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    config_errors_t errs = { 0 };
    router_config_t *cfg = config_load(path, ov, n_ov, &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_message("  %s\n", errs.lines[i]);
    config_errors_free(&errs);
    unlink(path);
    assert_non_null(cfg);
    return cfg;
}

static const char rules[] =
    "classification:\n"
    "  rules:\n"
    "    - {name: vip, when: {tier: [vip]}, priority: high}\n"
    "    - {name: outage, when: {text: ['outage|panne']}, category: technical, priority: urgent, skills: [technical:3]}\n"
    "    - {name: api, when: {text: ['\\bapi\\b']}, category: integration, skills: ['technical:2', 'api:4']}\n"
    "    - {name: refine, when: {category: [technical], channel: [phone]}, skills: [technical:5]}\n"
    "    - {name: billing, when: {text: [refund]}, category: billing, skills: [billing]}\n"
    "    - {name: faq, when: {text: ['how do i']}, category: faq, priority: low, stop: true}\n"
    "    - {name: after-stop, when: {text: ['how do i']}, priority: urgent, skills: [late]}\n"
    "  default_category: general\n"
    "  default_priority: normal\n";

typedef struct ccase {
    const char *channel, *text, *tier, *category; /* category, priority: given in the facts, ignored */
    int priority;
    const char *want_category;
    int want_priority;
    const char *want_skills; /* "name:level name:level" in order */
    const char *want_rules;  /* "a b" */
} ccase_t;

static const ccase_t ccases[] = {
    { "email", "hello", "new", NULL, 0, "general", PRIO_NORMAL, "", "" },
    /* the vip rule sets the priority first, so outage's urgent is not used; its category is */
    { "email", "Total OUTAGE here", "vip", NULL, 0, "technical", PRIO_HIGH, "technical:3", "vip outage" },
    /* two categories: the first rule's; skills add up, the highest level per skill kept */
    { "email", "outage of the API", "new", NULL, 0, "technical", PRIO_URGENT, "technical:3 api:4", "outage api" },
    /* a later rule sees the category an earlier rule set */
    { "phone", "panne", "new", NULL, 0, "technical", PRIO_URGENT, "technical:5", "outage refine" },
    { "phone", "the api", "new", NULL, 0, "integration", PRIO_NORMAL, "technical:2 api:4", "api" },
    /* stop: after-stop is never looked at, though its condition holds */
    { "sms", "how do I get a refund?", "new", NULL, 0, "billing", PRIO_LOW, "billing:1", "billing faq" },
    /* what the facts say about category and priority is not an input */
    { "phone", "hello", "new", "technical", PRIO_URGENT, "general", PRIO_NORMAL, "", "" },
};

static void test_classify_rules(void **state)
{
    (void)state;
    router_config_t *cfg = load(rules, NULL, 0);
    for (size_t i = 0; i < sizeof ccases / sizeof *ccases; i++) {
        const ccase_t *c = &ccases[i];
        facts_t f = { .channel = c->channel, .text = c->text, .tier = c->tier, .category = c->category,
                      .priority = c->priority, .now = 1795000000000 };
        classification_t out;
        classify(&cfg->policy, &f, &out);
        char skills[256] = "", names[256] = "";
        for (size_t j = 0; j < out.n_skills; j++)
            snprintf(skills + strlen(skills), sizeof skills - strlen(skills), "%s%s:%d", j ? " " : "",
                     out.skills[j].name, out.skills[j].level);
        for (size_t j = 0; j < out.n_rules; j++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", j ? " " : "", out.rules[j]);
        if (strcmp(out.category, c->want_category) != 0 || out.priority != c->want_priority ||
            strcmp(skills, c->want_skills) != 0 || strcmp(names, c->want_rules) != 0)
            fail_msg("case %zu \"%s\": got %s/%s [%s] (%s), want %s/%s [%s] (%s)", i, c->text, out.category,
                     policy_priority_name(out.priority), skills, names, c->want_category,
                     policy_priority_name(c->want_priority), c->want_skills, c->want_rules);
    }
    config_destroy(&cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    /* No classification section: everything is general and normal. */
    router_config_t *cfg = load("router: {tick_ms: 100}\n", NULL, 0);
    facts_t f = { .channel = "email", .text = "x" };
    classification_t out;
    classify(&cfg->policy, &f, &out);
    assert_string_equal(out.category, "general");
    assert_int_equal(out.priority, PRIO_NORMAL);
    assert_int_equal(out.n_skills, 0);
    assert_int_equal(out.n_rules, 0);
    config_destroy(&cfg);
    /* Other defaults, set from the command line. */
    const char *ov[] = { "classification.default_category=misc", "classification.default_priority=low" };
    cfg = load("", ov, 2);
    classify(&cfg->policy, &f, &out);
    assert_string_equal(out.category, "misc");
    assert_int_equal(out.priority, PRIO_LOW);
    config_destroy(&cfg);
}

static void test_tiers(void **state)
{
    (void)state;
    router_config_t *cfg = load("customers:\n  vip: ['email:*@bigcorp.com', 'phone:+4420*']\n  repeat_after: 3\n", NULL, 0);
    const policy_t *p = &cfg->policy;
    assert_string_equal(policy_tier(p, "email:ann@bigcorp.com", 0), "vip");
    assert_string_equal(policy_tier(p, "phone:+442079460958", 10), "vip");
    assert_string_equal(policy_tier(p, "email:ann@bigcorp.com.evil", 0), "new"); /* the glob is anchored */
    assert_string_equal(policy_tier(p, "email:ann@other.com", 3), "repeat");
    assert_string_equal(policy_tier(p, "email:ann@other.com", 2), "new");
    assert_string_equal(policy_tier(p, NULL, 5), "repeat");
    config_destroy(&cfg);
    const char *ov[] = { "customers.repeat_after=0" };
    cfg = load("", ov, 1);
    assert_string_equal(policy_tier(&cfg->policy, "email:a@b.c", 1000), "new"); /* 0: never repeat */
    assert_int_equal(cfg->policy.repeat_after, 0);
    config_destroy(&cfg);
}

static void test_names(void **state)
{
    (void)state;
    static const char *const prios[] = { "urgent", "high", "normal", "low" };
    for (int i = 0; i < 4; i++) {
        assert_int_equal(policy_priority_parse(prios[i]), i + 1);
        assert_string_equal(policy_priority_name(i + 1), prios[i]);
    }
    assert_int_equal(policy_priority_parse("High"), -1);
    assert_int_equal(policy_priority_parse(NULL), -1);
    assert_string_equal(policy_priority_name(0), "none");
    assert_string_equal(policy_priority_name(5), "none");

    static const struct { const char *name; int kind; } ch[] = {
        { "email", CHANNEL_EMAIL }, { "sms", CHANNEL_SMS },       { "phone", CHANNEL_PHONE },
        { "twitter", CHANNEL_TWITTER }, { "facebook", CHANNEL_FACEBOOK }, { "x-whatsapp", CHANNEL_OTHER },
        { "x-", -1 }, { "fax", -1 }, { "Email", -1 }, { NULL, -1 },
    };
    for (size_t i = 0; i < sizeof ch / sizeof *ch; i++)
        assert_int_equal(policy_channel_kind(ch[i].name), ch[i].kind);
    assert_string_equal(policy_channel_kind_name(CHANNEL_OTHER), "other");
    assert_string_equal(policy_channel_kind_name(CHANNEL_KINDS), "unknown");
}

static void test_glob(void **state)
{
    (void)state;
    static const struct { const char *pat, *s; bool match; } g[] = {
        { "email:*@bigcorp.com", "email:ann@bigcorp.com", true }, { "email:*@bigcorp.com", "email:@bigcorp.com", true },
        { "email:*@bigcorp.com", "email:ann@bigcorp.co", false }, { "*", "", true }, { "", "", true },
        { "", "a", false }, { "a*b*c", "aXXbYYbZZc", true }, { "a*b*c", "aXXbYYbZZ", false },
        { "?", "é", true }, { "??", "é", false }, { "?", "日", true }, { "a?c", "a日c", true },
        { "EMAIL:*", "email:x", true }, { "*ab", "aaab", true }, { "*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
        { "phone:+44*", "phone:+4420", true }, { "phone:+44*", "phone:+3344", false },
    };
    for (size_t i = 0; i < sizeof g / sizeof *g; i++)
        if (policy_glob(g[i].pat, g[i].s) != g[i].match)
            fail_msg("glob %s on %s: want %d", g[i].pat, g[i].s, g[i].match);
}

static void test_checks(void **state)
{
    (void)state;
    char buf[256];
    skill_t s;
    assert_int_equal(policy_skill_parse("technical:3", &s, buf, sizeof buf), 0);
    assert_string_equal(s.name, "technical");
    assert_int_equal(s.level, 3);
    free(s.name);
    assert_int_equal(policy_skill_parse("billing", &s, buf, sizeof buf), 0);
    assert_int_equal(s.level, 1);
    free(s.name);
    static const struct { const char *in, *why; } bad[] = {
        { "technical:0", "\"technical:0\": the level after ':' is 1..5 (1 basic, 5 expert)" },
        { "technical:6", "\"technical:6\": the level after ':' is 1..5 (1 basic, 5 expert)" },
        { "technical:12", "\"technical:12\": the level after ':' is 1..5 (1 basic, 5 expert)" },
        { "technical:", "\"technical:\": the level after ':' is 1..5 (1 basic, 5 expert)" },
        { ":3", "\":3\" is not a skill: NAME or NAME:LEVEL, e.g. technical:3" },
        { "Tech:3", "\"Tech:3\" is not a skill: its name is 1..64 of a-z, 0-9, '.', '_' and '-'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(policy_skill_parse(bad[i].in, &s, buf, sizeof buf), -1);
        assert_string_equal(buf, bad[i].why);
    }
    static const char *const langs_ok[] = { "en", "fr-CA", "zh-Hant-TW", "pt-BR", "ast", "es-419" };
    for (size_t i = 0; i < sizeof langs_ok / sizeof *langs_ok; i++)
        assert_null(policy_check_language(langs_ok[i], buf, sizeof buf));
    static const char *const langs_bad[] = { "e", "en-", "en_US", "123", "en-toolongsubtag", "fr CA" };
    for (size_t i = 0; i < sizeof langs_bad / sizeof *langs_bad; i++)
        assert_non_null(policy_check_language(langs_bad[i], buf, sizeof buf));
    static const char *const ids_ok[] = { "email:*@x.com", "phone:+44*", "twitter:123", "facebook:9", "x-chat:a*",
                                          "*:+4420*" };
    for (size_t i = 0; i < sizeof ids_ok / sizeof *ids_ok; i++)
        assert_null(policy_check_identity_glob(ids_ok[i], buf, sizeof buf));
    static const char *const ids_bad[] = { "mail:*", "*@x.com", "email:", "x-chat", "sms:+44*" };
    for (size_t i = 0; i < sizeof ids_bad / sizeof *ids_bad; i++)
        assert_non_null(policy_check_identity_glob(ids_bad[i], buf, sizeof buf));
    assert_null(policy_check_channel("x-*", buf, sizeof buf));
    assert_string_equal(policy_check_tier("gold", buf, sizeof buf), "\"gold\" is not a tier: vip, repeat or new");
    assert_null(policy_check_local_time("22:00-06:00", buf, sizeof buf));
    assert_null(policy_check_local_time("00:00-24:00", buf, sizeof buf));
    static const char *const spans_bad[] = { "09:00-09:00", "24:00-06:00", "9:00-17:00", "09:60-10:00", "09:00-24:01",
                                             "09:00 - 17:00" };
    for (size_t i = 0; i < sizeof spans_bad / sizeof *spans_bad; i++)
        assert_non_null(policy_check_local_time(spans_bad[i], buf, sizeof buf));
    unsigned mask = 0;
    assert_int_equal(policy_parse_weekdays("sat-mon", &mask), 0);
    assert_int_equal(mask, (1u << 5) | (1u << 6) | 1u);
    assert_int_equal(policy_parse_weekdays("Mon", &mask), 0);
    assert_int_equal(policy_parse_weekdays("monday", &mask), -1);
    assert_int_equal(policy_parse_weekdays("mon-", &mask), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_rules), cmocka_unit_test(test_defaults), cmocka_unit_test(test_tiers),
        cmocka_unit_test(test_names),          cmocka_unit_test(test_glob),     cmocka_unit_test(test_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
