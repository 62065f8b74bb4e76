/* Twilio's inbound webhooks (twilio.h): form decoding, the signature Twilio computes, and the message. */
#include "twilio.h"
#include "omni/identity.h"
#include "omni/log.h"
#include "omni/secret.h"
#include "omni/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tw_params_add(tw_params_t *p, const char *name, const char *value)
{
    p->v = omni_realloc(p->v, (p->n + 1) * sizeof *p->v);
    p->v[p->n].name = omni_strdup(name);
    p->v[p->n].value = omni_strdup(value);
    p->n++;
}

void tw_params_free(tw_params_t *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].name);
        free(p->v[i].value);
    }
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

const char *tw_param(const tw_params_t *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i].name, name) == 0)
            return p->v[i].value;
    return NULL;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes s[0..n) into a new string. Returns NULL with why on a bad escape or a NUL byte. */
static char *form_decode(const char *s, size_t n, size_t index, const char *part, char *why, size_t whysz)
{
    char *out = omni_malloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%') {
            int hi = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                snprintf(why, whysz, "parameter %zu: %s: %s \"%.*s\"", index + 1, part,
                         hi == 0 && lo == 0 ? "a NUL byte" : "bad escape", (int)(n - i < 3 ? n - i : 3), s + i);
                free(out);
                return NULL;
            }
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '\0') {
            snprintf(why, whysz, "parameter %zu: %s: a NUL byte", index + 1, part);
            free(out);
            return NULL;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

int tw_form_parse(const char *body, size_t len, tw_params_t *out, char *why, size_t whysz)
{
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *seg_end = amp ? amp : end;
        if (seg_end > p) {
            if (out->n >= TW_PARAMS_MAX) {
                snprintf(why, whysz, "more than %d parameters", TW_PARAMS_MAX);
                return -1;
            }
            const char *eq = memchr(p, '=', (size_t)(seg_end - p));
            const char *name_end = eq ? eq : seg_end;
            char *name = form_decode(p, (size_t)(name_end - p), out->n, "name", why, whysz);
            char *value = name == NULL ? NULL
                          : form_decode(eq ? eq + 1 : seg_end, eq ? (size_t)(seg_end - eq - 1) : 0, out->n,
                                        "value", why, whysz);
            if (value == NULL) {
                free(name);
                return -1;
            }
            out->v = omni_realloc(out->v, (out->n + 1) * sizeof *out->v);
            out->v[out->n].name = name;
            out->v[out->n].value = value;
            out->n++;
        }
        p = seg_end + 1;
    }
    return 0;
}

char *tw_signed_url(const char *public_url, const char *path, const char *query)
{
    size_t n = strlen(public_url);
    while (n > 0 && public_url[n - 1] == '/')
        n--;
    if (path == NULL || strcmp(path, "/") == 0)
        path = "";
    return omni_asprintf("%.*s%s%s%s", (int)n, public_url, path, query && *query ? "?" : "", query ? query : "");
}

static int by_name_value(const void *a, const void *b)
{
    const tw_param_t *x = *(tw_param_t *const *)a, *y = *(tw_param_t *const *)b;
    int c = strcmp(x->name, y->name); /* strcmp compares unsigned bytes: UTF-8 byte order is code point order */
    return c != 0 ? c : strcmp(x->value, y->value);
}

void tw_signature(const char *token, size_t toklen, const char *url, const tw_params_t *params, char out[29])
{
    size_t n = params ? params->n : 0, total = strlen(url);
    tw_param_t **sorted = omni_malloc((n ? n : 1) * sizeof *sorted);
    for (size_t i = 0; i < n; i++) {
        sorted[i] = &params->v[i];
        total += strlen(params->v[i].name) + strlen(params->v[i].value);
    }
    qsort(sorted, n, sizeof *sorted, by_name_value);
    char *s = omni_malloc(total + 1), *o = s;
    o = stpcpy(o, url);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && by_name_value(&sorted[i - 1], &sorted[i]) == 0)
            continue; /* Twilio's validators sign each distinct value of a name once */
        o = stpcpy(o, sorted[i]->name);
        o = stpcpy(o, sorted[i]->value);
    }
    unsigned char mac[20];
    omni_hmac_sha1(token, toklen, s, (size_t)(o - s), mac);
    omni_base64_encode(mac, sizeof mac, out);
    free(s);
    free(sorted);
}

