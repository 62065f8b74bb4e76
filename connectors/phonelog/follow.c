/* A log follower (follow.h). Reads with pread() at an explicit offset rather than through a FILE*, so the
 * position is exactly what was taken and nothing is buffered behind the caller's back. */
#include "follow.h"
#include "omni/connector.h"
#include "omni/log.h"
#include "omni/util.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct follow {
    char *path, *state_dir, *state_name;
    bool start_at_end;
    follow_line_fn on_line;
    void *user;
    char *buf;                   /* FOLLOW_LINE_MAX + 2 bytes: the longest line and its "\r\n" */
    int fd;                      /* -1: not open (the file does not exist yet) */
    uint64_t ino, off;           /* the open file and the first byte not taken */
    unsigned long line;          /* lines taken in it */
    uint64_t base_off;           /* position when the last follow_read began, for follow_rewind */
    unsigned long base_line;
    uint64_t head_len, head_hash;
    bool rotated;                /* a new file is at path; the old one gets one more read */
    bool switch_ready;           /* the old one is read out: switch at the checkpoint */
    bool dirty;                  /* the position moved since it was saved */
    bool have_saved;             /* the state loaded at start, used by the first open only */
    uint64_t s_ino, s_off, s_head_len, s_head_hash;
    unsigned long s_line;
};

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

/* Hash of the first n bytes of fd; -1 when they cannot all be read. */
static int head_hash(int fd, uint64_t n, uint64_t *out)
{
    char head[FOLLOW_HEAD_MAX];
    ssize_t r = n > 0 ? pread(fd, head, (size_t)n, 0) : 0;
    if (r < 0 || (uint64_t)r != n)
        return -1;
    *out = fnv1a(head, (size_t)n);
    return 0;
}

follow_t *follow_new(const follow_opts_t *o, char *err, size_t errsz)
{
    char *state = NULL;
    int rc = omni_state_read(o->state_dir, o->state_name, &state, NULL);
    if (rc < 0) {
        snprintf(err, errsz, "%s/%s: %s", o->state_dir, o->state_name, strerror(errno));
        return NULL;
    }
    follow_t *f = omni_calloc(1, sizeof *f);
    f->path = omni_strdup(o->path);
    f->state_dir = omni_strdup(o->state_dir);
    f->state_name = omni_strdup(o->state_name);
    f->start_at_end = o->start_at_end;
    f->on_line = o->on_line;
    f->user = o->user;
    f->buf = omni_malloc(FOLLOW_LINE_MAX + 2);
    f->fd = -1;
    if (rc == 0) {
        f->have_saved = sscanf(state, "v1 %" SCNu64 " %" SCNu64 " %lu %" SCNu64 " %" SCNx64, &f->s_ino, &f->s_off,
                               &f->s_line, &f->s_head_len, &f->s_head_hash) == 5 && f->s_head_len <= FOLLOW_HEAD_MAX;
        if (!f->have_saved) {
            /* Not a first run (start: end is for that): the calls in the file may never have been sent. Read
             * from its start; what the router has already, it drops by id. */
            omni_warn("%s/%s: unreadable state \"%.40s\": starting without it, from the start of the file",
                      o->state_dir, o->state_name, state);
            f->start_at_end = false;
        }
    }
    free(state);
    return f;
}

void follow_destroy(follow_t **fp)
{
    if (fp == NULL || *fp == NULL)
        return;
    follow_t *f = *fp;
    if (f->fd >= 0)
        close(f->fd);
    free(f->path);
    free(f->state_dir);
    free(f->state_name);
    free(f->buf);
    free(f);
    *fp = NULL;
}

/* Offset just past the last newline before size, and the number of lines before it. */
static void find_end(follow_t *f, uint64_t size)
{
    uint64_t pos = 0, last = 0;
    unsigned long lines = 0;
    while (pos < size) {
        ssize_t n = pread(f->fd, f->buf, FOLLOW_LINE_MAX, (off_t)pos);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (f->buf[i] == '\n') {
                lines++;
                last = pos + (uint64_t)i + 1;
            }
        }
        pos += (uint64_t)n;
    }
    f->off = last;
    f->line = lines;
}

/* The file a saved position names, when another one is at path now: rotated while the connector was stopped
 * (renamed beside it: Master.csv.1). Found by its inode in path's directory; its fd, or -1 when it is gone. */
static int find_rotated(const char *path, uint64_t ino)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? omni_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : omni_strdup(".");
    DIR *d = opendir(dir);
    free(dir);
    if (d == NULL)
        return -1;
    int fd = -1;
    for (struct dirent *e; fd < 0 && (e = readdir(d)) != NULL;) {
        struct stat st;
        if ((uint64_t)e->d_ino == ino && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && (uint64_t)st.st_ino == ino)
            fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    }
    closedir(d);
    return fd;
}

