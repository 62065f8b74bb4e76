/* Messenger Platform webhooks, as pure functions (no I/O) for the tests and the fuzzer: X-Hub-Signature-256
 * and the messages a POST's entries and messaging events become. */
#ifndef OMNI_FACEBOOK_MESSENGER_H
#define OMNI_FACEBOOK_MESSENGER_H

#include <stdbool.h>
#include <stddef.h>
#include "omni/message.h"

#define FB_EVENTS_MAX 1000 /* messaging events in one POST (Meta batches up to 1000) */

/* What one POST held. */
typedef struct fb_batch {
    omni_msg_t **msgs;   /* messages and postbacks to route, in the order of the body */
    size_t n_msgs;
    size_t echoes, deliveries, reads, other; /* events ignored: our own messages, receipts, everything else */
    char **skipped;      /* events that could not be read, each "entry[0].messaging[2]: sender.id: missing" */
    size_t n_skipped;
} fb_batch_t;

/* True when header is "sha256=" + the hex HMAC-SHA256 of body under app_secret (hex case-insensitive),
 * compared in constant time. */
bool fb_signature_valid(const char *secret, size_t secretlen, const char *body, size_t len, const char *header);

/* Reads a webhook body. Returns 0 with *out filled (caller frees with fb_batch_free, also after an error),
 * 1 when the object is not "page" (another product's webhook: nothing to route), or -1 with why naming the
 * place when the envelope cannot be read (not JSON, no entry array, over FB_EVENTS_MAX events). A single
 * event that cannot be read is listed in out->skipped and the others are kept.
 *
 * A message event becomes id facebook:<mid>, from.id the sender's page-scoped id, to the page id,
 * received_at its timestamp, text its text, attachments their type, url (a location's coordinates as a geo:
 * URI) and name (the URL's last segment, percent-decoded), meta page_id, quick_reply (the payload), reply_to
 * (a mid), sticker_id (the message's, else an attachment payload's). A postback becomes facebook:<mid> (or,
 * without a mid, facebook:postback:<sender>:<timestamp>), text its title, meta postback {title, payload,
 * referral}. */
int fb_parse(const char *body, size_t len, fb_batch_t *out, char *why, size_t whysz);
void fb_batch_free(fb_batch_t *b);

#endif
