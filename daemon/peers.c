/* See peers.h. A flat array: only misbehaving peers are in it, and there are few. */
#include "peers.h"

#include <stdlib.h>
#include <string.h>

#include "omni/util.h"

#define WINDOW_MS 60000

void peers_init(peers_t *p, int limit, int ban_s)
{
    memset(p, 0, sizeof *p);
    p->limit = limit > 0 ? limit : 10;
    p->window_ms = WINDOW_MS;
    p->ban_ms = (int64_t)ban_s * 1000;
    p->v = omni_calloc(PEERS_MAX, sizeof *p->v);
}

void peers_free(peers_t *p)
{
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

static peer_entry_t *find(peers_t *p, const void *id, size_t len)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].len == len && memcmp(p->v[i].id, id, len) == 0)
            return &p->v[i];
    return NULL;
}

int peers_banned(peers_t *p, const void *id, size_t len, int64_t now)
{
    peer_entry_t *e = find(p, id, len);
    return e && e->banned_until > now;
}

int peers_violation(peers_t *p, const void *id, size_t len, int64_t now)
{
    if (len > PEER_ID_MAX)
        len = PEER_ID_MAX;
    peer_entry_t *e = find(p, id, len);
    if (!e) {
        if (p->n == PEERS_MAX) { /* forget the one whose first violation is oldest */
            size_t old = 0;
            for (size_t i = 1; i < p->n; i++)
                if (p->v[i].first_at < p->v[old].first_at)
                    old = i;
            p->v[old] = p->v[--p->n];
        }
        e = &p->v[p->n++];
        memset(e, 0, sizeof *e);
        memcpy(e->id, id, len);
        e->len = len;
        e->first_at = now;
    }
    if (now - e->first_at > p->window_ms) {
        e->first_at = now;
        e->violations = 0;
    }
    if (++e->violations >= p->limit && e->banned_until <= now) {
        e->banned_until = now + p->ban_ms;
        return 1;
    }
    return 0;
}

void peers_expire(peers_t *p, int64_t now)
{
    for (size_t i = 0; i < p->n;) {
        if (p->v[i].banned_until <= now && now - p->v[i].first_at > p->window_ms)
            p->v[i] = p->v[--p->n];
        else
            i++;
    }
}

const char *peers_hex(const void *id, size_t len, char *buf, size_t bufsz)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *b = id;
    size_t o = 0;
    for (size_t i = 0; i < len && o + 2 < bufsz; i++) {
        buf[o++] = hex[b[i] >> 4];
        buf[o++] = hex[b[i] & 15];
    }
    buf[o] = 0;
    return buf;
}
