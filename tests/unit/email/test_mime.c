/* The MIME layer on every email fixture (../shared/fixtures/email), against what Python's email package
 * decodes (tests/unit/email/fixtures_expected.json, generated once with /usr/bin/python3 and
 * policy=email.policy.default: its "generated_by" says exactly how). Python keeps CRLF in bodies of CRLF
 * files; we give LF, so its text is compared with CRLF turned into LF. Where GMime and Python
 * legitimately differ the JSON says so ("compare" and "why"); the modes are explained in check_text.
 * Run from the repository root (tests/run does); OMNI_FIXTURES overrides the fixtures folder. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../connectors/email/mime.h"

#define EXPECTED "tests/unit/email/fixtures_expected.json"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (run from the repository root)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static const char *fixtures_dir(void)
{
    const char *d = getenv("OMNI_FIXTURES");
    return d ? d : "../shared/fixtures";
}

static email_parsed_t *parse_fixture(const char *rel, char **raw, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/email/%s", fixtures_dir(), rel);
    *raw = slurp(path, len);
    email_parsed_t *p = email_parse(*raw, *len);
    assert_non_null(p);
    return p;
}

static char *crlf_to_lf(const char *s)
{
    char *r = strdup(s), *w = r;
    for (const char *p = s; *p; p++)
        if (!(p[0] == '\r' && p[1] == '\n'))
            *w++ = *p;
    *w = '\0';
    return r;
}

static void check_str(const char *file, const char *what, json_t *want, const char *got)
{
    if (json_is_null(want)) {
        if (got)
            fail_msg("%s: %s: expected none, got \"%s\"", file, what, got);
        return;
    }
    if (!got || strcmp(got, json_string_value(want)) != 0)
        fail_msg("%s: %s: expected \"%s\", got \"%s\"", file, what, json_string_value(want), got ? got : "(none)");
}

/* exact:         our text is Python's.
 * python_prefix: ours begins with Python's and goes on with an appended forwarded message.
 * ours_prefix:   Python's begins with ours (GMime ended the part at a boundary Python reads as text).
 * python_none:   Python finds no body; ours is the hand-written ours_text. */
static void check_text(const char *file, json_t *e, const email_parsed_t *p)
{
    const char *mode = json_string_value(json_object_get(e, "compare"));
    assert_int_equal(strlen(p->text), p->text_len);
    if (strcmp(mode, "python_none") == 0) {
        assert_true(json_is_null(json_object_get(e, "text")));
        check_str(file, "text", json_object_get(e, "ours_text"), p->text);
        return;
    }
    char *py = crlf_to_lf(json_string_value(json_object_get(e, "text")));
    if (strcmp(mode, "exact") == 0) {
        if (strcmp(py, p->text) != 0)
            fail_msg("%s: text: expected [%s], got [%s]", file, py, p->text);
    } else if (strcmp(mode, "python_prefix") == 0) {
        if (strncmp(py, p->text, strlen(py)) != 0)
            fail_msg("%s: text does not begin with Python's [%s]: [%s]", file, py, p->text);
        assert_non_null(strstr(p->text + strlen(py), "---------- Forwarded message ----------\n"));
    } else if (strcmp(mode, "ours_prefix") == 0) {
        if (p->text_len == 0 || strncmp(py, p->text, p->text_len) != 0)
            fail_msg("%s: Python's text does not begin with ours [%s]", file, p->text);
    } else {
        fail_msg("%s: unknown compare mode %s", file, mode);
    }
    free(py);
}

