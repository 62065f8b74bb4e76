/* The normalized message, version 1 (../shared/DESIGN.md "The normalized message").
 *
 * A message is a jansson object plus borrowed pointers to its fields. Parsing validates everything
 * (types, sizes, UTF-8, RFC 3339, channel names, limits) and names the field and the rule that broke.
 * The sender identity is NOT normalized here: that needs the router's default country; see identity.h. */
#ifndef OMNI_MESSAGE_H
#define OMNI_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#define OMNI_MSG_ID_MAX 256
/* Ids the router gives the messages it writes itself (follow-ups): a connector's message may not take one. */
#define OMNI_MSG_ID_RESERVED "followup:"

/* Limits the router enforces (conf: limits.*). Anything over them is refused, never truncated. */
typedef struct omni_limits {
    size_t message_bytes; /* the whole JSON frame; default 262144 */
    size_t text_bytes;    /* "text"; default 65536 */
    size_t field_bytes;   /* every other string (subject, thread, names, urls, meta values); default 4096 */
    size_t attachments;   /* entries in "attachments"; default 32 */
    size_t meta_bytes;    /* "meta" serialized compactly; default 16384 */
    size_t depth;         /* JSON nesting depth inside "meta"; default 8 */
} omni_limits_t;

void omni_limits_default(omni_limits_t *lim);

/* Why a message was refused: the id when it could be read (else ""), the field ("from.id",
 * "attachments[2].size", "" for the document as a whole) and the rule, e.g.
 *   field "received_at", reason "not an RFC 3339 date-time: \"yesterday\"". */
typedef struct omni_msg_error {
    char id[OMNI_MSG_ID_MAX + 1];
    char field[64];
    char reason[256];
} omni_msg_error_t;

/* Formats an error as one line: "message <id>: <field>: <reason>" (id and field omitted when empty). */
const char *omni_msg_error_str(const omni_msg_error_t *err, char *buf, size_t bufsz);

typedef struct omni_msg {
    json_t *json;            /* owned: the whole document */
    /* borrowed from json, valid while the message lives; NULL when absent */
    const char *id, *channel, *from_id, *from_name, *received_at, *text;
    const char *subject, *thread, *to, *lang;
} omni_msg_t;

/* Parses and validates len bytes of JSON. Returns a new message (caller owns; omni_msg_destroy) or NULL
 * with *err filled. Unknown top-level fields are refused (they would be silently lost otherwise).
 * err->id is the message's id whenever the document parsed far enough to read a valid one, even when the
 * frame is refused as a whole (over limits.message_bytes by up to OMNI_FRAME_ALLOWANCE or up to 4 times it;
 * bad UTF-8 outside the id): the
 * caller needs no parse of its own to address the NACK. It is "" for text that is not JSON (duplicate keys
 * included), has no valid id, or is bigger than that. The document is parsed once, but for a frame with bad
 * UTF-8 whose id holds a '?': parsed again to tell its own '?' from a replaced byte. */
omni_msg_t *omni_msg_parse(const char *buf, size_t len, const omni_limits_t *lim, omni_msg_error_t *err);

/* Builds a message for a connector. All strings are copied. text may be "" (a missed call). */
omni_msg_t *omni_msg_new(const char *id, const char *channel, const char *from_id, const char *received_at,
                         const char *text);
/* Sets an optional string field: "subject", "thread", "to", "lang" or "from.name". value is copied;
 * NULL removes it. Returns 0, or -1 for an unknown field name. */
int omni_msg_set(omni_msg_t *msg, const char *field, const char *value);
/* Appends an attachment; strings are copied, url may be NULL. */
void omni_msg_add_attachment(omni_msg_t *msg, const char *name, const char *type, long long size,
                             const char *url);
/* Sets meta[key] = value. Takes ownership of value (a jansson reference); key is copied. value NULL
 * removes meta[key] (so a json_string() that failed on bad UTF-8 drops the key instead of crashing). */
void omni_msg_set_meta(omni_msg_t *msg, const char *key, json_t *value);

/* Validates a built message against lim. Returns 0, or -1 with *err filled. */
int omni_msg_validate(const omni_msg_t *msg, const omni_limits_t *lim, omni_msg_error_t *err);

/* Compact JSON, keys sorted. Returns a new string the caller frees; *len (if not NULL) gets its length.
 * Returns NULL for a built message holding bytes that are not UTF-8 (omni_msg_validate names the field). */
char *omni_msg_serialize(const omni_msg_t *msg, size_t *len);

/* Frees the message and sets *msg to NULL. NULL and *msg == NULL are fine. */
void omni_msg_destroy(omni_msg_t **msg);

/* True when id[0..len) would pass as a message's "id" (1..OMNI_MSG_ID_MAX bytes of UTF-8, no control
 * character, not starting OMNI_MSG_ID_RESERVED): a connector building ids from what it read checks with this before falling back. */
bool omni_msg_id_valid(const char *id, size_t len);

/* True for "email", "sms", "twitter", "facebook", "phone" and "x-<name>" (name: 1..32 of [a-z0-9-]). */
int omni_channel_valid(const char *channel);

#endif
