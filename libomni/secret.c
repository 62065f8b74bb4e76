/* Secrets from files, systemd credentials or the environment, and the few digests the product signs with.
 * OpenSSL's libcrypto does the cryptography (HMAC, SHA, base64): hand-written digests are where bugs hide. */
#include "omni/secret.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

/* Whether a file name that is not there looks like a secret pasted in its place (a bearer token, an API key):
 * 24 or more characters of the kinds tokens are made of, nothing a file name usually has (a dot). Such a
 * value is never repeated in an error, which goes to logs. */
static bool looks_like_secret(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    return n >= 24 && strspn(base, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789%_-+=") == n;
}

/* Reads a secret file that only its owner may read. */
static long read_secret_file(const char *path, const char *what, char *out, size_t outsz, char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP) fd = open(path, O_RDONLY | O_CLOEXEC); /* systemd credentials may be links */
    if (fd < 0 && errno == ENOENT && looks_like_secret(path)) {
        snprintf(err, errsz, "%s: no such file (not shown: the value looks like the secret itself; name a file "
                 "holding it, credential:NAME or env:NAME)", what);
        return -1;
    }
    if (fd < 0) {
        snprintf(err, errsz, "%s: %s: %s", what, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errsz, "%s: %s: not a regular file", what, path);
        close(fd);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errsz, "%s: %s: readable by others (mode %04o); chmod 600 it", what, path,
                 (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    size_t n = 0;
    for (;;) {
        if (n + 1 >= outsz) { /* full: the file is too long unless it ends here */
            char extra;
            ssize_t r;
            do
                r = read(fd, &extra, 1);
            while (r < 0 && errno == EINTR);
            explicit_bzero(&extra, 1);
            if (r == 0)
                break;
            snprintf(err, errsz, "%s: %s: longer than %d bytes", what, path, OMNI_SECRET_MAX);
            close(fd);
            explicit_bzero(out, outsz);
            return -1;
        }
        ssize_t r = read(fd, out + n, outsz - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, errsz, "%s: %s: %s", what, path, strerror(errno));
            close(fd);
            explicit_bzero(out, outsz);
            return -1;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    out[n] = '\0';
    return (long)n;
}

long omni_secret_load(const char *spec, const char *what, char *out, size_t outsz, char *err, size_t errsz)
{
    /* Read whole into room for the longest secret and the "\r\n" a file may end with, then copied out once
     * that is dropped: a secret of OMNI_SECRET_MAX bytes written with its newline is one of OMNI_SECRET_MAX. */
    char buf[OMNI_SECRET_MAX + 3];
    long n;
    if (spec == NULL || *spec == '\0') {
        snprintf(err, errsz, "%s: no secret named (a file, credential:NAME or env:NAME)", what);
        return -1;
    }
    if (strncmp(spec, "env:", 4) == 0) {
        if (spec[4] == '\0') {
            snprintf(err, errsz, "%s: %s names no variable (env:NAME)", what, spec);
            return -1;
        }
        const char *v = getenv(spec + 4);
        if (v == NULL) {
            snprintf(err, errsz, "%s: environment variable %s is not set", what, spec + 4);
            return -1;
        }
        if (strlen(v) >= sizeof buf) {
            snprintf(err, errsz, "%s: %s: longer than %d bytes", what, spec, OMNI_SECRET_MAX);
            return -1;
        }
        n = (long)strlen(v);
        memcpy(buf, v, (size_t)n + 1);
    } else if (strncmp(spec, "credential:", 11) == 0) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY"), *name = spec + 11;
        if (dir == NULL || *dir == '\0') {
            snprintf(err, errsz, "%s: %s: $CREDENTIALS_DIRECTORY is not set (LoadCredential= in the unit)", what, spec);
            return -1;
        }
        if (*name == '\0' || strchr(name, '/') != NULL || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            snprintf(err, errsz, "%s: %s: not a credential name", what, spec);
            return -1;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        n = read_secret_file(path, what, buf, sizeof buf, err, errsz);
    } else {
        n = read_secret_file(spec, what, buf, sizeof buf, err, errsz);
    }
    if (n < 0) return -1;
    if (n > 0 && buf[n - 1] == '\n') buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r') buf[--n] = '\0';
    long room = (long)(outsz > OMNI_SECRET_MAX + 1 ? OMNI_SECRET_MAX + 1 : outsz) - 1;
    if (n > room) {
        snprintf(err, errsz, "%s: %s: longer than %ld bytes", what, spec, room);
        explicit_bzero(buf, sizeof buf);
        return -1;
    }
    if (n == 0) {
        snprintf(err, errsz, "%s: %s: the secret is empty", what, spec);
        return -1;
    }
    memcpy(out, buf, (size_t)n + 1);
    explicit_bzero(buf, sizeof buf);
    return n;
}

bool omni_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    const unsigned char *x = a, *y = b;
    unsigned char d = alen != blen;
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++) d |= x[i] ^ y[i];
    return d == 0;
}

size_t omni_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n);
    return n;
}

size_t omni_hmac_sha1(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[20])
{
    unsigned int n = 0;
    HMAC(EVP_sha1(), key, (int)keylen, data, len, out, &n);
    return n;
}

void omni_sha256(const void *data, size_t len, unsigned char out[32]) { SHA256(data, len, out); }

size_t omni_base64_encode(const void *in, size_t len, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

long omni_base64_decode(const char *in, unsigned char *out, size_t outsz)
{
    size_t n = strlen(in);
    if (n % 4 != 0 || 3 * (n / 4) > outsz) return -1;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
                  (c == '=' && i >= n - 2 && (i == n - 1 || in[n - 1] == '='));
        if (!ok) return -1;
    }
    int r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (r < 0) return -1;
    if (n > 0 && in[n - 1] == '=') r--; /* EVP_DecodeBlock counts padding as zero bytes */
    if (n > 1 && in[n - 2] == '=') r--;
    return r;
}

char *omni_hex(const void *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = in;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
    return out;
}
