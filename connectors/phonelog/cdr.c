/* Call record to message (cdr.h). The rules that decide what becomes callback work are in cdr_outcome();
 * the rest is careful formatting: every string taken from the log is made valid UTF-8 first, because one
 * bad byte in a caller's name must not cost the customer the callback. */
#include "cdr.h"
#include "omni/identity.h"
#include "omni/log.h"
#include "omni/util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *val(const cdr_t *c, col_role_t r)
{
    return c->f[r] != NULL ? c->f[r] : "";
}

static bool in(const char *s, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcasecmp(s, *list) == 0)
            return true;
    return false;
}

cdr_outcome_t cdr_outcome(const cdr_t *c, const char **reason)
{
    static const char *const missed[] = { "NO ANSWER", "NO_ANSWER", "NO_USER_RESPONSE", "ALLOTTED_TIMEOUT", NULL };
    static const char *const busy[] = { "BUSY", "USER_BUSY", "CALL_REJECTED", NULL };
    static const char *const congestion[] = { "CONGESTION", "SWITCH_CONGESTION", "NORMAL_CIRCUIT_CONGESTION", NULL };
    static const char *const elsewhere[] = { "LOSE_RACE", "PICKED_OFF", NULL };
    const char *d = val(c, COL_DISPOSITION);
    *reason = "answered";
    if (strcasecmp(d, "ANSWERED") == 0 || in(d, elsewhere))
        return OUTCOME_ANSWERED;
    if (strcasecmp(d, "ORIGINATOR_CANCEL") == 0) {
        *reason = "caller hung up before an answer";
        return OUTCOME_MISSED;
    }
    if (in(d, missed)) {
        *reason = "no answer";
        return OUTCOME_MISSED;
    }
    if (in(d, busy)) {
        *reason = strcasecmp(d, "CALL_REJECTED") == 0 ? "call rejected" : "line busy";
        return OUTCOME_BUSY;
    }
    if (in(d, congestion)) {
        *reason = "congestion";
        return OUTCOME_FAILED;
    }
    /* FreeSWITCH: the cause says how the call ended, the answer time whether it was answered. Asterisk's
     * dispositions are all handled above, so this only sees hangup causes. */
    if (strcasecmp(d, "FAILED") != 0 && c->f[COL_ANSWER] != NULL && c->f[COL_ANSWER][0] != '\0')
        return OUTCOME_ANSWERED;
    if (strcasecmp(d, "NORMAL_CLEARING") == 0) {
        *reason = "no answer";
        return OUTCOME_MISSED;
    }
    *reason = "call failed";
    return OUTCOME_FAILED;
}

/* A copy of s made valid UTF-8 without control characters ('?' for each bad byte). Caller frees. */
static char *clean(const char *s)
{
    size_t len = strlen(s), o = 0;
    char *out = omni_malloc(len + 1);
    for (size_t i = 0; i < len;) {
        size_t run = i; /* printable ASCII, nearly everything a PBX writes, copied as a run */
        while (run < len && (unsigned char)s[run] >= 0x20 && (unsigned char)s[run] < 0x7F)
            run++;
        memcpy(out + o, s + i, run - i);
        o += run - i;
        i = run;
        if (i == len)
            break;
        unsigned char b = (unsigned char)s[i];
        size_t n = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
        if (b < 0x20 || b == 0x7F || i + n > len || (n > 1 && !omni_utf8_valid(s + i, n, NULL))) {
            out[o++] = '?';
            i++;
            continue;
        }
        memcpy(out + o, s + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
    return out;
}

/* True when s is printable ASCII only, which clean() would copy unchanged. */
static bool printable_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7F)
            return false;
    return true;
}

/* True when a value of len bytes fits the router's limit for one string (4 KiB by default); else warns that
 * it is left out. A line may hold 64 KiB (FreeSWITCH, custom layouts): one oversized field must cost that
 * field, never the callback, and a value is sent whole or not at all (the record stays in the file). */
static bool fits(const cdr_where_t *w, const char *prefix, const char *what, size_t len)
{
    omni_limits_t lim;
    omni_limits_default(&lim);
    if (len <= lim.field_bytes)
        return true;
    omni_warn("%s:%lu: %s%s is %zu bytes, over the router's limit of %zu: left out of the message", w->file,
              w->line, prefix, what, len, lim.field_bytes);
    return false;
}

