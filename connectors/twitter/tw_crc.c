/* CRC answers (tw_crc.h), on libomni's HMAC and base64 (secret.h). */
#include "tw_crc.h"

#include <stdio.h>
#include <string.h>

#include "omni/secret.h"

long tw_crc_response(const char *consumer_secret, size_t secret_len, const char *crc_token, char *out, size_t outsz)
{
    size_t n = crc_token != NULL ? strlen(crc_token) : 0;
    if (n == 0 || n > TW_CRC_TOKEN_MAX)
        return -1;
    unsigned char mac[32];
    char b64[4 * ((sizeof mac + 2) / 3) + 1];
    omni_hmac_sha256(consumer_secret, secret_len, crc_token, n, mac);
    omni_base64_encode(mac, sizeof mac, b64);
    int len = snprintf(out, outsz, "{\"response_token\":\"sha256=%s\"}", b64);
    return len > 0 && (size_t)len < outsz ? len : -1;
}
