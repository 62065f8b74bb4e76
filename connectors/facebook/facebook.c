/* omni-facebook: Messenger Platform webhooks through the shared HTTP intake.
 *
 * GET  facebook.path: the subscription check. hub.mode=subscribe and hub.verify_token equal to the configured
 *      token (constant time) answer hub.challenge; anything else 403 (400 when a parameter is missing).
 * POST facebook.path: X-Hub-Signature-256 must be sha256=HMAC-SHA256(app secret, raw body) (401 missing,
 *      403 wrong). Every message and postback of every entry is spooled, and the POST answered 200 once
 *      they are durable; echoes, deliveries, reads and other events are counted and dropped; a body that is
 *      not a Messenger envelope is 400, logged with the place. */
#include "facebook.h"
#include "messenger.h"
#include "omni/http_intake.h"
#include "omni/log.h"
#include "omni/secret.h"
#include "omni/util.h"

#include <stdlib.h>
#include <string.h>

typedef struct fb {
    omni_http_intake_t *in;
    const char *path;
    char secret[OMNI_SECRET_MAX + 1], verify[OMNI_SECRET_MAX + 1];
    size_t secretlen, verifylen;
} fb_t;

static const omni_connector_key_t fb_keys[] = {
    OMNI_HTTP_INTAKE_KEYS("127.0.0.1:8081", "1048576"),
    { "path", OMNI_KEY_STRING, "/facebook", false, 1, 1024, NULL,
      "the request path of the webhook (GET verification and POST events)" },
    { "app_secret", OMNI_KEY_SECRET, NULL, true, 1, 4096, NULL,
      "where the app secret is (signs X-Hub-Signature-256): a file (0600), credential:NAME or env:NAME" },
    { "verify_token", OMNI_KEY_SECRET, NULL, true, 1, 4096, NULL,
      "where the verify token given to Meta for the subscription check is: a file, credential:NAME or env:NAME" },
    { NULL, 0, NULL, false, 0, 0, NULL, NULL },
};

static int load_secrets(omni_connector_t *ctx, fb_t *f, char *err, size_t errsz)
{
    long a = omni_connector_secret(ctx, "app_secret", f->secret, sizeof f->secret, err, errsz);
    long v = a < 0 ? -1 : omni_connector_secret(ctx, "verify_token", f->verify, sizeof f->verify, err, errsz);
    f->secretlen = a > 0 ? (size_t)a : 0;
    f->verifylen = v > 0 ? (size_t)v : 0;
    return a < 0 || v < 0 ? -1 : 0;
}

/* Every error is reported (omni_connector_check_error), not only the first. */
static int fb_check(omni_connector_t *ctx, char *err, size_t errsz)
{
    (void)err, (void)errsz;
    if (omni_connector_cfg_str(ctx, "path")[0] != '/')
        omni_connector_check_error(ctx, "path", "\"%s\" does not start with /", omni_connector_cfg_str(ctx, "path"));
    omni_http_intake_check(ctx);
    omni_connector_check_secret(ctx, "app_secret");
    omni_connector_check_secret(ctx, "verify_token");
    return 0;
}

static void verify(fb_t *f, omni_http_req_t *req)
{
    const char *mode = omni_http_arg(req, "hub.mode"), *token = omni_http_arg(req, "hub.verify_token");
    const char *challenge = omni_http_arg(req, "hub.challenge");
    if (mode == NULL || token == NULL || challenge == NULL) {
        omni_warn("GET %s from %s: verification without hub.mode, hub.verify_token or hub.challenge: 400",
                  omni_http_path(req), omni_http_peer(req));
        omni_http_respond(req, 400, NULL, "hub.mode, hub.verify_token and hub.challenge are required\n");
    } else if (strcmp(mode, "subscribe") != 0 || !omni_ct_equal(token, strlen(token), f->verify, f->verifylen)) {
        omni_warn("GET %s from %s: verification refused (%s): 403", omni_http_path(req), omni_http_peer(req),
                  strcmp(mode, "subscribe") != 0 ? "hub.mode is not subscribe" : "wrong hub.verify_token");
        omni_http_respond(req, 403, NULL, "verification refused\n");
    } else {
        omni_info("webhook subscription verified");
        omni_http_respond(req, 200, "text/plain", challenge);
    }
}

