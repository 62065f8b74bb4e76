/* Charset conversion and text normalization for the email connector (see mime_text.h). */
#include "mime_text.h"
#include "omni/log.h"
#include "omni/util.h"

#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

/* A growing byte buffer; always NUL-terminated once anything was appended. */
typedef struct { char *p; size_t len, cap; } buf_t;

static void buf_reserve(buf_t *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->p = omni_realloc(b->p, cap);
    b->cap = cap;
}

static void buf_add(buf_t *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Labels whose bytes mail clients (and browsers, per the WHATWG Encoding standard) read with a superset:
 * mail that says iso-8859-1 is routinely windows-1252, and Korean mail labelled ks_c_5601-1987 is CP949. */
static const struct { const char *label, *iconv_name; } ALIASES[] = {
    {"us-ascii", "WINDOWS-1252"}, {"ascii", "WINDOWS-1252"}, {"iso-8859-1", "WINDOWS-1252"},
    {"iso8859-1", "WINDOWS-1252"}, {"latin1", "WINDOWS-1252"}, {"iso-8859-9", "WINDOWS-1254"},
    {"ks_c_5601-1987", "CP949"}, {"ks_c_5601", "CP949"}, {"ksc5601", "CP949"}, {"euc-kr", "CP949"},
    {"gb2312", "GBK"}, {"x-gbk", "GBK"}, {"tis-620", "CP874"}, {"shift_jis", "CP932"}, {"sjis", "CP932"},
    {"x-sjis", "CP932"}, {"utf8", "UTF-8"},
};

/* Converts with iconv from the named charset; returns false when iconv does not know it. */
static bool convert(const char *from, const char *in, size_t len, buf_t *out)
{
    iconv_t cd = iconv_open("UTF-8", from);
    if (cd == (iconv_t)-1)
        return false;
    char *src = (char *)in;
    size_t left = len;
    buf_reserve(out, len + 16);
    while (left > 0) {
        char *dst = out->p + out->len;
        size_t room = out->cap - out->len - 1;
        size_t r = iconv(cd, &src, &left, &dst, &room);
        out->len = (size_t)(dst - out->p);
        if (r != (size_t)-1)
            break;
        if (errno == E2BIG) {
            buf_reserve(out, left * 4 + 16);
        } else if (errno == EILSEQ) {
            /* One undecodable byte becomes one U+FFFD; the decoder resynchronizes on the next byte. */
            buf_add(out, REPLACEMENT, 3);
            src++;
            left--;
        } else { /* EINVAL: the input ends inside a character */
            buf_add(out, REPLACEMENT, 3);
            break;
        }
    }
    /* Stateful encodings (ISO-2022-JP) may owe a final shift sequence; harmless for others. */
    for (;;) {
        buf_reserve(out, 16);
        char *dst = out->p + out->len;
        size_t room = out->cap - out->len - 1;
        size_t r = iconv(cd, NULL, NULL, &dst, &room);
        out->len = (size_t)(dst - out->p);
        if (r != (size_t)-1 || errno != E2BIG)
            break;
    }
    out->p[out->len] = '\0';
    iconv_close(cd);
    return true;
}

static bool ascii_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

char *mt_to_utf8(const char *charset, const char *in, size_t len, size_t *outlen)
{
    buf_t out = {0};
    buf_reserve(&out, len);
    out.p[0] = '\0';
    const char *name = NULL;
    if (charset && *charset) {
        for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0] && !name; i++)
            if (strcasecmp(charset, ALIASES[i].label) == 0)
                name = ALIASES[i].iconv_name;
        if (!name)
            name = g_mime_charset_iconv_name(charset); /* GMime's table of MIME names to iconv names */
    }
    /* Text that is already what iconv would make of it is copied: ASCII in a charset that is ASCII
     * below 0x80 (the aliases' targets, ISO-8859-n), or valid UTF-8 labelled UTF-8. Most mail is one or
     * the other, and an iconv_open per part was ~15 % of the text conversion's cost. */
    if (name && !memchr(in, '\0', len) &&
        ((strcasecmp(name, "UTF-8") == 0 && omni_utf8_valid(in, len, NULL)) ||
         ((strncasecmp(name, "WINDOWS-125", 11) == 0 || strncasecmp(name, "ISO-8859-", 9) == 0) &&
          ascii_only(in, len)))) {
        buf_add(&out, in, len);
        if (outlen)
            *outlen = out.len;
        return out.p;
    }
    bool done = name && convert(name, in, len, &out);
    if (!done) {
        out.len = 0;
        /* No usable label: 8-bit mail without one is UTF-8 today, or else a Western legacy charset. */
        if (!convert(omni_utf8_valid(in, len, NULL) ? "UTF-8" : "WINDOWS-1252", in, len, &out))
            omni_panic("iconv cannot convert UTF-8 or WINDOWS-1252");
    }
    /* A NUL would end the text early for every C string and JSON consumer: it is undecodable too. And
     * glibc's UTF-8 decoder passes sequences above U+10FFFF (F5..F7 lead bytes) through, which no JSON
     * consumer accepts (found by fuzzing, tests/fuzz/regressions/mime): each such byte is one U+FFFD. */
    size_t bad;
    if (memchr(out.p, '\0', out.len) || !omni_utf8_valid(out.p, out.len, &bad)) {
        buf_t clean = {0};
        buf_add(&clean, "", 0);
        for (size_t i = 0; i < out.len;) {
            size_t ok = omni_utf8_valid(out.p + i, out.len - i, &bad) ? out.len - i : bad;
            const char *nul = memchr(out.p + i, '\0', ok);
            if (nul)
                ok = (size_t)(nul - (out.p + i));
            buf_add(&clean, out.p + i, ok);
            if (i + ok < out.len)
                buf_add(&clean, REPLACEMENT, 3);
            i += ok + 1;
        }
        free(out.p);
        out = clean;
    }
    if (outlen)
        *outlen = out.len;
    return out.p;
}

