/* omni-webhooks sign.c and retry.c: the published Standard Webhooks vector (standard-webhooks' own tests,
 * ../shared/fixtures/standard-webhooks/sign-vector.json), two signatures while rotating, secrets that are not
 * whsec_, the backoff's growth, cap and jitter bounds, and Retry-After in both its forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "retry.h"
#include "sign.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define TS "1614265330"
#define BODY "{\"test\": 2432232314}"
#define SIGNATURE "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void test_standard_webhooks_vector(void **state)
{
    (void)state;
    unsigned char key[256];
    long n = wh_secret_key(SECRET, key, sizeof key);
    assert_true(n > 0);
    char sig[WH_SIGNATURE_LEN];
    wh_signature(key, (size_t)n, ID, TS, BODY, strlen(BODY), sig);
    assert_string_equal(sig, SIGNATURE);
    /* one byte of the body changed: another signature */
    wh_signature(key, (size_t)n, ID, TS, "{\"test\": 2432232315}", strlen(BODY), sig);
    assert_string_not_equal(sig, SIGNATURE);
}

static void test_two_secrets_two_signatures(void **state)
{
    (void)state;
    unsigned char a[256], b[256];
    long na = wh_secret_key(SECRET, a, sizeof a), nb = wh_secret_key("whsec_c2Vjb25kLXNlY3JldA==", b, sizeof b);
    assert_int_equal(nb, 13); /* "second-secret" */
    const unsigned char *keys[] = { a, b };
    const size_t lens[] = { (size_t)na, (size_t)nb };
    char header[2 * WH_SIGNATURE_LEN], second[WH_SIGNATURE_LEN];
    wh_signature_header(keys, lens, 2, ID, TS, BODY, strlen(BODY), header);
    wh_signature(b, (size_t)nb, ID, TS, BODY, strlen(BODY), second);
    char want[2 * WH_SIGNATURE_LEN];
    snprintf(want, sizeof want, "%s %s", SIGNATURE, second);
    assert_string_equal(header, want);
    wh_signature_header(keys, lens, 1, ID, TS, BODY, strlen(BODY), header);
    assert_string_equal(header, SIGNATURE);
}

static void test_secrets_that_are_not_whsec(void **state)
{
    (void)state;
    unsigned char key[8];
    assert_int_equal(wh_secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, sizeof key), -1); /* no prefix */
    assert_int_equal(wh_secret_key("whsec_not base64!", key, sizeof key), -1);
    assert_int_equal(wh_secret_key(SECRET, key, sizeof key), -1); /* 24 bytes do not fit in 8 */
    assert_int_equal(wh_secret_key("whsec_", key, sizeof key), -1);
}

static void test_backoff_doubles_to_its_cap_with_jitter_in_the_upper_half(void **state)
{
    (void)state;
    /* no jitter (unit 0): half of each step; the most (unit near 1): the whole step */
    assert_int_equal(wh_backoff_ms(1, 1000, 60000, 0.0), 500);
    assert_int_equal(wh_backoff_ms(2, 1000, 60000, 0.0), 1000);
    assert_int_equal(wh_backoff_ms(4, 1000, 60000, 0.0), 4000);
    assert_in_range(wh_backoff_ms(4, 1000, 60000, 0.999), 7990, 8000);
    assert_int_equal(wh_backoff_ms(7, 1000, 60000, 0.0), 30000);   /* 64 s capped at 60 s */
    assert_int_equal(wh_backoff_ms(100, 1000, 60000, 0.0), 30000); /* no overflow however many */
    assert_in_range(wh_backoff_ms(100, 1000, 60000, 0.999), 59900, 60000);
    assert_int_equal(wh_backoff_ms(3, 1000, 60000, 1.5), 2000);   /* a bad unit is no jitter */
}

static void test_retry_after(void **state)
{
    (void)state;
    const int64_t now = 1445412480000LL; /* Wed, 21 Oct 2015 07:28:00 GMT */
    assert_int_equal(wh_retry_after_ms("1", now), 1000);
    assert_int_equal(wh_retry_after_ms(" 120 ", now), 120000);
    assert_int_equal(wh_retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", now), 30000);
    assert_int_equal(wh_retry_after_ms("Wed, 21 Oct 2015 07:27:00 GMT", now), 0); /* past: now */
    assert_int_equal(wh_retry_after_ms("99999999", now), WH_RETRY_AFTER_MAX_MS);
    assert_int_equal(wh_retry_after_ms("soon", now), -1);
    assert_int_equal(wh_retry_after_ms("12abc", now), -1);
    /* the obsolete date forms RFC 9110 still asks a recipient to accept; a date past the cap gets the cap */
    assert_int_equal(wh_retry_after_ms("Wednesday, 21-Oct-15 07:28:30 GMT", now), 30000);
    assert_int_equal(wh_retry_after_ms("Wed Oct 21 07:28:30 2015", now), 30000);
    assert_int_equal(wh_retry_after_ms("Fri, 31 Dec 9999 23:59:59 GMT", now), WH_RETRY_AFTER_MAX_MS);
    assert_int_equal(wh_retry_after_ms("99999999999999999999999", now), WH_RETRY_AFTER_MAX_MS); /* no overflow */
    /* neither delta-seconds nor a date: ignored, the backoff alone decides */
    assert_int_equal(wh_retry_after_ms("-5", now), -1);
    assert_int_equal(wh_retry_after_ms("+5", now), -1);
    assert_int_equal(wh_retry_after_ms("1.5", now), -1);
    assert_int_equal(wh_retry_after_ms("", now), -1);
    /* Retry-After wins only when it asks for longer than the backoff */
    assert_int_equal(wh_retry_delay_ms(1, 1000, 60000, 0.0, 5000), 5000);
    assert_int_equal(wh_retry_delay_ms(1, 1000, 60000, 0.0, 100), 500);
    assert_int_equal(wh_retry_delay_ms(1, 1000, 60000, 0.0, -1), 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standard_webhooks_vector),
        cmocka_unit_test(test_two_secrets_two_signatures),
        cmocka_unit_test(test_secrets_that_are_not_whsec),
        cmocka_unit_test(test_backoff_doubles_to_its_cap_with_jitter_in_the_upper_half),
        cmocka_unit_test(test_retry_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
