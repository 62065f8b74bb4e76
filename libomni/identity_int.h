/* Internals of identity.c and phone.c; not part of the public API. */
#ifndef OMNI_IDENTITY_INT_H
#define OMNI_IDENTITY_INT_H

#include <stddef.h>

/* Trims ASCII white space from both ends of s[0..*len): returns the new start, a pointer into s (which
 * stays the caller's), and updates *len. */
const char *omni__trim(const char *s, size_t *len);

#endif
