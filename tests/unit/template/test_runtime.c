/* The connector runtime's command line, config checking and state files, through the template's keys. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <poll.h>
#include <zmq.h>

#include "../../../connectors/template/template.h"
#include "omni/message.h"
#include "omni/util.h"

static char dir[64], cfg[128], out[16384];

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Runs omni_connector_new with argv (NULL-terminated), its stderr and stdout captured into out. */
static omni_connector_t *run_new(int *status, char **argv)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    char file[128];
    snprintf(file, sizeof file, "%s/out.txt", dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600), e = dup(2), o = dup(1);
    fflush(stdout);
    dup2(fd, 2);
    dup2(fd, 1);
    close(fd);
    omni_connector_t *c = omni_connector_new(&template_connector, argc, argv, status);
    fflush(stdout);
    dup2(e, 2);
    dup2(o, 1);
    close(e);
    close(o);
    FILE *f = fopen(file, "r");
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    fclose(f);
    return c;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/omni-rt-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cfg, sizeof cfg, "%s/c.yaml", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void config_errors_name_file_line_column(void **state)
{
    (void)state;
    put(cfg, "poll_ms: 5\n"
             "router:\n"
             "  endpoint: [ipc://a, b]\n"
             "  resend: 10\n"
             "log_level: loud\n"
             "max_spooled: many\n"
             "template:\n"
             "  path: in.txt\n"
             "  path: again.txt\n"
             "  max_batch: 1000000\n"
             "default_country: UK\n");
    int status = -1;
    char *argv[] = { "omni-template", "--config", cfg, "--check-config", NULL };
    assert_null(run_new(&status, argv));
    assert_int_equal(status, 1);
    char want[256];
    static const char *const errs[] = {
        "c.yaml:1:10: poll_ms: 5 is below the minimum 10",
        "c.yaml:3:23: router.endpoint: \"b\" is not an endpoint: ipc://PATH or tcp://HOST:PORT",
        "c.yaml:4:3: router.resend: unknown key",
        "c.yaml:5:12: log_level: \"loud\" is not one of debug|info|warn|error",
        "c.yaml:6:14: max_spooled: \"many\" is not an integer",
        "c.yaml:9:3: template.path: duplicate key",
        "c.yaml:10:14: template.max_batch: 1000000 is above the maximum 100000",
        /* the router's check, so a code the router refuses is refused here too, before any caller is lost */
        "c.yaml:11:18: default_country: \"UK\" is not an ISO 3166 alpha-2 country code (did you mean GB?)",
    };
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        snprintf(want, sizeof want, "%s/%s", dir, errs[i]);
        if (strstr(out, want) == NULL)
            fail_msg("missing \"%s\" in:\n%s", want, out);
    }
    put(cfg, "template:\n  path: [unclosed\n");
    assert_null(run_new(&status, argv));
    assert_int_equal(status, 1);
    snprintf(want, sizeof want, "%s/c.yaml:3:1: ", dir); /* libyaml's own position */
    assert_non_null(strstr(out, want));
}

static void required_key_and_overrides(void **state)
{
    (void)state;
    put(cfg, "poll_ms: 100\n");
    int status = -1;
    char *argv[] = { "omni-template", "--config", cfg, "--check-config", NULL };
    assert_null(run_new(&status, argv));
    assert_int_equal(status, 1);
    assert_non_null(strstr(out, "c.yaml: template.path: missing (required)"));
    char *argv2[] = { "omni-template", "--config", cfg, "-D", "template.path=x.txt", "-Dnope=1",
                      "-D", "poll_ms=abc", "--check-config", NULL };
    assert_null(run_new(&status, argv2));
    assert_int_equal(status, 1);
    assert_non_null(strstr(out, "command line:2:1: nope: unknown key"));
    /* poll_ms is a duration now ("2s" works, as in the router), hence the wording */
    assert_non_null(strstr(out, "command line:3:1: poll_ms: expected a duration in milliseconds (500, 500ms, 5s), got "
                                "\"abc\""));
    char *argv4[] = { "omni-template", "--config", cfg, "-D", "template.path=x.txt", "-D", "default_country=ZZ",
                      "--check-config", NULL };
    assert_null(run_new(&status, argv4));
    assert_int_equal(status, 1);
    assert_non_null(strstr(out, "command line:2:1: default_country: \"ZZ\" is not an ISO 3166 alpha-2 country code "
                                "with a telephone numbering plan"));
    char *argv3[] = { "omni-template", "--config", cfg, "-D", "template.path=x.txt", "--check-config", NULL };
    assert_null(run_new(&status, argv3));
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "config OK"));
}

