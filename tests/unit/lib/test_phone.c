/* libomni phone.c and phone_shim.cc: phone numbers to E.164 by libphonenumber, and country codes.
 * Where a case changed when the hand-made table gave way to libphonenumber, the reason is written beside it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni/identity.h"

static const struct { const char *in, *country, *want; } phone_good[] = {
    { "+14155550100", NULL, "+14155550100" },
    { "+1 (415) 555-0100", NULL, "+14155550100" },
    { "+1 415.555.0100", "GB", "+14155550100" },                     /* '+' wins over any default */
    { "tel:+1-415-555-0100", NULL, "+14155550100" },
    { "TEL:+1-415-555-0100;ext=123", NULL, "+14155550100" },
    { "tel:+1-415-555-0100;phone-context=example.com", NULL, "+14155550100" },
    { "+1 415 555 0100 x123", NULL, "+14155550100" },
    { "+1 415 555 0100 ext. 12", NULL, "+14155550100" },
    { "+1 415 555 0100 #12", NULL, "+14155550100" },
    { "+1\xc2\xa0" "415\xc2\xa0" "555\xc2\xa0" "0100", NULL, "+14155550100" },   /* no-break spaces */
    { "(415) 555-0100", "US", "+14155550100" },
    { "(415) 555-0100", "us", "+14155550100" },
    { "1 415 555 0100", "US", "+14155550100" },                      /* NANP trunk 1 */
    { "416-555-0199", "CA", "+14165550199" },
    { "876 555 0123", "JM", "+18765550123" },
    { "011 44 20 7946 0958", "US", "+442079460958" },
    { "011 44 20 7946 0958", NULL, "+442079460958" },
    { "0044 20 7946 0958", NULL, "+442079460958" },
    { "+44 20 7946 0958", NULL, "+442079460958" },
    { "+44 (0)20 7946 0958", NULL, "+442079460958" },                /* the trunk 0 people write */
    { "0044 (0) 20 7946 0958", "GB", "+442079460958" },
    { "020 7946 0958", "GB", "+442079460958" },
    /* was 07700 900123: Ofcom keeps 07700 900xxx for drama, never assigned, and libphonenumber calls it
     * invalid; 07400 is an ordinary mobile range */
    { "07400 123456", "GB", "+447400123456" },
    { "0113 496 0000", "GB", "+441134960000" },                      /* 011 is Leeds, not an exit */
    { "01534 123456", "JE", "+441534123456" },
    { "030 1234567", "DE", "+49301234567" },
    { "030/1234567", "DE", "+49301234567" },
    { "+49 (0)30 1234567", NULL, "+49301234567" },
    { "0049 30 1234567", "FR", "+49301234567" },
    { "06 12 34 56 78", "FR", "+33612345678" },
    { "02 1234 5678", "IT", "+390212345678" },                        /* Italy keeps its 0 */
    { "+39 06 1234 5678", NULL, "+390612345678" },
    { "312 345 6789", "IT", "+393123456789" },
    /* was 0549 123456: San Marino's fixed lines are 0549 8x/9x..., libphonenumber refuses 0549 1... */
    { "0549 912345", "SM", "+3780549912345" },
    { "612 345 678", "ES", "+34612345678" },
    { "91 123 45 67", "ES", "+34911234567" },
    { "912 345 678", "PT", "+351912345678" },
    { "20 12 34 56", "DK", "+4520123456" },
    { "987 65 432", "NO", "+4798765432" },
    { "512 345 678", "PL", "+48512345678" },
    { "06 1 234 5678", "HU", "+3612345678" },
    { "8 (495) 123-45-67", "RU", "+74951234567" },
    { "8 10 44 20 7946 0958", "RU", "+442079460958" },
    { "+7 800 555 35 35", NULL, "+78005553535" },                     /* RU trunk 8 is not dropped */
    { "8 701 123 4567", "KZ", "+77011234567" },
    { "8 029 123-45-67", "BY", "+375291234567" },
    { "8 612 34567", "LT", "+37061234567" },
    { "0 612 34567", "LT", "+37061234567" },
    { "0501 234 567", "UA", "+380501234567" },
    { "0532 123 45 67", "TR", "+905321234567" },
    { "0011 44 20 7946 0958", "AU", "+442079460958" },
    { "02 9876 5432", "AU", "+61298765432" },
    { "0412 345 678", "AU", "+61412345678" },
    { "021 123 4567", "NZ", "+64211234567" },
    { "010 44 20 7946 0958", "JP", "+442079460958" },
    { "03-1234-5678", "JP", "+81312345678" },
    { "090-1234-5678", "JP", "+819012345678" },
    { "001 1 415 555 0100", "KR", "+14155550100" },
    { "010-1234-5678", "KR", "+821012345678" },
    { "138 1234 5678", "CN", "+8613812345678" },
    { "9123 4567", "SG", "+6591234567" },
    { "9123 4567", "HK", "+85291234567" },
    { "098765 43210", "IN", "+919876543210" },
    { "0300 1234567", "PK", "+923001234567" },
    { "0812-3456-789", "ID", "+628123456789" },
    { "081 234 5678", "TH", "+66812345678" },
    { "0917 123 4567", "PH", "+639171234567" },
    { "050-123-4567", "IL", "+972501234567" },
    { "050 123 4567", "AE", "+971501234567" },
    { "11 98765-4321", "BR", "+5511987654321" },
    { "011 98765-4321", "BR", "+5511987654321" },
    { "0021 1 415 555 0100", "BR", "+14155550100" },                  /* exit 00 plus carrier 21 */
    { "55 1234 5678", "MX", "+525512345678" },
    { "01 55 1234 5678", "MX", "+525512345678" },
    { "011 1234-5678", "AR", "+541112345678" },
    { "9 8765 4321", "CL", "+56987654321" },
    { "300 123 4567", "CO", "+573001234567" },
    { "082 123 4567", "ZA", "+27821234567" },
    { "0803 123 4567", "NG", "+2348031234567" },
    { "0712 345678", "KE", "+254712345678" },
    { "010 1234 5678", "EG", "+201012345678" },
    { "07 07 12 34 56", "CI", "+2250707123456" },                     /* Ivory Coast keeps its 0 */
    { "+225 07 07 12 34 56", NULL, "+2250707123456" },
    { "+800 1234 5678", NULL, "+80012345678" },                       /* a global service code */
    { "+1 415 555 0100 ext 7", NULL, "+14155550100" },
    /* National formats people write, which the hand-made table did not all know. */
    { "+33 0 6 12 34 56 78", NULL, "+33612345678" },                  /* trunk 0 after the code */
    { "0 6 12 34 56 78", "fr", "+33612345678" },
    { "06 1234 5678", "IT", "+390612345678" },                        /* Italy: the 0 is the number's */
    { "0039 06 1234 5678", "IT", "+390612345678" },
    { "+39 0612345678", "DE", "+390612345678" },
    { "011 15-1234-5678", "AR", "+5491112345678" },                   /* Argentina: mobile 15 -> 9 */
    { "0911 1234 5678", "AR", "+5491112345678" },                     /* ... or the 9 written */
    { "+54 9 11 1234 5678", NULL, "+5491112345678" },
    { "+54 11 1234 5678", NULL, "+541112345678" },                    /* a fixed line has no 9 */
    { "0912 345 6789", "IR", "+989123456789" },                       /* Iran: 0 9xx mobiles */
    { "+98 0912 345 6789", NULL, "+989123456789" },
    { "8 612 345 67", "LT", "+37061234567" },                         /* Lithuania: trunk 8 */
    { "+370 8 612 34567", NULL, "+37061234567" },
    { "8 5 212 3456", "LT", "+37052123456" },                         /* Vilnius, trunk 8 */
    { "8 10 44 20 7946 0958", "KZ", "+442079460958" },                /* 810 out of Kazakhstan */
    { "0011 1 415 555 0100", "AU", "+14155550100" },
    { "+383 44 123 456", NULL, "+38344123456" },                      /* Kosovo */
};

