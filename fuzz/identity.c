/* Fuzz target: identity normalization (libomni identity.c, phone.c). The first byte picks the channel and
 * the default country, the rest is the raw sender as a connector would give it. Beyond not crashing: a
 * key is idempotent (normalizing its value again on the same channel gives the same key, and so does
 * reading the key back as an operator would type it), since the router looks customers up by it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "omni/identity.h"
#include "omni/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const CHANNELS[] = { "email", "sms", "phone", "twitter", "facebook", "x-chat", "x-", "bogus" };
static const char *const COUNTRIES[] = { "US", "GB", "DE", "FR", "IN", "JP", "BR", "AU", "ZZ", "", NULL };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *channel = CHANNELS[data[0] % (sizeof CHANNELS / sizeof CHANNELS[0])];
    const char *country = COUNTRIES[(data[0] >> 3) % (sizeof COUNTRIES / sizeof COUNTRIES[0])];
    char *raw = strndup((const char *)data + 1, size - 1); /* connectors hand C strings: cut at a NUL */
    char key[OMNI_IDENTITY_MAX], again[OMNI_IDENTITY_MAX], parsed[OMNI_IDENTITY_MAX];
    const char *why = NULL;
    if (omni_identity_key(channel, raw, country, key, sizeof key, &why) == 0) {
        const char *value = strchr(key, ':') + 1;
        if (omni_identity_key(channel, value, country, again, sizeof again, &why) != 0)
            omni_panic("fuzz: %s key %s refused when normalized again: %s", channel, key, why);
        if (strcmp(key, again) != 0)
            omni_panic("fuzz: %s key %s normalizes again to %s", channel, key, again);
        if (omni_identity_parse_key(key, country, parsed, sizeof parsed, &why) != 0)
            omni_panic("fuzz: key %s refused by omni_identity_parse_key: %s", key, why);
        if (strcmp(key, parsed) != 0)
            omni_panic("fuzz: key %s parses back as %s", key, parsed);
    } else if (why == NULL) {
        omni_panic("fuzz: %s refused without a reason", channel);
    }
    /* What an operator types (omnictl customer show ...) goes through the same normalizers. */
    omni_identity_parse_key(raw, country, parsed, sizeof parsed, &why);
    free(raw);
    return 0;
}