/* Every fixture file has an expectation: a new fixture without one fails here instead of going untested. */
static void check_all_listed(json_t *list)
{
    static const struct { const char *dir, *prefix, *suffix; } SETS[] = {
        {"cpython", "msg_", ".txt"}, {"mikel-mail", "", ".eml"}};
    for (size_t s = 0; s < 2; s++) {
        char path[512];
        snprintf(path, sizeof path, "%s/email/%s", fixtures_dir(), SETS[s].dir);
        DIR *d = opendir(path);
        if (!d)
            fail_msg("cannot list %s (run from the repository root)", path);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            size_t n = strlen(e->d_name), ls = strlen(SETS[s].suffix);
            if (strncmp(e->d_name, SETS[s].prefix, strlen(SETS[s].prefix)) != 0 || n < ls ||
                strcmp(e->d_name + n - ls, SETS[s].suffix) != 0)
                continue;
            char rel[300];
            snprintf(rel, sizeof rel, "%s/%s", SETS[s].dir, e->d_name);
            bool found = false;
            size_t i;
            json_t *x;
            json_array_foreach(list, i, x)
                found = found || strcmp(json_string_value(json_object_get(x, "file")), rel) == 0;
            if (!found)
                fail_msg("%s has no expectation in %s", rel, EXPECTED);
        }
        closedir(d);
    }
}

static void test_every_fixture(void **state)
{
    (void)state;
    json_error_t je;
    json_t *root = json_load_file(EXPECTED, 0, &je);
    if (!root)
        fail_msg("%s: %s (run from the repository root)", EXPECTED, je.text);
    json_t *list = json_object_get(root, "fixtures");
    assert_true(json_array_size(list) >= 14);
    check_all_listed(list);
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *file = json_string_value(json_object_get(e, "file"));
        char *raw;
        size_t len;
        email_parsed_t *p = parse_fixture(file, &raw, &len);
        check_str(file, "subject", json_object_get(e, "subject"), p->subject);
        check_str(file, "from address", json_object_get(e, "from_addr"), p->from_addr);
        check_str(file, "from name", json_object_get(e, "from_name"), p->from_name);
        check_text(file, e, p);
        email_parsed_destroy(&p);
        assert_null(p);
        free(raw);
    }
    json_decref(root);
}

/* Attachments: names decoded (RFC 2047 inside a parameter), types, decoded sizes (what Python's
 * len(part.get_content()) gives for these), a forwarded message listed as "<subject>.eml". */
static void test_attachments(void **state)
{
    (void)state;
    static const struct { const char *file; size_t n; const char *name, *type; long long size; } want[] = {
        {"cpython/msg_07.txt", 1, "dingusfish.gif", "image/gif", 3512},
        {"mikel-mail/attachment_with_base64_encoded_name.eml", 1, "This is a test.pdf", "application/pdf", 399},
        {"cpython/msg_46.txt", 1, "GroupwiseForwardingTest.eml", "message/rfc822", 375},
        {"cpython/msg_10.txt", 4, "part-2", "text/html", 45},
        {"cpython/msg_16.txt", 2, "part-2", "message/delivery-status", 265},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *raw;
        size_t len;
        email_parsed_t *p = parse_fixture(want[i].file, &raw, &len);
        assert_int_equal(p->n_atts, want[i].n);
        assert_string_equal(p->atts[0].name, want[i].name);
        assert_string_equal(p->atts[0].type, want[i].type);
        assert_int_equal(p->atts[0].size, want[i].size);
        email_parsed_destroy(&p);
        free(raw);
    }
    char *raw;
    size_t len;
    email_parsed_t *p = parse_fixture("cpython/msg_10.txt", &raw, &len);
    /* the base64 parts decode to 33 and 34 bytes, the one without an encoding is as written */
    assert_int_equal(p->atts[1].size, 33);
    assert_int_equal(p->atts[2].size, 34);
    assert_int_equal(p->atts[3].size, 47);
    email_parsed_destroy(&p);
    free(raw);
    p = parse_fixture("cpython/msg_16.txt", &raw, &len);
    assert_string_equal(p->atts[1].name, "[scr] yeah for Ians!!.eml");
    assert_string_equal(p->atts[1].type, "message/rfc822");
    email_parsed_destroy(&p);
    free(raw);
}