/* url with its port removed (has_port) or the scheme's default port added; NULL when url has no host. */
static char *other_port_form(const char *url)
{
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return NULL;
    const char *host = sep + 3, *host_end = host + strcspn(host, "/?#");
    const char *bracket = memchr(host, ']', (size_t)(host_end - host));
    const char *from = bracket ? bracket : host;
    const char *colon = memchr(from, ':', (size_t)(host_end - from));
    if (colon != NULL)
        return omni_asprintf("%.*s%s", (int)(colon - url), url, host_end);
    bool https = (size_t)(sep - url) == 5 && strncasecmp(url, "https", 5) == 0;
    return omni_asprintf("%.*s:%s%s", (int)(host_end - url), url, https ? "443" : "80", host_end);
}

bool tw_signature_valid(const char *token, size_t toklen, const char *url, const tw_params_t *params,
                        const char *signature)
{
    if (signature == NULL)
        return false;
    char mine[29];
    tw_signature(token, toklen, url, params, mine);
    bool ok = omni_ct_equal(mine, strlen(mine), signature, strlen(signature));
    char *other = other_port_form(url);
    if (other != NULL) {
        tw_signature(token, toklen, other, params, mine);
        ok = omni_ct_equal(mine, strlen(mine), signature, strlen(signature)) || ok;
        free(other);
    }
    return ok;
}

bool tw_body_hash_valid(const char *hex_sha256, const char *body, size_t len)
{
    unsigned char sum[32];
    char hex[65], given[65];
    omni_sha256(body, len, sum);
    omni_hex(sum, sizeof sum, hex);
    size_t n = strlen(hex_sha256);
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        given[i] = (char)tolower((unsigned char)hex_sha256[i]);
    given[n] = '\0';
    return omni_ct_equal(hex, 64, given, 64);
}

bool tw_query_value(const char *query, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = seg - nl - 1;
            if (vl >= outsz)
                return false;
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return true;
        }
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

int tw_json_params(const char *body, size_t len, tw_params_t *out, char *why, size_t whysz)
{
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        snprintf(why, whysz, "JSON body: %s at line %d column %d", jerr.text, jerr.line, jerr.column);
        return -1;
    }
    int rc = 0;
    if (!json_is_object(doc)) {
        snprintf(why, whysz, "JSON body: not an object");
        rc = -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        if (rc != 0)
            break;
        if (out->n >= TW_PARAMS_MAX) {
            snprintf(why, whysz, "JSON body: more than %d fields", TW_PARAMS_MAX);
            rc = -1;
        } else if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v)) {
            tw_params_add(out, key, json_string_value(v));
        } else if (json_is_number(v) || json_is_boolean(v) || json_is_null(v)) {
            char *text = json_is_null(v) ? omni_strdup("") : json_dumps(v, JSON_ENCODE_ANY);
            tw_params_add(out, key, text);
            free(text);
        } else {
            snprintf(why, whysz, "JSON body: field \"%.64s\": %s", key,
                     json_is_string(v) ? "holds a NUL character" : "nested objects and arrays are not taken");
            rc = -1;
        }
    }
    json_decref(doc);
    return rc;
}

static int malformed(char *why, size_t whysz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int malformed(char *why, size_t whysz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whysz, fmt, ap);
    va_end(ap);
    return -1;
}

/* A parameter the message carries as text: UTF-8, or the request is malformed. */
static int text_param(const tw_params_t *p, const char *name, const char **out, char *why, size_t whysz)
{
    *out = tw_param(p, name);
    size_t bad;
    if (*out != NULL && !omni_utf8_valid(*out, strlen(*out), &bad))
        return malformed(why, whysz, "%s: not UTF-8 at byte %zu", name, bad);
    return 0;
}

