/* libomni phone.c and phone_countries.c: phone numbers to E.164 and the country tables behind it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity_int.h"
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
    { "07700 900123", "GB", "+447700900123" },
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
    { "0549 123456", "SM", "+3780549123456" },
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
    { "+44 1234", NULL, "too few digits (E.164 numbers have 8 to 15)" },
    { "+44 1234 5678 9012 34", NULL, "too many digits (E.164 numbers have at most 15)" },
    { "+1234567890123456789012345", NULL, "too many digits" },
    { "+1 415 555 010", NULL, "not a North American number (+1 and 10 digits, area code and exchange not "
                             "starting with 0 or 1)" },
    { "+1 015 555 0100", NULL, "not a North American number (+1 and 10 digits, area code and exchange not "
                              "starting with 0 or 1)" },
    { "+1 415 155 0100", NULL, "not a North American number (+1 and 10 digits, area code and exchange not "
                              "starting with 0 or 1)" },
    { "415 555 01000", "US", "not a North American number (+1 and 10 digits, area code and exchange not "
                            "starting with 0 or 1)" },
    { "0044 20 7946 0958", "US", "not a North American number (+1 and 10 digits, area code and exchange "
                                "not starting with 0 or 1)" },   /* 00 is not how the US dials out */
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

/* The country table: big enough, consistent with the calling codes, well-formed prefix lists, and right
 * for the places that most often go wrong. */
static void test_country_table(void **state)
{
    (void)state;
    size_t n = omni__country_count();
    assert_true(n >= 150);
    for (size_t i = 0; i < n; i++) {
        const omni_country_t *c = omni__country_at(i);
        if (!omni__calling_code_known(c->code))
            fail_msg("%s: +%u is not a known calling code", c->iso, c->code);
        assert_ptr_equal(omni__country_find(c->iso), c);   /* unique */
        assert_true(c->exit[0] != '\0');
        for (const char *p = c->trunk; *p; p++)
            assert_true((*p >= '0' && *p <= '9') || (*p == '|' && p[1] != '\0' && p[1] != '|'));
        for (const char *p = c->exit; *p; p++)
            assert_true((*p >= '0' && *p <= '9') || (*p == '|' && p[1] != '\0' && p[1] != '|'));
    }
    assert_null(omni__country_at(n));
    /* All of Europe (EU, EFTA, UK and Crown dependencies, Balkans, the microstates, eastern Europe). */
    static const char *const europe[] = { "AD", "AL", "AT", "AX", "BA", "BE", "BG", "BY", "CH", "CY", "CZ",
        "DE", "DK", "EE", "ES", "FI", "FO", "FR", "GB", "GG", "GI", "GR", "HR", "HU", "IE", "IM", "IS",
        "IT", "JE", "LI", "LT", "LU", "LV", "MC", "MD", "ME", "MK", "MT", "NL", "NO", "PL", "PT", "RO",
        "RS", "RU", "SE", "SI", "SK", "SM", "UA", "VA", "XK" };
    for (size_t i = 0; i < sizeof europe / sizeof europe[0]; i++)
        if (omni__country_find(europe[i]) == NULL)
            fail_msg("%s missing", europe[i]);
    static const struct { const char *iso; unsigned code; const char *trunk, *exit; } spot[] = {
        { "US", 1, "1", "011" }, { "CA", 1, "1", "011" }, { "PR", 1, "1", "011" }, { "GB", 44, "0", "00" },
        { "IT", 39, "", "00" }, { "VA", 39, "", "00" }, { "RU", 7, "8", "810" }, { "KZ", 7, "8", "810" },
        { "HU", 36, "06", "00" }, { "DE", 49, "0", "00" }, { "FR", 33, "0", "00" }, { "ES", 34, "", "00" },
        { "JP", 81, "0", "010" }, { "CN", 86, "0", "00" }, { "IN", 91, "0", "00" }, { "AU", 61, "0", NULL },
        { "BR", 55, "0", NULL }, { "MX", 52, NULL, "00|09" }, { "ZA", 27, "0", "00" }, { "NG", 234, "0", "009" },
        { "SG", 65, "", NULL }, { "HK", 852, "", "00" }, { "XK", 383, "0", "00" }, { "CL", 56, "", "00" },
        { "GR", 30, "", "00" }, { "PL", 48, "", "00" }, { "NO", 47, "", "00" }, { "CI", 225, "", "00" },
    };
    for (size_t i = 0; i < sizeof spot / sizeof spot[0]; i++) {
        const omni_country_t *c = omni__country_find(spot[i].iso);
        assert_non_null(c);
        if (c->code != spot[i].code)
            fail_msg("%s: +%u, want +%u", spot[i].iso, c->code, spot[i].code);
        if (spot[i].trunk != NULL)
            assert_string_equal(c->trunk, spot[i].trunk);
        if (spot[i].exit != NULL)
            assert_string_equal(c->exit, spot[i].exit);
    }
    assert_non_null(omni__country_find("gb"));
    assert_null(omni__country_find("G"));
    assert_null(omni__country_find("GBR"));
    assert_null(omni__country_find(NULL));
    /* calling codes: assigned and unassigned */
    static const unsigned known[] = { 1, 7, 20, 44, 49, 86, 211, 262, 290, 299, 350, 383, 420, 500, 599,
                                      670, 692, 800, 808, 870, 878, 881, 882, 883, 888, 979, 998 };
    static const unsigned unknown[] = { 0, 2, 3, 10, 21, 28, 42, 50, 59, 80, 83, 85, 87, 89, 96, 97, 99,
                                        210, 214, 259, 384, 388, 422, 671, 684, 693, 801, 999, 1000 };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!omni__calling_code_known(known[i]))
            fail_msg("+%u unknown", known[i]);
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        if (omni__calling_code_known(unknown[i]))
            fail_msg("+%u known", unknown[i]);
    assert_int_equal(omni__prefix_match("0011|00|001", "00115551234", false), 4);
    assert_int_equal(omni__prefix_match("8|80", "80291234567", true), 0);
    assert_int_equal(omni__prefix_match("", "0", false), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_country_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
