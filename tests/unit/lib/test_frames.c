/* libomni frames.c: omni_frames_decode on every command and every violation, both directions, and
 * omni_frames_recv over a real socket pair (frames beyond the kept ones are counted, not kept). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>
#include <zmq.h>

#include "omni/frames.h"
#include "omni/message.h"

#define MAXF 12

/* Frames from C strings (NULL ends the list; "\x01" stands for an empty frame). */
static int frames_of(omni_frame_t *f, const char *const *s)
{
    int n = 0;
    for (; s[n] != NULL && n < MAXF; n++) {
        f[n].data = s[n];
        f[n].size = strcmp(s[n], "\x01") == 0 ? 0 : strlen(s[n]);
    }
    return n;
}

static const char *decode(omni_direction_t dir, omni_decoded_t *d, const char *const *s)
{
    omni_frame_t f[MAXF];
    int n = frames_of(f, s);
    return omni_frames_decode(dir, f, n, d);
}

#define C(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_from_connector_good(void **state)
{
    (void)state;
    omni_decoded_t d;
    assert_null(decode(OMNI_FROM_CONNECTOR, &d, C("peer", "OMNI/1", "MSG", "{\"id\":1}")));
    assert_int_equal(d.kind, OMNI_DEC_MSG);
    assert_int_equal(d.peer_len, 4);
    assert_memory_equal(d.peer, "peer", 4);
    assert_int_equal(d.arg_len[0], 8);
    assert_memory_equal(d.arg[0], "{\"id\":1}", 8);
    assert_null(decode(OMNI_FROM_CONNECTOR, &d, C("peer", "OMNI/1", "PING")));
    assert_int_equal(d.kind, OMNI_DEC_PING);
    assert_null(decode(OMNI_FROM_CONNECTOR, &d, C("peer", "OMNI/1", "PONG")));
    assert_int_equal(d.kind, OMNI_DEC_PONG);
    /* an empty message frame is a MSG: the parser says what is wrong with it */
    assert_null(decode(OMNI_FROM_CONNECTOR, &d, C("peer", "OMNI/1", "MSG", "\x01")));
    assert_int_equal(d.arg_len[0], 0);
}