static void values_defaults_and_paths(void **state)
{
    (void)state;
    char yaml[512];
    snprintf(yaml, sizeof yaml, "router:\n  endpoint: ipc://%s/r.sock\nspool_dir: sp\ndefault_country: fr\n"
             "template:\n  path: in.txt\n  sender: ~\n", dir);
    put(cfg, yaml);
    int status = -1;
    char *argv[] = { "omni-template", "--config", cfg, "-D", "template.max_batch=7", "-D", "poll_ms=50", NULL };
    omni_connector_t *c = run_new(&status, argv);
    assert_non_null(c);
    assert_int_equal(status, 0);
    char want[160];
    snprintf(want, sizeof want, "%s/in.txt", dir); /* relative to the config file */
    assert_string_equal(omni_connector_cfg_str(c, "path"), want);
    assert_string_equal(omni_connector_cfg_str(c, "sender"), "template-user"); /* null: the default */
    assert_int_equal(omni_connector_cfg_int(c, "max_batch"), 7);
    assert_int_equal(omni_connector_poll_ms(c), 50);
    assert_string_equal(omni_connector_default_country(c), "FR");
    snprintf(want, sizeof want, "%s/sp", dir);
    assert_string_equal(omni_connector_state_dir(c), want); /* state_dir defaults to spool_dir */
    assert_string_equal(omni_connector_name(c), "template");
    assert_string_equal(omni_connector_channel(c), "x-template");
    struct stat st;
    assert_int_equal(stat(want, &st), 0);
    omni_connector_destroy(&c);
    assert_null(c);
}

/* A section with no value ("router:" with its keys commented out) keeps every default of its keys, as a key
 * with no value keeps its default (docs/connectors.md); a section written as a scalar or a list is named as
 * such, not as an unknown key. */
static void an_empty_section_keeps_its_defaults(void **state)
{
    (void)state;
    put(cfg, "router:\n#  endpoint: ipc:///x\nspool_dir: sp\ntemplate:\n  path: in.txt\n");
    int status = -1;
    char *argv[] = { "omni-template", "--config", cfg, "--check-config", NULL };
    assert_null(run_new(&status, argv));
    if (status != 0)
        fail_msg("an empty router: section refused:\n%s", out);
    put(cfg, "spool_dir: sp\nrouter: 3\ntemplate: [in.txt]\n");
    assert_null(run_new(&status, argv));
    assert_int_equal(status, 1);
    char want[256];
    static const char *const errs[] = {
        "c.yaml:2:9: router: expected a mapping",
        "c.yaml:3:11: template: expected a mapping",
    };
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        snprintf(want, sizeof want, "%s/%s", dir, errs[i]);
        if (strstr(out, want) == NULL)
            fail_msg("missing \"%s\" in:\n%s", want, out);
    }
    assert_null(strstr(out, "unknown key"));
}

static void help_and_usage(void **state)
{
    (void)state;
    int status = -1;
    char *help[] = { "omni-template", "--help", NULL };
    assert_null(run_new(&status, help));
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "usage: omni-template"));
    assert_non_null(strstr(out, "template.max_batch"));
    /* "every key, type, default, bounds" (docs/connectors.md): a string's length bounds too */
    if (strstr(out, "default template-user (1..256 bytes)") == NULL)
        fail_msg("no bounds for template.sender in:\n%s", out);
    assert_non_null(strstr(out, "template.path            path     required (1..4096 bytes)"));
    char *bad[] = { "omni-template", "--frobnicate", NULL };
    assert_null(run_new(&status, bad));
    assert_int_equal(status, 2);
    char *missing[] = { "omni-template", "--config", NULL };
    assert_null(run_new(&status, missing));
    assert_int_equal(status, 2);
}

static void state_files(void **state)
{
    (void)state;
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(omni_state_read(dir, "s", &data, &len), 1);
    assert_null(data);
    assert_int_equal(omni_state_write(dir, "s", "one", 3), 0);
    assert_int_equal(omni_state_write(dir, "s", "second", 6), 0);
    assert_int_equal(omni_state_read(dir, "s", &data, &len), 0);
    assert_int_equal(len, 6);
    assert_string_equal(data, "second");
    free(data);
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/.s.tmp", dir);
    assert_int_equal(access(tmp, F_OK), -1); /* renamed away */
    errno = 0;
    assert_int_equal(omni_state_write(dir, "a/b", "x", 1), -1);
    assert_int_equal(errno, EINVAL);
    char *big = omni_calloc(1, OMNI_STATE_MAX + 1);
    assert_int_equal(omni_state_write(dir, "big", big, OMNI_STATE_MAX + 1), -1);
    assert_int_equal(errno, EFBIG);
    snprintf(tmp, sizeof tmp, "%s/big", dir);
    FILE *f = fopen(tmp, "w");
    fwrite(big, 1, OMNI_STATE_MAX + 1, f);
    fclose(f);
    free(big);
    assert_int_equal(omni_state_read(dir, "big", &data, &len), -1);
    assert_int_equal(errno, EFBIG);
}

