/* The OMNI/1 client against a scripted router: a plain ROUTER socket on an ipc path in a temp directory.
 * Both ends run in this thread: every wait pumps the client and the peer until a condition or a deadline. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "omni/client.h"
#include "omni/log.h"
#include "omni/protocol.h"
#include "omni/util.h"

#define WAIT_MS 3000 /* generous deadline for things that should happen in a few ms */

typedef struct fx {
    char *dir, *spool, *endpoint;
    void *ctx, *peer;
    omni_client_t *c;
    omni_client_opts_t opts;
    int acks, nacks, busys, last_retry;
    char last_id[300], last_reason[300];
} fx_t;

typedef struct pmsg { /* one message as the peer got it */
    char rid[256];
    size_t ridlen;
    int n;
    char f[6][16384]; /* NUL-terminated */
    size_t len[6];
} pmsg_t;

/* The callbacks keep score in the fixture. */
static void on_ack(void *user, const char *id)
{
    fx_t *fx = user;
    fx->acks++, snprintf(fx->last_id, sizeof fx->last_id, "%s", id);
}

static void on_nack(void *user, const char *id, const char *reason)
{
    fx_t *fx = user;
    fx->nacks++, snprintf(fx->last_reason, sizeof fx->last_reason, "%s: %s", id, reason);
}

static void on_busy(void *user, const char *id, int retry_ms)
{
    fx_t *fx = user;
    fx->busys++, fx->last_retry = retry_ms, snprintf(fx->last_id, sizeof fx->last_id, "%s", id);
}

static void peer_bind(fx_t *fx)
{
    int one = 1, zero = 0;
    fx->peer = zmq_socket(fx->ctx, ZMQ_ROUTER);
    assert_non_null(fx->peer);
    zmq_setsockopt(fx->peer, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(fx->peer, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(fx->peer, fx->endpoint), 0);
}

static void client_new(fx_t *fx)
{
    char err[256] = "";
    fx->c = omni_client_new(&fx->opts, err, sizeof err);
    if (fx->c == NULL)
        fail_msg("omni_client_new: %s", err);
}

static int setup(void **state)
{
    char tmpl[] = "/tmp/omni-test-client-XXXXXX";
    if (mkdtemp(tmpl) == NULL)
        return -1;
    fx_t *fx = omni_calloc(1, sizeof *fx);
    fx->dir = omni_strdup(tmpl);
    fx->spool = omni_asprintf("%s/spool", tmpl);
    fx->endpoint = omni_asprintf("ipc://%s/router.sock", tmpl);
    fx->ctx = zmq_ctx_new();
    peer_bind(fx);
    fx->opts = (omni_client_opts_t){.endpoint = fx->endpoint, .spool_dir = fx->spool, .resend_ms = 5000,
                                    .ping_ms = 5000, .on_ack = on_ack, .on_nack = on_nack,
                                    .on_busy = on_busy, .user = fx};
    *state = fx;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    omni_client_destroy(&fx->c);
    zmq_close(fx->peer);
    zmq_ctx_term(fx->ctx);
    nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(fx->dir), free(fx->spool), free(fx->endpoint), free(fx);
    return 0;
}

/* Pumps the client and waits up to ms for the peer to get a message. */
static bool peer_recv(fx_t *fx, pmsg_t *m, int ms)
{
    int64_t end = omni_mono_ms() + ms;
    do {
        if (fx->c != NULL)
            assert_true(omni_client_poll(fx->c, 0) >= 0);
        zmq_pollitem_t it = {.socket = fx->peer, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 2) <= 0)
            continue;
        int more = 1, i = -1;
        memset(m, 0, sizeof *m);
        for (; more; i++) {
            assert_true(i < 6);
            char *buf = i < 0 ? m->rid : m->f[i];
            size_t cap = i < 0 ? sizeof m->rid : sizeof m->f[0] - 1;
            int n = zmq_recv(fx->peer, buf, cap, 0);
            assert_true(n >= 0 && (size_t)n <= cap);
            *(i < 0 ? &m->ridlen : &m->len[i]) = (size_t)n;
            size_t sz = sizeof more;
            zmq_getsockopt(fx->peer, ZMQ_RCVMORE, &more, &sz);
        }
        m->n = i;
        return true;
    } while (omni_mono_ms() < end);
    return false;
}

