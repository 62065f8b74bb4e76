/* libomni secret.c: where secrets come from (file, credential:, env:), refused modes, and the digests,
 * checked against the published Standard Webhooks vector (../shared/fixtures/standard-webhooks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "omni/secret.h"
#include "omni/util.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/omni-secret-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = omni_asprintf("rm -rf '%s'", dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static char *write_file(const char *name, const char *text, mode_t mode)
{
    char *path = omni_asprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void test_file_env_credential(void **state)
{
    (void)state;
    char out[128], err[256];
    char *path = write_file("token", "s3cret\n", 0600);
    assert_int_equal(omni_secret_load(path, "sms.auth_token", out, sizeof out, err, sizeof err), 6);
    assert_string_equal(out, "s3cret");
    setenv("OMNI_TEST_SECRET", "from-env", 1);
    assert_int_equal(omni_secret_load("env:OMNI_TEST_SECRET", "x", out, sizeof out, err, sizeof err), 8);
    assert_string_equal(out, "from-env");
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    assert_int_equal(omni_secret_load("credential:token", "x", out, sizeof out, err, sizeof err), 6);
    assert_string_equal(out, "s3cret");
    free(path);
}

static void test_refusals_name_the_key(void **state)
{
    (void)state;
    char out[16], err[256];
    char *open_ = write_file("open", "s3cret\n", 0644);
    assert_int_equal(omni_secret_load(open_, "facebook.app_secret", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "facebook.app_secret"));
    assert_non_null(strstr(err, "readable by others"));
    char *empty = write_file("empty", "\n", 0600);
    assert_int_equal(omni_secret_load(empty, "k", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "empty"));
    char *big = write_file("big", "0123456789abcdefXYZ", 0600);
    assert_int_equal(omni_secret_load(big, "k", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than"));
    unsetenv("OMNI_TEST_UNSET");
    assert_int_equal(omni_secret_load("env:OMNI_TEST_UNSET", "k", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "OMNI_TEST_UNSET"));
    unsetenv("CREDENTIALS_DIRECTORY");
    assert_int_equal(omni_secret_load("credential:x", "k", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "CREDENTIALS_DIRECTORY"));
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    assert_int_equal(omni_secret_load("credential:../etc/passwd", "k", out, sizeof out, err, sizeof err), -1);
    assert_int_equal(omni_secret_load("", "k", out, sizeof out, err, sizeof err), -1);
    free(open_);
    free(empty);
    free(big);
}

/* "Secrets are at most 4096 bytes" (docs/connectors.md, "Secrets"): one of exactly OMNI_SECRET_MAX bytes is taken,
 * with or without the final newline a file drops, in a buffer of OMNI_SECRET_MAX + 1 as the connectors give;
 * one byte more is refused. And in any buffer: a secret that fits it is taken, with its newline in the file. */
static void test_a_secret_of_the_maximum_size(void **state)
{
    (void)state;
    char out[OMNI_SECRET_MAX + 1], err[256], *text = omni_malloc(OMNI_SECRET_MAX + 3);
    memset(text, 'k', OMNI_SECRET_MAX);
    text[OMNI_SECRET_MAX] = '\0';
    char *exact = write_file("exact", text, 0600);
    long n = omni_secret_load(exact, "sms.auth_token", out, sizeof out, err, sizeof err);
    if (n != OMNI_SECRET_MAX)
        fail_msg("a secret of %d bytes: %ld (%s)", OMNI_SECRET_MAX, n, n < 0 ? err : "");
    assert_int_equal(strlen(out), OMNI_SECRET_MAX);
    strcat(text, "\n");
    char *nl = write_file("exact-nl", text, 0600);
    assert_int_equal(omni_secret_load(nl, "k", out, sizeof out, err, sizeof err), OMNI_SECRET_MAX);
    strcpy(text + OMNI_SECRET_MAX, "\r\n");
    char *crlf = write_file("exact-crlf", text, 0600);
    assert_int_equal(omni_secret_load(crlf, "k", out, sizeof out, err, sizeof err), OMNI_SECRET_MAX);
    strcpy(text + OMNI_SECRET_MAX, "k");
    char *over = write_file("over", text, 0600);
    assert_int_equal(omni_secret_load(over, "k", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than 4096 bytes"));
    strcpy(text + OMNI_SECRET_MAX, "k\n");
    char *over_nl = write_file("over-nl", text, 0600);
    assert_int_equal(omni_secret_load(over_nl, "k", out, sizeof out, err, sizeof err), -1);
    char small[8];
    char *seven = write_file("seven", "1234567\n", 0600);
    assert_int_equal(omni_secret_load(seven, "k", small, sizeof small, err, sizeof err), 7);
    assert_string_equal(small, "1234567");
    setenv("OMNI_TEST_SECRET", "", 1);
    assert_int_equal(omni_secret_load("env:", "k", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "names no variable"));
    free(text);
    free(exact);
    free(nl);
    free(crlf);
    free(over);
    free(over_nl);
    free(seven);
}

/* The published vector: v1,base64(HMAC-SHA256(base64decode(secret without whsec_), id.timestamp.body)). */
static void test_standard_webhooks_vector(void **state)
{
    (void)state;
    unsigned char key[64], mac[32];
    long klen = omni_base64_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, sizeof key);
    assert_int_equal(klen, 24);
    const char *signed_ = "msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}";
    assert_int_equal(omni_hmac_sha256(key, (size_t)klen, signed_, strlen(signed_), mac), 32);
    char b64[64];
    assert_int_equal(omni_base64_encode(mac, 32, b64), 44);
    assert_string_equal(b64, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    assert_false(omni_ct_equal(b64, 44, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", 44));
    assert_true(omni_ct_equal(b64, 44, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", 44));
    assert_false(omni_ct_equal(b64, 44, b64, 43));
}

static void test_base64_hex_sha(void **state)
{
    (void)state;
    unsigned char out[16];
    assert_int_equal(omni_base64_decode("YQ==", out, sizeof out), 1);
    assert_int_equal(out[0], 'a');
    assert_int_equal(omni_base64_decode("YWI=", out, sizeof out), 2);
    assert_int_equal(omni_base64_decode("YWJj", out, sizeof out), 3);
    assert_int_equal(omni_base64_decode("YWJ", out, sizeof out), -1);   /* not a multiple of 4 */
    assert_int_equal(omni_base64_decode("Y=Jj", out, sizeof out), -1);  /* padding inside */
    assert_int_equal(omni_base64_decode("YW J", out, sizeof out), -1);  /* not base64 */
    unsigned char d[32];
    char hex[65];
    omni_sha256("abc", 3, d);
    assert_string_equal(omni_hex(d, 32, hex), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    unsigned char m1[20];
    assert_int_equal(omni_hmac_sha1("key", 3, "The quick brown fox jumps over the lazy dog", 43, m1), 20);
    assert_string_equal(omni_hex(m1, 20, hex), "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_env_credential),
        cmocka_unit_test(test_refusals_name_the_key),
        cmocka_unit_test(test_a_secret_of_the_maximum_size),
        cmocka_unit_test(test_standard_webhooks_vector),
        cmocka_unit_test(test_base64_hex_sha),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
