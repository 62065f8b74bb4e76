/* libomni log.c: line formats on a terminal and under systemd, level filtering, fatal and panic, and
 * util.c's fatal out-of-memory path. Each case runs in a child process with stderr captured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "omni/log.h"
#include "omni/util.h"

/* Lets the out-of-memory test see malloc fail instead of ASan stopping the process first. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* Runs fn in a child with stderr captured into out; returns the child's wait status. */
static int in_child(void (*fn)(void), char *out, size_t outsz)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < outsz && (r = read(fds[0], out + n, outsz - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return status;
}

static void oom(void)
{
    unsetenv("JOURNAL_STREAM");
    omni_log_init("oomtest", OMNI_LOG_INFO);
    volatile size_t huge = SIZE_MAX / 2;
    omni_malloc(huge);
}

static void test_alloc_fatal(void **state)
{
    (void)state;
    char out[1024];
    int status = in_child(oom, out, sizeof out);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_non_null(strstr(out, "oomtest["));
    assert_non_null(strstr(out, "]: fatal: out of memory allocating "));
}

/* ---- logging ---- */

static void log_terminal(void)
{
    unsetenv("JOURNAL_STREAM");
    omni_log_init("/usr/bin/omnitest", OMNI_LOG_INFO);
    omni_debug("hidden %d", 1);
    omni_info("stored %s", "m1");
    omni_warn("two\nlines");
    omni_log_set_level(OMNI_LOG_ERROR);
    omni_warn("hidden too");
    omni_error("failed %d", 3);
}

/* As systemd does: JOURNAL_STREAM names the device and inode of the stream stderr is. */
static void point_journal_stream_at_stderr(void)
{
    struct stat st;
    assert_int_equal(fstat(2, &st), 0);
    char v[64];
    snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", v, 1);
}

static void log_journal(void)
{
    point_journal_stream_at_stderr();
    omni_log_init("omnitest", OMNI_LOG_DEBUG);
    omni_debug("d");
    omni_info("i");
    omni_warn("w");
    omni_error("e");
}

static void log_fatal(void) { unsetenv("JOURNAL_STREAM"); omni_fatal("config %s broken", "x.yaml"); }
static void log_panic(void) { point_journal_stream_at_stderr(); omni_log_init("p", OMNI_LOG_INFO);
                              omni_panic("invariant %d", 7); }
static void log_long(void)
{
    unsetenv("JOURNAL_STREAM");
    omni_log_init("omnitest", OMNI_LOG_INFO);
    char big[10000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    omni_info("%s", big);
}

static void test_log_terminal(void **state)
{
    (void)state;
    char out[4096], want[128];
    assert_int_equal(in_child(log_terminal, out, sizeof out), 0);
    /* 2026-11-22T08:42:00.123Z omnitest[1234]: info: stored m1 */
    char *line = out;
    assert_true(strlen(line) > 25);
    assert_int_equal(line[4], '-');
    assert_int_equal(line[10], 'T');
    assert_int_equal(line[23], 'Z');
    int64_t ms;
    char stamp[25];
    memcpy(stamp, line, 24);
    stamp[24] = '\0';
    assert_int_equal(omni_rfc3339_parse(stamp, &ms), 0);
    snprintf(want, sizeof want, " omnitest[");
    assert_memory_equal(line + 24, want, strlen(want));
    assert_non_null(strstr(out, "]: info: stored m1\n"));
    assert_non_null(strstr(out, "]: warn: two lines\n"));   /* one event, one line */
    assert_non_null(strstr(out, "]: error: failed 3\n"));
    assert_null(strstr(out, "hidden"));
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);
}

static void test_log_journal(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(in_child(log_journal, out, sizeof out), 0);
    assert_string_equal(out, "<7>debug: d\n<6>info: i\n<4>warn: w\n<3>error: e\n");
}

/* Inherited by a process whose stderr is elsewhere (a pipe to a pager): not the journal. */
static void log_journal_elsewhere(void)
{
    setenv("JOURNAL_STREAM", "8:12345", 1);
    omni_log_init("omnitest", OMNI_LOG_INFO);
    omni_info("plain");
}

static void log_event(void)
{
    point_journal_stream_at_stderr();
    omni_log_init("omnitest", OMNI_LOG_INFO);
    const char *fields[] = { "CONVERSATION", "12", "AGENT", NULL, "TEAM", "core", NULL };
    omni_log_event(OMNI_LOG_WARN, OMNI_MSGID_MESSAGE_REFUSED, fields, "refused %s", "m1");
}

static void test_log_journal_elsewhere(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(in_child(log_journal_elsewhere, out, sizeof out), 0);
    assert_non_null(strstr(out, " omnitest["));
    assert_non_null(strstr(out, "]: info: plain\n"));
}

/* journald's native protocol on its socket: one datagram of NAME=value lines per entry. The test plays
 * journald on the socket path libsystemd sends to, when no journald owns it on this machine. */
static void test_log_event_is_structured(void **state)
{
    (void)state;
    const char *path = "/run/systemd/journal/socket";
    char out[4096];
    if (access(path, F_OK) == 0) { /* a real journald: the entry goes there and nothing to stderr */
        assert_int_equal(in_child(log_event, out, sizeof out), 0);
        assert_string_equal(out, "");
        return;
    }
    assert_int_equal(system("mkdir -p /run/systemd/journal"), 0);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(in_child(log_event, out, sizeof out), 0);
    assert_string_equal(out, ""); /* sent to the journal, not written */
    char dgram[4096];
    ssize_t n = recv(fd, dgram, sizeof dgram - 1, MSG_DONTWAIT);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    dgram[n] = '\0';
    assert_non_null(strstr(dgram, "MESSAGE=refused m1\n"));
    assert_non_null(strstr(dgram, "PRIORITY=4\n"));
    assert_non_null(strstr(dgram, "SYSLOG_IDENTIFIER=omnitest\n"));
    assert_non_null(strstr(dgram, "MESSAGE_ID=" OMNI_MSGID_MESSAGE_REFUSED "\n"));
    assert_non_null(strstr(dgram, "CONVERSATION=12\n"));
    assert_non_null(strstr(dgram, "TEAM=core\n"));
    assert_null(strstr(dgram, "AGENT=")); /* a NULL value: the field is left out */
}

static void test_log_fatal_panic(void **state)
{
    (void)state;
    char out[4096];
    int status = in_child(log_fatal, out, sizeof out);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_non_null(strstr(out, ": fatal: config x.yaml broken\n"));
    status = in_child(log_panic, out, sizeof out);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_string_equal(out, "<1>panic: invariant 7\n");
    char big[16384];
    status = in_child(log_long, big, sizeof big);
    assert_int_equal(status, 0);
    assert_int_equal(strlen(big), 4096);          /* one bounded write */
    assert_non_null(strstr(big, "aaa...\n"));    /* cut, and visibly so */
}

static void test_log_level_parse(void **state)
{
    (void)state;
    assert_int_equal(omni_log_level_parse("debug"), OMNI_LOG_DEBUG);
    assert_int_equal(omni_log_level_parse("info"), OMNI_LOG_INFO);
    assert_int_equal(omni_log_level_parse("warn"), OMNI_LOG_WARN);
    assert_int_equal(omni_log_level_parse("error"), OMNI_LOG_ERROR);
    assert_int_equal(omni_log_level_parse("fatal"), -1);
    assert_int_equal(omni_log_level_parse("panic"), -1);
    assert_int_equal(omni_log_level_parse("warning"), -1);
    assert_int_equal(omni_log_level_parse("INFO"), -1);
    assert_int_equal(omni_log_level_parse(""), -1);
    assert_int_equal(omni_log_level_parse(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_fatal),
        cmocka_unit_test(test_log_terminal),
        cmocka_unit_test(test_log_journal),
        cmocka_unit_test(test_log_journal_elsewhere),
        cmocka_unit_test(test_log_event_is_structured),
        cmocka_unit_test(test_log_fatal_panic),
        cmocka_unit_test(test_log_level_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
