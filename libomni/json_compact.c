/* Compact JSON of a jansson document, byte for byte what json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS)
 * writes, at a fraction of its cost. Every message a connector submits is serialized once (and its meta
 * measured once more); jansson spends ~80 instructions a byte on it, mostly on its guard against cycles
 * (a hash table entry per object or array, named by printing the pointer) and on one callback per piece
 * of output. Here: one growing buffer, and strings copied in runs between the few bytes JSON escapes.
 * Reals are formatted by jansson itself (17 significant digits: 0.1 as 0.10000000000000001), so numbers cannot
 * differ from json_dumps; message_check.c measures meta's reals in their shortest form besides (reals_delta).
 * Like jansson, a string that is not valid UTF-8 fails the whole document; so does nesting beyond
 * JSON_COMPACT_DEPTH (jansson refuses cycles; a document this deep is not a message).
 * Pointer arguments are borrowed for the call. */
#include "message_int.h"
#include "omni/log.h"
#include "omni/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_COMPACT_DEPTH 64

typedef struct out {
    bool count_only;    /* only len is kept */
    bool utf8_checked;  /* every string of the document is known to be valid UTF-8: not checked again */
    const json_t *mark; /* a value inside the document whose length is wanted (NULL: none) ... */
    size_t mark_len;    /* ... and that length, once written */
    char *buf;          /* len bytes of cap, room for a NUL */
    size_t len, cap;
} out_t;

static void grow(out_t *o, size_t n)
{
    size_t c = o->cap ? o->cap : 1024;
    while (c < o->len + n + 1)
        c *= 2;
    o->buf = omni_realloc(o->buf, c);
    o->cap = c;
}

static inline void put(out_t *o, const char *s, size_t n)
{
    if (!o->count_only) {
        if (o->len + n + 1 > o->cap)
            grow(o, n);
        memcpy(o->buf + o->len, s, n);
    }
    o->len += n;
}

