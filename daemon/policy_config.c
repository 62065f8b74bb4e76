/* The policy's key tables (calendars, teams, agents, classification, routing and SLA rules, conditions):
 * what config_schema.c walks, checks value by value and prints in the reference. Rules across items
 * (names that must exist, duplicates, the routing catch-all) are policy_compile's, in policy_compile.c. */
#include "policy.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "config_schema.h"

/* ---- conditions ----
 * `when:` nests through any: and not:. The key tables cannot refer to themselves, because the reference
 * printer (config_ref.c) follows every sub-table, so nesting is spelled out three levels deep: `when`,
 * the conditions inside its any/not, and theirs (which have no any/not). Deeper is refused as an unknown
 * key; docs/routing.md shows how to flatten. */
#define COFF(f) offsetof(cond_t, f)
#define CDOC_0(full) full
#define CDOC_1(full) "As in a rule's `when`."
#define CLIST(key, field, chk, N, d)                                                                         \
    { .path = key, .type = CFG_STRLIST, .offset = COFF(field), .count_offset = COFF(n_##field), .check = chk, \
      .flags = CFG_UNIQUE, .doc = CDOC_##N(d) }
#define CSTR(key, field, chk, N, d)                                                                          \
    { .path = key, .type = CFG_STRING, .offset = COFF(field), .flags = CFG_NULLABLE, .check = chk,            \
      .doc = CDOC_##N(d) }
#define COND_LEAF_KEYS(N)                                                                                    \
    CLIST("channel", channel, policy_check_channel, N, "Channels: email, sms, phone, twitter, facebook, "    \
          "x-NAME; x-* for every third-party channel."),                                                    \
    CLIST("category", category, policy_check_name, N, "Categories, as classification set them (a "          \
          "classification rule sees what earlier rules set)."),                                              \
    CLIST("priority", priority, policy_check_priority, N, "Priorities: urgent, high, normal, low."),         \
    CLIST("tier", tier, policy_check_tier, N, "Customer tiers: vip, repeat, new."),                          \
    CLIST("language", language, policy_check_language, N, "Language tags of the message; \"fr\" also "      \
          "holds for fr-CA. A message without a language matches none."),                                   \
    CLIST("text", text, cond_check_regex, N, "Regular expressions (PCRE2), any of which is found in the "   \
          "body; case-insensitive, Unicode-aware (\"échec\" finds \"ÉCHEC\")."),                             \
    CLIST("subject", subject, cond_check_regex, N, "The same on the subject."),                              \
    CLIST("sender", sender, policy_check_identity_glob, N, "Globs over the sender's identity key: "          \
          "email:*@bigcorp.com, phone:+44*; '*' any run, '?' one character."),                               \
    CSTR("open_in", open_in, policy_check_name, N, "A calendar's name: holds while it is open."),            \
    CSTR("closed_in", closed_in, policy_check_name, N, "A calendar's name: holds while it is closed (out "   \
         "of hours, holidays)."),                                                                            \
    CSTR("local_time", local_time, policy_check_local_time, N, "HH:MM-HH:MM in `zone`; 22:00-06:00 runs "     \
         "across midnight."),                                                                                \
    CLIST("weekdays", weekdays, policy_check_weekdays, N, "Days in `zone`: mon..sun or ranges (mon-fri)."),  \
    CSTR("zone", zone, policy_check_zone, N, "IANA time zone of local_time and weekdays (default UTC).")
#define COND_NEST_KEYS(N, SUB)                                                                               \
    { .path = "any", .type = CFG_OBJLIST, .offset = COFF(any), .count_offset = COFF(n_any), .max = 32,       \
      .sub = &SUB, .doc = CDOC_##N("Conditions of which at least one must hold.") },                         \
    { .path = "not", .type = CFG_OBJLIST, .offset = COFF(not_), .count_offset = COFF(n_not), .max = 32,      \
      .sub = &SUB, .doc = CDOC_##N("Conditions none of which may hold.") }

static const char *cond_check(const void *obj, char *buf, size_t bufsz)
{
    const cond_t *c = obj;
    (void)buf;
    (void)bufsz;
    if (c->zone && c->local_time == NULL && c->n_weekdays == 0)
        return "zone is only read by local_time and weekdays; write one of them or remove zone";
    return NULL;
}

static const cfg_key_t cond_keys_2[] = { COND_LEAF_KEYS(1), { .path = NULL } };
static const cfg_table_t cond_table_2 = { .keys = cond_keys_2, .size = sizeof(cond_t), .check = cond_check,
                                          .has_where = true, .where_offset = COFF(where) };
static const cfg_key_t cond_keys_1[] = { COND_LEAF_KEYS(1), COND_NEST_KEYS(1, cond_table_2), { .path = NULL } };
static const cfg_table_t cond_table_1 = { .keys = cond_keys_1, .size = sizeof(cond_t), .check = cond_check,
                                          .has_where = true, .where_offset = COFF(where) };
static const cfg_key_t cond_keys[] = { COND_LEAF_KEYS(0), COND_NEST_KEYS(0, cond_table_1), { .path = NULL } };
static const cfg_table_t cond_table = { .keys = cond_keys, .size = sizeof(cond_t), .check = cond_check,
                                        .has_where = true, .where_offset = COFF(where) };

#define WHEN(T, d) { .path = "when", .type = CFG_OBJECT, .offset = offsetof(T, when), .sub = &cond_table, .doc = d }

/* ---- calendars ---- */

/* Hours and holidays are tried on a scratch calendar so their errors point at the exact entry. */
static const char *check_with_calendar(const char *value, char *buf, size_t bufsz, bool holiday)
{
    char why[200];
    calendar_t *cal = calendar_new("UTC", why, sizeof why);
    int rc = cal == NULL ? -1
             : holiday   ? calendar_add_holiday(cal, value, why, sizeof why)
                         : calendar_parse_hours(cal, value, why, sizeof why);
    calendar_destroy(&cal);
    if (rc == 0)
        return NULL;
    snprintf(buf, bufsz, "%s", why);
    return buf;
}

static const char *check_hours(const char *v, char *buf, size_t bufsz)
{
    return check_with_calendar(v, buf, bufsz, false);
}

static const char *check_holiday(const char *v, char *buf, size_t bufsz)
{
    return check_with_calendar(v, buf, bufsz, true);
}

#define KOFF(f) offsetof(calendar_cfg_t, f)
static const cfg_key_t calendar_keys[] = {
    { .path = "name", .type = CFG_STRING, .offset = KOFF(name), .check = policy_check_name, .flags = CFG_REQUIRED,
      .doc = "How teams, conditions and SLA targets name it." },
    { .path = "timezone", .type = CFG_STRING, .offset = KOFF(timezone), .check = policy_check_zone,
      .flags = CFG_REQUIRED, .doc = "IANA time zone the hours are in (Europe/Paris); DST is followed." },
    { .path = "hours", .type = CFG_STRLIST, .offset = KOFF(hours), .count_offset = KOFF(n_hours), .min = 1,
      .check = check_hours, .flags = CFG_REQUIRED,
      .doc = "Opening hours, one line each: \"mon-fri 09:00-18:00\", \"sat 10:00-14:00, 15:00-17:00\", "
             "\"mon-sun 00:00-24:00\", \"mon-fri 22:00-06:00\" (overnight)." },
    { .path = "holidays", .type = CFG_STRLIST, .offset = KOFF(holidays), .count_offset = KOFF(n_holidays),
      .check = check_holiday, .flags = CFG_UNIQUE, .doc = "Local dates YYYY-MM-DD on which it stays closed." },
    { .path = NULL },
};
const cfg_table_t policy_calendar_table = { .keys = calendar_keys, .size = sizeof(calendar_cfg_t),
                                            .has_where = true, .where_offset = KOFF(where) };

/* ---- teams ---- */

static const char *const team_kinds[] = { "in-house", "outsourced", NULL };
static const char *const strategies[] = { "least-loaded", "round-robin", "longest-idle", NULL };

#define NOFF(f) offsetof(contract_t, f)
static const cfg_key_t contract_keys[] = {
    { .path = "categories", .type = CFG_STRLIST, .offset = NOFF(categories), .count_offset = NOFF(n_categories),
      .min = 1, .check = policy_check_name, .flags = CFG_REQUIRED | CFG_UNIQUE,
      .doc = "The only categories the partner may be given." },
    { .path = "languages", .type = CFG_STRLIST, .offset = NOFF(languages), .count_offset = NOFF(n_languages),
      .check = policy_check_language, .flags = CFG_UNIQUE,
      .doc = "Languages it is contracted for; empty: the team's languages." },
    { .path = "max_concurrent", .type = CFG_INT, .offset = NOFF(max_concurrent), .min = 0, .max = 1000000,
      .doc = "Conversations it may hold at once; 0: no limit." },
    { .path = "daily_quota", .type = CFG_INT, .offset = NOFF(daily_quota), .min = 0, .max = 10000000,
      .doc = "Conversations it may be given per local day (in the team's calendar zone); 0: no limit." },
    { .path = "mask_contact", .type = CFG_BOOL, .offset = NOFF(mask_contact),
      .doc = "Customer addresses and numbers are masked in what it receives (on unless turned off)." },
    { .path = "allow_vip", .type = CFG_BOOL, .offset = NOFF(allow_vip),
      .doc = "VIP customers' work may reach it; off, VIP work never goes to this partner." },
    { .path = NULL },
};
static const cfg_table_t contract_table = { .keys = contract_keys, .size = sizeof(contract_t),
                                            .has_where = true, .where_offset = NOFF(where) };

static void team_init(void *obj)
{
    ((team_t *)obj)->contract.mask_contact = true; /* a partner is outside the company: private by default */
}

static const char *team_check(const void *obj, char *buf, size_t bufsz)
{
    const team_t *t = obj;
    bool has = t->contract.where.line > 0;
    if (t->kind == TEAM_OUTSOURCED && !has)
        snprintf(buf, bufsz, "team %s is outsourced: it needs a contract (categories, limits)", t->name);
    else if (t->kind == TEAM_INHOUSE && has)
        snprintf(buf, bufsz, "team %s is in-house: contracts are for outsourced teams (kind: outsourced)", t->name);
    else
        return NULL;
    return buf;
}

/* A team's name: a name, but not "-", which the SLA report (omnictl report, GET /v1/report) shows for work no team
 * held: a team so named would share that row. */
static const char *check_team_name(const char *value, char *buf, size_t bufsz)
{
    if (!strcmp(value, "-")) {
        snprintf(buf, bufsz, "\"-\" cannot name a team: the SLA report shows it for work no team held");
        return buf;
    }
    return policy_check_name(value, buf, bufsz);
}

#define TOFF(f) offsetof(team_t, f)
static const cfg_key_t team_keys[] = {
    { .path = "name", .type = CFG_STRING, .offset = TOFF(name), .check = check_team_name, .flags = CFG_REQUIRED,
      .doc = "How agents and routing rules name it; not \"-\" (the SLA report's row for no team)." },
    { .path = "kind", .type = CFG_ENUM, .offset = TOFF(kind), .names = team_kinds, .def = "in-house",
      .doc = "in-house (our staff) or outsourced (a partner, bound by its contract)." },
    { .path = "strategy", .type = CFG_ENUM, .offset = TOFF(strategy), .names = strategies, .def = "least-loaded",
      .doc = "Which qualified agent gets the work: the least loaded, each in turn, or the longest idle." },
    { .path = "calendar", .type = CFG_STRING, .offset = TOFF(calendar), .check = policy_check_name,
      .flags = CFG_NULLABLE, .doc = "Its working hours, a calendar's name; empty: always open." },
    { .path = "languages", .type = CFG_STRLIST, .offset = TOFF(languages), .count_offset = TOFF(n_languages),
      .check = policy_check_language, .flags = CFG_UNIQUE, .doc = "Languages it answers in; empty: any." },
    { .path = "skills", .type = CFG_STRLIST, .offset = TOFF(skills), .count_offset = TOFF(n_skills),
      .check = policy_check_skill, .flags = CFG_UNIQUE,
      .doc = "What the team covers, NAME:LEVEL. A partner listed without agents is itself the owner of its "
             "work: then work needing a skill it does not list at that level skips it." },
    { .path = "handle_time", .type = CFG_DURATION, .offset = TOFF(handle_time_ms), .min = 1000, .max = 86400000,
      .def = "10m", .unit_ms = 1, .doc = "Average handling time, from which its predicted wait is estimated." },
    { .path = "offers.accept_timeout", .type = CFG_DURATION, .offset = TOFF(accept_timeout_ms), .min = 1000,
      .max = 3600000, .def = "60s", .unit_ms = 1,
      .doc = "How long an agent has to accept work offered to it (docs/delivery.md); then it goes to the next." },
    { .path = "offers.auto_accept", .type = CFG_BOOL, .offset = TOFF(auto_accept), .def = "false",
      .doc = "true: work assigned to this team's agents is accepted at once, without an offer." },
    { .path = "contract", .type = CFG_OBJECT, .offset = TOFF(contract), .sub = &contract_table,
      .doc = "Required for outsourced teams, refused for in-house ones." },
    { .path = NULL },
};
const cfg_table_t policy_team_table = { .keys = team_keys, .size = sizeof(team_t), .init = team_init,
                                        .check = team_check, .has_where = true, .where_offset = TOFF(where) };

/* ---- agents ---- */

static const char *const presences[] = { "available", "away", "offline", NULL };

static const char *check_agent_id(const char *value, char *buf, size_t bufsz)
{
    if (policy_check_name(value, buf, bufsz) == NULL)
        return NULL;
    snprintf(buf, bufsz, "\"%s\" is not an agent id: 1..64 of a-z, 0-9, '.', '_' and '-'", value);
    return buf;
}

#define AOFF(f) offsetof(agent_t, f)
#define CAPACITY(ch, k, d)                                                                                   \
    { .path = "capacity." ch, .type = CFG_INT, .offset = AOFF(capacity) + (k) * sizeof(int), .min = 0,       \
      .max = 100, .doc = d }
static const cfg_key_t agent_keys[] = {
    { .path = "id", .type = CFG_STRING, .offset = AOFF(id), .check = check_agent_id, .flags = CFG_REQUIRED,
      .doc = "Stable id: what the API, metrics and the decision log use." },
    { .path = "name", .type = CFG_STRING, .offset = AOFF(name), .flags = CFG_NULLABLE,
      .doc = "Display name." },
    { .path = "teams", .type = CFG_STRLIST, .offset = AOFF(teams), .count_offset = AOFF(n_teams), .min = 1,
      .check = policy_check_name, .flags = CFG_REQUIRED | CFG_UNIQUE, .doc = "Teams the agent works in." },
    { .path = "skills", .type = CFG_STRLIST, .offset = AOFF(skills), .count_offset = AOFF(n_skills),
      .check = policy_check_skill, .flags = CFG_UNIQUE,
      .doc = "NAME:LEVEL, level 1 (basic) to 5 (expert); NAME alone is level 1." },
    { .path = "languages", .type = CFG_STRLIST, .offset = AOFF(languages), .count_offset = AOFF(n_languages),
      .check = policy_check_language, .flags = CFG_UNIQUE, .doc = "Languages the agent answers in." },
    CAPACITY("email", CHANNEL_EMAIL, "Email conversations held at once."),
    CAPACITY("sms", CHANNEL_SMS, "SMS conversations held at once."),
    CAPACITY("phone", CHANNEL_PHONE, "Phone callbacks held at once."),
    CAPACITY("twitter", CHANNEL_TWITTER, "Twitter conversations held at once."),
    CAPACITY("facebook", CHANNEL_FACEBOOK, "Facebook conversations held at once."),
    CAPACITY("other", CHANNEL_OTHER, "Conversations on third-party (x-) channels held at once."),
    { .path = "presence", .type = CFG_ENUM, .offset = AOFF(presence), .names = presences, .def = "available",
      .doc = "Presence at start-up, until the agent sets it through the API." },
    { .path = NULL },
};
const cfg_table_t policy_agent_table = { .keys = agent_keys, .size = sizeof(agent_t), .has_where = true,
                                         .where_offset = AOFF(where) };

/* ---- classification ---- */

static const char *classify_check(const void *obj, char *buf, size_t bufsz)
{
    const classify_rule_t *r = obj;
    if (r->category || r->priority || r->n_skills || r->stop)
        return NULL;
    snprintf(buf, bufsz, "rule %s sets nothing: give it a category, a priority, skills or stop", r->name);
    return buf;
}

#define ROFF(f) offsetof(classify_rule_t, f)
static const cfg_key_t classify_keys[] = {
    { .path = "name", .type = CFG_STRING, .offset = ROFF(name), .check = policy_check_name, .flags = CFG_REQUIRED,
      .doc = "Shown in the decision log and `omnictl explain`." },
    WHEN(classify_rule_t, "When the rule applies; absent: always."),
    { .path = "category", .type = CFG_STRING, .offset = ROFF(category), .check = policy_check_name,
      .flags = CFG_NULLABLE, .doc = "Category set when no earlier matching rule set one." },
    { .path = "priority", .type = CFG_STRING, .offset = ROFF(priority), .check = policy_check_priority,
      .flags = CFG_NULLABLE, .doc = "Priority set when no earlier matching rule set one." },
    { .path = "skills", .type = CFG_STRLIST, .offset = ROFF(skills), .count_offset = ROFF(n_skills),
      .check = policy_check_skill, .flags = CFG_UNIQUE,
      .doc = "Skills the work needs (NAME:LEVEL); added up over matching rules, the highest level kept." },
    { .path = "stop", .type = CFG_BOOL, .offset = ROFF(stop), .doc = "No later rule is looked at." },
    { .path = NULL },
};
const cfg_table_t policy_classify_table = { .keys = classify_keys, .size = sizeof(classify_rule_t),
                                            .check = classify_check, .has_where = true, .where_offset = ROFF(where) };

/* ---- routing ---- */

#define GOFF(f) offsetof(route_target_t, f)
static const cfg_key_t target_keys[] = {
    { .path = "team", .type = CFG_STRING, .offset = GOFF(team), .check = policy_check_name, .flags = CFG_REQUIRED,
      .doc = "The team tried." },
    { .path = "timeout", .type = CFG_DURATION, .offset = GOFF(timeout_ms), .min = 0, .max = 604800000,
      .unit_ms = 1,
      .doc = "No first response this long after assignment: the work moves to the next target; 0: never." },
    { .path = "queue_below", .type = CFG_INT, .offset = GOFF(queue_below), .min = 0, .max = 1000000,
      .doc = "Only while the team's queue is shorter than this; 0: no condition." },
    { .path = "wait_below", .type = CFG_DURATION, .offset = GOFF(wait_below_ms), .min = 0, .max = 604800000,
      .unit_ms = 1, .doc = "Only while the team's predicted wait is below this; 0: no condition." },
    { .path = "when_open", .type = CFG_BOOL, .offset = GOFF(when_open), .def = "true",
      .doc = "Only while the team's calendar is open." },
    { .path = NULL },
};
static const cfg_table_t target_table = { .keys = target_keys, .size = sizeof(route_target_t), .has_where = true,
                                          .where_offset = GOFF(where) };

#define UOFF(f) offsetof(route_rule_t, f)
static const cfg_key_t route_keys[] = {
    { .path = "name", .type = CFG_STRING, .offset = UOFF(name), .check = policy_check_name, .flags = CFG_REQUIRED,
      .doc = "Shown in the decision log and `omnictl explain`." },
    WHEN(route_rule_t, "When the rule applies; absent: always (the catch-all, which must come last)."),
    { .path = "targets", .type = CFG_OBJLIST, .offset = UOFF(targets), .count_offset = UOFF(n_targets), .min = 1,
      .max = 16, .sub = &target_table,
      .doc = "Teams tried in order: the first that may take the work gets it. Required, unless `record`." },
    { .path = "queue", .type = CFG_STRING, .offset = UOFF(queue), .check = policy_check_name, .flags = CFG_NULLABLE,
      .doc = "Team whose queue holds the work when no target can take it; empty: the first target's." },
    { .path = "record", .type = CFG_BOOL, .offset = UOFF(record),
      .doc = "What it matches is not work (a call already answered): a new conversation it decides is stored "
             "resolved at once, in the customer's history, offered to nobody (one that more messages joined before "
             "the decision is routed by the next matching rule). Takes no targets nor queue; not for the catch-all." },
    { .path = NULL },
};
const cfg_table_t policy_route_table = { .keys = route_keys, .size = sizeof(route_rule_t), .has_where = true,
                                         .where_offset = UOFF(where) };

/* ---- SLA ---- */

static const char *sla_check(const void *obj, char *buf, size_t bufsz)
{
    (void)buf;
    (void)bufsz;
    if (((const sla_target_t *)obj)->calendar && !((const sla_target_t *)obj)->business_hours)
        return "calendar is only read with business_hours: true";
    return NULL;
}

#define SOFF(f) offsetof(sla_target_t, f)
static const cfg_key_t sla_keys[] = {
    WHEN(sla_target_t, "Which work the target is for; the first matching target applies; absent: all."),
    { .path = "first_response", .type = CFG_DURATION, .offset = SOFF(first_response_ms), .min = 60000,
      .max = 1209600000, .unit_ms = 1, .flags = CFG_REQUIRED, .doc = "Time allowed until the first response." },
    { .path = "business_hours", .type = CFG_BOOL, .offset = SOFF(business_hours),
      .doc = "The clock runs only while the calendar is open." },
    { .path = "calendar", .type = CFG_STRING, .offset = SOFF(calendar), .check = policy_check_name,
      .flags = CFG_NULLABLE,
      .doc = "The calendar for business_hours; empty: the calendar of the rule's queue team (routing.rules[].queue)." },
    { .path = NULL },
};
const cfg_table_t policy_sla_table = { .keys = sla_keys, .size = sizeof(sla_target_t), .check = sla_check,
                                       .has_where = true, .where_offset = SOFF(where) };
