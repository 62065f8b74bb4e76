/* Redis Sentinel for the blocking clients (omnictl, omni-api's per-thread connections): ask the sentinels,
 * one at a time, for the primary of a master name, connect to it and check ROLE says master. Blocks on the
 * network (bounded by timeout_ms per server): never from the router's loop, which has sentinel.c. */
#ifndef OMNI_DAEMON_SENTINEL_LOOKUP_H
#define OMNI_DAEMON_SENTINEL_LOOKUP_H

#include <stddef.h>
#include <hiredis/hiredis.h>
#include "redis_address.h"

/* The primary of master_name as the first sentinel that answers names it, starting with the one that answered
 * last in this process (thread-safe), so a hung sentinel costs one timeout, not one per lookup (sentinels: n
 * resolved tcp addresses, the same list on every call; password: sent with AUTH, NULL for none; a sentinel
 * with no password at all answers it "without any password configured" and is asked without). Returns 0
 * with *primary filled (the address as the sentinel gives it), or -1 with why in err (every sentinel tried).
 * Arguments borrowed for the call. */
int sentinel_lookup(const redis_address_t *sentinels, size_t n, const char *master_name, const char *password,
                    int timeout_ms, redis_address_t *primary, char *err, size_t errsz);

/* ROLE on c (AUTHed already when the server needs it): 0 when it is the primary, -1 with why in err (a
 * replica, a sentinel, no answer). c is borrowed. */
int redis_check_primary(redisContext *c, char *err, size_t errsz);

/* sentinel_lookup, then a connection to the primary (command timeout timeout_ms), AUTH with password when
 * set, and redis_check_primary. Returns the connection (the caller owns it: redisFree), or NULL with why in
 * err. The database is the caller's to SELECT. */
redisContext *sentinel_connect_primary(const redis_address_t *sentinels, size_t n, const char *master_name,
                                       const char *password, int timeout_ms, char *err, size_t errsz);

#endif
