/* The optional Account Activity webhook of omni-twitter, on libomni's HTTP intake (http_intake.h), enabled
 * by twitter.consumer_secret:
 *   GET  ?crc_token=T   answered 200 {"response_token":"sha256=..."} (tw_crc.h), X's challenge-response check;
 *   POST                its x-twitter-webhooks-signature ("sha256=" + base64 HMAC-SHA256(consumer secret,
 *                       body)) compared in constant time: 200 when right (the events themselves are taken
 *                       by polling: mentions and DMs come with their ids, so nothing is taken twice), 401
 *                       when missing, 403 when wrong;
 *   anything else       400 (GET without crc_token, or one over TW_CRC_TOKEN_MAX) or 405. */
#ifndef TW_WEBHOOK_H
#define TW_WEBHOOK_H

#include "omni/connector.h"

typedef struct tw_webhook tw_webhook_t;

/* Loads the consumer secret and listens (twitter.listen). Returns the webhook (caller owns;
 * tw_webhook_destroy) or NULL after logging why. It watches its fd: the caller watches its own after. */
tw_webhook_t *tw_webhook_new(omni_connector_t *ctx);
void tw_webhook_destroy(tw_webhook_t **wh);

/* The fd to wait on (readable when a request is ready), and serving it from poll(): 0, or -1 (logged). */
int tw_webhook_fd(const tw_webhook_t *wh);
int tw_webhook_poll(tw_webhook_t *wh);

/* Counters for the status line: requests, and answers 401/403. */
void tw_webhook_counts(const tw_webhook_t *wh, unsigned long long *requests, unsigned long long *rejected);

#endif