/* Twilio's facts about the message, kept in meta under these names (numbers as numbers). */
static const struct { const char *param, *meta; bool number; } META[] = {
    { "AccountSid", "account_sid", false },       { "MessagingServiceSid", "messaging_service_sid", false },
    { "NumSegments", "num_segments", true },      { "NumMedia", "num_media", true },
    { "SmsStatus", "sms_status", false },         { "ApiVersion", "api_version", false },
    { "FromCountry", "from_country", false },     { "FromState", "from_state", false },
    { "FromCity", "from_city", false },           { "FromZip", "from_zip", false },
    { "ToCountry", "to_country", false },         { "ProfileName", "profile_name", false },
};

/* The last segment of url's path, without query or fragment ("ME..." of ".../Media/ME...?x=1", a trailing
 * "/" passed over): its length, *seg where it starts; 0 when the path has none (the host is not one). */
static size_t last_segment(const char *url, const char **seg)
{
    size_t end = strcspn(url, "?#");
    while (end > 0 && url[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && url[start - 1] != '/')
        start--;
    if (start == 0 || (start >= 2 && url[start - 2] == '/')) /* no slash at all, or "//host" */
        return 0;
    *seg = url + start;
    return end - start;
}

tw_kind_t tw_message(const tw_params_t *p, const char *now, omni_msg_t **out, char *why, size_t whysz)
{
    *out = NULL;
    if (tw_param(p, "MessageStatus") != NULL)
        return TW_STATUS;
    const char *sid = tw_param(p, "MessageSid"), *from = tw_param(p, "From"), *body, *to;
    if (sid == NULL)
        return malformed(why, whysz, "MessageSid: missing (neither a message nor a status callback)"), TW_MALFORMED;
    size_t sl = strlen(sid);
    if (sl < 2 || sl > 64 || strspn(sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != sl)
        return malformed(why, whysz, "MessageSid: \"%.70s\" is not 2..64 letters and digits", sid), TW_MALFORMED;
    if (from == NULL)
        return malformed(why, whysz, "From: missing (message %s)", sid), TW_MALFORMED;
    char e164[32];
    const char *rule = NULL;
    if (from[0] != '+' || omni_phone_e164(from, NULL, e164, sizeof e164, &rule) != 0)
        return malformed(why, whysz, "From: \"%.40s\" is not an E.164 number (%s) (message %s)", from,
                         rule ? rule : "no leading +", sid), TW_MALFORMED;
    if (text_param(p, "Body", &body, why, whysz) != 0 || text_param(p, "To", &to, why, whysz) != 0)
        return TW_MALFORMED;
    long nmedia = 0;
    const char *nm = tw_param(p, "NumMedia");
    if (nm != NULL) {
        char *end;
        errno = 0;
        nmedia = strtol(nm, &end, 10);
        /* digits only, as Twilio writes a count: strtol alone would take " 1" and "+1" */
        if (*nm == '\0' || strspn(nm, "0123456789") != strlen(nm) || *end != '\0' || errno != 0 || nmedia < 0 ||
            nmedia > TW_MEDIA_MAX)
            return malformed(why, whysz, "NumMedia: \"%.20s\" is not 0..%d (message %s)", nm, TW_MEDIA_MAX, sid),
                   TW_MALFORMED;
    }
    for (long i = 0; i < nmedia; i++) {
        char k[48];
        const char *v;
        snprintf(k, sizeof k, "MediaUrl%ld", i);
        const char *u = tw_param(p, k);
        if (u == NULL || u[0] == '\0') /* an attachment with no URL is no attachment: nothing to fetch */
            return malformed(why, whysz, "%s: %s though NumMedia is %ld (message %s)", k, u == NULL ? "missing" : "empty",
                             nmedia, sid), TW_MALFORMED;
        if (text_param(p, k, &v, why, whysz) != 0)
            return TW_MALFORMED;
        snprintf(k, sizeof k, "MediaContentType%ld", i);
        if (text_param(p, k, &v, why, whysz) != 0)
            return TW_MALFORMED;
    }
    char id[80];
    snprintf(id, sizeof id, "sms:%s", sid);
    omni_msg_t *msg = omni_msg_new(id, "sms", e164, now, body ? body : "");
    if (to != NULL && to[0] != '\0') /* an empty To names no address of ours: left out, as a missing one */
        omni_msg_set(msg, "to", to);
    for (long i = 0; i < nmedia; i++) {
        char k[48], t[48];
        snprintf(k, sizeof k, "MediaUrl%ld", i);
        snprintf(t, sizeof t, "MediaContentType%ld", i);
        const char *url = tw_param(p, k), *type = tw_param(p, t), *seg = NULL;
        size_t n = last_segment(url, &seg);
        char name[300];
        snprintf(name, sizeof name, "%.*s", n ? (int)n : (int)strlen(k), n ? seg : k);
        /* Twilio does not say a media's size; 0 means unknown (the URL serves it). */
        omni_msg_add_attachment(msg, name, type && *type ? type : "application/octet-stream", 0, url);
    }
    omni_limits_t lim;
    omni_limits_default(&lim);
    size_t meta_sum = 0;
    for (size_t i = 0; i < sizeof META / sizeof META[0]; i++) {
        const char *v = tw_param(p, META[i].param);
        size_t bad;
        if (v == NULL)
            continue;
        if (!omni_utf8_valid(v, strlen(v), &bad)) { /* not text: left out of meta, the message still taken */
            omni_warn("message %s: %s is not UTF-8 (byte %zu): left out of meta.%s", sid, META[i].param, bad,
                      META[i].meta);
            continue;
        }
        if (strlen(v) > lim.field_bytes) { /* a fact about the message, not the message: it alone is left out */
            omni_warn("message %s: %s is %zu bytes, over the router's limit of %zu: left out of meta.%s", sid,
                      META[i].param, strlen(v), lim.field_bytes, META[i].meta);
            continue;
        }
        meta_sum += strlen(META[i].meta) + strlen(v) + 8;
        /* A number when it is digits that fit in 64 bits; else the text as Twilio sent it (strtoll alone
         * would read " 1" as 1 and clamp 20 digits to INT64_MAX, a value nobody sent). */
        long long num = 0;
        bool digits = META[i].number && *v && strspn(v, "0123456789") == strlen(v);
        if (digits) {
            errno = 0;
            num = strtoll(v, NULL, 10);
            digits = errno == 0;
        }
        omni_msg_set_meta(msg, META[i].meta, digits ? json_integer(num) : json_string(v));
    }
    omni_msg_set_meta(msg, "message_sid", json_string(sid));
    /* meta over its limit (16 KiB as compact JSON) from the parameters above: their longest are left out,
     * each with a warning, rather than the message refused. Measured only when it could be (escaping at
     * most multiplies a string by 6, a control character written \u00XX). */
    json_t *meta = json_object_get(msg->json, "meta");
    for (size_t size; meta_sum * 6 > lim.meta_bytes && (size = json_dumpb(meta, NULL, 0, JSON_COMPACT)) > lim.meta_bytes;) {
        const char *longest = NULL, *key;
        size_t longest_len = 0;
        json_t *v;
        json_object_foreach(meta, key, v) {
            if (json_is_string(v) && json_string_length(v) > longest_len && strcmp(key, "message_sid") != 0) {
                longest = key;
                longest_len = json_string_length(v);
            }
        }
        if (longest == NULL)
            break; /* nothing left to drop: the check below names the field */
        omni_warn("message %s: meta is %zu bytes, over the router's limit of %zu: meta.%s (%zu bytes) left out", sid,
                  size, lim.meta_bytes, longest, longest_len);
        json_object_del(meta, longest);
    }
    /* Checked here with the router's default limits, so that what the router would refuse (a MediaUrl over
     * 4 KiB) is a 400 Twilio logs, not a 200 for a message dropped later. */
    omni_msg_error_t err;
    if (omni_msg_validate(msg, &lim, &err) != 0) {
        char line[400];
        malformed(why, whysz, "%s", omni_msg_error_str(&err, line, sizeof line));
        omni_msg_destroy(&msg);
        return TW_MALFORMED;
    }
    *out = msg;
    return TW_MESSAGE;
}
