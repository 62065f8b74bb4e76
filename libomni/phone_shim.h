/* libphonenumber (Google's, as Debian ships it) behind a C interface: phone_shim.cc is the one C++ file in
 * libomni, so the rest stays C11 and never sees a C++ type or exception. Internal to libomni. */
#ifndef OMNI_PHONE_SHIM_H
#define OMNI_PHONE_SHIM_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* True when region is an upper-case ISO 3166-1 alpha-2 code libphonenumber has numbering data for.
 * region is borrowed for the call. */
bool omni__phone_region_known(const char *region);

/* Parses number ("+" and digits, or national digits read in region) and writes its E.164 form into out.
 * The number must be valid (in a range its country uses, by libphonenumber's metadata), not only of a
 * possible length. region: upper-case alpha-2, or NULL when number starts with '+'. Both are borrowed for
 * the call. Returns 0, or -1 with *why pointed at a static sentence. */
int omni__phone_parse(const char *number, const char *region, char *out, size_t outsz, const char **why);

#ifdef __cplusplus
}
#endif

#endif
