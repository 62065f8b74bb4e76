/* libomni/outpost.c: who an outpost connector pointed, and when. Once per sender per window; remembered across
 * a restart through its state file; a damaged line costs that line only; the oldest forgotten past the cap. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "omni/connector.h"
#include "omni/outpost.h"

#define WINDOW 1000

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/omni-outpost-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static omni_outpost_t *open_memory(void)
{
    omni_outpost_t *o = omni_outpost_new(dir, "pointed", WINDOW, OMNI_OUTPOST_MAX);
    assert_non_null(o);
    return o;
}

static void test_once_per_sender_per_window(void **state)
{
    (void)state;
    omni_outpost_t *o = open_memory();
    assert_int_equal(omni_outpost_claim(o, "+14155550100", 10000), 1);
    assert_int_equal(omni_outpost_claim(o, "+14155550100", 10500), 0);
    assert_int_equal(omni_outpost_claim(o, "+14155550101", 10500), 1);
    assert_int_equal(omni_outpost_claim(o, "+14155550100", 10999), 0);
    /* the window is over at exactly 1000 ms after */
    assert_int_equal(omni_outpost_claim(o, "+14155550100", 11000), 1);
    assert_int_equal(omni_outpost_claim(o, "+14155550100", 11001), 0);
    /* a pointer that could not be sent: forgotten, so the next message claims again */
    omni_outpost_forget(o, "+14155550100");
    omni_outpost_forget(o, "+19999999999"); /* nobody: nothing */
    assert_int_equal(omni_outpost_claim(o, "+14155550100", 11002), 1);
    assert_int_equal(omni_outpost_claim(o, "+14155550101", 11002), 0); /* the others are kept */
    omni_outpost_destroy(&o);
    assert_null(o);
    omni_outpost_destroy(&o); /* twice is fine */
}

static void test_remembered_across_a_restart_and_damage_costs_a_line(void **state)
{
    (void)state;
    omni_outpost_t *o = open_memory();
    assert_int_equal(omni_outpost_claim(o, "a", 20000), 1);
    assert_int_equal(omni_outpost_claim(o, "b", 20100), 1);
    omni_outpost_destroy(&o);
    o = open_memory();
    assert_int_equal(omni_outpost_claim(o, "a", 20200), 0);
    assert_int_equal(omni_outpost_claim(o, "b", 20200), 0);
    omni_outpost_destroy(&o);
    /* a torn or hand-edited file: each bad line skipped, the good ones kept */
    const char *text = "20000 a\nnot a line\n20100\n19000 c\n20100 b x\n20150 d\n";
    assert_int_equal(omni_state_write(dir, "pointed", text, strlen(text)), 0);
    o = open_memory();
    assert_int_equal(omni_outpost_claim(o, "a", 20300), 0);
    assert_int_equal(omni_outpost_claim(o, "d", 20300), 0);
    assert_int_equal(omni_outpost_claim(o, "c", 20300), 1); /* out of time order: skipped */
    omni_outpost_destroy(&o);
}

static void test_the_oldest_is_forgotten_past_the_cap(void **state)
{
    (void)state;
    char who[32];
    omni_outpost_t *o = omni_outpost_new(dir, "cap", 1000000000, 50);
    assert_non_null(o);
    for (int i = 0; i < 51; i++) {
        snprintf(who, sizeof who, "s%d", i);
        assert_int_equal(omni_outpost_claim(o, who, 30000 + i), 1);
    }
    assert_int_equal(omni_outpost_claim(o, "s1", 90000), 0);
    assert_int_equal(omni_outpost_claim(o, "s50", 90000), 0);
    assert_int_equal(omni_outpost_claim(o, "s0", 90000), 1); /* the first one, forgotten (and now s1 is) */
    assert_int_equal(omni_outpost_claim(o, "s1", 90000), 1);
    omni_outpost_destroy(&o);
    /* the file holds as many: the cap holds across a restart too */
    char *text = NULL;
    assert_int_equal(omni_state_read(dir, "cap", &text, NULL), 0);
    int lines = 0;
    for (char *p = text; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    assert_int_equal(lines, 50);
    free(text);
}

/* The wall clock stepped back (set wrong ahead, then corrected; a state file written then): a time ahead of now
 * is read as now, so the window runs at most one window past the step, and a sender pointed after it is
 * stamped with their own time, not the future one before them. */
static void test_a_clock_stepped_back_stretches_nobody_past_one_window(void **state)
{
    (void)state;
    omni_outpost_t *o = open_memory();
    assert_int_equal(omni_outpost_claim(o, "ahead", 5000000), 1); /* the clock a long way ahead */
    assert_int_equal(omni_outpost_claim(o, "b", 40000), 1);       /* stepped back */
    assert_int_equal(omni_outpost_claim(o, "b", 40999), 0);
    assert_int_equal(omni_outpost_claim(o, "b", 41000), 1);       /* b's window ran its length */
    assert_int_equal(omni_outpost_claim(o, "ahead", 41000), 1);   /* and so did ahead's, from the step */
    omni_outpost_destroy(&o);
    /* a file from before the step back */
    const char *text = "9000000 far\n";
    assert_int_equal(omni_state_write(dir, "pointed", text, strlen(text)), 0);
    o = open_memory();
    assert_int_equal(omni_outpost_claim(o, "far", 50000), 0);
    assert_int_equal(omni_outpost_claim(o, "c", 50000), 1);
    assert_int_equal(omni_outpost_claim(o, "far", 51000), 1);
    assert_int_equal(omni_outpost_claim(o, "c", 51000), 1);
    omni_outpost_destroy(&o);
}

/* A file saved by an editor with CRLF line ends: each line is read as written, not skipped. */
static void test_crlf_lines_are_read(void **state)
{
    (void)state;
    const char *text = "60000 +14155550100\r\n60100 +14155550101\r\n";
    assert_int_equal(omni_state_write(dir, "pointed", text, strlen(text)), 0);
    omni_outpost_t *o = open_memory();
    assert_int_equal(omni_outpost_claim(o, "+14155550100", 60500), 0);
    assert_int_equal(omni_outpost_claim(o, "+14155550101", 60500), 0);
    omni_outpost_destroy(&o);
}

/* A state file that cannot be read at all (here a directory where the file should be) costs the memory, not
 * the channel: a connector that would not start loses the messages of its webhook. Nobody is remembered. */
static void test_an_unreadable_file_is_set_aside_not_fatal(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/blocked", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    omni_outpost_t *o = omni_outpost_new(dir, "blocked", WINDOW, OMNI_OUTPOST_MAX);
    assert_non_null(o);
    assert_int_equal(omni_outpost_claim(o, "+14155550100", 70000), 1); /* saving fails: logged, still points */
    assert_int_equal(omni_outpost_claim(o, "+14155550100", 70001), 0);
    omni_outpost_destroy(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_once_per_sender_per_window),
        cmocka_unit_test(test_remembered_across_a_restart_and_damage_costs_a_line),
        cmocka_unit_test(test_the_oldest_is_forgotten_past_the_cap),
        cmocka_unit_test(test_a_clock_stepped_back_stretches_nobody_past_one_window),
        cmocka_unit_test(test_crlf_lines_are_read),
        cmocka_unit_test(test_an_unreadable_file_is_set_aside_not_fatal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
