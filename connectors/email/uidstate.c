/* UID cursors per mailbox and their state file (see uidstate.h for the rules). */
#include "uidstate.h"
#include "imap_parse.h"
#include "omni/log.h"
#include "omni/util.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

/* The file: {"version": 1, "mailboxes": {"<account>/<mailbox>": {"uidvalidity": N, "last_uid": N,
 * "backlog_until": N, "backlog": "UNSEEN", "last_date_ms": N}}}. */
struct uidstate {
    json_t *boxes; /* owned */
};

#define DAY_MS (24LL * 3600 * 1000)

uidstate_t *uidstate_new(void)
{
    uidstate_t *st = omni_calloc(1, sizeof *st);
    st->boxes = json_object();
    return st;
}

static bool u32(json_t *o, const char *k, uint32_t *out)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 0xFFFFFFFFLL)
        return false;
    *out = (uint32_t)json_integer_value(v);
    return true;
}

static bool cursor_of(json_t *o, uid_cursor_t *c)
{
    memset(c, 0, sizeof *c);
    if (!json_is_object(o) || !u32(o, "uidvalidity", &c->uidvalidity) || !u32(o, "last_uid", &c->last_uid) ||
        !u32(o, "backlog_until", &c->backlog_until))
        return false;
    json_t *b = json_object_get(o, "backlog");
    if (!json_is_string(b) || json_string_length(b) >= sizeof c->backlog)
        return false;
    memcpy(c->backlog, json_string_value(b), json_string_length(b) + 1);
    json_t *d = json_object_get(o, "last_date_ms");
    if (json_is_integer(d)) {
        c->has_last_date = true;
        c->last_date_ms = json_integer_value(d);
    }
    return true;
}

uidstate_t *uidstate_parse(const char *text, size_t len, char *err, size_t errsz)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root) {
        snprintf(err, errsz, "not JSON: line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    json_t *boxes = json_object_get(root, "mailboxes");
    json_t *ver = json_object_get(root, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) != 1 || !json_is_object(boxes)) {
        snprintf(err, errsz, "not an email state file of version 1");
        json_decref(root);
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(boxes, key, v) {
        uid_cursor_t c;
        if (!cursor_of(v, &c)) {
            snprintf(err, errsz, "the cursor of \"%s\" is malformed", key);
            json_decref(root);
            return NULL;
        }
    }
    uidstate_t *st = omni_calloc(1, sizeof *st);
    st->boxes = json_incref(boxes);
    json_decref(root);
    return st;
}

char *uidstate_serialize(const uidstate_t *st, size_t *len)
{
    json_t *root = json_pack("{s:i, s:O}", "version", 1, "mailboxes", st->boxes);
    char *s = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(root);
    if (!s)
        omni_fatal("out of memory writing the email state");
    if (len)
        *len = strlen(s);
    return s;
}

void uidstate_destroy(uidstate_t **pst)
{
    if (!pst || !*pst)
        return;
    json_decref((*pst)->boxes);
    free(*pst);
    *pst = NULL;
}

int uidstate_get(const uidstate_t *st, const char *key, uid_cursor_t *out)
{
    return cursor_of(json_object_get(st->boxes, key), out) ? 0 : -1;
}

void uidstate_put(uidstate_t *st, const char *key, const uid_cursor_t *c)
{
    json_t *o = json_pack("{s:I, s:I, s:I, s:s}", "uidvalidity", (json_int_t)c->uidvalidity, "last_uid",
                          (json_int_t)c->last_uid, "backlog_until", (json_int_t)c->backlog_until, "backlog",
                          c->backlog);
    if (!o)
        omni_fatal("out of memory writing the email state");
    if (c->has_last_date)
        json_object_set_new(o, "last_date_ms", json_integer(c->last_date_ms));
    json_object_set_new(st->boxes, key, o);
}

static void start_backlog(uid_cursor_t *c, uint32_t uidnext, uid_initial_t initial, bool by_date)
{
    c->last_uid = 0;
    c->backlog_until = uidnext > 0 ? uidnext - 1 : 0;
    if (by_date) {
        /* After a change: the recent mail again (its ids are the same: the router drops what it has), and what
         * the initial rule takes, whatever its date: a message moved into the mailbox keeps its old
         * INTERNALDATE, and one that came since the last poll must not be lost for it. */
        char day[16];
        imap_format_date(c->last_date_ms - DAY_MS, day, sizeof day);
        if (initial == UID_INITIAL_ALL)
            snprintf(c->backlog, sizeof c->backlog, "ALL");
        else if (initial == UID_INITIAL_UNSEEN)
            snprintf(c->backlog, sizeof c->backlog, "OR SINCE %s UNSEEN", day);
        else
            snprintf(c->backlog, sizeof c->backlog, "SINCE %s", day);
    } else if (initial == UID_INITIAL_NONE) {
        c->last_uid = c->backlog_until; /* the backlog is skipped: start after it */
        c->backlog[0] = '\0';
    } else {
        snprintf(c->backlog, sizeof c->backlog, "%s", initial == UID_INITIAL_ALL ? "ALL" : "UNSEEN");
    }
    if (c->last_uid >= c->backlog_until)
        c->backlog[0] = '\0';
}

uid_change_t uidstate_reconcile(uid_cursor_t *c, bool known, uint32_t uidvalidity, uint32_t uidnext,
                                uid_initial_t initial)
{
    if (!known) {
        memset(c, 0, sizeof *c);
        c->uidvalidity = uidvalidity;
        start_backlog(c, uidnext, initial, false);
        return UID_FIRST;
    }
    if (c->uidvalidity == uidvalidity && (uidnext == 0 || c->last_uid < uidnext))
        return UID_SAME;
    c->uidvalidity = uidvalidity;
    start_backlog(c, uidnext, initial, c->has_last_date);
    return UID_RESET;
}

bool uidstate_next_search(const uid_cursor_t *c, uint32_t uidnext, uint32_t span, char *criteria,
                          size_t sz, uint32_t *range_end)
{
    if (uidnext == 0 || c->last_uid >= uidnext - 1 || c->last_uid == UINT32_MAX)
        return false;
    uint32_t first = c->last_uid + 1;
    uint32_t last = uidnext - 1;
    if (span > 0 && last - first >= span)
        last = first + span - 1;
    bool backlog = c->backlog[0] && first <= c->backlog_until;
    if (backlog && last > c->backlog_until)
        last = c->backlog_until; /* one range never mixes the backlog with new mail */
    snprintf(criteria, sz, "UID %u:%u%s%s", first, last, backlog ? " " : "", backlog ? c->backlog : "");
    *range_end = last;
    return true;
}

void uidstate_advance(uid_cursor_t *c, uint32_t uid)
{
    if (uid > c->last_uid)
        c->last_uid = uid;
    if (c->backlog[0] && c->last_uid >= c->backlog_until)
        c->backlog[0] = '\0';
}

bool uidstate_cursor_eq(const uid_cursor_t *a, const uid_cursor_t *b)
{
    return a->uidvalidity == b->uidvalidity && a->last_uid == b->last_uid &&
           a->backlog_until == b->backlog_until && strcmp(a->backlog, b->backlog) == 0 &&
           a->has_last_date == b->has_last_date && (!a->has_last_date || a->last_date_ms == b->last_date_ms);
}
