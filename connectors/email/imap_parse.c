/* Reading IMAP responses (see imap_parse.h). */
#include "imap_parse.h"
#include "omni/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char MONTHS[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Calls fn on each line of resp (without its CRLF); stops when fn returns non-zero and returns that. */
typedef int (*line_fn)(const char *line, size_t len, void *arg);

static int each_line(const char *resp, size_t len, line_fn fn, void *arg)
{
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(resp + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - resp) : len, le = e;
        if (le > i && resp[le - 1] == '\r')
            le--;
        int r = fn(resp + i, le - i, arg);
        if (r)
            return r;
        i = e + 1;
    }
    return 0;
}

/* The unsigned 32-bit number at s[0..len) up to the first non-digit; *used gets the digits read.
 * Returns -1 when there are none or the value does not fit. */
static long long number(const char *s, size_t len, size_t *used)
{
    long long v = 0;
    size_t i = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        v = v * 10 + (s[i] - '0');
        if (v > 0xFFFFFFFFLL)
            return -1;
        i++;
    }
    *used = i;
    return i ? v : -1;
}

/* The value after the item name (e.g. "UID") within a parenthesized list: the name must follow '('
 * or a blank and be followed by a blank. Returns a pointer to the value or NULL. */
static const char *item(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 1; i + n + 1 < len; i++)
        if ((line[i - 1] == '(' || line[i - 1] == ' ') && line[i + n] == ' ' &&
            strncasecmp(line + i, name, n) == 0)
            return line + i + n + 1;
    return NULL;
}

static bool starts(const char *line, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && strncasecmp(line, prefix, n) == 0;
}

typedef struct { uint32_t *uv, *un; int found; } select_arg_t;

static int select_line(const char *line, size_t len, void *arg)
{
    select_arg_t *a = arg;
    size_t used;
    static const struct { const char *code; int bit; } CODES[] = {{"* OK [UIDVALIDITY ", 1},
                                                                   {"* OK [UIDNEXT ", 2}};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(CODES[i].code);
        if (!starts(line, len, CODES[i].code))
            continue;
        long long x = number(line + n, len - n, &used);
        if (x > 0 && n + used < len && line[n + used] == ']') {
            *(i == 0 ? a->uv : a->un) = (uint32_t)x;
            a->found |= CODES[i].bit;
        }
    }
    return 0;
}

int imap_parse_select(const char *resp, size_t len, uint32_t *uidvalidity, uint32_t *uidnext)
{
    select_arg_t a = {uidvalidity, uidnext, 0};
    each_line(resp, len, select_line, &a);
    return a.found == 3 ? 0 : a.found == 1 ? 1 : -1;
}

static int status_line(const char *line, size_t len, void *arg)
{
    if (!starts(line, len, "* STATUS ") || len == 0 || line[len - 1] != ')')
        return 0;
    /* the attributes are the last parenthesized list: the mailbox name before it may hold anything */
    size_t open = len - 1;
    while (open > 0 && line[open] != '(')
        open--;
    for (size_t i = open + 1; i + 8 < len; i++) {
        if ((i == open + 1 || line[i - 1] == ' ') && strncasecmp(line + i, "UIDNEXT ", 8) == 0) {
            size_t used;
            long long x = number(line + i + 8, len - i - 8, &used);
            char after = line[i + 8 + used];
            if (x > 0 && (after == ' ' || after == ')'))
                *(uint32_t *)arg = (uint32_t)x;
            return 0;
        }
    }
    return 0;
}

int imap_parse_status_uidnext(const char *resp, size_t len, uint32_t *uidnext)
{
    uint32_t un = 0;
    each_line(resp, len, status_line, &un);
    if (un == 0)
        return -1;
    *uidnext = un;
    return 0;
}

typedef struct { uint32_t *v; size_t n, cap; } search_arg_t;

