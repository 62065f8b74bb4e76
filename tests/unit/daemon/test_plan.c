/* plan.c, the static half of a routing decision, on a small policy: which rule, which targets and why
 * others were skipped, which agents and why others were passed over, the SLA clock, the plan's validity
 * across a calendar change, and how due work (timeout, escalation, owner offline) is planned. Every plan
 * is checked against its declaration in daemon/lua/_plan.lua, the one assign.lua checks it against. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "config.h"
#include "omni/message.h"
#include "plan.h"

/* Monday 2026-11-30 10:00 UTC; the office (Europe/Paris, 09-18 Mon-Fri) is open, closes at 17:00 UTC. */
#define MON_10H 1796032800000LL
#define HOUR 3600000LL

static const char POLICY[] =
    "calendars:\n"
    "  - {name: paris, timezone: Europe/Paris, hours: [\"mon-fri 09:00-18:00\"]}\n"
    "teams:\n"
    "  - {name: core, kind: in-house, calendar: paris, languages: [en, fr]}\n"
    "  - {name: tier2, kind: in-house}\n"
    "  - name: bpo\n"
    "    kind: outsourced\n"
    "    languages: [en, es]\n"
    "    contract: {categories: [basic], max_concurrent: 2}\n"
    "agents:\n"
    "  - {id: alice, teams: [core], skills: [\"technical:3\"], languages: [en, fr], capacity: {email: 2, sms: 1}}\n"
    "  - {id: bob, teams: [core], languages: [en], capacity: {email: 2}}\n"
    "  - {id: tina, teams: [tier2], skills: [\"technical:5\"], capacity: {email: 3}}\n"
    "classification:\n"
    "  rules:\n"
    "    - {name: technical, when: {text: [crash]}, category: technical, priority: high, skills: [\"technical:2\"]}\n"
    "  default_category: basic\n"
    "routing:\n"
    "  rules:\n"
    "    - {name: calls, when: {channel: [phone], text: ['^Answered call from']}, record: true}\n"
    "    - name: tech\n"
    "      when: {category: [technical]}\n"
    "      targets: [{team: core, timeout: 20m}, {team: tier2}]\n"
    "      queue: core\n"
    "    - name: rest\n"
    "      targets: [{team: bpo}, {team: core}]\n"
    "sla:\n"
    "  targets:\n"
    "    - {first_response: 1h}\n"
    "  escalate_at: 50\n";

static router_config_t *cfg;

static int setup(void **state)
{
    (void)state;
    config_errors_t errs;
    cfg = config_load_text("policy.yaml", POLICY, strlen(POLICY), &errs);
    for (size_t i = 0; !cfg && i < errs.n; i++)
        print_message("%s\n", errs.lines[i]);
    config_errors_free(&errs);
    return cfg ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    config_destroy(&cfg);
    return 0;
}

static json_t *plan_for(const char *channel, const char *from, const char *text, const char *lang, int64_t now)
{
    omni_msg_t *m = omni_msg_new("m1", channel, strchr(from, ':') + 1, "2026-11-30T10:00:00Z", text);
    assert_non_null(m);
    if (lang)
        omni_msg_set(m, "lang", lang);
    json_t *plan = route_plan_new(&cfg->policy, "7", m, from, 1, "", "", now);
    omni_msg_destroy(&m);
    char err[200] = "";
    if (route_plan_check(plan, err, sizeof err) != 0)
        fail_msg("plan does not match daemon/lua/_plan.lua: %s", err);
    return plan;
}

static const char *str(const json_t *o, const char *path)
{
    return json_string_value(json_object_get(o, path));
}

static json_t *target(const json_t *plan, size_t i) { return json_array_get(json_object_get(plan, "targets"), i); }

