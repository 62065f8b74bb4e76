/* libomni identity.c: email and numeric identities, identity kinds and keys. Phone numbers are in
 * test_phone.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni/identity.h"

typedef struct { const char *in, *want; } pair_t;          /* want: the normalized value */
typedef struct { const char *in, *why; } refusal_t;         /* why: the exact reason */

static const pair_t email_good[] = {
    { "ann.lee@example.com", "ann.lee@example.com" },
    { "  Ann.Lee@Example.COM \t", "ann.lee@example.com" },
    { "Ann Lee <Ann.Lee@Example.COM>", "ann.lee@example.com" },
    { "\"Lee, Ann\" <ann@example.com>", "ann@example.com" },
    { "\"A <x@y.z>\" <ann@example.com>", "ann@example.com" },     /* '<' and '@' inside the quoted name */
    { "<ann@example.com>", "ann@example.com" },
    { "Ann < ann@example.com >", "ann@example.com" },
    { "mailto:Ann@Example.com", "ann@example.com" },
    { "ann+support@example.co.uk", "ann+support@example.co.uk" },
    { "ann@example.com.", "ann@example.com" },
    { "!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com" },
    { "\"john doe\"@Example.com", "\"john doe\"@example.com" },
    { "\"a@b\"@example.com", "\"a@b\"@example.com" },
    { "ANN@B\xc3\x9c" "CHER.DE", "ann@xn--bcher-kva.de" },                 /* BÜCHER.DE */
    { "ann@b\xc3\xbc" "cher.de", "ann@xn--bcher-kva.de" },                 /* bücher.de */
    { "info@fa\xc3\x9f.de", "info@xn--fa-hia.de" },                      /* faß.de: non-transitional */
    { "user@\xe4\xbe\x8b\xe3\x81\x88.jp", "user@xn--r8jz45g.jp" },         /* 例え.jp */
    { "Pel\xc3\xa9@Example.COM", "pel\xc3\xa9@example.com" },              /* RFC 6531 local part */
    { "PEL\xc3\x89@example.com", "pel\xc3\x89@example.com" },              /* É: lowercased in ASCII only */
    { "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
      "\xe7\x94\xa8\xe6\x88\xb7@xn--fsqu00a.xn--4rr70v" },                 /* 用户@例子.广告 */
    { "a@b.co", "a@b.co" },
    { "a@1.example", "a@1.example" },
    { "a@x-y.example", "a@x-y.example" },
};

static const refusal_t email_bad[] = {
    { "", "empty address" },
    { "   ", "empty address" },
    { "Ann <>", "empty address" },
    { "ann", "no '@'" },
    { "ann(at)example.com", "no '@'" },
    { "\"unclosed@example.com", "no '@'" },
    { "ann@b@example.com", "more than one '@'" },
    { "@example.com", "the local part (before '@') is empty" },
    { "ann@", "no domain after '@'" },
    { "ann@.", "no domain after '@'" },
    { "ann@example", "the domain has no dot" },
    { ".ann@example.com", "the local part has a dot at its start, its end or next to another" },
    { "ann.@example.com", "the local part has a dot at its start, its end or next to another" },
    { "a..b@example.com", "the local part has a dot at its start, its end or next to another" },
    { "ann lee@example.com", "the local part has a character not allowed in an address" },
    { "ann,lee@example.com", "the local part has a character not allowed in an address" },
    { "\"a\"b@example.com", "the local part has text after its closing quote" },
    { "ann@exa mple.com", "the domain has a character other than letters, digits, '-' and '.'" },
    { "ann@exa_mple.com", "the domain has a character other than letters, digits, '-' and '.'" },
    { "ann@-example.com", "a domain label starts or ends with '-'" },
    { "ann@example-.com", "a domain label starts or ends with '-'" },
    { "ann@example..com", "the domain has an empty label" },
    { "ann@.example.com", "the domain has an empty label" },
    { "ann@[192.0.2.1]", "a domain literal ([192.0.2.1]) is not accepted" },
    { "ann@192.0.2.1", "the domain ends in an all-digit label (an IP address is not accepted)" },
    { "Ann <ann@example.com", "'<' without a closing '>' at the end" },
    { "ann@example.com>", "'>' without '<'" },
    { "Ann <ann@example.com> x", "'<' without a closing '>' at the end" },
    { "ann\x01@example.com", "has a control character" },
    { "ann@example.com\x7f", "has a control character" },
    { "ann@ex\xff" "ample.com", "not valid UTF-8" },
    { "ann@\xe2\x98\x83.com", "the domain is not a valid internationalized domain name" },   /* ☃ */
    { "ann@\xcc\x81x.com", "the domain is not a valid internationalized domain name" },
    { "ann@\xc3\xbc-.de", "the domain is not a valid internationalized domain name" },
};