int mt_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : c == '=' ? 64 : -1;
}

/* Where the text of an encoded word of encoding enc ('B' or 'Q', either case) starts at s ("=?cs?E?"), 0 when s
 * does not start one; *cs, *cs_len: the charset (with its *language). */
static size_t word_text(const char *s, char enc, const char **cs, size_t *cs_len)
{
    if (s[0] != '=' || s[1] != '?')
        return 0;
    size_t i = 2;
    while (s[i] && s[i] != '?' && (unsigned char)s[i] > ' ' && (unsigned char)s[i] < 0x7F)
        i++;
    if (i == 2 || s[i] != '?' || (s[i + 1] != enc && s[i + 1] != enc + ('a' - 'A')) || s[i + 2] != '?')
        return 0;
    *cs = s + 2;
    *cs_len = i - 2;
    return i + 3;
}

/* Length of the B encoded-word at s ("=?cs?B?text?="), 0 when s does not start one. *cs, *cs_len: the
 * charset (with its *language); *text, *text_len: the encoded text. */
static size_t b_word(const char *s, const char **cs, size_t *cs_len, const char **text, size_t *text_len)
{
    size_t t = word_text(s, 'B', cs, cs_len), e = t;
    if (t == 0)
        return 0;
    while (s[e] && mt_b64_value((unsigned char)s[e]) >= 0)
        e++;
    if (s[e] != '?' || s[e + 1] != '=')
        return 0; /* not a well-formed word (a blank or a stray byte inside): left to GMime as it is */
    *text = s + t;
    *text_len = e - t;
    return e + 2;
}

