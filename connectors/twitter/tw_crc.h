/* The Account Activity API's challenge-response check (CRC): X calls the webhook with
 * GET ?crc_token=TOKEN and expects {"response_token": "sha256=" + base64(HMAC-SHA256(consumer secret, TOKEN))}
 * (../shared/fixtures/twitter/crc-vector.json is the published vector). */
#ifndef TW_CRC_H
#define TW_CRC_H

#include <stddef.h>

#define TW_CRC_TOKEN_MAX 1024 /* longest crc_token answered; X's are UUIDs (36 bytes) */

/* Writes the JSON answer for crc_token into out (outsz >= 128). Returns its length, or -1 when the token
 * is empty or longer than TW_CRC_TOKEN_MAX. */
long tw_crc_response(const char *consumer_secret, size_t secret_len, const char *crc_token, char *out, size_t outsz);

#endif
