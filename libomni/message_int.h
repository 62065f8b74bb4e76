/* Internals shared by message.c and message_check.c; not part of the public API. */
#ifndef OMNI_MESSAGE_INT_H
#define OMNI_MESSAGE_INT_H

#include "omni/message.h"

#include <stdbool.h>

/* How many bytes of an offending value an error reason quotes before cutting it with "...". */
#define OMNI_MSG_QUOTE_MAX 60

/* Fills err->field and err->reason (printf-style) and returns -1. err->id is left alone. Both are cut
 * to fit and made safe to put in a NACK frame: valid UTF-8, no control characters. err is borrowed. */
int omni__msg_fail(omni_msg_error_t *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes s[0..len) into out as a double-quoted string with JSON-style escapes, cut after
 * OMNI_MSG_QUOTE_MAX bytes (on a character boundary) with "..." before the closing quote. Bytes that
 * are not valid UTF-8 come out as \xNN. out (outsz >= 16) is the caller's; returns out. */
char *omni__msg_quote(const char *s, size_t len, char *out, size_t outsz);

/* Checks the document against every rule of the normalized message except the frame size. When the id
 * is valid it is copied into err->id first, even if a later rule fails. root and lim are borrowed.
 * Returns 0, or -1 with err->field and err->reason filled. */
int omni__msg_check(const json_t *root, const omni_limits_t *lim, omni_msg_error_t *err);
/* omni__msg_check without the size of meta when meta_size is false: for a caller that serializes the
 * document next and measures meta in that text (omni__msg_check_meta_size). */
int omni__msg_check_rules(const json_t *root, const omni_limits_t *lim, omni_msg_error_t *err, bool meta_size);
/* The rule on meta's size, given its length as compact JSON. Returns 0, or -1 with err filled. */
int omni__msg_check_meta_size(size_t n, const omni_limits_t *lim, omni_msg_error_t *err);

/* omni_msg_validate() and omni_msg_serialize() in one: the rules, then the one serialization, which is
 * also what the frame size is checked on. Returns the JSON (caller frees; *len its length), or NULL with
 * err filled. msg and lim (NULL: the defaults) are borrowed. */
char *omni__msg_serialize_valid(const omni_msg_t *msg, const omni_limits_t *lim, omni_msg_error_t *err,
                                size_t *len);

/* json_compact.c: what json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) writes, byte for byte, much cheaper.
 * Returns a new string (caller frees; *len its length), or NULL where jansson fails too (a string that is
 * not UTF-8, v not an object or array, nesting past 64). v is borrowed. */
char *omni__json_compact(const json_t *v, size_t *len);
/* omni__json_compact for a document whose strings are known to be valid UTF-8 when utf8_checked (as after
 * omni__msg_check: they are not checked again), and *mark_len set to the length of the value mark inside
 * it as written (0 when mark is not in it; mark and mark_len may be NULL). */
char *omni__json_compact_checked(const json_t *v, size_t *len, bool utf8_checked, const json_t *mark,
                                 size_t *mark_len);
/* The length of v's compact JSON (any order of keys: the same length), 0 where it cannot be written. */
size_t omni__json_compact_size(const json_t *v);

/* True when s[0..len) (borrowed) has a C0 control character, DEL or a C1 control (U+0080..U+009F). */
bool omni__has_control(const char *s, size_t len);

#endif