static const struct { const char *in, *country, *why; } phone_bad[] = {
    { "", NULL, "no digits" },
    { "  ", "US", "no digits" },
    { "tel:", NULL, "no digits" },
    { "abc", "US", "has a character that is not a digit or a separator" },
    { "1-800-FLOWERS", "US", "has a character that is not a digit or a separator" },
    { "x123", "US", "has a character that is not a digit or a separator" },
    { "+44 20 +7946 0958", NULL, "'+' in the middle of the number" },
    { "++44 20 7946 0958", NULL, "'+' in the middle of the number" },
    { "415 555 0100", NULL, "national number without a default country" },
    { "415 555 0100", "ZZ", "unknown default country" },
    { "415 555 0100", "USA", "unknown default country" },
    { "415 555 0100", "", "unknown default country" },
    { "+999 1234 5678", NULL, "unknown country calling code" },
    { "+28 1234 5678", NULL, "unknown country calling code" },
    { "+0 1234 5678", NULL, "unknown country calling code" },
    /* Lengths are now each country's, not E.164's 8..15, so the reasons name the country's rule. */
    { "+44 12", NULL, "too few digits" },
    { "+44 1234 5678 9012 34", NULL, "too many digits for its country" },
    { "+1234567890123456789012345", NULL, "too many digits" },
    { "+1 415 555 010", NULL, "too few digits for its country" },
    /* was "not a North American number": libphonenumber's ranges catch the same slips, in every country */
    { "+1 015 555 0100", NULL, "not a number in use in its country" },
    { "+1 415 155 0100", NULL, "not a number in use in its country" },
    { "415 555 01000", "US", "too many digits for its country" },
    { "0044 20 7946 0958", "US", "too many digits for its country" },   /* 00 is not how the US dials out */
    { "07700 900123", "GB", "not a number in use in its country" },     /* Ofcom's drama range */
    { "555 0100", "US", "a local number without its area code" },
    { "+882 1234 5678", NULL, "not a number in use in its country" },
    { "12 345 678", NULL, "national number without a default country" },
    { "415 555 0100", "UK", "unknown default country" },
};

