/* The MIME layer on GMime 3 (see mime.h for what it extracts and why). */
#include "mime.h"
#include "mime_text.h"
#include "omni/util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

typedef struct { char *p; size_t len; } text_t;

/* What a walk over one message collects. */
typedef struct walk {
    bool want_atts;           /* the top-level message lists attachments; forwarded ones do not */
    bool have_body;
    text_t body;              /* owned */
    email_attachment_t *atts; /* owned */
    size_t n_atts, cap_atts;
    GMimeMessage **fwd;       /* forwarded messages in order; borrowed from the GMime tree */
    size_t n_fwd, cap_fwd;
} walk_t;

void email_mime_init(void) { g_mime_init(); }
void email_mime_shutdown(void) { g_mime_shutdown(); }

/* windows-1252's characters for bytes 0x80..0x9F (U+FFFD for the five it leaves undefined). */
static const unsigned short CP1252_C1[32] = {
    0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152,
    0xFFFD, 0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122,
    0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
};

/* Header values come back decoded by GMime; this guarantees valid UTF-8 on one line. GMime reads an
 * encoded-word labelled iso-8859-1 (latin1, ...) as ISO-8859-1 proper, so its bytes 0x80..0x9F come back
 * as C1 controls (U+0080..U+009F), which no header means: mail clients write windows-1252 under those
 * labels, and they are read as its characters (`=?iso-8859-1?Q?=80?=` is "€"), as in bodies. */
static char *one_line(const char *s)
{
    if (!s)
        return NULL;
    size_t len;
    char *in = mt_to_utf8("UTF-8", s, strlen(s), &len);
    char *u = omni_malloc(len + len / 2 + 1); /* a 2-byte C1 becomes at most 3 bytes */
    size_t w = 0;
    for (size_t r = 0; r < len; r++) {
        char c = in[r];
        if (c == '\r' || c == '\n')
            continue; /* unfolding: a folded line's break goes, its leading blank stays */
        if ((unsigned char)c == 0xC2 && r + 1 < len && (unsigned char)in[r + 1] >= 0x80 &&
            (unsigned char)in[r + 1] <= 0x9F) {
            unsigned cp = CP1252_C1[(unsigned char)in[++r] - 0x80];
            if (cp < 0x800) {
                u[w++] = (char)(0xC0 | cp >> 6);
                u[w++] = (char)(0x80 | (cp & 0x3F));
            } else {
                u[w++] = (char)(0xE0 | cp >> 12);
                u[w++] = (char)(0x80 | (cp >> 6 & 0x3F));
                u[w++] = (char)(0x80 | (cp & 0x3F));
            }
            continue;
        }
        u[w++] = c == '\t' ? ' ' : c;
    }
    free(in);
    while (w > 0 && u[w - 1] == ' ')
        w--;
    size_t lead = 0;
    while (lead < w && u[lead] == ' ')
        lead++;
    memmove(u, u + lead, w - lead);
    u[w - lead] = '\0';
    return u;
}

/* Rewrites the RFC 2047 B encoded-words of the headers of o named in names (NULL-ended) as Q words, which
 * GMime decodes right where it loses text of adjacent B words (mt_2047_b_to_q says how), then each run of
 * Q words as one UTF-8 word, converted as bodies are (mt_2047_q_to_utf8: U+FFFD for an undecodable byte,
 * not GMime's '?'). GMime re-reads a header whose raw value is set (subject, addresses, parameters).
 * Only what is read as text is rewritten: a part's content is untouched, and a forwarded message is
 * rewritten after its size was counted. */