static void test_technical_work_to_skilled_agents_with_reasons(void **state)
{
    (void)state;
    json_t *p = plan_for("email", "email:ann@example.com", "the app shows a crash", NULL, MON_10H);
    assert_string_equal(str(p, "rule"), "tech");
    assert_string_equal(str(p, "category"), "technical");
    assert_int_equal(json_integer_value(json_object_get(p, "prio")), 2);
    json_t *t0 = target(p, 0);
    assert_string_equal(str(t0, "team"), "core");
    assert_int_equal(json_array_size(json_object_get(t0, "agents")), 1); /* alice only */
    assert_string_equal(json_string_value(json_array_get(json_object_get(t0, "agents"), 0)), "alice");
    assert_int_equal(json_integer_value(json_object_get(t0, "timeout")), 20 * 60000);
    json_t *skipped = json_object_get(json_array_get(json_object_get(json_object_get(p, "trace"), "targets"), 0),
                                      "agents_skipped");
    assert_string_equal(str(skipped, "bob"), "lacks skill technical (needs level 2)");
    /* SLA: 1 h, escalation at 50 % */
    assert_int_equal(json_integer_value(json_object_get(p, "due")), MON_10H + HOUR);
    assert_int_equal(json_integer_value(json_object_get(p, "escalate_at")), MON_10H + HOUR / 2);
    /* valid until core's calendar closes: 18:00 Paris = 17:00 UTC */
    assert_int_equal(json_integer_value(json_object_get(p, "valid_until")), MON_10H + 7 * HOUR);
    json_decref(p);
}

static void test_closed_team_and_partner_contract_skip_targets(void **state)
{
    (void)state;
    /* Saturday: core is closed; basic work goes to the partner only */
    json_t *p = plan_for("email", "email:sam@example.com", "where is my parcel", NULL, MON_10H + 5 * 24 * HOUR);
    assert_string_equal(str(p, "rule"), "rest");
    assert_int_equal(json_array_size(json_object_get(p, "targets")), 1);
    assert_string_equal(str(target(p, 0), "team"), "bpo");
    assert_true(json_boolean_value(json_object_get(target(p, 0), "team_level")));
    json_t *tr = json_array_get(json_object_get(json_object_get(p, "trace"), "targets"), 1);
    assert_string_equal(str(tr, "skipped"), "closed until Mon 09:00 Europe/Paris (calendar paris)");
    assert_false(json_is_true(json_object_get(tr, "never"))); /* only until it opens */
    assert_null(json_object_get(p, "unservable"));
    /* opens Monday 09:00 Paris = 08:00 UTC */
    assert_int_equal(json_integer_value(json_object_get(p, "valid_until")), MON_10H + 7 * 24 * HOUR - 2 * HOUR);
    json_decref(p);
    /* a language the partner's contract does not cover */
    p = plan_for("email", "email:luc@example.com", "bonjour", "fr", MON_10H);
    json_t *first = json_array_get(json_object_get(json_object_get(p, "trace"), "targets"), 0);
    assert_string_equal(str(first, "skipped"), "contract does not cover language fr");
    assert_true(json_is_true(json_object_get(first, "never")));
    assert_string_equal(str(target(p, 0), "team"), "core");
    json_decref(p);
}

static void test_work_no_target_can_ever_take_is_marked_unservable(void **state)
{
    (void)state;
    /* German: the partner's contract and core's languages refuse it at any hour, even on a Saturday, when
     * core is closed as well: the trace gives the reason that lasts, not "closed" */
    int64_t when[] = { MON_10H, MON_10H + 5 * 24 * HOUR };
    for (size_t i = 0; i < 2; i++) {
        json_t *p = plan_for("email", "email:udo@example.com", "wo ist mein Paket", "de", when[i]);
        char err[200];
        assert_int_equal(route_plan_check(p, err, sizeof err), 0);
        assert_int_equal(json_array_size(json_object_get(p, "targets")), 0);
        assert_string_equal(str(p, "unservable"),
                            "team bpo: contract does not cover language de; team core: team does not speak de");
        json_t *core = json_array_get(json_object_get(json_object_get(p, "trace"), "targets"), 1);
        assert_string_equal(str(core, "skipped"), "team does not speak de");
        json_decref(p);
    }
}

/* docs/routing.md, "Recording what is not work": a rule with record: true names itself in the plan of a new
 * conversation (assign.lua records it by that), and the plan's rule and targets are the next matching rule's, for
 * a conversation more joined before the decision; a move (work already routed) passes it. */