/* Bytes that JSON escapes: the C0 controls, '"' and '\\'. */
static bool escaped(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* True when one of the 8 bytes of w is one that JSON escapes (the exact "has a byte less than" and "has a
 * zero byte" tests of word-at-a-time string code; bytes of 0x80 and up never count). */
static bool word_has_escaped(uint64_t w)
{
    uint64_t quote = w ^ (ONES * '"'), bslash = w ^ (ONES * '\\');
    return (((w - ONES * 0x20) & ~w) | ((quote - ONES) & ~quote) | ((bslash - ONES) & ~bslash)) & HIGHS;
}

static int put_string(out_t *o, const char *s, size_t len)
{
    if (!o->utf8_checked && !omni_utf8_valid(s, len, NULL))
        return -1;
    put(o, "\"", 1);
    size_t run = 0, i = 0;
    while (i < len) {
        if (len - i >= 8) { /* eight bytes at a time while none is escaped: nearly all text */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!word_has_escaped(w)) {
                i += 8;
                continue;
            }
        }
        unsigned char c = (unsigned char)s[i++];
        if (!escaped(c))
            continue;
        put(o, s + run, i - 1 - run);
        run = i;
        char esc[8];
        const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f" :
                        c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (e == NULL) {
            snprintf(esc, sizeof esc, "\\u%04X", c); /* jansson's upper-case hex */
            e = esc;
        }
        put(o, e, strlen(e));
    }
    put(o, s + run, len - run);
    put(o, "\"", 1);
    return 0;
}

typedef struct key {
    const char *key;
    size_t len;
    json_t *value;
} key_t_;

/* jansson's order: bytes, then the shorter first. */
static int key_cmp(const void *a, const void *b)
{
    const key_t_ *x = a, *y = b;
    /* keys nearly always differ in their first byte: decided without a call */
    if (x->len > 0 && y->len > 0 && x->key[0] != y->key[0])
        return (unsigned char)x->key[0] < (unsigned char)y->key[0] ? -1 : 1;
    int r = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    return r ? r : (x->len > y->len) - (x->len < y->len);
}

static int put_value_of(out_t *o, const json_t *v, bool sorted, int depth);

static int put_value(out_t *o, const json_t *v, bool sorted, int depth)
{
    if (v != o->mark)
        return put_value_of(o, v, sorted, depth);
    size_t start = o->len;
    int rc = put_value_of(o, v, sorted, depth);
    o->mark_len = o->len - start;
    return rc;
}

static int put_value_of(out_t *o, const json_t *v, bool sorted, int depth)
{
    char num[64];
    if (depth > JSON_COMPACT_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_NULL:
        put(o, "null", 4);
        return 0;
    case JSON_TRUE:
        put(o, "true", 4);
        return 0;
    case JSON_FALSE:
        put(o, "false", 5);
        return 0;
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        num[0] = '-';
        put(o, num, (i < 0) + omni_fmt_u64(num + (i < 0), i < 0 ? 0 - (uint64_t)i : (uint64_t)i));
        return 0;
    }
    case JSON_REAL: {
        size_t n = json_dumpb(v, num, sizeof num, JSON_COMPACT | JSON_ENCODE_ANY);
        if (n == 0 || n > sizeof num)
            return -1;
        put(o, num, n);
        return 0;
    }
    case JSON_STRING:
        return put_string(o, json_string_value(v), json_string_length(v));
    case JSON_ARRAY:
        put(o, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                put(o, ",", 1);
            if (put_value(o, json_array_get(v, i), sorted, depth + 1) != 0)
                return -1;
        }
        put(o, "]", 1);
        return 0;
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        key_t_ small[16], *keys = n <= 16 ? small : omni_malloc(n * sizeof *keys);
        for (void *it = json_object_iter((json_t *)v); it != NULL && i < n;
             it = json_object_iter_next((json_t *)v, it), i++)
            keys[i] = (key_t_){json_object_iter_key(it), json_object_iter_key_len(it), json_object_iter_value(it)};
        if (sorted && i > 32)
            qsort(keys, i, sizeof *keys, key_cmp);
        else if (sorted) /* insertion sort for the few keys of a message's objects: glibc's qsort (a merge
                          * sort) costs more in its setup than this in its compares */
            for (size_t k = 1; k < i; k++) {
                key_t_ x = keys[k];
                size_t j = k;
                for (; j > 0 && key_cmp(&keys[j - 1], &x) > 0; j--)
                    keys[j] = keys[j - 1];
                keys[j] = x;
            }
        int rc = 0;
        put(o, "{", 1);
        for (size_t k = 0; k < i && rc == 0; k++) {
            if (k > 0)
                put(o, ",", 1);
            rc = put_string(o, keys[k].key, keys[k].len);
            put(o, ":", 1);
            if (rc == 0)
                rc = put_value(o, keys[k].value, sorted, depth + 1);
        }
        put(o, "}", 1);
        if (keys != small)
            free(keys);
        return rc;
    }
    default:
        return -1;
    }
}

char *omni__json_compact(const json_t *v, size_t *len)
{
    return omni__json_compact_checked(v, len, false, NULL, NULL);
}

char *omni__json_compact_checked(const json_t *v, size_t *len, bool utf8_checked, const json_t *mark,
                                 size_t *mark_len)
{
    if (!json_is_object(v) && !json_is_array(v))
        return NULL; /* as jansson without JSON_ENCODE_ANY */
    out_t o = {.count_only = false, .utf8_checked = utf8_checked, .mark = mark};
    put(&o, "", 0); /* the buffer exists even for an empty document's NUL */
    if (put_value(&o, v, true, 0) != 0) {
        free(o.buf);
        return NULL;
    }
    o.buf[o.len] = '\0';
    if (len != NULL)
        *len = o.len;
    if (mark_len != NULL)
        *mark_len = o.mark_len;
    return o.buf;
}

size_t omni__json_compact_size(const json_t *v)
{
    out_t o = {.count_only = true};
    return put_value(&o, v, false, 0) == 0 ? o.len : 0;
}