/* Thread keys, ids and dates from the headers. */
static void test_headers(void **state)
{
    (void)state;
    char *raw;
    size_t len;
    email_parsed_t *p = parse_fixture("mikel-mail/attachment_with_base64_encoded_name.eml", &raw, &len);
    assert_string_equal(p->message_id, "e85734b90505081209eaaa17b@mail.gmail.com");
    assert_string_equal(p->in_reply_to, "F6E2D0B4-CC35-4A91-BA4C-C7C712B10C13@mac.com");
    assert_string_equal(p->thread, "F6E2D0B4-CC35-4A91-BA4C-C7C712B10C13@mac.com"); /* References' first */
    assert_true(p->has_date);
    assert_int_equal(p->date_ms, 1115579351000LL); /* Sun, 8 May 2005 14:09:11 -0500 */
    email_parsed_destroy(&p);
    free(raw);
    p = parse_fixture("mikel-mail/ks_c_5601-1987.eml", &raw, &len);
    assert_string_equal(p->thread, "from@example.com"); /* no References, no In-Reply-To: Message-ID */
    assert_null(p->in_reply_to);
    email_parsed_destroy(&p);
    free(raw);
    p = parse_fixture("mikel-mail/raw_email_bad_time.eml", &raw, &len);
    assert_true(p->has_date); /* year 3609: parsed here, refused by email_build */
    assert_true(p->date_ms > 4102444800000LL);
    email_parsed_destroy(&p);
    free(raw);
    p = parse_fixture("mikel-mail/japanese_iso_2022.eml", &raw, &len);
    assert_false(p->has_date);
    assert_null(p->message_id);
    assert_null(p->thread);
    email_parsed_destroy(&p);
    free(raw);
    /* Encoded-words labelled iso-8859-1 are windows-1252, as bodies are (docs/connectors.md): 0x80-0x9F are
     * its characters, not C1 controls; 0x81 is one it leaves undefined. */
    const char *w1252 = "From: =?iso-8859-1?Q?Ren=E9_=80?= <r@x.org>\r\n"
                        "Subject: =?ISO-8859-1?Q?price_=80_=93ok=94_=81?=\r\n\r\nbody\r\n";
    p = email_parse(w1252, strlen(w1252));
    assert_string_equal(p->subject, "price \xe2\x82\xac \xe2\x80\x9cok\xe2\x80\x9d \xef\xbf\xbd");
    assert_string_equal(p->from_name, "Ren\xc3\xa9 \xe2\x82\xac");
    email_parsed_destroy(&p);
}

static void test_auto_kinds(void **state)
{
    (void)state;
    char *raw;
    size_t len;
    email_parsed_t *p = parse_fixture("cpython/msg_16.txt", &raw, &len); /* postmaster, multipart/report */
    assert_string_equal(p->auto_kind, "bounce");
    email_parsed_destroy(&p);
    free(raw);
    p = parse_fixture("cpython/msg_07.txt", &raw, &len);
    assert_null(p->auto_kind);
    email_parsed_destroy(&p);
    free(raw);

    const char *why;
    assert_string_equal(email_classify("multipart/report", "delivery-status", "a@b.c", NULL, NULL, NULL, NULL, &why),
                        "bounce");
    assert_string_equal(email_classify(NULL, NULL, "MAILER-DAEMON@mx.example", NULL, NULL, NULL, NULL, &why),
                        "bounce");
    assert_string_equal(email_classify(NULL, NULL, "a@b.c", "auto-replied", NULL, "bulk", NULL, &why),
                        "auto-reply");
    assert_null(email_classify(NULL, NULL, "a@b.c", " No ", NULL, NULL, NULL, &why));
    assert_string_equal(email_classify(NULL, NULL, "a@b.c", NULL, "yes", NULL, NULL, &why), "auto-reply");
    assert_string_equal(email_classify("multipart/report", "disposition-notification", "a@b.c", NULL, NULL,
                                       NULL, NULL, &why), "auto-reply");
    assert_string_equal(email_classify(NULL, NULL, "a@b.c", NULL, NULL, "junk", NULL, &why), "bulk");
    assert_string_equal(email_classify(NULL, NULL, "a@b.c", NULL, NULL, NULL, "<mailto:u@x>", &why), "bulk");
    assert_null(email_classify(NULL, NULL, "a@b.c", NULL, NULL, "first-class", NULL, &why));
    assert_null(email_classify(NULL, NULL, "postmaster-team@b.c", NULL, NULL, NULL, NULL, &why));
    /* the reason names the header found */
    const char *ar = "From: a@b.c\r\nX-Autorespond: yes\r\nList-Id: <l.b.c>\r\n\r\nx\r\n";
    p = email_parse(ar, strlen(ar));
    assert_string_equal(p->auto_kind, "auto-reply");
    assert_string_equal(p->auto_reason, "X-Autorespond");
    email_parsed_destroy(&p);
}

