/* The normalized message: parsing a frame, building one in a connector, serializing it.
 * The rules themselves are in message_check.c. Pointer arguments of the static helpers are borrowed for
 * the call, except put(), which takes over the jansson reference it is given. */
#include "message_int.h"
#include "omni/log.h"
#include "omni/protocol.h"
#include "omni/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void omni_limits_default(omni_limits_t *lim)
{
    lim->message_bytes = 262144;
    lim->text_bytes = 65536;
    lim->field_bytes = 4096;
    lim->attachments = 32;
    lim->meta_bytes = 16384;
    lim->depth = 8;
}

/* Copies src into dst (dstsz bytes), replacing control characters and bytes that are not valid UTF-8
 * with '?', and never ending in the middle of a character. */
static void copy_clean(char *dst, size_t dstsz, const char *src)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0, len = strlen(src);
    for (size_t i = 0; i < len && o + 1 < dstsz;) {
        size_t n = s[i] < 0x80 ? 1 : s[i] >= 0xF0 ? 4 : s[i] >= 0xE0 ? 3 : 2;
        if (n > 1 && (i + n > len || !omni_utf8_valid(src + i, n, NULL)))
            n = 0;   /* not a whole valid character: one '?' for this byte */
        if (n == 0 || (n == 1 && (s[i] < 0x20 || s[i] == 0x7F)) || omni__has_control(src + i, n)) {
            dst[o++] = '?';
            i++;
            continue;
        }
        if (o + n >= dstsz)
            break;
        memcpy(dst + o, src + i, n);
        o += n;
        i += n;
    }
    dst[o] = '\0';
}

