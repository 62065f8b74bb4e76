/* Routing, the part that needs no live state: classify a new conversation, pick its routing rule, and
 * list for each of the rule's targets the agents that could take it by skills, language and channel,
 * with the reason each other agent or team was passed over. The result, a plan, goes to assign.lua, which
 * checks live state (presence, load, quotas, queues) and commits the decision atomically. Keeping the
 * regexes and calendars in C and the counters in Redis is what makes one decision one atomic unit. */
#ifndef OMNI_DAEMON_PLAN_H
#define OMNI_DAEMON_PLAN_H

#include <jansson.h>
#include <stdint.h>
#include "policy.h"
#include "scripts.h"

/* What is known about the conversation to route. Strings are borrowed for the call. */
typedef struct route_input {
    const char *conversation;  /* id */
    const char *version;       /* the conversation's version when read ("0" for a new one) */
    facts_t facts;             /* from its first message; tier filled by the caller */
    int from_target;           /* 0 for a new conversation; the next target when escalating */
    const char *exclude_agent; /* an owner who lost it (offline, timed out); NULL */
    const char *exclude_team;  /* a partner team that gave it back (rejected, dead letter); NULL */
    const char *prefer_agent;  /* the customer's previous owner when the policy prefers it; NULL */
    const char *reason;        /* "new", "escalation", "timeout", "owner offline", "offer expired", a reroute kind */
    const char *transfer_team; /* a transfer, or a move of work a transfer gave a team: the only team to plan
                                * (its queue when nobody there can); NULL */
    const char *held_rule;     /* the rule the work's last decision was made under, whose targets from_target
                                * counts in; NULL or "": none. Another rule matching now starts at its first. */
} route_input_t;

/* Builds the plan for assign.lua (see its header for the fields) and appends the static part of the
 * decision trace to it. Returns a new JSON object the caller owns. */
json_t *route_plan(const policy_t *p, const route_input_t *in);

/* The plan for a conversation ingest just opened with msg (borrowed) from identity; conversations, tier
 * ("" when none stored) and last_owner ("" when none) are what ingest.lua said of the customer. */
struct omni_msg;
json_t *route_plan_new(const policy_t *p, const char *conversation, const struct omni_msg *msg, const char *identity,
                       long conversations, const char *tier, const char *last_owner, int64_t now);

/* The plan for one record of due.lua's answer, its fields as strings (DUE_REPLY_X indexes). NULL when its
 * first message cannot be read (logged). */
json_t *route_plan_due(const policy_t *p, const char *const f[DUE_REPLY_FIELDS], int64_t now);

/* Checks a plan against its declaration in daemon/lua/_plan.lua (the one assign.lua and drain.lua check it
 * against too). Returns 0, or -1 with the first field that does not match in err. */
int route_plan_check(const json_t *plan, char *err, size_t errsz);

/* The policy's team names in its order, separated by spaces: drain.lua's team argument, so one call drains every
 * team's queue in one serving order (docs/routing.md, Queues). A new string the caller frees. */
char *route_drain_teams(const policy_t *p);

/* {"team": "YYYY-MM-DD"}: today in each partner's own calendar, for daily quotas (assign.lua, drain.lua).
 * A new string the caller frees. */
char *route_quota_days(const policy_t *p, int64_t now);

/* The SLA deadline and the escalation instant for facts (with category and priority) routed to team
 * (NULL: not known yet). Both -1 when no SLA target matches. */
void route_sla(const policy_t *p, const facts_t *f, const team_t *team, int64_t now, int64_t *due,
               int64_t *escalate_at, const char **target_desc);

#endif
