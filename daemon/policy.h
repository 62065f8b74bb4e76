/* The hybrid-staffing policy: calendars, teams (in-house or outsourced with a contract), agents,
 * classification rules, routing rules, SLA targets, ownership, queue aging and duplicate folding.
 * Read from the same YAML as the rest of the configuration (top-level sections named below), validated
 * with file:line:column errors, then compiled (regexes, calendar and team references resolved) once.
 * docs/routing.md is the reference and explains the semantics. */
#ifndef OMNI_DAEMON_POLICY_H
#define OMNI_DAEMON_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "config_where.h"

/* Priorities: a smaller number is more urgent. */
enum { PRIO_URGENT = 1, PRIO_HIGH = 2, PRIO_NORMAL = 3, PRIO_LOW = 4, PRIO_LEVELS = 4 };
/* "urgent", "high", "normal", "low" -> 1..4; -1 otherwise. */
int policy_priority_parse(const char *name);
const char *policy_priority_name(int prio);

enum { TEAM_INHOUSE, TEAM_OUTSOURCED };
enum { STRATEGY_LEAST_LOADED, STRATEGY_ROUND_ROBIN, STRATEGY_LONGEST_IDLE };
enum { CHANNEL_EMAIL, CHANNEL_SMS, CHANNEL_PHONE, CHANNEL_TWITTER, CHANNEL_FACEBOOK, CHANNEL_OTHER,
       CHANNEL_KINDS };
/* "email" .. "facebook" -> its index; any "x-..." channel -> CHANNEL_OTHER; -1 otherwise. */
int policy_channel_kind(const char *channel);
const char *policy_channel_kind_name(int kind); /* "email".."facebook", "other" */

/* A condition: every key written must hold (AND); lists hold when any entry matches (OR).
 * YAML: `when: {channel: [sms], text: ["refund"], any: [{tier: vip}, {category: technical}]}` */
typedef struct cond {
    char **channel;  size_t n_channel;   /* channel names ("x-*" allowed as a glob) */
    char **category; size_t n_category;
    char **priority; size_t n_priority;  /* priority names */
    char **tier;     size_t n_tier;      /* "vip", "repeat", "new" */
    char **language; size_t n_language;  /* language tags, matched on the primary subtag too: "fr" matches "fr-CA" */
    char **text;     size_t n_text;      /* regular expressions (PCRE2, UTF-8, case-insensitive, Unicode) */
    char **subject;  size_t n_subject;   /* same, on the subject */
    char **sender;   size_t n_sender;    /* globs over identity keys: "email:*@bigcorp.com", "phone:+44*" */
    char *open_in;                       /* a calendar name: holds while it is open */
    char *closed_in;                     /* a calendar name: holds while it is closed (out of hours, holidays) */
    char *local_time;                    /* "HH:MM-HH:MM" (may wrap midnight), in `zone` */
    char **weekdays; size_t n_weekdays;  /* "mon".."sun" or ranges "mon-fri", in `zone` */
    char *zone;                          /* IANA zone for local_time and weekdays; default "UTC" */
    struct cond *any; size_t n_any;      /* at least one holds */
    struct cond *not_; size_t n_not;     /* YAML `not:` a list; none of them holds */
    cfg_where_t where;
    void *compiled;                      /* cond.c: regexes, calendars; NULL until policy_compile */
} cond_t;

typedef struct calendar_cfg {
    char *name;
    char *timezone;                      /* IANA name */
    char **hours; size_t n_hours;        /* calendar_parse_hours() lines */
    char **holidays; size_t n_holidays;  /* "YYYY-MM-DD" */
    cfg_where_t where;
    calendar_t *cal;                     /* compiled */
} calendar_cfg_t;

typedef struct contract {
    char **categories; size_t n_categories; /* the only categories the partner may take */
    char **languages; size_t n_languages;   /* languages it covers; empty: the team's languages */
    int max_concurrent;                     /* conversations it holds at once; 0: no limit */
    int daily_quota;                        /* conversations assigned per local day (team calendar); 0: no limit */
    bool mask_contact;                      /* customer addresses and numbers masked in what it receives
                                               (default true: a partner is outside the company) */
    bool allow_vip;                         /* VIP customers' work may reach it (default false) */
    cfg_where_t where;                      /* line 0: no `contract:` was written */
} contract_t;

typedef struct team {
    char *name;
    int kind;                            /* TEAM_INHOUSE or TEAM_OUTSOURCED */
    int strategy;                        /* STRATEGY_* */
    char *calendar;                      /* calendar name; NULL: always open */
    char **languages; size_t n_languages;
    char **skills; size_t n_skills;      /* what the team covers, "technical:3"; for a partner listed without
                                            agents (the team is the owner) work needing other skills skips it */
    int handle_time_ms;                  /* average handling time estimate, for predicted wait */
    int accept_timeout_ms;               /* offers.accept_timeout: how long an offer to an agent stays open */
    bool auto_accept;                    /* offers.auto_accept: assignments to its agents need no acceptance */
    contract_t contract;                 /* outsourced teams */
    cfg_where_t where;
    const calendar_cfg_t *cal;           /* compiled; NULL: always open */
    struct skill *skill; size_t n_skill; /* compiled from skills */
} team_t;

