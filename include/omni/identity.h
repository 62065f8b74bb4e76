/* Customer identities: one normalized string per sender, whatever the channel.
 *
 * An identity key is "<kind>:<value>", where the kind is the identity's namespace, not the channel:
 *   email    -> email:<addr-spec lowercased; IDN domain in punycode>
 *   sms, phone -> phone:<E.164, "+" and up to 15 digits>   (one number texting and calling is one identity)
 *   twitter  -> twitter:<numeric user id>
 *   facebook -> facebook:<numeric page-scoped user id>
 *   x-<name> -> x-<name>:<value as given, trimmed, 1..256 bytes, no control characters>
 */
#ifndef OMNI_IDENTITY_H
#define OMNI_IDENTITY_H

#include <stddef.h>

#define OMNI_IDENTITY_MAX 320 /* longest key including kind, ':' and NUL */

/* Each normalizer writes the normalized value (NUL-terminated) into out and returns 0, or returns -1
 * and points *why at a static sentence saying which rule was broken ("no '@'", "too many digits"). */

/* "Ann <Ann.Lee@Example.COM>" or " ann.lee@example.com " -> "ann.lee@example.com". Lowercases the ASCII
 * letters of the address (DESIGN.md: email identities are lowercased; a non-ASCII letter stays as written:
 * "ÅNN@x.com" -> "Ånn@x.com"), converts a non-ASCII domain to punycode. */
int omni_email_normalize(const char *raw, char *out, size_t outsz, const char **why);

/* Phone number to E.164 by libphonenumber. Accepts "+44 20 7946 0958", "0044 20...", "(415) 555-0100",
 * "tel:+1-415-...", extensions and separators. A number without "+" is read in default_country (ISO 3166
 * alpha-2, any case, e.g. "US", "GB", "DE") as people there dial it: its international prefix (011 in the
 * US, 00 in France, 810 in Russia) or its trunk prefix ("0", "8" in Lithuania, "1" in the US) and
 * national quirks such as Argentina's mobile 9 / 15 and Italy's leading 0, which stays. default_country
 * may be NULL: then only "+", "00" and "011" numbers are read. The number must be valid (in a range its
 * country uses), not only of a plausible length. */
int omni_phone_e164(const char *raw, const char *default_country, char *out, size_t outsz, const char **why);

/* Checks a country code as a person wrote it (a config's default_country): an ISO 3166-1 alpha-2 code,
 * any case, that libphonenumber has a numbering plan for. Returns 0 with the upper-case code in out, or
 * -1 with a sentence in why naming the value, with a suggestion where one is known ("UK": did you mean
 * GB?). text is borrowed for the call. The router and every connector check theirs with it. */
int omni_country_parse(const char *text, char out[3], char *why, size_t whysz);
/* omni_country_parse as a config key's check: NULL when value is a country, else the reason written in buf. */
const char *omni_country_check(const char *value, char *buf, size_t bufsz);

/* Twitter / Facebook ids: decimal digits only, 1..32 of them, no leading zero. */
int omni_numeric_id(const char *raw, char *out, size_t outsz, const char **why);

/* Identity kind for a channel: "email", "phone", "twitter", "facebook", the channel itself for "x-..."
 * channels, or NULL for an unknown channel. */
const char *omni_identity_kind(const char *channel);

/* Full key for a sender on a channel: "phone:+14155550100". Returns 0 or -1 with *why. */
int omni_identity_key(const char *channel, const char *raw, const char *default_country,
                      char *out, size_t outsz, const char **why);

/* Parses a key given by a person ("email:a@b.c", "phone:+1 415 555 0100", or a bare address or number
 * whose kind is guessed) and normalizes it. Returns 0 or -1 with *why. */
int omni_identity_parse_key(const char *text, const char *default_country, char *out, size_t outsz,
                            const char **why);

#endif
