/* libomni token.c: the token's text (base64url of the random bytes, checked against Python's
 * base64.urlsafe_b64encode), its shape check, and the hash and id omnictl stores and omni-api looks up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "omni/token.h"

static void format_is_base64url_without_padding(void **state)
{
    (void)state;
    unsigned char raw[OMNI_TOKEN_RANDOM_BYTES];
    for (int i = 0; i < OMNI_TOKEN_RANDOM_BYTES; i++)
        raw[i] = (unsigned char)i;
    char tok[OMNI_TOKEN_LEN + 1];
    omni_token_format(raw, tok);
    assert_string_equal(tok, "omni_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
    assert_true(omni_token_shape(tok, strlen(tok)));
    memset(raw, 0xff, sizeof raw); /* '+' and '/' in standard base64: '-' and '_' here */
    omni_token_format(raw, tok);
    assert_int_equal(strlen(tok), OMNI_TOKEN_LEN);
    assert_null(strpbrk(tok, "+/="));
    assert_true(omni_token_shape(tok, strlen(tok)));
}

static void shape_refuses_what_was_never_made(void **state)
{
    (void)state;
    const char *good = "omni_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    assert_true(omni_token_shape(good, strlen(good)));
    assert_false(omni_token_shape(good, strlen(good) - 1));                  /* short */
    assert_false(omni_token_shape("omnx_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", 48)); /* prefix */
    assert_false(omni_token_shape("omni_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+", 48)); /* alphabet */
    assert_false(omni_token_shape("omni_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHhB", 48)); /* bits past 256 */
}

static void hash_and_id(void **state)
{
    (void)state;
    const char *tok = "omni_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    char hash[65], id[OMNI_TOKEN_ID_LEN + 1];
    omni_token_hash(tok, strlen(tok), hash, id);
    assert_string_equal(hash, "9ac1517a1755c6e95ce3a3dee7d4a9d58e07f8c62d7f01d10d31a82d88b0d0c8");
    assert_string_equal(id, "9ac1517a1755");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(format_is_base64url_without_padding),
        cmocka_unit_test(shape_refuses_what_was_never_made),
        cmocka_unit_test(hash_and_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
