// The C side of libphonenumber (phone_shim.h). Every entry point catches everything: an exception must
// never cross into C, where nothing would unwind it.
#include "phone_shim.h"

#include <phonenumbers/phonenumberutil.h>

#include <cstring>
#include <string>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

// The singleton is built on first use (thread-safe) and holds the metadata for the process's lifetime.
static const PhoneNumberUtil &util() { return *PhoneNumberUtil::GetInstance(); }

extern "C" bool omni__phone_region_known(const char *region)
{
    try {
        // A calling code of 0 means no metadata for the region. "001", libphonenumber's name for the
        // non-geographic codes (+800...), is no country: hence the length.
        return region != nullptr && std::strlen(region) == 2 && util().GetCountryCodeForRegion(region) != 0;
    } catch (...) {
        return false;
    }
}

static const char *parse_error(PhoneNumberUtil::ErrorType e)
{
    switch (e) {
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
        return "unknown country calling code";
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
        return "too few digits after the international prefix";
    case PhoneNumberUtil::TOO_SHORT_NSN:
        return "too few digits";
    case PhoneNumberUtil::TOO_LONG_NSN:
        return "too many digits";
    default:
        return "not a phone number";
    }
}

static const char *possible_error(PhoneNumberUtil::ValidationResult r)
{
    switch (r) {
    case PhoneNumberUtil::IS_POSSIBLE_LOCAL_ONLY:
        return "a local number without its area code";
    case PhoneNumberUtil::INVALID_COUNTRY_CODE:
        return "unknown country calling code";
    case PhoneNumberUtil::TOO_SHORT:
        return "too few digits for its country";
    case PhoneNumberUtil::TOO_LONG:
        return "too many digits for its country";
    default:
        return "a number of digits no number of its country has";
    }
}

extern "C" int omni__phone_parse(const char *number, const char *region, char *out, size_t outsz,
                                 const char **why)
{
    try {
        PhoneNumber n;
        PhoneNumberUtil::ErrorType e = util().Parse(number, region != nullptr ? region : "ZZ", &n);
        if (e != PhoneNumberUtil::NO_PARSING_ERROR) {
            *why = parse_error(e);
            return -1;
        }
        PhoneNumberUtil::ValidationResult r = util().IsPossibleNumberWithReason(n);
        if (r != PhoneNumberUtil::IS_POSSIBLE) {
            *why = possible_error(r);
            return -1;
        }
        // A possible length is not enough: "+1 415 155 0100" has ten digits but no exchange starts with 1,
        // and such a slip would otherwise become a customer of its own.
        if (!util().IsValidNumber(n)) {
            *why = "not a number in use in its country (no such range in libphonenumber's data)";
            return -1;
        }
        std::string e164;
        util().Format(n, PhoneNumberUtil::E164, &e164);
        if (e164.size() >= outsz) {
            *why = "output buffer too small";
            return -1;
        }
        std::memcpy(out, e164.c_str(), e164.size() + 1);
        return 0;
    } catch (...) {
        *why = "out of memory";
        return -1;
    }
}