/* The content key ignores trace headers and line ends: the file as stored (LF) and as an IMAP server
 * sends it (CRLF, a Received line added) give one key; another body gives another. */
static void test_content_key(void **state)
{
    (void)state;
    const char *lf = "From: a@b.c\nSubject: Hi\n  there\nMessage-ID: <1@b.c>\n\nbody\n";
    const char *crlf = "Received: from x by y\r\nFrom: a@b.c\r\nSubject: Hi\r\n  there\r\n"
                       "Message-ID: <1@b.c>\r\n\r\nbody\r\n";
    const char *other = "From: a@b.c\nSubject: Hi there\nMessage-ID: <1@b.c>\n\nbody!\n";
    char k1[65], k2[65], k3[65];
    email_content_key(lf, strlen(lf), k1);
    email_content_key(crlf, strlen(crlf), k2);
    email_content_key(other, strlen(other), k3);
    assert_int_equal(strlen(k1), 64);
    assert_string_equal(k1, k2);
    assert_string_not_equal(k1, k3);
}

/* Bytes that are not a message (no header block) are kept as text, never dropped. */
static void test_not_a_message(void **state)
{
    (void)state;
    email_parsed_t *p = email_parse("just words\n", 11);
    assert_non_null(p);
    assert_non_null(strstr(p->text, "just words"));
    email_parsed_destroy(&p);
    p = email_parse("", 0);
    assert_non_null(p);
    assert_string_equal(p->text, "");
    email_parsed_destroy(&p);
}

/* An HTML-only message gets its text from the HTML; a text/plain alternative wins over HTML. */
static void test_html_and_alternatives(void **state)
{
    (void)state;
    const char *html = "From: a@b.c\nContent-Type: text/html; charset=utf-8\n\n"
                       "<html><head><style>p{}</style></head><body><p>Hello&nbsp;<b>you</b></p><p>Bye &amp; "
                       "thanks</p></body></html>\n";
    email_parsed_t *p = email_parse(html, strlen(html));
    assert_string_equal(p->text, "Hello you\n\nBye & thanks");
    email_parsed_destroy(&p);
    const char *alt = "From: a@b.c\nContent-Type: multipart/alternative; boundary=X\n\n--X\n"
                      "Content-Type: text/html\n\n<p>html</p>\n--X\nContent-Type: text/plain\n\nplain\n--X--\n";
    p = email_parse(alt, strlen(alt));
    assert_string_equal(p->text, "plain");
    assert_int_equal(p->n_atts, 0); /* the other alternative is the same text, not an attachment */
    email_parsed_destroy(&p);
}

/* RFC 2047 B encoded-words side by side, as mail clients fold a long subject or name: each word padded
 * on its own. GMime 3.2 runs adjacent words of one charset through one base64 decoder, which stops at the
 * first word's padding: "=?UTF-8?B?YQ==?= =?UTF-8?B?Yg==?=" came out "a". Each word is decoded on its
 * own now (a character split across two words still joins), in subjects, names, filenames and forwarded
 * headers; a word without its padding keeps its last bytes, as Python's email package reads it. */
