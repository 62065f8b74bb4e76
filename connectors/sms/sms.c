/* omni-sms: Twilio's inbound message and status-callback webhooks through the shared HTTP intake.
 *
 * Per request: the path must be one of sms.paths and the method POST; X-Twilio-Signature must match the
 * public URL Twilio called (sms.public_url + path + query) over the form parameters, or, when the query
 * carries bodySHA256, over the URL alone with the body's SHA-256 matching it. Then an inbound message is
 * spooled and answered `<Response/>` (text/xml) once durable; a status callback is answered the same and
 * not routed. Answers: 401 no signature, 403 a wrong one, 400 a malformed request (logged with what was
 * wrong), 404/405 another path or method, 503 + Retry-After when the spool cannot take it.
 *
 * An outpost (sms.outpost_reply set: a channel the business does not staff, docs/routing.md "Outpost
 * channels"): the first message of a number within sms.outpost_window is answered with that reply as TwiML
 * <Message>, which Twilio texts back to the sender; the message is spooled and routed all the same. */
#include "sms.h"
#include "twilio.h"
#include "omni/http_intake.h"
#include "omni/log.h"
#include "omni/outpost.h"
#include "omni/secret.h"
#include "omni/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TWIML_EMPTY "<Response/>"
#define OUTPOST_STATE "outpost-pointed" /* omni/outpost.h: who was pointed when */

typedef struct sms {
    omni_connector_t *ctx;
    omni_http_intake_t *in;
    const char *public_url;
    const char *const *paths;
    size_t n_paths;
    char token[OMNI_SECRET_MAX + 1];
    size_t toklen;
    unsigned long long statuses;
    omni_outpost_t *outpost; /* NULL: a covered channel */
    char *pointer;           /* the TwiML answer that points a sender elsewhere (owned) */
} sms_t;

static const omni_connector_key_t sms_keys[] = {
    OMNI_HTTP_INTAKE_KEYS("127.0.0.1:8080", "65536"),
    { "public_url", OMNI_KEY_STRING, NULL, true, 8, 2048, NULL,
      "the URL Twilio calls for this listener's root (https://example.com/twilio): signatures cover it" },
    { "auth_token", OMNI_KEY_SECRET, NULL, true, 1, 4096, NULL,
      "where the Twilio auth token is: a file (0600), credential:NAME or env:NAME" },
    { "paths", OMNI_KEY_LIST, "[/sms, /sms/status]", false, 0, 16, NULL,
      "request paths taken (inbound messages and status callbacks alike); others are answered 404" },
    { "outpost_reply", OMNI_KEY_STRING, NULL, false, 0, 1600, NULL,
      "an outpost: the text a sender is answered with (where to reach us), once per number per outpost_window" },
    { "outpost_window", OMNI_KEY_DURATION, "86400000", false, 1000, 31536000000LL, NULL,
      "how long a number that was pointed elsewhere is not pointed again" },
    { NULL, 0, NULL, false, 0, 0, NULL, NULL },
};

/* Every error is reported (omni_connector_check_error), not only the first. */
static int sms_check(omni_connector_t *ctx, char *err, size_t errsz)
{
    (void)err, (void)errsz;
    const char *url = omni_connector_cfg_str(ctx, "public_url");
    /* The scheme in any case (RFC 3986); the host must be there: without one no signature can ever match. */
    size_t scheme = strncasecmp(url, "https://", 8) == 0 ? 8 : strncasecmp(url, "http://", 7) == 0 ? 7 : 0;
    if (scheme == 0 || strpbrk(url, "?# ") != NULL)
        omni_connector_check_error(ctx, "public_url", "\"%s\" is not an http(s) URL without query", url);
    else if (strcspn(url + scheme, "/") == 0)
        omni_connector_check_error(ctx, "public_url", "\"%s\" has no host (https://HOST/PATH)", url);
    const char *const *paths;
    size_t n = omni_connector_cfg_list(ctx, "paths", &paths);
    for (size_t i = 0; i < n; i++)
        if (paths[i][0] != '/')
            omni_connector_check_error(ctx, "paths", "\"%s\" does not start with /", paths[i]);
    /* Answered inside XML and texted: text only. A C0 control other than a line break or tab is not XML 1.0;
     * DEL and the C1 controls (U+0080..U+009F, UTF-8 C2 80..C2 9F) are control characters all the same; U+FFFE
     * and U+FFFF (EF BF BE/BF) are not XML characters either, and Twilio could not parse the answer. */
    const char *reply = omni_connector_cfg_str(ctx, "outpost_reply");
    size_t bad = 0;
    if (reply && !omni_utf8_valid(reply, strlen(reply), &bad))
        omni_connector_check_error(ctx, "outpost_reply", "not UTF-8 at byte %zu", bad);
    else
        for (size_t k = 0; reply && reply[k]; k++) {
            const unsigned char *u = (const unsigned char *)reply + k;
            if ((u[0] < 0x20 && u[0] != '\n' && u[0] != '\t') || u[0] == 0x7f || (u[0] == 0xc2 && u[1] < 0xa0)) {
                omni_connector_check_error(ctx, "outpost_reply", "holds a control character (byte %zu): text only", k);
                break;
            }
            if (u[0] == 0xef && u[1] == 0xbf && (u[2] == 0xbe || u[2] == 0xbf)) {
                omni_connector_check_error(ctx, "outpost_reply", "holds U+%s (byte %zu): not a character XML allows",
                                           u[2] == 0xbe ? "FFFE" : "FFFF", k);
                break;
            }
        }
    omni_http_intake_check(ctx);
    omni_connector_check_secret(ctx, "auth_token");
    return 0;
}