static void fix_encoded_words(GMimeObject *o, const char *const names[])
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(o);
    int n = hl ? g_mime_header_list_get_count(hl) : 0;
    for (int i = 0; i < n; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *name = g_mime_header_get_name(h), *raw = g_mime_header_get_raw_value(h);
        bool wanted = false;
        for (size_t k = 0; names[k] && !wanted; k++)
            wanted = g_ascii_strcasecmp(name, names[k]) == 0;
        char *fixed = wanted && raw && (strstr(raw, "?B?") || strstr(raw, "?b?")) ? mt_2047_b_to_q(raw) : NULL;
        const char *now = fixed ? fixed : raw;
        char *utf8 = wanted && now && (strstr(now, "?Q?") || strstr(now, "?q?")) ? mt_2047_q_to_utf8(now) : NULL;
        if (utf8 || fixed)
            g_mime_header_set_raw_value(h, utf8 ? utf8 : fixed);
        free(utf8);
        free(fixed);
    }
}

static const char *const MESSAGE_WORDS[] = {"Subject", "From", "Sender", "Reply-To", "Return-Path", "To", NULL};
static const char *const PART_WORDS[] = {"Content-Disposition", "Content-Type", NULL};

static char *lower_type(GMimeObject *o)
{
    GMimeContentType *ct = g_mime_object_get_content_type(o);
    char *s = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
    char *r = omni_strdup(s ? s : "application/octet-stream");
    g_free(s);
    for (char *p = r; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return r;
}

static void add_att(walk_t *w, char *name, char *type, long long size)
{
    if (!w->want_atts) {
        free(name);
        free(type);
        return;
    }
    if (w->n_atts == w->cap_atts) {
        w->cap_atts = w->cap_atts ? w->cap_atts * 2 : 8;
        w->atts = omni_realloc(w->atts, w->cap_atts * sizeof *w->atts);
    }
    w->atts[w->n_atts++] = (email_attachment_t){.name = name, .type = type, .size = size};
}

/* The encoded bytes of a part's content where they are in memory (the parser's stream is a memory stream,
 * so each part's content is a window on the fetched message): false when they are not at hand. */
static bool encoded_window(GMimeDataWrapper *dw, const unsigned char **p, const unsigned char **e)
{
    GMimeStream *st = dw ? g_mime_data_wrapper_get_stream(dw) : NULL;
    if (!st || !GMIME_IS_STREAM_MEM(st) || !GMIME_STREAM_MEM(st)->buffer)
        return false;
    GByteArray *ba = GMIME_STREAM_MEM(st)->buffer;
    gint64 start = st->bound_start, end = st->bound_end < 0 ? (gint64)ba->len : st->bound_end;
    if (start < 0 || end > (gint64)ba->len || start > end)
        return false;
    *p = ba->data + start;
    *e = ba->data + end;
    return true;
}

static unsigned char b64_alphabet[256]; /* 1 for the base64 alphabet and '=' */

static void b64_alphabet_init(void)
{
    if (!b64_alphabet['A']) {
        const char *set = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
        for (const char *c = set; *c; c++)
            b64_alphabet[(unsigned char)*c] = 1;
    }
}

/* Base64 whose writer left out the padding ("SGk" for "Hi"): GMime's decoder drops the two or three
 * characters of the last, incomplete group, and with them the last one or two bytes of the text. Returns
 * how many bytes they make (0 when the text is padded or its groups are whole) and puts them in out. */
static size_t base64_tail(const unsigned char *p, const unsigned char *e, unsigned char out[2])
{
    b64_alphabet_init();
    size_t chars = 0;
    for (const unsigned char *q = p; q < e; q++) {
        if (*q == '=')
            return 0;
        chars += b64_alphabet[*q];
    }
    size_t r = chars % 4, k = r;
    if (r < 2)
        return 0;
    unsigned v[3] = {0};
    for (const unsigned char *q = e; q > p && k > 0;) {
        q--;
        if (b64_alphabet[*q])
            v[--k] = (unsigned)mt_b64_value(*q); /* no '=' here: an unpadded text was asked for */
    }
    out[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
    out[1] = (unsigned char)((v[1] & 0xF) << 4 | v[2] >> 2);
    return r - 1;
}

/* Decoded content of a leaf part. Caller frees the result (NUL-terminated) with g_free. */
static char *part_bytes(GMimePart *part, size_t *len)
{
    GMimeDataWrapper *dw = g_mime_part_get_content(part);
    GMimeStream *mem = g_mime_stream_mem_new();
    if (dw)
        g_mime_data_wrapper_write_to_stream(dw, mem);
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    const unsigned char *p, *e;
    unsigned char tail[2];
    size_t extra = dw && g_mime_data_wrapper_get_encoding(dw) == GMIME_CONTENT_ENCODING_BASE64 &&
                   encoded_window(dw, &p, &e) ? base64_tail(p, e, tail) : 0;
    *len = ba->len + extra;
    char *r = g_malloc(*len + 1);
    if (ba->len)
        memcpy(r, ba->data, ba->len);
    memcpy(r + ba->len, tail, extra);
    r[*len] = '\0';
    g_object_unref(mem);
    return r;
}

/* The decoded size of a base64 part's content counted on its encoded bytes: every four characters of the
 * base64 alphabet ('=' included) make three bytes, less one for each '=' among the last two, as GMime's
 * decoder makes them, and the bytes of an unpadded last group (base64_tail); other bytes (line ends) are
 * skipped, as it skips them. Decoding only to count (an attachment's bytes are not kept) was ~10 % of the
 * connector's instructions per mail (docs/benchmarks.md, figure 4). -1 when the bytes are not at hand. */
static long long base64_size(GMimeDataWrapper *dw)
{
    b64_alphabet_init();
    const unsigned char *p, *e;
    if (!encoded_window(dw, &p, &e))
        return -1;
    long long chars = 0;
    bool padded = false;
    for (const unsigned char *q = p; q < e; q++) {
        chars += b64_alphabet[*q];
        padded |= *q == '=';
    }
    long long n = chars / 4 * 3 + (!padded && chars % 4 >= 2 ? chars % 4 - 1 : 0);
    int last = 2;
    for (const unsigned char *q = e; q > p && last > 0;) {
        q--;
        if (b64_alphabet[*q]) {
            if (*q == '=' && n > 0)
                n--;
            last--;
        }
    }
    return n;
}

/* Bytes a writer produces for an object: the decoded size of a part, or the transmitted size of a
 * whole message, without holding them in memory. */
static long long counted_size(GMimeObject *o, bool decoded)
{
    if (decoded) {
        GMimeDataWrapper *dw = g_mime_part_get_content(GMIME_PART(o));
        long long n = dw && g_mime_data_wrapper_get_encoding(dw) == GMIME_CONTENT_ENCODING_BASE64 ?
                      base64_size(dw) : -1;
        if (n >= 0)
            return n;
    }
    GMimeStream *null = g_mime_stream_null_new();
    if (decoded) {
        GMimeDataWrapper *dw = g_mime_part_get_content(GMIME_PART(o));
        if (dw)
            g_mime_data_wrapper_write_to_stream(dw, null);
    } else {
        g_mime_object_write_to_stream(o, NULL, null);
    }
    long long n = (long long)GMIME_STREAM_NULL(null)->written;
    g_object_unref(null);
    return n;
}

/* The value of the parameter called name in l, the RFC 2231 form (name*=) first: a sender that writes both
 * puts an ASCII stand-in in the plain one (RFC 6266 4.3 has the starred one win). NULL when absent. */
static const char *param(GMimeParamList *l, const char *name)
{
    const char *plain = NULL;
    for (int i = 0; l && i < g_mime_param_list_length(l); i++) {
        GMimeParam *p = g_mime_param_list_get_parameter_at(l, i);
        if (g_ascii_strcasecmp(g_mime_param_get_name(p), name) != 0)
            continue;
        if (g_mime_param_get_encoding_method(p) == GMIME_PARAM_ENCODING_METHOD_RFC2231)
            return g_mime_param_get_value(p);
        if (!plain)
            plain = g_mime_param_get_value(p);
    }
    return plain;
}

/* A part's filename: Content-Disposition's filename, else Content-Type's name (param says which form). */
static const char *filename(GMimeObject *o)
{
    GMimeContentDisposition *d = g_mime_object_get_content_disposition(o);
    const char *fn = d ? param(g_mime_content_disposition_get_parameters(d), "filename") : NULL;
    if (!fn || !*fn) {
        GMimeContentType *ct = g_mime_object_get_content_type(o);
        fn = ct ? param(g_mime_content_type_get_parameters(ct), "name") : NULL;
    }
    return fn;
}

static bool is_type(GMimeObject *o, const char *type, const char *sub)
{
    GMimeContentType *ct = g_mime_object_get_content_type(o);
    return ct && g_mime_content_type_is_type(ct, type, sub);
}

static bool is_attachment(GMimeObject *o)
{
    GMimeContentDisposition *d = g_mime_object_get_content_disposition(o);
    return d && g_mime_content_disposition_is_attachment(d);
}

/* True when o is, or a multipart holding, a part of type text/sub that could be the body (not one marked
 * Content-Disposition: attachment). */
static bool holds(GMimeObject *o, const char *sub, int depth)
{
    if (depth > EMAIL_MIME_MAX_DEPTH)
        return false;
    if (GMIME_IS_MULTIPART(o)) {
        GMimeMultipart *mp = GMIME_MULTIPART(o);
        for (int i = 0; i < g_mime_multipart_get_count(mp); i++)
            if (holds(g_mime_multipart_get_part(mp, i), sub, depth + 1))
                return true;
        return false;
    }
    return GMIME_IS_PART(o) && is_type(o, "text", sub) && !is_attachment(o);
}

static void set_body(walk_t *w, GMimePart *part, bool html)
{
    size_t len;
    char *raw = part_bytes(part, &len);
    const char *cs = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
    char *u = mt_to_utf8(cs, raw, len, &len);
    g_free(raw);
    if (len >= 3 && memcmp(u, "\xEF\xBB\xBF", 3) == 0) {
        /* A byte-order mark the writer's editor put first (UTF-8 has no byte order): not text anyone wrote,
         * and invisible to an agent, it would only make a rule on the text's start miss. */
        len -= 3;
        memmove(u, u + 3, len + 1);
    }
    if (html) {
        char *t = mt_html_to_text(u, len);
        free(u);
        u = t;
        len = strlen(u);
    }
    mt_normalize_newlines(u, &len);
    const char *format = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "format");
    if (!html && format && g_ascii_strcasecmp(format, "flowed") == 0) {
        const char *delsp = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "delsp");
        char *t = mt_unflow(u, len, delsp && g_ascii_strcasecmp(delsp, "yes") == 0, &len);
        free(u);
        u = t;
    }
    w->body = (text_t){u, len};
    w->have_body = true;
}

