/* The client's spool (libomni/spool.c): replay, answers, crash damage, compaction, the lock, dead letters. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "omni/log.h"
#include "omni/util.h"
#include "spool.h"

static int setup(void **state)
{
    char tmpl[] = "/tmp/omni-test-spool-XXXXXX";
    if (mkdtemp(tmpl) == NULL)
        return -1;
    *state = omni_strdup(tmpl);
    return 0;
}

static int teardown(void **state)
{
    char *dir = *state;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = omni_asprintf("%s/%s", dir, e->d_name);
        unlink(p);
        free(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
    free(dir);
    return 0;
}

static char *path_in(const char *dir, const char *name) { return omni_asprintf("%s/%s", dir, name); }

static off_t file_size(const char *dir, const char *name)
{
    char *p = path_in(dir, name);
    struct stat st;
    off_t n = stat(p, &st) == 0 ? st.st_size : -1;
    free(p);
    return n;
}

static char *msg_json(const char *id) { return omni_asprintf("{\"id\":\"%s\",\"text\":\"hello %s\"}", id, id); }

static omni_spool_t *open_ok(const char *dir, omni_spool_rec_t **live, size_t *n)
{
    char err[256] = "";
    omni_spool_t *sp = omni_spool_open(dir, live, n, err, sizeof err);
    if (sp == NULL)
        fail_msg("open: %s", err);
    return sp;
}

static void submit(omni_spool_t *sp, const char *id)
{
    char *j = msg_json(id);
    assert_int_equal(omni_spool_submit(sp, id, j, strlen(j)), 0);
    free(j);
}

/* Reopens dir and checks the live set is exactly ids, in that order, with their JSON. */
static void expect_live(const char *dir, const char *const *ids, size_t n)
{
    omni_spool_rec_t *live;
    size_t got;
    omni_spool_t *sp = open_ok(dir, &live, &got);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        char *j = msg_json(ids[i]);
        assert_string_equal(live[i].id, ids[i]);
        assert_int_equal(live[i].len, strlen(j));
        assert_memory_equal(live[i].json, j, live[i].len);
        free(j);
    }
    omni_spool_recs_free(&live, got);
    assert_null(live);
    omni_spool_close(&sp);
    assert_null(sp);
}

static void test_crc32_is_zlibs(void **state)
{
    (void)state;
    assert_int_equal(omni_spool_crc32(0, "123456789", 9), 0xCBF43926u);
    /* Longer than a step of 8, and fed in pieces that cut the steps anywhere: zlib.crc32 of the same. */
    unsigned char b[1024];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (unsigned char)i;
    assert_int_equal(omni_spool_crc32(0, b, sizeof b), 0xB70B4C26u);
    uint32_t c = 0;
    for (size_t at = 0, step = 1; at < sizeof b; at += step, step = step % 13 + 1)
        c = omni_spool_crc32(c, b + at, at + step <= sizeof b ? step : sizeof b - at);
    assert_int_equal(c, 0xB70B4C26u);
}

/* The eight-bytes-a-step CRC against the plain bitwise definition, for every length and start from 0 to
 * 40 (the word loop, the byte tail, unaligned starts) and when a CRC is carried on from piece to piece. */
static uint32_t crc32_bitwise(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

static void test_crc32_every_length(void **state)
{
    (void)state;
    unsigned char buf[96];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 37 + 11);
    for (size_t start = 0; start < 8; start++)
        for (size_t len = 0; len <= 40; len++) {
            assert_int_equal(omni_spool_crc32(0, buf + start, len), crc32_bitwise(0, buf + start, len));
            uint32_t carried = omni_spool_crc32(omni_spool_crc32(0, buf + start, len / 3), buf + start + len / 3,
                                                len - len / 3);
            assert_int_equal(carried, crc32_bitwise(0, buf + start, len));
        }
}

static void test_append_and_replay(void **state)
{
    const char *dir = *state, *ids[] = {"sms:1", "sms:2", "email:a:1:3"};
    omni_spool_rec_t *live;
    size_t n;
    omni_spool_t *sp = open_ok(dir, &live, &n);
    assert_int_equal(n, 0);
    for (size_t i = 0; i < 3; i++)
        submit(sp, ids[i]);
    assert_int_equal(omni_spool_sync(sp), 0);
    assert_int_equal(omni_spool_size(sp), (size_t)file_size(dir, "spool.log"));
    omni_spool_close(&sp);
    expect_live(dir, ids, 3);
    expect_live(dir, ids, 3); /* replay changes nothing */
}

