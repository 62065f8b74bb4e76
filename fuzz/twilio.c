/* Fuzz target: what omni-sms reads from a request (connectors/sms/twilio.c). Byte 0 picks the reading: even,
 * a form body (tw_form_parse, then tw_message); odd, a JSON body (tw_json_params, then tw_message). The
 * rest up to the first newline is also tried as an X-Twilio-Signature header and the rest after it as the
 * body. Beyond not crashing: a message built from the parameters passes the router's validation (the
 * connector must never spool what the router refuses), and a signature check against the computed
 * signature succeeds while the header read from the input, unless equal to it, fails. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../connectors/sms/twilio.h"
#include "omni/log.h"
#include "omni/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet++)
        omni_log_set_level(OMNI_LOG_FATAL);
    if (size < 1)
        return 0;
    const char *in = (const char *)data + 1, *end = (const char *)data + size;
    const char *nl = memchr(in, '\n', (size_t)(end - in));
    char *header = omni_strndup(in, nl ? (size_t)(nl - in) : 0);
    const char *body = nl ? nl + 1 : in;
    size_t len = (size_t)(end - body);
    tw_params_t p = { 0 };
    char why[512];
    int rc = data[0] & 1 ? tw_json_params(body, len, &p, why, sizeof why) : tw_form_parse(body, len, &p, why, sizeof why);
    if (rc == 0) {
        omni_msg_t *msg = NULL;
        if (tw_message(&p, "2026-12-01T00:00:00Z", &msg, why, sizeof why) == TW_MESSAGE) {
            omni_limits_t lim;
            omni_msg_error_t err;
            omni_limits_default(&lim);
            if (omni_msg_validate(msg, &lim, &err) != 0)
                omni_panic("fuzz: the router would refuse it: %s: %s", err.field, err.reason);
            free(omni_msg_serialize(msg, NULL));
        }
        omni_msg_destroy(&msg);
        /* The URL as signed with and without its port: exactly these two signatures validate. */
        const char *url = data[0] & 2 ? "https://hooks.example.com:443/twilio/sms?a=1" : "http://h/x";
        const char *other = data[0] & 2 ? "https://hooks.example.com/twilio/sms?a=1" : "http://h:80/x";
        char sig[29], sig2[29];
        tw_signature("token", 5, url, &p, sig);
        tw_signature("token", 5, other, &p, sig2);
        if (!tw_signature_valid("token", 5, url, &p, sig) || !tw_signature_valid("token", 5, url, &p, sig2))
            omni_panic("fuzz: a computed signature does not validate");
        bool expect = strcmp(header, sig) == 0 || strcmp(header, sig2) == 0;
        if (tw_signature_valid("token", 5, url, &p, header) != expect)
            omni_panic("fuzz: the header \"%s\" %s", header, expect ? "is refused" : "validates");
    }
    tw_params_free(&p);
    char hex[80];
    if (tw_query_value(header, "bodySHA256", hex, sizeof hex))
        (void)tw_body_hash_valid(hex, body, len);
    free(header);
    return 0;
}
