/* libomni util.c: RFC 3339, UTF-8 validation, allocation, directories, clocks.
 * (Logging and the fatal out-of-memory path are in test_log.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "omni/util.h"

/* ---- RFC 3339 ---- */

static const struct { const char *in; int64_t ms; } rfc_good[] = {
    { "1970-01-01T00:00:00Z", 0 },
    { "2026-11-22T08:42:00.123Z", 1795336920123 },
    { "2026-11-22T14:12:00.123+05:30", 1795336920123 },    /* India */
    { "2026-11-22T03:42:00.123-05:00", 1795336920123 },    /* New York */
    { "2026-11-22T08:42:00.123+00:00", 1795336920123 },
    { "2026-11-22T08:42:00.123-00:00", 1795336920123 },    /* RFC 3339 4.3: unknown local offset */
    { "2026-11-22t08:42:00.123z", 1795336920123 },         /* 5.6: T and Z may be lower case */
    { "2026-11-22 08:42:00.123Z", 1795336920123 },         /* 5.6 note: a space may separate */
    { "2026-11-22T08:42:00.1Z", 1795336920100 },
    { "2026-11-22T08:42:00.12Z", 1795336920120 },
    { "2026-11-22T08:42:00.123456789Z", 1795336920123 },   /* below a millisecond is truncated */
    { "2026-11-22T08:42:00.999999Z", 1795336920999 },
    { "2026-11-22T08:42:00Z", 1795336920000 },
    { "2024-02-29T00:00:00Z", 1709164800000 },             /* leap year */
    { "2000-02-29T12:34:56.789Z", 951827696789 },          /* divisible by 400: leap */
    { "1900-03-01T00:00:00Z", -2203891200000 },
    { "1969-12-31T23:59:59.999Z", -1 },
    { "2016-12-31T23:59:60Z", 1483228800000 },             /* leap second: counted as the next second */
    { "0001-01-01T00:00:00Z", -62135596800000 },
    { "9999-12-31T23:59:59.999Z", 253402300799999 },
    { "2026-01-01T00:00:00+23:59", 1767139260000 },
    { "2026-12-31T23:59:59-23:59", 1798847939000 },
};

static void test_rfc3339_parse_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rfc_good / sizeof rfc_good[0]; i++) {
        int64_t ms = 42;
        if (omni_rfc3339_parse(rfc_good[i].in, &ms) != 0)
            fail_msg("refused %s", rfc_good[i].in);
        if (ms != rfc_good[i].ms)
            fail_msg("%s: got %lld, want %lld", rfc_good[i].in, (long long)ms, (long long)rfc_good[i].ms);
    }
}

static const char *const rfc_bad[] = {
    "", "yesterday", "2026-11-22", "2026-11-22T08:42Z", "2026-11-22T08:42:00",
    "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-11-00T00:00:00Z", "2026-11-31T00:00:00Z",
    "2026-02-30T00:00:00Z", "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
    "2026-11-22T24:00:00Z", "2026-11-22T08:60:00Z", "2026-11-22T08:42:61Z", "2026-11-22T08:42:00+0530",
    "2026-11-22T08:42:00+24:00", "2026-11-22T08:42:00+05:60", "2026-11-22T08:42:00+5:30",
    "2026-11-22T08:42:00.Z", "2026-11-22T08:42:00,5Z", "2026-11-22T08:42:00Z ", " 2026-11-22T08:42:00Z",
    "2026/11/22T08:42:00Z", "2026-11-22T8:42:00Z", "26-11-22T08:42:00Z", "2026-11-22X08:42:00Z",
    "+2026-11-22T08:42:00Z", "2026-1-22T08:42:00Z", "2026-11-22T08:42:00ZZ", "2026-11-22T08:42:00.1a2Z",
    "2026-11-22T08:42:00+05:30:00", "2026-11-22T08:42:00UTC", "２０２６-11-22T08:42:00Z",
};

static void test_rfc3339_parse_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rfc_bad / sizeof rfc_bad[0]; i++) {
        int64_t ms = 42;
        if (omni_rfc3339_parse(rfc_bad[i], &ms) == 0)
            fail_msg("accepted \"%s\" as %lld", rfc_bad[i], (long long)ms);
        assert_int_equal(ms, 42);   /* untouched on failure */
    }
    int64_t ms;
    assert_int_equal(omni_rfc3339_parse(NULL, &ms), -1);
}

