/* What a call record means: outcome mapping, E.164 with the default country, voicemail, ids, text, meta. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../../connectors/phonelog/cdr.h"
#include "omni/util.h"

static csv_record_t rec;
static cdr_t cdr;
static omni_msg_t *msg;
static char why[512];
static layout_t ast;
static cdr_opts_t opts;
static cdr_where_t where;

/* Fixture lines (fixtures/phonelog/asterisk-Master.sample.csv). */
static const char *const L_JANE_ANSWERED = "\"\",\"+14155550101\",\"6000\",\"from-pstn\",\"\"\"Jane Roe\"\" <+14155550101>\","
    "\"PJSIP/trunk-00000001\",\"PJSIP/6000-00000002\",\"Dial\",\"PJSIP/6000,30,t\",\"2026-11-20 09:14:03\","
    "\"2026-11-20 09:14:09\",\"2026-11-20 09:17:41\",218,212,\"ANSWERED\",\"DOCUMENTATION\",\"1763630043.1\",\"\"";
static const char *const L_NO_ANSWER = "\"\",\"+14155550102\",\"6000\",\"from-pstn\",\"\"\"+14155550102\"\" <+14155550102>\","
    "\"PJSIP/trunk-00000003\",\"PJSIP/6000-00000004\",\"Dial\",\"PJSIP/6000,30,t\",\"2026-11-20 09:20:11\",,"
    "\"2026-11-20 09:20:41\",30,0,\"NO ANSWER\",\"DOCUMENTATION\",\"1763630411.3\",\"\"";
static const char *const L_ACME_BUSY = "\"\",\"+442079460123\",\"6001\",\"from-pstn\",\"\"\"Acme, Ltd\"\" <+442079460123>\","
    "\"PJSIP/trunk-00000005\",\"\",\"Dial\",\"PJSIP/6001,30,t\",\"2026-11-20 09:31:55\",,\"2026-11-20 09:31:57\","
    "2,0,\"BUSY\",\"DOCUMENTATION\",\"1763631115.5\",\"vip\"";
static const char *const L_ANA_VM = "\"\",\"0612345678\",\"6000\",\"from-pstn\",\"\"\"Ana \"\"\"\"Nina\"\"\"\" Ruiz\"\" "
    "<0612345678>\",\"PJSIP/trunk-00000007\",\"\",\"VoiceMail\",\"6000@default\",\"2026-11-20 10:02:00\","
    "\"2026-11-20 10:02:03\",\"2026-11-20 10:03:10\",70,67,\"ANSWERED\",\"DOCUMENTATION\",\"1763632920.7\",\"voicemail\"";
static const char *const L_FAILED = "\"\",\"+14155550101\",\"6002\",\"from-pstn\",\"\"\"Jane Roe\"\" <+14155550101>\","
    "\"PJSIP/trunk-00000009\",\"\",\"Dial\",\"PJSIP/6002,30,t\",\"2026-11-20 10:15:40\",,\"2026-11-20 10:15:40\","
    "0,0,\"FAILED\",\"DOCUMENTATION\",\"1763633740.9\",\"\"";

static int setup(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1); /* "local" dates in these tests are UTC */
    tzset();
    assert_int_equal(layout_init(&ast, "asterisk", NULL, 0, why, sizeof why), 0);
    memset(&opts, 0, sizeof opts);
    opts.pbx = "pbx1";
    opts.default_country = "FR";
    where = (cdr_where_t){ "/var/log/asterisk/cdr-csv/Master.csv", 7, 1234, 900, "raw", 3 };
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    omni_msg_destroy(&msg);
    csv_record_free(&rec);
    return 0;
}

static int build(const char *line)
{
    assert_int_equal(csv_parse(line, strlen(line), &rec, why, sizeof why), 0);
    assert_int_equal(layout_map(&ast, &rec, &cdr, why, sizeof why), 0);
    omni_msg_destroy(&msg);
    return cdr_message(&cdr, &opts, &where, &msg, why, sizeof why);
}

static const char *meta_s(const char *key)
{
    return json_string_value(json_object_get(json_object_get(msg->json, "meta"), key));
}
static json_t *meta(const char *key)
{
    return json_object_get(json_object_get(msg->json, "meta"), key);
}

