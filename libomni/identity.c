/* Customer identities: one normalized string per sender (identity.h), so that the same person writing
 * twice is recognized as one customer. Phone numbers are in phone.c.
 * Pointer arguments are borrowed for the call; *why is pointed at a static string, never allocated. */
#include "identity_int.h"
#include "message_int.h"
#include "omni/identity.h"
#include "omni/message.h"
#include "omni/util.h"

#include <idn2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EMAIL_RAW_MAX 1024 /* longer input is refused before any work: no address is near this */
#define EMAIL_MAX 254      /* RFC 5321 4.5.3.1.3: a path is 256 octets including "<" and ">" */
#define LOCAL_MAX 64       /* RFC 5321 4.5.3.1.1 */
#define LABEL_MAX 63       /* RFC 1035 2.3.4 */
#define XVALUE_MAX 256

static const char *ignored_why;

const char *omni__trim(const char *s, size_t *len)
{
    while (*len > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
        s++;
        (*len)--;
    }
    while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t' || s[*len - 1] == '\r' ||
                        s[*len - 1] == '\n'))
        (*len)--;
    return s;
}

static int fail(const char **why, const char *reason)
{
    *why = reason;
    return -1;
}

static void ascii_lower(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
}

/* Index of the first c in s[0..len) outside a quoted string, or len. *count (if not NULL) gets how
 * many there are. */
static size_t find_unquoted(const char *s, size_t len, char c, size_t *count)
{
    size_t first = len, n = 0;
    bool quoted = false;
    for (size_t i = 0; i < len; i++) {
        if (quoted && s[i] == '\\' && i + 1 < len)
            i++;
        else if (s[i] == '"')
            quoted = !quoted;
        else if (!quoted && s[i] == c && n++ == 0)
            first = i;
    }
    if (count != NULL)
        *count = n;
    return first;
}

/* RFC 5322 atext, plus any byte of a non-ASCII character (RFC 6531 extends atext with UTF8-non-ascii). */
static bool atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80 ||
           (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int check_local(const char *s, size_t len, const char **why)
{
    if (len == 0)
        return fail(why, "the local part (before '@') is empty");
    if (len > LOCAL_MAX)
        return fail(why, "the local part (before '@') is longer than 64 bytes");
    if (s[0] == '"') {
        /* A quoted local part ("john doe"@example.com): rare but valid; only the quoting must hold. */
        size_t i = 1;
        for (; i < len && s[i] != '"'; i++)
            if (s[i] == '\\')
                i++;
        if (i >= len)
            return fail(why, "the quoted local part is not closed");
        if (i != len - 1)
            return fail(why, "the local part has text after its closing quote");
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (i == 0 || i == len - 1 || s[i + 1] == '.')
                return fail(why, "the local part has a dot at its start, its end or next to another");
        } else if (!atext((unsigned char)s[i])) {
            return fail(why, "the local part has a character not allowed in an address");
        }
    }
    return 0;
}

/* Checks an ASCII, lowercased domain: labels of 1..63 letters, digits and hyphens, not starting or
 * ending with a hyphen, at least two labels, a top-level label that is not all digits. */
static int check_domain(const char *d, const char **why)
{
    size_t len = strlen(d);
    if (len > 253)
        return fail(why, "the domain is longer than 253 bytes");
    size_t labels = 0;
    const char *label = d;
    bool all_digits = true;
    for (const char *p = d;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t n = (size_t)(p - label);
            if (n == 0)
                return fail(why, "the domain has an empty label");
            if (n > LABEL_MAX)
                return fail(why, "a domain label is longer than 63 bytes");
            if (label[0] == '-' || p[-1] == '-')
                return fail(why, "a domain label starts or ends with '-'");
            labels++;
            if (*p == '\0')
                break;
            label = p + 1;
            all_digits = true;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return fail(why, "the domain has a character other than letters, digits, '-' and '.'");
        if (*p < '0' || *p > '9')
            all_digits = false;
    }
    /* A dotless domain is valid in theory but never a customer's address; it is nearly always a typo
     * ("ann@gmail"), which would otherwise become an identity of its own. */
    if (labels < 2)
        return fail(why, "the domain has no dot");
    if (all_digits)
        return fail(why, "the domain ends in an all-digit label (an IP address is not accepted)");
    return 0;
}

