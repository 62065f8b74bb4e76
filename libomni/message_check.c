/* The rules of the normalized message (DESIGN.md "The normalized message", message.h limits).
 * Every check names the field that broke a rule and quotes the offending value, because the reason goes
 * back to the connector in a NACK and into its dead-letter file: whoever reads it must be able to find
 * and fix the input without the router's logs.
 * Every pointer argument here is borrowed for the call; nothing is kept or freed. */
#include "message_int.h"
#include "omni/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OMNI_LANG_MAX 35 /* longest language tag accepted (RFC 5646 section 4.4.1 advises 35) */

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:  return "an object";
    case JSON_ARRAY:   return "an array";
    case JSON_STRING:  return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL:    return "a real number";
    case JSON_TRUE:    return "true";
    case JSON_FALSE:   return "false";
    default:           return "null";
    }
}

bool omni__has_control(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7F)
            return true;
        if (s[i] == 0xC2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9F)
            return true;   /* U+0080..U+009F, the C1 controls */
    }
    return false;
}

/* Checks that v is a string of min..max bytes of valid UTF-8. Built messages may hold strings that
 * jansson never checked (message.c stores them unchecked so the error can name the field). */
static int check_string(const json_t *v, const char *field, size_t min, size_t max, omni_msg_error_t *err)
{
    if (!json_is_string(v))
        return omni__msg_fail(err, field, "must be a string, not %s", type_name(v));
    const char *s = json_string_value(v);
    size_t len = json_string_length(v), bad;
    char q[128];
    if (!omni_utf8_valid(s, len, &bad))
        return omni__msg_fail(err, field, "invalid UTF-8 at byte %zu", bad);
    if (len < min)
        return omni__msg_fail(err, field, "must not be empty");
    if (len > max)
        return omni__msg_fail(err, field, "is %zu bytes, over the limit of %zu: %s", len, max,
                              omni__msg_quote(s, len, q, sizeof q));
    return 0;
}

static int check_id(const json_t *v, omni_msg_error_t *err)
{
    if (v == NULL)
        return omni__msg_fail(err, "id", "missing");
    if (check_string(v, "id", 1, OMNI_MSG_ID_MAX, err) != 0)
        return -1;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    char q[128];
    /* The id travels in NACK frames, log lines and Redis keys: a control character would corrupt them. */
    if (omni__has_control(s, len))
        return omni__msg_fail(err, "id", "contains a control character: %s",
                              omni__msg_quote(s, len, q, sizeof q));
    memcpy(err->id, s, len + 1);
    /* The router writes the messages of follow-ups under these ids (docs/routing.md "Follow-ups"): a
     * connector's message taking one would be found a duplicate of the router's, ACKed, and never stored. */
    if (strncmp(s, OMNI_MSG_ID_RESERVED, strlen(OMNI_MSG_ID_RESERVED)) == 0)
        return omni__msg_fail(err, "id", "ids starting \"" OMNI_MSG_ID_RESERVED "\" are the router's own "
                              "(follow-ups): %s", omni__msg_quote(s, len, q, sizeof q));
    return 0;
}

bool omni_msg_id_valid(const char *id, size_t len)
{
    json_t *v = json_stringn_nocheck(id, len); /* the very check parsing applies, on a C string */
    omni_msg_error_t err;
    bool ok = v != NULL && check_id(v, &err) == 0;
    json_decref(v);
    return ok;
}

/* Language tag, BCP 47-ish: subtags of 1..8 letters or digits joined by '-', the first all letters.
 * Full RFC 5646 validation needs the IANA registry; this shape is enough to keep garbage out of the
 * classifier's language rules. */
static bool lang_valid(const char *s, size_t len)
{
    if (len == 0 || len > OMNI_LANG_MAX)
        return false;
    size_t run = 0;
    bool first = true;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? s[i] : '-';
        if (c == '-') {
            if (run == 0 || run > 8)
                return false;
            run = 0;
            first = false;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')) {
            run++;
        } else {
            return false;
        }
    }
    return true;
}