static void outcome_mapping(void **state)
{
    (void)state;
    static const struct { const char *disp, *answer; cdr_outcome_t out; const char *reason; } cases[] = {
        { "ANSWERED", "", OUTCOME_ANSWERED, "answered" },
        { "NO ANSWER", "", OUTCOME_MISSED, "no answer" },
        { "BUSY", "", OUTCOME_BUSY, "line busy" },
        { "FAILED", "", OUTCOME_FAILED, "call failed" },
        { "CONGESTION", "", OUTCOME_FAILED, "congestion" },
        { "UNKNOWN", "", OUTCOME_FAILED, "call failed" },
        { "NO_ANSWER", "", OUTCOME_MISSED, "no answer" },
        { "NO_USER_RESPONSE", "", OUTCOME_MISSED, "no answer" },
        { "ORIGINATOR_CANCEL", "", OUTCOME_MISSED, "caller hung up before an answer" },
        { "USER_BUSY", "", OUTCOME_BUSY, "line busy" },
        { "CALL_REJECTED", "", OUTCOME_BUSY, "call rejected" },
        { "NORMAL_CLEARING", "", OUTCOME_MISSED, "no answer" },
        { "NORMAL_CLEARING", "2026-11-20 09:14:09", OUTCOME_ANSWERED, "answered" },
        { "LOSE_RACE", "", OUTCOME_ANSWERED, "answered" },
        { "NORMAL_TEMPORARY_FAILURE", "", OUTCOME_FAILED, "call failed" },
        { "SWITCH_CONGESTION", "", OUTCOME_FAILED, "congestion" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cdr_t c = { 0 };
        c.f[COL_DISPOSITION] = cases[i].disp;
        c.f[COL_ANSWER] = cases[i].answer;
        const char *reason;
        assert_int_equal(cdr_outcome(&c, &reason), cases[i].out);
        assert_string_equal(reason, cases[i].reason);
    }
}

static void missed_call_message(void **state)
{
    (void)state;
    assert_int_equal(build(L_NO_ANSWER), 0);
    assert_string_equal(msg->id, "phone:pbx1:1763630411.3");
    assert_string_equal(msg->channel, "phone");
    assert_string_equal(msg->from_id, "+14155550102");
    assert_null(msg->from_name); /* the name is only the number again */
    assert_string_equal(msg->received_at, "2026-11-20T09:20:11.000Z");
    assert_string_equal(msg->text, "Missed call from +14155550102 at 2026-11-20 09:20:11 +00:00 (no answer); please call back");
    assert_string_equal(msg->to, "6000");
    assert_string_equal(meta_s("disposition"), "NO ANSWER");
    assert_string_equal(meta_s("outcome"), "missed");
    assert_true(json_is_true(meta("callback")));
    assert_true(json_is_false(meta("voicemail")));
    assert_int_equal(json_integer_value(meta("duration")), 30);
    assert_int_equal(json_integer_value(meta("billsec")), 0);
    assert_string_equal(meta_s("dst"), "6000");
    assert_string_equal(meta_s("uniqueid"), "1763630411.3");
    assert_string_equal(meta_s("cdr_file"), "/var/log/asterisk/cdr-csv/Master.csv");
    assert_int_equal(json_integer_value(meta("cdr_line")), 7);
    assert_string_equal(meta_s("cdr_layout"), "asterisk-18");
    omni_msg_error_t err;
    assert_int_equal(omni_msg_validate(msg, NULL, &err), 0);
}

static void busy_failed_and_names(void **state)
{
    (void)state;
    assert_int_equal(build(L_ACME_BUSY), 0);
    assert_string_equal(msg->from_id, "+442079460123");
    assert_string_equal(msg->from_name, "Acme, Ltd");
    assert_string_equal(msg->text, "Missed call from +442079460123 at 2026-11-20 09:31:55 +00:00 (line busy); please call back");
    assert_string_equal(meta_s("outcome"), "busy");
    assert_string_equal(meta_s("userfield"), "vip");
    assert_int_equal(build(L_FAILED), 0);
    assert_string_equal(msg->from_name, "Jane Roe");
    assert_string_equal(meta_s("outcome"), "failed");
    assert_string_equal(msg->text, "Missed call from +14155550101 at 2026-11-20 10:15:40 +00:00 (call failed); please call back");
}

static void voicemail_and_national_number(void **state)
{
    (void)state;
    assert_int_equal(build(L_ANA_VM), 0); /* answered by VoiceMail: callback work */
    assert_string_equal(msg->from_id, "+33612345678"); /* 0612345678 read in FR */
    assert_string_equal(msg->from_name, "Ana \"Nina\" Ruiz");
    assert_string_equal(msg->text, "Voicemail from +33612345678 at 2026-11-20 10:02:00 +00:00 (mailbox 6000@default, 67 s); "
                                   "please call back");
    assert_true(json_is_true(meta("voicemail")));
    assert_true(json_is_true(meta("callback")));
    /* was "answered" (by the machine): a message left is not a conversation had */
    assert_string_equal(meta_s("outcome"), "voicemail");
    assert_string_equal(meta_s("mailbox"), "6000@default");
    assert_string_equal(meta_s("caller_raw"), "0612345678");
    opts.default_country = "NL";
    assert_int_equal(build(L_ANA_VM), 0);
    assert_string_equal(msg->from_id, "+31612345678");
    opts.default_country = NULL; /* no default country: a national number cannot be read */
    assert_int_equal(build(L_ANA_VM), -1);
    assert_null(msg);
    assert_non_null(strstr(why, "caller \"0612345678\" is not a phone number"));
}

static void voicemail_by_extension(void **state)
{
    (void)state;
    static const char *const vm[] = { "*97", "6000" };
    opts.voicemail = vm;
    opts.n_voicemail = 2;
    assert_int_equal(build(L_NO_ANSWER), 0); /* dst 6000 is a voicemail extension, but nobody answered */
    assert_true(json_is_true(meta("voicemail")));
    assert_string_equal(meta_s("outcome"), "missed"); /* sent to voicemail, but nobody (nothing) answered */
    assert_string_equal(msg->text, "Missed call from +14155550102 at 2026-11-20 09:20:11 +00:00 (no answer, sent to voicemail); "
                                   "please call back");
    assert_int_equal(build(L_JANE_ANSWERED), 0); /* answered at 6000 = the voicemail extension */
    assert_string_equal(msg->text, "Voicemail from +14155550101 at 2026-11-20 09:14:03 +00:00 (212 s); please call back");
}

static void answered_skip_or_log(void **state)
{
    (void)state;
    assert_int_equal(build(L_JANE_ANSWERED), 1);
    assert_null(msg);
    assert_string_equal(why, "answered call");
    opts.log_answered = true;
    assert_int_equal(build(L_JANE_ANSWERED), 0);
    assert_string_equal(msg->text, "Answered call from +14155550101 at 2026-11-20 09:14:03 +00:00 (212 s)");
    assert_true(json_is_false(meta("callback")));
    assert_string_equal(meta_s("outcome"), "answered");
}

static void withheld_and_garbage_callers(void **state)
{
    (void)state;
    cdr_t c = { 0 };
    c.f[COL_DISPOSITION] = "NO ANSWER";
    c.f[COL_SRC] = "anonymous";
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 1);
    assert_string_equal(why, "caller withheld (\"anonymous\")");
    /* as a PBX may pad them: blanks around the word, or blanks alone, are withheld too, not unreadable */
    static const char *const padded[] = { " Anonymous ", "  ", "\tPRIVATE", "Restricted\t" };
    for (size_t i = 0; i < sizeof padded / sizeof padded[0]; i++) {
        c.f[COL_SRC] = padded[i];
        if (cdr_message(&c, &opts, &where, &msg, why, sizeof why) != 1)
            fail_msg("\"%s\": %s", padded[i], why);
        assert_non_null(strstr(why, "caller withheld"));
    }
    c.f[COL_SRC] = "";
    c.f[COL_CLID] = "\"Bob\" <+14155550100>"; /* src empty: the number in clid */
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
    assert_string_equal(msg->from_id, "+14155550100");
    assert_string_equal(msg->from_name, "Bob");
    assert_string_equal(msg->text, "Missed call from +14155550100 at an unknown time (no answer); please call back");
    omni_msg_destroy(&msg);
    c.f[COL_SRC] = "sip:abc";
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), -1);
    assert_non_null(strstr(why, "caller \"sip:abc\" is not a phone number"));
    c.f[COL_SRC] = "+14155550100";
    c.f[COL_CLID] = "\"Bj\xf6rn\" <+14155550100>"; /* Latin-1 name: cleaned, the message still valid */
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
    assert_string_equal(msg->from_name, "Bj?rn");
    omni_msg_error_t err;
    assert_int_equal(omni_msg_validate(msg, NULL, &err), 0);
    omni_msg_destroy(&msg);
    /* meta strings: printable ASCII taken as it is, UTF-8 kept, a control or a bad byte '?' each */
    c.f[COL_USERFIELD] = "vip\tcaf\xc3\xa9\xff";
    c.f[COL_ACCOUNTCODE] = "acct-7";
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
    json_t *meta = json_object_get(msg->json, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "userfield")), "vip?caf\xc3\xa9?");
    assert_string_equal(json_string_value(json_object_get(meta, "accountcode")), "acct-7");
    assert_int_equal(omni_msg_validate(msg, NULL, &err), 0);
    c.f[COL_USERFIELD] = c.f[COL_ACCOUNTCODE] = NULL;
}

