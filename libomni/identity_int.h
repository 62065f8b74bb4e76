/* Internals of identity.c and phone.c; not part of the public API. */
#ifndef OMNI_IDENTITY_INT_H
#define OMNI_IDENTITY_INT_H

#include <stdbool.h>
#include <stddef.h>

/* How numbers are dialled in one country: what a national number starts with (its trunk prefix) and
 * what a caller there dials before a foreign number (its international prefix). Both are lists of
 * alternatives separated by '|', longest first, "" for none. Data after Google libphonenumber's
 * metadata (nationalPrefixForParsing, internationalPrefix), simplified to literal prefixes. */
typedef struct omni_country {
    char iso[3];          /* ISO 3166-1 alpha-2, upper case */
    unsigned short code;  /* ITU-T E.164 country calling code */
    const char *trunk;
    const char *exit;
} omni_country_t;

/* The country for an ISO alpha-2 code (any case), or NULL. The result is static. */
const omni_country_t *omni__country_find(const char *iso);
/* True when code is an assigned country calling code (geographic or global service). */
bool omni__calling_code_known(unsigned code);
/* The table itself, for tests: entries 0..omni__country_count()-1. */
size_t omni__country_count(void);
const omni_country_t *omni__country_at(size_t i);
/* The first country using calling code, or NULL. The result is static. */
const omni_country_t *omni__country_by_code(unsigned code);
/* Length of the longest alternative in list ("a|b|c") that digits starts with, or 0. zero_only: consider
 * only alternatives starting with '0'. */
size_t omni__prefix_match(const char *list, const char *digits, bool zero_only);

/* Trims ASCII white space from both ends of s[0..*len): returns the new start, a pointer into s (which
 * stays the caller's), and updates *len. */
const char *omni__trim(const char *s, size_t *len);

#endif
