/* The template connector under the real runtime (libomni/connector.c) against a scripted router: a ROUTER
 * socket in this thread that ACKs every MSG. Every wait turns the connector's loop and the router until a
 * condition holds or a deadline passes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "../../../connectors/template/template.h"
#include "omni/protocol.h"
#include "omni/util.h"

#define WAIT_MS 5000 /* deadline for what should take milliseconds */

typedef struct fx {
    char dir[64], cfg[128], input[128], endpoint[128];
    void *zctx, *router;
    bool ack;                 /* the router answers MSG with ACK (else it stays silent) */
    json_t *got[16];          /* messages the router received, in order */
    int n_got;
    omni_connector_t *c;
} fx_t;

static void put(const char *path, const char *mode, const char *text)
{
    FILE *f = fopen(path, mode);
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Receives what is waiting at the router; ACKs each MSG when fx->ack; answers PING. */
static void router_serve(fx_t *fx)
{
    zmq_pollitem_t it = { .socket = fx->router, .events = ZMQ_POLLIN };
    while (zmq_poll(&it, 1, 0) > 0) {
        char f[5][8192];
        int len[5], n = 0, more = 1;
        while (more) {
            int r = zmq_recv(fx->router, f[n < 5 ? n : 4], sizeof f[0] - 1, 0);
            assert_true(r >= 0 && r < (int)sizeof f[0]);
            len[n < 5 ? n : 4] = r;
            f[n < 5 ? n : 4][r] = '\0';
            n++;
            size_t sz = sizeof more;
            zmq_getsockopt(fx->router, ZMQ_RCVMORE, &more, &sz);
        }
        assert_true(n >= 3);
        assert_string_equal(f[1], OMNI_PROTO_VERSION);
        const char *reply = NULL, *id = NULL;
        json_t *doc = NULL;
        if (strcmp(f[2], OMNI_CMD_MSG) == 0) {
            assert_int_equal(n, 4);
            doc = json_loads(f[3], 0, NULL);
            assert_non_null(doc);
            if (!fx->ack) {
                json_decref(doc);
                continue;
            }
            /* Like the router: a duplicate id is acknowledged, not stored twice. Duplicates happen here
             * when a stopped connector's resends are still queued at this socket. */
            json_t *seen = NULL;
            for (int k = 0; k < fx->n_got && seen == NULL; k++)
                if (json_equal(json_object_get(fx->got[k], "id"), json_object_get(doc, "id")))
                    seen = fx->got[k];
            if (seen != NULL) {
                json_decref(doc);
            } else {
                assert_true(fx->n_got < 16);
                fx->got[fx->n_got++] = seen = doc;
            }
            id = json_string_value(json_object_get(seen, "id"));
            reply = OMNI_CMD_ACK;
        } else if (strcmp(f[2], OMNI_CMD_PING) == 0) {
            reply = OMNI_CMD_PONG;
        } else {
            continue;
        }
        zmq_send(fx->router, f[0], (size_t)len[0], ZMQ_SNDMORE);
        zmq_send(fx->router, OMNI_PROTO_VERSION, strlen(OMNI_PROTO_VERSION), ZMQ_SNDMORE);
        zmq_send(fx->router, reply, strlen(reply), id ? ZMQ_SNDMORE : 0);
        if (id)
            zmq_send(fx->router, id, strlen(id), 0);
    }
}

static omni_connector_t *start(fx_t *fx)
{
    char *argv[] = { "omni-template", "--config", fx->cfg, "-D", "template.max_batch=2", NULL };
    int status = -1;
    omni_connector_t *c = omni_connector_new(&template_connector, 5, argv, &status);
    assert_non_null(c);
    assert_int_equal(status, 0);
    return c;
}

/* Turns the loop until the router got n messages and the spool holds pending unanswered ones. */
static void run_until(fx_t *fx, int n, size_t pending)
{
    int64_t end = omni_mono_ms() + WAIT_MS;
    while (omni_mono_ms() < end) {
        assert_int_equal(omni_connector_step(fx->c, 10), 0);
        router_serve(fx);
        if (fx->n_got >= n && omni_client_pending(omni_connector_client(fx->c)) == pending)
            break;
    }
    assert_int_equal(fx->n_got, n);
    assert_int_equal(omni_client_pending(omni_connector_client(fx->c)), pending);
}

static int setup(void **state)
{
    fx_t *fx = omni_calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/omni-tpl-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->cfg, sizeof fx->cfg, "%s/template.yaml", fx->dir);
    snprintf(fx->input, sizeof fx->input, "%s/in.txt", fx->dir);
    snprintf(fx->endpoint, sizeof fx->endpoint, "ipc://%s/r.sock", fx->dir);
    char yaml[512];
    /* spool_dir and template.path are relative: to the config file's directory */
    snprintf(yaml, sizeof yaml, "router:\n  endpoint: %s\n  resend_ms: 200\nspool_dir: spool\npoll_ms: 20\n"
             "log_level: warn\ntemplate:\n  path: in.txt\n", fx->endpoint);
    put(fx->cfg, "w", yaml);
    fx->zctx = zmq_ctx_new();
    fx->router = zmq_socket(fx->zctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(fx->router, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(fx->router, fx->endpoint), 0);
    fx->ack = true;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    omni_connector_destroy(&fx->c);
    for (int i = 0; i < fx->n_got; i++)
        json_decref(fx->got[i]);
    zmq_close(fx->router);
    zmq_ctx_term(fx->zctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static const char *field(fx_t *fx, int i, const char *key)
{
    json_t *v = json_object_get(fx->got[i], key);
    if (strcmp(key, "from") == 0)
        v = json_object_get(v, "id");
    return json_string_value(v);
}

static void lines_become_acked_messages(void **state)
{
    fx_t *fx = *state;
    fx->c = start(fx);
    put(fx->input, "w", "alice\thello\njust text\nbad \xff byte\nthird\npartial");
    run_until(fx, 3, 0); /* batches of 2 (-D template.max_batch=2): polled again at once */
    assert_string_equal(field(fx, 0, "from"), "alice");
    assert_string_equal(field(fx, 0, "text"), "hello");
    assert_string_equal(field(fx, 0, "channel"), "x-template");
    assert_string_equal(field(fx, 1, "from"), "template-user");
    assert_string_equal(field(fx, 1, "text"), "just text");
    assert_string_equal(field(fx, 2, "text"), "third");
    omni_connector_stats_t st;
    omni_connector_stats(fx->c, &st);
    assert_int_equal(st.invalid, 1); /* bad UTF-8: counted and logged, never sent */
    assert_int_equal(st.submitted, 3);
    char *saved = NULL, sdir[128], want[64];
    snprintf(sdir, sizeof sdir, "%s/spool", fx->dir);
    assert_int_equal(omni_state_read(sdir, "template.offset", &saved, NULL), 0);
    snprintf(want, sizeof want, " %zu\n", strlen("alice\thello\njust text\nbad \xff byte\nthird\n"));
    assert_non_null(strstr(saved, want)); /* the partial line is not taken */
    free(saved);
    put(fx->input, "a", "ly done\n");
    run_until(fx, 4, 0);
    assert_string_equal(field(fx, 3, "text"), "partially done");
    raise(SIGTERM); /* blocked by the runtime: read from its signalfd */
    int rc = 0;
    for (int64_t end = omni_mono_ms() + WAIT_MS; rc == 0 && omni_mono_ms() < end;)
        rc = omni_connector_step(fx->c, 10);
    assert_int_equal(rc, 1);
}

/* A NUL byte would end the line's text where it stands: the line is refused whole (counted invalid), never cut;
 * a line ended by \r\n does not keep the \r in its text. */
static void a_nul_byte_refuses_the_line_and_crlf_ends_one(void **state)
{
    fx_t *fx = *state;
    fx->c = start(fx);
    static const char input[] = "nul \0 byte\ncrlf line\r\nlast\n";
    FILE *f = fopen(fx->input, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(input, 1, sizeof input - 1, f), sizeof input - 1);
    fclose(f);
    run_until(fx, 2, 0);
    assert_string_equal(field(fx, 0, "text"), "crlf line");
    assert_string_equal(field(fx, 1, "text"), "last");
    omni_connector_stats_t st;
    omni_connector_stats(fx->c, &st);
    assert_int_equal(st.invalid, 1);
    assert_int_equal(st.submitted, 2);
}

/* A blank line is no message, however it ends: "\r\n" alone is as blank as "\n" alone (it was once sent as an
 * empty message from the default sender). */
static void a_blank_line_is_no_message_whatever_ends_it(void **state)
{
    fx_t *fx = *state;
    fx->c = start(fx);
    put(fx->input, "w", "first\r\n\r\n\n\r\nsecond\n");
    run_until(fx, 2, 0);
    assert_string_equal(field(fx, 0, "text"), "first");
    assert_string_equal(field(fx, 1, "text"), "second");
    omni_connector_stats_t st;
    omni_connector_stats(fx->c, &st);
    assert_int_equal(st.submitted, 2);
    assert_int_equal(st.invalid, 0);
}

static void restart_resends_only_the_unanswered(void **state)
{
    fx_t *fx = *state;
    fx->ack = false; /* the router swallows messages: they stay in the spool */
    fx->c = start(fx);
    put(fx->input, "w", "one\ntwo\n");
    int64_t end = omni_mono_ms() + WAIT_MS;
    omni_connector_stats_t st = { 0 };
    while (st.commits == 0 && omni_mono_ms() < end) {
        assert_int_equal(omni_connector_step(fx->c, 10), 0);
        router_serve(fx);
        omni_connector_stats(fx->c, &st);
    }
    assert_int_equal(omni_client_pending(omni_connector_client(fx->c)), 2);
    omni_connector_destroy(&fx->c); /* a stop with two unanswered messages */
    fx->ack = true;
    put(fx->input, "a", "three\n");
    fx->c = start(fx);
    run_until(fx, 3, 0); /* the two from the spool, then the new line: each once */
    assert_string_equal(field(fx, 0, "text"), "one");
    assert_string_equal(field(fx, 1, "text"), "two");
    assert_string_equal(field(fx, 2, "text"), "three");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(lines_become_acked_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(a_nul_byte_refuses_the_line_and_crlf_ends_one, setup, teardown),
        cmocka_unit_test_setup_teardown(a_blank_line_is_no_message_whatever_ends_it, setup, teardown),
        cmocka_unit_test_setup_teardown(restart_resends_only_the_unanswered, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
