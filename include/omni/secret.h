/* Secrets (webhook signing keys, API tokens, provider auth tokens) and the cryptography around them.
 *
 * A secret never sits in a YAML file. A config key names where it is, in one of three forms:
 *     /etc/omnirouter/twilio-token     a file (relative paths: against the config file's directory)
 *     credential:twilio-token          a systemd credential: the file of that name in $CREDENTIALS_DIRECTORY
 *                                       (LoadCredential= / SetCredential= in the unit)
 *     env:TWILIO_AUTH_TOKEN            an environment variable
 * A file must not be readable by group or others (0600 or 0400), like ssh's keys; one trailing newline
 * (and carriage return) is dropped; an empty secret is an error. Secrets are at most OMNI_SECRET_MAX bytes.
 *
 * Threading: every function is reentrant. */
#ifndef OMNI_SECRET_H
#define OMNI_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define OMNI_SECRET_MAX 4096

/* Loads the secret named by spec (forms above) into out (NUL-terminated; outsz > its length). what names
 * the config key for errors ("sms.auth_token"). Returns its length, or -1 with a sentence in err naming
 * what and where ("sms.auth_token: /etc/x: readable by others (mode 0644); chmod 600 it"). */
long omni_secret_load(const char *spec, const char *what, char *out, size_t outsz, char *err, size_t errsz);

/* True when a[0..alen) equals b[0..blen), in time that depends only on the lengths. */
bool omni_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* HMAC of data with key: SHA-256 (32 bytes into out) or SHA-1 (20 bytes). Return the digest length. */
size_t omni_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[32]);
size_t omni_hmac_sha1(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[20]);
/* SHA-256 of data into out (32 bytes). */
void omni_sha256(const void *data, size_t len, unsigned char out[32]);

/* Standard base64 (with padding) of in[0..len) into out, which needs 4 * ((len + 2) / 3) + 1 bytes.
 * Returns the length written (NUL not counted). */
size_t omni_base64_encode(const void *in, size_t len, char *out);
/* Decodes standard base64 (padding required, no whitespace) into out (outsz >= 3 * strlen(in) / 4).
 * Returns the decoded length, or -1 when in is not base64. */
long omni_base64_decode(const char *in, unsigned char *out, size_t outsz);
/* Lower-case hex of in[0..len) into out (2 * len + 1 bytes). Returns out. */
char *omni_hex(const void *in, size_t len, char *out);

#endif