static void test_email(void **state)
{
    (void)state;
    char out[OMNI_IDENTITY_MAX];
    for (size_t i = 0; i < sizeof email_good / sizeof email_good[0]; i++) {
        const char *why = NULL;
        if (omni_email_normalize(email_good[i].in, out, sizeof out, &why) != 0)
            fail_msg("refused [%s]: %s", email_good[i].in, why);
        if (strcmp(out, email_good[i].want) != 0)
            fail_msg("[%s] -> [%s], want [%s]", email_good[i].in, out, email_good[i].want);
        /* normalizing is idempotent: the output is its own normal form */
        char again[OMNI_IDENTITY_MAX];
        assert_int_equal(omni_email_normalize(out, again, sizeof again, &why), 0);
        assert_string_equal(again, out);
    }
    for (size_t i = 0; i < sizeof email_bad / sizeof email_bad[0]; i++) {
        const char *why = NULL;
        if (omni_email_normalize(email_bad[i].in, out, sizeof out, &why) == 0)
            fail_msg("accepted [%s] as [%s]", email_bad[i].in, out);
        if (why == NULL || strcmp(why, email_bad[i].why) != 0)
            fail_msg("[%s]: why [%s], want [%s]", email_bad[i].in, why, email_bad[i].why);
    }
    const char *why;
    assert_int_equal(omni_email_normalize(NULL, out, sizeof out, &why), -1);
    assert_int_equal(omni_email_normalize("a@b.c", out, sizeof out, NULL), 0);   /* why may be NULL */
    assert_int_equal(omni_email_normalize("a@b", out, sizeof out, NULL), -1);
}

/* Length limits at their boundaries: local part 64, label 63, address 254. */
static void test_email_lengths(void **state)
{
    (void)state;
    char in[600], out[OMNI_IDENTITY_MAX];
    const char *why;
    char l64[65], l63[64];
    memset(l64, 'a', 64); l64[64] = '\0';
    memset(l63, 'b', 63); l63[63] = '\0';
    snprintf(in, sizeof in, "%s@example.com", l64);
    assert_int_equal(omni_email_normalize(in, out, sizeof out, &why), 0);
    snprintf(in, sizeof in, "%sa@example.com", l64);
    assert_int_equal(omni_email_normalize(in, out, sizeof out, &why), -1);
    assert_string_equal(why, "the local part (before '@') is longer than 64 bytes");
    snprintf(in, sizeof in, "a@%s.com", l63);
    assert_int_equal(omni_email_normalize(in, out, sizeof out, &why), 0);
    snprintf(in, sizeof in, "a@%sb.com", l63);
    assert_int_equal(omni_email_normalize(in, out, sizeof out, &why), -1);
    assert_string_equal(why, "a domain label is longer than 63 bytes");
    /* 64 + 1 + 63 + 1 + 63 + 1 + 61 = 254 */
    char l61[62];
    memset(l61, 'c', 61); l61[61] = '\0';
    snprintf(in, sizeof in, "%s@%s.%s.%s", l64, l63, l63, l61);
    assert_int_equal(strlen(in), 254);
    assert_int_equal(omni_email_normalize(in, out, sizeof out, &why), 0);
    assert_string_equal(out, in);
    snprintf(in, sizeof in, "%s@%s.%s.%sc", l64, l63, l63, l61);
    assert_int_equal(omni_email_normalize(in, out, sizeof out, &why), -1);
    assert_string_equal(why, "longer than 254 bytes");
    char small[8];
    assert_int_equal(omni_email_normalize("ann@example.com", small, sizeof small, &why), -1);
    assert_string_equal(why, "output buffer too small");
}