static void test_rfc3339_format(void **state)
{
    (void)state;
    static const struct { int64_t ms; const char *out; } cases[] = {
        { 0, "1970-01-01T00:00:00.000Z" },
        { 1795336920123, "2026-11-22T08:42:00.123Z" },
        { -1, "1969-12-31T23:59:59.999Z" },
        { -1000, "1969-12-31T23:59:59.000Z" },
        { 951827696789, "2000-02-29T12:34:56.789Z" },
        { 253402300799999, "9999-12-31T23:59:59.999Z" },
        { -62135596800000, "0001-01-01T00:00:00.000Z" },
    };
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(omni_rfc3339(cases[i].ms, buf, sizeof buf), cases[i].out);
    char small[8];
    assert_string_equal(omni_rfc3339(0, small, sizeof small), "1970-01");   /* cut, never overflowed */
}

/* Every day from 1600 to 2400 (leap rules of all four kinds) at a moving time of day: formatting then
 * parsing gives the same instant, and the date agrees with the C library's gmtime_r. */
static void test_rfc3339_round_trip(void **state)
{
    (void)state;
    const int64_t day = 86400000, first = -11676096000000, last = 13569465600000; /* 1600..2400 */
    char buf[32];
    int64_t i = 0;
    for (int64_t t = first; t < last; t += day, i++) {
        int64_t ms = t + (i * 7919013) % day;
        omni_rfc3339(ms, buf, sizeof buf);
        int64_t back;
        assert_int_equal(omni_rfc3339_parse(buf, &back), 0);
        if (back != ms)
            fail_msg("%lld -> %s -> %lld", (long long)ms, buf, (long long)back);
        time_t secs = (time_t)((ms - (ms % 1000 + 1000) % 1000) / 1000);
        struct tm tm;
        char want[32];
        gmtime_r(&secs, &tm);
        strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
        if (strncmp(buf, want, 19) != 0)
            fail_msg("%lld: %s, gmtime says %s", (long long)ms, buf, want);
    }
    /* and offsets: the same instant written in every quarter-hour offset parses to one value */
    for (int off = -23 * 60 - 45; off <= 23 * 60 + 45; off += 15) {
        int64_t utc = 1795336920123, local = utc + (int64_t)off * 60000, back;
        omni_rfc3339(local, buf, sizeof buf);
        unsigned a = (unsigned)abs(off) % (24 * 60);
        snprintf(buf + 23, sizeof buf - 23, "%c%02u:%02u", off < 0 ? '-' : '+', a / 60 % 24, a % 60);
        assert_int_equal(omni_rfc3339_parse(buf, &back), 0);
        if (back != utc)
            fail_msg("%s -> %lld, want %lld", buf, (long long)back, (long long)utc);
    }
}

/* ---- UTF-8 (cases after Markus Kuhn's UTF-8 decoder capability and stress test) ---- */

