/* Internals shared by client.c (pending set, window, timers) and client_wire.c (frames, replies).
 * Not part of the public API. */
#ifndef OMNI_CLIENT_INT_H
#define OMNI_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omni/client.h"
#include "spool.h"

enum { Q_NONE, Q_STAGED, Q_READY, Q_INFLIGHT, Q_BACKOFF };

typedef struct omni_pend {
    omni_spool_rec_t rec;                   /* id and json, owned */
    uint64_t seq;                           /* submit order */
    struct omni_pend *hnext;                /* hash chain */
    struct omni_pend *all_prev, *all_next;  /* every pending message, in submit order */
    struct omni_pend *prev, *next;          /* the list named by q */
    int q;
    int64_t due_ms;                         /* inflight: resend at; backoff: send again at */
    bool sent_before;                       /* the next send counts as a resend */
} omni_pend_t;

typedef struct omni_plist {
    omni_pend_t *head, *tail;
    size_t n;
} omni_plist_t;

struct omni_client {
    omni_client_opts_t o;           /* defaults applied; o.endpoint points at endpoint */
    char *endpoint;                 /* as given: one endpoint, or several separated by commas (for logs) */
    char **eps;                     /* each endpoint the DEALER connects to */
    size_t n_eps;
    void *ctx, *sock;
    omni_spool_t *spool;
    omni_pend_t **buckets;          /* nbuckets, a power of two */
    size_t nbuckets, npending;
    omni_pend_t *all_head, *all_tail;
    omni_plist_t staged, ready, inflight, backoff;
    uint64_t next_seq;
    int64_t last_rx, last_ping;     /* monotonic ms: last frame heard, last PING tried */
    int64_t backoff_due;            /* the earliest due_ms in backoff */
    bool ping_outstanding, send_blocked, dead_warned;
    bool whole;                     /* a unit the source delivers whole is being submitted: max_spooled waits */
    uint32_t rng;                   /* xorshift state, for BUSY jitter */
    void *mon;                      /* CURVE only: a PAIR reading the DEALER's handshake events, else NULL */
    bool auth_warned;               /* the refused handshake was logged; again only after one succeeds */
    char key_fp[17];                /* CURVE: our public key's fingerprint, for that log line */
    omni_client_stats_t st;
};

/* client.c. Every omni_pend_t is the client's: these move one between lists and only omni__pend_drop
 * frees it. Ids are borrowed for the call. */
omni_pend_t *omni__pend_find(const omni_client_t *c, const char *id);
void omni__pend_drop(omni_client_t *c, omni_pend_t *p); /* frees p */
void omni__list_remove(omni_client_t *c, omni_pend_t *p);
void omni__make_ready(omni_client_t *c, omni_pend_t *p);
void omni__make_backoff(omni_client_t *c, omni_pend_t *p, int64_t due);

/* omni_client_submit() for JSON the SDK serialized itself from a validated message whose id is id
 * (connector_api.c): the same, without parsing the JSON again to find its id. Takes json (len bytes and a
 * NUL, malloc'd) whatever happens. */
int omni__client_submit_built(omni_client_t *c, const char *id, char *json, size_t len);

/* client_wire.c */
/* Sends n frames without blocking; frames are borrowed. Returns 0, 1 when the socket cannot take it now
 * (no router connected, or its queue is full: the caller keeps the message for later), -1 on a fatal
 * error (errno). */
int omni__send(omni_client_t *c, const char *const *frames, const size_t *lens, int n);
/* Reads and handles every reply waiting on the socket. Returns how many well-formed ones there were, or
 * -1 on a fatal error (errno). */
int omni__recv_all(omni_client_t *c);
/* CURVE: watches c->sock's handshakes (before it connects), so a key the router refuses is logged rather
 * than met with silence. Returns 0 or -1 with a sentence in err. */
int omni__monitor_open(omni_client_t *c, char *err, size_t errsz);
/* Logs what the handshakes did since the last call (never blocks); a no-op without a monitor. */
void omni__monitor_drain(omni_client_t *c);

#endif
