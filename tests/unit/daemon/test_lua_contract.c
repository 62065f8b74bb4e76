/* The C side of each script's declared reply (scripts.h): a reply that matches is accepted, one that does
 * not (a missing or extra element, a wrong type, not an array) is an error naming the script and the
 * element, never a crash; every script's declaration is readable. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "scripts.h"

static redisReply str(const char *s)
{
    return (redisReply){ .type = REDIS_REPLY_STRING, .str = (char *)s, .len = strlen(s) };
}
static redisReply num(long long n) { return (redisReply){ .type = REDIS_REPLY_INTEGER, .integer = n }; }
static redisReply arr(redisReply **v, size_t n) { return (redisReply){ .type = REDIS_REPLY_ARRAY, .element = v, .elements = n }; }

static void test_assign_reply(void **state)
{
    (void)state;
    char err[200];
    const struct omni_lua_script *s = &omni_lua_scripts[LUA_ASSIGN];
    redisReply a = str("assigned"), b = str("agent:x"), n = num(3);
    redisReply *ok[] = { &a, &b, &a, &b }, *typed[] = { &a, &n }, *extra[] = { &a, &b, &b };
    redisReply r = arr(ok, 2); /* one plan, one record */
    assert_int_equal(lua_reply_check(s, &r, err, sizeof err), 0);
    r = arr(ok, 4); /* two plans */
    assert_int_equal(lua_reply_check(s, &r, err, sizeof err), 0);
    r = arr(ok, 1);
    assert_int_equal(lua_reply_check(s, &r, err, sizeof err), -1);
    assert_string_equal(err, "assign: reply has 1 elements, declared a multiple of 2");
    r = arr(extra, 3);
    assert_int_equal(lua_reply_check(s, &r, err, sizeof err), -1);
    r = arr(typed, 2);
    assert_int_equal(lua_reply_check(s, &r, err, sizeof err), -1);
    assert_string_equal(err, "assign: reply element 1 (detail) is an integer, declared str");
    assert_int_equal(lua_reply_check(s, &a, err, sizeof err), -1);
    assert_string_equal(err, "assign: reply is not an array");
    redisReply e = { .type = REDIS_REPLY_ERROR, .str = "ERR assign: a plan is not JSON: x" };
    assert_int_equal(lua_reply_check(s, &e, err, sizeof err), 0); /* errors are the caller's to read */
    /* a reply of named fields (resolve.lua's): exactly those, in order */
    s = &omni_lua_scripts[LUA_RESOLVE];
    redisReply *fields[] = { &a, &b, &n, &n };
    r = arr(fields, 3);
    assert_int_equal(lua_reply_check(s, &r, err, sizeof err), 0);
    r = arr(fields, 2);
    assert_int_equal(lua_reply_check(s, &r, err, sizeof err), -1);
    assert_string_equal(err, "resolve: reply has 2 elements, declared 3");
    r = arr(fields, 4);
    assert_int_equal(lua_reply_check(s, &r, err, sizeof err), -1);
}

static void test_optional_and_repeated_fields(void **state)
{
    (void)state;
    char err[200];
    redisReply one = num(1), s = str("1"), z = num(0);
    /* ingest: one record of eleven per message stored */
    redisReply *v[] = { &one, &s, &s, &z, &z, &z, &s, &s, &s, &s, &s, &one, &s, &s, &z, &z, &z, &s, &s, &s, &s, &s };
    redisReply r = arr(v, INGEST_REPLY_FIELDS);
    assert_int_equal(lua_reply_check(&omni_lua_scripts[LUA_INGEST], &r, err, sizeof err), 0);
    r = arr(v, 2 * INGEST_REPLY_FIELDS);
    assert_int_equal(lua_reply_check(&omni_lua_scripts[LUA_INGEST], &r, err, sizeof err), 0);
    r = arr(v, INGEST_REPLY_FIELDS - 1); /* detail missing */
    assert_int_equal(lua_reply_check(&omni_lua_scripts[LUA_INGEST], &r, err, sizeof err), -1);
    r = arr(v + 1, INGEST_REPLY_FIELDS); /* stored given as a string */
    assert_int_equal(lua_reply_check(&omni_lua_scripts[LUA_INGEST], &r, err, sizeof err), -1);
    redisReply *due[2 * DUE_REPLY_FIELDS];
    for (int i = 0; i < 2 * DUE_REPLY_FIELDS; i++)
        due[i] = &s;
    r = arr(due, 2 * DUE_REPLY_FIELDS);
    assert_int_equal(lua_reply_check(&omni_lua_scripts[LUA_DUE], &r, err, sizeof err), 0);
    r = arr(due, 2 * DUE_REPLY_FIELDS - 1); /* a record cut short */
    assert_int_equal(lua_reply_check(&omni_lua_scripts[LUA_DUE], &r, err, sizeof err), -1);
    char want[80];
    snprintf(want, sizeof want, "due: reply has %d elements, declared a multiple of %d", 2 * DUE_REPLY_FIELDS - 1,
             DUE_REPLY_FIELDS);
    assert_string_equal(err, want);
    r = arr(NULL, 0); /* nothing due */
    assert_int_equal(lua_reply_check(&omni_lua_scripts[LUA_DUE], &r, err, sizeof err), 0);
    assert_int_equal(lua_reply_check(&omni_lua_scripts[LUA_CLOCK], &s, err, sizeof err), 0);
    assert_int_equal(lua_reply_check(&omni_lua_scripts[LUA_CLOCK], &one, err, sizeof err), -1);
}

static void test_every_script_declares_its_boundary(void **state)
{
    (void)state;
    for (int i = 0; i < LUA_NSCRIPTS; i++) {
        const struct omni_lua_script *s = &omni_lua_scripts[i];
        assert_non_null(s->name);
        assert_true(s->nargs >= 1);
        assert_true(strncmp(s->args, "prefix:str", 10) == 0); /* the key prefix first, always */
        assert_true(strchr(s->reply, ':') != NULL);
        assert_non_null(strstr(s->body, "local A = { prefix = ARGV[1],")); /* ARGV decoded by the declaration */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assign_reply),
        cmocka_unit_test(test_optional_and_repeated_fields),
        cmocka_unit_test(test_every_script_declares_its_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
