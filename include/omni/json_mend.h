/* What a connector does with JSON from a source that is valid JSON yet more than a message can carry: a
 * lone UTF-16 surrogate escape (half of an emoji's pair, which jansson refuses the whole document for) and a
 * string holding U+0000 (which a message's C strings would end at). One odd item must cost that item, never
 * the page or batch it came in (omni-facebook, omni-twitter). */
#ifndef OMNI_JSON_MEND_H
#define OMNI_JSON_MEND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A copy of body (len bytes; the copy NUL-terminated, the caller frees it) whose lone surrogate escapes are
 * \ufffd, the same six bytes; NULL when there is none, so body serves as it is. Escapes are found only inside
 * strings, and "\\u..." is a backslash, not an escape. body is borrowed. */
char *omni_json_mend_surrogates(const char *body, size_t len);

/* True when a string anywhere in v (borrowed) holds U+0000 (parsed with JSON_ALLOW_NUL). */
bool omni_json_holds_nul(const json_t *v);

#endif
