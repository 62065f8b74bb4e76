/* Phone numbers to E.164 ("+" and 8..15 digits), so that one person texting and calling from one
 * number is one identity, however each source happened to write it.
 * Pointer arguments are borrowed for the call; *why is pointed at a static string, never allocated. */
#include "identity_int.h"
#include "omni/identity.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DIGITS_MAX 24 /* more than E.164's 15 plus the longest prefixes people write before them */

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

/* Splits the country calling code off an international number. */
static int find_code(const char *intl, unsigned *code, size_t *cclen)
{
    unsigned c = 0;
    if (intl[0] == '0')
        return -1;   /* no country code starts with 0 ("+0 1..." must not read as +1) */
    for (size_t i = 1; i <= 3 && intl[i - 1] != '\0'; i++) {
        c = c * 10 + (unsigned)(intl[i - 1] - '0');
        if (omni__calling_code_known(c)) {
            *code = c;
            *cclen = i;
            return 0;
        }
    }
    return -1;
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
    char digits[DIGITS_MAX + 1], intl[DIGITS_MAX + 8];
    bool plus, national = false;
    if (scan(raw, digits, &plus, why) != 0)
        return -1;

    const omni_country_t *country = NULL;
    if (default_country != NULL && (country = omni__country_find(default_country)) == NULL) {
        *why = "unknown default country";
        return -1;
    }
    if (plus) {
        snprintf(intl, sizeof intl, "%s", digits);
    } else {
        /* Without a default country the common prefixes are recognized: 00 (most of the world) and 011
         * (North America). With one, only that country's, since elsewhere 011 may start a national
         * number (Leeds is 0113). */
        size_t exit = country != NULL ? omni__prefix_match(country->exit, digits, false)
                                      : omni__prefix_match("00|011", digits, false);
        if (exit > 0) {
            snprintf(intl, sizeof intl, "%s", digits + exit);
        } else if (country == NULL) {
            *why = "national number without a default country";
            return -1;
        } else {
            national = true;
            const char *rest = digits + omni__prefix_match(country->trunk, digits, false);
            snprintf(intl, sizeof intl, "%u%s", country->code, rest);
        }
    }

    unsigned code = 0;
    size_t cclen = 0;
    if (find_code(intl, &code, &cclen) != 0) {
        *why = "unknown country calling code";
        return -1;
    }
    const omni_country_t *home = omni__country_by_code(code);
    if (!national) {
        /* "+44 (0)20 7946 0958" is how many people write numbers: the country's trunk 0 after the
         * country code. Drop it where the trunk prefix is a 0 (never in Italy, Ivory Coast..., which
         * have none and keep the 0 as part of the number). */
        size_t t = home != NULL ? omni__prefix_match(home->trunk, intl + cclen, true) : 0;
        memmove(intl + cclen, intl + cclen + t, strlen(intl + cclen + t) + 1);
    }
    /* Where the trunk prefix is a 0 no national number starts with it, so one still there after the one
     * dropped above is a typo ("+46 00 ..."). Refused: dropping it too would give a key that normalizes
     * to another key when read again (found by fuzzing, tests/fuzz/regressions/identity). */
    if (home != NULL && omni__prefix_match(home->trunk, intl + cclen, true) > 0) {
        *why = "has the trunk prefix 0 twice after the country code";
        return -1;
    }
    size_t total = strlen(intl);
    if (total < 8) {
        *why = "too few digits (E.164 numbers have 8 to 15)";
        return -1;
    }
    if (total > 15) {
        *why = "too many digits (E.164 numbers have at most 15)";
        return -1;
    }
    /* NANP numbers are exactly NPA-NXX-XXXX, and neither the area code nor the exchange starts with 0
     * or 1: checking that catches the common slip of a 1 or a 0 too many or too few. */
    if (code == 1 && (total != 11 || intl[1] < '2' || intl[4] < '2')) {
        *why = "not a North American number (+1 and 10 digits, area code and exchange not starting "
               "with 0 or 1)";
        return -1;
    }
    if ((size_t)snprintf(out, outsz, "+%s", intl) >= outsz) {
        *why = "output buffer too small";
        return -1;
    }
    return 0;
}