static void test_phone(void **state)
{
    (void)state;
    char out[OMNI_IDENTITY_MAX];
    for (size_t i = 0; i < sizeof phone_good / sizeof phone_good[0]; i++) {
        const char *why = NULL;
        if (omni_phone_e164(phone_good[i].in, phone_good[i].country, out, sizeof out, &why) != 0)
            fail_msg("refused [%s] in %s: %s", phone_good[i].in, phone_good[i].country, why);
        if (strcmp(out, phone_good[i].want) != 0)
            fail_msg("[%s] in %s -> %s, want %s", phone_good[i].in, phone_good[i].country, out,
                     phone_good[i].want);
        char again[OMNI_IDENTITY_MAX];   /* idempotent, whatever the default country */
        assert_int_equal(omni_phone_e164(out, "DE", again, sizeof again, &why), 0);
        assert_string_equal(again, out);
    }
    for (size_t i = 0; i < sizeof phone_bad / sizeof phone_bad[0]; i++) {
        const char *why = NULL;
        if (omni_phone_e164(phone_bad[i].in, phone_bad[i].country, out, sizeof out, &why) == 0)
            fail_msg("accepted [%s] in %s as %s", phone_bad[i].in, phone_bad[i].country, out);
        if (why == NULL || strncmp(why, phone_bad[i].why, strlen(phone_bad[i].why)) != 0)
            fail_msg("[%s]: why [%s], want [%s]", phone_bad[i].in, why, phone_bad[i].why);
    }
    const char *why;
    assert_int_equal(omni_phone_e164(NULL, "US", out, sizeof out, &why), -1);
    assert_string_equal(why, "no digits");
    char small[12];
    assert_int_equal(omni_phone_e164("+14155550100", NULL, small, sizeof small, &why), -1);
    assert_string_equal(why, "output buffer too small");
    char exact[13];
    assert_int_equal(omni_phone_e164("+14155550100", NULL, exact, sizeof exact, NULL), 0);
}