/* Waits for the next message whose command is cmd, skipping others (the client's PINGs). */
static bool peer_expect(fx_t *fx, const char *cmd, pmsg_t *m, int ms)
{
    int64_t end = omni_mono_ms() + ms;
    while (peer_recv(fx, m, (int)(end - omni_mono_ms() > 0 ? end - omni_mono_ms() : 0)))
        if (m->n >= 2 && strcmp(m->f[0], OMNI_PROTO_VERSION) == 0 && strcmp(m->f[1], cmd) == 0)
            return true;
    return false;
}

static void expect_msg(fx_t *fx, const char *id, pmsg_t *m)
{
    if (!peer_expect(fx, OMNI_CMD_MSG, m, WAIT_MS))
        fail_msg("no MSG for %s", id);
    assert_int_equal(m->n, 3);
    json_t *doc = json_loadb(m->f[2], m->len[2], 0, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "id")), id);
    json_decref(doc);
}

/* Sends frames (NULL-terminated) to the client that sent m. */
static void peer_send(fx_t *fx, const pmsg_t *m, ...)
{
    va_list ap;
    va_start(ap, m);
    assert_int_equal(zmq_send(fx->peer, m->rid, m->ridlen, ZMQ_SNDMORE), (int)m->ridlen);
    const char *f = va_arg(ap, const char *);
    while (f != NULL) {
        const char *next = va_arg(ap, const char *);
        assert_true(zmq_send(fx->peer, f, strlen(f), next ? ZMQ_SNDMORE : 0) >= 0);
        f = next;
    }
    va_end(ap);
}

static void pump_until_pending(fx_t *fx, size_t n)
{
    int64_t end = omni_mono_ms() + WAIT_MS;
    while (omni_client_pending(fx->c) != n && omni_mono_ms() < end)
        assert_true(omni_client_poll(fx->c, 5) >= 0);
    assert_int_equal(omni_client_pending(fx->c), n);
}

static omni_client_stats_t stats(fx_t *fx)
{
    omni_client_stats_t st;
    omni_client_stats(fx->c, &st);
    return st;
}

static void submit(fx_t *fx, const char *id)
{
    char *j = omni_asprintf("{\"id\":\"%s\",\"channel\":\"sms\",\"text\":\"hi\"}", id);
    assert_int_equal(omni_client_submit(fx->c, id, j, strlen(j)), 0);
    free(j);
}

static void test_ack(void **state)
{
    fx_t *fx = *state;
    pmsg_t m;
    client_new(fx);
    assert_true(omni_client_fd(fx->c) >= 0);
    submit(fx, "sms:1");
    assert_int_equal(omni_client_sync(fx->c), 0);
    assert_int_equal(omni_client_pending(fx->c), 1);
    assert_int_equal(omni_client_next_timeout(fx->c), 0); /* something to send now */
    expect_msg(fx, "sms:1", &m);
    assert_string_equal(m.f[2], "{\"id\":\"sms:1\",\"channel\":\"sms\",\"text\":\"hi\"}");
    int t = omni_client_next_timeout(fx->c);
    assert_true(t > 0 && t <= 5000); /* the resend or the ping */
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, "sms:1", NULL);
    pump_until_pending(fx, 0);
    assert_int_equal(fx->acks, 1);
    assert_string_equal(fx->last_id, "sms:1");
    omni_client_stats_t st = stats(fx);
    assert_true(st.submitted == 1 && st.sent == 1 && st.resent == 0 && st.acked == 1);
    omni_client_destroy(&fx->c);
    assert_null(fx->c);
    client_new(fx); /* the answer was recorded: nothing to resend */
    assert_int_equal(omni_client_pending(fx->c), 0);
}

static void test_nack_goes_to_dead_letter(void **state)
{
    fx_t *fx = *state;
    pmsg_t m;
    client_new(fx);
    submit(fx, "sms:2");
    expect_msg(fx, "sms:2", &m);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_NACK, "sms:2", "from.id: not E.164", NULL);
    pump_until_pending(fx, 0);
    assert_int_equal(fx->nacks, 1);
    assert_string_equal(fx->last_reason, "sms:2: from.id: not E.164");
    char *p = omni_asprintf("%s/dead-letter.jsonl", fx->spool);
    json_t *d = json_load_file(p, 0, NULL);
    free(p);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "id")), "sms:2");
    assert_string_equal(json_string_value(json_object_get(d, "reason")), "from.id: not E.164");
    assert_non_null(json_string_value(json_object_get(d, "nacked_at")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "message"), "id")), "sms:2");
    json_decref(d);
    omni_client_destroy(&fx->c);
    client_new(fx);
    assert_int_equal(omni_client_pending(fx->c), 0);
}

