/* See omni/token.h. */
#include "omni/token.h"

#include <string.h>

#include "omni/secret.h"

void omni_token_format(const unsigned char raw[OMNI_TOKEN_RANDOM_BYTES], char out[OMNI_TOKEN_LEN + 1])
{
    char b64[4 * ((OMNI_TOKEN_RANDOM_BYTES + 2) / 3) + 1];
    size_t n = omni_base64_encode(raw, OMNI_TOKEN_RANDOM_BYTES, b64);
    while (n > 0 && b64[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++) /* base64url (RFC 4648 section 5): safe in a header, a URL, a shell */
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    memcpy(out, OMNI_TOKEN_PREFIX, 5);
    memcpy(out + 5, b64, n);
    out[5 + n] = '\0';
}

static bool b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool omni_token_shape(const char *s, size_t len)
{
    if (len != OMNI_TOKEN_LEN || memcmp(s, OMNI_TOKEN_PREFIX, 5) != 0)
        return false;
    for (size_t i = 5; i < len; i++)
        if (!b64url(s[i]))
            return false;
    /* 32 bytes are 256 bits in 43 characters of 6: the last one carries 4 bits, its low 2 are zero */
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    return ((strchr(alphabet, s[len - 1]) - alphabet) & 3) == 0;
}

void omni_token_hash(const char *token, size_t len, char hash[65], char id[OMNI_TOKEN_ID_LEN + 1])
{
    unsigned char digest[32];
    omni_sha256(token, len, digest);
    omni_hex(digest, sizeof digest, hash);
    memcpy(id, hash, OMNI_TOKEN_ID_LEN);
    id[OMNI_TOKEN_ID_LEN] = '\0';
}
