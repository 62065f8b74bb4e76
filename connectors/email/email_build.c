/* The normalized message of one email (see email_build.h for every rule and limit). */
#include "email_build.h"
#include "mime_text.h"
#include "omni/identity.h"
#include "omni/util.h"

#include <stdio.h>
#include <string.h>

/* A copy of s cut to max bytes at a character boundary; records field in *cut when it was cut.
 * Returns NULL for NULL. Caller frees. */
static char *fit(const char *s, size_t max, const char *field, json_t *cut)
{
    if (!s)
        return NULL;
    size_t len = strlen(s), n = mt_utf8_cut(s, len, max);
    if (n < len)
        json_array_append_new(cut, json_string(field));
    return omni_strndup(s, n);
}

static int64_t pick_received(const email_parsed_t *p, const email_source_t *src, bool *date_ignored)
{
    int64_t ref = src->has_internaldate ? src->internaldate_ms : src->now_ms;
    *date_ignored = p->bad_date;
    if (p->has_date) {
        if (p->date_ms >= ref - EMAIL_DATE_PAST_MS && p->date_ms <= ref + EMAIL_DATE_FUTURE_MS)
            return p->date_ms;
        *date_ignored = true;
    }
    return ref;
}

static void set_str(omni_msg_t *m, const char *key, const char *value)
{
    if (value)
        omni_msg_set_meta(m, key, json_string(value));
}

/* One attempt with the text cut to max_text bytes. */
static omni_msg_t *build(const email_parsed_t *p, const char key[65], const email_source_t *src,
                         const omni_limits_t *lim, size_t max_text)
{
    char id[OMNI_MSG_ID_MAX + 1];
    snprintf(id, sizeof id, "email:%s:%.32s", src->account, key);

    char from[OMNI_IDENTITY_MAX];
    const char *why = NULL;
    bool no_sender = !p->from_addr || omni_email_normalize(p->from_addr, from, sizeof from, &why) != 0;
    if (no_sender)
        snprintf(from, sizeof from, "%.16s@no-sender.invalid", key);

    bool date_ignored;
    char when[40];
    omni_rfc3339(pick_received(p, src, &date_ignored), when, sizeof when);

    json_t *cut = json_array();
    size_t text_len = p->text_len;
    bool text_cut = false;
    if (text_len > max_text) {
        text_len = mt_utf8_cut(p->text, p->text_len, max_text);
        text_cut = true;
    }
    char *text = omni_strndup(p->text, text_len);
    omni_msg_t *m = omni_msg_new(id, "email", from, when, text);

    char *subject = fit(p->subject, lim->field_bytes, "subject", cut);
    char *name = fit(p->from_name, lim->field_bytes, "from.name", cut);
    char *thread = fit(p->thread, lim->field_bytes, "thread", cut);
    omni_msg_set(m, "subject", subject);
    omni_msg_set(m, "from.name", name);
    omni_msg_set(m, "thread", thread);
    omni_msg_set(m, "to", src->address);
    free(subject);
    free(name);
    free(thread);

    size_t n_atts = p->n_atts < lim->attachments ? p->n_atts : lim->attachments;
    for (size_t i = 0; i < n_atts; i++) {
        char f[48];
        snprintf(f, sizeof f, "attachments[%zu].name", i);
        char *an = fit(p->atts[i].name, lim->field_bytes, f, cut);
        omni_msg_add_attachment(m, an, p->atts[i].type, p->atts[i].size, NULL);
        free(an);
    }
    if (n_atts < p->n_atts)
        omni_msg_set_meta(m, "attachments_total", json_integer((json_int_t)p->n_atts));

    set_str(m, "account", src->account);
    set_str(m, "mailbox", src->mailbox);
    omni_msg_set_meta(m, "uid", json_integer(src->uid));
    omni_msg_set_meta(m, "uidvalidity", json_integer(src->uidvalidity));
    omni_msg_set_meta(m, "size", json_integer(src->size));
    char *mid = fit(p->message_id, lim->field_bytes, "meta.message_id", cut);
    char *irt = fit(p->in_reply_to, lim->field_bytes, "meta.in_reply_to", cut);
    set_str(m, "message_id", mid);
    set_str(m, "in_reply_to", irt);
    free(mid);
    free(irt);
    set_str(m, "auto", p->auto_kind);
    set_str(m, "auto_reason", p->auto_reason);
    if (no_sender) {
        omni_msg_set_meta(m, "no_sender", json_true());
        set_str(m, "no_sender_reason", p->from_addr ? why : "no From, Sender, Reply-To or Return-Path");
    }
    if (date_ignored)
        omni_msg_set_meta(m, "date_ignored", json_true());

    if (text_cut || src->fetch_truncated) {
        omni_msg_set_meta(m, "truncated", json_true());
        if (text_cut)
            omni_msg_set_meta(m, "text_bytes", json_integer((json_int_t)p->text_len));
    }
    if (json_array_size(cut) > 0)
        omni_msg_set_meta(m, "truncated_fields", cut);
    else
        json_decref(cut);
    free(text);
    return m;
}

omni_msg_t *email_build(const email_parsed_t *p, const char key[65], const email_source_t *src,
                        const omni_limits_t *lim)
{
    size_t max = src->max_text;
    omni_msg_t *m = build(p, key, src, lim, max);
    /* The JSON may still be over the frame limit when the text escapes badly (control characters take
     * six bytes each): cut the text further until the whole fits. Other errors are the caller's to log. */
    omni_msg_error_t err;
    while (omni_msg_validate(m, lim, &err) != 0 && err.field[0] == '\0' && max > 0) {
        max = (max < p->text_len ? max : p->text_len) / 4 * 3;
        omni_msg_destroy(&m);
        m = build(p, key, src, lim, max);
    }
    return m;
}
