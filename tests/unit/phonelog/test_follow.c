/* The phone-log feed end to end without a router: plog_t reads a real file in a temp directory and hands
 * messages to a fake spool. Rotation, truncation, partial lines, malformed lines, saved positions. */
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

#include "../../../connectors/phonelog/follow.h"
#include "../../../connectors/phonelog/phonelog.h"
#include "omni/util.h"

#define MAX_SEEN 64

typedef struct sink {
    char *ids[MAX_SEEN];
    long lines[MAX_SEEN];  /* meta.cdr_line */
    int n;
    int accept_max;        /* submit answers EAGAIN after this many (-1: never) */
    bool commit_fails;
    int commits;
} sink_t;

static sink_t sink;
static char dir[64], path[128];
static plog_t *p;
static const char *country = "US";

static int fake_submit(void *user, const omni_msg_t *msg)
{
    sink_t *s = user;
    if (s->accept_max >= 0 && s->n >= s->accept_max) {
        errno = EAGAIN;
        return -1;
    }
    assert_true(s->n < MAX_SEEN);
    s->ids[s->n] = omni_strdup(msg->id);
    s->lines[s->n] = (long)json_integer_value(json_object_get(json_object_get(msg->json, "meta"), "cdr_line"));
    s->n++;
    return 0;
}

static int fake_commit(void *user)
{
    sink_t *s = user;
    s->commits++;
    if (s->commit_fails) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* An 18-field missed call whose uniqueid is "u<n>" and caller +1415555<n>. */
static char *rec_line(int n)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "\"\",\"+1415555%04d\",\"6000\",\"from-pstn\",\"\",\"PJSIP/t\",\"\",\"Dial\",\"\","
             "\"2026-11-20 09:20:11\",,\"2026-11-20 09:20:41\",30,0,\"NO ANSWER\",\"DOCUMENTATION\",\"u%d\",\"\"\n", n, n);
    return buf;
}

static void put(const char *file, const char *mode, const char *text)
{
    FILE *f = fopen(file, mode);
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static plog_t *make(bool start_at_end)
{
    plog_opts_t o = { 0 };
    char why[256];
    assert_int_equal(layout_init(&o.layout, "asterisk", NULL, 0, why, sizeof why), 0);
    o.path = path;
    o.state_dir = dir;
    o.cdr.pbx = "p";
    o.cdr.default_country = country;
    o.start_at_end = start_at_end;
    o.max_batch = 100;
    o.submit = fake_submit;
    o.commit = fake_commit;
    o.user = &sink;
    char err[256];
    plog_t *r = plog_new(&o, err, sizeof err);
    assert_non_null(r);
    return r;
}

/* Polls until the sink holds want messages, at most max_polls times (no clocks: polls are synchronous). */
static void poll_until(int want, int max_polls)
{
    for (int i = 0; i < max_polls && sink.n < want; i++) {
        bool more;
        assert_int_equal(plog_poll(p, &more), 0);
    }
    assert_int_equal(sink.n, want);
}

static void poll_once(int rc_want)
{
    bool more;
    assert_int_equal(plog_poll(p, &more), rc_want);
}

static void expect_ids(const int *want, int n)
{
    assert_int_equal(sink.n, n);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "phone:p:u%d", want[i]);
        assert_string_equal(sink.ids[i], id);
    }
}

