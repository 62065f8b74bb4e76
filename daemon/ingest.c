/* See ingest.h. One message's path: recv frames -> decode -> validate -> normalize identity -> a batch
 * (the messages of one read bound for one Redis connection) -> EVALSHA ingest, one call per batch, pipelined
 * with every other call in flight -> reply callback -> ACK. */
#include "ingest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "omni/curve.h"
#include "omni/frames.h"
#include "omni/identity.h"
#include "omni/log.h"
#include "omni/message.h"
#include "omni/protocol.h"
#include "omni/util.h"
#include "clock.h"
#include "fold.h"
#include "peers.h"
#include "scripts.h"
#include "transport.h"

#define RECV_BATCH 512 /* messages read per wake-up, so replies and Redis get their turn */
/* Messages per ingest.lua call. A call costs Redis more than a message's own writes, so a read's messages go
 * together; but a call holds Redis while it runs (~50 us a message), so a batch is bounded for the other
 * clients' latency. */
#define STORE_BATCH 32

struct ingest {
    void *socket;
    loop_t *loop;
    store_t *store;
    const router_config_t *cfg;
    peers_t peers;
    zap_t *zap; /* NULL unless tcp endpoints use CURVE */
    ingest_stats_t stats;
    size_t inflight;
    ingest_opened_fn *on_opened;
    ingest_first_route_t first; /* all NULL: no first plans */
    void *opened_data;
    struct batch *batches[STORE_CONNECTIONS_MAX]; /* per store_slot(): filled during a read, sent at its end */
    unsigned long long unread_dropped; /* replies lost to peers that do not read them (their queue full) */
    int64_t unread_warned_at;          /* when that was last logged (at most every 10 s) */
};

/* One message waiting for Redis. */
typedef struct pending {
    ingest_t *ingest;
    size_t peer_len;
    unsigned char peer[PEER_ID_MAX];
    char id[OMNI_MSG_ID_MAX + 1];
    char identity[OMNI_IDENTITY_MAX];
    char fingerprint[17]; /* fold.h's hash of the text, 16 hex digits; "" when folding is off */
    char *json; /* owned: the message as received, until its batch is sent */
    size_t json_len;
    omni_msg_t *msg; /* owned: its channel for the call; kept for routing the conversation it may open */
    int channel_kind; /* policy.h's CHANNEL_ kinds, for the per-channel counts */
    char *plan; /* owned: the plan for a new customer's first conversation (routing_first_plan), or NULL */
    int64_t planned; /* monotonic ms when it was made */
} pending_t;

static void pending_free(pending_t *p)
{
    free(p->plan);
    omni_msg_destroy(&p->msg);
    free(p->json);
    free(p);
}

/* Messages for one ingest.lua call, in the order they came (one sender's are always in one slot). */
typedef struct batch {
    size_t n;
    pending_t *items[STORE_BATCH]; /* owned */
} batch_t;

/* --- replies --- */

/* Sends routing id + OMNI/1 + the given frames. A peer that is gone, or that leaves INGEST_UNREAD_MAX replies
 * unread (its queue is full), loses the reply: it resends after its timeout and deduplication makes that
 * harmless (docs/protocol.md). The router never waits for a peer, and a peer that never reads costs it a
 * bounded queue, not memory without end. */
