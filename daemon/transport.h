/* How the ingest socket listens (docs/protocol.md "Security"): ipc:// endpoints as socket files with
 * router.ipc_mode / ipc_owner / ipc_group (there, file permissions are the access control); tcp://
 * endpoints with CURVE, the router's secret key and a ZAP handler admitting router.curve.allowed_keys, or
 * in clear only when router.insecure_tcp says so (config.c refuses it otherwise). */
#ifndef OMNI_DAEMON_TRANSPORT_H
#define OMNI_DAEMON_TRANSPORT_H

#include <stddef.h>
#include "config.h"
#include "loop.h"
#include "zap.h"

/* Binds every cfg->router.ingest endpoint on sock (a ROUTER of zctx; borrowed). When tcp uses CURVE, starts
 * the ZAP handler first and stores it in *zap (caller owns; zap_destroy after closing sock); else *zap is
 * NULL. Returns 0, or -1 with a sentence naming the endpoint, key or file in err (*zap then NULL). */
int transport_bind(void *zctx, void *sock, loop_t *loop, const router_config_t *cfg, zap_t **zap, char *err,
                   size_t errsz);

#endif
