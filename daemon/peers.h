/* Protocol violations per peer, so a peer that keeps breaking OMNI/1 is dropped: its frames are ignored
 * for a while instead of obeyed. A peer is named by bytes the caller chooses (ingest.c: the CURVE public
 * key when there is one, so a reconnect does not shed a ban; else the ZeroMQ routing id). Only
 * misbehaving peers get an entry. */
#ifndef OMNI_DAEMON_PEERS_H
#define OMNI_DAEMON_PEERS_H

#include <stddef.h>
#include <stdint.h>

#define PEER_ID_MAX 255
#define PEERS_MAX 1024 /* entries kept; the oldest is forgotten when full */

typedef struct peer_entry {
    unsigned char id[PEER_ID_MAX];
    size_t len;
    int violations;
    int64_t first_at, banned_until; /* monotonic ms */
} peer_entry_t;

typedef struct peers {
    peer_entry_t *v;
    size_t n;
    int limit;      /* violations within window_ms before a ban */
    int64_t window_ms, ban_ms;
} peers_t;

void peers_init(peers_t *p, int limit, int ban_s);
void peers_free(peers_t *p);
/* True while the peer is banned. */
int peers_banned(peers_t *p, const void *id, size_t len, int64_t now);
/* Counts one violation; returns 1 when this one gets the peer banned. */
int peers_violation(peers_t *p, const void *id, size_t len, int64_t now);
/* Forgets bans that ended and violations older than the window. */
void peers_expire(peers_t *p, int64_t now);
/* Hex of a routing id for logs, into buf (at least 2*len+1, truncated to bufsz). */
const char *peers_hex(const void *id, size_t len, char *buf, size_t bufsz);

#endif
