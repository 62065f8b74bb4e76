/* The router's ZAP handler (ZeroMQ RFC 27): who may connect over CURVE. ZeroMQ asks it, over
 * inproc://zeromq.zap.01, about every handshake on the ingest socket; it answers at once from the set of
 * router.curve.allowed_keys, so it never blocks the loop it shares with ingest. An admitted connector's
 * User-Id is its public key (Z85), which is how ingest knows a peer across reconnects. An unknown key is
 * refused and logged with its fingerprint, once per key and at most ZAP_LOG_PER_MIN new keys a minute, so
 * a flood of strangers cannot flood the log. NULL (ipc://) handshakes are admitted: there the socket file's
 * permissions decide. */
#ifndef OMNI_DAEMON_ZAP_H
#define OMNI_DAEMON_ZAP_H

#include <stddef.h>
#include "config.h"
#include "loop.h"

#define ZAP_LOG_PER_MIN 10

typedef struct zap zap_t;

typedef struct zap_stats {
    unsigned long long admitted, refused, refusals_not_logged;
} zap_stats_t;

/* Reads every allowed key (cfg->router.curve.allowed_keys: keys, .pub files, directories of them), binds the
 * handler on zctx and watches it in loop. cfg is borrowed and must outlive the handler. Returns NULL with a
 * sentence naming the key or file in err. Caller owns the result; it must exist before the first CURVE bind. */
zap_t *zap_new(void *zctx, loop_t *loop, const router_config_t *cfg, char *err, size_t errsz);
/* Stops watching, closes the socket, frees, sets *zap = NULL. */
void zap_destroy(zap_t **zap);
size_t zap_allowed(const zap_t *zap);
const zap_stats_t *zap_stats(const zap_t *zap);

#endif
