/* Phone numbers to E.164, so that one person texting and calling from one number is one identity, however
 * each source happened to write it. The reading itself is libphonenumber's (phone_shim.cc); this file
 * takes what people put around a number (tel:, separators, extensions) off first, so that the errors
 * name what is wrong in words.
 * Pointer arguments are borrowed for the call; *why is pointed at a static string, never allocated. */
#include "identity_int.h"
#include "omni/identity.h"
#include "phone_shim.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DIGITS_MAX 24 /* more than E.164's 15 plus the longest prefixes people write before them */
#define CACHE_SLOTS 8192 /* per thread, 56 bytes each (448 KiB): the callers of a busy day's log */

/* Reads the digits of raw into digits (NUL-terminated), dropping separators, a "tel:" scheme and any
 * extension or URI parameters. *plus says whether it started with '+'. Returns 0 or -1 with *why. */
static int scan(const char *raw, char *digits, bool *plus, const char **why)
{
    size_t len = strlen(raw), n = 0;
    const char *p = omni__trim(raw, &len), *end = p + len;
    *plus = false;
    if (len >= 4 && strncasecmp(p, "tel:", 4) == 0)
        p += 4;
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= '0' && c <= '9') {
            if (n == DIGITS_MAX) {
                *why = "too many digits";
                return -1;
            }
            digits[n++] = (char)c;
        } else if (c == '+') {
            if (n > 0 || *plus) {
                *why = "'+' in the middle of the number";
                return -1;
            }
            *plus = true;
        } else if (c == ' ' || c == '\t' || c == '.' || c == '-' || c == '(' || c == ')' || c == '/') {
            continue;
        } else if (c == 0xC2 && p + 1 < end && (unsigned char)p[1] == 0xA0) {
            p++;   /* no-break space, common in numbers pasted from web pages */
        } else if (c == ';' || c == '#' || c == ',') {
            break; /* tel: URI parameters (";ext=", ";phone-context="), extension or pause dialling */
        } else if (n > 0 && (c == 'x' || c == 'X' || strncasecmp(p, "ext", 3) == 0)) {
            break; /* "555 0100 x123", "ext. 12": an extension reaches a desk, not a customer */
        } else {
            *why = "has a character that is not a digit or a separator";
            return -1;
        }
    }
    digits[n] = '\0';
    if (n == 0) {
        *why = "no digits";
        return -1;
    }
    return 0;
}

/* libphonenumber's answers, remembered. It reads a number with dozens of regular expressions (~30 to 60 us,
 * more for +1, whose number ranges belong to 25 regions), more than all the rest of a message costs the
 * router, while the same callers come back all day: a repeat caller, a customer texting several messages,
 * the router reading again what a connector sent. The answer depends only on the digits and the region,
 * so it never goes stale. Four ways per set, most recent first: a direct-mapped table of the same size
 * read ~40 % more numbers again (measured on the 4,000 callers of the bench's call log, whose numbers
 * evicted each other), and a full set drops its least recent. One cache per thread, so omni_phone_e164
 * stays safe to call from any thread. */
#define CACHE_WAYS 4
typedef struct cache_entry {
    char key[DIGITS_MAX + 6];   /* "<region>:<number>", "" when unused */
    char e164[18];              /* "+" and at most 15 digits; "" with why for a refusal */
    const char *why;
} cache_entry_t;
static _Thread_local cache_entry_t cache[CACHE_SLOTS / CACHE_WAYS][CACHE_WAYS];

/* The entry for key, moved to the front of its set; on a miss the set's last entry, emptied and moved to
 * the front (the caller fills it). */
static cache_entry_t *cache_slot(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    cache_entry_t *set = cache[h % (CACHE_SLOTS / CACHE_WAYS)];
    int w = 0;
    while (w < CACHE_WAYS - 1 && strcmp(set[w].key, key) != 0)
        w++;
    if (w > 0) {
        cache_entry_t e = set[w];
        memmove(&set[1], &set[0], (size_t)w * sizeof e);
        set[0] = e;
    }
    return &set[0];
}

