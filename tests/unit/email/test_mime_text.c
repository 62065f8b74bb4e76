/* Charset conversion (never drops a byte), HTML to text, newline normalization, UTF-8 cuts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../../connectors/email/mime.h"
#include "../../../connectors/email/mime_text.h"

static void conv(const char *charset, const char *in, size_t len, const char *want)
{
    size_t n;
    char *got = mt_to_utf8(charset, in, len, &n);
    assert_int_equal(n, strlen(got));
    if (strcmp(got, want) != 0)
        fail_msg("%s: expected \"%s\", got \"%s\"", charset ? charset : "(none)", want, got);
    free(got);
}

static void test_charsets(void **state)
{
    (void)state;
    conv("koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", 6, "Привет");
    conv("windows-1251", "\xcf\xf0\xe8\xe2\xe5\xf2", 6, "Привет");
    conv("ks_c_5601-1987", "\xbd\xba\xc6\xbc\xc7\xd8", 6, "스티해");
    conv("KS_C_5601-1987", "\xbd\xba", 2, "스");
    conv("iso-2022-jp", "\x1b$B$9$_$^$;$s!#\x1b(B", 15, "すみません。");
    conv("ISO-8859-1", "caf\xe9", 4, "café");
    conv("iso-8859-1", "\x93quoted\x94", 8, "“quoted”"); /* read as windows-1252, as mail clients do */
    conv("utf-8", "na\xc3\xafve", 6, "naïve");
}

