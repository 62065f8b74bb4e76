/* A key for one email that is the same wherever and whenever the same message is read: it survives a
 * UIDVALIDITY change, a server migration, a copy into another folder, and an MTA that delivers the same
 * message twice. The connector builds message ids from it (email_build.h).
 *
 * It is SHA-256 over the values of Message-ID, Date, From and Subject (unfolded, blanks trimmed, in that
 * order, each ended by a NUL) and then the body (everything after the first empty line) with every CR
 * removed. Trace headers (Received, Delivered-To, Return-Path) are left out on purpose: they differ
 * between copies of one message. Two different messages collide only when all four headers and the
 * body are equal, i.e. when they are the same message. */
#include "mime.h"
#include "omni/secret.h"
#include "omni/util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Appends the value of the first header field called name (case-insensitive) in the header block
 * hdr[0..len) to w, unfolded and trimmed, then a NUL. An absent field gives just the NUL. w has room: a
 * value is never longer than the header block. */
static char *put_header(char *w, const char *hdr, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(hdr + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - hdr) : len;
        if (e - i > n && hdr[i + n] == ':' && strncasecmp(hdr + i, name, n) == 0) {
            /* The value runs on over continuation lines (those starting with a blank). */
            size_t v = i + n + 1, end = e;
            while (end < len && end + 1 < len && (hdr[end + 1] == ' ' || hdr[end + 1] == '\t')) {
                const char *nl2 = memchr(hdr + end + 1, '\n', len - end - 1);
                end = nl2 ? (size_t)(nl2 - hdr) : len;
            }
            /* Each run of blanks and line breaks counts as one space; leading and trailing ones none. */
            bool pending = false, any = false;
            for (size_t k = v; k < end; k++) {
                char c = hdr[k];
                if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                    pending = any;
                    continue;
                }
                if (pending)
                    *w++ = ' ';
                *w++ = c;
                pending = false;
                any = true;
            }
            break;
        }
        i = e + 1;
    }
    *w++ = '\0';
    return w;
}

void email_content_key(const char *raw, size_t len, char out[65])
{
    /* The header block ends at the first empty line ("\n\n" or "\n\r\n"). */
    size_t body = len;
    for (size_t i = 0; i < len; i++) {
        if (raw[i] != '\n')
            continue;
        size_t j = i + 1;
        if (j < len && raw[j] == '\r')
            j++;
        if (j < len && raw[j] == '\n') {
            body = j + 1;
            break;
        }
        if (j >= len) {
            body = len;
            break;
        }
    }
    /* The hashed text is laid out in one buffer and hashed at once (libcrypto's SHA-256, several times
     * faster than feeding a digest piece by piece): four values and their NULs, then the body less its
     * CRs. Each value is at most the header block, so 4 * (body + 1) + the body bounds it. */
    char *buf = omni_malloc(4 * (body + 1) + (len - body) + 1), *w = buf;
    static const char *const FIELDS[] = {"Message-ID", "Date", "From", "Subject"};
    for (size_t f = 0; f < 4; f++)
        w = put_header(w, raw, body, FIELDS[f]);
    for (size_t i = body; i < len;) {
        const char *cr = memchr(raw + i, '\r', len - i);
        size_t e = cr ? (size_t)(cr - raw) : len;
        memcpy(w, raw + i, e - i);
        w += e - i;
        i = e + (cr != NULL);
    }
    unsigned char digest[32];
    omni_sha256(buf, (size_t)(w - buf), digest);
    free(buf);
    omni_hex(digest, sizeof digest, out);
}