/* Records are gathered and written with one write(2); a write that fails half-way (here: the file size
 * limit) is cut back off the file, and the same records go with the next write. */
static void test_records_are_gathered_for_one_write(void **state)
{
    const char *dir = *state, *ids[] = {"g1", "g2", "g3"};
    omni_spool_rec_t *live;
    size_t n;
    omni_spool_t *sp = open_ok(dir, &live, &n);
    submit(sp, "g1");
    assert_int_equal(file_size(dir, "spool.log"), 0);
    assert_int_equal(omni_spool_write(sp), 0);
    size_t one = omni_spool_size(sp);
    assert_int_equal(file_size(dir, "spool.log"), (off_t)one);
    submit(sp, "g2");
    submit(sp, "g3");
    char *j1 = msg_json("g1");
    assert_int_equal(omni_spool_ack(sp, "g1", strlen(j1)), 0);
    free(j1);
    assert_int_equal(file_size(dir, "spool.log"), (off_t)one); /* gathered, not written */
    assert_true(omni_spool_unwritten(sp) > 0);

    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = one + 40; /* the write gets 40 bytes in, then fails */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    assert_int_equal(omni_spool_write(sp), -1);
    assert_int_equal(errno, EIO);
    assert_true(omni_spool_write_failed(sp));
    assert_int_equal(file_size(dir, "spool.log"), (off_t)one);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);

    assert_int_equal(omni_spool_sync(sp), 0);
    assert_false(omni_spool_write_failed(sp));
    assert_int_equal(omni_spool_unwritten(sp), 0);
    assert_int_equal(omni_spool_size(sp), (size_t)file_size(dir, "spool.log"));
    omni_spool_close(&sp);
    expect_live(dir, ids + 1, 2);
}

static void test_answers_and_dead_letter(void **state)
{
    const char *dir = *state, *left[] = {"m1", "m4"};
    omni_spool_rec_t *live;
    size_t n;
    omni_spool_t *sp = open_ok(dir, &live, &n);
    for (int i = 1; i <= 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "m%d", i);
        submit(sp, id);
    }
    char *j2 = msg_json("m2"), *j3 = msg_json("m3");
    assert_int_equal(omni_spool_ack(sp, "m2", strlen(j2)), 0);
    assert_int_equal(omni_spool_nack(sp, "m3", "text: over 65536 bytes", j3, strlen(j3)), 0);
    assert_int_equal(omni_spool_nack(sp, "bad", "not json", "{oops", 5), 0); /* unknown ids are fine */
    omni_spool_close(&sp);
    expect_live(dir, left, 2);

    char *p = path_in(dir, "dead-letter.jsonl");
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    json_error_t e;
    json_t *d1 = json_loadf(f, JSON_DISABLE_EOF_CHECK, &e), *d2 = json_loadf(f, JSON_DISABLE_EOF_CHECK, &e);
    fclose(f);
    assert_non_null(d1);
    assert_non_null(d2);
    assert_string_equal(json_string_value(json_object_get(d1, "id")), "m3");
    assert_string_equal(json_string_value(json_object_get(d1, "reason")), "text: over 65536 bytes");
    int64_t when;
    assert_int_equal(omni_rfc3339_parse(json_string_value(json_object_get(d1, "nacked_at")), &when), 0);
    assert_true(llabs((long long)(omni_wall_ms() - when)) < 60000);
    json_t *want = json_loadb(j3, strlen(j3), 0, NULL);
    assert_true(json_equal(json_object_get(d1, "message"), want)); /* an object, not a string */
    assert_string_equal(json_string_value(json_object_get(d2, "message")), "{oops"); /* kept as text */
    json_decref(want), json_decref(d1), json_decref(d2);
    free(p), free(j2), free(j3);
}

/* Appends raw bytes to spool.log, as a crash in the middle of a write would leave them. */
static void append_raw(const char *dir, const void *bytes, size_t n)
{
    char *p = path_in(dir, "spool.log");
    FILE *f = fopen(p, "ab");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
    free(p);
}