char *mt_2047_b_to_q(const char *s)
{
    buf_t out = {0};
    bool any = false;
    for (const char *p = s; *p;) {
        const char *cs, *text;
        size_t cs_len, text_len, n = b_word(p, &cs, &cs_len, &text, &text_len);
        if (n == 0) {
            buf_add(&out, p, 1);
            p++;
            continue;
        }
        any = true;
        buf_add(&out, "=?", 2);
        buf_add(&out, cs, cs_len);
        buf_add(&out, "?Q?", 3);
        unsigned acc = 0, bits = 0;
        for (size_t i = 0; i < text_len; i++) {
            int v = mt_b64_value((unsigned char)text[i]);
            if (v == 64)
                break; /* padding: the word's bytes are all out */
            acc = (acc << 6 | (unsigned)v) & 0xFFFFFF;
            bits += 6;
            if (bits >= 8) {
                char q[4];
                bits -= 8;
                snprintf(q, sizeof q, "=%02X", acc >> bits & 0xFF);
                buf_add(&out, q, 3);
            }
        }
        buf_add(&out, "?=", 2);
        p += n;
    }
    if (!any) {
        free(out.p);
        return NULL;
    }
    return out.p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Length of the Q encoded-word at s ("=?cs?Q?text?="), 0 when s does not start one; as b_word. *bad
 * (may be NULL: then such a word is no word) is set when its text has an '=' not followed by two hex
 * digits: a malformed word, which stays as written. */
static size_t q_word(const char *s, const char **cs, size_t *cs_len, const char **text, size_t *text_len,
                     bool *bad)
{
    size_t t = word_text(s, 'Q', cs, cs_len), e = t;
    if (t == 0)
        return 0;
    while (s[e] && s[e] != '?' && (unsigned char)s[e] > ' ' && (unsigned char)s[e] < 0x7F)
        e++;
    if (s[e] != '?' || s[e + 1] != '=')
        return 0;
    bool broken = false;
    for (size_t k = t; k < e; k++)
        if (s[k] == '=' && (k + 2 >= e || hexval(s[k + 1]) < 0 || hexval(s[k + 2]) < 0))
            broken = true;
    if (broken && !bad)
        return 0;
    if (bad)
        *bad = broken;
    *text = s + t;
    *text_len = e - t;
    return e + 2;
}

/* The charset of a word without its RFC 2231 *language, compared without regard to case. */
static bool same_charset(const char *a, size_t alen, const char *b, size_t blen)
{
    const char *s = memchr(a, '*', alen), *t = memchr(b, '*', blen);
    alen = s ? (size_t)(s - a) : alen;
    blen = t ? (size_t)(t - b) : blen;
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if ((a[i] | 0x20) != (b[i] | 0x20))
            return false;
    return true;
}

/* GMime drops the blanks between two encoded-words. Next to a malformed word (written as a word of its own
 * text) they are text, not the space between words: the blanks at the end of out are taken off it when
 * the word before them or the word about to be written is malformed (pull), and written inside the new
 * word (their line breaks go, as unfolding takes them). Returns how many blanks were taken. */
static size_t take_blanks(buf_t *out, int prev, bool pull)
{
    size_t k = 0;
    while (k < out->len && strchr(" \t\r\n", out->p[out->len - 1 - k]))
        k++;
    if (prev == 0 || !pull || k == 0)
        return 0;
    size_t blanks = 0;
    for (size_t i = out->len - k; i < out->len; i++)
        blanks += out->p[i] == ' ' || out->p[i] == '\t';
    out->len -= k;
    out->p[out->len] = '\0';
    return blanks;
}

char *mt_2047_q_to_utf8(const char *s)
{
    buf_t out = {0};
    bool any = false;
    int prev = 0; /* what was written last, blanks aside: 0 text, 1 a word, 2 a malformed word */
    for (const char *p = s; *p;) {
        const char *cs, *text;
        bool bad = false;
        size_t cs_len = 0, text_len = 0, n = q_word(p, &cs, &cs_len, &text, &text_len, &bad);
        if (n && bad) {
            /* Stays as written: given to GMime as a word whose text is the word itself (GMime would drop
             * it, or decode what it can of it). */
            size_t blanks = take_blanks(&out, prev, true);
            buf_add(&out, "=?UTF-8?Q?", 10);
            while (blanks--)
                buf_add(&out, "_", 1);
            for (size_t i = 0; i < n; i++) {
                char e[4];
                snprintf(e, sizeof e, "=%02X", (unsigned char)p[i]);
                buf_add(&out, e, 3);
            }
            buf_add(&out, "?=", 2);
            any = true;
            prev = 2;
            p += n;
            continue;
        }
        const char *star = n ? memchr(cs, '*', cs_len) : NULL;
        size_t label = star ? (size_t)(star - cs) : cs_len;
        char name[64];
        if (n == 0 || label == 0 || label >= sizeof name) {
            if (!strchr(" \t\r\n", *p))
                prev = 0;
            buf_add(&out, p, 1);
            p++;
            continue;
        }
        memcpy(name, cs, label);
        name[label] = '\0';
        if (strcasecmp(name, "us-ascii") == 0 || strcasecmp(name, "ascii") == 0) {
            buf_add(&out, p, n); /* 8-bit bytes under these labels are '?' (docs/connectors.md): GMime's reading */
            prev = 1;
            p += n;
            continue;
        }
        /* The run of adjacent words of this charset (only blanks between them), decoded as one: a
         * character split across two words is whole again. */
        buf_t bytes = {0};
        const char *q = p;
        for (;;) {
            for (size_t i = 0; i < text_len; i++) {
                int hi, lo;
                if (text[i] == '_')
                    buf_add(&bytes, " ", 1);
                else if (text[i] == '=' && i + 2 < text_len && (hi = hexval(text[i + 1])) >= 0 &&
                         (lo = hexval(text[i + 2])) >= 0) { /* always so: q_word checked */
                    char c = (char)(hi << 4 | lo);
                    buf_add(&bytes, &c, 1);
                    i += 2;
                } else
                    buf_add(&bytes, &text[i], 1);
            }
            q += n;
            const char *r = q;
            while (*r == ' ' || *r == '\t' || *r == '\r' || *r == '\n')
                r++;
            const char *cs2, *text2;
            size_t cs2_len, text2_len, n2 = q_word(r, &cs2, &cs2_len, &text2, &text2_len, NULL);
            if (n2 == 0 || !same_charset(cs, cs_len, cs2, cs2_len))
                break;
            q = r;
            n = n2;
            text = text2;
            text_len = text2_len;
        }
        size_t ulen;
        char *u = mt_to_utf8(name, bytes.p ? bytes.p : "", bytes.len, &ulen);
        free(bytes.p);
        size_t blanks = take_blanks(&out, prev, prev == 2);
        buf_add(&out, "=?UTF-8?Q?", 10);
        while (blanks--)
            buf_add(&out, "_", 1);
        for (size_t i = 0; i < ulen; i++) {
            unsigned char c = (unsigned char)u[i];
            char e[4];
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
                buf_add(&out, (const char *)&u[i], 1);
            else if (c == ' ')
                buf_add(&out, "_", 1);
            else {
                snprintf(e, sizeof e, "=%02X", c);
                buf_add(&out, e, 3);
            }
        }
        buf_add(&out, "?=", 2);
        free(u);
        any = true;
        prev = 1;
        p = q;
    }
    if (!any) {
        free(out.p);
        return NULL;
    }
    return out.p;
}

void mt_normalize_newlines(char *s, size_t *len)
{
    size_t w = 0;
    for (size_t r = 0; r < *len; r++) {
        if (s[r] == '\r') {
            s[w++] = '\n';
            if (r + 1 < *len && s[r + 1] == '\n')
                r++;
        } else {
            s[w++] = s[r];
        }
    }
    s[w] = '\0';
    *len = w;
}

size_t mt_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    /* Back off continuation bytes (10xxxxxx): the cut then falls just before a lead byte. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* ---- format=flowed (RFC 3676) ---- */

char *mt_unflow(const char *s, size_t len, bool delsp, size_t *outlen)
{
    buf_t out = {0};
    buf_add(&out, "", 0);
    long open = -1; /* quote depth of the flowed line being continued; -1 when none */
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(s + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - s) : len, p = i, depth = 0;
        while (p < end && s[p] == '>')
            depth++, p++;
        if (p < end && s[p] == ' ')
            p++; /* space-stuffing (4.4), removed after the quote marks are counted (4.5) */
        size_t n = end - p;
        bool sig = n == 3 && memcmp(s + p, "-- ", 3) == 0;
        bool flowed = !sig && n > 0 && s[end - 1] == ' ';
        if (open >= 0 && ((size_t)open != depth || sig)) {
            buf_add(&out, "\n", 1); /* a flowed line before another depth, or the separator, is fixed */
            open = -1;
        }
        if (open < 0) {
            for (size_t d = 0; d < depth; d++)
                buf_add(&out, ">", 1);
            if (depth > 0 && n > 0)
                buf_add(&out, " ", 1);
        }
        buf_add(&out, s + p, flowed && delsp ? n - 1 : n);
        open = flowed ? (long)depth : -1;
        if (!flowed && nl)
            buf_add(&out, "\n", 1);
        i = nl ? end + 1 : len;
    }
    if (open >= 0 && len > 0 && s[len - 1] == '\n')
        buf_add(&out, "\n", 1); /* the text ended on a flowed line: keep its final newline */
    if (outlen)
        *outlen = out.len;
    return out.p;
}