/* Resumes in the rotated file at the saved position when it is still beside path with its first bytes as
 * saved: what it held past that position was never read, and is read before the new file. Takes old (an fd). */
static bool resume_rotated(follow_t *f, int old)
{
    struct stat st;
    uint64_t h;
    if (fstat(old, &st) != 0 || f->s_off > (uint64_t)st.st_size || head_hash(old, f->s_head_len, &h) != 0 ||
        h != f->s_head_hash) {
        close(old);
        return false;
    }
    f->fd = old;
    f->ino = f->s_ino;
    f->off = f->s_off;
    f->line = f->s_line;
    f->head_len = f->s_head_len;
    f->head_hash = f->s_head_hash;
    f->rotated = true; /* read to its end, then the file at path from its start */
    f->start_at_end = false;
    omni_info("%s: rotated while stopped: finishing the old file after line %lu (byte %" PRIu64 ") first", f->path,
              f->line, f->off);
    return true;
}

/* Opens path when it exists. Returns 0 (open, or not there yet) or -1 on an error. */
static int open_file(follow_t *f)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT && f->start_at_end) {
        /* Not there when first looked for: whatever the PBX writes into it from now on is new, the calls
         * already in it when it is first seen included. */
        omni_info("%s: does not exist yet: it will be read from its start when it appears", f->path);
        f->start_at_end = false;
    }
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL; /* a FIFO or a device has no offset to keep: "Invalid argument" */
        return -1;
    }
    f->fd = fd;
    f->ino = (uint64_t)st.st_ino;
    f->off = 0;
    f->line = 0;
    f->head_len = 0;
    uint64_t h;
    if (f->have_saved) {
        f->have_saved = false;
        if (f->s_ino == f->ino && f->s_off <= (uint64_t)st.st_size &&
            head_hash(fd, f->s_head_len, &h) == 0 && h == f->s_head_hash) {
            f->off = f->s_off;
            f->line = f->s_line;
            f->head_len = f->s_head_len;
            f->head_hash = f->s_head_hash;
            omni_info("%s: resuming after line %lu (byte %" PRIu64 ")", f->path, f->line, f->off);
        } else {
            int old = f->s_ino != f->ino ? find_rotated(f->path, f->s_ino) : -1;
            if (old >= 0 && resume_rotated(f, old)) {
                close(fd);
                f->dirty = true;
                return 0;
            }
            omni_info("%s: a new file since the last run: reading it from the start", f->path);
        }
    } else if (f->start_at_end) {
        find_end(f, (uint64_t)st.st_size);
        omni_info("%s: starting at its end, after line %lu (start: end; no saved position)", f->path, f->line);
    }
    f->start_at_end = false; /* files that appear later (rotation) are read whole */
    f->dirty = true;
    return 0;
}

/* Restarts at 0 when the file shrank below the position or its first bytes changed. */
static void check_replaced(follow_t *f)
{
    struct stat st;
    uint64_t h;
    if (fstat(f->fd, &st) != 0)
        return;
    const char *what = (uint64_t)st.st_size < f->off ? "truncated"
                     : f->head_len > 0 && (head_hash(f->fd, f->head_len, &h) != 0 || h != f->head_hash)
                         ? "rewritten in place" : NULL;
    if (what == NULL)
        return;
    omni_warn("%s: %s (size %lld, position %" PRIu64 "): reading from the start", f->path, what,
              (long long)st.st_size, f->off);
    f->off = f->base_off = 0;
    f->line = f->base_line = 0;
    f->head_len = 0;
    f->dirty = true;
}

/* Offset just past the newline ending a line that continues at pos, or 0 while it has none. */
static uint64_t skip_line(follow_t *f, uint64_t pos)
{
    for (;;) {
        ssize_t n = pread(f->fd, f->buf, FOLLOW_LINE_MAX, (off_t)pos);
        if (n <= 0)
            return 0;
        char *nl = memchr(f->buf, '\n', (size_t)n);
        if (nl != NULL)
            return pos + (uint64_t)(nl - f->buf) + 1;
        pos += (uint64_t)n;
    }
}

/* Reads lines to the end of what is complete. Returns lines taken or -1; *stopped when on_line said 1
 * or max was reached. */