static void ids_are_stable(void **state)
{
    (void)state;
    cdr_t c = { 0 };
    c.f[COL_DISPOSITION] = "BUSY";
    c.f[COL_SRC] = "+14155550100";
    c.f[COL_UNIQUEID] = "1763630043.1";
    c.f[COL_SEQUENCE] = "42";
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
    assert_string_equal(msg->id, "phone:pbx1:1763630043.1:42"); /* 21-field layout: uniqueid + sequence */
    omni_msg_destroy(&msg);
    c.f[COL_UNIQUEID] = NULL; /* no uniqueid: a hash of file, inode, offset and raw line */
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
    char first[300];
    snprintf(first, sizeof first, "%s", msg->id);
    assert_int_equal(strncmp(first, "phone:pbx1:h", 12), 0);
    assert_int_equal(strlen(first), 12 + 16);
    omni_msg_destroy(&msg);
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
    assert_string_equal(msg->id, first); /* same record, same place: same id */
    omni_msg_destroy(&msg);
    where.offset = 901;
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
    assert_string_not_equal(msg->id, first); /* an identical line elsewhere is another call */
}

static void utc_and_local_dates(void **state)
{
    (void)state;
    setenv("TZ", "Europe/Paris", 1);
    tzset();
    assert_int_equal(build(L_NO_ANSWER), 0); /* 09:20:11 in Paris (CET, UTC+1 in November) */
    assert_string_equal(msg->received_at, "2026-11-20T08:20:11.000Z");
    assert_non_null(strstr(msg->text, "at 2026-11-20 09:20:11 +01:00 ")); /* the time with its zone */
    /* Local times the clocks make ambiguous are read one way in every zone: an hour that happens twice as
     * its first occurrence (summer time), a skipped one with the offset before the change. */
    static const struct { const char *tz, *start, *at, *text; } dst[] = {
        { "Europe/Paris", "2026-10-25 02:30:00", "2026-10-25T00:30:00.000Z", "at 2026-10-25 02:30:00 +02:00 " },
        { "America/New_York", "2026-11-01 01:30:00", "2026-11-01T05:30:00.000Z", "at 2026-11-01 01:30:00 -04:00 " },
        { "Europe/Paris", "2026-03-29 02:30:00", "2026-03-29T01:30:00.000Z", "at 2026-03-29 02:30:00 +01:00 " },
        { "America/New_York", "2026-03-08 02:30:00", "2026-03-08T07:30:00.000Z", "at 2026-03-08 02:30:00 -05:00 " },
        { "Australia/Sydney", "2026-04-05 02:30:00", "2026-04-04T15:30:00.000Z", "at 2026-04-05 02:30:00 +11:00 " },
        { "Asia/Kolkata", "2026-11-20 09:20:11", "2026-11-20T03:50:11.000Z", "at 2026-11-20 09:20:11 +05:30 " },
    };
    for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++) {
        setenv("TZ", dst[i].tz, 1);
        tzset();
        cdr_t c = { 0 };
        c.f[COL_DISPOSITION] = "NO ANSWER";
        c.f[COL_SRC] = "+14155550100";
        c.f[COL_START] = dst[i].start;
        omni_msg_destroy(&msg);
        assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
        if (strcmp(msg->received_at, dst[i].at) != 0 || strstr(msg->text, dst[i].text) == NULL)
            fail_msg("%s %s: %s, \"%s\"", dst[i].tz, dst[i].start, msg->received_at, msg->text);
    }
    setenv("TZ", "Europe/Paris", 1);
    tzset();
    opts.utc = true;
    assert_int_equal(build(L_NO_ANSWER), 0);
    assert_string_equal(msg->received_at, "2026-11-20T09:20:11.000Z");
    assert_non_null(strstr(msg->text, "at 2026-11-20 09:20:11 UTC "));
    /* An empty start date: the end date stands in (the call ended then); neither: the time it was read. */
    cdr_t c = { 0 };
    c.f[COL_DISPOSITION] = "NO ANSWER";
    c.f[COL_SRC] = "+14155550100";
    c.f[COL_START] = "";
    c.f[COL_END] = "2026-11-20 09:21:00";
    omni_msg_destroy(&msg);
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
    assert_string_equal(msg->received_at, "2026-11-20T09:21:00.000Z");
    setenv("TZ", "UTC", 1);
    tzset();
}