/* ---- HTML to text ---- */

static const char *const LATIN1[96] = { /* U+00A0 .. U+00FF */
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf", "laquo",
    "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro", "para", "middot",
    "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc",
    "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute", "Ecirc", "Euml", "Igrave", "Iacute",
    "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute", "Ocirc", "Otilde", "Ouml", "times", "Oslash",
    "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute", "THORN", "szlig", "agrave", "aacute", "acirc", "atilde",
    "auml", "aring", "aelig", "ccedil", "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc",
    "iuml", "eth", "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave",
    "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml",
};

static const struct { const char *name; unsigned cp; } NAMED[] = {
    {"quot", 34}, {"amp", 38}, {"apos", 39}, {"lt", 60}, {"gt", 62}, {"OElig", 338}, {"oelig", 339},
    {"Scaron", 352}, {"scaron", 353}, {"Yuml", 376}, {"fnof", 402}, {"circ", 710}, {"tilde", 732},
    {"ensp", 8194}, {"emsp", 8195}, {"thinsp", 8201}, {"zwnj", 8204}, {"zwj", 8205}, {"lrm", 8206},
    {"rlm", 8207}, {"ndash", 8211}, {"mdash", 8212}, {"lsquo", 8216}, {"rsquo", 8217}, {"sbquo", 8218},
    {"ldquo", 8220}, {"rdquo", 8221}, {"bdquo", 8222}, {"dagger", 8224}, {"Dagger", 8225}, {"bull", 8226},
    {"hellip", 8230}, {"permil", 8240}, {"prime", 8242}, {"Prime", 8243}, {"lsaquo", 8249},
    {"rsaquo", 8250}, {"oline", 8254}, {"frasl", 8260}, {"euro", 8364}, {"trade", 8482}, {"larr", 8592},
    {"uarr", 8593}, {"rarr", 8594}, {"darr", 8595}, {"harr", 8596}, {"minus", 8722}, {"infin", 8734},
    {"asymp", 8776}, {"ne", 8800}, {"le", 8804}, {"ge", 8805},
};

