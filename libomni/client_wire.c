/* The OMNI/1 client on the wire: sending frames, and strict decoding of what the router sends back.
 * A reply that breaks the protocol (wrong version, command or frame count, a bad id or number) is logged
 * and ignored: acting on half of a bad frame could drop a message that was never stored. */
#include "client_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "omni/frames.h"
#include "omni/log.h"
#include "omni/message.h"
#include "omni/protocol.h"
#include "omni/util.h"

#define REASON_MAX 1024    /* longer NACK reasons are cut: they go to logs and the dead-letter file */
#define BUSY_MIN_MS 10     /* a router hint below this would make us spin */
#define BUSY_MAX_MS 60000  /* above this, a confused router could park messages for hours */

int omni__send(omni_client_t *c, const char *const *frames, const size_t *lens, int n)
{
    for (int i = 0; i < n; i++) {
        if (zmq_send(c->sock, frames[i], lens[i], ZMQ_DONTWAIT | (i < n - 1 ? ZMQ_SNDMORE : 0)) >= 0)
            continue;
        /* Usually only the first part can be refused for want of room; a later part is refused when the
         * router went away between parts, and ZeroMQ then drops the incomplete message. Either way the
         * message stays pending and goes again: not an error. */
        if (errno == EAGAIN || errno == EINTR)
            return 1;
        omni_error("cannot send to %s: %s", c->endpoint, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

/* Copies a frame into out (outsz bytes with the NUL) with anything unprintable as '?', for log lines
 * and callbacks: a router's bytes must not inject lines or escapes. */
static char *printable(const zmq_msg_t *cm, char *out, size_t outsz)
{
    zmq_msg_t *m = (zmq_msg_t *)cm; /* zmq_msg_size/data take no const */
    size_t size = zmq_msg_size(m), n = size < outsz - 1 ? size : outsz - 1;
    const unsigned char *d = zmq_msg_data(m);
    while (n > 0 && n < size && (d[n] & 0xc0) == 0x80) /* do not cut a character in two */
        n--;
    bool utf8 = omni_utf8_valid((const char *)d, n, NULL);
    for (size_t i = 0; i < n; i++)
        out[i] = d[i] < 0x20 || d[i] == 0x7f || (d[i] >= 0x80 && !utf8) ? '?' : (char)d[i];
    out[n] = '\0';
    return out;
}

static int malformed(omni_client_t *c, const omni_frames_t *fr, const char *why)
{
    char a[24] = "", b[24] = "";
    zmq_msg_t *f = (zmq_msg_t *)fr->f;
    omni_warn("router %s: ignoring a malformed reply (%s): %d frames, \"%s\" \"%s\"", c->endpoint, why, fr->n,
              fr->kept > 0 ? printable(&f[0], a, sizeof a) : "", fr->kept > 1 ? printable(&f[1], b, sizeof b) : "");
    return 0;
}

static uint32_t next_rand(omni_client_t *c)
{
    uint32_t x = c->rng ? c->rng : 0x9e3779b9u;
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    return c->rng = x;
}

static void on_ack(omni_client_t *c, omni_pend_t *p, const char *id)
{
    omni_spool_ack(c->spool, id, p->rec.len); /* a lost answer record costs one deduplicated resend */
    omni__pend_drop(c, p);
    c->st.acked++;
    if (c->o.on_ack)
        c->o.on_ack(c->o.user, id);
}

static void on_nack(omni_client_t *c, omni_pend_t *p, const char *id, const zmq_msg_t *why)
{
    char reason[REASON_MAX];
    printable(why, reason, sizeof reason);
    /* When the dead letter cannot be written the message stays pending: the next resend gets NACKed
     * again and the write is tried again, so the refused message is never lost. */
    if (omni_spool_nack(c->spool, id, reason, p->rec.json, p->rec.len) != 0)
        return;
    /* An on_nack callback reports it its own way (the connector runtime: one warning with the file): once. */
    omni_log(c->o.on_nack ? OMNI_LOG_DEBUG : OMNI_LOG_WARN, "message %s refused by router %s: %s (kept in the "
             "dead-letter file)", id, c->endpoint, reason);
    omni__pend_drop(c, p);
    c->st.nacked++;
    if (c->o.on_nack)
        c->o.on_nack(c->o.user, id, reason);
}

static void on_busy(omni_client_t *c, omni_pend_t *p, const char *id, int ms)
{
    ms = ms < BUSY_MIN_MS ? BUSY_MIN_MS : ms > BUSY_MAX_MS ? BUSY_MAX_MS : ms;
    /* Up to a quarter more, so connectors told the same thing do not all come back at once. */
    int jitter = (int)(next_rand(c) % (uint32_t)(ms / 4 + 1));
    omni__make_backoff(c, p, omni_mono_ms() + ms + jitter);
    c->st.busy++;
    if (c->o.on_busy)
        c->o.on_busy(c->o.user, id, ms);
}

/* Handles one reply. Returns 1 when it was well-formed, 0 when it was ignored, -1 on a fatal error. */
static int handle(omni_client_t *c, const omni_frames_t *fr)
{
    omni_frame_t f[OMNI_FRAMES_KEEP];
    omni_frames_view(fr, f);
    omni_decoded_t d;
    const char *why = omni_frames_decode(OMNI_FROM_ROUTER, f, fr->n, &d);
    if (why != NULL)
        return malformed(c, fr, why);
    if (d.kind == OMNI_DEC_PONG) {
        c->ping_outstanding = false;
        return 1;
    }
    if (d.kind == OMNI_DEC_PING) {
        const char *pong[] = {OMNI_PROTO_VERSION, OMNI_CMD_PONG};
        size_t l[] = {strlen(pong[0]), strlen(pong[1])};
        return omni__send(c, pong, l, 2) < 0 ? -1 : 1; /* no room for a PONG: the router pings again */
    }
    char id[OMNI_MSG_ID_MAX + 1];
    memcpy(id, d.arg[0], d.arg_len[0]);
    id[d.arg_len[0]] = '\0';
    omni_pend_t *p = omni__pend_find(c, id);
    if (p == NULL) { /* an answer to a resend of something answered already */
        omni_debug("router %s: %s for %s, which is not pending", c->endpoint,
                   d.kind == OMNI_DEC_ACK ? "ACK" : d.kind == OMNI_DEC_NACK ? "NACK" : "BUSY",
                   strcmp(id, OMNI_NO_ID) ? "a message" : OMNI_NO_ID);
        return 1;
    }
    if (d.kind == OMNI_DEC_ACK)
        on_ack(c, p, id);
    else if (d.kind == OMNI_DEC_NACK)
        on_nack(c, p, id, &fr->f[3]);
    else
        on_busy(c, p, id, d.retry_ms);
    return 1;
}

int omni__recv_all(omni_client_t *c)
{
    int handled = 0;
    for (;;) {
        omni_frames_t fr;
        int n = omni_frames_recv(c->sock, &fr);
        if (n == 0)
            return handled;
        if (n < 0) {
            int e = errno;
            omni_error("cannot receive from %s: %s", c->endpoint, zmq_strerror(e));
            errno = e;
            return -1;
        }
        c->last_rx = omni_mono_ms(); /* any frame at all shows the router is alive */
        c->dead_warned = false;
        int rc = handle(c, &fr);
        omni_frames_close(&fr);
        if (rc < 0)
            return -1;
        handled += rc;
    }
}

int omni__monitor_open(omni_client_t *c, char *err, size_t errsz)
{
    char ep[64];
    int zero = 0;
    snprintf(ep, sizeof ep, "inproc://omni-client-monitor-%p", (void *)c);
    /* not FAILED_NO_DETAIL: a router going away mid-handshake says nothing about our key */
    if (zmq_socket_monitor(c->sock, ep, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0 ||
        (c->mon = zmq_socket(c->ctx, ZMQ_PAIR)) == NULL ||
        zmq_setsockopt(c->mon, ZMQ_LINGER, &zero, sizeof zero) != 0 || zmq_connect(c->mon, ep) != 0) {
        snprintf(err, errsz, "cannot watch the CURVE handshake: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

void omni__monitor_drain(omni_client_t *c)
{
    if (c->mon == NULL)
        return;
    omni_frames_t fr;
    while (omni_frames_recv(c->mon, &fr) > 0) {
        /* an event is two frames: 16-bit event and 32-bit value, then the endpoint */
        uint16_t event = 0;
        uint32_t value = 0;
        if (fr.kept >= 1 && zmq_msg_size(&fr.f[0]) >= 6) {
            memcpy(&event, zmq_msg_data(&fr.f[0]), 2);
            memcpy(&value, (char *)zmq_msg_data(&fr.f[0]) + 2, 4);
        }
        omni_frames_close(&fr);
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            if (c->auth_warned)
                omni_info("router %s accepted our CURVE key now", c->endpoint);
            c->auth_warned = false;
        } else if (event != 0 && !c->auth_warned) {
            c->auth_warned = true;
            omni_warn("router %s refused the CURVE handshake (%s): is our public key (fingerprint %s) in its "
                      "router.curve.allowed_keys, and router.server_public_key the router's key? Messages stay "
                      "spooled and go once it admits us", c->endpoint,
                      event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ? (value == 400 ? "key not allowed" : "authentication")
                                                               : "protocol error", c->key_fp);
        }
    }
}
