/* See omni/frames.h. */
#include "omni/frames.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "omni/message.h"
#include "omni/protocol.h"

int omni_frames_recv(void *sock, omni_frames_t *fr)
{
    fr->n = fr->kept = 0;
    for (bool more = true; more;) {
        zmq_msg_t spare, *m = fr->n < OMNI_FRAMES_KEEP ? &fr->f[fr->n] : &spare;
        zmq_msg_init(m);
        /* Only the first part can be missing: ZeroMQ delivers a multipart message whole. */
        if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(m);
            omni_frames_close(fr);
            errno = e;
            return fr->n == 0 && (e == EAGAIN || e == EINTR) ? 0 : -1;
        }
        more = zmq_msg_more(m);
        if (m == &spare)
            zmq_msg_close(m);
        else
            fr->kept++;
        fr->n++;
    }
    return fr->n;
}

void omni_frames_close(omni_frames_t *fr)
{
    for (int i = 0; i < fr->kept; i++)
        zmq_msg_close(&fr->f[i]);
    fr->kept = 0;
}

int omni_frames_view(const omni_frames_t *fr, omni_frame_t out[OMNI_FRAMES_KEEP])
{
    for (int i = 0; i < fr->kept; i++) {
        out[i].data = zmq_msg_data((zmq_msg_t *)&fr->f[i]);
        out[i].size = zmq_msg_size((zmq_msg_t *)&fr->f[i]);
    }
    return fr->kept;
}

static bool is(const omni_frame_t *f, const char *s)
{
    size_t n = strlen(s);
    return f->size == n && (n == 0 || memcmp(f->data, s, n) == 0);
}

/* A message id as a reply carries it: 1..OMNI_MSG_ID_MAX bytes, no NUL (it becomes a C string). */
static bool id_ok(const omni_frame_t *f)
{
    return f->size > 0 && f->size <= OMNI_MSG_ID_MAX && memchr(f->data, '\0', f->size) == NULL;
}

/* "<retry ms>": 1..9 decimal digits, nothing else. */
static bool ms_ok(const omni_frame_t *f, int *ms)
{
    const char *d = f->data;
    if (f->size == 0 || f->size > 9)
        return false;
    int v = 0;
    for (size_t i = 0; i < f->size; i++) {
        if (d[i] < '0' || d[i] > '9')
            return false;
        v = v * 10 + (d[i] - '0');
    }
    *ms = v;
    return true;
}

static void arg(omni_decoded_t *out, int i, const omni_frame_t *f)
{
    out->arg[i] = f->data;
    out->arg_len[i] = f->size;
}

static const char *from_connector(const omni_frame_t *f, int n, omni_decoded_t *out)
{
    if (n < 1 || f[0].size == 0 || f[0].size > OMNI_ROUTING_ID_MAX)
        return "protocol: no usable routing id";
    out->peer = f[0].data;
    out->peer_len = f[0].size;
    if (n < 3)
        return "protocol: expected OMNI/1 and a command";
    if (!is(&f[1], OMNI_PROTO_VERSION))
        return "protocol: version frame is not OMNI/1";
    if (is(&f[2], OMNI_CMD_MSG)) {
        if (n != 4)
            return n < 4 ? "protocol: MSG without a message frame" : "protocol: MSG with extra frames";
        out->kind = OMNI_DEC_MSG;
        arg(out, 0, &f[3]);
        return NULL;
    }
    if (n == 3 && (is(&f[2], OMNI_CMD_PING) || is(&f[2], OMNI_CMD_PONG))) {
        out->kind = is(&f[2], OMNI_CMD_PING) ? OMNI_DEC_PING : OMNI_DEC_PONG;
        return NULL;
    }
    return "protocol: unknown command or wrong frame count";
}

static const char *from_router(const omni_frame_t *f, int n, omni_decoded_t *out)
{
    static const struct { const char *cmd; int frames; omni_cmd_kind_t kind; } cmds[] = {
        { OMNI_CMD_ACK, 3, OMNI_DEC_ACK },   { OMNI_CMD_NACK, 4, OMNI_DEC_NACK }, { OMNI_CMD_BUSY, 4, OMNI_DEC_BUSY },
        { OMNI_CMD_PING, 2, OMNI_DEC_PING }, { OMNI_CMD_PONG, 2, OMNI_DEC_PONG },
    };
    if (n < 2)
        return "protocol: too few frames";
    if (!is(&f[0], OMNI_PROTO_VERSION))
        return "protocol: version frame is not OMNI/1";
    size_t k = 0;
    while (k < sizeof cmds / sizeof cmds[0] && !is(&f[1], cmds[k].cmd))
        k++;
    if (k == sizeof cmds / sizeof cmds[0])
        return "protocol: unknown command";
    if (n != cmds[k].frames)
        return "protocol: wrong number of frames";
    if (n >= 3 && !id_ok(&f[2]))
        return "protocol: bad id";
    if (cmds[k].kind == OMNI_DEC_BUSY && !ms_ok(&f[3], &out->retry_ms))
        return "protocol: bad retry time";
    for (int i = 2; i < n; i++)
        arg(out, i - 2, &f[i]);
    out->kind = cmds[k].kind;
    return NULL;
}

const char *omni_frames_decode(omni_direction_t dir, const omni_frame_t *frames, int n, omni_decoded_t *out)
{
    memset(out, 0, sizeof *out);
    /* Only the kept frames exist; any message longer than that is a violation in both directions, so
     * nothing past OMNI_FRAMES_KEEP is ever looked at. */
    const char *why = dir == OMNI_FROM_CONNECTOR ? from_connector(frames, n, out) : from_router(frames, n, out);
    if (why != NULL) {
        const void *peer = out->peer;
        size_t len = out->peer_len;
        memset(out, 0, sizeof *out);
        out->peer = peer;
        out->peer_len = len;
    }
    return why;
}