static void meta_str(omni_msg_t *m, const cdr_where_t *w, const char *key, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return;
    if (printable_ascii(s)) { /* nearly every field: no copy to make */
        if (fits(w, "meta.", key, strlen(s)))
            omni_msg_set_meta(m, key, json_string_nocheck(s));
        return;
    }
    char *c = clean(s);
    if (fits(w, "meta.", key, strlen(c)))
        omni_msg_set_meta(m, key, json_string_nocheck(c)); /* clean() made it valid UTF-8 */
    free(c);
}

/* meta within the router's limit for it (16 KiB as compact JSON by default), however many long fields the
 * record had: the longest strings the PBX wrote are left out first, each with a warning. Measured only when
 * the values could come near the limit (nearly never: a record's meta is a few hundred bytes). */
static void meta_fit(omni_msg_t *m, const cdr_where_t *w)
{
    static const char *const droppable[] = { "userfield", "accountcode", "linkedid", "uniqueid", "dst", "caller_raw",
                                              "mailbox", "disposition", "duration", "billsec", "cdr_file", NULL };
    omni_limits_t lim;
    omni_limits_default(&lim);
    json_t *meta = json_object_get(m->json, "meta");
    const char *key;
    json_t *v;
    size_t sum = 0;
    json_object_foreach(meta, key, v)
        sum += strlen(key) + (json_is_string(v) ? json_string_length(v) : 24) + 8;
    if (sum * 2 <= lim.meta_bytes) /* escaping at most doubles a cleaned string (a '"' or '\\' each) */
        return;
    for (size_t size; (size = json_dumpb(meta, NULL, 0, JSON_COMPACT)) > lim.meta_bytes;) {
        const char *longest = NULL;
        size_t longest_len = 0;
        for (size_t i = 0; droppable[i] != NULL; i++) {
            json_t *d = json_object_get(meta, droppable[i]);
            size_t len = json_is_string(d) ? json_string_length(d) : 0;
            if (len > longest_len) {
                longest = droppable[i];
                longest_len = len;
            }
        }
        if (longest == NULL)
            return; /* nothing left to drop: the submit names the field */
        omni_warn("%s:%lu: meta is %zu bytes, over the router's limit of %zu: meta.%s (%zu bytes) left out", w->file,
                  w->line, size, lim.meta_bytes, longest, longest_len);
        json_object_del(meta, longest);
    }
}

/* A number when s is one as the PBX writes it (digits, maybe a '-') and fits in 64 bits; otherwise the
 * text as written: strtoll alone would read " 5" or "+5" as 5 and clamp a 20-digit value to INT64_MAX,
 * a number the PBX never wrote. */
static void meta_int(omni_msg_t *m, const cdr_where_t *w, const char *key, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return;
    const char *digits = s[0] == '-' ? s + 1 : s;
    size_t n = strspn(digits, "0123456789");
    if (n > 0 && digits[n] == '\0') {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (errno == 0) {
            omni_msg_set_meta(m, key, json_integer((json_int_t)v));
            return;
        }
    }
    meta_str(m, w, key, s); /* keep what the PBX wrote rather than drop it */
}

/* True when t, in the process's zone, reads as the wall time in want. */
static bool reads_as(time_t t, const struct tm *want)
{
    struct tm back;
    return t != (time_t)-1 && localtime_r(&t, &back) != NULL && back.tm_year == want->tm_year &&
           back.tm_mon == want->tm_mon && back.tm_mday == want->tm_mday && back.tm_hour == want->tm_hour &&
           back.tm_min == want->tm_min && back.tm_sec == want->tm_sec;
}

/* A local wall time to an instant, the same way in every zone (mktime alone picks either reading of an
 * ambiguous time, depending on the zone and the C library): an hour that happens twice when the clocks go
 * back is read as its first occurrence, the earlier instant; a time the clocks skipped when they went
 * forward is read with the offset in force just before the change (02:30 becomes 03:30 in the new time). */
static time_t local_instant(const struct tm *wall)
{
    time_t best = (time_t)-1;
    for (int dst = 0; dst <= 1; dst++) {
        struct tm tm = *wall;
        tm.tm_isdst = dst;
        time_t t = mktime(&tm);
        if (reads_as(t, wall) && (best == (time_t)-1 || t < best))
            best = t;
    }
    if (best != (time_t)-1)
        return best;
    struct tm tm = *wall;
    time_t as_utc = timegm(&tm), before = as_utc - 86400; /* a day earlier: the offset before the change */
    struct tm prev;
    if (as_utc == (time_t)-1 || localtime_r(&before, &prev) == NULL)
        return (time_t)-1;
    return as_utc - prev.tm_gmtoff;
}

