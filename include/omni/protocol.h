/* OMNI/1, the connector-to-router protocol (../shared/DESIGN.md "OMNI/1").
 * Every message is multipart; frames are UTF-8 text. A DEALER (connector) sends no empty delimiter. */
#ifndef OMNI_PROTOCOL_H
#define OMNI_PROTOCOL_H

#include <stdint.h>

#define OMNI_PROTO_VERSION "OMNI/1"
#define OMNI_CMD_MSG  "MSG"   /* connector -> router: MSG <json> */
#define OMNI_CMD_ACK  "ACK"   /* router -> connector: ACK <id> */
#define OMNI_CMD_NACK "NACK"  /* router -> connector: NACK <id> <reason> */
#define OMNI_CMD_BUSY "BUSY"  /* router -> connector: BUSY <id> <retry after ms> */
#define OMNI_CMD_PING "PING"  /* either way */
#define OMNI_CMD_PONG "PONG"  /* either way */

/* A NACK for a frame whose message id could not be read carries this id. */
#define OMNI_NO_ID "-"

/* The router's socket cuts any frame over four times limits.message_bytes plus OMNI_FRAME_ALLOWANCE
 * (OMNI_FRAME_CAP, its ZMQ_MAXMSGSIZE): ZeroMQ disconnects the peer without the frame reaching the router, so
 * a huge frame costs no memory or parse. A frame over the limit but within the cap is read and NACKed (with its
 * id up to four times the limit or within the allowance, libomni/message.c), so a connector whose message is
 * too big learns why instead of being cut off and resending forever. */
#define OMNI_FRAME_ALLOWANCE (64 * 1024)
#define OMNI_FRAME_CAP(message_bytes) (4 * (int64_t)(message_bytes) + OMNI_FRAME_ALLOWANCE)

/* The largest message a client spools and sends (and the largest frame it accepts, ZMQ_MAXMSGSIZE): the
 * largest limits.message_bytes a router can be configured with. */
#define OMNI_FRAME_HARD_MAX (16 * 1024 * 1024)

#endif
