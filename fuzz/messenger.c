/* Fuzz target: what omni-facebook reads from a POST (connectors/facebook/messenger.c). The input up to the
 * first newline is tried as an X-Hub-Signature-256 header, the rest is the body given to fb_parse. Beyond
 * not crashing: every message of the batch passes the router's validation, every skipped event says where
 * it was, and the signature check accepts exactly the header computed here for the body. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../connectors/facebook/messenger.h"
#include "omni/log.h"
#include "omni/secret.h"
#include "omni/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet++)
        omni_log_set_level(OMNI_LOG_FATAL);
    const char *in = (const char *)data, *end = in + size;
    const char *nl = memchr(in, '\n', size);
    char *header = omni_strndup(in, nl ? (size_t)(nl - in) : 0);
    const char *body = nl ? nl + 1 : in;
    size_t len = (size_t)(end - body);
    fb_batch_t b;
    char why[512];
    if (fb_parse(body, len, &b, why, sizeof why) == 0) {
        omni_limits_t lim;
        omni_msg_error_t err;
        omni_limits_default(&lim);
        for (size_t i = 0; i < b.n_msgs; i++) {
            if (omni_msg_validate(b.msgs[i], &lim, &err) != 0)
                omni_panic("fuzz: the router would refuse it: %s: %s", err.field, err.reason);
            free(omni_msg_serialize(b.msgs[i], NULL));
        }
        for (size_t i = 0; i < b.n_skipped; i++)
            if (strncmp(b.skipped[i], "entry[", 6) != 0)
                omni_panic("fuzz: a skipped event does not say where: %s", b.skipped[i]);
    }
    fb_batch_free(&b);
    unsigned char mac[32];
    char good[72] = "sha256=";
    omni_hmac_sha256("secret", 6, body, len, mac);
    omni_hex(mac, sizeof mac, good + 7);
    if (!fb_signature_valid("secret", 6, body, len, good))
        omni_panic("fuzz: the computed signature does not validate");
    bool same = strlen(header) == strlen(good) && strncmp(header, good, 7) == 0 && strcasecmp(header + 7, good + 7) == 0;
    if (fb_signature_valid("secret", 6, body, len, header) != same)
        omni_panic("fuzz: the header \"%s\" %s", header, same ? "is refused" : "validates");
    free(header);
    return 0;
}
