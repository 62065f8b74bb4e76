/* The router's connection to Redis: asynchronous (hiredis) inside the router's loop, commands pipelined,
 * the Lua scripts loaded on every (re)connect, reconnect with backoff, and a deadline on every command so
 * a stalled server cannot hold messages forever. The store never blocks the loop. */
#ifndef OMNI_DAEMON_STORE_H
#define OMNI_DAEMON_STORE_H

#include <stddef.h>
#include <hiredis/hiredis.h>
#include "loop.h"
#include "omni/metrics.h"
#include "redis_address.h"

typedef struct store store_t;

#define STORE_CONNECTIONS_MAX 8

/* reply is NULL when the command failed without an answer (connection lost, timed out): the caller must
 * treat the command as not done (it may or may not have run; every script is idempotent for that reason).
 * reply is borrowed for the call. */
typedef void store_reply_fn(store_t *store, redisReply *reply, void *data);
/* Called when store_up() changes. */
typedef void store_state_fn(store_t *store, int up, void *data);

typedef struct store_opts {
    const char *tcp_host;     /* one of tcp_host+tcp_port or unix_path; tcp_host numeric (no DNS in the loop) */
    int tcp_port;
    const char *unix_path;
    const char *password;     /* NULL: no AUTH */
    int database;
    int timeout_ms;
    int reconnect_ms;
    int grace_ms;             /* connection failures in the first grace_ms are expected (embedded start) */
    int connections;          /* connections in the pool, 1..STORE_CONNECTIONS_MAX */
    int relaxed;              /* 1: up even when Redis is not seen to fsync every write (redis.durability) */
    /* Sentinel (instead of tcp_host/unix_path): the primary of master_name, asked of these sentinels (tcp,
     * resolved; copied), followed across failovers; every connection checks ROLE says master (with a fixed
     * address too, unless ROLE is refused). A READONLY or MASTERDOWN answer (a primary demoted under open
     * connections) takes the store down: the connection is dropped, the sentinels asked again, and the
     * command's callback gets NULL. */
    const redis_address_t *sentinels;
    size_t n_sentinels;
    const char *master_name;
    /* store_script_replicated: its reply is given only after WAIT wait_replicas confirmed the replicas have
     * the write (within wait_timeout_ms; fewer: the reply is NULL, not done). 0: no WAIT. */
    int wait_replicas;
    int wait_timeout_ms;
    store_state_fn *on_state;
    void *data;
    const char *meanwhile;    /* what the program does while Redis is down, for its log line; NULL: "retrying" */
} store_opts_t;

/* Copies what it needs from opts; starts connecting on the next store_tick(). */
store_t *store_new(loop_t *loop, const store_opts_t *opts);
/* Fails every outstanding command (callbacks get NULL), disconnects, frees, sets *store = NULL. */
void store_destroy(store_t **store);

/* 1 when new messages may be stored: every connection up with its scripts loaded, Redis seen to run with
 * appendonly yes and appendfsync always on each (or the store is relaxed), and not draining. Ingest
 * answers BUSY while it is 0. */
int store_up(const store_t *store);
/* 1 when every connection is up with its scripts loaded, durable or not, draining or not: scripts run. */
int store_connected(const store_t *store);
/* Stop taking new work for good (shutdown): store_up() becomes 0, commands in flight still complete. */
void store_drain(store_t *store);
/* The end of a drain: fails every outstanding command now (callbacks get NULL) and disconnects for good;
 * the store stays valid until store_destroy(). */
void store_close(store_t *store);
/* What Redis said about its durability, for logs and status: "appendonly yes, appendfsync always",
 * "appendonly no, appendfsync everysec", "unknown: CONFIG GET answered ERR ..." (borrowed). */
const char *store_durability(const store_t *store);

/* The round trips of the scripts answered so far: from handing the call to hiredis to its reply callback
 * (seconds; borrowed, valid as long as the store). For /metrics. */
const omni_histogram_t *store_rtt(const store_t *store);

/* Runs a script (enum lua_script_id, scripts.h), on a connection no WAIT holds up, with no KEYS and argc arguments (binary safe; copied), as its
 * "@args" line declares them (NAME_ARG_X indexes; a wrong count is a bug and panics). The reply fn gets
 * been checked against the script's "@reply" line: one that does not match is logged and given as NULL.
 * Returns 0, or -1 when the store is not connected (fn is not called then). */
int store_script(store_t *store, int script, int argc, const char **argv, const size_t *argvlen,
                 store_reply_fn *fn, void *data);

/* The same, on the connection the affinity string maps to: the commands for one affinity (a sender's
 * identity) reach Redis in the order they were sent, as on a single connection. */
int store_script_for(store_t *store, const char *affinity, int script, int argc, const char **argv,
                     const size_t *argvlen, store_reply_fn *fn, void *data);

/* Which connection an affinity string maps to (0 .. STORE_CONNECTIONS_MAX-1): store_script_for sends
 * the commands of affinities of the same slot on one connection, in order. For callers that gather several
 * affinities' work into one command (ingest.c's batches). */
int store_slot(const store_t *store, const char *affinity);

/* store_script_for, and when the store waits for replicas (wait_replicas > 0) the reply comes only after
 * WAIT confirmed them (pipelined behind the script on the same connection: the loop never waits; one WAIT at
 * a time per connection, covering every script sent before it); fewer replicas than asked in wait_timeout_ms:
 * fn gets NULL. Once a WAIT fell short, returns -1 at once (BUSY) while one script, a probe, waits for its
 * WAIT; the first WAIT that succeeds ends that. With two connections or more, connection 0 never carries a
 * WAIT and store_slot maps to the others: store_script and store_script_for (then all on connection 0) are
 * never sent behind a WAIT. For what must survive the primary's loss (ingest). */
int store_script_replicated(store_t *store, const char *affinity, int script, int argc, const char **argv,
                            const size_t *argvlen, store_reply_fn *fn, void *data);

/* Periodic work from the cron tick: connect or reconnect when due, expire stalled commands. */
void store_tick(store_t *store);
/* Human-readable address for logs: "unix:/var/lib/omnirouter/redis/redis.sock" (borrowed). */
const char *store_address(const store_t *store);

#endif
