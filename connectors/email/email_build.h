/* From a parsed email (mime.h) and where it was found to the normalized message (message.h).
 *
 * id        "email:<account>:<32 hex digits>": the first 128 bits of the content key (email_content_key).
 *           Not "<uidvalidity>:<uid>": those change when a mailbox is rebuilt, and after such a change
 *           the connector re-reads recent mail (uidstate.h); content ids make the router's dedup by id
 *           drop what was already taken. The uid and uidvalidity travel in meta.
 * from      the sender's address normalized by omni_email_normalize, name decoded. A message with no
 *           usable sender address gets "<16 hex of its key>@no-sender.invalid" (the reserved .invalid
 *           domain, RFC 2606) and meta.no_sender = true: kept and routed, never merged with another.
 * received_at  the Date header when it is sane (within EMAIL_DATE_PAST_MS before and EMAIL_DATE_FUTURE_MS
 *           after the server's INTERNALDATE, or now when that is unknown), else INTERNALDATE, else now;
 *           meta.date_ignored = true when a Date header was there and not used (not sane, or not a date).
 * text      cut at a UTF-8 boundary to max_text bytes; then meta.truncated = true and meta.text_bytes =
 *           the full size. Likewise when the fetch itself stopped at the fetch limit (meta.size tells
 *           the size on the server). Never cut silently.
 * subject, thread, from.name, attachment names: cut to the router's field limit, listed in
 *           meta.truncated_fields. Attachments past the router's count limit are left out and
 *           meta.attachments_total gives the real count. If the whole JSON is still over the router's
 *           message limit (a text of control characters escapes to 6 bytes each), the text is cut further.
 * meta      account, mailbox, uid, uidvalidity, size, message_id, in_reply_to, auto, auto_reason,
 *           and the flags above when they apply. */
#ifndef EMAIL_BUILD_H
#define EMAIL_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mime.h"
#include "omni/message.h"

#define EMAIL_DATE_PAST_MS   (30LL * 24 * 3600 * 1000) /* mail may sit in queues for days */
#define EMAIL_DATE_FUTURE_MS (24LL * 3600 * 1000)      /* clock and time-zone mistakes */

typedef struct email_source {
    const char *account;      /* config name of the mailbox entry's account; borrowed */
    const char *mailbox;      /* IMAP mailbox name; borrowed */
    const char *address;      /* our address ("to"); NULL to leave it out; borrowed */
    uint32_t uidvalidity, uid;
    bool has_internaldate;
    int64_t internaldate_ms;
    int64_t now_ms;
    long long size;           /* RFC822.SIZE on the server */
    bool fetch_truncated;     /* only the first bytes were fetched (the fetch limit) */
    size_t max_text;          /* bytes of text kept */
} email_source_t;

/* Builds the message. key is email_content_key() of the raw bytes. lim gives the router's limits the
 * result must fit. Returns a new message (caller owns; omni_msg_destroy). Never NULL. */
omni_msg_t *email_build(const email_parsed_t *p, const char key[65], const email_source_t *src,
                        const omni_limits_t *lim);

#endif