static void test_adjacent_encoded_words(void **state)
{
    (void)state;
    const char *m =
        "From: =?UTF-8?B?SsO8cmdlbg==?=\r\n =?UTF-8?B?IE3DvGxsZXI=?= <jm@example.org>\r\n"
        "Subject: =?UTF-8?B?w6k=?= =?UTF-8?B?w6g=?= =?UTF-8?B?4oI=?= =?UTF-8?B?rA==?= =?utf-8?b?YWI?= end\r\n"
        "Content-Type: multipart/mixed; boundary=M\r\n\r\n"
        "--M\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        "--M\r\nContent-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename=\"=?UTF-8?B?YQ==?= =?UTF-8?B?Yg==?=.pdf\"\r\n\r\nxx\r\n"
        "--M\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: =?UTF-8?B?YQ==?= =?UTF-8?B?Yg==?= <ab@example.org>\r\nSubject: =?UTF-8?B?Yw==?= =?UTF-8?B?ZA==?=\r\n"
        "\r\ninner\r\n--M--\r\n";
    email_parsed_t *p = email_parse(m, strlen(m));
    assert_string_equal(p->from_name, "Jürgen Müller");
    assert_string_equal(p->subject, "éè€ab end");
    assert_int_equal(p->n_atts, 2);
    assert_string_equal(p->atts[0].name, "ab.pdf");
    assert_string_equal(p->atts[1].name, "cd.eml");
    assert_int_equal(p->atts[1].size, 106); /* the forwarded message as transmitted, not as rewritten */
    assert_non_null(strstr(p->text, "From: ab <ab@example.org>\nSubject: cd\n"));
    email_parsed_destroy(&p);
}

/* Base64 without its padding: GMime's decoder drops the last, incomplete group; its bytes are kept (as
 * Python's email package keeps them), in the text and in an attachment's size. And a byte-order mark. */
static void test_unpadded_base64(void **state)
{
    (void)state;
    const char *m = "From: a@b.c\r\nContent-Type: multipart/mixed; boundary=M\r\n\r\n"
                    "--M\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                    "SGVsbG8gd29y\r\nbGQ\r\n"
                    "--M\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nYWJjZA\r\n"
                    "--M\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nYWJjZA==\r\n"
                    "--M\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nYWJjZGU\r\n"
                    "--M--\r\n";
    email_parsed_t *p = email_parse(m, strlen(m));
    assert_string_equal(p->text, "Hello world");

    assert_int_equal(p->n_atts, 3);
    assert_int_equal(p->atts[0].size, 4);
    assert_int_equal(p->atts[1].size, 4);
    assert_int_equal(p->atts[2].size, 5);
    email_parsed_destroy(&p);
    /* a UTF-8 byte-order mark first in the body is no text (docs/connectors.md "The message") */
    const char *bom = "From: a@b.c\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xEF\xBB\xBFHi \xEF\xBB\xBF\r\n";
    p = email_parse(bom, strlen(bom));
    assert_string_equal(p->text, "Hi \xEF\xBB\xBF\n");
    email_parsed_destroy(&p);
}

/* A filename given twice, as an ASCII stand-in and in RFC 2231 form: the RFC 2231 one wins (RFC 6266 4.3),
 * in either order, in Content-Disposition and in Content-Type's name. */
static void test_rfc2231_filename_wins(void **state)
{
    (void)state;
    const char *m = "From: a@b.c\r\nContent-Type: multipart/mixed; boundary=M\r\n\r\n"
                    "--M\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
                    "--M\r\nContent-Type: application/pdf\r\n"
                    "Content-Disposition: attachment; filename=\"Rechnung Marz.pdf\";\r\n"
                    " filename*=utf-8''Rechnung%20M%C3%A4rz.pdf\r\n\r\nxx\r\n"
                    "--M\r\nContent-Type: application/pdf\r\n"
                    "Content-Disposition: attachment; filename*=utf-8''%C3%A9t%C3%A9.pdf; filename=\"ete.pdf\"\r\n"
                    "\r\nxx\r\n"
                    "--M\r\nContent-Type: application/pdf; name=\"resume.pdf\"; name*=iso-8859-1''r%E9sum%E9.pdf\r\n"
                    "\r\nxx\r\n--M--\r\n";
    email_parsed_t *p = email_parse(m, strlen(m));
    assert_int_equal(p->n_atts, 3);
    assert_string_equal(p->atts[0].name, "Rechnung März.pdf");
    assert_string_equal(p->atts[1].name, "été.pdf");
    assert_string_equal(p->atts[2].name, "résumé.pdf");
    email_parsed_destroy(&p);
}

/* A text/plain alternative marked Content-Disposition: attachment is not the body (docs/connectors.md):
 * the text/html one is, and the attached one is listed, so nothing the sender wrote is lost. */
