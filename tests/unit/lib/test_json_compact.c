/* libomni/json_compact.c against jansson itself: for thousands of generated documents (every JSON type,
 * every escape, multi-byte characters, keys that sort by length and by bytes, nesting, empty containers)
 * the output must be json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) byte for byte, and the size function
 * its length; where jansson refuses (bad UTF-8), so must it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "message_int.h"

static uint32_t rng = 12345;
static uint32_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    return rng;
}

/* A string of up to 12 pieces: plain ASCII, every byte JSON escapes, 2- to 4-byte characters, NUL. */
static json_t *gen_string(void)
{
    static const char *const pieces[] = {"a", "Zz", " ", "/", "\"", "\\", "\b", "\f", "\n", "\r", "\t", "\x01",
                                         "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                         "\xe2\x80\xa8", "{}", "[,]:"};
    char buf[128];
    size_t n = 0, k = next() % 13;
    for (size_t i = 0; i < k; i++) {
        const char *p = pieces[next() % (sizeof pieces / sizeof *pieces)];
        memcpy(buf + n, p, strlen(p));
        n += strlen(p);
    }
    if (next() % 17 == 0)
        buf[n++] = '\0'; /* an embedded NUL */
    return json_stringn(buf, n);
}

static json_t *gen(int depth)
{
    static const char *const keys[] = {"id", "i", "idx", "a", "ab", "b", "text", "from", "é", "Z", "_", "meta"};
    switch (next() % (depth < 4 ? 9 : 6)) {
    case 0: return json_null();
    case 1: return json_boolean(next() % 2);
    case 2: return json_integer((json_int_t)next() * (next() % 2 ? -1 : 1) * (json_int_t)(next() % 100000));
    case 3: return json_real((double)(int32_t)next() / ((next() % 1000) + 1));
    case 4:
    case 5: return gen_string();
    case 6:
    case 7: {
        json_t *o = json_object();
        for (size_t i = 0, k = next() % 8; i < k; i++)
            json_object_set_new(o, keys[next() % (sizeof keys / sizeof *keys)], gen(depth + 1));
        return o;
    }
    default: {
        json_t *a = json_array();
        for (size_t i = 0, k = next() % 5; i < k; i++)
            json_array_append_new(a, gen(depth + 1));
        return a;
    }
    }
}

static void test_same_as_jansson(void **state)
{
    (void)state;
    for (int i = 0; i < 5000; i++) {
        json_t *doc = json_object();
        json_object_set_new(doc, "id", gen_string());
        json_object_set_new(doc, "meta", gen(0));
        json_object_set_new(doc, "list", gen(1));
        char *want = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
        size_t len = 0;
        char *got = omni__json_compact(doc, &len);
        assert_non_null(want);
        assert_non_null(got);
        assert_string_equal(got, want);
        assert_int_equal(len, strlen(want));
        assert_int_equal(omni__json_compact_size(doc), strlen(want));
        free(want);
        free(got);
        json_decref(doc);
    }
}

static void test_refuses_what_jansson_refuses(void **state)
{
    (void)state;
    json_t *doc = json_object();
    json_object_set_new(doc, "text", json_stringn_nocheck("ok \xff no", 7));
    assert_null(json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS));
    assert_null(omni__json_compact(doc, NULL));
    assert_int_equal(omni__json_compact_size(doc), 0);
    json_decref(doc);
    json_t *s = json_string("alone");
    assert_null(omni__json_compact(s, NULL)); /* not an object or array */
    json_decref(s);
    json_t *empty = json_object();
    size_t len = 9;
    char *e = omni__json_compact(empty, &len);
    assert_string_equal(e, "{}");
    assert_int_equal(len, 2);
    free(e);
    json_decref(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_jansson),
        cmocka_unit_test(test_refuses_what_jansson_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