static void test_a_record_rule_is_planned_for_new_conversations_only(void **state)
{
    (void)state;
    json_t *p = plan_for("phone", "phone:+14155550100", "Answered call from +14155550100 (212 s)", NULL, MON_10H);
    assert_string_equal(str(p, "record"), "calls");
    assert_string_equal(str(json_object_get(p, "trace"), "record"), "calls");
    assert_string_equal(str(p, "rule"), "rest");
    assert_string_equal(str(target(p, 0), "team"), "bpo");
    /* the rules after the record rule are the fallback's: not in the trace */
    assert_int_equal(json_array_size(json_object_get(json_object_get(p, "trace"), "rules_tried")), 0);
    json_decref(p);
    p = plan_for("phone", "phone:+14155550100", "Missed call from +14155550100; please call back", NULL, MON_10H);
    assert_string_equal(str(p, "rule"), "rest");
    assert_null(json_object_get(p, "record"));
    json_decref(p);
    const char *msg = "{\"id\":\"m1\",\"channel\":\"phone\",\"from\":{\"id\":\"+14155550100\"},"
                      "\"received_at\":\"2026-11-30T10:00:00Z\",\"text\":\"Answered call from +14155550100 (212 s)\"}";
    const char *f[DUE_REPLY_FIELDS] = {
        [DUE_REPLY_CONVERSATION] = "7", [DUE_REPLY_KIND] = "timeout", [DUE_REPLY_VERSION] = "3",
        [DUE_REPLY_TARGET] = "0", [DUE_REPLY_OWNER] = "team:bpo", [DUE_REPLY_FIRST_MESSAGE] = msg,
        [DUE_REPLY_IDENTITY] = "phone:+14155550100", [DUE_REPLY_CONVERSATIONS] = "1", [DUE_REPLY_TIER] = "",
        [DUE_REPLY_LAST_OWNER] = "", [DUE_REPLY_TRANSFER_TO] = "", [DUE_REPLY_QUEUED_FROM] = "", [DUE_REPLY_QUEUED_EXCLUDE] = "",
    };
    char err[200];
    p = route_plan_due(&cfg->policy, f, MON_10H);
    assert_int_equal(route_plan_check(p, err, sizeof err), 0);
    assert_string_equal(str(p, "rule"), "rest");
    assert_null(json_object_get(p, "record"));
    json_t *passed = json_array_get(json_object_get(json_object_get(p, "trace"), "rules_tried"), 0);
    assert_string_equal(str(passed, "rule"), "calls");
    assert_string_equal(str(passed, "failed"), "it records new conversations only, and this one is work already (timeout)");
    json_decref(p);
    /* a new conversation handed out again (its router died before deciding it) is still recorded */
    f[DUE_REPLY_KIND] = "new", f[DUE_REPLY_TARGET] = "-1", f[DUE_REPLY_OWNER] = "", f[DUE_REPLY_VERSION] = "0";
    p = route_plan_due(&cfg->policy, f, MON_10H);
    assert_int_equal(route_plan_check(p, err, sizeof err), 0);
    assert_string_equal(str(p, "record"), "calls");
    json_decref(p);
}

