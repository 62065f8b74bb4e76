/* See fold.h. */
#include "fold.h"

#include <stddef.h>
#include <string.h>

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* Lowercases ASCII, keeps UTF-8 bytes of other scripts as they are, and makes every run of anything else
 * one space, trimmed. Returns the length written to out (at most outsz). */
static size_t normalize(const char *text, unsigned char *out, size_t outsz)
{
    size_t n = 0;
    int space = 1;
    for (const unsigned char *p = (const unsigned char *)text; *p && n < outsz; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80) {
            out[n++] = c;
            space = 0;
        } else if (c >= 'A' && c <= 'Z') {
            out[n++] = (unsigned char)(c - 'A' + 'a');
            space = 0;
        } else if (!space) {
            out[n++] = ' ';
            space = 1;
        }
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    return n;
}

/* Past the @handles a post starts with ("@shop @support my parcel..."): a cross-post to Twitter names the
 * account it is written to, which the same words by email or SMS do not; they are not what the customer asks. */
static const char *past_mentions(const char *text)
{
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p != '@')
            return p;
        const char *h = p + 1;
        while ((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') || *h == '_')
            h++;
        if (h == p + 1) /* a lone '@' is text */
            return p;
        p = h;
    }
}

uint64_t fold_hash(const char *text)
{
    static unsigned char buf[16384]; /* the first 16 KiB decide: enough to tell copies apart */
    if (!text)
        return 0;
    size_t n = normalize(past_mentions(text), buf, sizeof buf);
    if (n < FOLD_MIN_CHARS)
        return 0;
    /* characters, not bytes ("Спасибо" is 7 in 14 bytes): counted only where it can matter, a character
     * being at most 4 bytes; a UTF-8 character is its bytes that are not continuations (10xxxxxx) */
    if (n < 4 * FOLD_MIN_CHARS) {
        size_t chars = 0;
        for (size_t i = 0; i < n; i++)
            chars += (buf[i] & 0xC0) != 0x80;
        if (chars < FOLD_MIN_CHARS)
            return 0;
    }
    /* A bit of the fingerprint is set when most 4-grams' hashes have it set. The 64 counts are kept as
     * byte lanes of 8 words (word j counts bits j, j+8, ..., j+56), so one gram costs 8 additions, not 64;
     * lanes are emptied into ones[] before they could overflow. This runs for every message. */
    const uint64_t lane = 0x0101010101010101ULL;
    uint64_t acc[8] = { 0 };
    unsigned ones[64] = { 0 }, grams = 0, pending = 0;
    for (size_t i = 0; i + 4 <= n; i++, grams++) {
        uint64_t h = fnv1a(buf + i, 4);
        for (int j = 0; j < 8; j++)
            acc[j] += (h >> j) & lane;
        if (++pending == 255 || i + 5 > n) {
            for (int j = 0; j < 8; j++) {
                for (int byte = 0; byte < 8; byte++)
                    ones[8 * byte + j] += (unsigned)((acc[j] >> (8 * byte)) & 0xFF);
                acc[j] = 0;
            }
            pending = 0;
        }
    }
    uint64_t out = 0;
    for (int b = 0; b < 64; b++)
        if (2 * ones[b] > grams)
            out |= 1ULL << b;
    return out ? out : 1; /* 0 means "too short" */
}

int fold_max_bits(int pct)
{
    if (pct >= 100)
        return 0;
    if (pct < 50) /* folding.similarity is 50..100 (config.c): below, unrelated texts would be copies */
        pct = 50;
    return (100 - pct) * 64 / 100;
}

int fold_distance(uint64_t a, uint64_t b) { return __builtin_popcountll(a ^ b); }
