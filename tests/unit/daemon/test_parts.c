/* Unit tests for small daemon parts: peer policing, the loop's fds and tick (Redis addresses: test_redis_address.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "peers.h"

static void test_peer_banned_at_limit_and_forgiven(void **state)
{
    (void)state;
    peers_t p;
    peers_init(&p, 3, 10);
    const char id[] = "peerA";
    assert_int_equal(peers_violation(&p, id, 5, 1000), 0);
    assert_int_equal(peers_violation(&p, id, 5, 1001), 0);
    assert_false(peers_banned(&p, id, 5, 1002));
    assert_int_equal(peers_violation(&p, id, 5, 1002), 1); /* the third one bans */
    assert_true(peers_banned(&p, id, 5, 1003));
    assert_false(peers_banned(&p, "peerB", 5, 1003)); /* others unaffected */
    assert_true(peers_banned(&p, id, 5, 10999));
    assert_false(peers_banned(&p, id, 5, 11003)); /* 10 s later */
    peers_expire(&p, 1000 + 60001 + 10000);
    assert_int_equal(p.n, 0);
    peers_free(&p);
}

static void test_peer_violations_outside_window_do_not_add_up(void **state)
{
    (void)state;
    peers_t p;
    peers_init(&p, 2, 10);
    assert_int_equal(peers_violation(&p, "x", 1, 0), 0);
    assert_int_equal(peers_violation(&p, "x", 1, 70000), 0); /* the first is older than a minute */
    assert_int_equal(peers_violation(&p, "x", 1, 70001), 1);
    peers_free(&p);
}

static void test_peer_table_full_forgets_oldest(void **state)
{
    (void)state;
    peers_t p;
    peers_init(&p, 100, 10);
    for (int i = 0; i < PEERS_MAX + 5; i++)
        peers_violation(&p, &i, sizeof i, i);
    assert_int_equal(p.n, PEERS_MAX);
    peers_free(&p);
    char hex[16];
    assert_string_equal(peers_hex("\x00\xab\x10", 3, hex, sizeof hex), "00ab10");
    assert_string_equal(peers_hex("\x01\x02\x03\x04\x05\x06\x07\x08", 8, hex, 9), "01020304");
}

static int fired, ticks;
static void on_fd(loop_t *loop, int fd, int events, void *data)
{
    (void)loop, (void)data;
    char b[16];
    assert_true(events & LOOP_READ);
    assert_true(read(fd, b, sizeof b) > 0);
    fired++;
}
static void on_tick(loop_t *loop, void *data)
{
    (void)data;
    if (++ticks == 3)
        loop_stop(loop);
}

static void test_loop_dispatches_fds_and_ticks(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    loop_t *loop = loop_new();
    loop_add_fd(loop, fds[0], LOOP_READ, on_fd, NULL);
    loop_set_tick(loop, 5, on_tick, NULL);
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(fired, 1);
    assert_int_equal(ticks, 3);
    /* an idle registration is not dispatched */
    loop_set_fd_events(loop, fds[0], 0);
    assert_int_equal(loop_fd_events(loop, fds[0]), 0);
    assert_int_equal(write(fds[1], "y", 1), 1);
    assert_int_equal(loop_once(loop, 10), 0);
    assert_int_equal(fired, 1);
    loop_del_fd(loop, fds[0]);
    loop_destroy(&loop);
    assert_null(loop);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_banned_at_limit_and_forgiven),
        cmocka_unit_test(test_peer_violations_outside_window_do_not_add_up),
        cmocka_unit_test(test_peer_table_full_forgets_oldest),
        cmocka_unit_test(test_loop_dispatches_fds_and_ticks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