/* Answers are remembered per number and region (phone.c's cache): asking again, or the same digits in
 * another country, must give what a first reading gives. */
static void test_repeated_readings(void **state)
{
    (void)state;
    char out[OMNI_IDENTITY_MAX];
    const char *why;
    for (int round = 0; round < 3; round++) {
        assert_int_equal(omni_phone_e164("020 7946 0958", "GB", out, sizeof out, &why), 0);
        assert_string_equal(out, "+442079460958");
        assert_int_equal(omni_phone_e164("020 7946 0958", "DE", out, sizeof out, &why), -1); /* no such range */
        assert_int_equal(omni_phone_e164("06 12 34 56 78", "FR", out, sizeof out, &why), 0);
        assert_string_equal(out, "+33612345678");
        assert_int_equal(omni_phone_e164("06 12 34 56 78", "NL", out, sizeof out, &why), 0);
        assert_string_equal(out, "+31612345678");
        assert_int_equal(omni_phone_e164("+1 415 155 0100", NULL, out, sizeof out, &why), -1);
        assert_string_equal(why, "not a number in use in its country (no such range in libphonenumber's data)");
        char small[12];
        assert_int_equal(omni_phone_e164("+14155550100", NULL, small, sizeof small, &why), -1);
        assert_string_equal(why, "output buffer too small");
    }
    /* Many numbers, more than the cache holds: each still reads as itself. */
    for (int i = 0; i < 20000; i++) {
        char in[32], want[32];
        snprintf(in, sizeof in, "415 555 %04d", i % 10000);
        snprintf(want, sizeof want, "+1415555%04d", i % 10000);
        assert_int_equal(omni_phone_e164(in, "US", out, sizeof out, &why), 0);
        assert_string_equal(out, want);
    }
}

/* Country codes as configs write them: the one check the router and every connector use. */
static void test_country_parse(void **state)
{
    (void)state;
    char out[3], why[256];
    static const struct { const char *in, *want; } good[] = {
        { "US", "US" }, { "gb", "GB" }, { "De", "DE" }, { "XK", "XK" }, { "JE", "JE" }, { "VA", "VA" },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (omni_country_parse(good[i].in, out, why, sizeof why) != 0)
            fail_msg("refused %s: %s", good[i].in, why);
        assert_string_equal(out, good[i].want);
    }
    static const struct { const char *in, *why; } bad[] = {
        { "UK", "\"UK\" is not an ISO 3166 alpha-2 country code (did you mean GB?)" },
        { "uk", "\"uk\" is not an ISO 3166 alpha-2 country code (did you mean GB?)" },
        { "EL", "\"EL\" is not an ISO 3166 alpha-2 country code (did you mean GR?)" },
        { "ZZ", "\"ZZ\" is not an ISO 3166 alpha-2 country code with a telephone numbering plan (two letters, "
                "e.g. US, GB, DE)" },
        { "USA", "\"USA\" is not" }, { "U", "\"U\" is not" }, { "", "\"\" is not" }, { "001", "\"001\" is not" },
        { "U1", "\"U1\" is not" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (omni_country_parse(bad[i].in, out, why, sizeof why) == 0)
            fail_msg("accepted %s as %s", bad[i].in, out);
        if (strncmp(why, bad[i].why, strlen(bad[i].why)) != 0)
            fail_msg("%s: why [%s], want [%s]", bad[i].in, why, bad[i].why);
    }
    assert_int_equal(omni_country_parse(NULL, out, why, sizeof why), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_repeated_readings),
        cmocka_unit_test(test_country_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