static int search_line(const char *line, size_t len, void *arg)
{
    search_arg_t *a = arg;
    if (!starts(line, len, "* SEARCH") || (len > 8 && line[8] != ' '))
        return 0;
    for (size_t i = 8; i < len;) {
        if (line[i] == ' ') {
            i++;
            continue;
        }
        size_t used;
        long long x = number(line + i, len - i, &used);
        if (x <= 0 || (i + used < len && line[i + used] != ' '))
            return -1;
        if (a->n == a->cap) {
            a->cap = a->cap ? a->cap * 2 : 64;
            a->v = omni_realloc(a->v, a->cap * sizeof *a->v);
        }
        a->v[a->n++] = (uint32_t)x;
        i += used;
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int imap_parse_search(const char *resp, size_t len, uint32_t **uids, size_t *n)
{
    search_arg_t a = {0};
    *uids = NULL;
    *n = 0;
    if (each_line(resp, len, search_line, &a) != 0) {
        free(a.v);
        return -1;
    }
    if (a.n == 0) {
        free(a.v);
        return 0;
    }
    qsort(a.v, a.n, sizeof *a.v, cmp_u32);
    size_t w = 1;
    for (size_t r = 1; r < a.n; r++)
        if (a.v[r] != a.v[w - 1])
            a.v[w++] = a.v[r];
    *uids = a.v;
    *n = w;
    return 0;
}

int imap_parse_datetime(const char *s, int64_t *ms)
{
    int d, y, hh, mm, ss, off;
    char mon[4], sign;
    if (sscanf(s, " %2d-%3c-%4d %2d:%2d:%2d %c%4d", &d, mon, &y, &hh, &mm, &ss, &sign, &off) != 8 ||
        (sign != '+' && sign != '-'))
        return -1;
    mon[3] = '\0';
    int m = 0;
    while (m < 12 && strcasecmp(MONTHS[m], mon) != 0)
        m++;
    if (m == 12)
        return -1;
    char rfc[40];
    snprintf(rfc, sizeof rfc, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", y, m + 1, d, hh, mm, ss, sign,
             off / 100, off % 100);
    return omni_rfc3339_parse(rfc, ms);
}

void imap_format_date(int64_t ms, char *out, size_t outsz)
{
    char rfc[40];
    omni_rfc3339(ms, rfc, sizeof rfc);
    int y = 0, m = 1, d = 1;
    sscanf(rfc, "%4d-%2d-%2d", &y, &m, &d);
    snprintf(out, outsz, "%d-%s-%04d", d, MONTHS[(m - 1) % 12], y);
}

typedef struct { const uint32_t *uids; size_t n; imap_meta_t *out; bool *found; } meta_arg_t;

/* The index of uid in the ascending uids[0..n), or n. */
static size_t find_uid(const uint32_t *uids, size_t n, long long uid)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (uids[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && uids[lo] == uid ? lo : n;
}

static int meta_line(const char *line, size_t len, void *arg)
{
    meta_arg_t *a = arg;
    size_t used;
    if (!starts(line, len, "* ") || number(line + 2, len - 2, &used) <= 0 ||
        !starts(line + 2 + used, len - 2 - used, " FETCH ("))
        return 0;
    const char *v = item(line, len, "UID");
    size_t k = v ? find_uid(a->uids, a->n, number(v, len - (size_t)(v - line), &used)) : a->n;
    if (k == a->n || a->found[k])
        return 0;
    imap_meta_t *out = &a->out[k];
    v = item(line, len, "RFC822.SIZE");
    long long sz = v ? number(v, len - (size_t)(v - line), &used) : -1;
    out->size = sz;
    v = item(line, len, "FLAGS");
    if (v && *v == '(') {
        const char *close = memchr(v, ')', len - (size_t)(v - line));
        for (const char *f = v; close && f + 5 <= close; f++)
            if (strncasecmp(f, "\\Seen", 5) == 0 && (f[5] == ' ' || f[5] == ')'))
                out->seen = true;
    }
    v = item(line, len, "INTERNALDATE");
    if (v && *v == '"') {
        char date[40] = "";
        const char *q = memchr(v + 1, '"', len - (size_t)(v + 1 - line));
        if (q && (size_t)(q - v - 1) < sizeof date) {
            memcpy(date, v + 1, (size_t)(q - v - 1));
            date[q - v - 1] = '\0';
            out->has_internaldate = imap_parse_datetime(date, &out->internaldate_ms) == 0;
        }
    }
    a->found[k] = true;
    return 0;
}

void imap_parse_fetch_metas(const char *resp, size_t len, const uint32_t *uids, size_t n, imap_meta_t *out,
                            bool *found)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = (imap_meta_t){.size = -1};
        found[i] = false;
    }
    meta_arg_t a = {uids, n, out, found};
    each_line(resp, len, meta_line, &a);
}

int imap_parse_fetch_meta(const char *resp, size_t len, uint32_t uid, imap_meta_t *out)
{
    bool found;
    imap_parse_fetch_metas(resp, len, &uid, 1, out, &found);
    return found ? 0 : -1;
}

/* ---- literal capture ---- */

enum { CAP_LINE, CAP_LITERAL, CAP_AFTER };

void imap_capture_init(imap_capture_t *c, imap_literal_t *lit, size_t n, size_t max)
{
    memset(c, 0, sizeof *c);
    c->lit = lit;
    c->n = n;
    c->max = max;
    for (size_t i = 0; i < n; i++) {
        lit[i].data = NULL;
        lit[i].len = 0;
        lit[i].whole = false;
    }
}

/* The literal of the UID uid, or NULL with c->error set when it was not asked for or came already. */
static imap_literal_t *literal_for(imap_capture_t *c, long long uid)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->lit[i].uid == uid) {
            if (c->lit[i].data) {
                c->error = "a FETCH response with a literal came twice for one UID";
                return NULL;
            }
            return &c->lit[i];
        }
    c->error = "a FETCH response with a literal is not for a UID asked for";
    return NULL;
}