static void test_busy_resends_after_the_hint(void **state)
{
    fx_t *fx = *state;
    pmsg_t m;
    client_new(fx);
    submit(fx, "sms:3");
    expect_msg(fx, "sms:3", &m);
    int64_t t0 = omni_mono_ms();
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_BUSY, "sms:3", "60", NULL);
    expect_msg(fx, "sms:3", &m);
    int64_t waited = omni_mono_ms() - t0;
    assert_true(waited >= 60);
    assert_true(waited < 2500); /* the hint, not resend_ms (5 s) */
    assert_int_equal(fx->busys, 1);
    assert_int_equal(fx->last_retry, 60);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, "sms:3", NULL);
    pump_until_pending(fx, 0);
    omni_client_stats_t st = stats(fx);
    assert_true(st.sent == 1 && st.resent == 1 && st.busy == 1 && st.acked == 1);
    /* hints are clamped to 10 ms .. 60 s; an ACK still settles a message waiting out its BUSY */
    submit(fx, "sms:4");
    expect_msg(fx, "sms:4", &m);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_BUSY, "sms:4", "999999999", NULL);
    while (fx->busys < 2 && peer_recv(fx, &m, 50))
        ;
    assert_int_equal(fx->last_retry, 60000);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, "sms:4", NULL);
    pump_until_pending(fx, 0);
}

static void test_resend_without_answer(void **state)
{
    fx_t *fx = *state;
    pmsg_t m;
    fx->opts.resend_ms = 40;
    client_new(fx);
    int64_t t0 = omni_mono_ms(); /* the first send is after this, the resend 40 ms after that */
    submit(fx, "sms:5");
    expect_msg(fx, "sms:5", &m);
    expect_msg(fx, "sms:5", &m);
    assert_true(omni_mono_ms() - t0 >= 40);
    omni_client_stats_t st = stats(fx);
    assert_true(st.sent == 1 && st.resent >= 1);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, "sms:5", NULL);
    pump_until_pending(fx, 0);
}

static void test_ping_and_pong(void **state)
{
    fx_t *fx = *state;
    pmsg_t m;
    fx->opts.ping_ms = 30;
    fx->opts.dead_ms = 5000; /* a loaded machine must not make the client give up on us mid-test */
    client_new(fx);
    assert_true(peer_expect(fx, OMNI_CMD_PING, &m, WAIT_MS)); /* idle: the client pings */
    assert_int_equal(m.n, 2);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_PONG, NULL);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_PING, NULL);
    assert_true(peer_expect(fx, OMNI_CMD_PONG, &m, WAIT_MS)); /* and answers a PING */
    assert_int_equal(m.n, 2);
    omni_client_stats_t st = stats(fx);
    assert_true(st.pings >= 1);
}

static void test_malformed_replies_are_ignored(void **state)
{
    fx_t *fx = *state;
    pmsg_t m;
    client_new(fx);
    submit(fx, "sms:6");
    expect_msg(fx, "sms:6", &m);
    peer_send(fx, &m, "OMNI/2", OMNI_CMD_ACK, "sms:6", NULL);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, NULL);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, "sms:6", "extra", NULL);
    peer_send(fx, &m, OMNI_PROTO_VERSION, "ack", "sms:6", NULL);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_NACK, "sms:6", NULL);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_BUSY, "sms:6", "12x", NULL);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_BUSY, "sms:6", "", NULL);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, "", NULL);
    peer_send(fx, &m, OMNI_PROTO_VERSION, NULL);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_PING, NULL); /* replies are handled in order, so... */
    assert_true(peer_expect(fx, OMNI_CMD_PONG, &m, WAIT_MS)); /* ...this PONG means all of them were */
    assert_int_equal(omni_client_pending(fx->c), 1);
    omni_client_stats_t st = stats(fx);
    assert_true(st.acked == 0 && st.nacked == 0 && st.busy == 0);
    assert_int_equal(fx->acks + fx->nacks + fx->busys, 0);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, "sms:6", NULL);
    pump_until_pending(fx, 0);
}

static void test_window_is_respected(void **state)
{
    fx_t *fx = *state;
    pmsg_t m;
    const char *ids[] = {"w:a", "w:b", "w:c", "w:d", "w:e"};
    fx->opts.window = 2;
    client_new(fx);
    for (int i = 0; i < 5; i++)
        submit(fx, ids[i]);
    expect_msg(fx, "w:a", &m);
    expect_msg(fx, "w:b", &m);
    assert_false(peer_expect(fx, OMNI_CMD_MSG, &m, 60)); /* two on the wire, no more */
    for (int i = 0; i < 3; i++) { /* each answer lets exactly the next one go, in submit order */
        peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, ids[i], NULL);
        expect_msg(fx, ids[i + 2], &m);
        assert_false(peer_expect(fx, OMNI_CMD_MSG, &m, 20));
    }
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, "w:d", NULL);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, "w:e", NULL);
    pump_until_pending(fx, 0);
}