static void test_due_work_is_planned_from_the_next_target(void **state)
{
    (void)state;
    const char *msg = "{\"id\":\"m1\",\"channel\":\"email\",\"from\":{\"id\":\"ann@example.com\"},"
                      "\"received_at\":\"2026-11-30T10:00:00Z\",\"text\":\"crash again\"}";
    const char *f[DUE_REPLY_FIELDS] = {
        [DUE_REPLY_CONVERSATION] = "7", [DUE_REPLY_KIND] = "timeout", [DUE_REPLY_VERSION] = "3",
        [DUE_REPLY_TARGET] = "0", [DUE_REPLY_OWNER] = "agent:alice", [DUE_REPLY_FIRST_MESSAGE] = msg,
        [DUE_REPLY_IDENTITY] = "email:ann@example.com", [DUE_REPLY_CONVERSATIONS] = "1", [DUE_REPLY_TIER] = "",
        [DUE_REPLY_LAST_OWNER] = "", [DUE_REPLY_TRANSFER_TO] = "", [DUE_REPLY_QUEUED_FROM] = "", [DUE_REPLY_QUEUED_EXCLUDE] = "",
    };
    char err[200];
    json_t *p = route_plan_due(&cfg->policy, f, MON_10H);
    assert_int_equal(route_plan_check(p, err, sizeof err), 0);
    assert_string_equal(str(p, "version"), "3");
    assert_string_equal(str(p, "exclude"), "alice"); /* timed out: not her again for this move */
    assert_int_equal(json_array_size(json_object_get(p, "targets")), 1);
    assert_string_equal(str(target(p, 0), "team"), "tier2");
    json_decref(p);
    /* waiting work escalates by becoming more urgent */
    f[DUE_REPLY_KIND] = "escalation", f[DUE_REPLY_TARGET] = "-1", f[DUE_REPLY_OWNER] = "";
    p = route_plan_due(&cfg->policy, f, MON_10H);
    assert_int_equal(route_plan_check(p, err, sizeof err), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "prio")), 1);
    json_decref(p);
    /* a first message that cannot be read: no plan, logged */
    f[DUE_REPLY_FIRST_MESSAGE] = "{not json";
    assert_null(route_plan_due(&cfg->policy, f, MON_10H));
}

/* docs/delivery.md: work that lost its owner otherwise than by a timeout starts again from its target; a
 * transfer plans the named team only. Offers settings travel in each target. */
static void test_rerouted_work_is_planned_from_its_target_or_for_the_named_team(void **state)
{
    (void)state;
    const char *msg = "{\"id\":\"m1\",\"channel\":\"email\",\"from\":{\"id\":\"ann@example.com\"},"
                      "\"received_at\":\"2026-11-30T10:00:00Z\",\"text\":\"where is my parcel\"}";
    const char *f[DUE_REPLY_FIELDS] = {
        [DUE_REPLY_CONVERSATION] = "7", [DUE_REPLY_KIND] = "offer expired", [DUE_REPLY_VERSION] = "3",
        [DUE_REPLY_TARGET] = "1", [DUE_REPLY_OWNER] = "agent:alice", [DUE_REPLY_FIRST_MESSAGE] = msg,
        [DUE_REPLY_IDENTITY] = "email:ann@example.com", [DUE_REPLY_CONVERSATIONS] = "1", [DUE_REPLY_TIER] = "",
        [DUE_REPLY_LAST_OWNER] = "", [DUE_REPLY_TRANSFER_TO] = "", [DUE_REPLY_QUEUED_FROM] = "", [DUE_REPLY_QUEUED_EXCLUDE] = "",
    };
    char err[200];
    static const char *const same[] = { "offer expired", "rejected" };
    for (size_t i = 0; i < 2; i++) {
        f[DUE_REPLY_KIND] = same[i];
        json_t *p = route_plan_due(&cfg->policy, f, MON_10H);
        assert_int_equal(route_plan_check(p, err, sizeof err), 0);
        assert_string_equal(str(p, "exclude"), "alice");
        assert_string_equal(str(target(p, 0), "team"), "core"); /* the same target (rule rest's 2nd): bob */
        assert_int_equal(json_array_size(json_object_get(p, "targets")), 1);
        assert_int_equal(json_integer_value(json_object_get(target(p, 0), "accept_timeout")), 60000);
        assert_false(json_boolean_value(json_object_get(target(p, 0), "auto_accept")));
        json_decref(p);
    }
    f[DUE_REPLY_KIND] = "transfer", f[DUE_REPLY_TRANSFER_TO] = "tier2";
    json_t *p = route_plan_due(&cfg->policy, f, MON_10H);
    assert_int_equal(route_plan_check(p, err, sizeof err), 0);
    assert_int_equal(json_array_size(json_object_get(p, "targets")), 1);
    assert_string_equal(str(target(p, 0), "team"), "tier2");
    assert_int_equal(json_integer_value(json_object_get(target(p, 0), "i")), 2); /* not in the rule: past its end */
    assert_string_equal(str(p, "queue"), "tier2");
    assert_null(json_object_get(p, "exclude"));
    assert_string_equal(str(p, "transfer"), "tier2"); /* assign.lua keeps it: transferred_to */
    json_decref(p);
}

