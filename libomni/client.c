/* The OMNI/1 client (include/omni/client.h): the pending set, the send window, timers and the DEALER.
 * Frames and replies are client_wire.c's; the disk is spool.c's.
 *
 * Every pending message is in the hash (by id), in the submit-order queue, and in exactly one of four
 * lists that say what it waits for:
 *   staged    submitted, its spool record not yet written (the spool gathers a batch for one write(2)):
 *             never sent before the record is in the file; ready once omni_client_sync() or the next
 *             omni_client_poll() has written it
 *   ready     to be sent as soon as the window and the socket allow; kept in submit order, so the oldest
 *             goes first after a timeout, a BUSY or a reconnect
 *   inflight  sent, waiting for an answer; in send order, so the head times out first (resend_ms is fixed)
 *   backoff   BUSY: not before due_ms (the router's hint plus jitter)
 * The window counts inflight only. */
#include "client_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "omni/curve.h"
#include "omni/log.h"
#include "omni/message.h"
#include "omni/protocol.h"
#include "omni/util.h"

/* ---- the pending set -------------------------------------------------------------------------------- */

static uint64_t hash_id(const char *id)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return h;
}

omni_pend_t *omni__pend_find(const omni_client_t *c, const char *id)
{
    omni_pend_t *p = c->buckets[hash_id(id) & (c->nbuckets - 1)];
    while (p != NULL && strcmp(p->rec.id, id) != 0)
        p = p->hnext;
    return p;
}

