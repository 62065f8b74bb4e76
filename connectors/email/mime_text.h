/* Text helpers of the email connector's MIME layer: charset conversion to UTF-8 that never drops a byte,
 * HTML to plain text, newline normalization and cutting UTF-8 at a character boundary.
 * All functions are pure (no GMime objects) so they are unit-tested directly. */
#ifndef EMAIL_MIME_TEXT_H
#define EMAIL_MIME_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Converts len bytes written in charset (a MIME charset name as found in Content-Type; NULL or "" when
 * absent) to UTF-8. Never fails and never drops input: each byte the charset cannot decode becomes one
 * U+FFFD. Names are mapped the way browsers do (WHATWG Encoding): us-ascii and iso-8859-1 are read as
 * windows-1252, ks_c_5601-1987 and euc-kr as CP949, gb2312 as GBK. An absent or unknown charset reads
 * the bytes as UTF-8 when they are valid UTF-8, else as windows-1252 (8-bit mail without a label).
 * A NUL byte also becomes U+FFFD: C strings and the JSON consumers downstream would end the text there.
 * Returns a NUL-terminated string the caller frees; *outlen (may be NULL) gets its length. */
char *mt_to_utf8(const char *charset, const char *in, size_t len, size_t *outlen);

/* The value of a base64 character, 64 for '=' (padding), -1 for anything else. */
int mt_b64_value(unsigned char c);

/* Rewrites each RFC 2047 "B" encoded-word in a raw header value (=?charset?B?text?=, charset may carry a
 * *language) as the "Q" encoded-word of the same bytes (every byte =XX), decoding each word's base64 on
 * its own: a word's padding ends only that word, and one without its padding keeps its last bytes (two or
 * three characters left over are one or two bytes, as Python's email package reads them). GMime 3.2 runs
 * adjacent B words of one charset through one decoder that stops at the first word's padding, so what
 * followed it was lost; adjacent Q words it joins correctly (a character split across words included).
 * Returns a new string the caller frees, or NULL when s holds no B encoded-word. */
char *mt_2047_b_to_q(const char *s);

/* Rewrites each run of adjacent RFC 2047 "Q" encoded-words of one charset in a raw header value (only
 * blanks between them) as one "=?UTF-8?Q?...?=" word of the same text, its bytes converted by mt_to_utf8:
 * so a byte the charset cannot decode becomes U+FFFD, as in bodies, not the '?' GMime's conversion
 * gives, and a label iconv does not know is read as mt_to_utf8 reads it. Words labelled us-ascii or ascii
 * are left as they are (their 8-bit bytes are '?'); a malformed one (an '=' not followed by two hex
 * digits) becomes a UTF-8 word whose text is the word itself, with the blanks beside it, so it stays as
 * written (GMime would drop it). Run after mt_2047_b_to_q.
 * Returns a new string the caller frees, or NULL when s holds no Q encoded-word it rewrote. */
char *mt_2047_q_to_utf8(const char *s);

/* Replaces every CRLF and lone CR in s[0..*len) with LF, in place; updates *len and NUL-terminates. */
void mt_normalize_newlines(char *s, size_t *len);

/* The largest n <= max such that s[0..n) ends on a UTF-8 character boundary (s is valid UTF-8). */
size_t mt_utf8_cut(const char *s, size_t len, size_t max);

/* Unwraps a text/plain; format=flowed body (RFC 3676) given as UTF-8 with LF newlines. Per line: its quote
 * depth is the count of leading '>'; then one space after them is space-stuffing and goes. A line then
 * ending in a space is flowed (a soft break): it joins the next line when that has the same depth; under
 * delsp (DelSp=yes) that trailing space is deleted first. Lines of different depths are never joined (a
 * flowed line before a change of depth ends there), and the signature separator "-- " is never flowed and
 * always a line of its own. Quoted lines come out as the depth's '>' and one space before the text.
 * Returns a new NUL-terminated string the caller frees; *outlen (may be NULL) gets its length. */
char *mt_unflow(const char *s, size_t len, bool delsp, size_t *outlen);

/* Plain text of an HTML document (UTF-8 in, UTF-8 out): tags removed; script, style, head and comments
 * dropped; <br> and the ends of block elements (p, div, li, tr, h1..h6, blockquote, table, ...) become
 * line breaks, <li> starts "- ", other whitespace collapses as a browser shows it (kept inside <pre>);
 * character references decoded (numeric, and the named ones of HTML 4: Latin-1, symbols, typography; an
 * unknown name stays as written, as browsers do); at most one blank line in a row; no trailing blanks.
 * Returns a new NUL-terminated string the caller frees. */
char *mt_html_to_text(const char *html, size_t len);

#endif
