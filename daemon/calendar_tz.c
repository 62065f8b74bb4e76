/* See calendar_tz.h. TZif files (RFC 8536): a 44-byte header, a data block with 32-bit times, and from
 * version 2 on a second header and block with 64-bit times followed by a footer "\n<POSIX TZ>\n" that
 * covers every instant after the last transition. We keep only what the calendar needs: transition times,
 * the offset each one switches to, and the footer rule. Every count and index is checked against the
 * file, so a truncated or corrupt file is refused with a reason instead of being half-read. */
#include "calendar_tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "omni/util.h"

#define MAX_FILE (1 << 20) /* real zones are under 10 KiB; a bigger file is not a zone */
#define MAX_OFF (26 * 3600) /* RFC 8536 allows -25:59:59 .. 25:59:59 */
#define NAME_MAX_LEN 255

struct tz_zone {
    size_t n;         /* transitions */
    int64_t *at;      /* ascending UTC seconds */
    int32_t *off;     /* offset from at[i] on */
    int32_t off0;     /* before the first transition: time type 0, as RFC 8536 says */
    bool has_rule;    /* footer rule for after the last transition */
    tz_rule_t rule;
};

typedef struct hdr {
    int version; /* 1, 2, 3, 4 */
    uint32_t isut, isstd, leap, time, type, chars;
} hdr_t;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static int64_t be64(const uint8_t *p) { return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)); }

static int header(const uint8_t *p, size_t len, hdr_t *h, char *err, size_t errsz)
{
    if (len < 44) {
        snprintf(err, errsz, "truncated TZif file (header needs 44 bytes, %zu left)", len);
        return -1;
    }
    if (memcmp(p, "TZif", 4) != 0) {
        snprintf(err, errsz, "not a TZif file (bad magic)");
        return -1;
    }
    if (p[4] != 0 && (p[4] < '2' || p[4] > '4')) {
        snprintf(err, errsz, "unsupported TZif version 0x%02x", p[4]);
        return -1;
    }
    h->version = p[4] ? p[4] - '0' : 1;
    h->isut = be32(p + 20);
    h->isstd = be32(p + 24);
    h->leap = be32(p + 28);
    h->time = be32(p + 32);
    h->type = be32(p + 36);
    h->chars = be32(p + 40);
    return 0;
}

/* Size of the data block after a header; tsize is 4 (version 1 block) or 8. Counts are 32-bit, so on
 * the 64-bit size_t this cannot overflow. */
static size_t block_size(const hdr_t *h, size_t tsize)
{
    return (size_t)h->time * (tsize + 1) + (size_t)h->type * 6 + h->chars + (size_t)h->leap * (tsize + 4) +
           h->isstd + h->isut;
}

/* Reads the data block at p (block_size() bytes, already checked to be there). */
static int block(tz_zone_t *z, const hdr_t *h, const uint8_t *p, size_t tsize, char *err, size_t errsz)
{
    if (h->type == 0 || (h->isut && h->isut != h->type) || (h->isstd && h->isstd != h->type)) {
        snprintf(err, errsz, "corrupt TZif file (%u time types, %u UT flags, %u standard flags)", h->type, h->isut,
                 h->isstd);
        return -1;
    }
    if (h->leap) { /* "right/" zones count leap seconds; the router's clock is POSIX time, which does not */
        snprintf(err, errsz, "TZif file has a leap-second table (use a zone outside right/)");
        return -1;
    }
    const uint8_t *times = p, *idx = p + (size_t)h->time * tsize, *types = idx + h->time;
    int32_t *type_off = omni_calloc(h->type, sizeof *type_off);
    for (uint32_t i = 0; i < h->type; i++) {
        const uint8_t *t = types + (size_t)i * 6;
        type_off[i] = (int32_t)be32(t);
        if (type_off[i] <= -MAX_OFF || type_off[i] >= MAX_OFF || t[4] > 1 || t[5] >= h->chars) {
            snprintf(err, errsz, "corrupt TZif file (bad local time type %u)", i);
            free(type_off);
            return -1;
        }
    }
    z->n = h->time;
    z->at = omni_calloc(z->n ? z->n : 1, sizeof *z->at);
    z->off = omni_calloc(z->n ? z->n : 1, sizeof *z->off);
    z->off0 = type_off[0];
    for (size_t i = 0; i < z->n; i++) {
        z->at[i] = tsize == 8 ? be64(times + i * 8) : (int64_t)(int32_t)be32(times + i * 4);
        if (idx[i] >= h->type || (i > 0 && z->at[i] <= z->at[i - 1])) {
            snprintf(err, errsz, "corrupt TZif file (transition %zu: %s)", i,
                     idx[i] >= h->type ? "bad type index" : "times not ascending");
            free(type_off);
            return -1;
        }
        z->off[i] = type_off[idx[i]];
    }
    free(type_off);
    return 0;
}

void tz_zone_destroy(tz_zone_t **z)
{
    if (!z || !*z)
        return;
    free((*z)->at);
    free((*z)->off);
    free(*z);
    *z = NULL;
}

