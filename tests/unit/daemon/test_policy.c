/* The policy sections of the config: the sample compiles into what it says, configs without a policy
 * stay valid, and every cross-check names FILE:LINE:COLUMN: KEY exactly. */
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
#include "policy.h"
#include "omni/util.h"

/* Loads text from a temp file; *path (caller frees, already unlinked) names it in the expected lines. */
static router_config_t *load(const char *text, config_errors_t *errs, char **path)
{
    *path = omni_strdup("/tmp/test_policy_XXXXXX");
    int fd = mkstemp(*path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    router_config_t *cfg = config_load(*path, NULL, 0, errs);
    unlink(*path);
    return cfg;
}

/* Asserts that text fails with exactly the lines want (NULL-terminated; "%1$s" stands for the path). */
static void fails(const char *text, const char *const *want)
{
    config_errors_t errs;
    char *path;
    router_config_t *cfg = load(text, &errs, &path);
    size_t n = 0;
    bool same = cfg == NULL;
    char lines[16][512];
    for (; want[n]; n++) {
        snprintf(lines[n], sizeof lines[n], want[n], path);
        same = same && n < errs.n && strcmp(errs.lines[n], lines[n]) == 0;
    }
    if (!same || n != errs.n) {
        for (size_t i = 0; i < errs.n; i++)
            print_message("  got: %s\n", errs.lines[i]);
        for (size_t i = 0; i < n; i++)
            print_message(" want: %s\n", lines[i]);
        fail();
    }
    config_errors_free(&errs);
    free(path);
}

#define LINES(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_sample(void **state)
{
    (void)state;
    config_errors_t errs;
    router_config_t *cfg = config_load("conf/omnirouter.yaml", NULL, 0, &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_message("  %s\n", errs.lines[i]);
    assert_non_null(cfg);
    const policy_t *p = &cfg->policy;
    assert_int_equal(p->n_calendars, 3);
    assert_int_equal(p->n_teams, 4);
    const team_t *core = policy_team(p, "core"), *acme = policy_team(p, "acme-bpo");
    assert_non_null(core);
    assert_non_null(acme);
    assert_int_equal(core->kind, TEAM_INHOUSE);
    assert_ptr_equal(core->cal, policy_calendar(p, "paris-office"));
    assert_int_equal(core->handle_time_ms, 12 * 60000);
    assert_int_equal(acme->kind, TEAM_OUTSOURCED);
    assert_int_equal(acme->strategy, STRATEGY_ROUND_ROBIN);
    assert_int_equal(acme->contract.max_concurrent, 40);
    assert_true(acme->contract.mask_contact);
    assert_false(acme->contract.allow_vip);
    assert_null(policy_team(p, "nobody"));
    /* where outlives the load: it points at the config's own copy of the path */
    assert_ptr_equal(acme->where.file, cfg->source);
    assert_true(acme->where.line > 0);
    /* the partners never see technical or VIP work: no routing rule for them targets a partner */
    for (size_t i = 0; i < p->n_routes; i++) {
        const route_rule_t *r = &p->routes[i];
        bool sensitive = (r->when.n_category && strcmp(r->when.category[0], "technical") == 0) ||
                         (r->when.n_tier && strcmp(r->when.tier[0], "vip") == 0);
        for (size_t j = 0; sensitive && j < r->n_targets; j++)
            assert_int_equal(r->targets[j].t->kind, TEAM_INHOUSE);
        assert_true(r->record ? r->n_targets == 0 && r->queue_team == NULL : r->queue_team != NULL);
    }
    /* omni-phonelog's answered calls are recorded, not routed (docs/connectors.md, "Answered calls") */
    assert_string_equal(p->routes[0].name, "answered-calls");
    assert_true(p->routes[0].record);
    assert_int_equal(p->n_agents, 5);
    assert_int_equal(p->agents[2].n_skill, 2);
    assert_string_equal(p->agents[2].skill[0].name, "technical");
    assert_int_equal(p->agents[2].skill[0].level, 4);
    assert_int_equal(p->agents[0].capacity[CHANNEL_TWITTER], 4);
    assert_int_equal(p->agents[4].presence, PRESENCE_AWAY);
    assert_int_equal(p->sla_escalate_pct, 80);
    assert_true(p->sla[3].business_hours);

    /* A French outage on Twitter from a VIP: technical, urgent? No: vip came first and set high. */
    facts_t f = { .channel = "twitter", .identity = "email:x@bigcorp.example", .language = "fr",
                  .text = "Le site est en PANNE depuis ce matin", .now = 1795000000000 };
    f.tier = policy_tier(p, f.identity, 0);
    assert_string_equal(f.tier, "vip");
    classification_t c;
    classify(p, &f, &c);
    assert_string_equal(c.category, "technical");
    assert_int_equal(c.priority, PRIO_HIGH);
    assert_int_equal(c.n_rules, 2);
    assert_string_equal(c.rules[1], "outage");
    /* Spanish order status goes to classification's order-status, then routing's "spanish" rule. */
    facts_t g = { .channel = "email", .language = "es-MX", .tier = "new", .text = "¿Dónde está mi pedido?",
                  .now = 1795000000000 };
    classify(p, &g, &c);
    assert_string_equal(c.category, "order-status");
    g.category = c.category;
    g.priority = c.priority;
    size_t r = 0;
    char trace[256];
    while (r < p->n_routes && !cond_eval(&p->routes[r].when, &g, trace, sizeof trace))
        r++;
    assert_true(r < p->n_routes);
    assert_string_equal(p->routes[r].name, "spanish");
    assert_string_equal(trace, "language es-MX matches es");
    config_errors_t w = { 0 };
    config_warnings(cfg, &w); /* the sample's partners list the skills its out-of-hours rule needs */
    for (size_t i = 0; i < w.n; i++)
        print_message("  %s\n", w.lines[i]);
    assert_int_equal(w.n, 0);
    config_destroy(&cfg);
    config_errors_free(&errs);
}

static void test_no_policy(void **state)
{
    (void)state;
    /* The integration tests' small configs: no policy section at all is valid, and means no rules. */
    config_errors_t errs;
    char *path;
    router_config_t *cfg = load("router:\n  tick_ms: 50\nconversations:\n  default_queue: inbox\n", &errs, &path);
    assert_non_null(cfg);
    const policy_t *p = &cfg->policy;
    assert_int_equal(p->n_teams + p->n_agents + p->n_routes + p->n_classify + p->n_sla + p->n_calendars, 0);
    assert_string_equal(p->default_category, "general");
    assert_string_equal(p->default_priority, "normal");
    assert_int_equal(p->sla_escalate_pct, 80);
    assert_int_equal(p->offline_grace_ms, 15 * 60000);
    assert_true(p->prefer_previous_owner);
    assert_int_equal(p->aging_every_ms, 10 * 60000);
    assert_int_equal(p->fold_window_ms, 10 * 60000);
    assert_int_equal(p->fold_similarity_pct, 90);
    assert_int_equal(p->repeat_after, 3);
    config_destroy(&cfg);
    config_errors_free(&errs);
    free(path);
    /* Defaults only (no file) too. */
    cfg = config_load(NULL, NULL, 0, NULL);
    assert_non_null(cfg);
    assert_int_equal(cfg->policy.n_routes, 0);
    config_destroy(&cfg);
}

static void test_teams_and_agents(void **state)
{
    (void)state;
    fails("calendars:\n"
          "  - {name: office, timezone: Europe/Paris, hours: [mon-fri 09:00-18:00]}\n"
          "  - {name: office, timezone: UTC, hours: [mon-sun 00:00-24:00]}\n"
          "teams:\n"
          "  - {name: core, calendar: ofice}\n"
          "  - {name: core}\n"
          "  - {name: night, calendar: nights}\n"
          "agents:\n"
          "  - {id: ann, teams: [cor, night]}\n"
          "  - {id: ann, teams: [core], skills: ['billing:2', 'billing:3']}\n",
          LINES("%s:3:12: calendars[1].name: calendar \"office\" is defined twice (first at line 2 column 12)",
                "%s:5:28: teams[0].calendar: unknown calendar \"ofice\" (did you mean office?)",
                "%s:6:12: teams[1].name: team \"core\" is defined twice (first at line 5 column 12)",
                "%s:7:29: teams[2].calendar: unknown calendar \"nights\"",
                "%s:9:23: agents[0].teams[0]: unknown team \"cor\" (did you mean core?)",
                "%s:10:10: agents[1].id: agent \"ann\" is defined twice (first at line 9 column 10)",
                "%s:10:52: agents[1].skills[1]: skill billing is listed twice"));
}

/* Values wrong on their own are caught while the file is read, at the exact entry. */
static void test_value_errors(void **state)
{
    (void)state;
    fails("teams:\n"
          "  - name: acme\n"
          "    kind: outsourced\n"
          "  - name: core\n"
          "    contract: {categories: [general]}\n"
          "  - name: Bad Name\n"
          "  - {name: '-'}\n"
          "agents:\n"
          "  - {id: ann, teams: [core], skills: ['technical:7', 'x:0'], languages: [en_US]}\n"
          "  - {id: bob}\n"
          "  - {id: cid, teams: []}\n",
          LINES("%s:2:5: teams[0]: team acme is outsourced: it needs a contract (categories, limits)",
                "%s:4:5: teams[1]: team core is in-house: contracts are for outsourced teams (kind: outsourced)",
                "%s:6:11: teams[2].name: \"Bad Name\" is not a name: 1..64 of a-z, 0-9, '.', '_' and '-'",
                "%s:7:12: teams[3].name: \"-\" cannot name a team: the SLA report shows it for work no team held",
                "%s:9:39: agents[0].skills[0]: \"technical:7\": the level after ':' is 1..5 (1 basic, 5 expert)",
                "%s:9:54: agents[0].skills[1]: \"x:0\": the level after ':' is 1..5 (1 basic, 5 expert)",
                "%s:9:74: agents[0].languages[0]: \"en_US\" is not a language tag: e.g. en, fr, pt-BR",
                "%s:10:5: agents[1].teams: required key missing",
                "%s:11:22: agents[2].teams: has 0 entries; at least 1 needed"));
    fails("classification:\n"
          "  rules:\n"
          "    - {name: r1, when: {text: ['ref(und'], channel: [fax], priority: [hi], tier: [gold], sender: ['mail:*']}, category: b}\n"
          "    - {name: r2}\n"
          "    - {name: r3, when: {zone: Europe/Paris}, stop: true}\n"
          "    - {name: r4, when: {local_time: '9-5', weekdays: [monday], zone: Mars/Base}, stop: true}\n"
          "    - {name: r5, when: {any: [{not: [{any: [{tier: [vip]}]}]}]}, stop: true}\n"
          "    - {name: r6, when: {text: ['café(', '[z-a]']}, stop: true}\n",
          LINES("%s:3:32: classification.rules[0].when.text[0]: \"ref(und\" is not a valid regular expression: missing "
                "closing parenthesis (at offset 7 in the pattern)",
                "%s:3:54: classification.rules[0].when.channel[0]: \"fax\" is not a channel: email, sms, phone, twitter, "
                "facebook, x-NAME (x-* for any third-party channel)",
                "%s:3:71: classification.rules[0].when.priority[0]: \"hi\" is not a priority: urgent, high, normal or low",
                "%s:3:83: classification.rules[0].when.tier[0]: \"gold\" is not a tier: vip, repeat or new",
                "%s:3:99: classification.rules[0].when.sender[0]: \"mail:*\" is not an identity glob: KIND:PATTERN with "
                "KIND email, phone, twitter, facebook or x-NAME, e.g. email:*@bigcorp.com, phone:+44*",
                "%s:4:7: classification.rules[1]: rule r2 sets nothing: give it a category, a priority, skills or stop",
                "%s:5:24: classification.rules[2].when: zone is only read by local_time and weekdays; write one of them "
                "or remove zone",
                "%s:6:37: classification.rules[3].when.local_time: \"9-5\" is not a time span: HH:MM-HH:MM, e.g. "
                "09:00-18:00, or 22:00-06:00 across midnight (00:00-24:00 is the whole day)",
                "%s:6:55: classification.rules[3].when.weekdays[0]: \"monday\" is not a weekday: mon, tue, wed, thu, fri, "
                "sat, sun or a range such as mon-fri",
                "%s:6:70: classification.rules[3].when.zone: \"Mars/Base\" is not a time zone: zone \"Mars/Base\": "
                "/usr/share/zoneinfo/Mars/Base: no such zone",
                /* conditions nest three deep: when, its any/not, and theirs */
                "%s:7:39: classification.rules[4].when.any[0].not[0].any: unknown key",
                /* the offset counts characters: "café(" fails after 5 of them (6 bytes) */
                "%s:8:32: classification.rules[5].when.text[0]: \"café(\" is not a valid regular expression: missing "
                "closing parenthesis (at offset 5 in the pattern)",
                "%s:8:41: classification.rules[5].when.text[1]: \"[z-a]\" is not a valid regular expression: range out "
                "of order in character class (at offset 3 in the pattern)"));
    fails("sla:\n"
          "  targets:\n"
          "    - {first_response: 1h, calendar: x}\n"
          "    - {when: {channel: [sms]}}\n"
          "    - {first_response: 30s}\n"
          "  escalate_at: 0\n"
          "customers:\n"
          "  vip: ['email:*@x.com', 'bob@x.com']\n",
          LINES("%s:3:7: sla.targets[0]: calendar is only read with business_hours: true",
                /* found after the walk, yet in the same pass and in file order */
                "%s:3:38: sla.targets[0].calendar: unknown calendar \"x\" (no calendars are defined)",
                "%s:4:7: sla.targets[1].first_response: required key missing",
                "%s:5:24: sla.targets[2].first_response: 30s (30000) is below the minimum 60000",
                "%s:6:16: sla.escalate_at: 0 is below the minimum 1",
                "%s:8:26: customers.vip[1]: \"bob@x.com\" is not an identity glob: KIND:PATTERN with KIND email, phone, "
                "twitter, facebook or x-NAME, e.g. email:*@bigcorp.com, phone:+44*"));
}

/* Calendar lines are checked by the calendar's own parser; the place is ours, the wording its. */
static void test_calendar_errors(void **state)
{
    (void)state;
    config_errors_t errs;
    char *path;
    router_config_t *cfg = load("calendars:\n"
                                "  - {name: c1, timezone: Europe/Pariss, hours: ['mon-fry 09:00-18:00'], holidays: [2026-02-30]}\n"
                                "  - {name: c2, timezone: UTC}\n", &errs, &path);
    assert_null(cfg);
    static const char *const where[] = { "%s:2:26: calendars[0].timezone: ", "%s:2:49: calendars[0].hours[0]: ",
                                         "%s:2:84: calendars[0].holidays[0]: ", "%s:3:5: calendars[1].hours: " };
    assert_int_equal(errs.n, 4);
    for (size_t i = 0; i < 4; i++) {
        char want[256];
        snprintf(want, sizeof want, where[i], path);
        if (strncmp(errs.lines[i], want, strlen(want)) != 0)
            fail_msg("got %s, want %s...", errs.lines[i], want);
    }
    config_errors_free(&errs);
    free(path);
}

/* References between sections, checked once everything is read. */
static void test_routing_errors(void **state)
{
    (void)state;
    fails("classification:\n"
          "  rules:\n"
          "    - {name: t, when: {text: [crash]}, category: technical}\n"
          "teams:\n"
          "  - {name: core}\n"
          "  - {name: acme, kind: outsourced, contract: {categories: [technical, basic]}}\n"
          "routing:\n"
          "  rules:\n"
          "    - name: tech\n"
          "      when: {category: [technical, billing]}\n"
          "      targets:\n"
          "        - {team: core}\n"
          "        - {team: core, timeout: 5m}\n"
          "        - {team: acmee}\n"
          "      queue: nobody\n"
          "    - name: tech\n"
          "      when: {open_in: office}\n"
          "      targets: [{team: core}]\n",
          LINES("%s:6:71: teams[1].contract.categories[1]: no classification rule sets the category \"basic\" (nor is it "
                "classification.default_category)",
                "%s:10:36: routing.rules[0].when.category[1]: no classification rule sets the category \"billing\" (nor "
                "is it classification.default_category), so this can never hold",
                "%s:13:18: routing.rules[0].targets[1].team: team core is already targets[0] of this rule; to wait "
                "longer for it, raise that target's timeout",
                "%s:14:18: routing.rules[0].targets[2].team: unknown team \"acmee\" (did you mean acme?)",
                "%s:15:14: routing.rules[0].queue: unknown team \"nobody\"",
                "%s:16:7: routing.rules: no rule takes all work: end the list with a rule without `when` (a "
                "catch-all), so no conversation is left without a team",
                "%s:16:13: routing.rules[1].name: rule \"tech\" is defined twice (first at line 9 column 13)",
                "%s:17:23: routing.rules[1].when.open_in: unknown calendar \"office\" (no calendars are defined)"));
    fails("teams:\n"
          "  - {name: core}\n"
          "routing:\n"
          "  rules:\n"
          "    - name: first\n"
          "      when: {channel: [sms]}\n"
          "      targets: [{team: core}]\n"
          "    - {name: all, targets: [{team: core}]}\n"
          "    - {name: late, when: {channel: [email]}, targets: [{team: core}]}\n",
          LINES("%s:9:7: routing.rules[2]: rule late is never used: rule all before it has no `when` and takes all work"));
    /* an error in the catch-all's own entry (its targets) hides none in the rules after it */
    fails("teams:\n"
          "  - {name: core}\n"
          "routing:\n"
          "  rules:\n"
          "    - {name: all, targets: [{team: core, timeout: banana}]}\n"
          "    - {name: late, targets: [{team: core}]}\n",
          LINES("%s:5:51: routing.rules[0].targets[0].timeout: expected a duration in milliseconds (500, 500ms, 5s), "
                "got \"banana\"",
                "%s:6:7: routing.rules[1]: rule late is never used: rule all before it has no `when` and takes all work"));
    fails("routing:\n  rules:\n    - {name: empty, targets: []}\n",
          LINES("%s:3:30: routing.rules[0].targets: has 0 entries; at least 1 needed"));
    fails("routing:\n  rules:\n    - {name: x, targets: [{team: core}]}\n",
          LINES("%s:3:34: routing.rules[0].targets[0].team: unknown team \"core\" (no teams are defined)"));
    /* record: true (docs/routing.md): a rule routes what it matches or records it, never both nor neither */
    fails("teams:\n"
          "  - {name: core}\n"
          "routing:\n"
          "  rules:\n"
          "    - name: calls\n"
          "      when: {channel: [phone]}\n"
          "      record: true\n"
          "      targets: [{team: core}]\n"
          "    - {name: logged, when: {channel: [sms]}, record: true, queue: core}\n"
          "    - {name: nowhere, when: {channel: [email]}}\n"
          "    - {name: all, record: true}\n",
          LINES("%s:8:16: routing.rules[0].targets: rule calls has record: true: what it matches is stored resolved "
                "and goes to nobody; remove its targets, or remove record",
                "%s:9:67: routing.rules[1].queue: rule logged has record: true: nothing it matches ever waits in a "
                "queue; remove queue",
                "%s:10:7: routing.rules[2].targets: required key missing (or record: true, for a rule whose matches "
                "are not work)",
                "%s:11:27: routing.rules[3].record: rule all takes all work: the catch-all must route it (targets), "
                "not record it"));
}

/* One pass reports every error of every kind, each at its own entry, in file order: a value error in one
 * section hides neither the unknown keys of another nor the references checked once all is read. */
static void test_every_error_at_once(void **state)
{
    (void)state;
    fails("router:\n"
          "  tick_ms: 0\n"
          "redis: {databse: 2}\n"
          "calendars:\n"
          "  - {name: office, timezone: UTC, hours: [mon-fri 09:00-18:00]}\n"
          "teams:\n"
          "  - {name: core, calendar: ofice, handle_time: fast}\n"
          "  - {name: acme, kind: outsourced, contract: {categories: [basic]}, colour: red}\n"
          "agents:\n"
          "  - {id: ann, teams: [core, tech], languages: [en_US]}\n"
          "  - {id: bob, teams: [Tech, nobody]}\n"
          "classification:\n"
          "  rules:\n"
          "    - {name: t, when: {category: [billing]}, category: technical}\n"
          "routing:\n"
          "  rules:\n"
          "    - name: all\n"
          "      targets: [{team: core}, {team: nosuch}]\n"
          "      queue: acme\n"
          "sla:\n"
          "  targets:\n"
          "    - {first_response: 5, calendar: offfice, business_hours: true}\n",
          LINES("%s:2:12: router.tick_ms: 0 is below the minimum 1",
                "%s:3:9: redis.databse: unknown key (did you mean redis.database?)",
                "%s:7:28: teams[0].calendar: unknown calendar \"ofice\" (did you mean office?)",
                "%s:7:48: teams[0].handle_time: expected a duration in milliseconds (500, 500ms, 5s), got \"fast\"",
                "%s:8:60: teams[1].contract.categories[0]: no classification rule sets the category \"basic\" (nor is "
                "it classification.default_category)",
                "%s:8:69: teams[1].colour: unknown key",
                "%s:10:29: agents[0].teams[1]: unknown team \"tech\"",
                "%s:10:48: agents[0].languages[0]: \"en_US\" is not a language tag: e.g. en, fr, pt-BR",
                /* a refused entry hides neither its neighbours nor what is checked of them later */
                "%s:11:23: agents[1].teams[0]: \"Tech\" is not a name: 1..64 of a-z, 0-9, '.', '_' and '-'",
                "%s:11:29: agents[1].teams[1]: unknown team \"nobody\"",
                "%s:14:35: classification.rules[0].when.category[0]: no classification rule sets the category "
                "\"billing\" (nor is it classification.default_category), so this can never hold",
                "%s:18:38: routing.rules[0].targets[1].team: unknown team \"nosuch\"",
                "%s:22:24: sla.targets[0].first_response: 5 is below the minimum 60000",
                "%s:22:37: sla.targets[0].calendar: unknown calendar \"offfice\" (did you mean office?)"));
}

/* Loads text, which must be valid, and asserts its warnings are exactly want ("%1$s": the path). */
static void warns(const char *text, const char *const *want)
{
    config_errors_t errs, w = { 0 };
    char *path;
    router_config_t *cfg = load(text, &errs, &path);
    for (size_t i = 0; i < errs.n; i++)
        print_message("  error: %s\n", errs.lines[i]);
    assert_non_null(cfg);
    config_warnings(cfg, &w);
    size_t n = 0;
    bool same = true;
    char lines[16][1024];
    for (; want[n]; n++) {
        snprintf(lines[n], sizeof lines[n], want[n], path);
        same = same && n < w.n && strcmp(w.lines[n], lines[n]) == 0;
    }
    if (!same || n != w.n) {
        for (size_t i = 0; i < w.n; i++)
            print_message("  got: %s\n", w.lines[i]);
        for (size_t i = 0; i < n; i++)
            print_message(" want: %s\n", lines[i]);
        fail();
    }
    config_errors_free(&w);
    config_errors_free(&errs);
    config_destroy(&cfg);
    free(path);
}

/* Routing rules that can be given work none of their targets can ever take, by skills or language. */
static void test_warnings(void **state)
{
    (void)state;
    warns("teams:\n"
          "  - {name: core, languages: [en]}\n"
          "  - {name: tech}\n"
          "  - name: partner\n"
          "    kind: outsourced\n"
          "    languages: [en]\n"
          "    contract: {categories: [technical, basic]}\n"
          "  - name: skilled\n"
          "    kind: outsourced\n"
          "    skills: [technical:4, french]\n"
          "    contract: {categories: [technical, basic, billing]}\n"
          "agents:\n"
          "  - {id: ann, teams: [core], skills: ['billing:1'], languages: [en]}\n"
          "  - {id: bob, teams: [tech], skills: ['technical:2'], languages: [en, fr]}\n"
          "classification:\n"
          "  rules:\n"
          "    - {name: outage, when: {text: [down]}, category: technical, skills: ['technical:3']}\n"
          "    - {name: bill, when: {text: [refund]}, category: billing, skills: ['billing:2']}\n"
          "    - {name: french, when: {language: [fr]}, skills: [french]}\n"
          "    - {name: german, when: {language: [de]}, category: basic}\n"
          "  default_category: basic\n"
          "routing:\n"
          "  rules:\n"
          "    - {name: tech, when: {category: [technical]}, targets: [{team: tech}, {team: partner}]}\n"
          "    - {name: tech2, when: {category: [technical], channel: [sms]}, targets: [{team: skilled}]}\n"
          "    - {name: es, when: {language: [es]}, targets: [{team: core}, {team: tech}]}\n"
          "    - {name: all, targets: [{team: core}, {team: partner}]}\n",
          /* none for tech2: its partner lists technical:4 and french, and all of outage's technical work is
           * taken by tech before it (a rule whose only condition is the category) */
          LINES("%s:24:7: warning: routing.rules[0]: rule tech can be given work that classification rule outage asks"
                " skill technical:3 for (category technical), but none of its targets can ever take it: no agent of "
                "tech has technical:3 or more; partner, a partner without agents, does not list technical:3 or more "
                "in its skills",
                "%s:24:7: warning: routing.rules[0]: rule tech can be given work that classification rule french asks"
                " skill french:1 for (any category), but none of its targets can ever take it: no agent of tech has "
                "french:1 or more; partner, a partner without agents, does not list french:1 or more in its skills",
                "%s:26:7: warning: routing.rules[2]: rule es can be given work that classification rule bill asks "
                "skill billing:2 for (category billing), but none of its targets can ever take it: no agent of core "
                "has billing:2 or more; no agent of tech has billing:2 or more",
                "%s:26:7: warning: routing.rules[2]: rule es can be given work that classification rule french asks "
                "skill french:1 for (any category), but none of its targets can ever take it: no agent of core has "
                "french:1 or more; no agent of tech has french:1 or more",
                "%s:26:7: warning: routing.rules[2]: rule es takes work in language es (its when), but none of its "
                "targets can ever take it: core does not cover es; no agent of tech speaks es",
                "%s:27:7: warning: routing.rules[3]: rule all can be given work that classification rule bill asks "
                "skill billing:2 for (category billing), but none of its targets can ever take it: no agent of core "
                "has billing:2 or more; partner's contract does not cover billing",
                "%s:27:7: warning: routing.rules[3]: rule all can be given work that classification rule french asks "
                "skill french:1 for (any category), but none of its targets can ever take it: no agent of core has "
                "french:1 or more; partner, a partner without agents, does not list french:1 or more in its skills",
                "%s:27:7: warning: routing.rules[3]: rule all takes work in language fr (classification rule french's"
                " when, any category), but none of its targets can ever take it: core does not cover fr; partner does"
                " not cover fr",
                "%s:27:7: warning: routing.rules[3]: rule all takes work in language de (classification rule german's"
                " when, category basic), but none of its targets can ever take it: core does not cover de; partner "
                "does not cover de"));
}

static void test_skill_limit(void **state)
{
    (void)state;
    /* classification_t has room for 16 distinct skills: a 17th could be dropped silently, so it is refused. */
    char text[2048] = "classification:\n  rules:\n";
    for (int i = 1; i <= 17; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "    - {name: r%d, skills: [s%d, 'common:2']}\n", i,
                 i);
    fails(text, LINES("%s:18:28: classification.rules[15].skills[0]: skill s16 goes beyond the 16 distinct skills "
                      "classification rules may ask for",
                      "%s:19:28: classification.rules[16].skills[0]: skill s17 goes beyond the 16 distinct skills "
                      "classification rules may ask for"));
}

/* The compiled policy can be released and compiled again (policy_compile starts afresh). */
static void test_recompile(void **state)
{
    (void)state;
    config_errors_t errs = { 0 };
    router_config_t *cfg = config_load("conf/omnirouter.yaml", NULL, 0, &errs);
    assert_non_null(cfg);
    assert_int_equal(policy_compile(&cfg->policy, &errs), 0);
    assert_int_equal(errs.n, 0);
    policy_release(&cfg->policy);
    policy_release(&cfg->policy);
    assert_null(cfg->policy.calendars[0].cal);
    assert_null(cfg->policy.routes[0].when.compiled);
    assert_int_equal(policy_compile(&cfg->policy, &errs), 0);
    assert_non_null(cfg->policy.routes[cfg->policy.n_routes - 1].targets[0].t); /* the catch-all has targets */
    config_destroy(&cfg);
}

/* A listed language covers the tags that are it or begin with it and a "-": a primary subtag covers every region
 * of it, a regional tag only that region (docs/routing.md, Languages). */
static void test_languages_cover_tags(void **state)
{
    (void)state;
    char *pt[] = { "pt" }, *br[] = { "pt-BR" }, *two[] = { "en", "fr-CA" };
    assert_true(policy_speaks(pt, 1, "pt"));
    assert_true(policy_speaks(pt, 1, "pt-BR"));
    assert_true(policy_speaks(pt, 1, "PT-pt"));
    assert_false(policy_speaks(pt, 1, "ptx"));
    assert_true(policy_speaks(br, 1, "pt-BR"));
    assert_true(policy_speaks(br, 1, "pt-br"));
    assert_true(policy_speaks(br, 1, "pt-BR-x-rio"));
    assert_false(policy_speaks(br, 1, "pt"));
    assert_false(policy_speaks(br, 1, "pt-PT"));
    assert_false(policy_speaks(br, 1, "pt-BRA"));
    assert_true(policy_speaks(two, 2, "fr-CA"));
    assert_false(policy_speaks(two, 2, "fr"));
    assert_true(policy_speaks(two, 2, "en-GB"));
    assert_true(policy_speaks(two, 0, "de"));   /* none listed: any */
    assert_true(policy_speaks(two, 2, NULL));   /* a message without a language: anyone */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample),
        cmocka_unit_test(test_no_policy),
        cmocka_unit_test(test_teams_and_agents),
        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_calendar_errors),
        cmocka_unit_test(test_routing_errors),
        cmocka_unit_test(test_every_error_at_once),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_skill_limit),
        cmocka_unit_test(test_recompile),
        cmocka_unit_test(test_languages_cover_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
