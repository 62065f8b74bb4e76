/* API bearer tokens (docs/delivery.md "Tokens"): "omni_" + 43 characters of base64url (32 random bytes, no
 * padding). Only the SHA-256 of the whole token text is stored; its first 12 hex digits are the token's id.
 * omnictl makes them, omni-api checks them. Every function is reentrant. */
#ifndef OMNI_TOKEN_H
#define OMNI_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define OMNI_TOKEN_RANDOM_BYTES 32
#define OMNI_TOKEN_PREFIX "omni_"
#define OMNI_TOKEN_LEN (5 + 43)
#define OMNI_TOKEN_ID_LEN 12

/* The token for raw random bytes into out (OMNI_TOKEN_LEN + 1 bytes). */
void omni_token_format(const unsigned char raw[OMNI_TOKEN_RANDOM_BYTES], char out[OMNI_TOKEN_LEN + 1]);
/* True when s[0..len) has a token's shape (prefix, length, base64url alphabet, a canonical last character);
 * says nothing of whether it was ever issued. */
bool omni_token_shape(const char *s, size_t len);
/* SHA-256 of token[0..len) as 64 hex digits into hash (65 bytes) and its first 12 into id (13 bytes). */
void omni_token_hash(const char *token, size_t len, char hash[65], char id[OMNI_TOKEN_ID_LEN + 1]);

#endif
