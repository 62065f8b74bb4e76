/* Near-duplicate fingerprints: copies with different spacing, case, punctuation or a few changed
 * words stay close; different messages do not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fold.h"

static const char *base = "Hello, my order #1042 has not arrived yet, can you check where it is please?";

static void test_near_copies_are_close(void **state)
{
    (void)state;
    const char *copies[] = {
        "hello my order 1042 has not arrived yet can you check where it is please",
        "HELLO, MY ORDER #1042 HAS NOT ARRIVED YET, CAN YOU CHECK WHERE IT IS PLEASE?",
        "Hello,   my order #1042 has not arrived yet,\ncan you check where it is please?!",
        "Hello, my order #1042 has not arrived yet, could you check where it is please?",
    };
    uint64_t h = fold_hash(base);
    for (size_t i = 0; i < sizeof copies / sizeof *copies; i++)
        assert_true(fold_distance(h, fold_hash(copies[i])) <= fold_max_bits(90));
}

static void test_different_messages_are_far(void **state)
{
    (void)state;
    const char *others[] = {
        "I was charged twice for invoice INV-889, please refund one of the payments.",
        "Your app crashes every time I try to log in on my Android phone since yesterday.",
        "Do you ship to Canada, and how long does delivery take to Montreal usually?",
    };
    uint64_t h = fold_hash(base);
    for (size_t i = 0; i < sizeof others / sizeof *others; i++)
        assert_true(fold_distance(h, fold_hash(others[i])) > fold_max_bits(90));
}

static void test_short_texts_never_fold(void **state)
{
    (void)state;
    assert_int_equal(fold_hash("ok"), 0);
    assert_int_equal(fold_hash("Thanks!!"), 0);
    assert_int_equal(fold_hash(""), 0);
    assert_int_equal(fold_hash(NULL), 0);
    assert_int_not_equal(fold_hash("Где мой заказ номер 1042?"), 0); /* other scripts count */
    /* characters, not bytes: 7 and 6 characters in 14 and 18 bytes */
    assert_int_equal(fold_hash("Спасибо"), 0);
    assert_int_equal(fold_hash("谢谢你的帮助"), 0);
    assert_int_equal(fold_hash("@shop @support thanks"), 0); /* the handles are not the text */
}

/* A tweet names the account it is written to; the same words by email are the same question. */
static void test_leading_handles_are_not_the_text(void **state)
{
    (void)state;
    const char *mail = "My parcel 7781 has not arrived, can you check?";
    assert_int_equal(fold_hash("@shop My parcel 7781 has not arrived, can you check?"), fold_hash(mail));
    assert_int_equal(fold_hash("  @shop_help @Support2\n My parcel 7781 has not arrived, can you check?"),
                     fold_hash(mail));
    /* only leading ones: a handle inside the text is part of it */
    assert_int_not_equal(fold_hash("My parcel 7781 has not arrived, can you check? @shop"), fold_hash(mail));
}

static void test_thresholds(void **state)
{
    (void)state;
    assert_int_equal(fold_max_bits(100), 0);
    assert_int_equal(fold_max_bits(90), 6);
    assert_int_equal(fold_max_bits(10), 32);
    assert_int_equal(fold_distance(0xF0, 0x0F), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_near_copies_are_close),
        cmocka_unit_test(test_different_messages_are_far),
        cmocka_unit_test(test_short_texts_never_fold),
        cmocka_unit_test(test_leading_handles_are_not_the_text),
        cmocka_unit_test(test_thresholds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
