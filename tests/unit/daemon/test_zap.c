/* The ZAP handler (zap.c) answering RFC 27 requests sent to it directly, inside a real loop: allowed keys
 * get 200 and their key as User-Id, unknown ones 400, NULL (ipc) 200; refusals are logged once per key and
 * at most ZAP_LOG_PER_MIN new keys a minute. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "config.h"
#include "loop.h"
#include "omni/log.h"
#include "zap.h"

#define ALLOWED "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"

typedef struct fixture {
    void *ctx, *req;
    loop_t *loop;
    router_config_t *cfg;
    zap_t *zap;
} fixture_t;

static int setup(void **state)
{
    static fixture_t f;
    memset(&f, 0, sizeof f);
    const char *ov[] = { "router.curve.allowed_keys=[\"" ALLOWED "\"]", "router.state_dir=/tmp" };
    config_errors_t errs;
    f.cfg = config_load(NULL, ov, 2, &errs);
    assert_non_null(f.cfg);
    f.ctx = zmq_ctx_new();
    f.loop = loop_new();
    char err[256];
    f.zap = zap_new(f.ctx, f.loop, f.cfg, err, sizeof err);
    assert_non_null(f.zap);
    assert_int_equal(zap_allowed(f.zap), 1);
    f.req = zmq_socket(f.ctx, ZMQ_REQ);
    int zero = 0;
    zmq_setsockopt(f.req, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_connect(f.req, "inproc://zeromq.zap.01"), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    zmq_close(f->req);
    zap_destroy(&f->zap);
    assert_null(f->zap);
    loop_destroy(&f->loop);
    zmq_ctx_term(f->ctx);
    config_destroy(&f->cfg);
    return 0;
}

/* Sends one request (mechanism and an optional 32-byte credential), turns the loop until the answer is
 * there, and returns its status code; user gets the User-Id frame. */
static int ask(fixture_t *f, const char *mech, const unsigned char *key, char *user, size_t usersz)
{
    const char *frames[] = { "1.0", "7", "omnirouter", "127.0.0.1", "" };
    for (int i = 0; i < 5; i++)
        zmq_send(f->req, frames[i], strlen(frames[i]), ZMQ_SNDMORE);
    zmq_send(f->req, mech, strlen(mech), key ? ZMQ_SNDMORE : 0);
    if (key)
        zmq_send(f->req, key, 32, 0);
    char reply[6][64];
    int n = 0, more = 1;
    for (int turns = 0; turns < 1000 && n == 0; turns++) {
        loop_once(f->loop, 10);
        zmq_pollitem_t it = { .socket = f->req, .events = ZMQ_POLLIN };
        if (zmq_poll(&it, 1, 0) == 1)
            while (more && n < 6) {
                int len = zmq_recv(f->req, reply[n], sizeof reply[n] - 1, 0);
                assert_true(len >= 0);
                reply[n][len < 63 ? len : 63] = '\0';
                size_t sz = sizeof more;
                zmq_getsockopt(f->req, ZMQ_RCVMORE, &more, &sz);
                n++;
            }
    }
    assert_int_equal(n, 6);
    assert_string_equal(reply[0], "1.0");
    assert_string_equal(reply[1], "7"); /* the request id comes back */
    snprintf(user, usersz, "%s", reply[4]);
    return atoi(reply[2]);
}

static void test_allowed_unknown_and_null(void **state)
{
    fixture_t *f = *state;
    unsigned char key[32];
    char user[64];
    assert_non_null(zmq_z85_decode(key, ALLOWED));
    assert_int_equal(ask(f, "CURVE", key, user, sizeof user), 200);
    assert_string_equal(user, ALLOWED); /* ingest knows the peer by it */
    key[0] ^= 1;
    assert_int_equal(ask(f, "CURVE", key, user, sizeof user), 400);
    assert_string_equal(user, "");
    assert_int_equal(ask(f, "NULL", NULL, user, sizeof user), 200); /* ipc: permissions decide */
    assert_int_equal(ask(f, "PLAIN", NULL, user, sizeof user), 400);
    assert_int_equal(ask(f, "CURVE", NULL, user, sizeof user), 400); /* no credential */
}

static void test_refusals_are_logged_once_and_rate_limited(void **state)
{
    fixture_t *f = *state;
    unsigned char key[32];
    char user[64];
    const zap_stats_t *st = zap_stats(f->zap);
    unsigned long long refused = st->refused, unlogged = st->refusals_not_logged;
    memset(key, 0x5a, sizeof key);
    for (int i = 0; i < 3; i++) /* the same stranger three times: one line */
        assert_int_equal(ask(f, "CURVE", key, user, sizeof user), 400);
    assert_int_equal(st->refusals_not_logged, unlogged);
    /* a flood of new strangers: the minute's lines run out (the previous test used one, this one more) */
    for (int i = 0; i < ZAP_LOG_PER_MIN + 5; i++) {
        key[1] = (unsigned char)i;
        assert_int_equal(ask(f, "CURVE", key, user, sizeof user), 400);
    }
    assert_int_equal(st->refused, refused + 3 + ZAP_LOG_PER_MIN + 5);
    assert_int_equal(st->refusals_not_logged, unlogged + 5 + 2); /* 10 lines a minute: 1 + 1 + 8 went out */
}

int main(void)
{
    omni_log_init("test_zap", OMNI_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_unknown_and_null),
        cmocka_unit_test(test_refusals_are_logged_once_and_rate_limited),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
