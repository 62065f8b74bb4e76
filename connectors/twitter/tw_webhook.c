/* The Account Activity webhook (tw_webhook.h). */
#include "tw_webhook.h"

#include <stdlib.h>
#include <string.h>

#include "omni/http_intake.h"
#include "omni/log.h"
#include "omni/secret.h"
#include "omni/util.h"
#include "tw_crc.h"

struct tw_webhook {
    omni_http_intake_t *in;
    char secret[OMNI_SECRET_MAX + 1];
    size_t secret_len;
};

static void handle(void *user, omni_http_req_t *req)
{
    tw_webhook_t *wh = user;
    const char *method = omni_http_method(req);
    if (strcmp(method, "GET") == 0) {
        const char *token = omni_http_arg(req, "crc_token");
        char body[160];
        if (token == NULL || tw_crc_response(wh->secret, wh->secret_len, token, body, sizeof body) < 0) {
            omni_warn("webhook: GET from %s without a usable crc_token (1..%d bytes)", omni_http_peer(req),
                      TW_CRC_TOKEN_MAX);
            omni_http_respond(req, 400, NULL, "crc_token missing or too long\n");
            return;
        }
        omni_info("webhook: answered a CRC challenge from %s", omni_http_peer(req));
        omni_http_respond(req, 200, "application/json", body);
    } else if (strcmp(method, "POST") == 0) {
        const char *sig = omni_http_header(req, "x-twitter-webhooks-signature");
        size_t len;
        const char *data = omni_http_body(req, &len);
        unsigned char mac[32];
        char want[7 + 45] = "sha256=";
        omni_hmac_sha256(wh->secret, wh->secret_len, data, len, mac);
        omni_base64_encode(mac, sizeof mac, want + 7);
        if (sig == NULL) {
            omni_warn("webhook: POST from %s without x-twitter-webhooks-signature: refused", omni_http_peer(req));
            omni_http_respond(req, 401, NULL, "signature missing\n");
        } else if (!omni_ct_equal(sig, strlen(sig), want, strlen(want))) {
            omni_warn("webhook: POST from %s with a wrong x-twitter-webhooks-signature: refused", omni_http_peer(req));
            omni_http_respond(req, 403, NULL, "signature does not match\n");
        } else {
            omni_debug("webhook: event of %zu bytes from %s (its messages are taken by polling)", len,
                       omni_http_peer(req));
            omni_http_respond(req, 200, NULL, NULL);
        }
    } else {
        omni_http_respond_405(req, "GET, POST", "GET (CRC) or POST only\n");
    }
}

tw_webhook_t *tw_webhook_new(omni_connector_t *ctx)
{
    tw_webhook_t *wh = omni_calloc(1, sizeof *wh);
    char err[512];
    long n = omni_connector_secret(ctx, "consumer_secret", wh->secret, sizeof wh->secret, err, sizeof err);
    if (n < 0) {
        omni_error("%s", err);
        free(wh);
        return NULL;
    }
    wh->secret_len = (size_t)n;
    wh->in = omni_http_intake_new(ctx, "Account Activity webhook", handle, wh);
    if (wh->in == NULL) {
        tw_webhook_destroy(&wh);
        return NULL;
    }
    return wh;
}

void tw_webhook_destroy(tw_webhook_t **whp)
{
    if (whp == NULL || *whp == NULL)
        return;
    tw_webhook_t *wh = *whp;
    omni_http_intake_destroy(&wh->in);
    explicit_bzero(wh->secret, sizeof wh->secret);
    free(wh);
    *whp = NULL;
}

int tw_webhook_fd(const tw_webhook_t *wh) { return omni_http_intake_fd(wh->in); }
int tw_webhook_poll(tw_webhook_t *wh) { return omni_http_intake_poll(wh->in); }

void tw_webhook_counts(const tw_webhook_t *wh, unsigned long long *requests, unsigned long long *rejected)
{
    omni_http_stats_t st;
    omni_http_intake_stats(wh->in, &st);
    *requests = st.requests;
    *rejected = st.rejected;
}