static void freeswitch_records(void **state)
{
    (void)state;
    layout_t fs;
    assert_int_equal(layout_init(&fs, "freeswitch", NULL, 0, why, sizeof why), 0);
    static const char *const line = "\"Jane Roe\",\"4155550101\",\"6000\",\"default\",\"2026-11-20 09:14:03\",\"\","
        "\"2026-11-20 09:14:33\",\"30\",\"0\",\"ORIGINATOR_CANCEL\",\"5b1e-uuid\",\"\",\"\",\"PCMU\",\"PCMU\"";
    assert_int_equal(csv_parse(line, strlen(line), &rec, why, sizeof why), 0);
    assert_int_equal(layout_map(&fs, &rec, &cdr, why, sizeof why), 0);
    opts.default_country = "US";
    assert_int_equal(cdr_message(&cdr, &opts, &where, &msg, why, sizeof why), 0);
    assert_string_equal(msg->id, "phone:pbx1:5b1e-uuid");
    assert_string_equal(msg->from_id, "+14155550101");
    assert_string_equal(msg->from_name, "Jane Roe");
    assert_string_equal(msg->text, "Missed call from +14155550101 at 2026-11-20 09:14:03 +00:00 (caller hung up before an "
                                   "answer); please call back");
    assert_string_equal(meta_s("disposition"), "ORIGINATOR_CANCEL");
    assert_int_equal(json_integer_value(meta("duration")), 30); /* quoted numbers still become integers */
    assert_string_equal(meta_s("cdr_layout"), "freeswitch");
}