/* A Content-Type with no "type/subtype" ("text", "", "foo; charset=utf-8") is invalid, and RFC 2045 5.2
 * says to read the part as the default, text/plain (as Python's email package does). GMime makes it
 * application/octet-stream, which would list the sender's text as a nameless file and leave the message
 * with no text. Its parameters (a charset) are kept. */
static void default_type(GMimeObject *o)
{
    const char *raw = g_mime_object_get_header(o, "Content-Type");
    if (!raw)
        return;
    size_t n = strcspn(raw, ";");
    if (memchr(raw, '/', n))
        return;
    GMimeContentType *ct = g_mime_object_get_content_type(o);
    if (!ct)
        return;
    g_mime_content_type_set_media_type(ct, "text");
    g_mime_content_type_set_media_subtype(ct, "plain");
}

static void walk(walk_t *w, GMimeObject *o, const char *section, int depth);

/* In an alternative not chosen: only the parts marked Content-Disposition: attachment, which are files the
 * sender attached, not another rendering of the text (Apple Mail puts the files of an HTML mail beside its
 * text/html, in the HTML alternative); listed, so that nothing is lost. */
static void walk_attached(walk_t *w, GMimeObject *o, const char *section, int depth)
{
    if (depth > EMAIL_MIME_MAX_DEPTH)
        return;
    if (GMIME_IS_MULTIPART(o)) {
        GMimeMultipart *mp = GMIME_MULTIPART(o);
        for (int i = 0; i < g_mime_multipart_get_count(mp); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s%s%d", section, *section ? "." : "", i + 1);
            walk_attached(w, g_mime_multipart_get_part(mp, i), sub, depth + 1);
        }
        return;
    }
    if (GMIME_IS_PART(o) && is_attachment(o))
        walk(w, o, section, depth);
}