tz_zone_t *tz_zone_parse(const uint8_t *buf, size_t len, char *err, size_t errsz)
{
    hdr_t h;
    if (header(buf, len, &h, err, errsz) < 0)
        return NULL;
    size_t pos = 44, need = block_size(&h, 4), tsize = 4;
    if (h.version >= 2) { /* the version 1 block is only for old readers: skip to the 64-bit one */
        if (len - pos < need) {
            snprintf(err, errsz, "truncated TZif file (version 1 block needs %zu bytes, %zu left)", need, len - pos);
            return NULL;
        }
        pos += need;
        if (header(buf + pos, len - pos, &h, err, errsz) < 0)
            return NULL;
        pos += 44;
        need = block_size(&h, 8);
        tsize = 8;
    }
    if (len - pos < need) {
        snprintf(err, errsz, "truncated TZif file (data block needs %zu bytes, %zu left)", need, len - pos);
        return NULL;
    }
    tz_zone_t *z = omni_calloc(1, sizeof *z);
    if (block(z, &h, buf + pos, tsize, err, errsz) < 0) {
        tz_zone_destroy(&z);
        return NULL;
    }
    pos += need;
    if (h.version >= 2) {
        const uint8_t *nl = pos < len ? memchr(buf + pos + 1, '\n', len - pos - 1) : NULL;
        if (pos >= len || buf[pos] != '\n' || !nl) {
            snprintf(err, errsz, "truncated TZif file (footer missing or unterminated)");
            tz_zone_destroy(&z);
            return NULL;
        }
        size_t flen = (size_t)(nl - (buf + pos + 1));
        char *footer = omni_strndup((const char *)buf + pos + 1, flen);
        /* An empty footer means "no rule": the last transition's offset then holds forever. */
        if (flen && (strlen(footer) != flen || tz_rule_parse(footer, &z->rule, err, errsz) < 0)) {
            if (strlen(footer) != flen)
                snprintf(err, errsz, "corrupt TZif file (NUL in footer)");
            free(footer);
            tz_zone_destroy(&z);
            return NULL;
        }
        z->has_rule = flen > 0;
        free(footer);
    }
    return z;
}

/* Checks name is a plain relative path inside the zoneinfo tree. */
static int check_name(const char *name, char *err, size_t errsz)
{
    size_t len = name ? strlen(name) : 0;
    const char *why = NULL;
    if (!len)
        why = "empty zone name";
    else if (len > NAME_MAX_LEN)
        why = "zone name too long";
    else if (name[0] == '/')
        why = "absolute path not allowed";
    else if (strstr(name, ".."))
        why = "\"..\" not allowed";
    else if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+/-") != len)
        why = "characters other than A-Z a-z 0-9 _ + - / not allowed";
    if (why)
        snprintf(err, errsz, "zone \"%s\": %s", name ? name : "(null)", why);
    return why ? -1 : 0;
}

tz_zone_t *tz_zone_load(const char *name, char *err, size_t errsz)
{
    if (check_name(name, err, errsz) < 0)
        return NULL;
    if (strcmp(name, "UTC") == 0) /* built in, so it works on a host without tzdata */
        return omni_calloc(1, sizeof(tz_zone_t));
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    char *path = omni_asprintf("%s/%s", dir, name);
    uint8_t *buf = NULL;
    tz_zone_t *z = NULL;
    struct stat st;
    ssize_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errsz, "zone \"%s\": %s: %s", name, path, errno == ENOENT ? "no such zone" : strerror(errno));
    } else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE) {
        snprintf(err, errsz, "zone \"%s\": %s: not a zone file", name, path);
    } else {
        buf = omni_malloc((size_t)st.st_size + 1);
        size_t have = 0;
        while (have < (size_t)st.st_size && (got = read(fd, buf + have, (size_t)st.st_size - have)) > 0)
            have += (size_t)got;
        if (got < 0)
            snprintf(err, errsz, "zone \"%s\": %s: %s", name, path, strerror(errno));
        else {
            char why[256];
            z = tz_zone_parse(buf, have, why, sizeof why);
            if (!z)
                snprintf(err, errsz, "zone \"%s\": %s: %s", name, path, why);
        }
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    free(path);
    return z;
}

int32_t tz_zone_offset(const tz_zone_t *z, int64_t t, int64_t *until)
{
    /* No transitions at all: the footer, if any, describes every instant (a file like UTC's). */
    if (z->n == 0 && z->has_rule)
        return tz_rule_offset(&z->rule, t, until);
    if (z->n == 0 || t < z->at[0]) {
        *until = z->n ? z->at[0] : TZ_NEVER;
        return z->off0;
    }
    size_t lo = 0, hi = z->n; /* the last transition at or before t is at[lo] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    if (lo + 1 < z->n) {
        *until = z->at[lo + 1];
        return z->off[lo];
    }
    if (z->has_rule)
        return tz_rule_offset(&z->rule, t, until);
    *until = TZ_NEVER;
    return z->off[lo];
}
