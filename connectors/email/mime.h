/* The email connector's MIME layer: one raw RFC 5322 message in, the facts a normalized message needs
 * out (sender, subject, text, attachments, thread, automatic-mail class). Built on GMime 3.
 *
 * What "text" is:
 *   - the first body part found depth-first, as Python's email.message.get_body() finds it: in a
 *     multipart/alternative the text/plain alternative is preferred, then text/html (converted to text,
 *     see mime_text.h), then the last alternative; in multipart/related the root part; a part with
 *     Content-Disposition: attachment is never the body;
 *   - every other leaf part is listed as an attachment (name, type, decoded size); the alternatives not
 *     chosen are other renderings of the same text and are not listed;
 *   - a message/rfc822 part (a forwarded message, a bounced original) is listed as an attachment
 *     ("<its subject>.eml", its size as transmitted) AND its own text is appended after a line
 *     "---------- Forwarded message ----------" and its From/Date/Subject/To lines, so an agent reads a
 *     forwarded mail without opening it. Its own attachments are not listed (they are inside the .eml);
 *   - a multipart without a boundary (broken mail) is read as text/plain;
 *   - charsets are converted to UTF-8 with U+FFFD for undecodable bytes (mt_to_utf8), newlines are LF, a
 *     UTF-8 byte-order mark first in the body is dropped, unpadded base64 keeps its last bytes;
 *   - RFC 2047 B encoded-words are rewritten as Q words before GMime decodes them (mt_2047_b_to_q says
 *     why); a filename in RFC 2231 form wins over a plain one given too;
 *   - text/plain; format=flowed is unwrapped (RFC 3676, DelSp included; mt_unflow in mime_text.h).
 * Limits: parts nested deeper than EMAIL_MIME_MAX_DEPTH are listed as attachments, not walked. The text
 * is returned whole; cutting it to the router's limit is the caller's job (email_build.h). */
#ifndef EMAIL_MIME_H
#define EMAIL_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMAIL_MIME_MAX_DEPTH 32

typedef struct email_attachment {
    char *name;      /* UTF-8: the filename (RFC 2231 / RFC 2047 decoded), else "part-<section>" */
    char *type;      /* lowercased "type/subtype" */
    long long size;  /* bytes after Content-Transfer-Encoding decoding */
} email_attachment_t;

typedef struct email_parsed {
    char *subject;        /* decoded, unfolded UTF-8; NULL when absent */
    char *from_addr;      /* addr-spec of From (else Sender, Reply-To, Return-Path); when none of them holds
                           * an address with a domain, the first of them present as written (the identity
                           * check then says what is wrong with it); NULL when none is present */
    char *from_name;      /* its display name, decoded; NULL when none */
    char *message_id;     /* without angle brackets; NULL when absent */
    char *in_reply_to;    /* first msg-id of In-Reply-To, without brackets; NULL when absent */
    char *thread;         /* first msg-id of References (the root), else In-Reply-To, else Message-ID */
    bool has_date;        /* the Date header parsed */
    bool bad_date;        /* a Date header is there and could not be read */
    int64_t date_ms;      /* then: its time, ms since the epoch */
    char *text;           /* never NULL; UTF-8, LF newlines */
    size_t text_len;
    email_attachment_t *atts;
    size_t n_atts;
    const char *auto_kind; /* NULL, or "bounce", "auto-reply", "bulk" (static strings) */
    const char *auto_reason; /* when auto_kind: which rule decided, e.g. "Precedence: bulk" (static) */
} email_parsed_t;

/* GMime's global setup; call once before email_parse() and email_mime_shutdown() at the end. */
void email_mime_init(void);
void email_mime_shutdown(void);

/* Parses len bytes of a raw message (CRLF or LF). Returns a new result the caller owns (free with
 * email_parsed_destroy); never NULL: bytes GMime cannot read as a message (no header block) become the
 * text, so nothing fetched is dropped. */
email_parsed_t *email_parse(const char *raw, size_t len);

/* Frees and sets *p = NULL; NULL and *p == NULL are fine. */
void email_parsed_destroy(email_parsed_t **p);

/* A content key of a raw message: 64 lowercase hex digits of SHA-256 over Message-ID, Date, From,
 * Subject and the body with CRs removed (mime_key.c says why those). The same message read again from
 * any folder, after any UIDVALIDITY change, gives the same key. out gets 65 bytes (NUL-terminated). */
void email_content_key(const char *raw, size_t len, char out[65]);

/* Classifies automatic mail from its headers (values as found, NULL when absent); used by email_parse,
 * exposed for tests. Returns NULL, "bounce", "auto-reply" or "bulk" and points *why at a static reason.
 * Bounce wins over auto-reply over bulk:
 *   bounce:     Content-Type multipart/report with report-type delivery-status, or a From local part
 *               mailer-daemon or postmaster (or a From address that is only that, without a domain);
 *   auto-reply: Auto-Submitted present and not "no" (RFC 3834), X-Autoreply or X-Autorespond present,
 *               multipart/report of another type (read receipts);
 *   bulk:       Precedence bulk, list or junk; List-Unsubscribe present (newsletters). List-Id alone is
 *               not bulk: a customer may write through a group address. */
const char *email_classify(const char *content_type, const char *report_type, const char *from_addr,
                           const char *auto_submitted, const char *x_autoreply, const char *precedence,
                           const char *list_unsubscribe, const char **why);

#endif