/* stderr captured into a file while a test looks for a warning. */
static int saved_err = -1;
static char errfile[160];
static void capture_begin(void)
{
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", dir);
    int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    saved_err = dup(2);
    dup2(fd, 2);
    close(fd);
}
static char *capture_end(void)
{
    dup2(saved_err, 2);
    close(saved_err);
    FILE *f = fopen(errfile, "r");
    static char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static int setup(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    snprintf(dir, sizeof dir, "/tmp/omni-plog-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/Master.csv", dir);
    memset(&sink, 0, sizeof sink);
    sink.accept_max = -1;
    p = NULL;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    plog_destroy(&p);
    for (int i = 0; i < sink.n; i++)
        free(sink.ids[i]);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void fixture_with_malformed_lines(void **state)
{
    (void)state;
    FILE *in = fopen("tests/unit/phonelog/fixtures/asterisk-Master.sample.csv", "r");
    assert_non_null(in);
    char text[8192] = "", line[2048];
    int n = 0;
    while (fgets(line, sizeof line, in) != NULL) {
        strcat(text, line);
        if (++n == 2)
            strcat(text, "\"broken,\"x\n\n\"a\",\"b\",\"c\"\n"); /* lines 3 and 5 are bad, 4 is blank */
    }
    fclose(in);
    put(path, "w", text);
    country = "FR"; /* the voicemail's caller, 0612345678, is a French mobile number */
    p = make(false);
    country = "US";
    capture_begin();
    bool more;
    int rc = plog_poll(p, &more);
    char *err = capture_end();
    assert_int_equal(rc, 0);
    /* Jane answered (skipped); no-answer, busy, voicemail and failed are callback work. */
    static const char *const ids[] = { "phone:p:1763630411.3", "phone:p:1763631115.5", "phone:p:1763632920.7",
                                       "phone:p:1763633740.9" };
    static const long lines[] = { 2, 6, 7, 8 };
    assert_int_equal(sink.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(sink.ids[i], ids[i]);
        assert_int_equal(sink.lines[i], lines[i]);
    }
    plog_stats_t st;
    plog_stats(p, &st);
    assert_int_equal(st.lines, 8);
    assert_int_equal(st.malformed, 2);
    assert_int_equal(st.messages, 4);
    assert_int_equal(st.skipped, 2); /* the blank line and the answered call */
    assert_non_null(strstr(err, "Master.csv:3: malformed record skipped: text after the closing quote at column 10"));
    assert_non_null(strstr(err, "Master.csv:5: malformed record skipped: 3 fields; Asterisk layouts have 16, 17, 18 or 21"));
}

static void partial_line_waits_for_its_newline(void **state)
{
    (void)state;
    char l2[512];
    snprintf(l2, sizeof l2, "%s", rec_line(2));
    put(path, "w", rec_line(1));
    put(path, "a", "\"\",\"+14155550002\",\"6000\""); /* the writer is mid-line */
    p = make(false);
    poll_until(1, 1);
    poll_once(0);
    assert_int_equal(sink.n, 1);
    l2[strlen(l2) - 1] = '\0';
    put(path, "a", l2 + strlen("\"\",\"+14155550002\",\"6000\""));
    put(path, "a", "\r\n"); /* CRLF ends a line too */
    poll_until(2, 1);
    static const int want[] = { 1, 2 };
    expect_ids(want, 2);
}

static void rotation_rename_and_new_file(void **state)
{
    (void)state;
    char text[2048] = "";
    strcat(text, rec_line(1));
    strcat(text, rec_line(2));
    put(path, "w", text);
    p = make(false);
    poll_until(2, 1);
    char old[160];
    snprintf(old, sizeof old, "%s.1", path);
    assert_int_equal(rename(path, old), 0);
    put(path, "w", rec_line(4));  /* the new file */
    put(old, "a", rec_line(3));   /* a late write to the old one: still read */
    put(old, "a", "\"\",\"+1415"); /* and a last line that never gets its newline */
    capture_begin();
    for (int i = 0; i < 4 && sink.n < 4; i++)
        poll_once(0);
    char *err = capture_end();
    static const int want[] = { 1, 2, 3, 4 };
    expect_ids(want, 4);
    assert_non_null(strstr(err, "rotated"));
    assert_non_null(strstr(err, "line 4 of the rotated file has no newline: dropped (9 bytes)"));
    assert_int_equal(sink.lines[3], 1); /* line numbers start again in the new file */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    char *saved = NULL;
    assert_int_equal(omni_state_read(dir, "phonelog.offset", &saved, NULL), 0);
    char expect[64];
    snprintf(expect, sizeof expect, "v1 %llu %zu 1 ", (unsigned long long)st.st_ino, strlen(rec_line(4)));
    assert_int_equal(strncmp(saved, expect, strlen(expect)), 0);
    free(saved);
    put(path, "a", rec_line(5));
    poll_until(5, 1);
    poll_once(0);
    assert_int_equal(sink.n, 5); /* nothing twice */
}

static void truncation_and_rewrite_in_place(void **state)
{
    (void)state;
    char text[4096] = "";
    for (int i = 1; i <= 3; i++)
        strcat(text, rec_line(i));
    put(path, "w", text);
    p = make(false);
    poll_until(3, 1);
    put(path, "w", rec_line(4)); /* truncated (copytruncate), then one new record */
    poll_until(4, 1);
    text[0] = '\0';
    for (int i = 5; i <= 8; i++)
        strcat(text, rec_line(i));
    put(path, "w", text); /* rewritten: longer than the position, other first bytes */
    poll_until(8, 1);
    static const int want[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    expect_ids(want, 8);
}

static void resume_without_duplicates(void **state)
{
    (void)state;
    char text[2048] = "";
    strcat(text, rec_line(1));
    strcat(text, rec_line(2));
    put(path, "w", text);
    p = make(false);
    poll_until(2, 1);
    plog_destroy(&p); /* a restart */
    put(path, "a", rec_line(3));
    p = make(false);
    poll_until(3, 1);
    poll_once(0);
    static const int want[] = { 1, 2, 3 };
    expect_ids(want, 3);
    assert_int_equal(sink.lines[2], 3);
    plog_destroy(&p);
    /* While it was down the file was replaced by a new one (new inode): read from its start. */
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    put(tmp, "w", rec_line(9));
    assert_int_equal(rename(tmp, path), 0);
    p = make(false);
    poll_until(4, 1);
    assert_string_equal(sink.ids[3], "phone:p:u9");
}

/* Rotated while the connector was stopped, with records it had not read yet: the old file, still beside the
 * path under its new name, is finished from the saved position first, then the new file is read whole. */
static void rotation_while_stopped_finishes_the_old_file(void **state)
{
    (void)state;
    char text[2048] = "";
    strcat(text, rec_line(1));
    strcat(text, rec_line(2));
    put(path, "w", text);
    p = make(false);
    poll_until(2, 1);
    plog_destroy(&p); /* stopped */
    put(path, "a", rec_line(3)); /* written before the rotation, never read */
    char old[160];
    snprintf(old, sizeof old, "%s.1", path);
    assert_int_equal(rename(path, old), 0);
    put(path, "w", rec_line(4));
    capture_begin();
    p = make(false);
    for (int i = 0; i < 4 && sink.n < 4; i++)
        poll_once(0);
    char *err = capture_end();
    static const int want[] = { 1, 2, 3, 4 };
    expect_ids(want, 4);
    assert_non_null(strstr(err, "rotated while stopped: finishing the old file after line 2"));
    assert_int_equal(sink.lines[2], 3); /* line 3 of the old file */
    assert_int_equal(sink.lines[3], 1); /* line 1 of the new one */
    plog_destroy(&p);
    p = make(false); /* and a restart after that reads nothing twice */
    poll_once(0);
    assert_int_equal(sink.n, 4);
}

static void start_at_end_skips_history(void **state)
{
    (void)state;
    char text[2048] = "";
    strcat(text, rec_line(1));
    strcat(text, rec_line(2));
    strcat(text, "\"\",\"+1"); /* an unfinished line is not history yet */
    put(path, "w", text);
    p = make(true);
    poll_once(0);
    assert_int_equal(sink.n, 0);
    put(path, "a", rec_line(3) + 6);
    poll_until(1, 1);
    assert_string_equal(sink.ids[0], "phone:p:u3");
    assert_int_equal(sink.lines[0], 3);
}

/* start: end is for a first run: a saved position that cannot be read (phonelog.offset damaged or written by
 * something else) is no first run, and the calls in the file may never have been sent. The file is read from its
 * start, what the router has already is dropped there by id, and nothing is skipped unsent. */
static void start_at_end_with_an_unreadable_position_reads_the_file(void **state)
{
    (void)state;
    char text[2048] = "", st[160];
    strcat(text, rec_line(1));
    strcat(text, rec_line(2));
    put(path, "w", text);
    snprintf(st, sizeof st, "%s/phonelog.offset", dir);
    put(st, "w", "garbage\n");
    capture_begin();
    p = make(true);
    bool more;
    int rc = plog_poll(p, &more);
    char *err = capture_end();
    assert_int_equal(rc, 0);
    static const int want[] = { 1, 2 };
    expect_ids(want, 2);
    assert_non_null(strstr(err, "phonelog.offset: unreadable state \"garbage"));
}

/* start: end with no saved position and no file yet: the PBX creates Master.csv later, with calls already in
 * it when the connector first sees it. They are new (issue #10: they used to be skipped for good). */
static void start_at_end_file_appearing_later_is_new(void **state)
{
    (void)state;
    p = make(true);
    poll_once(0);
    assert_int_equal(sink.n, 0);
    char text[2048] = "";
    strcat(text, rec_line(1));
    strcat(text, rec_line(2));
    put(path, "w", text);
    poll_until(2, 2);
    static const int want[] = { 1, 2 };
    expect_ids(want, 2);
    plog_destroy(&p); /* a restart resumes from the saved position: nothing twice */
    put(path, "a", rec_line(3));
    p = make(true);
    poll_until(3, 2);
    assert_string_equal(sink.ids[2], "phone:p:u3");
}

static void failed_commit_reads_again(void **state)
{
    (void)state;
    char text[2048] = "";
    strcat(text, rec_line(1));
    strcat(text, rec_line(2));
    put(path, "w", text);
    p = make(false);
    sink.commit_fails = true;
    poll_once(-1);
    assert_int_equal(sink.n, 2);
    char *saved = NULL;
    assert_int_equal(omni_state_read(dir, "phonelog.offset", &saved, NULL), 1); /* nothing acknowledged */
    sink.commit_fails = false;
    poll_once(0);
    poll_once(0);
    static const int want[] = { 1, 2, 1, 2 }; /* the same ids again: the spool and router deduplicate */
    expect_ids(want, 4);
}

static void full_spool_stops_before_the_line(void **state)
{
    (void)state;
    char text[2048] = "";
    for (int i = 1; i <= 3; i++)
        strcat(text, rec_line(i));
    put(path, "w", text);
    p = make(false);
    sink.accept_max = 1;
    poll_once(0); /* EAGAIN is back-pressure, not a failure */
    assert_int_equal(sink.n, 1);
    sink.accept_max = -1;
    poll_until(3, 1);
    static const int want[] = { 1, 2, 3 };
    expect_ids(want, 3);
}

static void long_line_skipped_and_missing_file(void **state)
{
    (void)state;
    p = make(false);
    poll_once(0); /* no file yet: waiting is not an error */
    assert_int_equal(sink.n, 0);
    char *big = omni_malloc(FOLLOW_LINE_MAX + 100);
    memset(big, 'x', FOLLOW_LINE_MAX + 98);
    big[FOLLOW_LINE_MAX + 98] = '\n';
    big[FOLLOW_LINE_MAX + 99] = '\0';
    put(path, "w", big);
    free(big);
    put(path, "a", rec_line(1));
    capture_begin();
    bool more;
    int rc = plog_poll(p, &more);
    char *err = capture_end();
    assert_int_equal(rc, 0);
    assert_non_null(strstr(err, "line 1 is longer than 65536 bytes: skipped"));
    assert_int_equal(sink.n, 1);
    assert_int_equal(sink.lines[0], 2);
}

/* A record of exactly FOLLOW_LINE_MAX bytes whose uniqueid is "u<n>": the userfield pads it. */
static char *exact_line(int n, size_t len, const char *eol)
{
    char head[512];
    snprintf(head, sizeof head, "%s", rec_line(n));
    head[strlen(head) - 3] = '\0'; /* without the empty userfield "" and its newline */
    size_t h = strlen(head), pad = len - h - 2;
    char *line = omni_malloc(len + strlen(eol) + 1);
    memcpy(line, head, h);
    line[h] = '"';
    memset(line + h + 1, 'p', pad);
    line[h + 1 + pad] = '"';
    strcpy(line + len, eol);
    return line;
}

/* 64 KiB a line, whatever ends it: a line of exactly FOLLOW_LINE_MAX bytes is read with "\r\n" as with "\n";
 * one byte more is skipped with the warning, with either ending. */
static void line_of_exactly_the_limit(void **state)
{
    (void)state;
    const char *const eols[] = { "\r\n", "\n" };
    put(path, "w", "");
    for (int i = 0; i < 2; i++) {
        char *ok = exact_line(10 + i, FOLLOW_LINE_MAX, eols[i]), *over = exact_line(20 + i, FOLLOW_LINE_MAX + 1, eols[i]);
        put(path, "a", ok);
        put(path, "a", over);
        free(ok);
        free(over);
    }
    put(path, "a", rec_line(3));
    p = make(false);
    capture_begin();
    bool more;
    int rc = plog_poll(p, &more);
    char *err = capture_end();
    assert_int_equal(rc, 0);
    static const int want[] = { 10, 11, 3 };
    expect_ids(want, 3);
    assert_non_null(strstr(err, "line 2 is longer than 65536 bytes: skipped"));
    assert_non_null(strstr(err, "line 4 is longer than 65536 bytes: skipped"));
    assert_int_equal(sink.lines[2], 5);
}

/* A UTF-8 byte order mark at the start of the file (a log saved by a Windows editor) is passed over, in a
 * file read whole and in a file that replaced it; elsewhere it is data, and the record malformed. */
static void bom_at_file_start(void **state)
{
    (void)state;
    char text[2048];
    snprintf(text, sizeof text, "\xEF\xBB\xBF%s", rec_line(1));
    put(path, "w", text);
    snprintf(text, sizeof text, "\xEF\xBB\xBF%s", rec_line(2));
    put(path, "a", text);
    put(path, "a", rec_line(3));
    p = make(false);
    capture_begin();
    bool more;
    int rc = plog_poll(p, &more);
    char *err = capture_end();
    assert_int_equal(rc, 0);
    static const int want[] = { 1, 3 };
    expect_ids(want, 2);
    assert_int_equal(sink.lines[0], 1);
    assert_non_null(strstr(err, "Master.csv:2: malformed record skipped: quote inside an unquoted field at column 4"));
    assert_null(strstr(err, "Master.csv:1:"));
    plog_stats_t st;
    plog_stats(p, &st);
    assert_int_equal(st.malformed, 1);
    /* copytruncate, then the PBX (or the tool) writes the file again from its start, with its mark */
    snprintf(text, sizeof text, "\xEF\xBB\xBF%s", rec_line(4));
    put(path, "w", text);
    poll_until(3, 2);
    assert_string_equal(sink.ids[2], "phone:p:u4");
}

/* A crash can leave a run of NUL bytes where the file was extended but its data never written (ext4, XFS): the PBX
 * then appends after them, so the first record after the crash begins with that hole. The hole is passed over
 * with a warning and the record read; a NUL byte inside a record still makes it malformed. */
static void a_hole_of_nul_bytes_before_a_record(void **state)
{
    (void)state;
    char text[4096];
    size_t n = 0;
    strcpy(text, rec_line(1));
    n = strlen(text);
    memset(text + n, '\0', 700); /* the hole: no newline in it */
    n += 700;
    strcpy(text + n, rec_line(2));
    n += strlen(rec_line(2));
    char bad[512];
    snprintf(bad, sizeof bad, "%s", rec_line(3));
    bad[40] = '\0'; /* a NUL inside a record */
    memcpy(text + n, bad, strlen(rec_line(3)));
    n += strlen(rec_line(3));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    fclose(f);
    p = make(false);
    capture_begin();
    bool more;
    int rc = plog_poll(p, &more);
    char *err = capture_end();
    assert_int_equal(rc, 0);
    static const int want[] = { 1, 2 };
    expect_ids(want, 2);
    assert_int_equal(sink.lines[1], 2);
    if (strstr(err, "Master.csv:2: 700 NUL bytes before the record passed over") == NULL)
        fail_msg("no warning for the hole in:\n%s", err);
    assert_non_null(strstr(err, "Master.csv:3: malformed record skipped: NUL byte at column 41"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(fixture_with_malformed_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(partial_line_waits_for_its_newline, setup, teardown),
        cmocka_unit_test_setup_teardown(rotation_rename_and_new_file, setup, teardown),
        cmocka_unit_test_setup_teardown(truncation_and_rewrite_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(resume_without_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(rotation_while_stopped_finishes_the_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(start_at_end_skips_history, setup, teardown),
        cmocka_unit_test_setup_teardown(start_at_end_with_an_unreadable_position_reads_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(start_at_end_file_appearing_later_is_new, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_commit_reads_again, setup, teardown),
        cmocka_unit_test_setup_teardown(full_spool_stops_before_the_line, setup, teardown),
        cmocka_unit_test_setup_teardown(long_line_skipped_and_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(bom_at_file_start, setup, teardown),
        cmocka_unit_test_setup_teardown(a_hole_of_nul_bytes_before_a_record, setup, teardown),
        cmocka_unit_test_setup_teardown(line_of_exactly_the_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
