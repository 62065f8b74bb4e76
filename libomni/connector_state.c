/* Small state files written atomically (connector.h): the phone log's offset, the email connector's UIDs.
 * The classic sequence: write a temporary file in the same directory, fsync it, rename it over the old
 * one, fsync the directory. rename(2) is atomic on POSIX file systems, and the two fsyncs make both the
 * content and the new name durable before the caller acknowledges its source. */
#include "omni/connector.h"
#include "omni/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int name_ok(const char *name)
{
    if (name == NULL || name[0] == '\0' || name[0] == '.' || strchr(name, '/') != NULL || strlen(name) > 200) {
        errno = EINVAL;
        return 0;
    }
    return 1;
}


int omni_state_write(const char *dir, const char *name, const void *data, size_t len)
{
    if (!name_ok(name))
        return -1;
    if (len > OMNI_STATE_MAX) {
        errno = EFBIG;
        return -1;
    }
    char tmp[4096], dst[4096];
    if (snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* O_TRUNC: a temporary file left by a crash in the middle of a write is simply overwritten. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (omni_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, dst) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return omni_fsync_dir(dir);
}

int omni_state_read(const char *dir, const char *name, char **data, size_t *len)
{
    *data = NULL;
    if (len != NULL)
        *len = 0;
    if (!name_ok(name))
        return -1;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    size_t n = 0;
    char *buf = omni_read_file(path, OMNI_STATE_MAX, &n);
    if (!buf)
        return errno == ENOENT ? 1 : -1;
    *data = buf;
    if (len != NULL)
        *len = n;
    return 0;
}

int omni_connector_state_save(omni_connector_t *ctx, const char *name, const void *data, size_t len)
{
    return omni_state_write(omni_connector_state_dir(ctx), name, data, len);
}

int omni_connector_state_load(omni_connector_t *ctx, const char *name, char **data, size_t *len)
{
    return omni_state_read(omni_connector_state_dir(ctx), name, data, len);
}