static int check_from(const json_t *from, const omni_limits_t *lim, omni_msg_error_t *err)
{
    if (from == NULL)
        return omni__msg_fail(err, "from", "missing");
    if (!json_is_object(from))
        return omni__msg_fail(err, "from", "must be an object, not %s", type_name(from));
    const char *key;
    json_t *v;
    char field[128];
    json_object_foreach((json_t *)from, key, v) {
        if (strcmp(key, "id") != 0 && strcmp(key, "name") != 0) {
            snprintf(field, sizeof field, "from.%s", key);
            return omni__msg_fail(err, field, "unknown field (from has only id and name)");
        }
    }
    v = json_object_get(from, "id");
    if (v == NULL)
        return omni__msg_fail(err, "from.id", "missing");
    if (check_string(v, "from.id", 1, lim->field_bytes, err) != 0)
        return -1;
    if (omni__has_control(json_string_value(v), json_string_length(v))) {
        char q[128];
        return omni__msg_fail(err, "from.id", "contains a control character: %s",
                              omni__msg_quote(json_string_value(v), json_string_length(v), q, sizeof q));
    }
    v = json_object_get(from, "name");
    if (v != NULL && check_string(v, "from.name", 0, lim->field_bytes, err) != 0)
        return -1;
    return 0;
}

static int check_attachment(const json_t *a, size_t i, const omni_limits_t *lim, omni_msg_error_t *err)
{
    char field[128];
    snprintf(field, sizeof field, "attachments[%zu]", i);
    if (!json_is_object(a))
        return omni__msg_fail(err, field, "must be an object, not %s", type_name(a));
    static const char *const known[] = { "name", "type", "size", "url" };
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)a, key, v) {
        size_t k = 0;
        while (k < 4 && strcmp(key, known[k]) != 0)
            k++;
        if (k == 4) {
            snprintf(field, sizeof field, "attachments[%zu].%s", i, key);
            return omni__msg_fail(err, field, "unknown field (an attachment has name, type, size, url)");
        }
    }
    for (size_t k = 0; k < 4; k++) {
        snprintf(field, sizeof field, "attachments[%zu].%s", i, known[k]);
        v = json_object_get(a, known[k]);
        if (v == NULL) {
            if (k == 3)
                continue;   /* url is optional: an attachment may be described but not fetchable */
            return omni__msg_fail(err, field, "missing");
        }
        if (k == 2) {
            if (!json_is_integer(v))
                return omni__msg_fail(err, field, "must be a non-negative integer, not %s", type_name(v));
            if (json_integer_value(v) < 0)
                return omni__msg_fail(err, field, "must be a non-negative integer, not %lld",
                                      (long long)json_integer_value(v));
        } else if (check_string(v, field, 0, lim->field_bytes, err) != 0) {
            return -1;
        }
    }
    return 0;
}

static int check_attachments(const json_t *v, const omni_limits_t *lim, omni_msg_error_t *err)
{
    if (!json_is_array(v))
        return omni__msg_fail(err, "attachments", "must be an array, not %s", type_name(v));
    size_t n = json_array_size(v);
    if (n > lim->attachments)
        return omni__msg_fail(err, "attachments", "has %zu entries, over the limit of %zu", n,
                              lim->attachments);
    for (size_t i = 0; i < n; i++)
        if (check_attachment(json_array_get(v, i), i, lim, err) != 0)
            return -1;
    return 0;
}

/* Walks meta: nesting depth (meta itself is level 1), string sizes, UTF-8 of keys. path holds the
 * field name so far ("meta.headers[2]"); it is cut, not overflowed, when keys are long. */
/* *reals: counted up by the reals met (check_meta measures them only when they can matter: reals_delta). */
static int check_meta_value(const json_t *v, size_t level, char *path, size_t pathsz,
                            const omni_limits_t *lim, omni_msg_error_t *err, size_t *reals)
{
    size_t plen = strlen(path);
    if (json_is_real(v))
        ++*reals;
    if (json_is_object(v) || json_is_array(v)) {
        if (level > lim->depth)
            return omni__msg_fail(err, path, "nested %zu levels deep, over the limit of %zu", level,
                                  lim->depth);
    }
    if (json_is_string(v))
        return check_string(v, path, 0, lim->field_bytes, err);
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)v, key, child) {
            size_t bad;
            if (!omni_utf8_valid(key, strlen(key), &bad))
                return omni__msg_fail(err, path, "a key has invalid UTF-8 at byte %zu", bad);
            if (plen + 2 <= pathsz) { /* ".key", cut to fit (by hand: printf per key costs more than the rest) */
                size_t klen = strlen(key), fit = pathsz - plen - 2, k = klen < fit ? klen : fit;
                path[plen] = '.';
                memcpy(path + plen + 1, key, k);
                path[plen + 1 + k] = '\0';
            }
            if (check_meta_value(child, level + 1, path, pathsz, lim, err, reals) != 0)
                return -1;
            path[plen] = '\0';
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            snprintf(path + plen, pathsz - plen, "[%zu]", i);
            if (check_meta_value(json_array_get(v, i), level + 1, path, pathsz, lim, err, reals) != 0)
                return -1;
            path[plen] = '\0';
        }
    }
    return 0;
}