static void add_cp(buf_t *b, unsigned cp)
{
    char u[4];
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        buf_add(b, REPLACEMENT, 3);
    } else if (cp < 0x80) {
        u[0] = (char)cp;
        buf_add(b, u, 1);
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6); u[1] = (char)(0x80 | (cp & 0x3F));
        buf_add(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12); u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        buf_add(b, u, 3);
    } else {
        u[0] = (char)(0xF0 | cp >> 18); u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F));
        buf_add(b, u, 4);
    }
}

/* Decodes the character reference at s[0] == '&'. Returns its code point and sets *used, or 0 when it
 * is not a reference we know (then the '&' is text). */
static unsigned entity(const char *s, size_t len, size_t *used)
{
    size_t semi = 1;
    while (semi < len && semi < 12 && s[semi] != ';')
        semi++;
    if (semi >= len || s[semi] != ';' || semi == 1)
        return 0;
    *used = semi + 1;
    if (s[1] == '#') {
        bool hex = semi > 2 && (s[2] == 'x' || s[2] == 'X');
        unsigned long v = 0;
        size_t i = hex ? 3 : 2;
        if (i == semi)
            return 0;
        for (; i < semi; i++) {
            char c = s[i];
            int d = c >= '0' && c <= '9' ? c - '0' : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0)
                return 0;
            v = v * (hex ? 16 : 10) + (unsigned long)d;
            if (v > 0x10FFFF)
                v = 0x110000; /* stays out of range: add_cp writes U+FFFD */
        }
        return v ? (unsigned)v : 0xFFFD;
    }
    size_t n = semi - 1;
    for (size_t i = 0; i < 96; i++)
        if (strlen(LATIN1[i]) == n && memcmp(LATIN1[i], s + 1, n) == 0)
            return i == 0 ? ' ' : 0xA0 + (unsigned)i; /* nbsp reads as a plain space */
    for (size_t i = 0; i < sizeof NAMED / sizeof NAMED[0]; i++)
        if (strlen(NAMED[i].name) == n && memcmp(NAMED[i].name, s + 1, n) == 0)
            return NAMED[i].cp;
    return 0;
}

static bool tag_in(const char *name, const char *list)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ' ');
        size_t m = e ? (size_t)(e - p) : strlen(p);
        if (m == n && strncasecmp(p, name, n) == 0)
            return true;
        p += m + (e != NULL);
    }
    return false;
}