static void test_torn_tail_is_truncated(void **state)
{
    const char *dir = *state, *ids[] = {"a", "b"};
    static const char zeros[300];
    const char *tails[] = {"OMS1 M 1 40 0a1b", "OMS1 M 1 40 0a1b2c3d\nc{\"id\":\"c\"", "OMS1 M 1 2 0a1b2c3d\nc{}\n"};
    omni_spool_rec_t *live;
    size_t n;
    omni_spool_t *sp = open_ok(dir, &live, &n);
    submit(sp, "a");
    submit(sp, "b");
    omni_spool_close(&sp);
    off_t good = file_size(dir, "spool.log");
    /* a cut header, a cut body, a complete record with a bad checksum, zeros from a lost block */
    for (size_t i = 0; i < 4; i++) {
        if (i < 3)
            append_raw(dir, tails[i], strlen(tails[i]));
        else
            append_raw(dir, zeros, sizeof zeros);
        expect_live(dir, ids, 2);
        assert_int_equal(file_size(dir, "spool.log"), good);
    }
    /* and appending after a repaired tail works */
    sp = open_ok(dir, &live, &n);
    omni_spool_recs_free(&live, n);
    submit(sp, "c");
    omni_spool_close(&sp);
    const char *three[] = {"a", "b", "c"};
    expect_live(dir, three, 3);
}

/* A bad record in the middle costs that record only: the good ones after it are read too (their sources may
 * have been acknowledged already). */
static void test_corrupt_middle_keeps_what_came_before_and_after(void **state)
{
    const char *dir = *state, *two[] = {"a", "c"}, *after[] = {"a", "c", "d"};
    omni_spool_rec_t *live;
    size_t n;
    omni_spool_t *sp = open_ok(dir, &live, &n);
    submit(sp, "a");
    assert_int_equal(omni_spool_write(sp), 0);
    size_t at = omni_spool_size(sp);
    submit(sp, "b");
    submit(sp, "c");
    omni_spool_close(&sp);
    char *p = path_in(dir, "spool.log");
    int fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, (off_t)at + 30), 1); /* inside b's body */
    close(fd);
    free(p);
    expect_live(dir, two, 2);
    /* the damaged file was set aside and spool.log rewritten, so new records are not hidden behind it */
    DIR *d = opendir(dir);
    struct dirent *e;
    int aside = 0;
    while ((e = readdir(d)) != NULL)
        aside += strncmp(e->d_name, "spool.log.corrupt-", 18) == 0;
    closedir(d);
    assert_int_equal(aside, 1);
    sp = open_ok(dir, &live, &n);
    omni_spool_recs_free(&live, n);
    submit(sp, "d");
    omni_spool_close(&sp);
    expect_live(dir, after, 3);
}

/* Fills a spool with n messages of about 8 KiB and answers all but every fifth. */
static void fill_and_answer(omni_spool_t *sp, int n, omni_spool_rec_t *keep, size_t *nkeep)
{
    char *pad = omni_malloc(8001);
    memset(pad, 'x', 8000);
    pad[8000] = '\0';
    *nkeep = 0;
    for (int i = 0; i < n; i++) {
        char id[24];
        snprintf(id, sizeof id, "big:%d", i);
        char *j = omni_asprintf("{\"id\":\"%s\",\"text\":\"%s\"}", id, pad);
        assert_int_equal(omni_spool_submit(sp, id, j, strlen(j)), 0);
        if (i % 5 == 0) {
            keep[(*nkeep)++] = (omni_spool_rec_t){.id = omni_strdup(id), .json = j, .len = strlen(j)};
            continue;
        }
        if (i % 10 != 1) /* mostly ACKs: each NACK costs an fsync of the dead letter */
            assert_int_equal(omni_spool_ack(sp, id, strlen(j)), 0);
        else
            assert_int_equal(omni_spool_nack(sp, id, "too big", j, strlen(j)), 0);
        free(j);
    }
    free(pad);
}

static void expect_exactly(const char *dir, const omni_spool_rec_t *keep, size_t n)
{
    omni_spool_rec_t *live;
    size_t got;
    omni_spool_t *sp = open_ok(dir, &live, &got);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(live[i].id, keep[i].id);
        assert_int_equal(live[i].len, keep[i].len);
        assert_memory_equal(live[i].json, keep[i].json, keep[i].len);
    }
    omni_spool_recs_free(&live, got);
    omni_spool_close(&sp);
}

