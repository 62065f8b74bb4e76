/* Twilio's inbound webhooks, as pure functions (no I/O) so the tests and the fuzzer reach them directly:
 * form bodies, X-Twilio-Signature, and the message an inbound SMS/MMS becomes. */
#ifndef OMNI_SMS_TWILIO_H
#define OMNI_SMS_TWILIO_H

#include <stdbool.h>
#include <stddef.h>
#include "omni/message.h"

#define TW_PARAMS_MAX 256 /* parameters in one request; Twilio sends about 20 plus 2 per media */
#define TW_MEDIA_MAX 32   /* NumMedia at most (Twilio sends at most 10; the router takes 32 attachments) */

typedef struct tw_param {
    char *name, *value; /* decoded, NUL-terminated (a %00 inside is refused) */
} tw_param_t;

typedef struct tw_params {
    tw_param_t *v;
    size_t n;
} tw_params_t;

/* Decodes an application/x-www-form-urlencoded body ('+' is a space, %XX a byte; repeated names kept in
 * order) into out (caller frees with tw_params_free, also after an error). Returns 0, or -1 with why
 * naming the place ("parameter 3: bad escape \"%G1\""). */
int tw_form_parse(const char *body, size_t len, tw_params_t *out, char *why, size_t whysz);
void tw_params_free(tw_params_t *p);
/* The first value of name, or NULL. */
const char *tw_param(const tw_params_t *p, const char *name);
/* Appends a parameter (copies both). */
void tw_params_add(tw_params_t *p, const char *name, const char *value);

/* The URL Twilio signed: public_url (no trailing '/') + request path ("/" adds nothing) + "?query" when the
 * query is not empty. Caller frees. */
char *tw_signed_url(const char *public_url, const char *path, const char *query);

/* base64 HMAC-SHA1(token, url + for each name sorted, each distinct value sorted: name + value), as Twilio
 * computes it (params NULL: the URL alone, the JSON-body variant). out needs 29 bytes. */
void tw_signature(const char *token, size_t toklen, const char *url, const tw_params_t *params, char out[29]);

/* Checks signature against url as given, and against url with its port removed (when it has one) or with
 * the scheme's default port added (when it has none), as Twilio's own validators do. Each comparison is
 * constant-time. */
bool tw_signature_valid(const char *token, size_t toklen, const char *url, const tw_params_t *params,
                        const char *signature);

/* The JSON-body variant: true when hex_sha256 (the URL's bodySHA256) is the SHA-256 of body, compared in
 * constant time (case-insensitive hex). */
bool tw_body_hash_valid(const char *hex_sha256, const char *body, size_t len);

/* The value of name in a raw query string (not decoded; bodySHA256 is hex), copied into out. Returns
 * true when found and it fit. */
bool tw_query_value(const char *query, const char *name, char *out, size_t outsz);

/* A JSON object body as parameters: string values as they are, numbers and booleans as their JSON text;
 * nested values are refused. Returns 0 or -1 with why. */
int tw_json_params(const char *body, size_t len, tw_params_t *out, char *why, size_t whysz);

typedef enum { TW_MESSAGE, TW_STATUS, TW_MALFORMED } tw_kind_t;

/* What a request's parameters are: an inbound message (*out: the message on channel sms, id
 * sms:<MessageSid>, from the E.164 From, to To, text Body, MediaUrlN/MediaContentTypeN as attachments,
 * Twilio's facts in meta; received_at is now_rfc3339), a status callback (MessageStatus present; *out
 * NULL), or malformed (why names the parameter and the rule). Caller owns *out. */
tw_kind_t tw_message(const tw_params_t *p, const char *now_rfc3339, omni_msg_t **out, char *why, size_t whysz);

#endif