/* Ends the current line (and leaves a blank one when para) unless the output already does. */
static void line_break(buf_t *b, bool para)
{
    if (b->len == 0)
        return;
    if (b->p[b->len - 1] != '\n')
        buf_add(b, "\n", 1);
    if (para && (b->len < 2 || b->p[b->len - 2] != '\n'))
        buf_add(b, "\n", 1);
}

/* Final pass: trims trailing blanks of each line, keeps at most one blank line in a row, drops
 * leading and trailing blank lines. */
static char *tidy(buf_t *in)
{
    buf_t out = {0};
    buf_add(&out, "", 0);
    size_t blank = 0;
    const char *p = in->p ? in->p : "";
    const char *end = p + in->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *te = le;
        while (te > p && (te[-1] == ' ' || te[-1] == '\t'))
            te--;
        if (te == p) {
            blank++;
        } else {
            if (out.len > 0)
                buf_add(&out, "\n\n", blank > 0 ? 2 : 1);
            buf_add(&out, p, (size_t)(te - p));
            blank = 0;
        }
        p = nl ? nl + 1 : end;
    }
    free(in->p);
    return out.p;
}

char *mt_html_to_text(const char *h, size_t len)
{
    buf_t b = {0};
    int pre = 0;
    bool space = false;
    for (size_t i = 0; i < len;) {
        char c = h[i];
        if (c == '<') {
            if (len - i >= 4 && memcmp(h + i, "<!--", 4) == 0) {
                const char *e = NULL;
                for (size_t k = i + 4; k + 2 < len && !e; k++)
                    if (memcmp(h + k, "-->", 3) == 0)
                        e = h + k;
                i = e ? (size_t)(e - h) + 3 : len;
                continue;
            }
            size_t k = i + 1;
            bool closing = k < len && h[k] == '/';
            k += closing;
            char name[16];
            size_t n = 0;
            while (k < len && ((h[k] >= 'a' && h[k] <= 'z') || (h[k] >= 'A' && h[k] <= 'Z') ||
                               (h[k] >= '0' && h[k] <= '9'))) {
                if (n < sizeof name - 1)
                    name[n++] = h[k];
                k++;
            }
            name[n] = '\0';
            bool markup = n > 0 || (k < len && (h[k] == '!' || h[k] == '?'));
            char quote = 0;
            while (markup && k < len && (quote || h[k] != '>')) {
                if (quote && h[k] == quote)
                    quote = 0;
                else if (!quote && (h[k] == '"' || h[k] == '\''))
                    quote = h[k];
                k++;
            }
            if (!markup || k >= len) { /* a lone '<' is text, as in a browser */
                goto text;
            }
            i = k + 1;
            if (!closing && tag_in(name, "script style title template")) {
                /* Their content is not shown: skip to the matching end tag. */
                size_t e = i;
                while (e < len && !(h[e] == '<' && e + 2 + n <= len && h[e + 1] == '/' &&
                                    strncasecmp(h + e + 2, name, n) == 0))
                    e++;
                i = e;
                continue;
            }
            if (tag_in(name, "br")) {
                buf_add(&b, "\n", 1);
                space = false;
            } else if (tag_in(name, "p h1 h2 h3 h4 h5 h6 blockquote ul ol dl table pre")) {
                line_break(&b, true);
                space = false;
                if (tag_in(name, "pre"))
                    pre += closing ? (pre > 0 ? -1 : 0) : 1;
            } else if (tag_in(name, "div li tr dt dd hr address section article header footer nav "
                                    "aside form fieldset center caption")) {
                line_break(&b, false);
                space = false;
                if (!closing && tag_in(name, "li"))
                    buf_add(&b, "- ", 2);
            } else if (tag_in(name, "td th")) {
                space = true;
            }
            continue;
        }
    text:
        if (!pre && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f')) {
            space = true;
            i++;
            continue;
        }
        if (space && b.len > 0 && b.p[b.len - 1] != '\n')
            buf_add(&b, " ", 1);
        space = false;
        size_t used = 1;
        unsigned cp = c == '&' ? entity(h + i, len - i, &used) : 0;
        if (cp)
            add_cp(&b, cp);
        else if (c == '\r') /* only inside <pre>: CRLF and CR are one line break */
            buf_add(&b, "\n", i + 1 < len && h[i + 1] == '\n' ? 0 : 1);
        else
            buf_add(&b, h + i, 1);
        i += cp ? used : 1;
    }
    return tidy(&b);
}
