/* Country calling codes and per-country dialling prefixes for phone number normalization.
 * Sources: ITU-T E.164 assigned codes, as listed in Google libphonenumber's CountryCodeToRegionCodeMap;
 * trunk and international prefixes after libphonenumber's PhoneNumberMetadata.xml, reduced to the
 * literal prefixes people actually write. A country missing here can still be reached with "+"; it
 * only cannot be a router's default country. */
#include "identity_int.h"

#include <string.h>

/* Every assigned country calling code. They form a prefix-free code, so reading 1, 2, then 3 digits
 * and stopping at the first hit splits any E.164 number correctly. */
static const unsigned short calling_codes[] = {
    1, 7, 20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56,
    57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
    211, 212, 213, 216, 218, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234,
    235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254,
    255, 256, 257, 258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290, 291, 297, 298, 299,
    350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 370, 371, 372, 373, 374, 375, 376, 377, 378, 380,
    381, 382, 383, 385, 386, 387, 389, 420, 421, 423,
    500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 590, 591, 592, 593, 594, 595, 596, 597, 598, 599,
    670, 672, 673, 674, 675, 676, 677, 678, 679, 680, 681, 682, 683, 685, 686, 687, 688, 689, 690, 691,
    692, 800, 808, 850, 852, 853, 855, 856, 870, 878, 880, 881, 882, 883, 886, 888,
    960, 961, 962, 963, 964, 965, 966, 967, 968, 970, 971, 972, 973, 974, 975, 976, 977, 979, 992, 993,
    994, 995, 996, 998,
};

/* North America shares +1 and dials 1 nationally and 011 abroad (the NANP). */
#define NANP(cc) { cc, 1, "1", "011" }
/* The most common rule elsewhere: trunk 0, international 00. */
#define STD(cc, code) { cc, code, "0", "00" }
/* No trunk prefix: a leading 0 is part of the number (Italy) or numbers never start with 0. */
#define NOTRUNK(cc, code) { cc, code, "", "00" }

