/* OMNI/1, the connector-to-router protocol (../shared/DESIGN.md "OMNI/1").
 * Every message is multipart; frames are UTF-8 text. A DEALER (connector) sends no empty delimiter. */
#ifndef OMNI_PROTOCOL_H
#define OMNI_PROTOCOL_H

#define OMNI_PROTO_VERSION "OMNI/1"
#define OMNI_CMD_MSG  "MSG"   /* connector -> router: MSG <json> */
#define OMNI_CMD_ACK  "ACK"   /* router -> connector: ACK <id> */
#define OMNI_CMD_NACK "NACK"  /* router -> connector: NACK <id> <reason> */
#define OMNI_CMD_BUSY "BUSY"  /* router -> connector: BUSY <id> <retry after ms> */
#define OMNI_CMD_PING "PING"  /* either way */
#define OMNI_CMD_PONG "PONG"  /* either way */

/* A NACK for a frame whose message id could not be read carries this id. */
#define OMNI_NO_ID "-"

/* The largest frame a router or client accepts at the socket level (ZMQ_MAXMSGSIZE); a peer sending more
 * is disconnected by ZeroMQ. Frames between limits.message_bytes and this are read and NACKed. */
#define OMNI_FRAME_HARD_MAX (16 * 1024 * 1024)

#endif
