/* CURVE keys for OMNI/1 over TCP (docs/protocol.md "Security"): ZeroMQ's Curve25519 keys, written as Z85
 * text (40 characters for 32 bytes), one key per file. A public key may be given inline or as a file; a
 * secret key only ever as a file, readable by its owner alone (mode 0600 or stricter), so it never sits in
 * a YAML file, a command line or a log.
 *
 * A key's fingerprint, shown in logs and by `omnictl keygen`, is the first 16 hex digits of the SHA-256 of
 * its 32 raw bytes: short enough to compare by eye, and it names a key without giving it away. */
#ifndef OMNI_CURVE_H
#define OMNI_CURVE_H

#include <stdbool.h>
#include <stddef.h>

#define OMNI_CURVE_Z85_LEN 40 /* characters of a key in Z85 */
#define OMNI_CURVE_FP_LEN 16  /* hex digits of a fingerprint */

/* True when s is exactly one Z85 key (40 characters that decode). */
bool omni_curve_is_key(const char *s);

/* The fingerprint of the Z85 key z85 into fp (OMNI_CURVE_FP_LEN + 1 bytes). Returns 0, -1 for a bad key. */
int omni_curve_fingerprint(const char *z85, char *fp);
/* The same for a key's 32 raw bytes. */
void omni_curve_fingerprint_raw(const unsigned char key[32], char *fp);

/* Reads a public key given as itself (40 Z85 characters) or as the path of a file holding it (blank lines
 * and lines starting with # are skipped). out: OMNI_CURVE_Z85_LEN + 1 bytes. Returns 0, or -1 with a
 * sentence naming the file in err. what ("router.curve.allowed_keys") is borrowed and starts the sentence. */
int omni_curve_read_public(const char *key_or_file, char *out, const char *what, char *err, size_t errsz);
/* Reads a secret key from a file that only its owner can read (group or others having any access to it is
 * refused: the key would be shared with them). out as above. Returns 0 or -1 with err like the above. */
int omni_curve_read_secret(const char *file, char *out, const char *what, char *err, size_t errsz);
/* The public key of a Z85 secret key into pub (OMNI_CURVE_Z85_LEN + 1). Returns 0 or -1. */
int omni_curve_public_of(const char *secret, char *pub);

/* Makes a new key pair and writes NAME.key (the secret, mode 0600) and NAME.pub (the public key, 0644),
 * refusing to overwrite either. pub gets the public key. Returns 0 or -1 with a sentence in err. */
int omni_curve_keygen(const char *name, char *pub, char *err, size_t errsz);

#endif