static void test_compaction_keeps_exactly_the_live_set(void **state)
{
    const char *dir = *state;
    omni_spool_rec_t *live, keep[64];
    size_t n, nkeep;
    omni_spool_t *sp = open_ok(dir, &live, &n);
    assert_false(omni_spool_wants_compact(sp));
    fill_and_answer(sp, 300, keep, &nkeep); /* ~2.4 MiB, 80 % answered */
    const omni_spool_rec_t *ptrs[60];
    for (size_t i = 0; i < nkeep; i++)
        ptrs[i] = &keep[i];
    assert_int_equal(omni_spool_compact(sp, ptrs, nkeep), -1); /* records gathered: write them first */
    assert_int_equal(errno, EBUSY);
    assert_int_equal(omni_spool_write(sp), 0);
    assert_true(omni_spool_wants_compact(sp));
    size_t before = omni_spool_size(sp);
    assert_int_equal(omni_spool_compact(sp, ptrs, nkeep), 0);
    assert_false(omni_spool_wants_compact(sp));
    assert_true(omni_spool_size(sp) < before / 4);
    assert_int_equal(omni_spool_size(sp), (size_t)file_size(dir, "spool.log"));
    assert_int_equal(file_size(dir, "spool.log.tmp"), -1);
    /* the compacted file is the one we hold: appends land in it */
    submit(sp, "after");
    omni_spool_close(&sp);
    keep[nkeep] = (omni_spool_rec_t){.id = omni_strdup("after"), .json = msg_json("after")};
    keep[nkeep].len = strlen(keep[nkeep].json);
    expect_exactly(dir, keep, nkeep + 1);
    for (size_t i = 0; i <= nkeep; i++)
        free(keep[i].id), free(keep[i].json);
}

static void test_open_compacts_a_mostly_answered_file(void **state)
{
    const char *dir = *state;
    omni_spool_rec_t *live, keep[64];
    size_t n, nkeep;
    omni_spool_t *sp = open_ok(dir, &live, &n);
    fill_and_answer(sp, 300, keep, &nkeep);
    assert_int_equal(omni_spool_write(sp), 0);
    size_t before = omni_spool_size(sp);
    omni_spool_close(&sp);
    expect_exactly(dir, keep, nkeep);
    assert_true((size_t)file_size(dir, "spool.log") < before / 4);
    for (size_t i = 0; i < nkeep; i++)
        free(keep[i].id), free(keep[i].json);
}

static void test_dead_letter_after_a_torn_line(void **state)
{
    const char *dir = *state;
    char *p = path_in(dir, "dead-letter.jsonl");
    FILE *f = fopen(p, "w");
    fputs("{\"id\":\"cut", f); /* a crash in the middle of the last entry */
    fclose(f);
    omni_spool_rec_t *live;
    size_t n;
    omni_spool_t *sp = open_ok(dir, &live, &n);
    submit(sp, "x");
    char *j = msg_json("x");
    assert_int_equal(omni_spool_nack(sp, "x", "no", j, strlen(j)), 0);
    omni_spool_close(&sp);
    f = fopen(p, "r");
    char line[512];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "{\"id\":\"cut\n");
    assert_non_null(fgets(line, sizeof line, f));
    json_t *d = json_loads(line, 0, NULL);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "id")), "x");
    json_decref(d);
    fclose(f);
    free(p), free(j);
}

static void test_second_open_is_refused(void **state)
{
    const char *dir = *state;
    omni_spool_rec_t *live;
    size_t n;
    char err[256] = "";
    omni_spool_t *sp = open_ok(dir, &live, &n);
    assert_null(omni_spool_open(dir, &live, &n, err, sizeof err));
    assert_non_null(strstr(err, "in use by another client"));
    omni_spool_close(&sp);
    sp = open_ok(dir, &live, &n); /* free again once the first one is closed */
    omni_spool_close(&sp);
}

static void test_unusable_directory(void **state)
{
    const char *dir = *state;
    char *file = path_in(dir, "plain-file"), *under = path_in(file, "spool"), err[256] = "";
    FILE *f = fopen(file, "w");
    fclose(f);
    omni_spool_rec_t *live;
    size_t n;
    assert_null(omni_spool_open(under, &live, &n, err, sizeof err));
    assert_non_null(strstr(err, "cannot create spool directory"));
    free(file), free(under);
}

int main(void)
{
    omni_log_init("test_spool", OMNI_LOG_ERROR); /* the damage tests warn on purpose */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_is_zlibs),
        cmocka_unit_test(test_crc32_every_length),
        cmocka_unit_test_setup_teardown(test_append_and_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_are_gathered_for_one_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answers_and_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_keeps_what_came_before_and_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_keeps_exactly_the_live_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_compacts_a_mostly_answered_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter_after_a_torn_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_open_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_directory, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