static int read_lines(follow_t *f, size_t max, bool *stopped)
{
    size_t taken = 0;
    *stopped = false;
    while (taken < max) {
        /* Room for the longest line with "\r\n": a line of FOLLOW_LINE_MAX bytes is read whatever ends it. */
        ssize_t n = pread(f->fd, f->buf, FOLLOW_LINE_MAX + 2, (off_t)f->off);
        if (n < 0) {
            omni_warn("%s: read: %s", f->path, strerror(errno));
            return -1;
        }
        size_t pos = 0;
        while (taken < max) {
            char *nl = memchr(f->buf + pos, '\n', (size_t)n - pos);
            if (nl == NULL)
                break;
            size_t len = (size_t)(nl - (f->buf + pos)), eol = len + 1;
            if (len > 0 && f->buf[pos + len - 1] == '\r')
                len--;
            follow_pos_t where = { f->path, f->line + 1, f->ino, f->off };
            if (len > FOLLOW_LINE_MAX) /* one byte over, its newline in the buffer: skipped as below */
                omni_warn("%s: line %lu is longer than %d bytes: skipped", f->path, f->line + 1, FOLLOW_LINE_MAX);
            else if (f->on_line(f->user, f->buf + pos, len, &where) != 0) {
                *stopped = true;
                return (int)taken;
            }
            f->off += eol;
            f->line++;
            pos += eol;
            taken++;
            f->dirty = true;
        }
        if (taken == max) {
            *stopped = true;
            break;
        }
        if (pos > 0)
            continue;           /* the buffer ended mid-line: read on from the new offset */
        if ((size_t)n < FOLLOW_LINE_MAX + 2)
            break;              /* no complete line left: the rest waits for its newline */
        uint64_t end = skip_line(f, f->off + (uint64_t)n);
        if (end == 0)
            break;              /* the long line is not finished yet */
        omni_warn("%s: line %lu is longer than %d bytes: skipped", f->path, f->line + 1, FOLLOW_LINE_MAX);
        f->off = end;
        f->line++;
        f->dirty = true;
    }
    return (int)taken;
}

int follow_read(follow_t *f, size_t max_lines, bool *more)
{
    *more = false;
    if (f->fd < 0) {
        if (open_file(f) != 0) {
            omni_warn("%s: %s", f->path, strerror(errno));
            return -1;
        }
        if (f->fd < 0)
            return 0; /* not there yet */
    }
    check_replaced(f);
    f->base_off = f->off;
    f->base_line = f->line;
    bool stopped;
    int taken = read_lines(f, max_lines, &stopped);
    if (taken < 0 || stopped) {
        *more = taken > 0 && (size_t)taken == max_lines;
        return taken;
    }
    if (f->rotated) {
        f->switch_ready = true; /* read out after one more poll: the checkpoint moves to the new file, */
        *more = true;           /* which may hold lines already */
        return taken;
    }
    struct stat st;
    if (stat(f->path, &st) == 0 && (uint64_t)st.st_ino != f->ino) {
        /* Not switched at once: late writes to the old file get one poll interval to arrive. */
        omni_info("%s: rotated (a new file is in its place): finishing the old one", f->path);
        f->rotated = true;
    }
    return taken;
}

static int save(follow_t *f)
{
    if (f->off > f->head_len && f->head_len < FOLLOW_HEAD_MAX) {
        uint64_t n = f->off < FOLLOW_HEAD_MAX ? f->off : FOLLOW_HEAD_MAX, h;
        if (head_hash(f->fd, n, &h) == 0) {
            f->head_len = n;
            f->head_hash = h;
        }
    }
    char state[160];
    int n = snprintf(state, sizeof state, "v1 %" PRIu64 " %" PRIu64 " %lu %" PRIu64 " %016" PRIx64 "\n", f->ino,
                     f->off, f->line, f->head_len, f->head_hash);
    if (omni_state_write(f->state_dir, f->state_name, state, (size_t)n) != 0)
        return -1;
    f->dirty = false;
    return 0;
}

int follow_checkpoint(follow_t *f)
{
    if (f->switch_ready) {
        struct stat st;
        if (fstat(f->fd, &st) == 0 && (uint64_t)st.st_size > f->off)
            omni_warn("%s: line %lu of the rotated file has no newline: dropped (%" PRIu64 " bytes)", f->path,
                      f->line + 1, (uint64_t)st.st_size - f->off);
        close(f->fd);
        f->fd = -1;
        f->rotated = f->switch_ready = false;
        if (open_file(f) != 0)
            omni_warn("%s: %s", f->path, strerror(errno)); /* follow_read tries again */
        if (f->fd < 0)
            return 0; /* nothing to save: the state still names the old file, whose inode is not at path */
        omni_info("%s: now reading the new file", f->path);
    }
    if (!f->dirty || f->fd < 0)
        return 0;
    return save(f);
}

void follow_rewind(follow_t *f)
{
    f->off = f->base_off;
    f->line = f->base_line;
    f->switch_ready = false;
}

bool follow_where(const follow_t *f, uint64_t *offset, unsigned long *line)
{
    *offset = f->off;
    *line = f->line;
    return f->fd >= 0;
}