static void test_numeric_id(void **state)
{
    (void)state;
    static const pair_t good[] = { { "12345", "12345" }, { " 783214 ", "783214" }, { "1", "1" },
                                   { "12345678901234567890123456789012", "12345678901234567890123456789012" } };
    static const refusal_t bad[] = {
        { "", "empty id" }, { "   ", "empty id" }, { "0", "a leading zero" }, { "0123", "a leading zero" },
        { "12a", "not all digits" }, { "-1", "not all digits" }, { "+1", "not all digits" },
        { "1 2", "not all digits" }, { "@jack", "not all digits" }, { "1.0", "not all digits" },
        { "\xef\xbc\x91\xef\xbc\x92", "not all digits" },                     /* fullwidth １２ */
        { "123456789012345678901234567890123", "more than 32 digits" },
    };
    char out[64];
    const char *why;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(omni_numeric_id(good[i].in, out, sizeof out, &why), 0);
        assert_string_equal(out, good[i].want);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (omni_numeric_id(bad[i].in, out, sizeof out, &why) == 0)
            fail_msg("accepted [%s]", bad[i].in);
        if (strcmp(why, bad[i].why) != 0)
            fail_msg("[%s]: why [%s], want [%s]", bad[i].in, why, bad[i].why);
    }
    assert_int_equal(omni_numeric_id(NULL, out, sizeof out, &why), -1);
    assert_string_equal(why, "empty id");
    assert_int_equal(omni_numeric_id("12345", out, 5, &why), -1);
    assert_string_equal(why, "output buffer too small");
    assert_int_equal(omni_numeric_id("12345", out, 6, &why), 0);
}

static void test_identity_kind(void **state)
{
    (void)state;
    static const pair_t cases[] = { { "email", "email" }, { "sms", "phone" }, { "phone", "phone" },
                                    { "twitter", "twitter" }, { "facebook", "facebook" }, { "x-line", "x-line" },
                                    { "fax", NULL }, { "x-", NULL }, { "Email", NULL }, { "", NULL } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *k = omni_identity_kind(cases[i].in);
        if (cases[i].want == NULL)
            assert_null(k);
        else
            assert_string_equal(k, cases[i].want);
    }
    assert_null(omni_identity_kind(NULL));
}

static void test_identity_key(void **state)
{
    (void)state;
    static const struct { const char *channel, *raw, *country, *want; } good[] = {
        { "sms", "(415) 555-0100", "US", "phone:+14155550100" },
        { "phone", "+1 415 555 0100", NULL, "phone:+14155550100" },
        { "email", "Ann <Ann@Example.com>", NULL, "email:ann@example.com" },
        { "twitter", "783214", NULL, "twitter:783214" },
        { "facebook", "100001234567890", NULL, "facebook:100001234567890" },
        { "x-line", "  U4af4980629  ", NULL, "x-line:U4af4980629" },
        { "x-web", "Session 42/\xc3\xa9", NULL, "x-web:Session 42/\xc3\xa9" },
    };
    static const struct { const char *channel, *raw, *why; } bad[] = {
        { "fax", "123", "unknown channel" },
        { NULL, "123", "unknown channel" },
        { "twitter", "@jack", "not all digits" },
        { "email", "ann", "no '@'" },
        { "sms", "415 555 0100", "national number without a default country" },
        { "x-line", "", "empty id" },
        { "x-line", "a\x01" "b", "has a control character" },
        { "x-line", "a\xc2\x85" "b", "has a control character" },
        { "x-line", "a\xff", "not valid UTF-8" },
    };
    char out[OMNI_IDENTITY_MAX];
    const char *why;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (omni_identity_key(good[i].channel, good[i].raw, good[i].country, out, sizeof out, &why) != 0)
            fail_msg("%s [%s]: %s", good[i].channel, good[i].raw, why);
        assert_string_equal(out, good[i].want);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (omni_identity_key(bad[i].channel, bad[i].raw, NULL, out, sizeof out, &why) == 0)
            fail_msg("accepted %s [%s]", bad[i].channel, bad[i].raw);
        assert_string_equal(why, bad[i].why);
    }
    /* the longest keys fit OMNI_IDENTITY_MAX */
    char chan[40] = "x-", val[300];
    memset(chan + 2, 'z', 32); chan[34] = '\0';
    memset(val, 'v', 256); val[256] = '\0';
    assert_int_equal(omni_identity_key(chan, val, NULL, out, sizeof out, &why), 0);
    assert_int_equal(strlen(out), 34 + 1 + 256);
    val[256] = 'v'; val[257] = '\0';
    assert_int_equal(omni_identity_key(chan, val, NULL, out, sizeof out, &why), -1);
    assert_string_equal(why, "longer than 256 bytes");
    char small[10];
    assert_int_equal(omni_identity_key("twitter", "123456789", NULL, small, sizeof small, &why), -1);
    assert_string_equal(why, "output buffer too small");
}