int omni__msg_check_meta_size(size_t n, const omni_limits_t *lim, omni_msg_error_t *err)
{
    if (n > lim->meta_bytes)
        return omni__msg_fail(err, "meta", "is %zu bytes as compact JSON, over the limit of %zu", n,
                              lim->meta_bytes);
    return 0;
}

/* The length of a real written as jansson writes it with prec significant digits: "%.*g", ".0" added when
 * there is neither a '.' nor an 'e', and the exponent without '+' and leading zeros (jsonp_dtostr). */
static size_t real_len(double d, int prec, char *buf, size_t bufsz)
{
    int n = snprintf(buf, bufsz, "%.*g", prec, d);
    if (n < 0 || (size_t)n >= bufsz)
        return 0;
    size_t len = (size_t)n;
    const char *e = strchr(buf, 'e');
    if (e == NULL)
        return strchr(buf, '.') != NULL ? len : len + 2;
    const char *start = e + 1, *end = e + 2;
    if (*start == '-')
        start++;
    while (*end == '0')
        end++;
    return len - (size_t)(end - start);
}

/* The length of d written with its shortest round-trip digits, as Python's json (float repr) writes it: the
 * fewest significant digits that read back as d, in fixed notation when 1e-4 <= |d| < 1e16 ("0.1",
 * "100.0": ".0" when there is no fraction), otherwise as "d.ddde-05" (a sign and two exponent digits at least).
 * JSON libraries all write those digits; their notations differ only at the edges (1e+21, 1e21), so one had to
 * be named: docs/protocol.md names Python's, which a connector can then measure meta with exactly. */
static size_t shortest_real_len(double d)
{
    char buf[64];
    /* the fewest digits that read back as d (more digits never stop reading back: a binary search) */
    int lo = 1, hi = 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(buf, sizeof buf, "%.*e", mid - 1, d);
        if (strtod(buf, NULL) == d)
            hi = mid;
        else
            lo = mid + 1;
    }
    snprintf(buf, sizeof buf, "%.*e", lo - 1, d);
    const char *e = strchr(buf, 'e');
    if (e == NULL)
        return 0;
    long exp10 = strtol(e + 1, NULL, 10);
    size_t len = d < 0 || (d == 0 && signbit(d)) ? 1 : 0, digits = (size_t)lo;
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 >= 0)   /* integer part, then ".0" or the rest of the digits after a '.' */
            len += (size_t)exp10 + 1 + (digits <= (size_t)exp10 + 1 ? 2 : 1 + digits - ((size_t)exp10 + 1));
        else              /* "0." and zeros, then the digits */
            len += 2 + (size_t)(-exp10 - 1) + digits;
    } else {
        unsigned long a = (unsigned long)(exp10 < 0 ? -exp10 : exp10);
        len += (digits == 1 ? 1 : digits + 1) + 2 + (a >= 100 ? 3 : 2);
    }
    return len;
}

/* How many reals meta holds (count) and, when delta is not NULL, how many bytes more they take as the compact
 * writer wrote them (jansson's 17 significant digits: 0.10000000000000001) than in their shortest form
 * (shortest_real_len: 0.1); negative for the few a connector writes longer (1e+21 for jansson's 1e21). A
 * connector measures meta with its own JSON library, which writes the shortest digits: counted that way, a
 * meta the connector measured at the limit is not refused for digits it never sent. */
static void reals_delta(const json_t *v, size_t *count, long long *delta)
{
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)v, key, child)
            reals_delta(child, count, delta);
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            reals_delta(json_array_get(v, i), count, delta);
    } else if (json_is_real(v)) {
        ++*count;
        if (delta != NULL) {
            char buf[64];
            double d = json_real_value(v);
            size_t n = real_len(d, 17, buf, sizeof buf); /* as omni__json_compact_size counted it (jansson's) */
            size_t shortest = shortest_real_len(d);
            if (n > 0 && shortest > 0)
                *delta += (long long)n - (long long)shortest;
        }
    }
}

