/* Fuzz target: OMNI/1 frame decoding (libomni frames.c), both directions, then what the router does with a
 * MSG: the message validator. The input is split into frames at each 0xFF 0x00 pair (bytes that valid UTF-8
 * never has), the first byte choosing the direction. Beyond not crashing: a decoded command's arguments lie
 * inside the frames, a violation says why ("protocol: ...") and sets no command, and a routing id, when
 * given, is within ZeroMQ's limit. */
#include <stdint.h>
#include <string.h>

#include "omni/frames.h"
#include "omni/log.h"
#include "omni/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const void *p, size_t len, const omni_frame_t *f, int n)
{
    for (int i = 0; i < n; i++) {
        const uint8_t *b = f[i].data;
        if ((const uint8_t *)p >= b && (const uint8_t *)p + len <= b + f[i].size)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    omni_direction_t dir = data[0] & 1 ? OMNI_FROM_ROUTER : OMNI_FROM_CONNECTOR;
    omni_frame_t f[OMNI_FRAMES_KEEP];
    int n = 0;
    size_t start = 1;
    for (size_t i = 1; i <= size; i++) {
        if (i == size || (i + 1 < size && data[i] == 0xFF && data[i + 1] == 0x00)) {
            if (n < OMNI_FRAMES_KEEP)
                f[n] = (omni_frame_t){ data + start, i - start };
            n++; /* frames beyond those kept are counted, as omni_frames_recv does */
            start = i + 2;
            i++;
        }
    }
    int kept = n < OMNI_FRAMES_KEEP ? n : OMNI_FRAMES_KEEP;
    omni_decoded_t d;
    memset(&d, 0xA5, sizeof d);
    const char *why = omni_frames_decode(dir, f, n, &d);
    if (why) {
        if (strncmp(why, "protocol: ", 10) != 0 || d.kind != 0)
            omni_panic("fuzz: violation %s with kind %d", why, (int)d.kind);
    } else {
        if (d.kind < OMNI_DEC_MSG || d.kind > OMNI_DEC_BUSY)
            omni_panic("fuzz: decoded kind %d", (int)d.kind);
        for (int a = 0; a < 2; a++)
            if ((d.kind == OMNI_DEC_MSG && a == 0) || ((d.kind == OMNI_DEC_ACK || d.kind == OMNI_DEC_BUSY) && a == 0) ||
                d.kind == OMNI_DEC_NACK)
                if (!inside(d.arg[a], d.arg_len[a], f, kept))
                    omni_panic("fuzz: argument %d of kind %d points outside the frames", a, (int)d.kind);
        if (d.kind == OMNI_DEC_MSG) {
            omni_msg_error_t err;
            omni_msg_t *m = omni_msg_parse(d.arg[0], d.arg_len[0], NULL, &err);
            omni_msg_destroy(&m);
        }
    }
    if (dir == OMNI_FROM_CONNECTOR && d.peer && d.peer_len > OMNI_ROUTING_ID_MAX)
        omni_panic("fuzz: routing id of %zu bytes", d.peer_len);
    return 0;
}