int omni_email_normalize(const char *raw, char *out, size_t outsz, const char **why)
{
    if (why == NULL)
        why = &ignored_why;
    if (raw == NULL)
        return fail(why, "empty address");
    size_t len = strlen(raw);
    if (len > EMAIL_RAW_MAX)
        return fail(why, "longer than 254 bytes");
    if (!omni_utf8_valid(raw, len, NULL))
        return fail(why, "not valid UTF-8");
    const char *s = omni__trim(raw, &len);
    /* "Ann Lee <ann@example.com>": the address is inside the first unquoted '<' and a final '>'. */
    size_t lt = find_unquoted(s, len, '<', NULL);
    if (len > 0 && s[len - 1] == '>') {
        if (lt == len)
            return fail(why, "'>' without '<'");
        s += lt + 1;
        len -= lt + 2;
        s = omni__trim(s, &len);
    } else if (lt != len) {
        return fail(why, "'<' without a closing '>' at the end");
    }
    if (len >= 7 && strncasecmp(s, "mailto:", 7) == 0) {
        s += 7;
        len -= 7;
    }
    if (len == 0)
        return fail(why, "empty address");
    if (omni__has_control(s, len))
        return fail(why, "has a control character");
    size_t ats;
    size_t at = find_unquoted(s, len, '@', &ats);
    if (ats == 0)
        return fail(why, "no '@'");
    if (ats > 1)
        return fail(why, "more than one '@'");
    if (check_local(s, at, why) != 0)
        return -1;

    const char *dom = s + at + 1;
    size_t dlen = len - at - 1;
    if (dlen > 0 && dom[dlen - 1] == '.')
        dlen--;   /* "example.com." is the same domain, written fully qualified */
    if (dlen == 0)
        return fail(why, "no domain after '@'");
    if (dom[0] == '[')
        return fail(why, "a domain literal ([192.0.2.1]) is not accepted");
    char domain[EMAIL_RAW_MAX + 1];
    memcpy(domain, dom, dlen);
    domain[dlen] = '\0';
    bool ascii = true;
    for (size_t i = 0; i < dlen; i++)
        if ((unsigned char)domain[i] >= 0x80)
            ascii = false;
    if (!ascii) {
        /* IDNA2008 (UTS 46 non-transitional, as browsers do): "bücher.de" and "BÜCHER.de" are one
         * domain, "xn--bcher-kva.de", and 'ß' stays 'ß' rather than becoming "ss". */
        char *puny = NULL;
        if (idn2_to_ascii_8z(domain, &puny, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK) {
            idn2_free(puny);
            return fail(why, "the domain is not a valid internationalized domain name");
        }
        size_t plen = strlen(puny);
        if (plen > 253) {
            idn2_free(puny);
            return fail(why, "the domain is longer than 253 bytes");
        }
        memcpy(domain, puny, plen + 1);
        idn2_free(puny);
    }
    ascii_lower(domain, strlen(domain));
    if (check_domain(domain, why) != 0)
        return -1;

    /* The local part is lowercased in ASCII only: case folding of other scripts is locale-dependent,
     * and servers compare non-ASCII local parts byte for byte anyway. */
    char local[LOCAL_MAX + 1];
    memcpy(local, s, at);
    local[at] = '\0';
    ascii_lower(local, at);
    if (at + 1 + strlen(domain) > EMAIL_MAX)
        return fail(why, "longer than 254 bytes");
    if ((size_t)snprintf(out, outsz, "%s@%s", local, domain) >= outsz)
        return fail(why, "output buffer too small");
    return 0;
}

int omni_numeric_id(const char *raw, char *out, size_t outsz, const char **why)
{
    if (why == NULL)
        why = &ignored_why;
    size_t len = raw != NULL ? strlen(raw) : 0;
    const char *s = raw != NULL ? omni__trim(raw, &len) : "";
    if (len == 0)
        return fail(why, "empty id");
    if (len > 32)
        return fail(why, "more than 32 digits");
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return fail(why, "not all digits");
    /* "0123" and "123" would be two identities for one user: ids are written without leading zeros. */
    if (s[0] == '0')
        return fail(why, "a leading zero");
    if (len >= outsz)
        return fail(why, "output buffer too small");
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

/* Value of an x-<name> identity: as given, trimmed, 1..256 bytes of UTF-8, no control characters. */
static int xvalue(const char *raw, char *out, size_t outsz, const char **why)
{
    size_t len = raw != NULL ? strlen(raw) : 0;
    const char *s = raw != NULL ? omni__trim(raw, &len) : "";
    if (len == 0)
        return fail(why, "empty id");
    if (len > XVALUE_MAX)
        return fail(why, "longer than 256 bytes");
    if (!omni_utf8_valid(s, len, NULL))
        return fail(why, "not valid UTF-8");
    if (omni__has_control(s, len))
        return fail(why, "has a control character");
    if (len >= outsz)
        return fail(why, "output buffer too small");
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

const char *omni_identity_kind(const char *channel)
{
    if (channel == NULL || !omni_channel_valid(channel))
        return NULL;
    if (strcmp(channel, "sms") == 0)
        return "phone";
    return channel;   /* email, phone, twitter, facebook and x-<name> are their own kind */
}

int omni_identity_key(const char *channel, const char *raw, const char *default_country,
                      char *out, size_t outsz, const char **why)
{
    if (why == NULL)
        why = &ignored_why;
    const char *kind = omni_identity_kind(channel);
    if (kind == NULL)
        return fail(why, "unknown channel");
    char value[OMNI_IDENTITY_MAX];
    int rc;
    if (strcmp(kind, "email") == 0)
        rc = omni_email_normalize(raw, value, sizeof value, why);
    else if (strcmp(kind, "phone") == 0)
        rc = omni_phone_e164(raw, default_country, value, sizeof value, why);
    else if (strcmp(kind, "twitter") == 0 || strcmp(kind, "facebook") == 0)
        rc = omni_numeric_id(raw, value, sizeof value, why);
    else
        rc = xvalue(raw, value, sizeof value, why);
    if (rc != 0)
        return -1;
    if ((size_t)snprintf(out, outsz, "%s:%s", kind, value) >= outsz)
        return fail(why, "output buffer too small");
    return 0;
}

int omni_identity_parse_key(const char *text, const char *default_country, char *out, size_t outsz,
                            const char **why)
{
    if (why == NULL)
        why = &ignored_why;
    size_t len = text != NULL ? strlen(text) : 0;
    const char *s = text != NULL ? omni__trim(text, &len) : "";
    if (len == 0)
        return fail(why, "empty identity");
    char *copy = omni_strndup(s, len);
    int rc;
    size_t colon = strcspn(copy, ":");
    char kind[40];
    if (copy[colon] == ':' && colon < sizeof kind) {
        /* A kind typed by a person may be in any case: "Email:ann@example.com". */
        memcpy(kind, copy, colon);
        kind[colon] = '\0';
        ascii_lower(kind, colon);
    } else {
        kind[0] = '\0';
    }
    const char *rest = copy + colon + 1;
    if (kind[0] != '\0' && omni_identity_kind(kind) != NULL)
        rc = omni_identity_key(kind, rest, default_country, out, outsz, why);
    else if (strcmp(kind, "tel") == 0)                    /* a tel: URI is a bare number */
        rc = omni_identity_key("phone", copy, default_country, out, outsz, why);
    else if (strcmp(kind, "mailto") == 0 || strchr(copy, '@') != NULL)
        rc = omni_identity_key("email", copy, default_country, out, outsz, why);
    else if (copy[colon] == ':')
        rc = fail(why, "unknown identity kind (email, phone, twitter, facebook or x-<name>)");
    else if (strspn(copy, "+0123456789 ().-/") == len ||
             (copy[0] != '\0' && strchr("+(0123456789", copy[0]) != NULL))
        /* a number, maybe with what people write after one ("+1 415 555 0100 ext. 12"): the phone rules say
         * what is wrong with it, if anything */
        rc = omni_identity_key("phone", copy, default_country, out, outsz, why);
    else
        rc = fail(why, "neither an address nor a number: write it as <kind>:<value>");
    free(copy);
    return rc;
}
