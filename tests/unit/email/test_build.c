/* From a parsed email to the normalized message: ids, received_at, limits that cut and say so. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../connectors/email/email_build.h"
#include "omni/identity.h"
#include "omni/util.h"

#define NOW 1795337232000LL   /* 2026-11-22T08:47:12Z */
static const char KEY[65] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static email_source_t source(void)
{
    return (email_source_t){.account = "support", .mailbox = "INBOX", .address = "support@example.com",
                            .uidvalidity = 7, .uid = 42, .has_internaldate = true,
                            .internaldate_ms = NOW - 60000, .now_ms = NOW, .size = 1234, .max_text = 65536};
}

static omni_msg_t *build_raw(const char *raw, const email_source_t *src)
{
    email_parsed_t *p = email_parse(raw, strlen(raw));
    omni_limits_t lim;
    omni_limits_default(&lim);
    omni_msg_t *m = email_build(p, KEY, src, &lim);
    email_parsed_destroy(&p);
    omni_msg_error_t err;
    char buf[512];
    if (omni_msg_validate(m, &lim, &err) != 0)
        fail_msg("built message invalid: %s", omni_msg_error_str(&err, buf, sizeof buf));
    return m;
}

static json_t *meta(const omni_msg_t *m, const char *k)
{
    return json_object_get(json_object_get(m->json, "meta"), k);
}

static void test_fields(void **state)
{
    (void)state;
    email_source_t src = source();
    omni_msg_t *m = build_raw("From: \"Ann Lee\" <Ann.Lee@Example.COM>\nSubject: Help\nMessage-ID: <m1@x>\n"
                              "In-Reply-To: <r0@x>\nReferences: <root@x> <r0@x>\nAuto-Submitted: auto-replied\n"
                              "Date: Sun, 22 Nov 2026 09:40:00 +0100\n\nHi\n", &src);
    assert_string_equal(m->id, "email:support:0123456789abcdef0123456789abcdef");
    assert_string_equal(m->channel, "email");
    assert_string_equal(m->from_id, "ann.lee@example.com");
    assert_string_equal(m->from_name, "Ann Lee");
    assert_string_equal(m->subject, "Help");
    assert_string_equal(m->thread, "root@x");
    assert_string_equal(m->to, "support@example.com");
    assert_string_equal(m->text, "Hi\n");
    assert_string_equal(m->received_at, "2026-11-22T08:40:00.000Z"); /* the Date: sane */
    assert_string_equal(json_string_value(meta(m, "account")), "support");
    assert_string_equal(json_string_value(meta(m, "mailbox")), "INBOX");
    assert_int_equal(json_integer_value(meta(m, "uid")), 42);
    assert_int_equal(json_integer_value(meta(m, "uidvalidity")), 7);
    assert_int_equal(json_integer_value(meta(m, "size")), 1234);
    assert_string_equal(json_string_value(meta(m, "message_id")), "m1@x");
    assert_string_equal(json_string_value(meta(m, "in_reply_to")), "r0@x");
    assert_string_equal(json_string_value(meta(m, "auto")), "auto-reply");
    assert_null(meta(m, "truncated"));
    assert_null(meta(m, "date_ignored"));
    omni_msg_destroy(&m);
    assert_null(m);
}

static void test_received_at(void **state)
{
    (void)state;
    email_source_t src = source();
    /* year 3609 (raw_email_bad_time.eml): INTERNALDATE instead, and said so */
    omni_msg_t *m = build_raw("From: a@b.c\nDate: Mon, 30 Jun 3609 15:33:50 +0600\n\nx\n", &src);
    assert_string_equal(m->received_at, "2026-11-22T08:46:12.000Z");
    assert_true(json_is_true(meta(m, "date_ignored")));
    omni_msg_destroy(&m);
    /* months before INTERNALDATE: not sane either */
    m = build_raw("From: a@b.c\nDate: Fri, 20 Apr 2001 19:35:02 -0400\n\nx\n", &src);
    assert_string_equal(m->received_at, "2026-11-22T08:46:12.000Z");
    omni_msg_destroy(&m);
    /* a Date header that is not a date: INTERNALDATE, and said so too */
    m = build_raw("From: a@b.c\nDate: yesterday\n\nx\n", &src);
    assert_string_equal(m->received_at, "2026-11-22T08:46:12.000Z");
    assert_true(json_is_true(meta(m, "date_ignored")));
    omni_msg_destroy(&m);
    /* no Date and no INTERNALDATE: now */
    src.has_internaldate = false;
    m = build_raw("From: a@b.c\n\nx\n", &src);
    assert_string_equal(m->received_at, "2026-11-22T08:47:12.000Z");
    assert_null(meta(m, "date_ignored"));
    omni_msg_destroy(&m);
}