static void test_alternative_with_attached_plain(void **state)
{
    (void)state;
    const char *m = "From: a@b.c\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n"
                    "--A\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\n"
                    "plain\r\n--A\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--A--\r\n";
    email_parsed_t *p = email_parse(m, strlen(m));
    assert_string_equal(p->text, "html");
    assert_int_equal(p->n_atts, 1);
    assert_string_equal(p->atts[0].name, "a.txt");
    assert_string_equal(p->atts[0].type, "text/plain");
    assert_int_equal(p->atts[0].size, 5);
    email_parsed_destroy(&p);
    /* Apple Mail: the files of an HTML mail beside its text/html, in the HTML alternative */
    m = "From: a@b.c\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n"
        "--A\r\nContent-Type: text/plain\r\n\r\nsee the file\r\n"
        "--A\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/html\r\n\r\n<p>see the file</p>\r\n"
        "--B\r\nContent-Type: application/pdf; name=r.pdf\r\nContent-Disposition: attachment; filename=r.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n"
        "--B\r\nContent-Type: text/html\r\n\r\n<p>bye</p>\r\n--B--\r\n--A--\r\n";
    p = email_parse(m, strlen(m));
    assert_string_equal(p->text, "see the file");
    assert_int_equal(p->n_atts, 1);
    assert_string_equal(p->atts[0].name, "r.pdf");
    assert_string_equal(p->atts[0].type, "application/pdf");
    assert_int_equal(p->atts[0].size, 5);
    email_parsed_destroy(&p);
}

/* In-Reply-To in RFC 5322's obsolete form (a phrase before or after the msg-id, as older clients write
 * it) still names the message replied to, and threads by it. */
static void test_in_reply_to_with_a_phrase(void **state)
{
    (void)state;
    const char *m = "From: a@b.c\r\nMessage-ID: <m3@x>\r\n"
                    "In-Reply-To: Your message of \"Mon, 1 Jan 2024 10:00:00 +0100\"\r\n <m2@x.example>\r\n\r\nx\r\n";
    email_parsed_t *p = email_parse(m, strlen(m));
    assert_non_null(p->in_reply_to);
    assert_string_equal(p->in_reply_to, "m2@x.example");
    assert_string_equal(p->thread, "m2@x.example");
    email_parsed_destroy(&p);
    m = "From: a@b.c\r\nIn-Reply-To: <m2@x.example> (Ann's message of today)\r\n\r\nx\r\n";
    p = email_parse(m, strlen(m));
    assert_string_equal(p->in_reply_to, "m2@x.example");
    email_parsed_destroy(&p);
    const char *phrases[] = {"Your message of Mon, 1 Jan 2024 10:00:00 +0100 <m2@x.example>",
                             "Re: your mail <m2@x.example>", "Your message of ... <m2@x.example>"};
    for (size_t i = 0; i < sizeof phrases / sizeof *phrases; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "From: a@b.c\r\nMessage-ID: <m3@x>\r\nIn-Reply-To: %s\r\n\r\nx\r\n", phrases[i]);
        p = email_parse(buf, strlen(buf));
        assert_non_null(p->in_reply_to);
        assert_string_equal(p->in_reply_to, "m2@x.example");
        assert_string_equal(p->thread, "m2@x.example");
        email_parsed_destroy(&p);
    }
}

/* A Content-Type without "type/subtype" is invalid: RFC 2045 5.2 reads the part as text/plain (its charset
 * kept), so the sender's text is the message's text, not a nameless application/octet-stream file. */
static void test_invalid_content_type_is_text_plain(void **state)
{
    (void)state;
    const char *m = "From: a@b.c\r\nContent-Type: text\r\n\r\nhi there\r\n";
    email_parsed_t *p = email_parse(m, strlen(m));
    assert_string_equal(p->text, "hi there\n");
    assert_int_equal(p->n_atts, 0);
    email_parsed_destroy(&p);
    m = "From: a@b.c\r\nContent-Type: multipart/mixed; boundary=A\r\n\r\n"
        "--A\r\nContent-Type: text; charset=iso-8859-1\r\n\r\ncaf\xe9\r\n--A--\r\n";
    p = email_parse(m, strlen(m));
    assert_string_equal(p->text, "caf\xc3\xa9");
    assert_int_equal(p->n_atts, 0);
    email_parsed_destroy(&p);
}