/* duration and billsec: integers when the PBX wrote one, else the text as written, never a changed number */
static void durations_at_bounds(void **state)
{
    (void)state;
    static const struct { const char *dur; json_int_t i; const char *s; } cases[] = {
        { "0", 0, NULL },
        { "9223372036854775807", INT64_MAX, NULL },
        { "-9223372036854775808", INT64_MIN, NULL },
        { "9223372036854775808", 0, "9223372036854775808" },   /* one past: not clamped */
        { "99999999999999999999", 0, "99999999999999999999" },
        { " 5", 0, " 5" },
        { "+5", 0, "+5" },
        { "5s", 0, "5s" },
        { "-", 0, "-" },
    };
    cdr_t c = { 0 };
    c.f[COL_DISPOSITION] = "NO ANSWER";
    c.f[COL_SRC] = "+14155550100";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        c.f[COL_DURATION] = c.f[COL_BILLSEC] = cases[i].dur;
        omni_msg_destroy(&msg);
        assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
        if (cases[i].s == NULL) {
            assert_true(json_is_integer(meta("duration")));
            assert_true(json_integer_value(meta("duration")) == cases[i].i);
            assert_true(json_integer_value(meta("billsec")) == cases[i].i);
        } else {
            assert_string_equal(meta_s("duration"), cases[i].s);
            assert_string_equal(meta_s("billsec"), cases[i].s);
        }
    }
    c.f[COL_DURATION] = c.f[COL_BILLSEC] = ""; /* empty: left out */
    omni_msg_destroy(&msg);
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
    assert_null(meta("duration"));
    assert_null(meta("billsec"));
}

/* A field over the router's limits (4 KiB a string, 16 KiB of meta) costs that field only, never the callback:
 * a FreeSWITCH or custom line may hold up to 64 KiB. Nothing is cut short: a value is whole or left out. */