/* Every child in order: in multipart/mixed, /related (its root comes first), /report, /signed... the
 * first text part is the body and the rest are attachments. */
static void walk_children(walk_t *w, GMimeMultipart *mp, const char *section, int depth)
{
    for (int i = 0; i < g_mime_multipart_get_count(mp); i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s%d", section, *section ? "." : "", i + 1);
        walk(w, g_mime_multipart_get_part(mp, i), sub, depth + 1);
    }
}

static void walk(walk_t *w, GMimeObject *o, const char *section, int depth)
{
    const char *sec = *section ? section : "1";
    if (depth > EMAIL_MIME_MAX_DEPTH) {
        add_att(w, omni_asprintf("part-%s", sec), lower_type(o), counted_size(o, false));
        return;
    }
    if (GMIME_IS_MULTIPART(o)) {
        GMimeMultipart *mp = GMIME_MULTIPART(o);
        int n = g_mime_multipart_get_count(mp);
        if (n == 0) {
            /* No boundary found: GMime keeps the text as the preface. Read it as the text/plain it is. */
            const char *pre = g_mime_multipart_get_prologue(mp);
            if (!w->have_body && pre) {
                size_t len;
                char *u = mt_to_utf8(NULL, pre, strlen(pre), &len);
                mt_normalize_newlines(u, &len);
                w->body = (text_t){u, len};
                w->have_body = true;
            }
            return;
        }
        if (is_type(o, "multipart", "alternative") && !w->have_body) {
            int pick = n - 1;
            for (int i = n - 1; i >= 0; i--) /* the first alternative holding html, then plain, wins */
                if (holds(g_mime_multipart_get_part(mp, i), "html", depth))
                    pick = i;
            for (int i = n - 1; i >= 0; i--)
                if (holds(g_mime_multipart_get_part(mp, i), "plain", depth))
                    pick = i;
            for (int i = 0; i < n; i++) {
                char sub[256];
                snprintf(sub, sizeof sub, "%s%s%d", section, *section ? "." : "", i + 1);
                if (i == pick)
                    walk(w, g_mime_multipart_get_part(mp, i), sub, depth + 1);
                else
                    walk_attached(w, g_mime_multipart_get_part(mp, i), sub, depth + 1);
            }
            return;
        }
        walk_children(w, mp, section, depth);
        return;
    }
    if (GMIME_IS_MESSAGE_PART(o)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
        /* its size as transmitted, then its headers rewritten to be read (fix_encoded_words) */
        long long size = inner ? counted_size(GMIME_OBJECT(inner), false) : 0;
        fix_encoded_words(o, PART_WORDS);
        if (inner)
            fix_encoded_words(GMIME_OBJECT(inner), MESSAGE_WORDS);
        GMimeContentDisposition *d = g_mime_object_get_content_disposition(o);
        const char *fn = d ? param(g_mime_content_disposition_get_parameters(d), "filename") : NULL;
        const char *subj = inner ? g_mime_message_get_subject(inner) : NULL;
        char *name = fn ? omni_strdup(fn) : subj && *subj ? omni_asprintf("%s.eml", subj)
                                                          : omni_asprintf("part-%s.eml", sec);
        add_att(w, one_line(name), lower_type(o), size);
        free(name);
        if (inner) {
            if (w->n_fwd == w->cap_fwd) {
                w->cap_fwd = w->cap_fwd ? w->cap_fwd * 2 : 4;
                w->fwd = omni_realloc(w->fwd, w->cap_fwd * sizeof *w->fwd);
            }
            w->fwd[w->n_fwd++] = inner;
        }
        return;
    }
    if (!GMIME_IS_PART(o))
        return; /* GMime only builds multiparts, message parts and parts; nothing else to read */
    default_type(o);
    GMimePart *part = GMIME_PART(o);
    bool plain = is_type(o, "text", "plain"), html = is_type(o, "text", "html");
    if (!w->have_body && (plain || html) && !is_attachment(o)) {
        set_body(w, part, html);
        return;
    }
    fix_encoded_words(o, PART_WORDS);
    const char *fn = filename(o);
    char *name = fn && *fn ? one_line(fn) : omni_asprintf("part-%s", sec);
    add_att(w, name, lower_type(o), counted_size(o, true));
}