static int check_meta(const json_t *v, const omni_limits_t *lim, omni_msg_error_t *err, bool size)
{
    if (!json_is_object(v))
        return omni__msg_fail(err, "meta", "must be an object, not %s", type_name(v));
    char path[256] = "meta";
    size_t reals = 0;
    if (check_meta_value(v, 1, path, sizeof path, lim, err, &reals) != 0)
        return -1;
    if (!size)
        return 0;
    /* Measured as compact JSON so the limit means the same whatever spacing the connector used; reals as
     * the connector's JSON library writes them (reals_delta). */
    size_t n = omni__json_compact_size(v);
    /* a real takes at most 2 bytes more in the shortest form (1e+21 for 1e21): nearer the limit than that,
     * each is measured (formatting thousands of reals costs more than the rest of the check) */
    /* each real is 3 bytes at the least ("0.0") and one more to part it from the next: more reals than fit in
     * the limit so are over it however they are written, and measuring each would cost the loop ~2 us apiece */
    if (reals > 0 && n + 2 * reals > lim->meta_bytes && 4 * reals <= lim->meta_bytes + 1) {
        long long delta = 0;
        reals = 0;
        reals_delta(v, &reals, &delta);
        n = (size_t)((long long)n - delta);
    }
    return omni__msg_check_meta_size(n, lim, err);
}

static const char *const top_fields[] = { "id", "channel", "from", "received_at", "text", "subject",
                                          "thread", "to", "lang", "attachments", "meta" };

int omni__msg_check(const json_t *root, const omni_limits_t *lim, omni_msg_error_t *err)
{
    return omni__msg_check_rules(root, lim, err, true);
}

int omni__msg_check_rules(const json_t *root, const omni_limits_t *lim, omni_msg_error_t *err, bool meta_size)
{
    if (!json_is_object(root))
        return omni__msg_fail(err, "", "the message must be a JSON object, not %s", type_name(root));
    /* The id first: whatever else is wrong, the router can then NACK the connector by id. */
    if (check_id(json_object_get(root, "id"), err) != 0)
        return -1;
    const char *key;
    json_t *v;
    char q[128];
    json_object_foreach((json_t *)root, key, v) {
        size_t k = 0, n = sizeof top_fields / sizeof top_fields[0];
        while (k < n && strcmp(key, top_fields[k]) != 0)
            k++;
        if (k == n)   /* refused, not ignored: a field we drop would be lost without anyone knowing */
            return omni__msg_fail(err, key, "unknown field");
    }

    v = json_object_get(root, "channel");
    if (v == NULL)
        return omni__msg_fail(err, "channel", "missing");
    if (check_string(v, "channel", 1, 64, err) != 0)
        return -1;
    if (!omni_channel_valid(json_string_value(v)))
        return omni__msg_fail(err, "channel", "not a known channel (email, sms, twitter, facebook, phone "
                              "or x-<name>): %s",
                              omni__msg_quote(json_string_value(v), json_string_length(v), q, sizeof q));

    if (check_from(json_object_get(root, "from"), lim, err) != 0)
        return -1;

    v = json_object_get(root, "received_at");
    if (v == NULL)
        return omni__msg_fail(err, "received_at", "missing");
    if (check_string(v, "received_at", 1, 64, err) != 0)
        return -1;
    int64_t ms;
    if (omni_rfc3339_parse(json_string_value(v), &ms) != 0)
        return omni__msg_fail(err, "received_at", "not an RFC 3339 date-time: %s",
                              omni__msg_quote(json_string_value(v), json_string_length(v), q, sizeof q));

    v = json_object_get(root, "text");
    if (v == NULL)
        return omni__msg_fail(err, "text", "missing");
    if (check_string(v, "text", 0, lim->text_bytes, err) != 0)
        return -1;

    static const char *const optional[] = { "subject", "thread", "to" };
    for (size_t i = 0; i < 3; i++) {
        v = json_object_get(root, optional[i]);
        if (v != NULL && check_string(v, optional[i], 0, lim->field_bytes, err) != 0)
            return -1;
    }
    v = json_object_get(root, "lang");
    if (v != NULL) {
        if (check_string(v, "lang", 0, lim->field_bytes, err) != 0)
            return -1;
        if (!lang_valid(json_string_value(v), json_string_length(v)))
            return omni__msg_fail(err, "lang", "not a language tag (like \"en\" or \"pt-BR\"): %s",
                                  omni__msg_quote(json_string_value(v), json_string_length(v), q, sizeof q));
    }
    v = json_object_get(root, "attachments");
    if (v != NULL && check_attachments(v, lim, err) != 0)
        return -1;
    v = json_object_get(root, "meta");
    if (v != NULL && check_meta(v, lim, err, meta_size) != 0)
        return -1;
    return 0;
}