/* "2026-11-20 09:14:03" (local or UTC per utc) -> ms since the epoch, and *offset_s, the offset from UTC
 * it was read with (0 for UTC). Returns 0 or -1. Only digits where the form has them (sscanf's %d alone
 * would read "-026" or " +26" as a year) and years 1970..9998, so the time is one that RFC 3339 can write
 * in any zone (a year -26 once became a received_at the router refused). */
static int parse_stamp(const char *s, bool utc, int64_t *ms, long *offset_s)
{
    static const char form[] = "dddd-dd-dd dd:dd:dd";
    for (size_t i = 0; i < sizeof form - 1; i++)
        if (form[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != form[i])
            return -1;
    /* The digits are where the form has them: read by hand (sscanf cost more than the rest of the stamp). */
#define DIGITS2(at) ((s[at] - '0') * 10 + (s[(at) + 1] - '0'))
    struct tm tm = { 0 };
    tm.tm_year = DIGITS2(0) * 100 + DIGITS2(2);
    tm.tm_mon = DIGITS2(5);
    tm.tm_mday = DIGITS2(8);
    tm.tm_hour = DIGITS2(11);
    tm.tm_min = DIGITS2(14);
    tm.tm_sec = DIGITS2(17);
#undef DIGITS2
    if (s[sizeof form - 1] != '\0' && s[sizeof form - 1] != '.')
        return -1;
    if (tm.tm_year < 1970 || tm.tm_year > 9998 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    /* A day the month does not have is no date (mktime would read 02-30 as 03-02, a day the call was not). */
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (tm.tm_year % 4 == 0 && tm.tm_year % 100 != 0) || tm.tm_year % 400 == 0;
    if (tm.tm_mday > mdays[tm.tm_mon - 1] + (tm.tm_mon == 2 && leap))
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    struct tm wall = tm;
    time_t t = utc ? timegm(&tm) : local_instant(&wall);
    if (t == (time_t)-1)
        return -1;
    *ms = (int64_t)t * 1000;
    *offset_s = utc ? 0 : (long)(timegm(&wall) - t);
    return 0;
}

/* The number inside clid's "<...>", copied into out; "" when there is none. */
static void clid_number(const char *clid, char *out, size_t outsz)
{
    const char *lt = strrchr(clid, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    size_t n = lt && gt ? (size_t)(gt - lt - 1) : 0;
    snprintf(out, outsz, "%.*s", (int)(n < outsz ? n : outsz - 1), lt ? lt + 1 : "");
}

/* The display name of clid ("\"Ana \"\"Nina\"\" Ruiz\" <0612345678>" -> Ana "Nina" Ruiz); caller frees. */
static char *clid_name(const char *clid)
{
    const char *lt = strrchr(clid, '<');
    size_t len = lt ? (size_t)(lt - clid) : strlen(clid);
    while (len > 0 && isspace((unsigned char)clid[len - 1]))
        len--;
    char *out = omni_malloc(len + 1);
    size_t o = 0, i = 0;
    while (i < len && isspace((unsigned char)clid[i]))
        i++;
    bool quoted = i < len && clid[i] == '"' && len - i >= 2 && clid[len - 1] == '"';
    if (quoted) {
        i++;
        len--;
    }
    for (; i < len; i++) {
        if (quoted && (clid[i] == '"' || clid[i] == '\\') && i + 1 < len && clid[i + 1] == '"')
            i++; /* "" or \" inside the quoted name: one quote */
        out[o++] = clid[i];
    }
    out[o] = '\0';
    return out;
}

static bool withheld(const char *raw)
{
    static const char *const words[] = { "anonymous", "restricted", "private", "unknown", "unavailable",
                                         "withheld", NULL };
    /* the word as a PBX may pad it (" Anonymous "), and blanks alone, are as withheld as the bare word */
    raw += strspn(raw, " \t");
    size_t len = strlen(raw);
    while (len > 0 && (raw[len - 1] == ' ' || raw[len - 1] == '\t'))
        len--;
    char word[16];
    if (len >= sizeof word)
        return false;
    memcpy(word, raw, len);
    word[len] = '\0';
    return len == 0 || in(word, words);
}

static bool is_voicemail(const cdr_t *c, const cdr_opts_t *o)
{
    if (strcasecmp(val(c, COL_LASTAPP), "VoiceMail") == 0)
        return true;
    for (size_t i = 0; i < o->n_voicemail; i++)
        if (c->f[COL_DST] != NULL && strcmp(c->f[COL_DST], o->voicemail[i]) == 0)
            return true;
    return false;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ULL;
    return h;
}

static void make_id(const cdr_t *c, const cdr_opts_t *o, const cdr_where_t *w, char *id, size_t idsz)
{
    const char *u = val(c, COL_UNIQUEID), *seq = val(c, COL_SEQUENCE);
    int n = -1;
    if (u[0] != '\0')
        n = snprintf(id, idsz, "phone:%s:%s%s%s", o->pbx, u, seq[0] ? ":" : "", seq);
    /* An id must pass the router's check (UTF-8, no control character, not too long), else the record
     * would be refused and the callback lost: fall back to the hash. */
    if (n < 0 || (size_t)n >= idsz || !omni_msg_id_valid(id, (size_t)n)) {
        char num[64];
        uint64_t h = fnv1a(14695981039346656037ULL, w->file, strlen(w->file) + 1);
        int k = snprintf(num, sizeof num, "%" PRIu64 ":%" PRIu64 ":", w->ino, w->offset);
        h = fnv1a(fnv1a(h, num, (size_t)k), w->raw, w->raw_len);
        snprintf(id, idsz, "phone:%s:h%016" PRIx64, o->pbx, h);
    }
}

int cdr_message(const cdr_t *c, const cdr_opts_t *o, const cdr_where_t *w, omni_msg_t **msg, char *why,
                size_t whysz)
{
    *msg = NULL;
    const char *reason;
    cdr_outcome_t out = cdr_outcome(c, &reason);
    bool vm = is_voicemail(c, o);
    bool callback = out != OUTCOME_ANSWERED || vm;
    if (!callback && !o->log_answered) {
        snprintf(why, whysz, "answered call");
        return 1;
    }
    char raw[128], e164[64];
    const char *src = val(c, COL_SRC);
    size_t src_len = strnlen(src, sizeof raw - 1); /* cut as snprintf would, without its format parsing */
    memcpy(raw, src, src_len);
    raw[src_len] = '\0';
    if (raw[0] == '\0' && c->f[COL_CLID] != NULL)
        clid_number(c->f[COL_CLID], raw, sizeof raw);
    const char *bad;
    if (withheld(raw)) {
        snprintf(why, whysz, "caller withheld (\"%s\")", raw);
        return 1;
    }
    if (omni_phone_e164(raw, o->default_country, e164, sizeof e164, &bad) != 0) {
        char *c_raw = clean(raw);
        snprintf(why, whysz, "caller \"%s\" is not a phone number (%s)", c_raw, bad);
        free(c_raw);
        return -1;
    }
    /* The start, else (empty, or not a date) the end: the call happened no later than that. */
    const char *start = val(c, COL_START);
    int64_t at_ms;
    long off;
    char at[40], when[64];
    bool dated = parse_stamp(start, o->utc, &at_ms, &off) == 0;
    if (!dated) {
        start = val(c, COL_END);
        dated = parse_stamp(start, o->utc, &at_ms, &off) == 0;
    }
    if (dated) {
        /* The wall time as the PBX wrote it, with the offset it was read with: an agent in another zone,
         * or anyone reading it after a DST change, knows which moment it was. */
        long a = off < 0 ? -off : off;
        if (o->utc)
            snprintf(when, sizeof when, "%.19s UTC", start);
        else
            snprintf(when, sizeof when, "%.19s %c%02ld:%02ld", start, off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
    } else {
        at_ms = omni_wall_ms(); /* no usable date in the record: when we read it is the best we know */
        snprintf(when, sizeof when, "an unknown time");
    }
    omni_rfc3339(at_ms, at, sizeof at);

    /* Built to their length, never cut at a buffer's: the mailbox and billsec come from the log. */
    char *mailbox = omni_strdup("");
    if (vm && strcasecmp(val(c, COL_LASTAPP), "VoiceMail") == 0) {
        free(mailbox);
        mailbox = clean(val(c, COL_LASTDATA));
        mailbox[strcspn(mailbox, ",")] = '\0';
    }
    /* A mailbox or a billsec over the router's limit for a string (a custom or FreeSWITCH line may hold 64 KiB)
     * is left out of the text as it is of meta: with it the text could pass its own limit, and the callback
     * would be refused whole. */
    omni_limits_t lim;
    omni_limits_default(&lim);
    const char *box = strlen(mailbox) <= lim.field_bytes ? mailbox : "";
    const char *secs = val(c, COL_BILLSEC)[0] ? val(c, COL_BILLSEC) : "0";
    if (strlen(secs) > lim.field_bytes)
        secs = NULL;
    char *text;
    if (vm && out == OUTCOME_ANSWERED)
        text = omni_asprintf("Voicemail from %s at %s%s%s%s%s%s%s; please call back", e164, when,
                             box[0] || secs ? " (" : "", box[0] ? "mailbox " : "", box, box[0] && secs ? ", " : "",
                             secs ? secs : "", secs ? " s)" : box[0] ? ")" : "");
    else if (out == OUTCOME_ANSWERED)
        text = omni_asprintf("Answered call from %s at %s%s%s%s", e164, when, secs ? " (" : "", secs ? secs : "",
                             secs ? " s)" : "");
    else
        text = omni_asprintf("Missed call from %s at %s (%s%s); please call back", e164, when, reason,
                             vm ? ", sent to voicemail" : "");
    /* the billsec column comes from the log: keep the text valid whatever it holds */
    char *text_clean = clean(text);
    free(text);

    char id[OMNI_MSG_ID_MAX + 64];
    make_id(c, o, w, id, sizeof id);
    omni_msg_t *m = omni_msg_new(id, "phone", e164, at, text_clean);
    free(text_clean);
    char *name = c->f[COL_NAME] != NULL ? omni_strdup(c->f[COL_NAME])
               : c->f[COL_CLID] != NULL ? clid_name(c->f[COL_CLID]) : omni_strdup("");
    char *name_clean = clean(name);
    char name_e164[64];
    if (name_clean[0] != '\0' && strcmp(name_clean, raw) != 0 && strcmp(name_clean, e164) != 0 &&
        !(omni_phone_e164(name_clean, o->default_country, name_e164, sizeof name_e164, &bad) == 0 &&
          strcmp(name_e164, e164) == 0) && fits(w, "", "from.name", strlen(name_clean)))
        omni_msg_set(m, "from.name", name_clean); /* a name that is only the number again is no name */
    free(name);
    free(name_clean);
    if (c->f[COL_DST] != NULL && c->f[COL_DST][0] != '\0') {
        char *dst = clean(c->f[COL_DST]);
        if (fits(w, "", "to", strlen(dst)))
            omni_msg_set(m, "to", dst);
        free(dst);
    }
    static const char *const outcome_names[] = { "answered", "missed", "busy", "failed" };
    /* A voicemail's call was answered, by the machine: for a person reading meta or a policy it is a
     * message left, not a conversation had, so it has an outcome of its own. */
    omni_msg_set_meta(m, "outcome", json_string(vm && out == OUTCOME_ANSWERED ? "voicemail" : outcome_names[out]));
    omni_msg_set_meta(m, "callback", json_boolean(callback));
    omni_msg_set_meta(m, "voicemail", json_boolean(vm));
    meta_str(m, w, "disposition", c->f[COL_DISPOSITION]);
    meta_int(m, w, "duration", c->f[COL_DURATION]);
    meta_int(m, w, "billsec", c->f[COL_BILLSEC]);
    meta_str(m, w, "dst", c->f[COL_DST]);
    meta_str(m, w, "caller_raw", raw);
    meta_str(m, w, "mailbox", mailbox);
    meta_str(m, w, "uniqueid", c->f[COL_UNIQUEID]);
    meta_str(m, w, "linkedid", c->f[COL_LINKEDID]);
    meta_str(m, w, "userfield", c->f[COL_USERFIELD]);
    meta_str(m, w, "accountcode", c->f[COL_ACCOUNTCODE]);
    meta_str(m, w, "pbx", o->pbx);
    meta_str(m, w, "cdr_file", w->file);
    omni_msg_set_meta(m, "cdr_line", json_integer((json_int_t)w->line));
    meta_str(m, w, "cdr_layout", c->layout);
    meta_fit(m, w);
    free(mailbox);
    *msg = m;
    return 0;
}
