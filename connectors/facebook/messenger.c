/* Messenger Platform webhooks (messenger.h). The body is read once with jansson; each messaging event is
 * classified, and what is not a customer's message or postback is counted and dropped. */
#include "messenger.h"
#include "omni/identity.h"
#include "omni/secret.h"
#include "omni/util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool fb_signature_valid(const char *secret, size_t secretlen, const char *body, size_t len, const char *header)
{
    if (header == NULL || strncmp(header, "sha256=", 7) != 0)
        return false;
    unsigned char mac[32];
    char mine[65], given[65];
    omni_hmac_sha256(secret, secretlen, body, len, mac);
    omni_hex(mac, sizeof mac, mine);
    size_t n = strlen(header + 7);
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        given[i] = (char)tolower((unsigned char)header[7 + i]);
    given[n] = '\0';
    return omni_ct_equal(mine, 64, given, 64);
}

void fb_batch_free(fb_batch_t *b)
{
    for (size_t i = 0; i < b->n_msgs; i++)
        omni_msg_destroy(&b->msgs[i]);
    for (size_t i = 0; i < b->n_skipped; i++)
        free(b->skipped[i]);
    free(b->msgs);
    free(b->skipped);
    memset(b, 0, sizeof *b);
}

static void skip(fb_batch_t *b, size_t e, size_t m, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void skip(fb_batch_t *b, size_t e, size_t m, const char *fmt, ...)
{
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    b->skipped = omni_realloc(b->skipped, (b->n_skipped + 1) * sizeof *b->skipped);
    b->skipped[b->n_skipped++] = omni_asprintf("entry[%zu].messaging[%zu]: %s", e, m, why);
}

/* A string member, or NULL when absent or not a string. */
static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The numeric id at o.key.id ("sender", "recipient") in its normalized form (trimmed: DESIGN.md's identities
 * are normalized, so " 123" is sent as "123"), written to norm; or NULL with *why. */
static const char *party(const json_t *ev, const char *key, char norm[40], const char **why)
{
    const char *id = str(json_object_get(ev, key), "id");
    if (id == NULL) {
        *why = "missing";
        return NULL;
    }
    return omni_numeric_id(id, norm, 40, why) == 0 ? norm : NULL;
}

/* Attachments past the router's count limit are left out and their number said (meta.attachments_total), as
 * omni-email does: the customer's text still reaches someone, and nothing is left out without a word. */
static void add_attachments(omni_msg_t *msg, const json_t *list)
{
    omni_limits_t lim;
    omni_limits_default(&lim);
    size_t i;
    json_t *a;
    if (json_array_size(list) > lim.attachments)
        omni_msg_set_meta(msg, "attachments_total", json_integer((json_int_t)json_array_size(list)));
    json_array_foreach(list, i, a) {
        if (i >= lim.attachments)
            break;
        const char *type = str(a, "type"), *url = str(json_object_get(a, "payload"), "url");
        if (type == NULL)
            type = "unknown";
        char name[128];
        const char *slash = url ? strrchr(url, '/') : NULL;
        if (slash != NULL && slash[1] != '\0' && slash[1] != '?')
            snprintf(name, sizeof name, "%.*s", (int)strcspn(slash + 1, "?#"), slash + 1);
        else
            snprintf(name, sizeof name, "%s-%zu", type, i + 1);
        /* Messenger says the kind (image, video, audio, file, location, fallback), not a MIME type or size. */
        omni_msg_add_attachment(msg, name, type, 0, url);
    }
}

#define FB_TIMESTAMP_END 253402300800000LL /* 10000-01-01T00:00:00Z in ms */

static omni_msg_t *new_msg(const char *id, const char *sender, const char *page, const json_t *ev, const char *text)
{
    char when[40];
    json_t *ts = json_object_get(ev, "timestamp");
    /* Milliseconds since 1970 before year 10000 (what RFC 3339 can write); anything else is no date (seconds
     * sent as microseconds...) and reads as none, rather than costing the customer's message. */
    int64_t ms = json_is_integer(ts) && json_integer_value(ts) > 0 && json_integer_value(ts) < FB_TIMESTAMP_END
                 ? (int64_t)json_integer_value(ts) : omni_wall_ms();
    omni_msg_t *msg = omni_msg_new(id, "facebook", sender, omni_rfc3339(ms, when, sizeof when), text ? text : "");
    if (page != NULL)
        omni_msg_set(msg, "to", page);
    return msg;
}

static void event(fb_batch_t *b, const json_t *ev, size_t e, size_t m, const char *page_id)
{
    const json_t *message = json_object_get(ev, "message"), *postback = json_object_get(ev, "postback");
    if (json_is_object(message) && json_is_true(json_object_get(message, "is_echo"))) {
        b->echoes++;
        return;
    }
    if (json_object_get(ev, "delivery") != NULL) {
        b->deliveries++;
        return;
    }
    if (json_object_get(ev, "read") != NULL) {
        b->reads++;
        return;
    }
    if (!json_is_object(message) && !json_is_object(postback)) {
        b->other++; /* reactions, optins, referrals, handovers: not a customer's message */
        return;
    }
    char sender_id[40], recipient_id[40];
    const char *why = NULL, *sender = party(ev, "sender", sender_id, &why);
    if (sender == NULL) {
        skip(b, e, m, "sender.id: %s", why);
        return;
    }
    if (page_id != NULL && strcmp(sender, page_id) == 0) {
        b->echoes++; /* the page's own message without is_echo: the page is not its own customer */
        return;
    }
    const char *recipient = party(ev, "recipient", recipient_id, &why);
    const char *page = recipient ? recipient : page_id;
    const char *mid = str(json_is_object(message) ? message : postback, "mid");
    char id[OMNI_MSG_ID_MAX + 32];
    if (mid != NULL) {
        snprintf(id, sizeof id, "facebook:%s", mid);
    } else if (json_is_object(message)) {
        skip(b, e, m, "message.mid: missing");
        return;
    } else {
        /* A postback without a mid (older API versions): the sender and the moment name it. */
        json_t *ts = json_object_get(ev, "timestamp");
        snprintf(id, sizeof id, "facebook:postback:%s:%lld", sender,
                 json_is_integer(ts) ? (long long)json_integer_value(ts) : 0LL);
    }
    if (!omni_msg_id_valid(id, strlen(id))) {
        skip(b, e, m, "%s: \"%.40s\" does not make a valid message id", mid ? "message.mid" : "timestamp", mid ? mid : "");
        return;
    }
    omni_msg_t *msg;
    if (json_is_object(message)) {
        msg = new_msg(id, sender, page, ev, str(message, "text"));
        add_attachments(msg, json_object_get(message, "attachments"));
        const char *qr = str(json_object_get(message, "quick_reply"), "payload");
        if (qr != NULL)
            omni_msg_set_meta(msg, "quick_reply", json_string(qr));
        const char *reply_to = str(json_object_get(message, "reply_to"), "mid");
        if (reply_to != NULL)
            omni_msg_set_meta(msg, "reply_to", json_string(reply_to));
        json_t *sticker = json_object_get(message, "sticker_id");
        if (json_is_integer(sticker))
            omni_msg_set_meta(msg, "sticker_id", json_integer(json_integer_value(sticker)));
        if (mid != NULL)
            omni_msg_set_meta(msg, "mid", json_string(mid));
    } else {
        msg = new_msg(id, sender, page, ev, str(postback, "title"));
        json_t *pb = json_object();
        const char *title = str(postback, "title"), *payload = str(postback, "payload");
        if (title != NULL)
            json_object_set_new(pb, "title", json_string(title));
        if (payload != NULL)
            json_object_set_new(pb, "payload", json_string(payload));
        json_t *ref = json_object_get(postback, "referral");
        if (json_is_object(ref))
            json_object_set(pb, "referral", ref);
        omni_msg_set_meta(msg, "postback", pb);
    }
    if (page_id != NULL)
        omni_msg_set_meta(msg, "page_id", json_string(page_id));
    /* What the router would refuse (a text over 64 KiB, a payload over 4 KiB) is skipped here, with why. */
    omni_limits_t lim;
    omni_msg_error_t err;
    char line[400];
    omni_limits_default(&lim);
    if (omni_msg_validate(msg, &lim, &err) != 0) {
        skip(b, e, m, "%s", omni_msg_error_str(&err, line, sizeof line));
        omni_msg_destroy(&msg);
        return;
    }
    b->msgs = omni_realloc(b->msgs, (b->n_msgs + 1) * sizeof *b->msgs);
    b->msgs[b->n_msgs++] = msg;
}

/* True when a string anywhere in v holds U+0000, which no message field may carry (the C strings a message is
 * made of would end there: text cut short without a word). */
static bool holds_nul(const json_t *v)
{
    size_t i;
    const char *k;
    json_t *x;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return strlen(json_string_value(v)) != json_string_length(v);
    case JSON_ARRAY:
        json_array_foreach((json_t *)v, i, x) if (holds_nul(x)) return true;
        return false;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, k, x) if (holds_nul(x)) return true;
        return false;
    default:
        return false;
    }
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A copy of body whose lone UTF-16 surrogate escapes (half of a pair, which is no character: jansson refuses the
 * whole document for one) are \ufffd, the same six bytes; NULL when there is none. Escapes are found only
 * inside strings, and "\\u..." is a backslash, not an escape. */