static void hash_grow(omni_client_t *c)
{
    size_t n = c->nbuckets * 2;
    omni_pend_t **b = omni_calloc(n, sizeof *b);
    for (omni_pend_t *p = c->all_head; p != NULL; p = p->all_next) {
        omni_pend_t **slot = &b[hash_id(p->rec.id) & (n - 1)];
        p->hnext = *slot;
        *slot = p;
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

static omni_plist_t *list_of(omni_client_t *c, int q)
{
    return q == Q_STAGED ? &c->staged : q == Q_READY ? &c->ready : q == Q_INFLIGHT ? &c->inflight : &c->backoff;
}

void omni__list_remove(omni_client_t *c, omni_pend_t *p)
{
    if (p->q == Q_NONE)
        return;
    omni_plist_t *l = list_of(c, p->q);
    *(p->prev ? &p->prev->next : &l->head) = p->next;
    *(p->next ? &p->next->prev : &l->tail) = p->prev;
    p->prev = p->next = NULL;
    p->q = Q_NONE;
    l->n--;
}

/* Appends p (in no list) to the tail of list q. */
static void list_push(omni_client_t *c, omni_pend_t *p, int q)
{
    omni_plist_t *l = list_of(c, q);
    p->prev = l->tail;
    p->next = NULL;
    *(l->tail ? &l->tail->next : &l->head) = p;
    l->tail = p;
    p->q = q;
    l->n++;
}

/* Moves p to ready at its place by submit order. The ones that come back (timed out, BUSY) are old, so
 * the walk from the head is short: it passes only others that came back. */
void omni__make_ready(omni_client_t *c, omni_pend_t *p)
{
    omni__list_remove(c, p);
    omni_pend_t *at = c->ready.head;
    while (at != NULL && at->seq < p->seq)
        at = at->next;
    if (at == NULL) {
        list_push(c, p, Q_READY);
        return;
    }
    p->q = Q_READY;
    p->next = at;
    p->prev = at->prev;
    *(at->prev ? &at->prev->next : &c->ready.head) = p;
    at->prev = p;
    c->ready.n++;
}

void omni__make_backoff(omni_client_t *c, omni_pend_t *p, int64_t due)
{
    omni__list_remove(c, p);
    p->due_ms = due;
    list_push(c, p, Q_BACKOFF);
    if (c->backoff.n == 1 || due < c->backoff_due)
        c->backoff_due = due;
}

/* Adds a message to list q (staged, or ready when its record is in the file); takes rec's strings. */
static void pend_add(omni_client_t *c, omni_spool_rec_t *rec, bool sent_before, int q)
{
    if (c->npending >= c->nbuckets)
        hash_grow(c);
    omni_pend_t *p = omni_calloc(1, sizeof *p);
    p->rec = *rec;
    *rec = (omni_spool_rec_t){0};
    p->seq = c->next_seq++;
    p->sent_before = sent_before;
    omni_pend_t **slot = &c->buckets[hash_id(p->rec.id) & (c->nbuckets - 1)];
    p->hnext = *slot;
    *slot = p;
    p->all_prev = c->all_tail;
    *(c->all_tail ? &c->all_tail->all_next : &c->all_head) = p;
    c->all_tail = p;
    c->npending++;
    list_push(c, p, q);
}

/* The spool wrote everything it had gathered: the staged messages are in the file and may go. They are
 * the newest, so appending them keeps ready in submit order. */
static void staged_written(omni_client_t *c)
{
    if (omni_spool_unwritten(c->spool) != 0)
        return;
    while (c->staged.head != NULL) {
        omni_pend_t *p = c->staged.head;
        omni__list_remove(c, p);
        list_push(c, p, Q_READY);
    }
}

/* Writes what the spool gathered (unsynced). Returns 0 or -1 (errno; the spool logged it, and keeps the
 * records for the next try). */
static int spool_write(omni_client_t *c)
{
    int rc = omni_spool_write(c->spool);
    staged_written(c);
    return rc;
}

void omni__pend_drop(omni_client_t *c, omni_pend_t *p)
{
    omni__list_remove(c, p);
    omni_pend_t **slot = &c->buckets[hash_id(p->rec.id) & (c->nbuckets - 1)];
    while (*slot != p)
        slot = &(*slot)->hnext;
    *slot = p->hnext;
    *(p->all_prev ? &p->all_prev->all_next : &c->all_head) = p->all_next;
    *(p->all_next ? &p->all_next->all_prev : &c->all_tail) = p->all_prev;
    c->npending--;
    free(p->rec.id), free(p->rec.json);
    free(p);
}

/* ---- the socket ------------------------------------------------------------------------------------- */

/* CURVE (omni/curve.h): the router's public key and this client's key pair, read from files (the
 * public ones may be given inline). Keys are wiped from memory once ZeroMQ has them. */
static int curve_setup(omni_client_t *c, char *err, size_t errsz)
{
    const omni_client_opts_t *o = &c->o;
    if (o->server_public_key == NULL) {
        if (o->curve_secret_key_file != NULL || o->curve_public_key_file != NULL) {
            snprintf(err, errsz, "a CURVE key pair is given but no server_public_key (the router's .pub)");
            return -1;
        }
        return 0;
    }
    if (o->curve_secret_key_file == NULL) {
        snprintf(err, errsz, "server_public_key is given but no curve_secret_key_file (omnictl keygen NAME "
                 "writes NAME.key and NAME.pub)");
        return -1;
    }
    char server[OMNI_CURVE_Z85_LEN + 1], secret[OMNI_CURVE_Z85_LEN + 1], pub[OMNI_CURVE_Z85_LEN + 1];
    char given[OMNI_CURVE_Z85_LEN + 1];
    int rc = -1;
    if (omni_curve_read_public(o->server_public_key, server, "server_public_key", err, errsz) != 0 ||
        omni_curve_read_secret(o->curve_secret_key_file, secret, "curve_secret_key_file", err, errsz) != 0)
        goto out;
    if (omni_curve_public_of(secret, pub) != 0) {
        snprintf(err, errsz, "curve_secret_key_file: %s: not a usable key", o->curve_secret_key_file);
        goto out;
    }
    if (o->curve_public_key_file != NULL) {
        if (omni_curve_read_public(o->curve_public_key_file, given, "curve_public_key_file", err, errsz) != 0)
            goto out;
        if (strcmp(given, pub) != 0) {
            snprintf(err, errsz, "curve_public_key_file: %s is not the public key of %s", o->curve_public_key_file,
                     o->curve_secret_key_file);
            goto out;
        }
    }
    omni_curve_fingerprint(pub, c->key_fp);
    if (omni__monitor_open(c, err, errsz) != 0)
        goto out;
    if (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server, OMNI_CURVE_Z85_LEN + 1) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, pub, OMNI_CURVE_Z85_LEN + 1) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, secret, OMNI_CURVE_Z85_LEN + 1) != 0) {
        snprintf(err, errsz, "cannot use CURVE: %s", zmq_strerror(zmq_errno()));
        goto out;
    }
    rc = 0;
out:
    explicit_bzero(secret, sizeof secret);
    return rc;
}

