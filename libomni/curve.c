/* See omni/curve.h. */
#include "omni/curve.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "omni/util.h"

#define KEY_FILE_MAX 4096 /* a key file holds one 40-character key, perhaps a comment */

bool omni_curve_is_key(const char *s)
{
    unsigned char raw[32];
    return s != NULL && strlen(s) == OMNI_CURVE_Z85_LEN && zmq_z85_decode(raw, s) != NULL;
}

void omni_curve_fingerprint_raw(const unsigned char key[32], char *fp)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(key, 32, d);
    for (int i = 0; i < OMNI_CURVE_FP_LEN / 2; i++) {
        fp[2 * i] = hex[d[i] >> 4];
        fp[2 * i + 1] = hex[d[i] & 15];
    }
    fp[OMNI_CURVE_FP_LEN] = '\0';
}

int omni_curve_fingerprint(const char *z85, char *fp)
{
    unsigned char raw[32];
    if (!omni_curve_is_key(z85) || zmq_z85_decode(raw, z85) == NULL)
        return -1;
    omni_curve_fingerprint_raw(raw, fp);
    return 0;
}

/* The one key in a key file's text: the first line that is not blank or a # comment, trimmed. */
static int key_in_text(char *text, char *out)
{
    for (char *line = text; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        line += strspn(line, " \t\r");
        size_t n = strcspn(line, " \t\r");
        line[n] = '\0';
        if (n > 0 && line[0] != '#') {
            if (!omni_curve_is_key(line))
                return -1;
            memcpy(out, line, OMNI_CURVE_Z85_LEN + 1);
            return 0;
        }
        line = next;
    }
    return -1;
}

static int read_key_file(const char *file, char *out, const char *what, char *err, size_t errsz)
{
    char *text = omni_read_file(file, KEY_FILE_MAX, NULL);
    if (text == NULL) {
        snprintf(err, errsz, "%s: cannot read %s: %s", what, file, errno == EFBIG ? "too big for a key file"
                                                                                   : strerror(errno));
        return -1;
    }
    int rc = key_in_text(text, out);
    explicit_bzero(text, strlen(text));
    free(text);
    if (rc != 0)
        snprintf(err, errsz, "%s: %s does not hold a CURVE key (40 Z85 characters, as omnictl keygen writes)",
                 what, file);
    return rc;
}

int omni_curve_read_public(const char *key_or_file, char *out, const char *what, char *err, size_t errsz)
{
    if (omni_curve_is_key(key_or_file)) {
        memcpy(out, key_or_file, OMNI_CURVE_Z85_LEN + 1);
        return 0;
    }
    return read_key_file(key_or_file, out, what, err, errsz);
}

int omni_curve_read_secret(const char *file, char *out, const char *what, char *err, size_t errsz)
{
    struct stat st;
    if (stat(file, &st) != 0) {
        snprintf(err, errsz, "%s: cannot read %s: %s", what, file, strerror(errno));
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errsz, "%s: %s is a secret key but group or others may access it (mode %04o): "
                 "chmod 600 it", what, file, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    return read_key_file(file, out, what, err, errsz);
}

int omni_curve_public_of(const char *secret, char *pub)
{
    return zmq_curve_public(pub, secret) == 0 ? 0 : -1;
}

/* Creates path with mode, refusing an existing file, and writes text. Returns 0 or -1 with errno. */
static int write_new(const char *path, unsigned mode, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    /* fchmod: the umask must not widen or narrow what a key file needs */
    if (fchmod(fd, mode) != 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        errno = e ? e : EIO;
        return -1;
    }
    return close(fd);
}

int omni_curve_keygen(const char *name, char *pub, char *err, size_t errsz)
{
    char secret[OMNI_CURVE_Z85_LEN + 1];
    if (zmq_curve_keypair(pub, secret) != 0) {
        snprintf(err, errsz, "cannot make a key pair: %s (is libzmq built with CURVE?)", zmq_strerror(errno));
        return -1;
    }
    char *key_path = omni_asprintf("%s.key", name), *pub_path = omni_asprintf("%s.pub", name);
    char *key_text = omni_asprintf("%s\n", secret), *pub_text = omni_asprintf("%s\n", pub);
    int rc = -1;
    if (write_new(key_path, 0600, key_text) != 0) {
        snprintf(err, errsz, "cannot write %s: %s", key_path, strerror(errno));
    } else if (write_new(pub_path, 0644, pub_text) != 0) {
        snprintf(err, errsz, "cannot write %s: %s", pub_path, strerror(errno));
        unlink(key_path);
    } else {
        rc = 0;
    }
    explicit_bzero(secret, sizeof secret);
    explicit_bzero(key_text, strlen(key_text));
    free(key_text);
    free(pub_text);
    free(key_path);
    free(pub_path);
    return rc;
}