typedef struct skill {
    char *name;
    int level;                           /* 1..5 */
} skill_t;

typedef struct agent {
    char *id;                            /* [a-z0-9._-]{1,64} */
    char *name;
    char **teams; size_t n_teams;
    char **skills; size_t n_skills;      /* "technical:3" or "billing" (level 1) */
    char **languages; size_t n_languages;
    int capacity[CHANNEL_KINDS];         /* YAML `capacity: {email: 5, sms: 3, phone: 1}`; absent: 0 */
    int presence;                        /* initial presence: PRESENCE_* */
    cfg_where_t where;
    skill_t *skill; size_t n_skill;      /* compiled from skills */
} agent_t;
enum { PRESENCE_AVAILABLE, PRESENCE_AWAY, PRESENCE_OFFLINE };

typedef struct classify_rule {
    char *name;
    cond_t when;
    char *category;                      /* set when the rule matches and no earlier rule set it */
    char *priority;                      /* same, a priority name */
    char **skills; size_t n_skills;      /* required skills "technical:2"; accumulated over matching rules */
    bool stop;                           /* no later rule is looked at */
    cfg_where_t where;
    skill_t *skill; size_t n_skill;      /* compiled */
} classify_rule_t;

typedef struct route_target {
    char *team;
    int timeout_ms;                      /* no first response this long after assignment: next target; 0: none */
    int queue_below;                     /* only while the team's queue is shorter than this; 0: no condition */
    int wait_below_ms;                   /* only while the team's predicted wait is below this; 0: no condition */
    bool when_open;                      /* only while the team's calendar is open (default true) */
    cfg_where_t where;
    const team_t *t;                     /* compiled */
} route_target_t;

typedef struct route_rule {
    char *name;
    cond_t when;
    route_target_t *targets; size_t n_targets;
    char *queue;                         /* team whose queue holds the work when no target can take it;
                                            default: the first target's team */
    bool record;                         /* what it matches is no work: a new conversation holding only that
                                            message is stored resolved at once, offered to nobody (no targets,
                                            no queue); plan.c, assign.lua */
    cfg_where_t where;
    const team_t *queue_team;            /* compiled */
} route_rule_t;

typedef struct sla_target {
    cond_t when;
    int first_response_ms;
    bool business_hours;                 /* counted in the calendar's open hours */
    char *calendar;                      /* for business_hours; NULL: the assigned team's */
    cfg_where_t where;
    const calendar_cfg_t *cal;           /* compiled */
} sla_target_t;

typedef struct policy {
    calendar_cfg_t *calendars; size_t n_calendars;
    team_t *teams; size_t n_teams;
    agent_t *agents; size_t n_agents;
    classify_rule_t *classify; size_t n_classify;
    char *default_category;              /* classification.default_category, default "general" */
    char *default_priority;              /* default "normal" */
    route_rule_t *routes; size_t n_routes;
    sla_target_t *sla; size_t n_sla;
    int sla_escalate_pct;                /* sla_escalate_at: percent of the target at which work moves on (1..100) */
    int offline_grace_ms;                /* ownership.offline_grace */
    bool prefer_previous_owner;          /* ownership.prefer_previous_owner */
    int aging_every_ms;                  /* queues.aging_every: a waiting item gains one priority level per this */
    int fold_window_ms;                  /* folding.window: near-duplicates across channels folded within it */
    int fold_similarity_pct;             /* folding.similarity */
    char **vip; size_t n_vip;            /* customers.vip: identity globs of VIP customers */
    int repeat_after;                    /* customers.repeat_after: conversations before a customer is "repeat" */
    int follow_up_after_s;               /* follow_up.after: a resolved conversation's follow-up opens this long
                                          * after its resolution (docs/routing.md "Follow-ups"); 0: none */
} policy_t;

/* What a condition or classification looks at: one message and what is known of its customer. */
typedef struct facts {
    const char *channel, *identity, *text, *subject, *language; /* NULL when absent */
    const char *tier;                    /* "vip", "repeat" or "new" */
    const char *category;                /* after classification; NULL before */
    int priority;                        /* after classification; 0 before */
    int64_t now;                         /* wall ms */
} facts_t;

struct config_errors;
/* Compiles what the config loader read: regexes, skills, calendars, references between sections. Errors
 * are appended to errs as "FILE:LINE:COL: KEY: WHY", at the entry KEY names when errs->source holds the
 * file (during config_load), else at the item's where. Items the walk marked bad are compiled as far as
 * they go, without errors that would only echo theirs. Returns 0 or -1. */
int policy_compile(policy_t *p, struct config_errors *errs);
/* Frees compiled state (not the config strings, which the config loader owns). */
void policy_release(policy_t *p);