static const omni_country_t countries[] = {
    /* Europe */
    NOTRUNK("AD", 376), STD("AL", 355), STD("AT", 43), { "AX", 358, "0", "00|990|994|999" },
    STD("BA", 387), STD("BE", 32), STD("BG", 359), { "BY", 375, "80|8|0", "810" }, STD("CH", 41),
    NOTRUNK("CY", 357), NOTRUNK("CZ", 420), STD("DE", 49), NOTRUNK("DK", 45), NOTRUNK("EE", 372),
    NOTRUNK("ES", 34), { "FI", 358, "0", "00|990|994|999" }, NOTRUNK("FO", 298), STD("FR", 33),
    STD("GB", 44), STD("GG", 44), NOTRUNK("GI", 350), NOTRUNK("GL", 299), NOTRUNK("GR", 30),
    STD("HR", 385), { "HU", 36, "06", "00" }, STD("IE", 353), STD("IM", 44), NOTRUNK("IS", 354),
    NOTRUNK("IT", 39), STD("JE", 44), STD("LI", 423), { "LT", 370, "0|8", "00" }, NOTRUNK("LU", 352),
    NOTRUNK("LV", 371), STD("MC", 377), STD("MD", 373), STD("ME", 382), STD("MK", 389),
    NOTRUNK("MT", 356), STD("NL", 31), NOTRUNK("NO", 47), NOTRUNK("PL", 48), NOTRUNK("PT", 351),
    STD("RO", 40), STD("RS", 381), { "RU", 7, "8", "810" }, STD("SE", 46), STD("SI", 386),
    NOTRUNK("SJ", 47), STD("SK", 421), NOTRUNK("SM", 378), STD("UA", 380), NOTRUNK("VA", 39),
    STD("XK", 383),
    /* Caucasus and Central Asia */
    STD("AM", 374), STD("AZ", 994), STD("GE", 995), STD("KG", 996), { "KZ", 7, "8", "810" },
    { "TJ", 992, "8", "810" }, { "TM", 993, "8", "810" }, { "UZ", 998, "8", "810|00" },
    /* North America and the Caribbean (NANP) */
    NANP("US"), NANP("CA"), NANP("AG"), NANP("AI"), NANP("AS"), NANP("BB"), NANP("BM"), NANP("BS"),
    NANP("DM"), NANP("DO"), NANP("GD"), NANP("GU"), NANP("JM"), NANP("KN"), NANP("KY"), NANP("LC"),
    NANP("MP"), NANP("MS"), NANP("PR"), NANP("SX"), NANP("TC"), NANP("TT"), NANP("VC"), NANP("VG"),
    NANP("VI"),
    /* Latin America */
    { "AR", 54, "0", "00" }, { "BO", 591, "0", "00" },
    /* Brazil dials 00 plus a carrier; a bare 00 is kept as a fallback for numbers copied from abroad. */
    { "BR", 55, "0", "0012|0014|0015|0021|0022|0023|0025|0031|0041|0043|0055|0065|0099|00" },
    NOTRUNK("BZ", 501), NOTRUNK("CL", 56), { "CO", 57, "0", "00414|00444|00456|005|007|009" },
    NOTRUNK("CR", 506), { "CU", 53, "0", "119" }, STD("EC", 593), NOTRUNK("GT", 502), NOTRUNK("HN", 504),
    NOTRUNK("HT", 509), { "MX", 52, "044|045|01|02", "00|09" }, NOTRUNK("NI", 505), NOTRUNK("PA", 507),
    STD("PE", 51), STD("PY", 595), NOTRUNK("SV", 503), STD("UY", 598), STD("VE", 58),
    /* Asia */
    STD("AF", 93), STD("BD", 880), NOTRUNK("BN", 673), STD("CN", 86), NOTRUNK("HK", 852),
    { "ID", 62, "0", "001|007|008|009" }, STD("IN", 91), { "JP", 81, "0", "010" },
    { "KH", 855, "0", "001|004|005|006|007|008|009" }, { "KR", 82, "0", "00700|001|002|005|006|008|009" },
    STD("LA", 856), STD("LK", 94), NOTRUNK("MO", 853), STD("MM", 95), { "MN", 976, "0", "001" },
    NOTRUNK("MV", 960), STD("MY", 60), STD("NP", 977), STD("PH", 63), STD("PK", 92),
    { "SG", 65, "", "001|002|008|012|013|018|019" }, { "TH", 66, "0", "001|002|003|004|005|006|007|008|009" },
    { "TW", 886, "0", "002|005|006|007|009|019" }, STD("VN", 84),
    /* Middle East */
    STD("AE", 971), NOTRUNK("BH", 973), { "IL", 972, "0", "00|012|013|014|015|016|017|018|019" },
    STD("IQ", 964), STD("IR", 98), STD("JO", 962), NOTRUNK("KW", 965), STD("LB", 961),
    NOTRUNK("OM", 968), STD("PS", 970), NOTRUNK("QA", 974), STD("SA", 966), STD("SY", 963),
    STD("TR", 90), STD("YE", 967),
    /* Oceania */
    { "AU", 61, "0", "0011|0014|0015|0016|0018|0019" }, { "CC", 61, "0", "0011|0014|0015|0016|0018|0019" },
    { "CX", 61, "0", "0011|0014|0015|0016|0018|0019" }, NOTRUNK("FJ", 679), { "NZ", 64, "0", "0161|00" },
    NOTRUNK("PG", 675), NOTRUNK("WS", 685),
    /* Africa */
    NOTRUNK("AO", 244), NOTRUNK("BF", 226), NOTRUNK("BJ", 229), NOTRUNK("BW", 267), STD("CD", 243),
    NOTRUNK("CI", 225), NOTRUNK("CM", 237), NOTRUNK("CV", 238), STD("DZ", 213), STD("EG", 20),
    STD("ET", 251), STD("GH", 233), NOTRUNK("GM", 220), { "KE", 254, "0", "000|006|007" },
    STD("LY", 218), STD("MA", 212), STD("MG", 261), NOTRUNK("ML", 223),
    { "MU", 230, "", "00|020|030|033|040|050|060|070" }, NOTRUNK("MZ", 258), STD("NA", 264),
    NOTRUNK("NE", 227), { "NG", 234, "0", "009" }, STD("RW", 250), STD("SD", 249), NOTRUNK("SN", 221),
    NOTRUNK("TG", 228), NOTRUNK("TN", 216), { "TZ", 255, "0", "000|005|006" },
    { "UG", 256, "0", "000|005|007" }, STD("ZA", 27), STD("ZM", 260), STD("ZW", 263),
};

const omni_country_t *omni__country_find(const char *iso)
{
    if (iso == NULL || strlen(iso) != 2)
        return NULL;
    char up[3] = { iso[0], iso[1], '\0' };
    for (int i = 0; i < 2; i++)
        if (up[i] >= 'a' && up[i] <= 'z')
            up[i] = (char)(up[i] - 'a' + 'A');
    for (size_t i = 0; i < sizeof countries / sizeof countries[0]; i++)
        if (memcmp(countries[i].iso, up, 2) == 0)
            return &countries[i];
    return NULL;
}

bool omni__calling_code_known(unsigned code)
{
    for (size_t i = 0; i < sizeof calling_codes / sizeof calling_codes[0]; i++)
        if (calling_codes[i] == code)
            return true;
    return false;
}

size_t omni__country_count(void)
{
    return sizeof countries / sizeof countries[0];
}

const omni_country_t *omni__country_at(size_t i)
{
    return i < omni__country_count() ? &countries[i] : NULL;
}

const omni_country_t *omni__country_by_code(unsigned code)
{
    for (size_t i = 0; i < sizeof countries / sizeof countries[0]; i++)
        if (countries[i].code == code)
            return &countries[i];
    return NULL;
}

size_t omni__prefix_match(const char *list, const char *digits, bool zero_only)
{
    size_t best = 0;
    while (*list != '\0') {
        size_t n = strcspn(list, "|");
        if (n > best && (!zero_only || list[0] == '0') && strncmp(list, digits, n) == 0)
            best = n;
        list += n;
        if (*list == '|')
            list++;
    }
    return best;
}
