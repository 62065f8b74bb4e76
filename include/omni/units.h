/* Numbers with units as configs write them: one reading for the router's keys and every connector's, in
 * the file and in -D overrides alike, so "5s" means the same everywhere. */
#ifndef OMNI_UNITS_H
#define OMNI_UNITS_H

typedef enum {
    OMNI_NUM_PLAIN,    /* a decimal integer, no unit */
    OMNI_NUM_DURATION, /* milliseconds; also with ms, s, m, h ("500ms", "5s", "2m", "1h") */
    OMNI_NUM_SIZE,     /* bytes; also with b, k, kb, kib, m, mb, mib, g, gb, gib (powers of 1024, any case) */
} omni_num_kind_t;

enum { OMNI_NUM_OK = 0, OMNI_NUM_BAD = -1, OMNI_NUM_FRACTION = -2 };

/* Reads text, an optional sign, decimal digits and (durations, sizes) an optional unit, into *out in units
 * of unit (milliseconds or bytes per unit of the value: 1, or 1000 for a key counted in seconds). A number
 * without a unit is already in the value's unit. Values too large saturate at LLONG_MIN / LLONG_MAX, for
 * the caller's bounds to name. Returns OMNI_NUM_OK; OMNI_NUM_BAD when text is not such a number (*out
 * untouched); OMNI_NUM_FRACTION when it is, but not a whole number of unit ("1500ms" for seconds). text is
 * borrowed for the call. */
int omni_number_parse(const char *text, omni_num_kind_t kind, long long unit, long long *out);

/* What a kind accepts, for error messages: "an integer", "a duration in milliseconds (500, 500ms, 5s)",
 * "a duration in seconds (60, 60s, 1m)", "a size in bytes (262144, 256k, 1m)". Static. */
const char *omni_number_wanted(omni_num_kind_t kind, long long unit);

#endif