static void test_new_client_resends_unanswered(void **state)
{
    fx_t *fx = *state;
    pmsg_t m;
    client_new(fx);
    submit(fx, "r:1");
    submit(fx, "r:2");
    submit(fx, "r:3");
    assert_int_equal(omni_client_sync(fx->c), 0);
    expect_msg(fx, "r:1", &m);
    expect_msg(fx, "r:2", &m);
    expect_msg(fx, "r:3", &m);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, "r:2", NULL);
    pump_until_pending(fx, 2);
    omni_client_destroy(&fx->c); /* a connector restart */
    client_new(fx);
    assert_int_equal(omni_client_pending(fx->c), 2);
    expect_msg(fx, "r:1", &m); /* oldest first */
    expect_msg(fx, "r:3", &m);
    omni_client_stats_t st = stats(fx);
    assert_true(st.sent == 0 && st.resent == 2 && st.submitted == 0);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, "r:1", NULL);
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, "r:3", NULL);
    pump_until_pending(fx, 0);
    omni_client_destroy(&fx->c);
    client_new(fx);
    assert_int_equal(omni_client_pending(fx->c), 0);
}

static void test_silent_router_means_reconnect_and_resend(void **state)
{
    fx_t *fx = *state;
    pmsg_t m;
    fx->opts.ping_ms = 20;
    fx->opts.dead_ms = 80;
    fx->opts.resend_ms = 60000; /* so the second copy can only come from the reconnect */
    client_new(fx);
    submit(fx, "d:1");
    expect_msg(fx, "d:1", &m);
    zmq_close(fx->peer); /* the router restarts, losing what it had not answered */
    peer_bind(fx);
    int64_t t0 = omni_mono_ms();
    expect_msg(fx, "d:1", &m);
    assert_true(omni_mono_ms() - t0 < 2000);
    omni_client_stats_t st = stats(fx);
    assert_true(st.sent == 1 && st.resent >= 1); /* a slow machine may go through two reconnects */
    peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, "d:1", NULL);
    pump_until_pending(fx, 0);
}

