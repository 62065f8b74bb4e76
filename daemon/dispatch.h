/* Routing in the running router: routes each new conversation right after ingest stored it, and from the
 * cron tick handles what is due (timeouts, SLA escalations, unrouted conversations, owners offline past
 * the grace period) and drains the team queues. Decisions are made by assign.lua / drain.lua on plans
 * from plan.c. With no routing rules in the policy, new conversations stay on the default queue. */
#ifndef OMNI_DAEMON_DISPATCH_H
#define OMNI_DAEMON_DISPATCH_H

#include <stdbool.h>
#include "config.h"
#include "omni/metrics.h"
#include "omni/message.h"
#include "scripts.h"
#include "store.h"

/* How the router's tick calls due.lua and drain.lua. omnictl simulate builds its calls with the same
 * functions, so a simulation scans, leases and drains exactly as the running router does. */
#define ROUTING_DUE_BATCH 200          /* due items handled per tick */
#define ROUTING_DRAIN_SCAN 1000        /* queued items looked at per team and priority level per drain */
#define ROUTING_DRAIN_FORCE_MS 1000    /* a drain runs at least this often even when no capacity was freed */
#define ROUTING_UNROUTED_AFTER_MS 3000 /* a new conversation not routed by then is picked up by any router */
#define ROUTING_LEASE_MS 5000          /* a due trigger handed to a router comes due again if not acted on by then */

/* The number strings a tick's script arguments point into; filled by routing_due_argv/routing_drain_argv. */
typedef struct routing_argbuf {
    char now[24], limit[16], grace[24], after[24], lease[16], scan[16], aging[16];
} routing_argbuf_t;
/* Fills argv for due.lua at now; argv points into b and prefix (both borrowed, must outlive argv). */
void routing_due_argv(routing_argbuf_t *b, const char *prefix, const policy_t *p, int64_t now, bool test_clock,
                      const char *argv[DUE_NARGS]);
/* Fills argv for drain.lua of team at now; argv points into b, prefix, team and days (borrowed). */
void routing_drain_argv(routing_argbuf_t *b, const char *prefix, const policy_t *p, const char *team, int64_t now,
                        const char *days, bool force, const char *argv[DRAIN_NARGS]);

/* seed.lua's arguments for policy p: presences, capacities and rosters (for the ready index), team masking
 * and strategy, the follow-up delay, a new random salt. */
typedef struct routing_seed {
    char salt[33];
    char follow_up[24]; /* follow_up.after in ms */
    char *masks;       /* owned: the teams argument */
    char *text;        /* owned: every agent's caps and rosters, NUL-separated, argv points into it */
    const char **argv; /* owned array; points into this, prefix and p (borrowed, must outlive it) */
    int argc;
} routing_seed_t;
/* Fills sd. Returns 0, or -1 when no random bytes are to be had yet (nothing to clear). */
int routing_seed_init(routing_seed_t *sd, const char *prefix, const policy_t *p);
/* Frees what routing_seed_init made; sd itself is the caller's. */
void routing_seed_clear(routing_seed_t *sd);

typedef struct routing routing_t;

/* cfg and store are borrowed and must outlive it. */
routing_t *routing_new(store_t *store, const router_config_t *cfg);
void routing_destroy(routing_t **r);
/* A reload: decisions from now on follow cfg's policy (borrowed; it must outlive the routing or the next
 * call); agents new to it get their starting presence. Work already decided or waiting keeps its plan. */
void routing_set_config(routing_t *r, const router_config_t *cfg);
bool routing_enabled(const routing_t *r);
/* Whether clock_now() is the router's time: always, but with the test clock only once its offset was read. */
bool routing_clock_known(const routing_t *r);

/* What ingest.lua said of the customer of a newly opened conversation. Strings borrowed for the call. */
typedef struct routing_customer {
    long conversations;
    const char *tier;       /* stored by omnictl; "" when none */
    const char *last_owner; /* agent id; "" when none */
} routing_customer_t;

/* Routes a conversation ingest just opened with msg (borrowed for the call) from identity. */
void routing_new_conversation(routing_t *r, const char *conversation, const omni_msg_t *msg, const char *identity,
                              const routing_customer_t *customer);
/* A new customer's first conversation routed in the call that stores its message (ingest.lua), one durable
 * write instead of two: for a sender this router has not asked about before (a Bloom filter of identities,
 * so a false "seen" only costs the usual two calls), the plan for a new customer's first conversation
 * (conversations 1, no tier, no previous owner; conv "" as it is not known yet), made now. ingest.lua uses
 * it only if the sender turns out to be a new customer. NULL when there is none to make (no routing, the
 * policy not seeded, the sender seen). A new string the caller frees. */
char *routing_first_plan(routing_t *r, const omni_msg_t *msg, const char *identity);
/* days for a call with such plans, as routing_flush sends assign.lua ({team: "YYYY-MM-DD"}); caller frees. */
char *routing_days(routing_t *r);
/* ingest.lua decided conversation on its first plan (outcome and detail: assign.lua's record; planned:
 * monotonic ms when the plan was made): counted and logged as any decision. */
void routing_first_decided(routing_t *r, const char *conversation, const char *outcome, const char *detail,
                           int64_t planned);
/* From the cron tick. */
void routing_tick(routing_t *r);
/* Before the loop sleeps: sends the plans made since the last call to assign.lua, as one call. */
void routing_flush(routing_t *r);

typedef struct routing_stats {
    unsigned long long routed, assigned, queued, recorded, stale, drained, moved;
    /* from a new conversation's ACK (routing starts right after it) to its decision committed in Redis */
    omni_histogram_t latency;
} routing_stats_t;
const routing_stats_t *routing_stats(const routing_t *r);

#endif
