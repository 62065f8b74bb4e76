/* JSON from a source mended or checked before its items become messages (include/omni/json_mend.h). */
#include "omni/json_mend.h"
#include "omni/util.h"

#include <string.h>

bool omni_json_holds_nul(const json_t *v)
{
    size_t i;
    const char *k;
    json_t *x;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return strlen(json_string_value(v)) != json_string_length(v);
    case JSON_ARRAY:
        json_array_foreach((json_t *)v, i, x) if (omni_json_holds_nul(x)) return true;
        return false;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, k, x) if (omni_json_holds_nul(x)) return true;
        return false;
    default:
        return false;
    }
}

/* The value of four hex digits at p, or -1. */
static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

char *omni_json_mend_surrogates(const char *body, size_t len)
{
    char *copy = NULL;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (body[i] == '"') {
            in_string = !in_string;
        } else if (in_string && body[i] == '\\' && i + 1 < len) {
            if (body[i + 1] != 'u' || i + 6 > len) {
                i++; /* \" \\ \n ...: two bytes */
                continue;
            }
            int u = hex4(body + i + 2);
            bool pair = u >= 0xD800 && u <= 0xDBFF && i + 12 <= len && body[i + 6] == '\\' && body[i + 7] == 'u' &&
                        hex4(body + i + 8) >= 0xDC00 && hex4(body + i + 8) <= 0xDFFF;
            if (pair) {
                i += 11;
            } else if (u >= 0xD800 && u <= 0xDFFF) {
                if (copy == NULL) {
                    copy = omni_malloc(len + 1);
                    memcpy(copy, body, len);
                    copy[len] = '\0';
                }
                memcpy(copy + i, "\\ufffd", 6);
                i += 5;
            } else {
                i += 5;
            }
        }
    }
    return copy;
}