static void test_from_connector_violations(void **state)
{
    (void)state;
    const struct { const char *const *frames; const char *want; bool has_peer; } cases[] = {
        { C("peer"), "expected OMNI/1 and a command", true },
        { C("peer", "OMNI/1"), "expected OMNI/1 and a command", true },
        { C("peer", "OMNI/2", "MSG", "{}"), "version frame is not OMNI/1", true },
        { C("peer", "omni/1", "PING"), "version frame is not OMNI/1", true },
        { C("peer", "OMNI/1\n", "PING"), "version frame is not OMNI/1", true },
        { C("peer", "\x01", "PING"), "version frame is not OMNI/1", true },
        { C("peer", "OMNI/1", "MSG"), "MSG without a message frame", true },
        { C("peer", "OMNI/1", "MSG", "{}", "extra"), "MSG with extra frames", true },
        { C("peer", "OMNI/1", "MSG", "a", "b", "c", "d", "e", "f", "g"), "MSG with extra frames", true },
        { C("peer", "OMNI/1", "HELLO"), "unknown command or wrong frame count", true },
        { C("peer", "OMNI/1", "msg", "{}"), "unknown command or wrong frame count", true },
        { C("peer", "OMNI/1", "PING", "x"), "unknown command or wrong frame count", true },
        { C("peer", "OMNI/1", "PONG", "x"), "unknown command or wrong frame count", true },
        { C("peer", "OMNI/1", "ACK", "id"), "unknown command or wrong frame count", true },
        { C("\x01", "OMNI/1", "PING"), "no usable routing id", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        omni_decoded_t d;
        const char *why = decode(OMNI_FROM_CONNECTOR, &d, cases[i].frames);
        assert_non_null(why);
        assert_non_null(strstr(why, cases[i].want));
        assert_int_equal(strncmp(why, "protocol: ", 10), 0);
        assert_int_equal(d.kind, 0);
        assert_int_equal(d.peer != NULL, cases[i].has_peer);
    }
    omni_decoded_t d;
    assert_non_null(omni_frames_decode(OMNI_FROM_CONNECTOR, NULL, 0, &d)); /* no frames at all */
    assert_null(d.peer);
    char longid[OMNI_ROUTING_ID_MAX + 2];
    memset(longid, 'r', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_string_equal(decode(OMNI_FROM_CONNECTOR, &d, C(longid, "OMNI/1", "PING")), "protocol: no usable routing id");
}

/* Only the frames given exist: a message said to have more (n) than were kept must be refused without
 * reading past them. */
static void test_more_frames_than_kept(void **state)
{
    (void)state;
    omni_frame_t f[OMNI_FRAMES_KEEP];
    int n = frames_of(f, C("peer", "OMNI/1", "MSG", "{}", "x", "x", "x", "x"));
    assert_int_equal(n, OMNI_FRAMES_KEEP);
    omni_decoded_t d;
    assert_string_equal(omni_frames_decode(OMNI_FROM_CONNECTOR, f, 1000, &d), "protocol: MSG with extra frames");
    n = frames_of(f, C("OMNI/1", "ACK", "id", "x", "x", "x", "x", "x"));
    assert_string_equal(omni_frames_decode(OMNI_FROM_ROUTER, f, 1000, &d), "protocol: wrong number of frames");
}

static void test_from_router_good(void **state)
{
    (void)state;
    omni_decoded_t d;
    assert_null(decode(OMNI_FROM_ROUTER, &d, C("OMNI/1", "ACK", "email:1")));
    assert_int_equal(d.kind, OMNI_DEC_ACK);
    assert_int_equal(d.arg_len[0], 7);
    assert_null(d.peer);
    assert_null(decode(OMNI_FROM_ROUTER, &d, C("OMNI/1", "NACK", "-", "text: too long")));
    assert_int_equal(d.kind, OMNI_DEC_NACK);
    assert_int_equal(d.arg_len[1], 14);
    assert_null(decode(OMNI_FROM_ROUTER, &d, C("OMNI/1", "NACK", "x", "\x01")));
    assert_null(decode(OMNI_FROM_ROUTER, &d, C("OMNI/1", "BUSY", "x", "250")));
    assert_int_equal(d.kind, OMNI_DEC_BUSY);
    assert_int_equal(d.retry_ms, 250);
    assert_null(decode(OMNI_FROM_ROUTER, &d, C("OMNI/1", "BUSY", "x", "999999999")));
    assert_int_equal(d.retry_ms, 999999999);
    assert_null(decode(OMNI_FROM_ROUTER, &d, C("OMNI/1", "PING")));
    assert_int_equal(d.kind, OMNI_DEC_PING);
    assert_null(decode(OMNI_FROM_ROUTER, &d, C("OMNI/1", "PONG")));
    assert_int_equal(d.kind, OMNI_DEC_PONG);
}

static void test_from_router_violations(void **state)
{
    (void)state;
    char longid[OMNI_MSG_ID_MAX + 2];
    memset(longid, 'i', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    static const char nul_id[] = "a\0b";
    const struct { const char *const *frames; const char *want; } cases[] = {
        { C("OMNI/1"), "too few frames" },
        { C("OMNI/2", "ACK", "x"), "version frame is not OMNI/1" },
        { C("OMNI/1", "HELLO", "x"), "unknown command" },
        { C("OMNI/1", "MSG", "{}"), "unknown command" }, /* a router never sends MSG */
        { C("OMNI/1", "ACK"), "wrong number of frames" },
        { C("OMNI/1", "ACK", "x", "y"), "wrong number of frames" },
        { C("OMNI/1", "NACK", "x"), "wrong number of frames" },
        { C("OMNI/1", "BUSY", "x"), "wrong number of frames" },
        { C("OMNI/1", "PING", "x"), "wrong number of frames" },
        { C("OMNI/1", "ACK", "\x01"), "bad id" },
        { C("OMNI/1", "BUSY", "x", "\x01"), "bad retry time" },
        { C("OMNI/1", "BUSY", "x", "-5"), "bad retry time" },
        { C("OMNI/1", "BUSY", "x", "12a"), "bad retry time" },
        { C("OMNI/1", "BUSY", "x", "1000000000"), "bad retry time" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        omni_decoded_t d;
        const char *why = decode(OMNI_FROM_ROUTER, &d, cases[i].frames);
        assert_non_null(why);
        assert_non_null(strstr(why, cases[i].want));
        assert_int_equal(d.kind, 0);
    }
    omni_decoded_t d;
    assert_non_null(strstr(decode(OMNI_FROM_ROUTER, &d, C("OMNI/1", "ACK", longid)), "bad id"));
    omni_frame_t f[] = { { "OMNI/1", 6 }, { "ACK", 3 }, { nul_id, 3 } };
    assert_non_null(strstr(omni_frames_decode(OMNI_FROM_ROUTER, f, 3, &d), "bad id"));
}

static void test_recv_counts_and_keeps(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new(), *a = zmq_socket(ctx, ZMQ_PAIR), *b = zmq_socket(ctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(a, "inproc://frames"), 0);
    assert_int_equal(zmq_connect(b, "inproc://frames"), 0);
    omni_frames_t fr;
    assert_int_equal(omni_frames_recv(a, &fr), 0); /* nothing waiting */
    for (int i = 0; i < 11; i++)
        zmq_send(b, "abc", 3, i < 10 ? ZMQ_SNDMORE : 0);
    zmq_send(b, "OMNI/1", 6, ZMQ_SNDMORE);
    zmq_send(b, "PING", 4, 0);
    assert_int_equal(omni_frames_recv(a, &fr), 11);
    assert_int_equal(fr.kept, OMNI_FRAMES_KEEP);
    omni_frame_t f[OMNI_FRAMES_KEEP];
    assert_int_equal(omni_frames_view(&fr, f), OMNI_FRAMES_KEEP);
    assert_int_equal(f[0].size, 3);
    omni_frames_close(&fr);
    assert_int_equal(omni_frames_recv(a, &fr), 2); /* the next message is untouched */
    omni_frames_view(&fr, f);
    assert_memory_equal(f[1].data, "PING", 4);
    omni_frames_close(&fr);
    zmq_close(a);
    zmq_close(b);
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_connector_good),
        cmocka_unit_test(test_from_connector_violations),
        cmocka_unit_test(test_more_frames_than_kept),
        cmocka_unit_test(test_from_router_good),
        cmocka_unit_test(test_from_router_violations),
        cmocka_unit_test(test_recv_counts_and_keeps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