static void fb_handle(void *user, omni_http_req_t *req)
{
    fb_t *f = user;
    const char *path = omni_http_path(req), *peer = omni_http_peer(req), *method = omni_http_method(req);
    if (strcmp(path, f->path) != 0) {
        omni_http_respond(req, 404, NULL, "not the webhook path of this connector\n");
        return;
    }
    if (strcmp(method, "GET") == 0) {
        verify(f, req);
        return;
    }
    if (strcmp(method, "POST") != 0) {
        omni_http_respond_405(req, "GET, POST", "GET and POST only\n");
        return;
    }
    size_t len;
    const char *body = omni_http_body(req, &len), *sig = omni_http_header(req, "X-Hub-Signature-256");
    if (sig == NULL) {
        omni_warn("POST %s from %s: no X-Hub-Signature-256: 401", path, peer);
        omni_http_respond(req, 401, NULL, "X-Hub-Signature-256 missing\n");
        return;
    }
    if (!fb_signature_valid(f->secret, f->secretlen, body, len, sig)) {
        omni_warn("POST %s from %s: X-Hub-Signature-256 does not match the body (%zu bytes): 403", path, peer, len);
        omni_http_respond(req, 403, NULL, "bad signature\n");
        return;
    }
    fb_batch_t b;
    char why[512];
    int rc = fb_parse(body, len, &b, why, sizeof why);
    if (rc < 0) {
        omni_warn("POST %s from %s: malformed webhook: %s: 400", path, peer, why);
        omni_http_respond(req, 400, NULL, "malformed webhook body\n");
    } else {
        for (size_t i = 0; i < b.n_skipped; i++)
            omni_warn("POST %s from %s: event skipped: %s", path, peer, b.skipped[i]);
        omni_http_invalid(req, (unsigned)b.n_skipped);
        if (rc == 1)
            omni_info("POST %s: a webhook for another object than page: ignored", path);
        for (size_t i = 0; i < b.n_msgs; i++)
            if (omni_http_submit(req, b.msgs[i]) < 0)
                break; /* the spool cannot take it: 503, Meta sends the whole POST again */
        omni_debug("POST %s: %zu message(s), %zu echo(es), %zu delivery, %zu read, %zu other, %zu skipped", path,
                   b.n_msgs, b.echoes, b.deliveries, b.reads, b.other, b.n_skipped);
        omni_http_respond(req, 200, "text/plain", "EVENT_RECEIVED");
    }
    fb_batch_free(&b);
}

static int fb_open(omni_connector_t *ctx)
{
    fb_t *f = omni_calloc(1, sizeof *f);
    f->path = omni_connector_cfg_str(ctx, "path");
    char err[512];
    if (load_secrets(ctx, f, err, sizeof err) != 0) {
        omni_error("%s", err);
        explicit_bzero(f, sizeof *f);
        free(f);
        return -1;
    }
    f->in = omni_http_intake_new(ctx, "Messenger webhooks", fb_handle, f);
    if (f->in == NULL) {
        explicit_bzero(f, sizeof *f);
        free(f);
        return -1;
    }
    omni_connector_set_user(ctx, f);
    return 0;
}

static int fb_poll(omni_connector_t *ctx)
{
    fb_t *f = omni_connector_user(ctx);
    return omni_http_intake_poll(f->in);
}

static void fb_close(omni_connector_t *ctx)
{
    fb_t *f = omni_connector_user(ctx);
    omni_http_intake_destroy(&f->in);
    explicit_bzero(f, sizeof *f);
    free(f);
    omni_connector_set_user(ctx, NULL);
}

const omni_connector_def_t facebook_connector = {
    .name = "facebook",
    .channel = "facebook",
    .summary = "Takes Messenger Platform webhooks (signed) and sends each message and postback to omnirouted.",
    .keys = fb_keys,
    .check = fb_check,
    .open = fb_open,
    .poll = fb_poll,
    .close = fb_close,
};