static void test_invalid_bytes_become_fffd(void **state)
{
    (void)state;
    conv("utf-8", "a\xff" "b", 3, "a\xEF\xBF\xBD" "b");
    /* glibc's decoder passes F5..F7 sequences (above U+10FFFF) through: each byte is one U+FFFD too. */
    conv("utf-8", "a\xf6\xb2\x96\x8d" "b", 6, "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "b");
    conv("utf-8", "a\xc3", 2, "a\xEF\xBF\xBD");                    /* cut in the middle of a character */
    conv("utf-8", "\xed\xa0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* a surrogate: 3 bytes, 3 marks */
    conv("windows-1252", "x\x81y", 3, "x\xEF\xBF\xBDy");           /* a byte 1252 leaves undefined */
    conv("ks_c_5601-1987", "\xbd", 1, "\xEF\xBF\xBD");              /* half a Korean character */
    conv("us-ascii", "a\0b", 3, "a\xEF\xBF\xBD" "b");              /* NUL would end the string */
}

static void test_unknown_or_missing_charset(void **state)
{
    (void)state;
    conv(NULL, "h\xc3\xa9", 3, "hé");           /* valid UTF-8 without a label */
    conv(NULL, "h\xe9", 2, "hé");               /* otherwise windows-1252 */
    conv("x-no-such-charset", "h\xc3\xa9", 3, "hé");
    conv("x-no-such-charset", "h\xe9", 2, "hé");
    conv("", "plain", 5, "plain");
}

static void test_newlines(void **state)
{
    (void)state;
    char s[] = "a\r\nb\rc\n\r\nd";
    size_t n = strlen(s);
    mt_normalize_newlines(s, &n);
    assert_string_equal(s, "a\nb\nc\n\nd");
    assert_int_equal(n, strlen(s));
}

static void test_utf8_cut(void **state)
{
    (void)state;
    const char *s = "a\xc3\xa9z"; /* a é z */
    assert_int_equal(mt_utf8_cut(s, 4, 10), 4);
    assert_int_equal(mt_utf8_cut(s, 4, 3), 3);
    assert_int_equal(mt_utf8_cut(s, 4, 2), 1); /* never inside é */
    assert_int_equal(mt_utf8_cut(s, 4, 1), 1);
    assert_int_equal(mt_utf8_cut("\xe2\x82\xac", 3, 2), 0);
}

static void html(const char *in, const char *want)
{
    char *got = mt_html_to_text(in, strlen(in));
    if (strcmp(got, want) != 0)
        fail_msg("html [%s]: expected [%s], got [%s]", in, want, got);
    free(got);
}

static void test_html(void **state)
{
    (void)state;
    html("<p>One</p><p>Two</p>", "One\n\nTwo");
    html("a<br>b<br/>c", "a\nb\nc");
    html("  lots   of\n\n  space  ", "lots of space");
    html("<ul><li>x</li><li>y</li></ul>", "- x\n- y");
    html("<script>alert(1)</script><style>p{}</style><title>T</title>shown", "shown");
    html("<!-- hidden <p> -->seen", "seen");
    html("&lt;tag&gt; &amp; &quot;q&quot; &#233;&#xE9; &euro; &hellip; &eacute;", "<tag> & \"q\" éé € … é");
    html("&unknown; &amp &#0; &#x110000;", "&unknown; &amp \xEF\xBF\xBD \xEF\xBF\xBD");
    html("<pre>  keep\n    this</pre>after", "  keep\n    this\n\nafter");
    html("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc");
    html("1 < 2 and <b>bold</b>", "1 < 2 and bold");
    html("<a href=\"x>y\">link</a>", "link");
    html("<div>a</div>\n\n\n<div>b</div><p></p><p></p><p>c</p>", "a\nb\n\nc");
    html("", "");
}

/* The fixtures' HTML part (raw_email_encoded_stack_level_too_deep.eml), decoded, as text. */
static void test_fixture_html(void **state)
{
    (void)state;
    html("<html>\n<font face=\"Arial, Helvetica, sans-serif\">\n<p>Nicolas Fouch\xc3\xa9 has accepted your "
         "invitation to Gmail and has\n  chosen the brand new address x.y@gmail.com.</p>\n<p><br>\n  Thanks, "
         "</p>\n<p> The Gmail Team</p>\n</font>\n</html>\n",
         "Nicolas Fouché has accepted your invitation to Gmail and has chosen the brand new address "
         "x.y@gmail.com.\n\nThanks,\n\nThe Gmail Team");
}

/* RFC 2047 B words rewritten as Q words of the same bytes, each word decoded on its own. */
static void test_b_words_to_q(void **state)
{
    (void)state;
    char *r = mt_2047_b_to_q("=?UTF-8?B?YQ==?= =?utf-8*de?b?YWI?= x =?UTF-8?B?bad word?= =?UTF-8?Q?q?=");
    assert_string_equal(r, "=?UTF-8?Q?=61?= =?utf-8*de?Q?=61=62?= x =?UTF-8?B?bad word?= =?UTF-8?Q?q?=");
    free(r);
    assert_null(mt_2047_b_to_q("no words =?UTF-8?Q?a?= =?UTF-8?B?"));
}

static void test_q_words_to_utf8(void **state)
{
    (void)state;
    /* a run of one charset is one word (a split character whole again), another charset starts a new
     * run, us-ascii and malformed words stay, text between words stays */
    char *r = mt_2047_q_to_utf8("Re: =?UTF-8?Q?=C3?=\r\n =?utf-8*en?q?=A9_x?= =?iso-8859-1?Q?=E9=80?= y "
                                "=?us-ascii?Q?=E9?= =?UTF-8?X?z?=");
    assert_string_equal(r, "Re: =?UTF-8?Q?=C3=A9_x?= =?UTF-8?Q?=C3=A9=E2=82=AC?= y =?us-ascii?Q?=E9?= =?UTF-8?X?z?=");
    free(r);
    r = mt_2047_q_to_utf8("=?utf-8?q?caf=E9?="); /* not UTF-8: U+FFFD */
    assert_string_equal(r, "=?UTF-8?Q?caf=EF=BF=BD?=");
    free(r);
    r = mt_2047_q_to_utf8("x =?UTF-8?Q?=4?="); /* malformed: stays as written, given as a word of itself */
    assert_string_equal(r, "x =?UTF-8?Q?=3D=3F=55=54=46=2D=38=3F=51=3F=3D=34=3F=3D?=");
    free(r);
    assert_null(mt_2047_q_to_utf8("no words =?us-ascii?Q?a?= =?UTF-8?B?YQ==?="));
}

int main(void)
{
    email_mime_init(); /* GMime's charset name table */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_charsets),
        cmocka_unit_test(test_b_words_to_q),
        cmocka_unit_test(test_q_words_to_utf8),
        cmocka_unit_test(test_invalid_bytes_become_fffd),
        cmocka_unit_test(test_unknown_or_missing_charset),
        cmocka_unit_test(test_newlines),
        cmocka_unit_test(test_utf8_cut),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_fixture_html),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    email_mime_shutdown();
    return r;
}