static void sms_handle(void *user, omni_http_req_t *req)
{
    sms_t *s = user;
    const char *path = omni_http_path(req), *peer = omni_http_peer(req);
    size_t i = 0;
    while (i < s->n_paths && strcmp(s->paths[i], path) != 0)
        i++;
    if (i == s->n_paths) {
        omni_http_respond(req, 404, NULL, "not a webhook path of this connector\n");
        return;
    }
    if (strcmp(omni_http_method(req), "POST") != 0) {
        omni_http_respond_405(req, "POST", "POST only\n");
        return;
    }
    const char *sig = omni_http_header(req, "X-Twilio-Signature");
    if (sig == NULL) {
        omni_warn("POST %s from %s: no X-Twilio-Signature: 401", path, peer);
        omni_http_respond(req, 401, NULL, "X-Twilio-Signature missing\n");
        return;
    }
    size_t len;
    const char *body = omni_http_body(req, &len);
    char *url = tw_signed_url(s->public_url, path, omni_http_query(req));
    char hash[80], why[512] = "";
    tw_params_t params = { 0 };
    bool json = tw_query_value(omni_http_query(req), "bodySHA256", hash, sizeof hash);
    bool ok;
    if (json) {
        /* The JSON variant: the URL (with bodySHA256) is signed, and the hash binds the body. */
        ok = tw_signature_valid(s->token, s->toklen, url, NULL, sig) && tw_body_hash_valid(hash, body, len);
    } else if (tw_form_parse(body, len, &params, why, sizeof why) != 0) {
        omni_warn("POST %s from %s: malformed form body: %s: 400", path, peer, why);
        omni_http_respond(req, 400, NULL, "malformed form body\n");
        goto out;
    } else {
        ok = tw_signature_valid(s->token, s->toklen, url, &params, sig);
    }
    if (!ok) {
        omni_warn("POST %s from %s: X-Twilio-Signature does not match%s for %s (is sms.public_url the URL "
                  "Twilio calls?): 403", path, peer, json ? " (or bodySHA256 is not the body's)" : "", url);
        omni_http_respond(req, 403, NULL, "bad signature\n");
        goto out;
    }
    if (json && tw_json_params(body, len, &params, why, sizeof why) != 0) {
        omni_warn("POST %s from %s: %s: 400", path, peer, why);
        omni_http_invalid(req, 1);
        omni_http_respond(req, 400, NULL, "malformed JSON body\n");
        goto out;
    }
    char now[40];
    omni_msg_t *msg = NULL;
    switch (tw_message(&params, omni_rfc3339(omni_wall_ms(), now, sizeof now), &msg, why, sizeof why)) {
    case TW_MALFORMED:
        omni_warn("POST %s from %s: %s: 400", path, peer, why);
        omni_http_invalid(req, 1); /* a message that is not a valid one (a field over the router's limits) */
        omni_http_respond(req, 400, NULL, "malformed webhook\n");
        break;
    case TW_STATUS:
        s->statuses++;
        omni_debug("status callback for %s: %s", tw_param(&params, "MessageSid") ? tw_param(&params, "MessageSid")
                   : "?", tw_param(&params, "MessageStatus"));
        omni_http_respond(req, 200, "text/xml", TWIML_EMPTY);
        break;
    case TW_MESSAGE: {
        /* A 503 if the spool cannot take it: the intake answers that, and nobody is pointed. The spool writes at
         * the commit (a full disk shows there, after this handler), so a number due a pointer has its message
         * committed here first and is recorded as pointed only once it is durable: else the 503 of a failed
         * commit would record them, and Twilio's resend would get no pointer. Only such a message loses the
         * group commit, and an outpost is quiet by definition. A commit failing here is tried again by the
         * intake: 503 when it fails again, else the message is taken and its number pointed next time. */
        int64_t now_ms = omni_wall_ms();
        bool point = omni_http_submit(req, msg) == 0 && s->outpost &&
                     omni_outpost_due(s->outpost, msg->from_id, now_ms) == 1 &&
                     omni_connector_commit(s->ctx) == 0 &&
                     omni_outpost_claim(s->outpost, msg->from_id, now_ms) == 1;
        if (point)
            omni_info("%s: outpost: %s pointed to a covered channel", msg->id, msg->from_id);
        omni_msg_destroy(&msg);
        omni_http_respond(req, 200, "text/xml", point ? s->pointer : TWIML_EMPTY);
        break;
    }
    }
out:
    tw_params_free(&params);
    free(url);
}

