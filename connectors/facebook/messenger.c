/* Messenger Platform webhooks (messenger.h). The body is read once with jansson; each messaging event is
 * classified, and what is not a customer's message or postback is counted and dropped. */
#include "messenger.h"
#include "omni/identity.h"
#include "omni/json_mend.h"
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

/* The numeric id v holds (a string of digits, or a JSON number) in its normalized form (trimmed: DESIGN.md's
 * identities are normalized, so " 123" is sent as "123"), written to norm; or NULL with *why. */
static const char *numeric(const json_t *v, char norm[40], const char **why)
{
    char digits[32];
    const char *id = json_string_value(v);
    if (json_is_integer(v)) {
        /* Meta writes ids as strings; one written as a JSON number is the same numeric id */
        snprintf(digits, sizeof digits, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        id = digits;
    }
    if (id == NULL) {
        *why = v == NULL ? "missing" : "not a numeric id";
        return NULL;
    }
    return omni_numeric_id(id, norm, 40, why) == 0 ? norm : NULL;
}

/* The numeric id at ev.key.id ("sender", "recipient"), as numeric() reads it. */
static const char *party(const json_t *ev, const char *key, char norm[40], const char **why)
{
    return numeric(json_object_get(json_object_get(ev, key), "id"), norm, why);
}

/* A sticker's id: message.sticker_id (older Graph API versions), else the attachment payload's (Meta's current
 * reference puts it only there: "payload": {"url", "sticker_id"}); an integer or digits, as Meta wrote it. */
static json_t *sticker_id(const json_t *message)
{
    const json_t *v = json_object_get(message, "sticker_id");
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(message, "attachments"), i, a) {
        if (v != NULL)
            break;
        v = json_object_get(json_object_get(a, "payload"), "sticker_id");
    }
    if (json_is_integer(v))
        return json_integer(json_integer_value(v));
    if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 32 &&
        strspn(json_string_value(v), "0123456789") == json_string_length(v))
        return json_string(json_string_value(v));
    return NULL;
}

/* The last segment of url's path, percent-decoded (Meta's file URLs end in the file's own name,
 * ".../Quarterly%20report.pdf?_nc_cat=..."), into name; false when it has none. Kept as written when decoding
 * would not give UTF-8 text (a bad escape, %00, a control character, a '/'). */
static bool url_name(const char *url, char *name, size_t namesz)
{
    /* the path's last '/', not the query's or fragment's ("l.php?u=https://shop.example/item" is l.php), nor the
     * authority's: "https://www.example.com" has an empty path, and no name of its own */
    size_t path_end = url ? strcspn(url, "?#") : 0, path = 0;
    const char *sep = url ? strstr(url, "://") : NULL;
    if (sep != NULL && (size_t)(sep - url) < path_end)
        path = (size_t)(sep - url) + 3 + strcspn(sep + 3, "/?#");
    const char *slash = NULL;
    for (size_t i = path; i < path_end; i++)
        if (url[i] == '/')
            slash = url + i;
    if (slash == NULL || slash[1] == '\0' || slash[1] == '?' || slash[1] == '#')
        return false;
    const char *seg = slash + 1;
    size_t n = strcspn(seg, "?#");
    if (n >= namesz)
        n = namesz - 1;
    while (n > 0 && !omni_utf8_valid(seg, n, NULL))
        n--; /* a long name cut inside a character (raw UTF-8 in the URL) ends before it */
    if (n == 0)
        return false;
    snprintf(name, namesz, "%.*s", (int)n, seg);
    char decoded[128];
    size_t w = 0;
    for (const char *p = name; *p && w + 1 < sizeof decoded; p++) {
        if (*p != '%') {
            decoded[w++] = *p;
        } else if (isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char hex[3] = { p[1], p[2], '\0' };
            decoded[w++] = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            return true; /* a bad escape: the name as written */
        }
    }
    decoded[w] = '\0';
    for (size_t i = 0; i < w; i++)
        if ((unsigned char)decoded[i] < 0x20 || decoded[i] == 0x7f || decoded[i] == '/')
            return true;
    if (omni_utf8_valid(decoded, w, NULL))
        snprintf(name, namesz, "%s", decoded);
    return true;
}

/* v as RFC 5870 writes a coordinate: decimal, no exponent, and the shortest form that reads back as v (every
 * digit Meta sent, 37.483872693672 as it came, not rounded to metres away). Returns buf (40 bytes). */
static const char *geo_number(double v, char buf[40])
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, 40, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    char *e = strchr(buf, 'e');
    if (e != NULL) { /* |v| < 1e-4, or a round 100 written 1e+02: the same digits, fixed */
        int digits = (int)(e - buf) - (buf[0] == '-') - (strchr(buf, '.') != NULL);
        int places = digits - 1 - atoi(e + 1);
        snprintf(buf, 40, "%.*f", places < 0 ? 0 : places > 30 ? 30 : places, v);
    }
    return buf;
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
        const json_t *payload = json_object_get(a, "payload");
        const char *type = str(a, "type"), *url = str(payload, "url");
        if (type == NULL)
            type = "unknown";
        /* A location has no URL, only where the customer is: that is its content, written as a geo URI
         * (RFC 5870) rather than dropped. */
        const json_t *at = json_object_get(payload, "coordinates");
        char geo[96];
        const json_t *latv = json_object_get(at, "lat"), *lonv = json_object_get(at, "long");
        double lat = json_number_value(latv), lon = json_number_value(lonv);
        if (url == NULL && json_is_number(latv) && json_is_number(lonv) && lat >= -90 && lat <= 90 && lon >= -180 &&
            lon <= 180) {
            char la[40], lo[40];
            snprintf(geo, sizeof geo, "geo:%s,%s", geo_number(lat, la), geo_number(lon, lo));
            url = geo;
        }
        if (url == NULL)
            url = str(a, "url"); /* older versions: a fallback's link beside its title, with a null payload */
        char name[128];
        if (!url_name(url, name, sizeof name))
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
        json_t *sticker = sticker_id(message);
        if (sticker != NULL)
            omni_msg_set_meta(msg, "sticker_id", sticker);
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

int fb_parse(const char *body, size_t len, fb_batch_t *out, char *why, size_t whysz)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    /* Valid JSON that jansson would refuse as a whole, for one odd event: a string holding U+0000 (loaded, and its
     * event skipped below) or a lone surrogate escape (read as U+FFFD, the replacement character). */
    char *mended = omni_json_mend_surrogates(body, len);
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
            /* the page's id written as the senders' are (blanks dropped, a JSON number read as its digits), so
             * that the page's own messages are known by it; an id that is not numeric is kept as Meta wrote it */
            char page_norm[40];
            const char *page_why = NULL, *page_id = numeric(json_object_get(entry, "id"), page_norm, &page_why);
            if (page_id == NULL)
                page_id = str(entry, "id");
            size_t m;
            json_t *ev;
            json_array_foreach(events, m, ev) {
                if (!json_is_object(ev))
                    skip(out, e, m, "not an object");
                else if (omni_json_holds_nul(ev))
                    skip(out, e, m, "a string holds U+0000 (NUL), which no message field may carry");
                else
                    event(out, ev, e, m, page_id);
            }
        }
    json_decref(doc);
    return rc;
}