/* docs/routing.md, Queues: waiting work re-planned or escalated goes on with the move it waits in (due.lua's
 * queued_from and queued_exclude): a technical case timed out at core (tech's target 0) is re-planned from
 * tier2, alice still left out; one it never moved is re-planned from the rule's first target. */
static void test_waiting_work_is_re_planned_in_the_move_it_waits_in(void **state)
{
    (void)state;
    const char *msg = "{\"id\":\"m1\",\"channel\":\"email\",\"from\":{\"id\":\"ann@example.com\"},"
                      "\"received_at\":\"2026-11-30T10:00:00Z\",\"text\":\"a crash\"}";
    const char *f[DUE_REPLY_FIELDS] = {
        [DUE_REPLY_CONVERSATION] = "7", [DUE_REPLY_KIND] = "replan", [DUE_REPLY_VERSION] = "3",
        [DUE_REPLY_TARGET] = "-1", [DUE_REPLY_OWNER] = "", [DUE_REPLY_FIRST_MESSAGE] = msg,
        [DUE_REPLY_IDENTITY] = "email:ann@example.com", [DUE_REPLY_CONVERSATIONS] = "1", [DUE_REPLY_TIER] = "",
        [DUE_REPLY_LAST_OWNER] = "", [DUE_REPLY_TRANSFER_TO] = "", [DUE_REPLY_QUEUED_FROM] = "1",
        [DUE_REPLY_QUEUED_EXCLUDE] = "alice",
    };
    char err[200];
    static const char *const kinds[] = { "replan", "escalation" };
    for (size_t i = 0; i < 2; i++) {
        f[DUE_REPLY_KIND] = kinds[i];
        json_t *p = route_plan_due(&cfg->policy, f, MON_10H);
        assert_int_equal(route_plan_check(p, err, sizeof err), 0);
        assert_int_equal(json_array_size(json_object_get(p, "targets")), 1);
        assert_string_equal(str(target(p, 0), "team"), "tier2");
        assert_string_equal(str(p, "exclude"), "alice");
        assert_int_equal(json_integer_value(json_object_get(p, "from")), 1); /* kept again if it still waits */
        assert_null(json_object_get(json_object_get(p, "trace"), "left")); /* it left nobody now */
        json_decref(p);
    }
    f[DUE_REPLY_KIND] = "replan", f[DUE_REPLY_QUEUED_FROM] = "", f[DUE_REPLY_QUEUED_EXCLUDE] = "";
    json_t *p = route_plan_due(&cfg->policy, f, MON_10H);
    assert_int_equal(route_plan_check(p, err, sizeof err), 0);
    assert_string_equal(str(target(p, 0), "team"), "core");
    assert_null(json_object_get(p, "from"));
    assert_null(json_object_get(p, "exclude"));
    json_decref(p);
}

static void test_the_check_refuses_what_lua_would(void **state)
{
    (void)state;
    json_t *p = plan_for("email", "email:ann@example.com", "hello", NULL, MON_10H);
    char err[200];
    json_object_set_new(p, "surprise", json_true());
    assert_int_equal(route_plan_check(p, err, sizeof err), -1);
    assert_string_equal(err, "plan.surprise: not a plan field");
    json_object_del(p, "surprise");
    json_object_set_new(target(p, 0), "timeout", json_string("20m"));
    assert_int_equal(route_plan_check(p, err, sizeof err), -1);
    assert_string_equal(err, "plan.targets[1].timeout: not an int");
    json_object_del(p, "conv");
    assert_int_equal(route_plan_check(p, err, sizeof err), -1);
    assert_string_equal(err, "plan.conv: missing");
    json_decref(p);
}
/* docs/routing.md, Offers: work a transfer gave a team stays that team's: due.lua hands each later move of it out
 * with that team (transfer_to, from the conversation's transferred_to), and it is planned for that team only, the
 * agent who declined it left out, from no target of the rule (tina's index is past the rule's end). Waiting work
 * that escalates stays in that team's queue. A conversation handed out as new is planned by its rule. */
