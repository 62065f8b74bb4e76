/* libomni curve.c: key files as omnictl keygen writes them, reading public and secret keys, fingerprints. */
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

#include "omni/curve.h"
#include "omni/util.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/omni-curve-XXXXXX");
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

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_keygen_files(void **state)
{
    (void)state;
    char *name = omni_asprintf("%s/conn", dir), *key = omni_asprintf("%s.key", name), *pub = omni_asprintf("%s.pub", name);
    char z85[OMNI_CURVE_Z85_LEN + 1], err[256], back[OMNI_CURVE_Z85_LEN + 1], secret[OMNI_CURVE_Z85_LEN + 1];
    mode_t old = umask(0); /* the modes must not depend on the caller's umask */
    assert_int_equal(omni_curve_keygen(name, z85, err, sizeof err), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(pub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_true(omni_curve_is_key(z85));
    assert_int_equal(omni_curve_read_public(pub, back, "k", err, sizeof err), 0);
    assert_string_equal(back, z85);
    assert_int_equal(omni_curve_read_secret(key, secret, "k", err, sizeof err), 0);
    assert_int_equal(omni_curve_public_of(secret, back), 0);
    assert_string_equal(back, z85); /* the pair belongs together */
    /* never overwrites a key */
    assert_int_equal(omni_curve_keygen(name, z85, err, sizeof err), -1);
    assert_non_null(strstr(err, "exists"));
    free(name), free(key), free(pub);
}

static void test_secret_must_be_private(void **state)
{
    (void)state;
    char z85[OMNI_CURVE_Z85_LEN + 1], err[256], out[OMNI_CURVE_Z85_LEN + 1];
    char *name = omni_asprintf("%s/open", dir), *key = omni_asprintf("%s.key", name);
    assert_int_equal(omni_curve_keygen(name, z85, err, sizeof err), 0);
    assert_int_equal(chmod(key, 0640), 0);
    assert_int_equal(omni_curve_read_secret(key, out, "curve_secret_key_file", err, sizeof err), -1);
    assert_non_null(strstr(err, "curve_secret_key_file"));
    assert_non_null(strstr(err, "chmod 600"));
    assert_int_equal(omni_curve_read_secret("/nonexistent/x.key", out, "s", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/x.key"));
    free(name), free(key);
}

static void test_public_inline_file_and_bad(void **state)
{
    (void)state;
    const char *k = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"; /* ZeroMQ's RFC 32 test key */
    char out[OMNI_CURVE_Z85_LEN + 1], err[256];
    assert_int_equal(omni_curve_read_public(k, out, "x", err, sizeof err), 0);
    assert_string_equal(out, k);
    char *path = omni_asprintf("%s/commented.pub", dir);
    char *text = omni_asprintf("# the router, made 2026-11-30\n\n  %s  \n", k);
    write_file(path, text, 0644);
    assert_int_equal(omni_curve_read_public(path, out, "x", err, sizeof err), 0);
    assert_string_equal(out, k);
    write_file(path, "not a key\n", 0644);
    assert_int_equal(omni_curve_read_public(path, out, "router.curve.allowed_keys", err, sizeof err), -1);
    assert_non_null(strstr(err, "router.curve.allowed_keys"));
    assert_non_null(strstr(err, "does not hold a CURVE key"));
    assert_false(omni_curve_is_key("short"));
    assert_false(omni_curve_is_key("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf\"")); /* '"' is not Z85 */
    free(path), free(text);
}

static void test_fingerprint(void **state)
{
    (void)state;
    char fp[OMNI_CURVE_FP_LEN + 1], fp2[OMNI_CURVE_FP_LEN + 1];
    /* sha256 of the 32 raw bytes of this key, first 8 bytes in hex (python: hashlib + zmq.utils.z85) */
    assert_int_equal(omni_curve_fingerprint("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", fp), 0);
    assert_string_equal(fp, "522501f4e7a63f61");
    assert_int_equal(omni_curve_fingerprint("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", fp2), 0);
    assert_string_equal(fp, fp2);
    assert_int_equal(omni_curve_fingerprint("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID", fp2), 0);
    assert_string_not_equal(fp, fp2);
    assert_int_equal(omni_curve_fingerprint("nope", fp), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen_files),
        cmocka_unit_test(test_secret_must_be_private),
        cmocka_unit_test(test_public_inline_file_and_bad),
        cmocka_unit_test(test_fingerprint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