static int sock_open(omni_client_t *c, char *err, size_t errsz)
{
    int zero = 0, one = 1;
    int64_t max = OMNI_FRAME_HARD_MAX;
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (c->sock != NULL && curve_setup(c, err, errsz) != 0)
        return -1;
    if (c->sock == NULL || zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &max, sizeof max) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_IMMEDIATE, &one, sizeof one) != 0) {
        snprintf(err, errsz, "cannot make a socket for %s: %s", c->endpoint, zmq_strerror(zmq_errno()));
        return -1;
    }
    for (size_t i = 0; i < c->n_eps; i++)
        if (zmq_connect(c->sock, c->eps[i]) != 0) {
            snprintf(err, errsz, "cannot connect to %s: %s", c->eps[i], zmq_strerror(zmq_errno()));
            return -1;
        }
    return 0;
}

/* The router went silent: drop the connection and everything queued on it, connect again and send every
 * pending message again, oldest first. The socket is kept (disconnect + connect) so that the descriptor
 * from omni_client_fd() stays valid for callers that registered it. */
static int reconnect(omni_client_t *c, int64_t now)
{
    if (!c->dead_warned)
        omni_warn("router %s silent for %d ms: reconnecting (%zu messages pending)", c->endpoint,
                  c->o.dead_ms, c->npending);
    c->dead_warned = true;
    for (size_t i = 0; i < c->n_eps; i++) {
        zmq_disconnect(c->sock, c->eps[i]); /* fails only when zmq already dropped it, which is as good */
        if (zmq_connect(c->sock, c->eps[i]) != 0) {
            omni_error("cannot reconnect to %s: %s", c->eps[i], zmq_strerror(zmq_errno()));
            return -1;
        }
    }
    c->ready = c->inflight = c->backoff = (omni_plist_t){0};
    for (omni_pend_t *p = c->all_head; p != NULL; p = p->all_next) {
        if (p->q == Q_STAGED)
            continue; /* not in the file yet: not sent before */
        p->q = Q_NONE;
        list_push(c, p, Q_READY);
    }
    c->last_rx = now;
    c->ping_outstanding = false;
    return 0;
}

/* Sends what is ready, oldest first, while the window has room. Returns 0 or -1 (fatal, errno). */
static int flush(omni_client_t *c, int64_t now)
{
    c->send_blocked = false;
    while (c->ready.head != NULL && c->inflight.n < c->o.window) {
        omni_pend_t *p = c->ready.head;
        const char *f[] = {OMNI_PROTO_VERSION, OMNI_CMD_MSG, p->rec.json};
        size_t l[] = {strlen(f[0]), strlen(f[1]), p->rec.len};
        int rc = omni__send(c, f, l, 3);
        if (rc != 0) {
            c->send_blocked = rc > 0;
            return rc > 0 ? 0 : -1;
        }
        if (p->sent_before)
            c->st.resent++;
        else
            c->st.sent++;
        p->sent_before = true;
        omni__list_remove(c, p);
        p->due_ms = now + c->o.resend_ms;
        list_push(c, p, Q_INFLIGHT);
    }
    return 0;
}

static int run_timers(omni_client_t *c, int64_t now)
{
    if ((c->npending > 0 || c->ping_outstanding) && now - c->last_rx >= c->o.dead_ms && reconnect(c, now) != 0)
        return -1;
    while (c->inflight.head != NULL && c->inflight.head->due_ms <= now)
        omni__make_ready(c, c->inflight.head);
    if (c->backoff.head != NULL && c->backoff_due <= now) {
        int64_t next = INT64_MAX;
        for (omni_pend_t *p = c->backoff.head, *n; p != NULL; p = n) {
            n = p->next;
            if (p->due_ms <= now)
                omni__make_ready(c, p);
            else if (p->due_ms < next)
                next = p->due_ms;
        }
        c->backoff_due = next;
    }
    int64_t heard = c->last_rx > c->last_ping ? c->last_rx : c->last_ping;
    if (now - heard >= c->o.ping_ms) {
        const char *f[] = {OMNI_PROTO_VERSION, OMNI_CMD_PING};
        size_t l[] = {strlen(f[0]), strlen(f[1])};
        int rc = omni__send(c, f, l, 2);
        if (rc < 0)
            return -1;
        c->last_ping = now; /* also when not sent (no peer): try again in ping_ms, do not spin */
        if (rc == 0) {
            c->ping_outstanding = true;
            c->st.pings++;
        }
    }
    return 0;
}

