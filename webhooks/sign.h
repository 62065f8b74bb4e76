/* Standard Webhooks signing (https://www.standardwebhooks.com): what a partner checks on every delivery.
 *   webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>
 * key is the secret's bytes: base64-decoded after "whsec_". With two secrets (rotation) the header holds
 * both signatures, space-separated; a receiver accepts when any v1 one matches. */
#ifndef OMNI_WEBHOOKS_SIGN_H
#define OMNI_WEBHOOKS_SIGN_H

#include <stddef.h>

#define WH_SIGNATURE_LEN 48 /* "v1," + 44 base64 characters + NUL */

/* The bytes of a whsec_ secret into key (keysz bytes). Returns their count, or -1 when secret is not
 * "whsec_" and base64, or decodes to more than keysz. secret is borrowed. */
long wh_secret_key(const char *secret, unsigned char *key, size_t keysz);

/* One "v1,..." signature of body[0..len) for id and timestamp (decimal seconds) into out. All borrowed. */
void wh_signature(const unsigned char *key, size_t keylen, const char *id, const char *timestamp, const char *body,
                  size_t len, char out[WH_SIGNATURE_LEN]);

/* The webhook-signature header's value for n keys (key_lens bytes each; 1 or 2): their signatures, space-separated, into out
 * (at least n * WH_SIGNATURE_LEN bytes). Returns out. */
char *wh_signature_header(const unsigned char *const *keys, const size_t *key_lens, size_t n, const char *id,
                          const char *timestamp, const char *body, size_t len, char *out);

#endif