static const struct { const char *s; size_t len; } utf8_good[] = {
#define S(x) { x, sizeof x - 1 }
    S(""), S("hello"), S("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),            /* 1: κόσμε */
    S("\x00"), S("\xc2\x80"), S("\xe0\xa0\x80"), S("\xf0\x90\x80\x80"),               /* 2.1 first */
    S("\x7f"), S("\xdf\xbf"), S("\xef\xbf\xbf"), S("\xf4\x8f\xbf\xbf"),               /* 2.2 last */
    S("\xed\x9f\xbf"), S("\xee\x80\x80"), S("\xef\xbf\xbd"),                          /* 2.3 boundaries */
    S("\xef\xbf\xbe"), S("\xef\xb7\x90"), S("\xf0\x9f\xbf\xbf"),                      /* noncharacters */
    S("caf\xc3\xa9 \xe2\x82\xac 5 \xf0\x9f\x98\x80"),                                  /* é € 😀 */
};

static const struct { const char *s; size_t len; size_t bad; } utf8_bad[] = {
    { "\x80", 1, 0 }, { "\xbf", 1, 0 }, { "a\x80\xbf", 3, 1 },                        /* 3.1 continuations */
    { "\xc0 ", 2, 0 }, { "\xdf ", 2, 0 }, { "\xe0 ", 2, 0 }, { "\xf0 ", 2, 0 },       /* 3.2 lonely starts */
    { "\xf8 ", 2, 0 }, { "\xfc ", 2, 0 },
    { "\xc2", 1, 0 }, { "\xe0\xa0", 2, 0 }, { "\xf0\x90\x80", 3, 0 },                 /* 3.3 truncated */
    { "ab\xe2\x82", 4, 2 }, { "\xdf", 1, 0 }, { "\xef\xbf", 2, 0 }, { "\xf4\x8f\xbf", 3, 0 },
    { "\xe2\x82" "a", 3, 0 },
    { "\xfe", 1, 0 }, { "\xff", 1, 0 }, { "\xfe\xfe\xff\xff", 4, 0 },                 /* 3.5 impossible */
    { "\xc0\xaf", 2, 0 }, { "\xe0\x80\xaf", 3, 0 }, { "\xf0\x80\x80\xaf", 4, 0 },     /* 4.1 overlong '/' */
    { "\xf8\x80\x80\x80\xaf", 5, 0 }, { "\xfc\x80\x80\x80\x80\xaf", 6, 0 },
    { "\xc1\xbf", 2, 0 }, { "\xe0\x9f\xbf", 3, 0 }, { "\xf0\x8f\xbf\xbf", 4, 0 },     /* 4.2 max overlong */
    { "\xc0\x80", 2, 0 }, { "\xe0\x80\x80", 3, 0 }, { "\xf0\x80\x80\x80", 4, 0 },     /* 4.3 overlong NUL */
    { "\xed\xa0\x80", 3, 0 }, { "\xed\xad\xbf", 3, 0 }, { "\xed\xae\x80", 3, 0 },     /* 5.1 surrogates */
    { "\xed\xaf\xbf", 3, 0 }, { "\xed\xb0\x80", 3, 0 }, { "\xed\xbe\x80", 3, 0 }, { "\xed\xbf\xbf", 3, 0 },
    { "\xed\xa0\x80\xed\xb0\x80", 6, 0 }, { "\xed\xaf\xbf\xed\xbf\xbf", 6, 0 },       /* 5.2 pairs */
    { "\xf4\x90\x80\x80", 4, 0 }, { "\xf5\x80\x80\x80", 4, 0 }, { "\xf7\xbf\xbf\xbf", 4, 0 }, /* > 10FFFF */
    { "abc\xe2\x82\xac\xff", 7, 6 }, { "ok\xc3\xa9\xc3", 5, 4 }, { "\xe2\x82\xac\xe2\x28\xa1", 6, 3 },
};

static void test_utf8_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof utf8_good / sizeof utf8_good[0]; i++) {
        size_t bad = 99;
        if (!omni_utf8_valid(utf8_good[i].s, utf8_good[i].len, &bad))
            fail_msg("good case %zu refused at %zu", i, bad);
    }
    for (size_t i = 0; i < sizeof utf8_bad / sizeof utf8_bad[0]; i++) {
        size_t bad = 99;
        if (omni_utf8_valid(utf8_bad[i].s, utf8_bad[i].len, &bad))
            fail_msg("bad case %zu accepted", i);
        if (bad != utf8_bad[i].bad)
            fail_msg("bad case %zu: offset %zu, want %zu", i, bad, utf8_bad[i].bad);
        assert_false(omni_utf8_valid(utf8_bad[i].s, utf8_bad[i].len, NULL));
    }
}

/* A straightforward decoder to compare against: decode, then refuse overlongs, surrogates, > 10FFFF. */
static bool ref_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i], n, cp;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
        else return false;
        if (i + n >= len) return false;
        for (unsigned k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const unsigned min[] = { 0, 0x80, 0x800, 0x10000 };
        if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n + 1;
    }
    return true;
}