static void test_parse_key(void **state)
{
    (void)state;
    static const struct { const char *in, *country, *want; } good[] = {
        { "email:Ann@Example.com", NULL, "email:ann@example.com" },
        { "Email:ann@example.com", NULL, "email:ann@example.com" },
        { " ann@example.com ", NULL, "email:ann@example.com" },
        { "Ann <ann@example.com>", NULL, "email:ann@example.com" },
        { "mailto:ann@example.com", NULL, "email:ann@example.com" },
        { "phone:+1 415 555 0100", NULL, "phone:+14155550100" },
        { "+1 415 555 0100", NULL, "phone:+14155550100" },
        { "(415) 555-0100", "US", "phone:+14155550100" },
        { "020 7946 0958", "GB", "phone:+442079460958" },
        { "tel:+1-415-555-0100", NULL, "phone:+14155550100" },
        { "sms:+14155550100", NULL, "phone:+14155550100" },
        { "twitter:783214", NULL, "twitter:783214" },
        { "facebook:100001", NULL, "facebook:100001" },
        { "x-line:U1", NULL, "x-line:U1" },
        { "X-Line:U1", NULL, "x-line:U1" },
        { "x-web:a:b", NULL, "x-web:a:b" },   /* only the first ':' separates the kind */
    };
    static const struct { const char *in, *country, *why; } bad[] = {
        { "", NULL, "empty identity" },
        { "   ", NULL, "empty identity" },
        { "skype:ann", NULL, "unknown identity kind (email, phone, twitter, facebook or x-<name>)" },
        { "ann", NULL, "neither an address nor a number: write it as <kind>:<value>" },
        { "twitter:@jack", NULL, "not all digits" },
        { "phone:abc", NULL, "has a character that is not a digit or a separator" },
        { "(415) 555-0100", NULL, "national number without a default country" },
        { "email:ann", NULL, "no '@'" },
    };
    char out[OMNI_IDENTITY_MAX];
    const char *why;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (omni_identity_parse_key(good[i].in, good[i].country, out, sizeof out, &why) != 0)
            fail_msg("[%s]: %s", good[i].in, why);
        if (strcmp(out, good[i].want) != 0)
            fail_msg("[%s] -> [%s], want [%s]", good[i].in, out, good[i].want);
        /* a key parses to itself */
        char again[OMNI_IDENTITY_MAX];
        assert_int_equal(omni_identity_parse_key(out, NULL, again, sizeof again, &why), 0);
        assert_string_equal(again, out);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (omni_identity_parse_key(bad[i].in, bad[i].country, out, sizeof out, &why) == 0)
            fail_msg("accepted [%s] as [%s]", bad[i].in, out);
        if (strcmp(why, bad[i].why) != 0)
            fail_msg("[%s]: why [%s], want [%s]", bad[i].in, why, bad[i].why);
    }
    assert_int_equal(omni_identity_parse_key(NULL, NULL, out, sizeof out, &why), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_email_lengths),
        cmocka_unit_test(test_numeric_id),
        cmocka_unit_test(test_identity_kind),
        cmocka_unit_test(test_identity_key),
        cmocka_unit_test(test_parse_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
