/* OMNI/1 on the wire, written once for every program that speaks it: reading one multipart message off a
 * ZeroMQ socket (omni_frames_recv), and deciding what a sequence of frames means (omni_frames_decode).
 *
 * Decoding is a pure function of the frames' bytes: no socket, no allocation, no global state. It checks the
 * routing id, the version frame, the command and the frame count (and, for replies, the id and the BUSY
 * retry time), and returns either the decoded command, pointing into the frames, or the violation. That
 * makes it the one place a malformed peer can reach before the message parser, and fuzzable on its own. */
#ifndef OMNI_FRAMES_H
#define OMNI_FRAMES_H

#include <stddef.h>
#include <zmq.h>

/* Frames kept per message; the rest are read and dropped, but counted. OMNI/1 has at most 4 (routing id +
 * OMNI/1 + MSG + JSON, or OMNI/1 + NACK + id + reason), so any message of more is seen whole enough to be
 * refused; 8 also holds a ZAP request (7 frames for CURVE), which the router reads with the same code. */
#define OMNI_FRAMES_KEEP 8
/* A ROUTER's routing id is 1..255 bytes (ZeroMQ's own limit). */
#define OMNI_ROUTING_ID_MAX 255

typedef struct omni_frames {
    zmq_msg_t f[OMNI_FRAMES_KEEP];
    int n;    /* frames the message had, counting those dropped beyond OMNI_FRAMES_KEEP */
    int kept; /* frames in f: min(n, OMNI_FRAMES_KEEP); each is open until omni_frames_close */
} omni_frames_t;

/* Reads one whole multipart message from sock (borrowed) without waiting for it. Returns the number of
 * frames (fr->n), 0 when none was waiting (or EINTR), -1 on another error (errno). The caller closes what
 * it got with omni_frames_close; on 0 and -1 nothing is left open. */
int omni_frames_recv(void *sock, omni_frames_t *fr);
/* Closes the kept frames (fr is the caller's; it can be reused for the next recv). */
void omni_frames_close(omni_frames_t *fr);

/* One frame's bytes, borrowed from whoever holds the frame. */
typedef struct omni_frame {
    const void *data;
    size_t size;
} omni_frame_t;

/* Fills out[0..kept) from fr's frames (borrowed: valid until omni_frames_close). Returns fr->kept. */
int omni_frames_view(const omni_frames_t *fr, omni_frame_t out[OMNI_FRAMES_KEEP]);

typedef enum {
    OMNI_FROM_CONNECTOR, /* what a router's ROUTER socket reads: <routing id> OMNI/1 MSG|PING|PONG ... */
    OMNI_FROM_ROUTER,    /* what a connector's DEALER reads: OMNI/1 ACK|NACK|BUSY|PING|PONG ... */
} omni_direction_t;

typedef enum {
    OMNI_DEC_MSG = 1, /* arg[0]: the message JSON (not parsed here) */
    OMNI_DEC_PING,
    OMNI_DEC_PONG,
    OMNI_DEC_ACK,  /* arg[0]: id */
    OMNI_DEC_NACK, /* arg[0]: id, arg[1]: reason (any bytes: print it with care) */
    OMNI_DEC_BUSY, /* arg[0]: id, retry_ms: the hint */
} omni_cmd_kind_t;

typedef struct omni_decoded {
    omni_cmd_kind_t kind;
    const void *peer; /* OMNI_FROM_CONNECTOR: the routing id (also set when the frames are a violation, */
    size_t peer_len;  /* whenever frame 0 was a usable routing id: the violation is answered to it) */
    const char *arg[2];
    size_t arg_len[2];
    int retry_ms;
} omni_decoded_t;

/* Decodes a message of n frames, of which frames[0..min(n, OMNI_FRAMES_KEEP)) are given (borrowed; out
 * points into them). Returns NULL with *out filled, or the violation as a constant sentence starting with
 * "protocol: " (e.g. "protocol: version frame is not OMNI/1"); then out->kind is 0 and only peer is set. */
const char *omni_frames_decode(omni_direction_t dir, const omni_frame_t *frames, int n, omni_decoded_t *out);

#endif
