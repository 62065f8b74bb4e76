/* OMNI/1 ingest: the ROUTER socket connectors talk to. Each MSG is decoded strictly, validated, its
 * sender identity normalized, then stored by the ingest script; the ACK goes out only when Redis has
 * answered (with appendfsync always, after the write is on disk). Invalid input gets a NACK naming the
 * field and the rule; a store that is down or saturated gets BUSY; a peer that keeps breaking the
 * protocol is ignored for router.peer_ban_s. Nothing a peer sends can stop the router. */
#ifndef OMNI_DAEMON_INGEST_H
#define OMNI_DAEMON_INGEST_H

#include "config.h"

/* Replies the router keeps queued for one peer that does not read them (ZeroMQ's send high-water mark);
 * past that they are dropped (docs/protocol.md, "Limits"). */
#define INGEST_UNREAD_MAX 100000
#include "omni/message.h"
#include "loop.h"
#include "policy.h"
#include "store.h"

typedef struct ingest ingest_t;

#define INGEST_NACK_KINDS 16
typedef struct ingest_stats {
    unsigned long long received, stored, duplicates, folded, nacked, busy, violations, peers_dropped, store_failures;
    unsigned long long stored_by_channel[CHANNEL_KINDS]; /* policy.h's channel kinds */
    /* NACKs by the schema field that failed ("from.id", "channel"; "unknown" for a key the schema lacks,
     * "meta" for anything inside it; "protocol" for frames that break OMNI/1), the first INGEST_NACK_KINDS
     * distinct ones; later ones count as "other". */
    struct { char field[40]; unsigned long long n; } nacks[INGEST_NACK_KINDS + 1];
    size_t n_nack_kinds;
} ingest_stats_t;

/* Binds every cfg->router.ingest endpoint on a new ROUTER socket of zctx. cfg and store are borrowed and
 * must outlive the ingest. Returns NULL with a sentence in err. */
ingest_t *ingest_new(void *zctx, loop_t *loop, store_t *store, const router_config_t *cfg, char *err,
                     size_t errsz);
/* Closes the socket (outstanding store callbacks must have run: destroy the store first), frees, NULLs. */
void ingest_destroy(ingest_t **ingest);
/* A reload: messages from now on are read with cfg's limits and identity rules (borrowed; it must outlive the
 * ingest or the next call). Sockets and peers keep what they were made with. */
void ingest_set_config(ingest_t *ingest, const router_config_t *cfg);

/* Called when a stored message opened a new conversation, with the message (borrowed for the call), its
 * identity key, and what ingest.lua said of the customer. Setting it also makes ingest mark new
 * conversations unrouted until the callback's decision is committed. */
typedef void ingest_opened_fn(void *data, const char *conversation, const omni_msg_t *msg, const char *identity,
                              long conversations, const char *tier, const char *last_owner);
/* A new customer's first conversation routed in the call that stores its message (dispatch.h,
 * routing_first_plan), each with data as opened's: plan makes the plan sent with a message (NULL: none; a
 * new string ingest frees), days the quota days of a call that carries plans (a new string), decided tells
 * of a conversation ingest.lua decided on its plan (then opened is not called for it). */
typedef struct ingest_first_route {
    char *(*plan)(void *data, const omni_msg_t *msg, const char *identity);
    char *(*days)(void *data);
    void (*decided)(void *data, const char *conversation, const char *outcome, const char *detail, int64_t planned);
} ingest_first_route_t;
/* fn NULL: no routing (new conversations wait on the default queue). first: NULL, or copied. */
void ingest_on_opened(ingest_t *ingest, ingest_opened_fn *fn, const ingest_first_route_t *first, void *data);

/* From the cron tick: forgets expired peer bans. */
void ingest_tick(ingest_t *ingest);
const ingest_stats_t *ingest_stats(const ingest_t *ingest);
/* Messages handed to Redis and not yet answered. */
size_t ingest_inflight(const ingest_t *ingest);

#endif
