/* Mailbox entries of email.mailboxes: bare names, key=value fields, defaults, refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../../connectors/email/email_config.h"

static email_box_t defaults(void)
{
    return (email_box_t){.url = "imaps://imap.example.com", .user = "support@example.com",
                         .password = "pw", .tls = IMAP_TLS_STARTTLS};
}

static void test_bare_name(void **state)
{
    (void)state;
    email_box_t d = defaults(), b;
    char err[256];
    assert_int_equal(email_box_parse("Escalations", &d, false, &b, err, sizeof err), 0);
    assert_string_equal(b.mailbox, "Escalations");
    assert_string_equal(b.account, "support@example.com");
    assert_string_equal(b.address, "support@example.com");
    assert_string_equal(b.password, "pw");
    assert_int_equal(b.tls, IMAP_TLS_IMPLICIT); /* imaps:// */
    assert_string_equal(b.key, "support@example.com/Escalations");
    email_box_free(&b);
}

static void test_fields(void **state)
{
    (void)state;
    email_box_t d = defaults(), b;
    char err[256];
    assert_int_equal(email_box_parse("account=sales url=imap://mx:1143 user=sales mailbox=\"Support \\\"Q\\\"\" "
                                     "tls=none address=sales@example.com password=\"a b\"",
                                     &d, false, &b, err, sizeof err), 0);
    assert_string_equal(b.account, "sales");
    assert_string_equal(b.url, "imap://mx:1143");
    assert_string_equal(b.user, "sales");
    assert_string_equal(b.mailbox, "Support \"Q\"");
    assert_int_equal(b.tls, IMAP_TLS_NONE);
    assert_string_equal(b.password, "a b");
    assert_string_equal(b.key, "sales/Support \"Q\"");
    email_box_free(&b);
    /* user without '@': no default address */
    assert_int_equal(email_box_parse("user=bob account=bob", &d, false, &b, err, sizeof err), 0);
    assert_null(b.address);
    assert_string_equal(b.mailbox, "INBOX");
    email_box_free(&b);
}

static void test_password_file(void **state)
{
    (void)state;
    char path[] = "/tmp/omni-email-pw-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret\n", 7), 7);
    close(fd);
    email_box_t d = defaults(), b;
    char err[256], entry[128];
    snprintf(entry, sizeof entry, "mailbox=INBOX password_file=%s", path);
    assert_int_equal(email_box_parse(entry, &d, true, &b, err, sizeof err), 0);
    assert_string_equal(b.password, "s3cret"); /* the entry's file replaces the section's password */
    email_box_free(&b);
    /* a file others may read is refused, as every connector's secrets (docs/connectors.md) */
    chmod(path, 0644);
    assert_int_equal(email_box_parse(entry, &d, true, &b, err, sizeof err), -1);
    assert_non_null(strstr(err, "chmod 600"));
    unlink(path);
    assert_int_equal(email_box_parse(entry, &d, true, &b, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    /* and it may be a systemd credential or an environment variable */
    setenv("OMNI_TEST_IMAP_PW", "from-env", 1);
    assert_int_equal(email_box_parse("mailbox=INBOX password_file=env:OMNI_TEST_IMAP_PW", &d, true, &b, err,
                                     sizeof err), 0);
    assert_string_equal(b.password, "from-env");
    email_box_free(&b);
}

static void test_refusals(void **state)
{
    (void)state;
    email_box_t d = defaults(), b;
    char err[256];
    static const char *const bad[] = {
        "mailbox=INBOX colour=red",          /* unknown field */
        "mailbox=\"open",                    /* unterminated quote */
        "url=http://x mailbox=INBOX",        /* not IMAP */
        "account=has/slash mailbox=INBOX",   /* not a safe account name */
        "tls=maybe mailbox=INBOX",
        "password_file=relative mailbox=INBOX",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (email_box_parse(bad[i], &d, false, &b, err, sizeof err) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    email_box_t none = {.url = "imap://x", .user = "u"};
    assert_int_equal(email_box_parse("INBOX", &none, false, &b, err, sizeof err), -1); /* no password */
    assert_non_null(strstr(err, "password"));
    assert_string_equal(err, "password_file: missing (set email.password_file, or password_file= in the entry; "
                             "or password)");
    email_box_t nouser = {.url = "imap://x", .password = "p"};
    assert_int_equal(email_box_parse("INBOX", &nouser, false, &b, err, sizeof err), -1);
    assert_string_equal(err, "user: missing (set email.user, or user= in the entry)");
    /* a key never written is said missing, with where to write it; not '"" is not imap://host' */
    email_box_t nourl = {.user = "u", .password = "p"};
    assert_int_equal(email_box_parse("INBOX", &nourl, false, &b, err, sizeof err), -1);
    assert_string_equal(err, "url: missing (set email.url, or url= in the entry)");
    email_box_t both = {.url = "imap://x", .user = "u", .password = "p", .password_file = "/etc/pw"};
    assert_int_equal(email_box_parse("INBOX", &both, false, &b, err, sizeof err), -1);
    assert_string_equal(err, "give exactly one of password and password_file, not both");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bare_name),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_password_file),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
