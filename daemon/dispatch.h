/* Routing in the running router: routes each new conversation right after ingest stored it, and from the
 * cron tick handles what is due (timeouts, SLA escalations, unrouted conversations, owners offline past
 * the grace period) and drains the team queues. Decisions are made by assign.lua / drain.lua on plans
 * from plan.c. With no routing rules in the policy, new conversations stay on the default queue. */
#ifndef OMNI_DAEMON_DISPATCH_H
#define OMNI_DAEMON_DISPATCH_H

#include <stdbool.h>
#include "config.h"
#include "omni/message.h"
#include "store.h"

typedef struct routing routing_t;

/* cfg and store are borrowed and must outlive it. */
routing_t *routing_new(store_t *store, const router_config_t *cfg);
void routing_destroy(routing_t **r);
bool routing_enabled(const routing_t *r);

/* What ingest.lua said of the customer of a newly opened conversation. Strings borrowed for the call. */
typedef struct routing_customer {
    long conversations;
    const char *tier;       /* stored by omnictl; "" when none */
    const char *last_owner; /* agent id; "" when none */
} routing_customer_t;

/* Routes a conversation ingest just opened with msg (borrowed for the call) from identity. */
void routing_new_conversation(routing_t *r, const char *conversation, const omni_msg_t *msg, const char *identity,
                              const routing_customer_t *customer);
/* From the cron tick. */
void routing_tick(routing_t *r);

typedef struct routing_stats {
    unsigned long long routed, assigned, queued, stale, drained, moved;
} routing_stats_t;
const routing_stats_t *routing_stats(const routing_t *r);

#endif