static void test_submit_rules(void **state)
{
    fx_t *fx = *state;
    fx->opts.max_spooled = 2;
    client_new(fx);
    submit(fx, "s:1");
    submit(fx, "s:1"); /* already pending: nothing added */
    assert_int_equal(omni_client_pending(fx->c), 1);
    const char *other = "{\"id\":\"s:9\"}", *junk = "{\"id\":\"s:2\"";
    errno = 0;
    assert_int_equal(omni_client_submit(fx->c, "s:2", other, strlen(other)), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(omni_client_submit(fx->c, "s:2", junk, strlen(junk)), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(omni_client_submit(fx->c, "", "{}", 2), -1);
    assert_int_equal(errno, EINVAL);
    /* an id the router cannot read back (NACK "-", never matched): refused, not resent forever */
    const char *ctl = "{\"id\":\"s:\\u0001\"}", *c1 = "{\"id\":\"s:\\u0085\"}";
    errno = 0;
    assert_int_equal(omni_client_submit(fx->c, "s:\x01", ctl, strlen(ctl)), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(omni_client_submit(fx->c, "s:\xc2\x85", c1, strlen(c1)), -1);
    assert_int_equal(errno, EINVAL);
    /* over four times the router's limits.message_bytes (default 262144): its answer could not name it */
    size_t big = 4 * 262144 + 1;
    char *huge = omni_malloc(big + 1);
    memset(huge, ' ', big);
    memcpy(huge, "{\"id\":\"s:big\"", strlen("{\"id\":\"s:big\""));
    huge[big - 1] = '}';
    huge[big] = '\0';
    errno = 0;
    assert_int_equal(omni_client_submit(fx->c, "s:big", huge, big), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(omni_client_pending(fx->c), 1);
    submit(fx, "s:2");
    const char *third = "{\"id\":\"s:3\"}";
    assert_int_equal(omni_client_submit(fx->c, "s:3", third, strlen(third)), -1);
    assert_int_equal(errno, EAGAIN);
    omni_client_stats_t st = stats(fx);
    assert_int_equal(st.submitted, 2);
    char err[256] = "";
    assert_null(omni_client_new(&fx->opts, err, sizeof err)); /* one client per spool */
    assert_non_null(strstr(err, "in use"));
    /* a client told the router's larger limit takes it */
    omni_client_destroy(&fx->c);
    fx->opts.max_message_bytes = 1048576;
    fx->opts.max_spooled = 0;
    client_new(fx);
    assert_int_equal(omni_client_submit(fx->c, "s:big", huge, big), 0);
    assert_int_equal(omni_client_sync(fx->c), 0);
    free(huge);
    /* reopened with the default limit, that spooled message could never be answered: a dead letter now */
    omni_client_destroy(&fx->c);
    fx->opts.max_message_bytes = 0;
    client_new(fx);
    assert_int_equal(omni_client_pending(fx->c), 2); /* s:1 and s:2, not s:big */
    char *path = omni_asprintf("%s/dead-letter.jsonl", fx->spool);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256] = "";
    assert_non_null(fgets(line, sizeof line, f)); /* the first 255 bytes of its record are enough */
    fclose(f);
    free(path);
    assert_non_null(strstr(line, "\"id\":\"s:big\""));
    assert_non_null(strstr(line, "over four times max_message_bytes"));
}

/* A message goes to the router only once its spool record is in the file: while writes fail it is held
 * back (and sync says so); once a write works it goes, and the file has it. */
static void test_not_sent_before_spooled(void **state)
{
    fx_t *fx = *state;
    pmsg_t m;
    client_new(fx);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 10; /* spool.log is empty: a record cannot be written whole */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    submit(fx, "w:1");
    assert_false(peer_expect(fx, OMNI_CMD_MSG, &m, 300)); /* polled all the while: nothing sent */
    assert_int_equal(omni_client_sync(fx->c), -1);
    assert_int_equal(errno, EIO);
    assert_false(peer_expect(fx, OMNI_CMD_MSG, &m, 100));
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    expect_msg(fx, "w:1", &m);
    char *p = omni_asprintf("%s/spool.log", fx->spool);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char buf[512] = "";
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    free(p);
    assert_true(got > 0 && strstr(buf, "{\"id\":\"w:1\"") != NULL);
    assert_int_equal(omni_client_sync(fx->c), 0);
}

static void test_answered_spool_gets_compacted(void **state)
{
    fx_t *fx = *state;
    pmsg_t m;
    char *pad = omni_malloc(8001);
    memset(pad, 'y', 8000);
    pad[8000] = '\0';
    client_new(fx);
    for (int i = 0; i < 200; i++) {
        char id[24];
        snprintf(id, sizeof id, "big:%d", i);
        char *j = omni_asprintf("{\"id\":\"%s\",\"text\":\"%s\"}", id, pad);
        assert_int_equal(omni_client_submit(fx->c, id, j, strlen(j)), 0);
        free(j);
    }
    free(pad);
    assert_int_equal(omni_client_sync(fx->c), 0);
    char *p = omni_asprintf("%s/spool.log", fx->spool);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(st.st_size > 1600000);
    for (int i = 0; i < 199; i++) { /* answer all but the last */
        assert_true(peer_expect(fx, OMNI_CMD_MSG, &m, WAIT_MS));
        json_t *doc = json_loadb(m.f[2], m.len[2], 0, NULL);
        const char *id = json_string_value(json_object_get(doc, "id"));
        if (strcmp(id, "big:199") != 0)
            peer_send(fx, &m, OMNI_PROTO_VERSION, OMNI_CMD_ACK, id, NULL);
        json_decref(doc);
    }
    pump_until_pending(fx, 1);
    assert_int_equal(stat(p, &st), 0);
    /* Without compaction all 200 records would still be there. Once it is under 1 MiB the file is left
     * alone, so it is not down to one message, only below the threshold. */
    assert_true(st.st_size < 1024 * 1024);
    free(p);
    omni_client_destroy(&fx->c);
    client_new(fx);
    assert_int_equal(omni_client_pending(fx->c), 1);
}

int main(void)
{
    omni_log_init("test_client", OMNI_LOG_ERROR); /* malformed replies and restarts warn on purpose */
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_ack), T(test_nack_goes_to_dead_letter), T(test_busy_resends_after_the_hint),
        T(test_resend_without_answer), T(test_ping_and_pong), T(test_malformed_replies_are_ignored),
        T(test_window_is_respected), T(test_new_client_resends_unanswered),
        T(test_silent_router_means_reconnect_and_resend), T(test_submit_rules),
        T(test_answered_spool_gets_compacted), T(test_not_sent_before_spooled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