/* omni__phone_parse through the cache. number and region as there. */
static int parse_cached(const char *number, const char *region, char *out, size_t outsz, const char **why)
{
    char key[sizeof cache[0][0].key];
    snprintf(key, sizeof key, "%s:%s", region != NULL ? region : "", number);
    cache_entry_t *e = cache_slot(key);
    if (strcmp(e->key, key) != 0) {
        memcpy(e->key, key, sizeof key);
        e->why = NULL;
        if (omni__phone_parse(number, region, e->e164, sizeof e->e164, &e->why) != 0)
            e->e164[0] = '\0';
    }
    if (e->why != NULL) {
        *why = e->why;
        return -1;
    }
    if ((size_t)snprintf(out, outsz, "%s", e->e164) >= outsz) {
        *why = "output buffer too small";
        return -1;
    }
    return 0;
}

int omni_country_parse(const char *text, char out[3], char *why, size_t whysz)
{
    /* Codes people write for a country that ISO spells otherwise: the UK's own and the EU's for Greece. */
    static const struct { const char *written, *iso; } aliases[] = { { "UK", "GB" }, { "EL", "GR" } };
    char up[3] = "";
    size_t len = text != NULL ? strlen(text) : 0;
    if (len == 2) {
        for (size_t i = 0; i < 2; i++)
            up[i] = (char)toupper((unsigned char)text[i]);
        up[2] = '\0';
        if (omni__phone_region_known(up)) {
            memcpy(out, up, 3);
            return 0;
        }
        for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
            if (strcmp(up, aliases[i].written) == 0) {
                snprintf(why, whysz, "\"%s\" is not an ISO 3166 alpha-2 country code (did you mean %s?)", text,
                         aliases[i].iso);
                return -1;
            }
        }
    }
    snprintf(why, whysz, "\"%.32s\" is not an ISO 3166 alpha-2 country code with a telephone numbering plan "
             "(two letters, e.g. US, GB, DE)", text != NULL ? text : "");
    return -1;
}

const char *omni_country_check(const char *value, char *buf, size_t bufsz)
{
    char iso[3];
    return omni_country_parse(value, iso, buf, bufsz) == 0 ? NULL : buf;
}

int omni_phone_e164(const char *raw, const char *default_country, char *out, size_t outsz, const char **why)
{
    static const char *ignored;
    if (why == NULL)
        why = &ignored;
    if (raw == NULL) {
        *why = "no digits";
        return -1;
    }
    char digits[DIGITS_MAX + 1], number[DIGITS_MAX + 2], region[3];
    bool plus;
    if (scan(raw, digits, &plus, why) != 0)
        return -1;
    if (default_country != NULL) {
        char reason[160];
        if (omni_country_parse(default_country, region, reason, sizeof reason) != 0) {
            *why = "unknown default country";
            return -1;
        }
    }
    const char *text = digits;
    if (!plus && default_country == NULL) {
        /* Without a default country the common international prefixes are recognised: 00 (most of the
         * world) and 011 (North America). With one, libphonenumber knows that country's own (810 in
         * Russia, 0011 in Australia) and that elsewhere 011 may start a national number (Leeds is 0113). */
        if (strncmp(digits, "00", 2) == 0)
            text = digits + 2;
        else if (strncmp(digits, "011", 3) == 0)
            text = digits + 3;
        else {
            *why = "national number without a default country";
            return -1;
        }
        plus = true;
    }
    snprintf(number, sizeof number, "%s%s", plus ? "+" : "", text);
    /* Trunk prefixes ("0" in most countries, "8" in Lithuania and Russia, "1" in North America), the
     * trunk 0 written after the country code ("+44 (0)20..."), Argentina's mobile 9 and 15, Italy's
     * leading 0 that is part of the number: libphonenumber's metadata knows each country's rules. */
    return parse_cached(number, plus ? NULL : region, out, outsz, why);
}
