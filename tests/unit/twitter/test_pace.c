/* omni-twitter's pacing (connectors/twitter/tw_pace.c): X's rate-limit headers as recorded, a 429, and
 * backoff with jitter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../connectors/twitter/tw_pace.h"

#define NOW 1665183000000LL /* wall clock ms, 228 s before the recorded reset 1665183228 */

static void test_recorded_headers_impose_nothing(void **state)
{
    (void)state;
    /* tweepy-GET-2-users-783214-mentions.headers.json: 448 calls left in the window. */
    assert_int_equal(tw_ratelimit_wait(200, "448", "1665183228", NULL, NOW), -1);
    /* tweepy-dm.headers.json: 299 left. */
    assert_int_equal(tw_ratelimit_wait(200, "299", "1666920203", NULL, NOW), -1);
    assert_int_equal(tw_ratelimit_wait(200, NULL, NULL, NULL, NOW), -1);
}

static void test_window_used_up_waits_for_reset(void **state)
{
    (void)state;
    assert_int_equal(tw_ratelimit_wait(200, "0", "1665183228", NULL, NOW), 228000);
    assert_int_equal(tw_ratelimit_wait(200, " 0 ", "1665183228\r", NULL, NOW), 228000);
    assert_int_equal(tw_ratelimit_wait(200, "0", "1665182000", NULL, NOW), 0); /* reset passed */
    assert_int_equal(tw_ratelimit_wait(200, "0", NULL, NULL, NOW), -1);        /* no reset: nothing to wait for */
    assert_int_equal(tw_ratelimit_wait(200, "0", "soon", NULL, NOW), -1);
    assert_int_equal(tw_ratelimit_wait(200, "0", "99999999999", NULL, NOW), TW_RESET_MAX_MS); /* skew: capped */
}

static void test_429(void **state)
{
    (void)state;
    assert_int_equal(tw_ratelimit_wait(429, "0", "1665183002", NULL, NOW), 2000);
    assert_int_equal(tw_ratelimit_wait(429, NULL, "1665183228", "5", NOW), 228000); /* the reset wins */
    assert_int_equal(tw_ratelimit_wait(429, NULL, NULL, "5", NOW), 5000);
    assert_int_equal(tw_ratelimit_wait(429, NULL, NULL, NULL, NOW), TW_429_DEFAULT_MS);
    assert_int_equal(tw_ratelimit_wait(429, "0", "1665182000", NULL, NOW), 1000); /* never hammer */
    assert_int_equal(tw_ratelimit_wait(429, "0", "-5", NULL, NOW), TW_429_DEFAULT_MS);
    assert_int_equal(tw_ratelimit_wait(429, NULL, NULL, "999999999", NOW), TW_RESET_MAX_MS);
}

static void test_backoff_doubles_with_jitter(void **state)
{
    (void)state;
    /* Equal jitter: within the upper half of base * 2^(n-1), capped. */
    for (uint32_t r = 0; r < 2000; r += 7) {
        int64_t a = tw_backoff_ms(1, 1000, 60000, r), b = tw_backoff_ms(3, 1000, 60000, r),
                c = tw_backoff_ms(30, 1000, 60000, r);
        assert_true(a >= 500 && a <= 1000);
        assert_true(b >= 2000 && b <= 4000);
        assert_true(c >= 30000 && c <= 60000);
    }
    assert_int_equal(tw_backoff_ms(2, 1000, 60000, 0), 1000);
    assert_int_equal(tw_backoff_ms(2, 1000, 60000, 1000), 2000);
    assert_true(tw_backoff_ms(2, 1000, 60000, 1) != tw_backoff_ms(2, 1000, 60000, 2)); /* the draw matters */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recorded_headers_impose_nothing),
        cmocka_unit_test(test_window_used_up_waits_for_reset),
        cmocka_unit_test(test_429),
        cmocka_unit_test(test_backoff_doubles_with_jitter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