static void test_utf8_exhaustive(void **state)
{
    (void)state;
    unsigned char b[4];
    for (unsigned x = 0; x < 0x10000; x++) {   /* every two-byte string */
        b[0] = (unsigned char)(x >> 8);
        b[1] = (unsigned char)x;
        if (omni_utf8_valid((char *)b, 2, NULL) != ref_valid(b, 2))
            fail_msg("%02x %02x", b[0], b[1]);
    }
    for (unsigned x = 0xE00000; x < 0xF00000; x++) {   /* every three-byte string led by E0..EF */
        b[0] = (unsigned char)(x >> 16);
        b[1] = (unsigned char)(x >> 8);
        b[2] = (unsigned char)x;
        if (omni_utf8_valid((char *)b, 3, NULL) != ref_valid(b, 3))
            fail_msg("%02x %02x %02x", b[0], b[1], b[2]);
    }
    for (unsigned x = 0xF000; x < 0x10000; x++) {   /* four bytes: every lead and second byte */
        for (unsigned t = 0; t < 3; t++) {
            static const unsigned char tails[][2] = { { 0x80, 0x80 }, { 0xBF, 0xBF }, { 0x80, 0x41 } };
            b[0] = (unsigned char)(x >> 8);
            b[1] = (unsigned char)x;
            b[2] = tails[t][0];
            b[3] = tails[t][1];
            if (omni_utf8_valid((char *)b, 4, NULL) != ref_valid(b, 4))
                fail_msg("%02x %02x %02x %02x", b[0], b[1], b[2], b[3]);
        }
    }
}

/* ---- allocation ---- */

static void test_alloc(void **state)
{
    (void)state;
    char *p = omni_malloc(0);
    assert_non_null(p);
    free(p);
    int *z = omni_calloc(16, sizeof *z);
    for (int i = 0; i < 16; i++)
        assert_int_equal(z[i], 0);
    z = omni_realloc(z, 1000 * sizeof *z);
    z[999] = 7;
    free(z);
    char *s = omni_strdup("hello");
    assert_string_equal(s, "hello");
    free(s);
    s = omni_strndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = omni_strndup("ab", 10);   /* n past the end: stops at the NUL, reads nothing more */
    assert_string_equal(s, "ab");
    free(s);
    s = omni_asprintf("%s-%d-%05.1f", "x", 42, 3.14159);
    assert_string_equal(s, "x-42-003.1");
    free(s);
    s = omni_asprintf("%s", "");
    assert_string_equal(s, "");
    free(s);
}

/* ---- directories ---- */

static void test_mkdir_p(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/omni-test-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char path[256], file[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/a/b/c", tmpl);
    assert_int_equal(omni_mkdir_p(path, 0750), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(omni_mkdir_p(path, 0750), 0);          /* existing: fine */
    snprintf(path, sizeof path, "%s/a//b/d/", tmpl);         /* doubled and trailing slashes */
    assert_int_equal(omni_mkdir_p(path, 0750), 0);
    assert_int_equal(omni_fsync_dir(path), 0);
    snprintf(file, sizeof file, "%s/f", tmpl);               /* a file in the way */
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(path, sizeof path, "%s/f/g", tmpl);
    errno = 0;
    assert_int_equal(omni_mkdir_p(path, 0750), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(omni_mkdir_p(file, 0750), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(omni_mkdir_p("", 0750), -1);
    assert_int_equal(errno, EINVAL);
    snprintf(path, sizeof path, "%s/missing", tmpl);
    assert_int_equal(omni_fsync_dir(path), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(omni_fsync_dir(file), -1);              /* not a directory */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    assert_int_equal(system(cmd), 0);
}

/* ---- clocks ---- */

static void test_clocks(void **state)
{
    (void)state;
    int64_t m1 = omni_mono_ms(), w = omni_wall_ms();
    struct timespec ts = { 0, 20 * 1000000 };
    nanosleep(&ts, NULL);
    int64_t m2 = omni_mono_ms();
    assert_true(m2 - m1 >= 19 && m2 - m1 < 5000);
    int64_t now = (int64_t)time(NULL) * 1000;
    assert_true(w > now - 2000 && w < now + 2000);
}

static void test_read_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_util_read_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello\0world", 11), 11);
    close(fd);
    size_t len = 0;
    char *s = omni_read_file(path, 100, &len);
    assert_non_null(s);
    assert_int_equal(len, 11);
    assert_memory_equal(s, "hello\0world", 12); /* NUL-terminated after the data */
    free(s);
    errno = 0;
    assert_null(omni_read_file(path, 10, &len));
    assert_int_equal(errno, EFBIG);
    unlink(path);
    assert_null(omni_read_file(path, 100, NULL));
    assert_int_equal(errno, ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_rfc3339_parse_good),
        cmocka_unit_test(test_rfc3339_parse_bad),
        cmocka_unit_test(test_rfc3339_format),
        cmocka_unit_test(test_rfc3339_round_trip),
        cmocka_unit_test(test_utf8_cases),
        cmocka_unit_test(test_utf8_exhaustive),
        cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_mkdir_p),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