static void oversized_fields_cost_only_themselves(void **state)
{
    (void)state;
    char *big[6];
    for (int i = 0; i < 6; i++) {
        big[i] = omni_malloc(5001);
        memset(big[i], 'a' + i, 5000);
        big[i][5000] = '\0';
    }
    char *mid = omni_malloc(4001); /* under 4 KiB each, over 16 KiB together */
    memset(mid, 'm', 4000);
    mid[4000] = '\0';
    char mailbox[400], billsec[700];
    memset(mailbox, 'v', 300);
    strcpy(mailbox + 300, "@default,u");
    memset(billsec, '7', 600);
    billsec[600] = '\0';
    cdr_t c = { 0 };
    c.f[COL_SRC] = "+14155550100";
    c.f[COL_NAME] = big[0];
    c.f[COL_DST] = big[1];
    c.f[COL_USERFIELD] = mid;
    c.f[COL_ACCOUNTCODE] = mid;
    c.f[COL_LINKEDID] = mid;
    c.f[COL_UNIQUEID] = mid;
    c.f[COL_LASTAPP] = "VoiceMail";
    c.f[COL_LASTDATA] = mailbox;
    c.f[COL_DISPOSITION] = "ANSWERED";
    c.f[COL_BILLSEC] = billsec;
    c.f[COL_START] = "2026-11-20 09:20:11";
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
    omni_limits_t lim;
    omni_limits_default(&lim);
    omni_msg_error_t err;
    char line[400];
    if (omni_msg_validate(msg, &lim, &err) != 0)
        fail_msg("%s", omni_msg_error_str(&err, line, sizeof line));
    assert_string_equal(msg->from_id, "+14155550100");
    assert_null(msg->from_name); /* 5000 bytes: left out */
    assert_null(msg->to);
    assert_null(meta("dst"));
    assert_string_equal(meta_s("outcome"), "voicemail");
    assert_true(json_is_true(meta("callback")));
    mailbox[300 + strlen("@default")] = '\0';
    assert_string_equal(meta_s("mailbox"), mailbox); /* whole, not cut at a buffer's size */
    assert_non_null(strstr(msg->text, mailbox));
    assert_non_null(strstr(msg->text, billsec));
    static const char head[] = "Voicemail from +14155550100 at 2026-11-20 09:20:11 +00:00 (mailbox ";
    assert_int_equal(strncmp(msg->text, head, strlen(head)), 0);
    assert_non_null(strstr(msg->text, " s); please call back"));
    assert_string_equal(meta_s("cdr_file"), "/var/log/asterisk/cdr-csv/Master.csv");
    assert_int_equal(json_integer_value(meta("cdr_line")), 7);
    for (int i = 0; i < 6; i++)
        free(big[i]);
    free(mid);
}

/* A custom or FreeSWITCH line may hold 64 KiB, so a mailbox (lastdata) or a billsec may be too: such a value is left
 * out of the text as it is of meta (over the router's 4 KiB for a string), so that the text stays under its own
 * limit and the callback is sent (docs/connectors.md, "Limits": "costs that value only, never the callback"). */