static void test_moves_of_transferred_work_are_planned_for_its_team(void **state)
{
    (void)state;
    const char *msg = "{\"id\":\"m1\",\"channel\":\"email\",\"from\":{\"id\":\"ann@example.com\"},"
                      "\"received_at\":\"2026-11-30T10:00:00Z\",\"text\":\"a crash\"}";
    const char *f[DUE_REPLY_FIELDS] = {
        [DUE_REPLY_CONVERSATION] = "7", [DUE_REPLY_KIND] = "rejected", [DUE_REPLY_VERSION] = "3",
        [DUE_REPLY_TARGET] = "2", [DUE_REPLY_OWNER] = "agent:tina", [DUE_REPLY_FIRST_MESSAGE] = msg,
        [DUE_REPLY_IDENTITY] = "email:ann@example.com", [DUE_REPLY_CONVERSATIONS] = "1", [DUE_REPLY_TIER] = "",
        [DUE_REPLY_LAST_OWNER] = "", [DUE_REPLY_TRANSFER_TO] = "tier2", [DUE_REPLY_QUEUED_FROM] = "",
        [DUE_REPLY_QUEUED_EXCLUDE] = "",
    };
    char err[200];
    static const char *const kinds[] = { "rejected", "offer expired", "timeout", "escalation", "owner offline" };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        f[DUE_REPLY_KIND] = kinds[i];
        json_t *p = route_plan_due(&cfg->policy, f, MON_10H);
        assert_int_equal(route_plan_check(p, err, sizeof err), 0);
        assert_string_equal(str(p, "queue"), "tier2");
        assert_string_equal(str(p, "transfer"), "tier2");
        assert_null(json_object_get(p, "from"));
        assert_null(json_object_get(p, "unservable")); /* tina is left out for this move only: not flagged */
        assert_string_equal(str(json_object_get(p, "trace"), "transfer_to"), "tier2");
        /* tina, tier2's only agent, is left out where she lost it; an escalation lets her keep it (assign.lua's
         * holder), and presence keeps an owner gone offline out */
        bool excluded = i < 3;
        assert_int_equal(json_array_size(json_object_get(p, "targets")), excluded ? 0 : 1);
        json_decref(p);
    }
    /* waiting on tier2's queue, escalated: still tier2's, more urgent, whatever move it waited in */
    f[DUE_REPLY_KIND] = "escalation", f[DUE_REPLY_TARGET] = "-1", f[DUE_REPLY_OWNER] = "";
    f[DUE_REPLY_QUEUED_FROM] = "1";
    json_t *p = route_plan_due(&cfg->policy, f, MON_10H);
    assert_int_equal(route_plan_check(p, err, sizeof err), 0);
    assert_int_equal(json_array_size(json_object_get(p, "targets")), 1);
    assert_string_equal(str(target(p, 0), "team"), "tier2");
    assert_string_equal(str(p, "queue"), "tier2");
    assert_null(json_object_get(p, "from"));
    assert_int_equal(json_integer_value(json_object_get(p, "prio")), 1);
    json_decref(p);
    f[DUE_REPLY_KIND] = "new", f[DUE_REPLY_QUEUED_FROM] = "";
    p = route_plan_due(&cfg->policy, f, MON_10H);
    assert_int_equal(route_plan_check(p, err, sizeof err), 0);
    assert_string_equal(str(target(p, 0), "team"), "core");
    assert_null(json_object_get(p, "transfer"));
    json_decref(p);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_technical_work_to_skilled_agents_with_reasons),
        cmocka_unit_test(test_closed_team_and_partner_contract_skip_targets),
        cmocka_unit_test(test_work_no_target_can_ever_take_is_marked_unservable),
        cmocka_unit_test(test_a_record_rule_is_planned_for_new_conversations_only),
        cmocka_unit_test(test_due_work_is_planned_from_the_next_target),
        cmocka_unit_test(test_rerouted_work_is_planned_from_its_target_or_for_the_named_team),
        cmocka_unit_test(test_waiting_work_is_re_planned_in_the_move_it_waits_in),
        cmocka_unit_test(test_moves_of_transferred_work_are_planned_for_its_team),
        cmocka_unit_test(test_the_check_refuses_what_lua_would),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