/* An encoded-word's bytes its charset cannot decode become U+FFFD, as in the text (Python's email package
 * reads them so), not '?': a UTF-8 label on latin-1 bytes is common. Its name, filename and a forwarded
 * message's headers likewise; us-ascii keeps its '?' (docs/connectors.md). */
static void test_undecodable_bytes_in_encoded_words(void **state)
{
    (void)state;
    const char *m = "From: =?utf-8?q?J=FCrgen?= <j@x.example>\r\nSubject: =?utf-8?q?caf=E9?= =?UTF-8?Q?_=C3?=\r\n"
                    " =?UTF-8?Q?=A9?= =?us-ascii?Q?=E9?=\r\nContent-Type: multipart/mixed; boundary=A\r\n\r\n"
                    "--A\r\nContent-Type: text/plain\r\n\r\nb\r\n--A\r\nContent-Type: application/pdf\r\n"
                    "Content-Disposition: attachment; filename=\"=?utf-8?q?bad=E9.pdf?=\"\r\n\r\nxy\r\n--A--\r\n";
    email_parsed_t *p = email_parse(m, strlen(m));
    assert_string_equal(p->subject, "caf\xef\xbf\xbd \xc3\xa9?");
    assert_string_equal(p->from_name, "J\xef\xbf\xbdrgen");
    assert_int_equal(p->n_atts, 1);
    assert_string_equal(p->atts[0].name, "bad\xef\xbf\xbd.pdf");
    email_parsed_destroy(&p);
    m = "From: a@b.c\r\nSubject: 100% =?UTF-8?Q?=?= =?utf-8?q?ok=4?=\r\n\r\nx\r\n"; /* malformed: as written */
    p = email_parse(m, strlen(m));
    assert_string_equal(p->subject, "100% =?UTF-8?Q?=?= =?utf-8?q?ok=4?=");
    email_parsed_destroy(&p);
}

/* A bounce a local MTA wrote, From its mailer-daemon with no domain: still a bounce (docs/connectors.md
 * "From mailer-daemon/postmaster"), and still a message with no usable sender. */
static void test_bounce_from_a_mailer_daemon_without_domain(void **state)
{
    (void)state;
    const char *m = "From: Mail Delivery Subsystem <MAILER-DAEMON>\r\nSubject: Undelivered Mail\r\n\r\nx\r\n";
    email_parsed_t *p = email_parse(m, strlen(m));
    assert_non_null(p->auto_kind);
    assert_string_equal(p->auto_kind, "bounce");
    assert_string_equal(p->auto_reason, "From: mailer-daemon");
    assert_null(strchr(p->from_addr, '@'));
    email_parsed_destroy(&p);
    m = "From: Postmaster\r\nSubject: s\r\n\r\nx\r\n";
    p = email_parse(m, strlen(m));
    assert_non_null(p->auto_kind);
    assert_string_equal(p->auto_kind, "bounce");
    email_parsed_destroy(&p);
    m = "From: Ann <ann>\r\nSubject: s\r\n\r\nx\r\n";
    p = email_parse(m, strlen(m));
    assert_null(p->auto_kind);
    email_parsed_destroy(&p);
}

int main(void)
{
    email_mime_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_fixture),
        cmocka_unit_test(test_attachments),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_auto_kinds),
        cmocka_unit_test(test_content_key),
        cmocka_unit_test(test_not_a_message),
        cmocka_unit_test(test_html_and_alternatives),
        cmocka_unit_test(test_adjacent_encoded_words),
        cmocka_unit_test(test_unpadded_base64),
        cmocka_unit_test(test_rfc2231_filename_wins),
        cmocka_unit_test(test_alternative_with_attached_plain),
        cmocka_unit_test(test_in_reply_to_with_a_phrase),
        cmocka_unit_test(test_invalid_content_type_is_text_plain),
        cmocka_unit_test(test_undecodable_bytes_in_encoded_words),
        cmocka_unit_test(test_bounce_from_a_mailer_daemon_without_domain),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    email_mime_shutdown();
    return r;
}