/* Size of dir/sp/spool.log (-1 when absent). */
static long spool_size(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/sp/spool.log", dir);
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* MSG frames the router end (a ROUTER socket) receives within ms; counts them. */
static int received_msgs(void *router, int ms)
{
    int n = 0;
    int64_t deadline = omni_mono_ms() + ms;
    for (;;) {
        zmq_pollitem_t it = {router, 0, ZMQ_POLLIN, 0};
        int64_t left = deadline - omni_mono_ms();
        if (left <= 0 || zmq_poll(&it, 1, (long)left) <= 0)
            return n;
        int more = 1, frame = 0;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            assert_true(zmq_msg_recv(&m, router, 0) >= 0);
            if (frame++ == 2 && zmq_msg_size(&m) == 3 && memcmp(zmq_msg_data(&m), "MSG", 3) == 0)
                n++; /* identity, version, command, body */
            more = zmq_msg_more(&m);
            zmq_msg_close(&m);
        }
    }
}

/* A connector reading a large batch hands what it submitted to the router with omni_connector_flush:
 * written to the spool (not synced), sent, before any commit; without it nothing leaves before the commit. */
static void flush_sends_before_the_commit(void **state)
{
    (void)state;
    char yaml[512], ep[128];
    snprintf(ep, sizeof ep, "ipc://%s/r.sock", dir);
    snprintf(yaml, sizeof yaml, "router:\n  endpoint: %s\nspool_dir: sp\ntemplate:\n  path: in.txt\n", ep);
    put(cfg, yaml);
    void *zctx = zmq_ctx_new(), *router = zmq_socket(zctx, ZMQ_ROUTER);
    assert_int_equal(zmq_bind(router, ep), 0);
    int status = -1;
    char *argv[] = { "omni-template", "--config", cfg, NULL };
    omni_connector_t *c = run_new(&status, argv);
    assert_non_null(c);
    char now[40];
    omni_rfc3339(omni_wall_ms(), now, sizeof now);
    for (int i = 0; i < 3; i++) {
        char id[48];
        snprintf(id, sizeof id, "x-template:flush:%d", i);
        omni_msg_t *m = omni_msg_new(id, "x-template", "someone", now, "hello");
        assert_int_equal(omni_connector_submit(c, m), 0);
        omni_msg_destroy(&m);
    }
    assert_int_equal(received_msgs(router, 300), 0); /* submitted only: gathered for the commit */
    long before = spool_size();
    assert_int_equal(omni_connector_flush(c), 0);
    assert_true(spool_size() > (before > 0 ? before : 0)); /* the records are in the file first */
    int got = received_msgs(router, 5000);
    for (int64_t end = omni_mono_ms() + 5000; got < 3 && omni_mono_ms() < end;) {
        assert_int_equal(omni_connector_flush(c), 0); /* the socket may connect after the first try */
        got += received_msgs(router, 100);
    }
    assert_int_equal(got, 3);
    omni_connector_destroy(&c);
    zmq_close(router);
    zmq_ctx_term(zctx);
}

/* A sender the router could make no identity of (docs/protocol.md "Identity keys": an x- channel's from.id is
 * 1..256 bytes once trimmed) is refused at submit, with its id and field, never spooled. */
static void submit_refuses_a_sender_without_an_identity(void **state)
{
    (void)state;
    char yaml[512];
    snprintf(yaml, sizeof yaml, "router:\n  endpoint: ipc://%s/r.sock\nspool_dir: sp\ntemplate:\n  path: in.txt\n", dir);
    put(cfg, yaml);
    int status = -1;
    char *argv[] = { "omni-template", "--config", cfg, NULL };
    omni_connector_t *c = run_new(&status, argv);
    assert_non_null(c);
    char now[40], longer[300];
    omni_rfc3339(omni_wall_ms(), now, sizeof now);
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    const char *bad[] = { "   \t", longer };
    for (size_t i = 0; i < 2; i++) {
        omni_msg_t *m = omni_msg_new("x-template:who", "x-template", bad[i], now, "hello");
        assert_int_equal(omni_connector_submit(c, m), OMNI_SUBMIT_INVALID);
        omni_msg_destroy(&m);
    }
    omni_msg_t *m = omni_msg_new("x-template:who", "x-template", " someone ", now, "hello");
    assert_int_equal(omni_connector_submit(c, m), 0);
    omni_msg_destroy(&m);
    omni_connector_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(config_errors_name_file_line_column, setup, teardown),
        cmocka_unit_test_setup_teardown(required_key_and_overrides, setup, teardown),
        cmocka_unit_test_setup_teardown(values_defaults_and_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(an_empty_section_keeps_its_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(help_and_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(state_files, setup, teardown),
        cmocka_unit_test_setup_teardown(flush_sends_before_the_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(submit_refuses_a_sender_without_an_identity, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