int omni__msg_fail(omni_msg_error_t *err, const char *field, const char *fmt, ...)
{
    char reason[sizeof err->reason + 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    copy_clean(err->field, sizeof err->field, field);
    copy_clean(err->reason, sizeof err->reason, reason);
    return -1;
}

char *omni__msg_quote(const char *str, size_t len, char *out, size_t outsz)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t o = 0, i = 0;
    out[o++] = '"';
    /* Reserve room for the closing "...\"" and NUL. */
    while (i < len && i < OMNI_MSG_QUOTE_MAX && o + 12 < outsz) {
        unsigned c = s[i];
        size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            out[o++] = '\\';
            out[o++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == 0x7F) {
            o += (size_t)snprintf(out + o, outsz - o, "\\u%04x", c);
        } else if (c < 0x80) {
            out[o++] = (char)c;
        } else if (i + n <= len && omni_utf8_valid(str + i, n, NULL) && !omni__has_control(str + i, n)) {
            if (i + n > OMNI_MSG_QUOTE_MAX || o + n + 12 >= outsz)
                break;   /* cut before a character that does not fit whole */
            memcpy(out + o, str + i, n);
            o += n;
            i += n;
            continue;
        } else {
            o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
        }
        i++;
    }
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

const char *omni_msg_error_str(const omni_msg_error_t *err, char *buf, size_t bufsz)
{
    if (err->id[0] != '\0' && err->field[0] != '\0')
        snprintf(buf, bufsz, "message %s: %s: %s", err->id, err->field, err->reason);
    else if (err->id[0] != '\0')
        snprintf(buf, bufsz, "message %s: %s", err->id, err->reason);
    else if (err->field[0] != '\0')
        snprintf(buf, bufsz, "%s: %s", err->field, err->reason);
    else
        snprintf(buf, bufsz, "%s", err->reason);
    return buf;
}

/* Points the message's field pointers into its document; called after every change, because replacing
 * a value in the document frees the string a pointer was borrowing. */
static void bind(omni_msg_t *msg)
{
    json_t *j = msg->json, *from = json_object_get(j, "from");
    msg->id = json_string_value(json_object_get(j, "id"));
    msg->channel = json_string_value(json_object_get(j, "channel"));
    msg->from_id = json_string_value(json_object_get(from, "id"));
    msg->from_name = json_string_value(json_object_get(from, "name"));
    msg->received_at = json_string_value(json_object_get(j, "received_at"));
    msg->text = json_string_value(json_object_get(j, "text"));
    msg->subject = json_string_value(json_object_get(j, "subject"));
    msg->thread = json_string_value(json_object_get(j, "thread"));
    msg->to = json_string_value(json_object_get(j, "to"));
    msg->lang = json_string_value(json_object_get(j, "lang"));
}

/* A copy of buf[0..len) with every byte that is not valid UTF-8 replaced by with (same length, so
 * nothing shifts), from the first bad one at offset bad. Caller frees. */
static char *utf8_scrubbed(const char *buf, size_t len, size_t bad, char with)
{
    char *copy = omni_malloc(len ? len : 1);
    memcpy(copy, buf, len);
    for (size_t off = bad; off < len;) {
        copy[off] = with;
        off++;
        if (off < len && omni_utf8_valid(copy + off, len - off, &bad))
            break;
        off += bad;
    }
    return copy;
}

/* Whether id, read from buf scrubbed with '?', holds none of the replaced bytes: the id read from the same
 * frame scrubbed with '_' is the same. The two are alike to JSON (neither is whitespace, a delimiter, an
 * escape or a hex digit), so both copies parse the same way and only a replaced byte can tell them apart. */
static bool id_unscrubbed(const char *buf, size_t len, size_t bad, const char *id)
{
    char *other = utf8_scrubbed(buf, len, bad, '_');
    json_t *root = json_loadb(other, len, JSON_REJECT_DUPLICATES, NULL);
    free(other);
    const char *id2 = json_string_value(json_object_get(root, "id"));
    bool same = id2 != NULL && strcmp(id, id2) == 0;
    json_decref(root);
    return same;
}

/* The document is parsed once, whatever happens (but for the rare second reading below). A frame that cannot be accepted as a whole (over the
 * size limit, bad UTF-8) is still parsed, so that the id it carries reaches the NACK: the connector needs
 * it to retire the message from its spool. Bad bytes are parsed as '?' (utf8_scrubbed), and an id holding
 * a '?' then is trusted only when a second reading shows none of its '?' was a replaced byte (rare: bad
 * bytes and a '?' in the id; an id such as "web:https://example.com/?p=1" must still reach its NACK). */
omni_msg_t *omni_msg_parse(const char *buf, size_t len, const omni_limits_t *lim, omni_msg_error_t *err)
{
    omni_limits_t defaults;
    if (lim == NULL) {
        omni_limits_default(&defaults);
        lim = &defaults;
    }
    memset(err, 0, sizeof *err);
    if (buf == NULL)
        buf = "";
    bool too_big = len > lim->message_bytes;
    /* Reading the id costs the parse; bounded, so a huge frame cannot make the refusal expensive. Up to
     * OMNI_FRAME_ALLOWANCE over is always read: that is what the router's socket lets through to be NACKed. */
    if (too_big && len > 4 * lim->message_bytes && len - lim->message_bytes > OMNI_FRAME_ALLOWANCE) {
        omni__msg_fail(err, "", "message is %zu bytes, over the limit of %zu", len, lim->message_bytes);
        return NULL;
    }
    size_t bad = 0;
    bool utf8 = omni_utf8_valid(buf, len, &bad);
    char *scrubbed = utf8 ? NULL : utf8_scrubbed(buf, len, bad, '?');
    json_error_t jerr;
    json_t *root = json_loadb(utf8 ? buf : scrubbed, len, JSON_REJECT_DUPLICATES, &jerr);
    free(scrubbed);
    if (root != NULL && (too_big || !utf8)) {
        omni_msg_error_t scratch;
        memset(&scratch, 0, sizeof scratch);
        omni__msg_check(root, lim, &scratch); /* copies a valid id before anything else can fail */
        if (utf8 || strchr(scratch.id, '?') == NULL || id_unscrubbed(buf, len, bad, scratch.id))
            memcpy(err->id, scratch.id, sizeof err->id);
    }
    if (too_big) {
        json_decref(root);
        omni__msg_fail(err, "", "message is %zu bytes, over the limit of %zu", len, lim->message_bytes);
        return NULL;
    }
    if (!utf8 || (root == NULL && json_error_code(&jerr) == json_error_invalid_utf8)) {
        json_decref(root);
        /* jansson and we may disagree on a sequence: then trust its position */
        omni__msg_fail(err, "", "invalid UTF-8 at byte %zu", utf8 ? (size_t)jerr.position : bad);
        return NULL;
    }
    if (root == NULL) {
        omni__msg_fail(err, "", "not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (omni__msg_check(root, lim, err) != 0) {
        json_decref(root);
        return NULL;
    }
    omni_msg_t *msg = omni_calloc(1, sizeof *msg);
    msg->json = root;
    bind(msg);
    return msg;
}

/* A jansson string that is not checked for UTF-8 here, so that omni_msg_validate can name the field
 * holding bad bytes instead of the value silently going missing (json_string returns NULL). */
static json_t *str_new(const char *s)
{
    json_t *v = json_string_nocheck(s);
    if (v == NULL)
        omni_fatal("out of memory building a message");
    return v;
}

/* obj[key] = value: takes over the reference to value (key is copied); out of memory is fatal. */
static void put(json_t *obj, const char *key, json_t *value)
{
    if (json_object_set_new_nocheck(obj, key, value) != 0)
        omni_fatal("out of memory building a message");
}

omni_msg_t *omni_msg_new(const char *id, const char *channel, const char *from_id, const char *received_at,
                         const char *text)
{
    omni_msg_t *msg = omni_calloc(1, sizeof *msg);
    msg->json = json_object();
    json_t *from = json_object();
    if (msg->json == NULL || from == NULL)
        omni_fatal("out of memory building a message");
    /* A NULL argument leaves its field out; omni_msg_validate then reports it as missing. */
    if (id != NULL) put(msg->json, "id", str_new(id));
    if (channel != NULL) put(msg->json, "channel", str_new(channel));
    if (from_id != NULL) put(from, "id", str_new(from_id));
    put(msg->json, "from", from);
    if (received_at != NULL) put(msg->json, "received_at", str_new(received_at));
    if (text != NULL) put(msg->json, "text", str_new(text));
    bind(msg);
    return msg;
}

/* The field pointer that borrows key's string (key in obj, the document or its from), NULL for none. */
static const char **field_ptr(omni_msg_t *msg, const json_t *obj, const char *key)
{
    if (obj != msg->json)
        return &msg->from_name; /* omni_msg_set changes only name in from */
    return strcmp(key, "subject") == 0 ? &msg->subject : strcmp(key, "thread") == 0 ? &msg->thread
         : strcmp(key, "to") == 0 ? &msg->to : strcmp(key, "lang") == 0 ? &msg->lang : NULL;
}

int omni_msg_set(omni_msg_t *msg, const char *field, const char *value)
{
    json_t *obj = msg->json;
    const char *key = field;
    if (strcmp(field, "from.name") == 0) {
        obj = json_object_get(msg->json, "from");
        key = "name";
        if (!json_is_object(obj))
            return -1;
    } else if (strcmp(field, "subject") != 0 && strcmp(field, "thread") != 0 && strcmp(field, "to") != 0 &&
               strcmp(field, "lang") != 0) {
        return -1;
    }
    /* Only this field's string is freed or made: only its pointer is bound again (bind() looks up all
     * ten, which cost more than the change itself). */
    const char **ptr = field_ptr(msg, obj, key);
    if (value == NULL) {
        json_object_del(obj, key);
        *ptr = NULL;
    } else {
        json_t *v = str_new(value);
        put(obj, key, v);
        *ptr = json_string_value(v);
    }
    return 0;
}

void omni_msg_add_attachment(omni_msg_t *msg, const char *name, const char *type, long long size,
                             const char *url)
{
    json_t *list = json_object_get(msg->json, "attachments");
    if (!json_is_array(list)) {
        list = json_array();
        if (list == NULL)
            omni_fatal("out of memory building a message");
        put(msg->json, "attachments", list);
    }
    json_t *a = json_object();
    json_t *sz = json_integer((json_int_t)size);
    if (a == NULL || sz == NULL)
        omni_fatal("out of memory building a message");
    if (name != NULL) put(a, "name", str_new(name));
    if (type != NULL) put(a, "type", str_new(type));
    put(a, "size", sz);
    if (url != NULL) put(a, "url", str_new(url));
    if (json_array_append_new(list, a) != 0)
        omni_fatal("out of memory building a message");
}

void omni_msg_set_meta(omni_msg_t *msg, const char *key, json_t *value)
{
    json_t *meta = json_object_get(msg->json, "meta");
    if (value == NULL) {
        json_object_del(meta, key);
        return;
    }
    if (!json_is_object(meta)) {
        meta = json_object();
        if (meta == NULL)
            omni_fatal("out of memory building a message");
        put(msg->json, "meta", meta);
    }
    put(meta, key, value);
}

/* The frame the router will see is the serialization: its size is checked against the same limit. */
static int size_check(size_t n, const omni_limits_t *lim, omni_msg_error_t *err)
{
    if (n > lim->message_bytes)
        return omni__msg_fail(err, "", "message is %zu bytes, over the limit of %zu", n, lim->message_bytes);
    return 0;
}

/* The rules, without the size. lim NULL: the defaults, copied into *defaults. */
static int check(const omni_msg_t *msg, const omni_limits_t **lim, omni_limits_t *defaults, omni_msg_error_t *err)
{
    if (*lim == NULL) {
        omni_limits_default(defaults);
        *lim = defaults;
    }
    memset(err, 0, sizeof *err);
    return omni__msg_check(msg->json, *lim, err);
}

int omni_msg_validate(const omni_msg_t *msg, const omni_limits_t *lim, omni_msg_error_t *err)
{
    omni_limits_t defaults;
    if (check(msg, &lim, &defaults, err) != 0)
        return -1;
    return size_check(omni__json_compact_size(msg->json), lim, err);
}

char *omni_msg_serialize(const omni_msg_t *msg, size_t *len)
{
    size_t n = 0;
    char *s = omni__json_compact(msg->json, &n);
    if (len != NULL)
        *len = n;
    return s;
}

char *omni__msg_serialize_valid(const omni_msg_t *msg, const omni_limits_t *lim, omni_msg_error_t *err,
                                size_t *len)
{
    omni_limits_t defaults;
    if (lim == NULL) {
        omni_limits_default(&defaults);
        lim = &defaults;
    }
    memset(err, 0, sizeof *err);
    /* The rules but meta's size, then the one serialization: every string in it was just checked for
     * UTF-8, and meta's size is read off the text rather than measured by writing meta once more. */
    if (omni__msg_check_rules(msg->json, lim, err, false) != 0)
        return NULL;
    const json_t *meta = json_object_get(msg->json, "meta");
    size_t meta_len = 0;
    char *s = omni__json_compact_checked(msg->json, len, true, meta, &meta_len);
    if (s == NULL)
        omni_fatal("out of memory serializing a message");
    if ((meta != NULL && omni__msg_check_meta_size(meta_len, lim, err) != 0) || size_check(*len, lim, err) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

void omni_msg_destroy(omni_msg_t **msg)
{
    if (msg == NULL || *msg == NULL)
        return;
    json_decref((*msg)->json);
    free(*msg);
    *msg = NULL;
}

int omni_channel_valid(const char *channel)
{
    static const char *const known[] = { "email", "sms", "twitter", "facebook", "phone" };
    if (channel == NULL)
        return 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(channel, known[i]) == 0)
            return 1;
    if (strncmp(channel, "x-", 2) != 0)
        return 0;
    size_t n = strlen(channel + 2);
    if (n < 1 || n > 32)
        return 0;
    for (const char *p = channel + 2; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return 0;
    return 1;
}
