/* The Account Activity CRC answer (connectors/twitter/tw_crc.c) against the published vector,
 * ../shared/fixtures/twitter/crc-vector.json, read as it is; a changed token or secret gives another answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../connectors/twitter/tw_crc.h"

static void test_published_vector(void **state)
{
    (void)state;
    const char *d = getenv("OMNI_FIXTURES");
    char path[512];
    snprintf(path, sizeof path, "%s/twitter/crc-vector.json", d ? d : "../shared/fixtures");
    json_error_t jerr;
    json_t *v = json_load_file(path, 0, &jerr);
    if (v == NULL)
        fail_msg("%s: %s", path, jerr.text);
    const char *secret = json_string_value(json_object_get(v, "consumer_secret"));
    const char *token = json_string_value(json_object_get(v, "crc_token"));
    json_t *expected = json_object_get(v, "expected_response_json");
    char out[256];
    long n = tw_crc_response(secret, strlen(secret), token, out, sizeof out);
    assert_true(n > 0);
    json_t *got = json_loads(out, 0, &jerr);
    assert_non_null(got);
    assert_true(json_equal(got, expected));
    json_decref(got);

    char other[64];
    snprintf(other, sizeof other, "%sx", token);
    tw_crc_response(secret, strlen(secret), other, out, sizeof out);
    got = json_loads(out, 0, &jerr);
    assert_false(json_equal(got, expected));
    json_decref(got);
    tw_crc_response(secret, strlen(secret) - 1, token, out, sizeof out);
    got = json_loads(out, 0, &jerr);
    assert_false(json_equal(got, expected));
    json_decref(got);

    assert_int_equal(tw_crc_response(secret, strlen(secret), "", out, sizeof out), -1);
    char *huge = malloc(TW_CRC_TOKEN_MAX + 2);
    memset(huge, 'a', TW_CRC_TOKEN_MAX + 1);
    huge[TW_CRC_TOKEN_MAX + 1] = '\0';
    assert_int_equal(tw_crc_response(secret, strlen(secret), huge, out, sizeof out), -1);
    free(huge);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_published_vector) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