static char *mend_surrogates(const char *body, size_t len)
{
    char *copy = NULL;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (body[i] == '"') {
            in_string = !in_string;
        } else if (in_string && body[i] == '\\' && i + 1 < len) {
            if (body[i + 1] != 'u' || i + 6 > len) {
                i++; /* \" \\ \n ...: two bytes */
                continue;
            }
            int u = hex4(body + i + 2);
            bool pair = u >= 0xD800 && u <= 0xDBFF && i + 12 <= len && body[i + 6] == '\\' && body[i + 7] == 'u' &&
                        hex4(body + i + 8) >= 0xDC00 && hex4(body + i + 8) <= 0xDFFF;
            if (pair) {
                i += 11;
            } else if (u >= 0xD800 && u <= 0xDFFF) {
                if (copy == NULL) {
                    copy = omni_malloc(len + 1);
                    memcpy(copy, body, len);
                    copy[len] = '\0';
                }
                memcpy(copy + i, "\\ufffd", 6);
                i += 5;
            } else {
                i += 5;
            }
        }
    }
    return copy;
}

int fb_parse(const char *body, size_t len, fb_batch_t *out, char *why, size_t whysz)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    /* Valid JSON that jansson would refuse as a whole, for one odd event: a string holding U+0000 (loaded, and its
     * event skipped below) or a lone surrogate escape (read as U+FFFD, the replacement character). */
    char *mended = mend_surrogates(body, len);
    json_t *doc = json_loadb(mended ? mended : body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    free(mended);
    if (doc == NULL) {
        snprintf(why, whysz, "not JSON: %s at line %d column %d", jerr.text, jerr.line, jerr.column);
        return -1;
    }
    int rc = 0;
    const char *object = str(doc, "object");
    json_t *entries = json_object_get(doc, "entry");
    if (!json_is_object(doc)) {
        snprintf(why, whysz, "the body is not a JSON object");
        rc = -1;
    } else if (object == NULL) {
        snprintf(why, whysz, "\"object\": missing");
        rc = -1;
    } else if (strcmp(object, "page") != 0) {
        rc = 1;
    } else if (!json_is_array(entries)) {
        snprintf(why, whysz, "\"entry\": %s", entries ? "not an array" : "missing");
        rc = -1;
    }
    size_t total = 0, e;
    json_t *entry;
    if (rc == 0)
        json_array_foreach(entries, e, entry) {
            json_t *events = json_object_get(entry, "messaging");
            if (!json_is_object(entry)) {
                snprintf(why, whysz, "entry[%zu]: not an object", e);
                rc = -1;
                break;
            }
            if (events == NULL) {
                out->other++; /* "changes", "standby": not messaging */
                continue;
            }
            if (!json_is_array(events)) {
                snprintf(why, whysz, "entry[%zu].messaging: not an array", e);
                rc = -1;
                break;
            }
            total += json_array_size(events);
            if (total > FB_EVENTS_MAX) {
                snprintf(why, whysz, "more than %d messaging events", FB_EVENTS_MAX);
                rc = -1;
                break;
            }
            const char *page_id = str(entry, "id");
            size_t m;
            json_t *ev;
            json_array_foreach(events, m, ev) {
                if (!json_is_object(ev))
                    skip(out, e, m, "not an object");
                else if (holds_nul(ev))
                    skip(out, e, m, "a string holds U+0000 (NUL), which no message field may carry");
                else
                    event(out, ev, e, m, page_id);
            }
        }
    json_decref(doc);
    return rc;
}