/* Time until the earliest timed work, 0 when there is work now. Never -1: a PING is always scheduled. */
static int64_t next_due(const omni_client_t *c, int64_t now)
{
    if (c->ready.head != NULL && c->inflight.n < c->o.window && !c->send_blocked)
        return 0;
    if (c->staged.head != NULL && !omni_spool_write_failed(c->spool))
        return 0; /* to be written, then sent */
    int64_t heard = c->last_rx > c->last_ping ? c->last_rx : c->last_ping, due = heard + c->o.ping_ms;
    if (c->inflight.head != NULL && c->inflight.head->due_ms < due)
        due = c->inflight.head->due_ms;
    if (c->backoff.head != NULL && c->backoff_due < due)
        due = c->backoff_due;
    if ((c->npending > 0 || c->ping_outstanding) && c->last_rx + c->o.dead_ms < due)
        due = c->last_rx + c->o.dead_ms;
    return due <= now ? 0 : due - now;
}

int omni_client_next_timeout(const omni_client_t *c)
{
    int64_t t = next_due(c, omni_mono_ms());
    return t > INT_MAX ? INT_MAX : (int)t;
}

/* Rewrites the spool once answered records dominate it; the live set is ours, in submit order. */
static void maybe_compact(omni_client_t *c)
{
    if (omni_spool_unwritten(c->spool) != 0 || !omni_spool_wants_compact(c->spool))
        return;
    const omni_spool_rec_t **live = omni_malloc((c->npending + 1) * sizeof *live);
    size_t n = 0;
    for (omni_pend_t *p = c->all_head; p != NULL; p = p->all_next)
        live[n++] = &p->rec;
    omni_spool_compact(c->spool, live, n); /* on failure the old file stays correct; it logs why */
    free(live);
}

int omni_client_poll(omni_client_t *c, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : omni_mono_ms() + timeout_ms;
    int handled = 0, rounds = 0;
    for (;;) {
        int64_t now = omni_mono_ms();
        /* Submitted and not synced yet: written now (one write for all of them), so that they can go.
         * A failed write keeps them back; the spool logged it, and sync will report it. */
        if (c->staged.head != NULL)
            spool_write(c);
        if (run_timers(c, now) != 0 || flush(c, now) != 0)
            return -1;
        /* Receiving comes last and until EAGAIN: a send may consume the edge of ZMQ_FD, and a caller
         * waiting on that descriptor would then sleep through replies already queued. */
        int n = omni__recv_all(c);
        if (n < 0)
            return -1;
        omni__monitor_drain(c);
        if (n > 0) {
            handled += n;
            spool_write(c); /* the round's answer records, with one write */
            maybe_compact(c);
            /* Answers freed window slots: go round to send, then read again; but not forever, or a long
             * backlog would keep the caller from its other work. The last step was a drained recv, and
             * omni_client_next_timeout() says 0 while there is something to send. */
            if (++rounds < 8)
                continue;
            return handled;
        }
        if (handled > 0)
            return handled;
        now = omni_mono_ms();
        if (deadline >= 0 && now >= deadline)
            return handled;
        int64_t wait = next_due(c, now);
        if (deadline >= 0 && (wait < 0 || wait > deadline - now))
            wait = deadline - now;
        zmq_pollitem_t it[2] = {{.socket = c->sock, .events = ZMQ_POLLIN}, {.socket = c->mon, .events = ZMQ_POLLIN}};
        if (c->ready.head != NULL && c->inflight.n < c->o.window)
            it[0].events |= ZMQ_POLLOUT; /* blocked on the socket: wake when a peer can take it */
        if (zmq_poll(it, c->mon != NULL ? 2 : 1, wait > INT_MAX ? INT_MAX : (long)wait) < 0)
            return errno == EINTR ? handled : -1; /* a signal: let the caller look at its flags */
    }
}

/* ---- the API ---------------------------------------------------------------------------------------- */