static void reply(ingest_t *in, const void *peer, size_t peer_len, int n, const char *const *frames)
{
    if (zmq_send(in->socket, peer, peer_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (errno != EAGAIN) {
            omni_debug("ingest: reply to a peer that is gone: %s", zmq_strerror(errno));
            return;
        }
        in->unread_dropped++;
        int64_t now = omni_mono_ms();
        if (in->unread_warned_at == 0 || now - in->unread_warned_at >= 10000) {
            in->unread_warned_at = now;
            omni_warn("ingest: a connector leaves %d replies unread: replies dropped (%llu so far); it resends "
                      "what it was not answered", INGEST_UNREAD_MAX, in->unread_dropped);
        }
        return;
    }
    zmq_send(in->socket, OMNI_PROTO_VERSION, strlen(OMNI_PROTO_VERSION), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    for (int i = 0; i < n; i++)
        zmq_send(in->socket, frames[i], strlen(frames[i]), (i + 1 < n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
}

static void send_ack(ingest_t *in, const void *peer, size_t len, const char *id)
{
    const char *f[] = { OMNI_CMD_ACK, id };
    reply(in, peer, len, 2, f);
}

/* Counts a NACK by the field of the schema that failed ("from.id"; indexes dropped: "attachments[].url"),
 * "protocol" for frames that break OMNI/1, "message" for the frame as a whole. Names the sender chose never
 * become a label: a key the schema does not have counts as "unknown" (reason: message_check.c's "unknown
 * field ..."), anything inside meta as "meta". Else a source's junk keys would take every kind, leaving the
 * real fields to "other", and a multi-byte key cut to fit would make the whole scrape invalid UTF-8. */
static void count_nack(ingest_stats_t *st, const char *what, const char *reason)
{
    char field[40];
    size_t n = 0;
    if (reason && strncmp(reason, "unknown field", 13) == 0)
        what = "unknown";
    else if (strncmp(what, "meta", 4) == 0 && (what[4] == '.' || what[4] == '['))
        what = "meta";
    for (const char *p = what; *p && n + 1 < sizeof field; p++) {
        field[n++] = *p;
        if (*p == '[') /* attachments[3].url -> attachments[].url */
            while (p[1] && p[1] != ']')
                p++;
    }
    field[n] = '\0';
    size_t i = 0;
    while (i < st->n_nack_kinds && strcmp(st->nacks[i].field, field))
        i++;
    if (i == st->n_nack_kinds && i < INGEST_NACK_KINDS)
        snprintf(st->nacks[st->n_nack_kinds++].field, sizeof field, "%s", field);
    else if (i == st->n_nack_kinds) /* every kind taken: the spare last entry */
        snprintf(st->nacks[i = INGEST_NACK_KINDS].field, sizeof field, "other");
    st->nacks[i].n++;
}

static void send_nack(ingest_t *in, const void *peer, size_t len, const char *id, const char *reason)
{
    const char *f[] = { OMNI_CMD_NACK, id && *id ? id : OMNI_NO_ID, reason };
    in->stats.nacked++;
    reply(in, peer, len, 3, f);
}

static void send_busy(ingest_t *in, const void *peer, size_t len, const char *id)
{
    char ms[16];
    snprintf(ms, sizeof ms, "%d", in->cfg->router.busy_retry_ms);
    const char *f[] = { OMNI_CMD_BUSY, id, ms };
    in->stats.busy++;
    reply(in, peer, len, 3, f);
}

/* Who a frame is counted against: over CURVE the sender's public key (the ZAP handler made it the
 * User-Id), so a peer that reconnects with a new routing id is still known; elsewhere the routing id.
 * A key starts with a NUL and is longer than 5 bytes, which no routing id can be (ZeroMQ reserves a
 * leading NUL for its own 5-byte ids), so the two never collide. Writes into key (PEER_ID_MAX bytes);
 * returns its length, 0 when the message has no usable routing id. */
static size_t peer_key(const omni_frames_t *fr, char *key)
{
    if (fr->kept == 0)
        return 0;
    const char *user = zmq_msg_gets((zmq_msg_t *)&fr->f[0], "User-Id");
    if ((user == NULL || !*user) && fr->kept > 1)
        user = zmq_msg_gets((zmq_msg_t *)&fr->f[1], "User-Id");
    if (user != NULL && *user) {
        size_t n = strlen(user) < PEER_ID_MAX - 7 ? strlen(user) : PEER_ID_MAX - 7;
        memcpy(key, "\0curve:", 7);
        memcpy(key + 7, user, n);
        return n + 7;
    }
    size_t n = zmq_msg_size((zmq_msg_t *)&fr->f[0]);
    if (n == 0 || n > PEER_ID_MAX)
        return 0;
    memcpy(key, zmq_msg_data((zmq_msg_t *)&fr->f[0]), n);
    return n;
}

/* How a peer key reads in the log: the CURVE key's fingerprint, or the routing id in hex. */
static const char *key_str(const char *key, size_t len, char *buf, size_t bufsz)
{
    if (len > 7 && memcmp(key, "\0curve:", 7) == 0) {
        char z85[OMNI_CURVE_Z85_LEN + 1], fp[OMNI_CURVE_FP_LEN + 1];
        snprintf(z85, sizeof z85, "%.*s", (int)(len - 7), key + 7);
        snprintf(buf, bufsz, "with key %s", omni_curve_fingerprint(z85, fp) == 0 ? fp : z85);
        return buf;
    }
    char hex[2 * 16 + 1];
    snprintf(buf, bufsz, "%s", peers_hex(key, len < 16 ? len : 16, hex, sizeof hex));
    return buf;
}

/* A protocol break: NACK it to the routing id, count it against the peer's key, and drop the peer when it
 * keeps at it. */
static void violation(ingest_t *in, const char *key, size_t key_len, const void *peer, size_t peer_len,
                      const char *reason)
{
    char who[64];
    in->stats.violations++;
    count_nack(&in->stats, "protocol", NULL);
    send_nack(in, peer, peer_len, OMNI_NO_ID, reason);
    key_str(key, key_len, who, sizeof who);
    omni_warn("ingest: peer %s: protocol violation: %s", who, reason);
    if (peers_violation(&in->peers, key, key_len, omni_mono_ms())) {
        in->stats.peers_dropped++;
        omni_log_event(OMNI_LOG_WARN, OMNI_MSGID_PEER_DROPPED, NULL,
                       "ingest: peer %s dropped for %d s after %d protocol violations", who,
                       in->cfg->router.peer_ban_s, in->cfg->router.peer_violation_limit);
    }
}

/* --- the store's answer --- */

/* One message's record of ingest.lua's reply (f: its INGEST_REPLY_FIELDS elements, borrowed): counted, logged,
 * ACKed, and a conversation it opened handed to routing. */
static void stored_one(ingest_t *in, pending_t *p, redisReply **f)
{
    long long stored = f[INGEST_REPLY_STORED]->integer, opened = f[INGEST_REPLY_OPENED]->integer;
    const char *cust = f[INGEST_REPLY_CUSTOMER]->str, *conv = f[INGEST_REPLY_CONVERSATION]->str;
    if (stored && f[INGEST_REPLY_FOLDED_INTO]->len > 0) {
        in->stats.stored++;
        in->stats.folded++;
        omni_log_event(OMNI_LOG_DEBUG, OMNI_MSGID_STORED,
                       (const char *[]){ "OMNI_MESSAGE", p->id, "CONVERSATION", conv, "CUSTOMER", cust, NULL },
                       "stored %s from %s: a near-copy of %s, folded into conversation %s", p->id, p->identity,
                       f[INGEST_REPLY_FOLDED_INTO]->str, conv);
    } else if (stored) {
        in->stats.stored++;
        in->stats.stored_by_channel[p->channel_kind]++;
        char note[160] = "";
        if (opened && f[INGEST_REPLY_OUTCOME]->len > 0)
            snprintf(note, sizeof note, " (opened and routed in the same call: %.20s %.40s)",
                     f[INGEST_REPLY_OUTCOME]->str, f[INGEST_REPLY_DETAIL]->str);
        else if (opened && in->on_opened)
            snprintf(note, sizeof note, " (opened; routing it)");
        else if (opened)
            snprintf(note, sizeof note, " (opened, queued on %s)", in->cfg->conversations.default_queue);
        omni_log_event(OMNI_LOG_DEBUG, OMNI_MSGID_STORED,
                       (const char *[]){ "OMNI_MESSAGE", p->id, "CONVERSATION", conv, "CUSTOMER", cust, NULL },
                       "stored %s from %s: customer %s%s, conversation %s%s", p->id, p->identity, cust,
                       f[INGEST_REPLY_NEW_CUSTOMER]->integer ? " (new)" : "", conv, note);
    } else {
        in->stats.duplicates++;
        omni_debug("duplicate %s: already stored in conversation %s; acknowledged again", p->id, conv);
    }
    send_ack(in, p->peer, p->peer_len, p->id);
    /* ACKed first: the message is durable whatever routing does; an unrouted conversation is picked up again */
    if (stored && opened && f[INGEST_REPLY_OUTCOME]->len > 0 && in->first.decided)
        in->first.decided(in->opened_data, conv, f[INGEST_REPLY_OUTCOME]->str, f[INGEST_REPLY_DETAIL]->str,
                          p->planned);
    else if (stored && opened && in->on_opened)
        in->on_opened(in->opened_data, conv, p->msg, p->identity, (long)f[INGEST_REPLY_CONVERSATIONS]->integer,
                      f[INGEST_REPLY_TIER]->str, f[INGEST_REPLY_LAST_OWNER]->str);
}

/* The store's answer to one batch (data: the batch, owned here): a record per message, in order. */
static void on_stored(store_t *store, redisReply *r, void *data)
{
    (void)store;
    batch_t *b = data;
    ingest_t *in = b->items[0]->ingest;
    /* checked against ingest.lua's "@reply" declaration by the store: whole records; here, one per message */
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == b->n * INGEST_REPLY_FIELDS;
    if (r && !ok) {
        if (r->type == REDIS_REPLY_ERROR)
            omni_warn("ingest: messages %s..%s (%zu): store answered %s", b->items[0]->id, b->items[b->n - 1]->id,
                      b->n, r->str);
        else
            omni_warn("ingest: messages %s..%s: the store answered %zu records for %zu messages", b->items[0]->id,
                      b->items[b->n - 1]->id, r->elements / INGEST_REPLY_FIELDS, b->n);
    }
    for (size_t i = 0; i < b->n; i++) {
        pending_t *p = b->items[i];
        in->inflight--;
        if (ok) {
            stored_one(in, p, r->element + i * INGEST_REPLY_FIELDS);
        } else {
            /* Not known to be stored: BUSY, so the connector keeps it and tries again (a part stored before a
             * failure is a duplicate then, and ACKed as one). */
            in->stats.store_failures++;
            send_busy(in, p->peer, p->peer_len, p->id);
        }
        pending_free(p);
    }
    free(b);
}

/* Sends a slot's batch as one ingest.lua call (the batch is the store's from here, or answered BUSY). */
static void flush(ingest_t *in, int slot)
{
    batch_t *b = in->batches[slot];
    if (!b || b->n == 0)
        return;
    in->batches[slot] = NULL;
    const policy_t *pol = &in->cfg->policy;
    char now[24], window[16], bits[8], *days = NULL;
    snprintf(now, sizeof now, "%lld", (long long)clock_now());
    snprintf(window, sizeof window, "%d", pol->fold_window_ms);
    snprintf(bits, sizeof bits, "%d", fold_max_bits(pol->fold_similarity_pct));
    for (size_t i = 0; i < b->n && !days && in->first.days; i++)
        if (b->items[i]->plan)
            days = in->first.days(in->opened_data);
    const char *argv[INGEST_NARGS + 6 * STORE_BATCH] = {
        [INGEST_ARG_PREFIX] = in->cfg->redis.key_prefix, [INGEST_ARG_NOW] = now,
        [INGEST_ARG_QUEUE] = in->cfg->conversations.default_queue, [INGEST_ARG_ROUTING] = in->on_opened ? "1" : "0",
        [INGEST_ARG_FOLD_WINDOW_MS] = window, [INGEST_ARG_FOLD_MAX_BITS] = bits,
        [INGEST_ARG_DAYS] = days ? days : "{}",
    };
    size_t argl[INGEST_NARGS + 6 * STORE_BATCH];
    for (int i = 0; i < INGEST_NARGS; i++)
        argl[i] = strlen(argv[i]);
    int argc = INGEST_NARGS;
    for (size_t i = 0; i < b->n; i++) { /* ...messages: id identity channel message fingerprint plan */
        pending_t *p = b->items[i];
        const char *six[] = { p->id, p->identity, p->msg->channel, p->json, p->fingerprint, p->plan ? p->plan : "" };
        for (int k = 0; k < 6; k++, argc++) {
            argv[argc] = six[k];
            argl[argc] = k == 3 ? p->json_len : strlen(six[k]);
        }
    }
    /* one sender's messages on one connection: stored in the order they came */
    /* ACKed only once stored (and, with redis.wait_replicas, on that many replicas: WAIT) */
    int sent = store_script_replicated(in->store, b->items[0]->identity, LUA_INGEST, argc, argv, argl, on_stored, b);
    free(days);
    if (sent != 0) {
        for (size_t i = 0; i < b->n; i++) {
            in->inflight--;
            send_busy(in, b->items[i]->peer, b->items[i]->peer_len, b->items[i]->id);
            pending_free(b->items[i]);
        }
        free(b);
        return;
    }
    for (size_t i = 0; i < b->n; i++) { /* the store copied what it sends */
        pending_t *p = b->items[i];
        free(p->json);
        p->json = NULL;
        free(p->plan);
        p->plan = NULL;
        if (!in->on_opened)
            omni_msg_destroy(&p->msg); /* kept until the answer only to route the conversation it may open */
    }
}

/* --- decoding --- */

static void handle_msg(ingest_t *in, const unsigned char *peer, size_t peer_len, const char *buf, size_t len)
{
    omni_msg_error_t err;
    memset(&err, 0, sizeof err);
    in->stats.received++;
    omni_msg_t *msg = omni_msg_parse(buf, len, &in->cfg->limits, &err);
    if (!msg) {
        char line[600];
        snprintf(line, sizeof line, "%s%s%s", err.field, err.field[0] ? ": " : "", err.reason);
        omni_log_event(OMNI_LOG_WARN, OMNI_MSGID_MESSAGE_REFUSED,
                       (const char *[]){ "OMNI_MESSAGE", err.id[0] ? err.id : NULL, NULL }, "refused message %s: %s",
                       err.id[0] ? err.id : "(no id)", line);
        count_nack(&in->stats, err.field[0] ? err.field : "message", err.reason);
        send_nack(in, peer, peer_len, err.id, line);
        return;
    }
    char ident[OMNI_IDENTITY_MAX];
    const char *why = NULL;
    if (omni_identity_key(msg->channel, msg->from_id, in->cfg->identity.default_country, ident, sizeof ident,
                          &why) != 0) {
        char line[400];
        snprintf(line, sizeof line, "from.id: %s", why ? why : "not a valid identity for this channel");
        omni_log_event(OMNI_LOG_WARN, OMNI_MSGID_MESSAGE_REFUSED, (const char *[]){ "OMNI_MESSAGE", msg->id, NULL },
                       "refused message %s: %s", msg->id, line);
        count_nack(&in->stats, "from.id", NULL);
        send_nack(in, peer, peer_len, msg->id, line);
        omni_msg_destroy(&msg);
        return;
    }
    if (!store_up(in->store) || in->inflight >= (size_t)in->cfg->router.max_inflight) {
        send_busy(in, peer, peer_len, msg->id);
        omni_msg_destroy(&msg);
        return;
    }
    pending_t *p = omni_calloc(1, sizeof *p);
    p->ingest = in;
    p->peer_len = peer_len;
    memcpy(p->peer, peer, peer_len);
    snprintf(p->id, sizeof p->id, "%s", msg->id);
    snprintf(p->identity, sizeof p->identity, "%s", ident);
    int kind = policy_channel_kind(msg->channel);
    p->channel_kind = kind < 0 ? CHANNEL_OTHER : kind;
    /* near-duplicate folding (fold.h): the fingerprint is compared inside the script, atomically */
    uint64_t h = in->cfg->policy.fold_window_ms > 0 ? fold_hash(msg->text) : 0;
    if (h)
        snprintf(p->fingerprint, sizeof p->fingerprint, "%016llx", (unsigned long long)h);
    p->json = omni_malloc(len);
    memcpy(p->json, buf, len);
    p->json_len = len;
    p->msg = msg;
    if (in->on_opened && in->first.plan) {
        p->plan = in->first.plan(in->opened_data, msg, ident);
        p->planned = omni_mono_ms();
    }
    int slot = store_slot(in->store, ident);
    if (!in->batches[slot])
        in->batches[slot] = omni_calloc(1, sizeof *in->batches[slot]);
    batch_t *b = in->batches[slot];
    b->items[b->n++] = p;
    in->inflight++;
    omni_debug("message %s from %s: handed to redis", p->id, p->identity);
    if (b->n == STORE_BATCH)
        flush(in, slot);
}

void ingest_on_opened(ingest_t *in, ingest_opened_fn *fn, const ingest_first_route_t *first, void *data)
{
    in->on_opened = fn;
    in->first = first && fn ? *first : (ingest_first_route_t){ 0 };
    in->opened_data = data;
}

/* Every frame is refused unread while its sender is banned; then decoded (omni_frames_decode), then
 * handled. The ban is checked first so a banned peer costs one recv and one lookup, nothing more. */
static void handle_one(ingest_t *in, const omni_frames_t *fr)
{
    omni_frame_t f[OMNI_FRAMES_KEEP];
    omni_frames_view(fr, f);
    char key[PEER_ID_MAX];
    size_t key_len = peer_key(fr, key);
    if (key_len > 0 && peers_banned(&in->peers, key, key_len, omni_mono_ms()))
        return; /* dropped: not parsed, not obeyed, not answered */
    omni_decoded_t d;
    const char *why = omni_frames_decode(OMNI_FROM_CONNECTOR, f, fr->n, &d);
    if (why != NULL) {
        if (d.peer != NULL)
            violation(in, key, key_len, d.peer, d.peer_len, why);
        return;
    }
    if (d.kind == OMNI_DEC_PING) {
        const char *pong[] = { OMNI_CMD_PONG };
        reply(in, d.peer, d.peer_len, 1, pong);
    } else if (d.kind == OMNI_DEC_MSG) {
        handle_msg(in, d.peer, d.peer_len, d.arg[0], d.arg_len[0]);
    } /* PONG: a liveness answer, nothing to do */
}

static void on_readable(loop_t *loop, int fd, int events, void *data)
{
    (void)loop, (void)fd, (void)events;
    ingest_t *in = data;
    omni_frames_t fr;
    for (int batch = 0; batch < RECV_BATCH && omni_frames_recv(in->socket, &fr) > 0; batch++) {
        handle_one(in, &fr);
        omni_frames_close(&fr);
    }
    for (int slot = 0; slot < STORE_CONNECTIONS_MAX; slot++)
        flush(in, slot);
}

ingest_t *ingest_new(void *zctx, loop_t *loop, store_t *store, const router_config_t *cfg, char *err,
                     size_t errsz)
{
    ingest_t *in = omni_calloc(1, sizeof *in);
    in->loop = loop;
    in->store = store;
    in->cfg = cfg;
    peers_init(&in->peers, cfg->router.peer_violation_limit, cfg->router.peer_ban_s);
    in->socket = zmq_socket(zctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    /* A frame far over the message limit is cut by ZeroMQ before it costs memory or a parse; up to four times
     * it (and the allowance) is read and NACKed, as DESIGN.md asks of anything over a limit (protocol.h) */
    int64_t maxsize = OMNI_FRAME_CAP(cfg->limits.message_bytes);
    zmq_setsockopt(in->socket, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    int unread = INGEST_UNREAD_MAX; /* replies queued for one peer (ZeroMQ's default, 1,000, drops too soon) */
    zmq_setsockopt(in->socket, ZMQ_SNDHWM, &unread, sizeof unread);
    zmq_setsockopt(in->socket, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(in->socket, ZMQ_MAXMSGSIZE, &maxsize, sizeof maxsize);
    if (transport_bind(zctx, in->socket, loop, cfg, &in->zap, err, errsz) != 0) {
        zmq_close(in->socket);
        in->socket = NULL; /* not watched yet */
        ingest_destroy(&in);
        return NULL;
    }
    loop_add_socket(loop, in->socket, LOOP_READ, on_readable, in);
    return in;
}

void ingest_destroy(ingest_t **ingest)
{
    if (!ingest || !*ingest)
        return;
    ingest_t *in = *ingest;
    if (in->socket) {
        loop_del_socket(in->loop, in->socket);
        /* the last answers (ACK, BUSY) still queued get a moment to leave; one that does not is resent by its
         * connector and deduplicated, so this bounds the exit, it does not guard a promise */
        int linger = 500;
        zmq_setsockopt(in->socket, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(in->socket);
    }
    zap_destroy(&in->zap); /* after the socket whose handshakes it answered */
    for (int slot = 0; slot < STORE_CONNECTIONS_MAX; slot++) { /* empty: every read sends its batches */
        if (in->batches[slot])
            for (size_t i = 0; i < in->batches[slot]->n; i++)
                pending_free(in->batches[slot]->items[i]);
        free(in->batches[slot]);
    }
    peers_free(&in->peers);
    free(in);
    *ingest = NULL;
}

void ingest_tick(ingest_t *in) { peers_expire(&in->peers, omni_mono_ms()); }
const ingest_stats_t *ingest_stats(const ingest_t *in) { return &in->stats; }
size_t ingest_inflight(const ingest_t *in) { return in->inflight; }

void ingest_set_config(ingest_t *in, const router_config_t *cfg) { in->cfg = cfg; }