/* The rest of the response of a literal read before its UID (c->later): the UID must be there. */
static void later_uid(imap_capture_t *c, const char *l, size_t len)
{
    size_t used;
    const char *v = item(l, len, "UID");
    long long uid = v ? number(v, len - (size_t)(v - l), &used) : -1;
    c->later_rest = false;
    if (uid < 0) {
        c->error = "a FETCH response with a literal names no UID";
        return;
    }
    imap_literal_t *lit = literal_for(c, uid);
    if (!lit)
        return;
    lit->data = c->later.data;
    lit->len = c->later.len;
    lit->whole = c->later.whole;
    c->later = (imap_literal_t){0};
}

/* A whole line before a literal: is it a FETCH response that announces one of ours? */
static void capture_line(imap_capture_t *c)
{
    const char *l = c->line;
    size_t len = c->line_len, used;
    while (len > 0 && (l[len - 1] == '\n' || l[len - 1] == '\r'))
        len--;
    if (c->later_rest) {
        /* " UID 7)": the literal's UID after it. (Another literal on this line is not ours to take: the
         * command asks for one body per message.) */
        later_uid(c, l, len);
        return;
    }
    if (len < 4 || l[len - 1] != '}' || !starts(l, len, "* ") || number(l + 2, len - 2, &used) <= 0 ||
        !starts(l + 2 + used, len - 2 - used, " FETCH ("))
        return;
    size_t open = len - 1;
    while (open > 0 && l[open] != '{')
        open--;
    long long size = number(l + open + 1, len - open - 1, &used);
    if (l[open] != '{' || size < 0 || open + 1 + used != len - 1) {
        c->error = "a FETCH response announces a literal that is not {number}";
        return;
    }
    const char *v = item(l, len, "UID");
    imap_literal_t *lit;
    if (v) {
        lit = literal_for(c, number(v, len - (size_t)(v - l), &used));
        if (!lit)
            return;
    } else {
        lit = &c->later; /* its UID comes after it, in the rest of the response */
        c->later_rest = true;
    }
    if ((size_t)size > c->max) {
        c->error = "the server sent more than the fetch limit";
        return;
    }
    c->cur = lit;
    c->want = (size_t)size;
    lit->data = omni_malloc(c->want + 1);
    lit->data[0] = '\0';
    c->state = c->want ? CAP_LITERAL : CAP_AFTER;
}

void imap_capture_feed(imap_capture_t *c, const char *b, size_t n)
{
    for (size_t i = 0; i < n && !c->error;) {
        imap_literal_t *lit = c->cur;
        if (c->state == CAP_LITERAL) {
            size_t take = c->want - lit->len < n - i ? c->want - lit->len : n - i;
            memcpy(lit->data + lit->len, b + i, take);
            lit->len += take;
            lit->data[lit->len] = '\0';
            i += take;
            if (lit->len == c->want)
                c->state = CAP_AFTER;
            continue;
        }
        if (c->state == CAP_AFTER) {
            /* The literal is followed by ")" or by more items (" UID 5)"); anything else means the
             * bytes we counted were not the literal. The rest of the line is read as any line. */
            lit->whole = b[i] == ')' || b[i] == ' ';
            if (!lit->whole)
                c->error = "the FETCH response does not go on properly after the literal";
            c->state = CAP_LINE;
            c->cur = NULL;
            continue;
        }
        char ch = b[i++];
        if (c->line_len < sizeof c->line - 1)
            c->line[c->line_len++] = ch;
        else if (ch == '\n') /* a cut line cannot be ours (ours is short): keep only its end marker */
            c->line[c->line_len - 1] = '\n';
        if (ch == '\n') {
            c->line[c->line_len] = '\0';
            capture_line(c);
            c->line_len = 0;
        }
    }
}

int imap_capture_finish(imap_capture_t *c)
{
    if (c->error)
        return -1;
    if (c->later.data) {
        c->error = "the FETCH response ended before the UID of its literal";
        return -1;
    }
    size_t announced = 0, whole = 0;
    for (size_t i = 0; i < c->n; i++) {
        announced += c->lit[i].data != NULL;
        whole += c->lit[i].whole;
    }
    if (announced == 0)
        return 1;
    if (c->state != CAP_LINE || whole < announced) {
        c->error = "the FETCH response ended inside the literal";
        return -1;
    }
    if (whole < c->n) {
        c->error = "no FETCH response for some of the UIDs asked for";
        return -1;
    }
    return 0;
}

void imap_capture_free(imap_capture_t *c)
{
    free(c->later.data);
    c->later = (imap_literal_t){0};
    for (size_t i = 0; i < c->n; i++) {
        free(c->lit[i].data);
        c->lit[i].data = NULL;
    }
}