static void text_add(text_t *t, const char *s, size_t n)
{
    t->p = omni_realloc(t->p, t->len + n + 1);
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void header_line(text_t *t, const char *label, const char *value)
{
    char *v = one_line(value);
    if (v && *v) {
        text_add(t, label, strlen(label));
        text_add(t, v, strlen(v));
        text_add(t, "\n", 1);
    }
    free(v);
}

/* Text of a message: its body, then each forwarded message's headers and text, recursively. */
static text_t message_text(GMimeMessage *m, walk_t *w, int depth)
{
    GMimeObject *top = g_mime_message_get_mime_part(m);
    if (top)
        walk(w, top, "", depth);
    text_t t = w->body;
    w->body = (text_t){NULL, 0};
    if (!t.p)
        text_add(&t, "", 0);
    for (size_t i = 0; i < w->n_fwd; i++) {
        GMimeMessage *in = w->fwd[i];
        text_add(&t, t.len ? "\n\n" : "", t.len ? 2 : 0);
        static const char SEP[] = "---------- Forwarded message ----------\n";
        text_add(&t, SEP, sizeof SEP - 1);
        GMimeObject *io = GMIME_OBJECT(in);
        InternetAddressList *from = g_mime_message_get_from(in);
        char *fs = from && internet_address_list_length(from) > 0
                       ? internet_address_list_to_string(from, NULL, FALSE) : NULL;
        header_line(&t, "From: ", fs);
        g_free(fs);
        header_line(&t, "Date: ", g_mime_object_get_header(io, "Date"));
        header_line(&t, "Subject: ", g_mime_message_get_subject(in));
        InternetAddressList *to = g_mime_message_get_to(in);
        char *ts = to && internet_address_list_length(to) > 0
                       ? internet_address_list_to_string(to, NULL, FALSE) : NULL;
        header_line(&t, "To: ", ts);
        g_free(ts);
        text_add(&t, "\n", 1);
        walk_t sub = {.want_atts = false};
        text_t it = depth < EMAIL_MIME_MAX_DEPTH ? message_text(in, &sub, depth + 1) : (text_t){0};
        if (it.p)
            text_add(&t, it.p, it.len);
        free(it.p);
        free(sub.fwd);
    }
    return t;
}

/* The first "<local@domain>" in s (no blank or bracket inside), without its brackets; NULL when none.
 * GMime's references parser gives up at the first word of a phrase it cannot read ("Your message of
 * Mon, 1 Jan 2024 ... <id>", "Re: your mail <id>": RFC 5322's obs-in-reply-to, which older clients and
 * list servers still write), and the msg-id after it would be lost with the thread. */
static char *bracketed_id(const char *s)
{
    for (const char *lt = strchr(s, '<'); lt; lt = strchr(lt + 1, '<')) {
        size_t n = strcspn(lt + 1, "<> \t\r\n");
        if (n > 0 && lt[1 + n] == '>' && memchr(lt + 1, '@', n)) {
            char *id = omni_malloc(n + 1);
            memcpy(id, lt + 1, n);
            id[n] = '\0';
            char *r = one_line(id);
            free(id);
            return r;
        }
    }
    return NULL;
}

/* First msg-id of a References or In-Reply-To value, without brackets. Caller frees. */
static char *first_id(GMimeParserOptions *opts, const char *value)
{
    if (!value)
        return NULL;
    GMimeReferences *refs = g_mime_references_parse(opts, value);
    char *r = NULL;
    if (refs && g_mime_references_length(refs) > 0)
        r = one_line(g_mime_references_get_message_id(refs, 0));
    if (refs)
        g_mime_references_free(refs);
    return r ? r : bracketed_id(value);
}

/* The first mailbox of an address list (a group's first member) that has a domain: "From: xx" names
 * nobody an agent could answer, and the next header may. */
static InternetAddressMailbox *first_mailbox(InternetAddressList *l)
{
    for (int i = 0; l && i < internet_address_list_length(l); i++) {
        InternetAddress *a = internet_address_list_get_address(l, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
            const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
            if (addr && strchr(addr, '@'))
                return INTERNET_ADDRESS_MAILBOX(a);
            continue;
        }
        if (INTERNET_ADDRESS_IS_GROUP(a)) {
            InternetAddressMailbox *m = first_mailbox(internet_address_group_get_members(
                INTERNET_ADDRESS_GROUP(a)));
            if (m)
                return m;
        }
    }
    return NULL;
}

/* From, else Sender, else Reply-To, else Return-Path: the sender an agent can answer. */
static void sender(GMimeMessage *m, GMimeParserOptions *opts, email_parsed_t *r)
{
    InternetAddressList *lists[] = {g_mime_message_get_from(m), g_mime_message_get_sender(m),
                                    g_mime_message_get_reply_to(m)};
    InternetAddressList *rp = NULL;
    const char *rph = g_mime_object_get_header(GMIME_OBJECT(m), "Return-Path");
    if (rph)
        rp = internet_address_list_parse(opts, rph);
    InternetAddressMailbox *mb = NULL;
    for (size_t i = 0; i < 3 && !mb; i++)
        mb = first_mailbox(lists[i]);
    if (!mb)
        mb = first_mailbox(rp);
    if (mb) {
        const char *addr = internet_address_mailbox_get_addr(mb);
        const char *name = internet_address_get_name(INTERNET_ADDRESS(mb));
        r->from_addr = addr && *addr ? one_line(addr) : NULL;
        r->from_name = name && *name ? one_line(name) : NULL;
    } else {
        /* "From: not an address", "From: undisclosed-recipients:;": the first header there, as written, so
         * that meta.no_sender_reason says what is wrong with it rather than that there was none. */
        static const char *const HEADERS[] = {"From", "Sender", "Reply-To", "Return-Path"};
        for (size_t i = 0; i < 4 && !r->from_addr; i++)
            r->from_addr = one_line(g_mime_object_get_header(GMIME_OBJECT(m), HEADERS[i]));
    }
    if (rp)
        g_object_unref(rp);
}

email_parsed_t *email_parse(const char *raw, size_t len)
{
    GMimeParserOptions *opts = g_mime_parser_options_new();
    /* Raw 8-bit header bytes: UTF-8 when valid, else the Western legacy charset (as for bodies). */
    const char *fallback[] = {"UTF-8", "windows-1252", NULL};
    g_mime_parser_options_set_fallback_charsets(opts, fallback);
    g_mime_parser_options_set_rfc2047_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(raw, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(st);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    GMimeMessage *m = g_mime_parser_construct_message(parser, opts);
    g_object_unref(parser);
    g_object_unref(st);
    email_parsed_t *r = omni_calloc(1, sizeof *r);
    if (!m) {
        /* Not even a header block (GMime found none): the bytes are all we have; keep them as text. */
        r->text = mt_to_utf8(NULL, raw, len, &r->text_len);
        mt_normalize_newlines(r->text, &r->text_len);
        g_mime_parser_options_free(opts);
        return r;
    }
    GMimeObject *mo = GMIME_OBJECT(m);
    fix_encoded_words(mo, MESSAGE_WORDS);
    const char *subject = g_mime_message_get_subject(m);
    r->subject = subject ? one_line(subject) : NULL;
    sender(m, opts, r);
    const char *mid = g_mime_message_get_message_id(m);
    r->message_id = mid && *mid ? one_line(mid) : NULL;
    r->in_reply_to = first_id(opts, g_mime_object_get_header(mo, "In-Reply-To"));
    char *root = first_id(opts, g_mime_object_get_header(mo, "References"));
    r->thread = root ? root : r->in_reply_to ? omni_strdup(r->in_reply_to)
                            : r->message_id ? omni_strdup(r->message_id) : NULL;
    GDateTime *date = g_mime_message_get_date(m);
    if (date) {
        r->has_date = true;
        r->date_ms = (int64_t)g_date_time_to_unix(date) * 1000 + g_date_time_get_microsecond(date) / 1000;
    } else {
        r->bad_date = g_mime_object_get_header(mo, "Date") != NULL;
    }

    walk_t w = {.want_atts = true};
    text_t t = message_text(m, &w, 0);
    r->text = t.p;
    r->text_len = t.len;
    r->atts = w.atts;
    r->n_atts = w.n_atts;
    free(w.fwd);

    GMimeObject *top = g_mime_message_get_mime_part(m);
    char *ctype = top ? lower_type(top) : NULL;
    const char *report = top ? g_mime_object_get_content_type_parameter(top, "report-type") : NULL;
    const char *autoreply = g_mime_object_get_header(mo, "X-Autoreply");
    if (!autoreply)
        autoreply = g_mime_object_get_header(mo, "X-Autorespond");
    const char *why = NULL;
    /* With no usable sender, from_addr is a header as written: the bounce rule reads the From mailbox's
     * address as GMime parsed it ("MAILER-DAEMON" of "Mail Delivery System <MAILER-DAEMON>"). */
    const char *bounce_addr = r->from_addr;
    InternetAddressList *fl = r->from_addr && !strchr(r->from_addr, '@') ? g_mime_message_get_from(m) : NULL;
    if (fl && internet_address_list_length(fl) > 0 &&
        INTERNET_ADDRESS_IS_MAILBOX(internet_address_list_get_address(fl, 0)))
        bounce_addr = internet_address_mailbox_get_addr(
            INTERNET_ADDRESS_MAILBOX(internet_address_list_get_address(fl, 0)));
    r->auto_kind = email_classify(ctype, report, bounce_addr, g_mime_object_get_header(mo, "Auto-Submitted"),
                                  autoreply, g_mime_object_get_header(mo, "Precedence"),
                                  g_mime_object_get_header(mo, "List-Unsubscribe"), &why);
    if (why && strcmp(why, "X-Autoreply") == 0 && !g_mime_object_get_header(mo, "X-Autoreply"))
        why = "X-Autorespond"; /* the reason names the header that is there */
    r->auto_reason = r->auto_kind ? why : NULL;
    free(ctype);
    g_object_unref(m);
    g_mime_parser_options_free(opts);
    return r;
}

void email_parsed_destroy(email_parsed_t **pp)
{
    if (!pp || !*pp)
        return;
    email_parsed_t *p = *pp;
    free(p->subject);
    free(p->from_addr);
    free(p->from_name);
    free(p->message_id);
    free(p->in_reply_to);
    free(p->thread);
    free(p->text);
    for (size_t i = 0; i < p->n_atts; i++) {
        free(p->atts[i].name);
        free(p->atts[i].type);
    }
    free(p->atts);
    free(p);
    *pp = NULL;
}