/* <Response><Message>text</Message></Response>, text escaped for XML (a new string the caller frees). */
static char *twiml_message(const char *text)
{
    size_t cap = strlen(text) * 6 + 64, n = 0;
    char *out = omni_calloc(1, cap);
    n += (size_t)snprintf(out, cap, "<Response><Message>");
    for (const char *p = text; *p; p++) {
        const char *e = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '"' ? "&quot;" : NULL;
        if (e)
            n += (size_t)snprintf(out + n, cap - n, "%s", e);
        else
            out[n++] = *p;
    }
    snprintf(out + n, cap - n, "</Message></Response>");
    return out;
}

static int sms_open(omni_connector_t *ctx)
{
    sms_t *s = omni_calloc(1, sizeof *s);
    s->ctx = ctx;
    s->public_url = omni_connector_cfg_str(ctx, "public_url");
    s->n_paths = omni_connector_cfg_list(ctx, "paths", &s->paths);
    char err[512];
    long n = omni_connector_secret(ctx, "auth_token", s->token, sizeof s->token, err, sizeof err);
    if (n < 0) {
        omni_error("%s", err);
        free(s);
        return -1;
    }
    s->toklen = (size_t)n;
    const char *reply = omni_connector_cfg_str(ctx, "outpost_reply");
    if (reply && reply[0]) {
        s->outpost = omni_outpost_new(omni_connector_state_dir(ctx), OUTPOST_STATE,
                                      omni_connector_cfg_int(ctx, "outpost_window"), OMNI_OUTPOST_MAX);
        s->pointer = twiml_message(reply);
    }
    s->in = omni_http_intake_new(ctx, "SMS webhooks", sms_handle, s);
    if (s->in == NULL) {
        explicit_bzero(s->token, sizeof s->token);
        omni_outpost_destroy(&s->outpost);
        free(s->pointer);
        free(s);
        return -1;
    }
    omni_connector_set_user(ctx, s);
    return 0;
}

static int sms_poll(omni_connector_t *ctx)
{
    sms_t *s = omni_connector_user(ctx);
    return omni_http_intake_poll(s->in);
}

static void sms_close(omni_connector_t *ctx)
{
    sms_t *s = omni_connector_user(ctx);
    omni_http_intake_destroy(&s->in);
    explicit_bzero(s->token, sizeof s->token);
    omni_outpost_destroy(&s->outpost);
    free(s->pointer);
    free(s);
    omni_connector_set_user(ctx, NULL);
}

const omni_connector_def_t sms_connector = {
    .name = "sms",
    .channel = "sms",
    .summary = "Takes Twilio-compatible inbound SMS/MMS webhooks (signed) and sends each message to omnirouted.",
    .keys = sms_keys,
    .check = sms_check,
    .open = sms_open,
    .poll = sms_poll,
    .close = sms_close,
};
