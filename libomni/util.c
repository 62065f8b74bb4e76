/* Clocks, RFC 3339, UTF-8 validation, allocation that cannot fail, directory helpers.
 * Pointer arguments here are borrowed for the call; returned strings are the caller's to free(). */
#include "omni/util.h"
#include "omni/log.h"

#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        omni_panic("clock_gettime(%d): %s", (int)id, strerror(errno));
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t omni_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
int64_t omni_wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil): pure arithmetic,
 * so no dependence on TZ or on timegm(), which is not POSIX. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

char *omni_rfc3339(int64_t wall_ms, char *buf, size_t bufsz)
{
    /* Floor division so times before 1970 still print a valid date instead of negative fields. */
    int64_t secs = wall_ms / 1000, ms = wall_ms % 1000;
    if (ms < 0) { ms += 1000; secs--; }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) { sod += 86400; days--; }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999 || bufsz < sizeof "0000-00-00T00:00:00.000Z") {
        snprintf(buf, bufsz, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
                 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)ms);
        return buf;
    }
    /* The common case by hand: snprintf's format parsing cost more than the rest (a stamp per message). */
    char *o = buf;
    const int fields[] = { (int)(y / 100), (int)(y % 100), (int)m, (int)d, (int)(sod / 3600),
                           (int)(sod / 60 % 60), (int)(sod % 60) };
    const char after[] = { 0, '-', '-', 'T', ':', ':', '.' }; /* what follows each two digits (0: nothing) */
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        *o++ = (char)('0' + fields[i] / 10);
        *o++ = (char)('0' + fields[i] % 10);
        if (after[i] != 0)
            *o++ = after[i];
    }
    *o++ = (char)('0' + ms / 100);
    *o++ = (char)('0' + ms / 10 % 10);
    *o++ = (char)('0' + ms % 10);
    *o++ = 'Z';
    *o = '\0';
    return buf;
}

/* Reads exactly n ASCII digits at *p; advances *p. Returns the value or -1. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

static bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int y, int m)
{
    static const int dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

int omni_rfc3339_parse(const char *s, int64_t *wall_ms)
{
    if (s == NULL)
        return -1;
    const char *p = s;
    int y = digits(&p, 4);
    if (y < 0 || *p++ != '-') return -1;
    int mo = digits(&p, 2);
    if (mo < 1 || mo > 12 || *p++ != '-') return -1;
    int d = digits(&p, 2);
    if (d < 1 || d > days_in_month(y, mo)) return -1;
    /* RFC 3339 5.6 allows 't' and, by note, a space; producers in the wild use all three. */
    if (*p != 'T' && *p != 't' && *p != ' ') return -1;
    p++;
    int h = digits(&p, 2);
    if (h < 0 || h > 23 || *p++ != ':') return -1;
    int mi = digits(&p, 2);
    if (mi < 0 || mi > 59 || *p++ != ':') return -1;
    int sec = digits(&p, 2);
    /* 60 is a leap second; it is counted as the first second of the next minute, as POSIX time does. */
    if (sec < 0 || sec > 60) return -1;
    int ms = 0;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return -1;
        for (int i = 0; *p >= '0' && *p <= '9'; i++, p++)
            if (i < 3)
                ms += (*p - '0') * (i == 0 ? 100 : i == 1 ? 10 : 1);   /* truncate below 1 ms */
    }
    int off_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        int oh = digits(&p, 2);
        if (oh < 0 || oh > 23 || *p++ != ':') return -1;
        int om = digits(&p, 2);
        if (om < 0 || om > 59) return -1;
        off_min = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= (int64_t)off_min * 60;   /* local = UTC + offset */
    *wall_ms = t * 1000 + ms;
    return 0;
}

size_t omni_fmt_u64(char *out, uint64_t v)
{
    char rev[20];
    size_t n = 0;
    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = rev[n - 1 - i];
    out[n] = '\0';
    return n;
}

bool omni_utf8_valid(const char *str, size_t len, size_t *bad_offset)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        /* ASCII eight bytes at a time: most text is, and every message is checked more than once */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i == len)
            break;
        unsigned c = s[i];
        size_t n;
        unsigned lo = 0x80, hi = 0xBF;   /* allowed range of the second byte (Unicode 15 table 3-7) */
        if (c < 0x80) { i++; continue; }
        else if (c >= 0xC2 && c <= 0xDF) n = 1;
        else if (c == 0xE0) { n = 2; lo = 0xA0; }            /* no overlong 3-byte forms */
        else if (c == 0xED) { n = 2; hi = 0x9F; }            /* no UTF-16 surrogates */
        else if (c >= 0xE1 && c <= 0xEF) n = 2;
        else if (c == 0xF0) { n = 3; lo = 0x90; }            /* no overlong 4-byte forms */
        else if (c >= 0xF1 && c <= 0xF3) n = 3;
        else if (c == 0xF4) { n = 3; hi = 0x8F; }            /* nothing above U+10FFFF */
        else goto bad;                                       /* 80..C1 and F5..FF never lead */
        if (len - i <= n)
            goto bad;
        if (s[i + 1] < lo || s[i + 1] > hi)
            goto bad;
        for (size_t k = 2; k <= n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                goto bad;
        i += n + 1;
    }
    return true;
bad:
    if (bad_offset != NULL)
        *bad_offset = i;
    return false;
}

void *omni_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        omni_fatal("out of memory allocating %zu bytes", n);
    return p;
}

void *omni_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        omni_fatal("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *omni_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        omni_fatal("out of memory reallocating to %zu bytes", n);
    return q;
}

char *omni_strdup(const char *s)
{
    return omni_strndup(s, strlen(s));
}

char *omni_json_dumps(const json_t *json, size_t flags)
{
    char *s = json_dumps(json, flags);
    if (!s)
        omni_fatal("cannot serialize JSON: out of memory (or not an object or array)");
    return s;
}

char *omni_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = omni_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *omni_asprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        omni_panic("omni_asprintf: bad format \"%s\"", fmt);
    char *p = omni_malloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

int omni_mkdir_p(const char *dir, unsigned mode)
{
    if (dir == NULL || dir[0] == '\0') {
        errno = EINVAL;
        return -1;
    }
    char *path = omni_strdup(dir);
    int rc = 0;
    /* Walk each prefix ending at a '/', then the whole path; EEXIST is fine only for directories. */
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, (mode_t)mode) != 0 && errno != EEXIST) {
            rc = -1;
        } else {
            struct stat st;
            if (stat(path, &st) != 0)
                rc = -1;
            else if (!S_ISDIR(st.st_mode)) {
                errno = ENOTDIR;
                rc = -1;
            }
        }
        *p = saved;
        if (rc != 0 || saved == '\0')
            break;
    }
    int saved_errno = errno;
    free(path);
    errno = saved_errno;
    return rc;
}

int omni_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int omni_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved_errno = errno;
    close(fd);
    errno = saved_errno;
    return rc;
}

static char *read_fail(char *buf, int fd, int e)
{
    free(buf);
    close(fd);
    errno = e;
    return NULL;
}

char *omni_read_file(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = omni_malloc(cap + 1);
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return read_fail(buf, fd, errno);
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max)
            return read_fail(buf, fd, EFBIG);
        if (n == cap)
            buf = omni_realloc(buf, (cap *= 2) + 1);
    }
    close(fd);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}
