/* redis.address: the one parser the router, omnictl and the bench share (IPv6, unix:, bad input). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "redis_address.h"

static void test_tcp(void **state)
{
    (void)state;
    redis_address_t a;
    char err[400];
    assert_int_equal(redis_address_parse("tcp://127.0.0.1:6379", &a, err, sizeof err), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 6379);
    assert_string_equal(a.path, "");
    assert_int_equal(redis_address_parse("tcp://redis.example.com:1", &a, err, sizeof err), 0);
    assert_string_equal(a.host, "redis.example.com");
    assert_int_equal(a.port, 1);
}

static void test_ipv6(void **state)
{
    (void)state;
    redis_address_t a;
    char err[400], buf[300];
    assert_int_equal(redis_address_parse("tcp://[::1]:6379", &a, err, sizeof err), 0);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 6379);
    assert_string_equal(redis_address_format(&a, buf, sizeof buf), "tcp://[::1]:6379");
    assert_int_equal(redis_address_parse("tcp://[fe80::1:2]:65535", &a, err, sizeof err), 0);
    assert_string_equal(a.host, "fe80::1:2");
    assert_int_equal(redis_address_resolve(&a, err, sizeof err), 0); /* numeric: no DNS */
    assert_string_equal(a.host, "fe80::1:2");
}

static void test_unix(void **state)
{
    (void)state;
    redis_address_t a;
    char err[400], buf[300];
    assert_int_equal(redis_address_parse("unix:/run/redis/redis.sock", &a, err, sizeof err), 0);
    assert_string_equal(a.path, "/run/redis/redis.sock");
    assert_string_equal(a.host, "");
    assert_int_equal(redis_address_resolve(&a, err, sizeof err), 0);
    assert_string_equal(redis_address_format(&a, buf, sizeof buf), "unix:/run/redis/redis.sock");
}

static void test_resolve(void **state)
{
    (void)state;
    redis_address_t a;
    char err[400];
    assert_int_equal(redis_address_parse("tcp://localhost:6379", &a, err, sizeof err), 0);
    assert_int_equal(redis_address_resolve(&a, err, sizeof err), 0);
    assert_true(strcmp(a.host, "127.0.0.1") == 0 || strcmp(a.host, "::1") == 0);
    assert_int_equal(redis_address_parse("tcp://no-such-host.invalid:6379", &a, err, sizeof err), 0);
    assert_int_equal(redis_address_resolve(&a, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot resolve the host no-such-host.invalid"));
}

static void bad(const char *text, const char *why)
{
    redis_address_t a;
    char err[400];
    assert_int_equal(redis_address_parse(text, &a, err, sizeof err), -1);
    if (!strstr(err, why))
        fail_msg("%s: got \"%s\", expected it to contain \"%s\"", text, err, why);
}

static void test_bad_input(void **state)
{
    (void)state;
    const char *tcp = "is not tcp://HOST:PORT (a host, or an [IPv6] address in brackets, then a port 1..65535)";
    bad("tcp://host", tcp);
    bad("tcp://:6379", tcp);
    bad("tcp://host:", tcp);
    bad("tcp://host:0", tcp);
    bad("tcp://host:65536", tcp);
    bad("tcp://host:12x", tcp);
    bad("tcp://::1:6379", tcp); /* IPv6 without brackets: which colon starts the port? */
    bad("tcp://[::1:6379", tcp);
    bad("tcp://[::1]x:6379", tcp);
    bad("tcp://[]:6379", tcp);
    bad("unix:redis.sock", "a unix: address needs an absolute path");
    bad("unix:", "a unix: address needs an absolute path");
    bad("redis://x:1", "is not a Redis address");
    bad("unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "more than the 107 a unix socket allows");
    bad("http://x", "\"http://x\" is not a Redis address: write tcp://HOST:PORT or unix:/PATH");
    bad("", "is not a Redis address");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp),     cmocka_unit_test(test_ipv6),      cmocka_unit_test(test_unix),
        cmocka_unit_test(test_resolve), cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