static void a_huge_mailbox_or_billsec_never_costs_the_callback(void **state)
{
    (void)state;
    size_t big = 65400;
    char *mailbox = omni_malloc(big + 1), *billsec = omni_malloc(big + 1);
    memset(mailbox, 'v', big);
    mailbox[big] = '\0';
    memset(billsec, '7', big);
    billsec[big] = '\0';
    omni_limits_t lim;
    omni_limits_default(&lim);
    omni_msg_error_t err;
    char line[400];
    static const char *const at = "2026-11-20 09:20:11 +00:00";
    for (int which = 0; which < 3; which++) {
        cdr_t c = { 0 };
        c.f[COL_SRC] = "+14155550100";
        c.f[COL_LASTAPP] = "VoiceMail";
        c.f[COL_LASTDATA] = which == 1 ? "6000@default,u" : mailbox;
        c.f[COL_DISPOSITION] = "ANSWERED";
        c.f[COL_BILLSEC] = which == 0 ? "67" : billsec;
        c.f[COL_START] = "2026-11-20 09:20:11";
        omni_msg_destroy(&msg);
        assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
        if (omni_msg_validate(msg, &lim, &err) != 0)
            fail_msg("case %d: %s", which, omni_msg_error_str(&err, line, sizeof line));
        char want[200];
        snprintf(want, sizeof want, which == 0   ? "Voicemail from +14155550100 at %s (67 s); please call back"
                                    : which == 1 ? "Voicemail from +14155550100 at %s (mailbox 6000@default); please call back"
                                                 : "Voicemail from +14155550100 at %s; please call back", at);
        assert_string_equal(msg->text, want);
        assert_null(meta("mailbox") != NULL && which != 1 ? meta("mailbox") : NULL);
    }
    /* an answered call logged: the same for its seconds */
    opts.log_answered = true;
    cdr_t c = { 0 };
    c.f[COL_SRC] = "+14155550100";
    c.f[COL_DISPOSITION] = "ANSWERED";
    c.f[COL_BILLSEC] = billsec;
    c.f[COL_START] = "2026-11-20 09:20:11";
    omni_msg_destroy(&msg);
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
    assert_string_equal(msg->text, "Answered call from +14155550100 at 2026-11-20 09:20:11 +00:00");
    opts.log_answered = false;
    free(mailbox);
    free(billsec);
}

/* A day the month does not have is no date: "at an unknown time", not the day mktime makes of it. */
static void days_the_month_does_not_have(void **state)
{
    (void)state;
    static const struct { const char *start, *at; } cases[] = {
        { "2026-02-28 10:00:00", "2026-02-28T10:00:00.000Z" }, { "2026-02-29 10:00:00", NULL },
        { "2028-02-29 10:00:00", "2028-02-29T10:00:00.000Z" }, { "2100-02-29 10:00:00", NULL },
        { "2000-02-29 10:00:00", "2000-02-29T10:00:00.000Z" }, { "2026-04-31 10:00:00", NULL },
        { "2026-12-31 23:59:59", "2026-12-31T23:59:59.000Z" }, { "2026-11-31 10:00:00", NULL },
    };
    for (int utc = 0; utc <= 1; utc++) {
        opts.utc = utc;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            cdr_t c = { 0 };
            c.f[COL_DISPOSITION] = "NO ANSWER";
            c.f[COL_SRC] = "+14155550100";
            c.f[COL_START] = cases[i].start;
            omni_msg_destroy(&msg);
            assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
            if (cases[i].at != NULL ? strcmp(msg->received_at, cases[i].at) != 0
                                    : strstr(msg->text, " at an unknown time ") == NULL)
                fail_msg("%s (utc %d): %s, \"%s\"", cases[i].start, utc, msg->received_at, msg->text);
        }
    }
    /* a start that is no date: the end stands in, as for an empty one */
    opts.utc = true;
    cdr_t c = { 0 };
    c.f[COL_DISPOSITION] = "NO ANSWER";
    c.f[COL_SRC] = "+14155550100";
    c.f[COL_START] = "2026-02-29 10:00:00";
    c.f[COL_END] = "2026-03-01 10:00:30";
    omni_msg_destroy(&msg);
    assert_int_equal(cdr_message(&c, &opts, &where, &msg, why, sizeof why), 0);
    assert_string_equal(msg->received_at, "2026-03-01T10:00:30.000Z");
    assert_non_null(strstr(msg->text, " at 2026-03-01 10:00:30 UTC "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(outcome_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(missed_call_message, setup, teardown),
        cmocka_unit_test_setup_teardown(busy_failed_and_names, setup, teardown),
        cmocka_unit_test_setup_teardown(voicemail_and_national_number, setup, teardown),
        cmocka_unit_test_setup_teardown(voicemail_by_extension, setup, teardown),
        cmocka_unit_test_setup_teardown(answered_skip_or_log, setup, teardown),
        cmocka_unit_test_setup_teardown(withheld_and_garbage_callers, setup, teardown),
        cmocka_unit_test_setup_teardown(ids_are_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(utc_and_local_dates, setup, teardown),
        cmocka_unit_test_setup_teardown(freeswitch_records, setup, teardown),
        cmocka_unit_test_setup_teardown(durations_at_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_fields_cost_only_themselves, setup, teardown),
        cmocka_unit_test_setup_teardown(a_huge_mailbox_or_billsec_never_costs_the_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(days_the_month_does_not_have, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
