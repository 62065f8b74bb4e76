/* See sign.h. HMAC and base64 are libomni's (libcrypto underneath). */
#include "sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "omni/secret.h"
#include "omni/util.h"

long wh_secret_key(const char *secret, unsigned char *key, size_t keysz)
{
    if (strncmp(secret, "whsec_", 6) != 0)
        return -1;
    size_t n = strlen(secret + 6);
    unsigned char *buf = omni_malloc(3 * n / 4 + 3);
    long len = omni_base64_decode(secret + 6, buf, 3 * n / 4 + 3);
    if (len <= 0 || (size_t)len > keysz)
        len = -1;
    else
        memcpy(key, buf, (size_t)len);
    free(buf);
    return len;
}

void wh_signature(const unsigned char *key, size_t keylen, const char *id, const char *timestamp, const char *body,
                  size_t len, char out[WH_SIGNATURE_LEN])
{
    size_t idlen = strlen(id), tslen = strlen(timestamp);
    size_t total = idlen + 1 + tslen + 1 + len;
    char *msg = omni_malloc(total);
    memcpy(msg, id, idlen);
    msg[idlen] = '.';
    memcpy(msg + idlen + 1, timestamp, tslen);
    msg[idlen + 1 + tslen] = '.';
    memcpy(msg + idlen + tslen + 2, body, len);
    unsigned char mac[32];
    omni_hmac_sha256(key, keylen, msg, total, mac);
    free(msg);
    memcpy(out, "v1,", 3);
    omni_base64_encode(mac, sizeof mac, out + 3);
}

char *wh_signature_header(const unsigned char *const *keys, const size_t *key_lens, size_t n, const char *id,
                          const char *timestamp, const char *body, size_t len, char *out)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char sig[WH_SIGNATURE_LEN];
        wh_signature(keys[i], key_lens[i], id, timestamp, body, len, sig);
        if (i > 0)
            strcat(out, " ");
        strcat(out, sig);
    }
    return out;
}