const team_t *policy_team(const policy_t *p, const char *name);
const calendar_cfg_t *policy_calendar(const policy_t *p, const char *name);

/* True when c holds for f. When trace is not NULL, appends a short reason for the outcome
 * ("channel sms not in [email]") to trace (tracesz bytes, always NUL-terminated). c must have been
 * compiled (policy_compile); keys needing compilation (text, subject, calendars, clocks) fail otherwise. */
bool cond_eval(const cond_t *c, const facts_t *f, char *trace, size_t tracesz);

/* The outcome of classification. */
typedef struct classification {
    const char *category;                /* borrowed from the policy */
    int priority;
    skill_t skills[16]; size_t n_skills; /* required skills, the highest level asked per skill */
    const char *rules[16]; size_t n_rules; /* names of the rules that matched, in order */
} classification_t;

/* Runs the classification rules over f (f->category and f->priority are ignored). */
void classify(const policy_t *p, const facts_t *f, classification_t *out);

/* The customer's tier from the policy alone: "vip" when identity matches customers.vip, "repeat" when
 * conversations >= repeat_after (> 0), else "new". A tier stored in Redis (omnictl) overrides it. */
const char *policy_tier(const policy_t *p, const char *identity, long conversations);

/* Glob match: '*' any run of characters, '?' one character (UTF-8), everything else itself, ASCII letters
 * in either case (identities are normalized lowercase; operators write "email:*@BigCorp.com"). */
bool policy_glob(const char *pattern, const char *s);
/* True when classification can produce category `name`: a rule's category or the default category. */
bool policy_has_category(const policy_t *p, const char *name);
/* True when someone listing langs (n entries; none listed: any) takes work in lang (NULL or "": no
 * language known, no constraint). "fr" takes "fr-CA" and "fr_CA"; matched on the primary subtag. */
bool policy_speaks(char *const *langs, size_t n, const char *lang);
/* The level of skill name in skills (n entries), 0 when it is not there. */
int policy_skill_level(const skill_t *skills, size_t n, const char *name);
/* Appends to warns (policy_warn.c) a line "FILE:LINE:COL: warning: routing.rules[N]: WHY" for each routing
 * rule that can be given work none of its targets can ever take (skills, languages); p must be compiled. */
void policy_warnings(const policy_t *p, struct config_errors *warns);
/* "technical:3", or "billing" for level 1, into out (out->name: a new string the caller frees).
 * Returns 0, or -1 with the reason in err. */
int policy_skill_parse(const char *text, skill_t *out, char *err, size_t errsz);

/* For the config loader. The element tables of the policy's list sections (policy_config.c), which
 * config.c's router_keys points at, and the checks of single values (the cfg_check_fn signature:
 * NULL when fine, else the reason, often written into buf). */
struct cfg_table;
extern const struct cfg_table policy_calendar_table, policy_team_table, policy_agent_table,
    policy_classify_table, policy_route_table, policy_sla_table;
const char *policy_check_name(const char *value, char *buf, size_t bufsz);     /* 1..64 of a-z 0-9 . _ - */
const char *policy_check_priority(const char *value, char *buf, size_t bufsz); /* urgent..low */
const char *policy_check_channel(const char *value, char *buf, size_t bufsz);  /* email..facebook, x-NAME, x-* */
const char *policy_check_tier(const char *value, char *buf, size_t bufsz);     /* vip, repeat, new */
const char *policy_check_language(const char *value, char *buf, size_t bufsz); /* "fr", "pt-BR" */
const char *policy_check_skill(const char *value, char *buf, size_t bufsz);    /* "technical:3" */
const char *policy_check_identity_glob(const char *value, char *buf, size_t bufsz); /* "email:*@x.com" */
const char *policy_check_local_time(const char *value, char *buf, size_t bufsz); /* "22:00-06:00" */
const char *policy_check_weekdays(const char *value, char *buf, size_t bufsz); /* "mon", "mon-fri" */
const char *policy_check_zone(const char *value, char *buf, size_t bufsz);     /* an IANA zone */
/* "HH:MM-HH:MM" into minutes after midnight (end 1440 for 24:00; start > end wraps midnight); 0 or -1. */
int policy_parse_span(const char *v, int *start, int *end);
/* "mon" or a range "mon-fri" (may wrap: "fri-mon") ORed into mask (bit 0 Monday); 0 or -1. */
int policy_parse_weekdays(const char *v, unsigned *mask);
/* cond.c: the check of a pattern (PCRE2, with the offset of the error), and the compilation
 * policy_compile runs on each condition (regexes, calendar names, zone, time span, weekdays,
 * categories), errors located at c->where and named after key ("routing.rules[2].when").
 * cond_compile returns 0 or -1; cond_release frees what it made and is safe on a condition never
 * compiled. */
const char *cond_check_regex(const char *value, char *buf, size_t bufsz);
int cond_compile(cond_t *c, const policy_t *p, const char *key, struct config_errors *errs);
void cond_release(cond_t *c);

#endif