static void test_no_sender(void **state)
{
    (void)state;
    email_source_t src = source();
    omni_msg_t *m = build_raw("Subject: who?\n\nbody\n", &src);
    assert_string_equal(m->from_id, "0123456789abcdef@no-sender.invalid");
    char norm[OMNI_IDENTITY_MAX];
    const char *why;
    assert_int_equal(omni_email_normalize(m->from_id, norm, sizeof norm, &why), 0); /* as the router will */
    assert_true(json_is_true(meta(m, "no_sender")));
    omni_msg_destroy(&m);
    m = build_raw("From: not an address\nReturn-Path: <bounce@lists.example>\n\nbody\n", &src);
    assert_string_equal(m->from_id, "bounce@lists.example"); /* Return-Path as the last resort */
    omni_msg_destroy(&m);
    /* a From without an address, and nothing else: the reason says what is wrong with it, not that there
     * was no From */
    m = build_raw("From: not an address\nSubject: s\n\nbody\n", &src);
    assert_string_equal(m->from_id, "0123456789abcdef@no-sender.invalid");
    assert_string_equal(json_string_value(meta(m, "no_sender_reason")), "no '@'");
    omni_msg_destroy(&m);
    m = build_raw("From: undisclosed-recipients:;\nSubject: s\n\nbody\n", &src);
    assert_string_equal(json_string_value(meta(m, "no_sender_reason")), "no '@'");
    omni_msg_destroy(&m);
    m = build_raw("Subject: s\n\nbody\n", &src);
    assert_string_equal(json_string_value(meta(m, "no_sender_reason")), "no From, Sender, Reply-To or Return-Path");
    omni_msg_destroy(&m);
}

static void test_text_cut_at_character(void **state)
{
    (void)state;
    email_source_t src = source();
    src.max_text = 1001; /* odd: the cut would fall inside a two-byte character */
    size_t n = 3000;
    char *raw = malloc(64 + n * 2);
    char *w = raw + sprintf(raw, "From: a@b.c\nContent-Type: text/plain; charset=utf-8\n\n");
    for (size_t i = 0; i < n; i++)
        w += sprintf(w, "\xc3\xa9");
    omni_msg_t *m = build_raw(raw, &src);
    assert_int_equal(strlen(m->text), 1000);
    assert_true(omni_utf8_valid(m->text, 1000, NULL));
    assert_true(json_is_true(meta(m, "truncated")));
    assert_int_equal(json_integer_value(meta(m, "text_bytes")), 6000);
    omni_msg_destroy(&m);
    free(raw);
    src = source();
    src.fetch_truncated = true;
    m = build_raw("From: a@b.c\n\nshort\n", &src);
    assert_true(json_is_true(meta(m, "truncated")));
    assert_null(meta(m, "text_bytes"));
    omni_msg_destroy(&m);
}

static void test_field_limits(void **state)
{
    (void)state;
    email_source_t src = source();
    size_t n = 5000;
    char *raw = malloc(n + 4096);
    char *w = raw + sprintf(raw, "From: a@b.c\nSubject: ");
    memset(w, 's', n);
    w += n;
    w += sprintf(w, "\nContent-Type: multipart/mixed; boundary=B\n\n");
    for (int i = 0; i < 40; i++)
        w += sprintf(w, "--B\nContent-Type: application/octet-stream\n\n%d\n", i);
    sprintf(w, "--B--\n");
    omni_msg_t *m = build_raw(raw, &src);
    assert_int_equal(strlen(m->subject), 4096);
    json_t *cut = meta(m, "truncated_fields");
    assert_string_equal(json_string_value(json_array_get(cut, 0)), "subject");
    assert_int_equal(json_array_size(json_object_get(m->json, "attachments")), 32);
    assert_int_equal(json_integer_value(meta(m, "attachments_total")), 40);
    omni_msg_destroy(&m);
    free(raw);
}

/* 64 KiB of control characters escape to 6 bytes each in JSON: the text is cut until the frame fits. */
static void test_frame_limit(void **state)
{
    (void)state;
    email_source_t src = source();
    size_t n = 65536;
    char *raw = malloc(n + 64);
    char *w = raw + sprintf(raw, "From: a@b.c\n\n");
    memset(w, 0x01, n);
    w[n] = '\0';
    omni_msg_t *m = build_raw(raw, &src); /* build_raw fails the test if it does not validate */
    assert_true(strlen(m->text) < n);
    assert_true(json_is_true(meta(m, "truncated")));
    omni_msg_destroy(&m);
    free(raw);
}

int main(void)
{
    email_mime_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_received_at),
        cmocka_unit_test(test_no_sender),
        cmocka_unit_test(test_text_cut_at_character),
        cmocka_unit_test(test_field_limits),
        cmocka_unit_test(test_frame_limit),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    email_mime_shutdown();
    return r;
}
