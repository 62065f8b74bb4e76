/* text/plain; format=flowed (RFC 3676): each unwrapping rule on mt_unflow, then end to end through
 * email_parse, which is where a message's text comes from. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../../connectors/email/mime.h"
#include "../../../connectors/email/mime_text.h"

static void unflow(const char *in, bool delsp, const char *want)
{
    size_t n;
    char *got = mt_unflow(in, strlen(in), delsp, &n);
    assert_int_equal(n, strlen(got));
    if (strcmp(got, want) != 0)
        fail_msg("unflow(delsp=%d) of \"%s\": expected \"%s\", got \"%s\"", delsp, in, want, got);
    free(got);
}

static void test_soft_breaks_join(void **state)
{
    (void)state;
    unflow("Hello, this is a long \nparagraph that was \nwrapped.\nNext line.\n", false,
           "Hello, this is a long paragraph that was wrapped.\nNext line.\n");
    unflow("no final newline \nhere", false, "no final newline here");
    unflow("ends flowed \n", false, "ends flowed \n");
}

static void test_hard_breaks_stay(void **state)
{
    (void)state;
    unflow("one\ntwo\n\nthree\n", false, "one\ntwo\n\nthree\n");
    unflow("", false, "");
}

static void test_delsp_deletes_the_space(void **state)
{
    (void)state;
    unflow("Donau\xc3\xa4 \nufer und noch \nmehr\n", true, "Donau\xc3\xa4ufer und nochmehr\n");
    unflow("Donau \nufer\n", false, "Donau ufer\n"); /* without DelSp the space is the word break */
}

static void test_quote_depth_kept_and_never_mixed(void **state)
{
    (void)state;
    unflow("> quoted and \n> wrapped\n>> deeper and \n>> wrapped\nmine\n", false,
           "> quoted and wrapped\n>> deeper and wrapped\nmine\n");
    /* A flowed line before a change of depth ends there (4.5): the lines are never joined. */
    unflow("> one \n>> two \nthree\n", false, "> one \n>> two \nthree\n");
    unflow(">no space\n>\n", false, "> no space\n>\n");
}

static void test_space_stuffing_removed(void **state)
{
    (void)state;
    unflow(" From the start\n  two spaces\n >not a quote\n", false,
           "From the start\n two spaces\n>not a quote\n");
    unflow(">  stuffed in a quote\n", false, ">  stuffed in a quote\n"); /* "> " + " stuffed...": one stays */
}

static void test_signature_separator_is_hard(void **state)
{
    (void)state;
    unflow("Thanks, \nAnn \n-- \nAnn Lee \nAcme\n", false, "Thanks, Ann \n-- \nAnn Lee Acme\n");
    unflow("> quoted \n> -- \n> sig\n", true, "> quoted\n> -- \n> sig\n");
}

/* Through email_parse: the Content-Type parameters decide, in any case. */
static void parsed(const char *raw, const char *want)
{
    email_parsed_t *p = email_parse(raw, strlen(raw));
    if (strcmp(p->text, want) != 0)
        fail_msg("expected \"%s\", got \"%s\"", want, p->text);
    email_parsed_destroy(&p);
}

static void test_email_parse_unwraps_flowed(void **state)
{
    (void)state;
    parsed("From: Ann <ann@example.com>\r\nSubject: s\r\n"
           "Content-Type: text/plain; charset=utf-8; Format=Flowed; DelSp=Yes\r\n\r\n"
           "My order has not ar\r\nrived yet, can you \r\ncheck?\r\n> You wrote: it ships \r\n> today\r\n"
           "-- \r\n Ann\r\n",
           "My order has not ar\nrived yet, can youcheck?\n> You wrote: it shipstoday\n-- \nAnn\n");
    parsed("From: ann@example.com\nContent-Type: text/plain; format=flowed\n\nsoft \nbreak\n",
           "soft break\n");
    /* Not flowed: trailing spaces and leading spaces are the sender's, kept. */
    parsed("From: ann@example.com\nContent-Type: text/plain\n\nsoft \nbreak\n From\n", "soft \nbreak\n From\n");
}

int main(void)
{
    email_mime_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soft_breaks_join),
        cmocka_unit_test(test_hard_breaks_stay),
        cmocka_unit_test(test_delsp_deletes_the_space),
        cmocka_unit_test(test_quote_depth_kept_and_never_mixed),
        cmocka_unit_test(test_space_stuffing_removed),
        cmocka_unit_test(test_signature_separator_is_hard),
        cmocka_unit_test(test_email_parse_unwraps_flowed),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    email_mime_shutdown();
    return r;
}