omni_client_t *omni_client_new(const omni_client_opts_t *opts, char *err, size_t errsz)
{
    if (opts == NULL || opts->endpoint == NULL || opts->spool_dir == NULL) {
        snprintf(err, errsz, "an endpoint and a spool directory are required");
        return NULL;
    }
    omni_client_t *c = omni_calloc(1, sizeof *c);
    c->o = *opts;
    c->o.resend_ms = opts->resend_ms > 0 ? opts->resend_ms : 5000;
    c->o.ping_ms = opts->ping_ms > 0 ? opts->ping_ms : 10000;
    int64_t twice = 2 * (int64_t)c->o.ping_ms, dead = opts->dead_ms > 0 ? opts->dead_ms : 3 * (int64_t)c->o.ping_ms;
    if (dead < twice) { /* else a quiet, healthy router would be taken for dead between two pings */
        omni_warn("dead_ms %lld is under twice ping_ms: using %lld", (long long)dead, (long long)twice);
        dead = twice;
    }
    c->o.dead_ms = dead > INT_MAX ? INT_MAX : (int)dead;
    c->o.window = opts->window > 0 ? opts->window : 1000;
    c->o.max_spooled = opts->max_spooled > 0 ? opts->max_spooled : 1000000;
    c->o.max_message_bytes = opts->max_message_bytes > 0 ? opts->max_message_bytes : 262144;
    c->endpoint = omni_strdup(opts->endpoint);
    c->o.endpoint = c->endpoint;
    for (const char *p = opts->endpoint;;) { /* "ipc://a.sock,tcp://b:5555": no endpoint holds a comma */
        size_t n = strcspn(p, ",");
        if (n == 0) {
            snprintf(err, errsz, "endpoint \"%s\": an empty entry", opts->endpoint);
            omni_client_destroy(&c);
            return NULL;
        }
        c->eps = omni_realloc(c->eps, (c->n_eps + 1) * sizeof *c->eps);
        c->eps[c->n_eps++] = omni_strndup(p, n);
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    c->o.spool_dir = NULL; /* borrowed for the call only */
    c->nbuckets = 64;
    c->buckets = omni_calloc(c->nbuckets, sizeof *c->buckets);
    c->rng = (uint32_t)omni_mono_ms() ^ (uint32_t)getpid() << 16 ^ 0x9e3779b9u;
    c->last_rx = c->last_ping = omni_mono_ms();
    omni_spool_rec_t *live;
    size_t nlive;
    c->spool = omni_spool_open(opts->spool_dir, &live, &nlive, err, errsz);
    if (c->spool == NULL) {
        omni_client_destroy(&c);
        return NULL;
    }
    for (size_t i = 0; i < nlive; i++) { /* sent by an earlier run, perhaps: count it as a resend */
        /* One spooled before submit refused it (an older libomni, or a smaller max_message_bytes now) would be
         * resent forever, unanswerable: it goes to the dead letters instead, like a NACK, and is logged. */
        const char *why = !omni_msg_id_valid(live[i].id, strlen(live[i].id)) ? "its id cannot be read back"
                          : live[i].len > 4 * c->o.max_message_bytes ? "over four times max_message_bytes"
                                                                       : NULL;
        if (why != NULL && omni_spool_nack(c->spool, live[i].id, why, live[i].json, live[i].len) == 0) {
            bool readable = why[0] != 'i'; /* a control character is not for the log line */
            omni_warn("spool: message %s: %s: the router could not answer it; moved to %s/dead-letter.jsonl",
                      readable ? live[i].id : "(unreadable id)", why, opts->spool_dir);
            free(live[i].id);
            free(live[i].json);
            continue;
        }
        pend_add(c, &live[i], true, Q_READY);
    }
    free(live);
    c->ctx = zmq_ctx_new();
    int rc = c->ctx == NULL ? -1 : sock_open(c, err, errsz);
    c->o.server_public_key = c->o.curve_secret_key_file = c->o.curve_public_key_file = NULL; /* borrowed */
    if (rc != 0) {
        if (c->ctx == NULL)
            snprintf(err, errsz, "cannot make a ZeroMQ context: %s", zmq_strerror(zmq_errno()));
        omni_client_destroy(&c);
        return NULL;
    }
    return c;
}

void omni_client_destroy(omni_client_t **client)
{
    if (client == NULL || *client == NULL)
        return;
    omni_client_t *c = *client;
    if (c->mon != NULL) {
        zmq_socket_monitor(c->sock, NULL, 0);
        zmq_close(c->mon);
    }
    if (c->sock != NULL)
        zmq_close(c->sock); /* ZMQ_LINGER 0: what was queued is dropped; the spool still has it */
    if (c->ctx != NULL)
        zmq_ctx_term(c->ctx);
    omni_spool_close(&c->spool);
    while (c->all_head != NULL)
        omni__pend_drop(c, c->all_head);
    free(c->buckets);
    for (size_t i = 0; i < c->n_eps; i++)
        free(c->eps[i]);
    free(c->eps);
    free(c->endpoint);
    free(c);
    *client = NULL;
}

/* The checks every submit makes. Returns 0 to go on, 1 when id is pending already (nothing to do), -1 with
 * errno. */
static int admit(omni_client_t *c, const char *id, size_t len)
{
    size_t idlen = id ? strlen(id) : 0;
    if (idlen == 0 || !omni_msg_id_valid(id, idlen)) { /* NACKed under "-": never answered, resent forever */
        errno = EINVAL;
        return -1;
    }
    /* Over four times the router's limit its NACK cannot name the id (over its cap it drops the connection,
     * not answering): resent forever, and every message sent beside it lost with the connection each time. */
    if (len > OMNI_FRAME_HARD_MAX || len > 4 * c->o.max_message_bytes) {
        errno = EMSGSIZE;
        return -1;
    }
    if (omni__pend_find(c, id) != NULL)
        return 1;
    if (c->npending >= c->o.max_spooled && !c->whole) {
        errno = EAGAIN;
        return -1;
    }
    /* A failed write is tried again before more is taken, so that a failing disk cannot pile messages up
     * in memory; a large batch is written as it grows (unsynced: sync still makes it durable). */
    if ((omni_spool_write_failed(c->spool) || omni_spool_unwritten(c->spool) >= OMNI_SPOOL_BUF_KEEP) &&
        spool_write(c) != 0)
        return -1;
    return 0;
}

/* Spools and stages a message that passed admit(); takes json (len bytes and a NUL, malloc'd) on success. */
static int enqueue(omni_client_t *c, const char *id, char *json, size_t len)
{
    if (omni_spool_submit(c->spool, id, json, len) != 0)
        return -1;
    omni_spool_rec_t rec = {.id = omni_strdup(id), .json = json, .len = len};
    pend_add(c, &rec, false, Q_STAGED);
    c->st.submitted++;
    return 0;
}

int omni_client_submit(omni_client_t *c, const char *id, const char *json, size_t len)
{
    if (json == NULL) {
        errno = EINVAL;
        return -1;
    }
    int rc = admit(c, id, len);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    /* The router answers by the id inside the JSON; a message whose id it cannot read would be NACKed
     * under "-" and never matched, so it would be resent forever. Refuse it here instead. */
    size_t idlen = strlen(id);
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *jid = json_object_get(doc, "id");
    bool same = json_is_string(jid) && json_string_length(jid) == idlen && memcmp(json_string_value(jid), id,
                                                                                  idlen) == 0;
    json_decref(doc);
    if (!same) {
        omni_error("submit %s: not a JSON object whose \"id\" is that id", id);
        errno = EINVAL;
        return -1;
    }
    char *copy = omni_malloc(len + 1);
    memcpy(copy, json, len);
    copy[len] = '\0';
    if (enqueue(c, id, copy, len) != 0) {
        free(copy);
        return -1;
    }
    return 0;
}

int omni__client_submit_built(omni_client_t *c, const char *id, char *json, size_t len)
{
    int rc = admit(c, id, len);
    if (rc == 0 && enqueue(c, id, json, len) == 0)
        return 0;
    int e = errno;
    free(json);
    errno = e;
    return rc > 0 ? 0 : -1;
}

int omni_client_sync(omni_client_t *c)
{
    int rc = omni_spool_sync(c->spool);
    staged_written(c);
    return rc;
}

size_t omni_client_pending(const omni_client_t *c) { return c->npending; }

void omni_client_stats(const omni_client_t *c, omni_client_stats_t *out) { *out = c->st; }

int omni_client_fd(const omni_client_t *c)
{
    int fd = -1;
    size_t sz = sizeof fd;
    if (zmq_getsockopt(c->sock, ZMQ_FD, &fd, &sz) != 0)
        return -1;
    return fd;
}
