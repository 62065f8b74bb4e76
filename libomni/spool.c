/* The OMNI/1 client's spool: an append-only log of submitted and answered messages.
 *
 * Record format (spool.log is a sequence of these, nothing else):
 *
 *     OMS1 <type> <idlen> <bodylen> <crc>\n<id><body>\n
 *
 *   type     M = message submitted (body: the message JSON), A = acked, N = nacked (body empty)
 *   idlen    decimal, 1..OMNI_MSG_ID_MAX;  bodylen: decimal, 0..OMNI_FRAME_HARD_MAX
 *   crc      CRC-32 (IEEE, as zlib) over "OMS1 <type> <idlen> <bodylen>", the id and the body, as 8
 *            lowercase hex digits, so a damaged length is caught as surely as a damaged body
 *   the final \n is part of the record: a record is complete only when it is there.
 *
 * Records are self-delimiting and the file stays readable with less(1). Replay reads from the start: an
 * M makes a message live, a later A or N for its id makes it dead; the live ones, in the order of their
 * M records, are what the client sends again. A record that runs past the end of the file, or a bad one
 * with no good record after it, is a torn write from a crash: the file is truncated there. A bad record
 * followed by good ones is real damage: replay skips it and goes on at the next good record (so one bad
 * sector costs only the records it hit), the file is kept aside as spool.log.corrupt-<ms> for an
 * operator, and spool.log is rewritten with the unanswered messages read.
 *
 * Writing: records are gathered in memory, in the order they are appended, and written to the file with
 * one write(2) by omni_spool_write (the client calls it before it sends what was submitted, and after a
 * round of answers) or omni_spool_sync (write, then one fdatasync for the batch). A record is thus in the
 * file before its message can go to the router, and an answer always comes after its message's M record.
 * A failed write is cut back off the file and the gathered records are kept for the next try.
 *
 * Durability: submit records are made durable in batches by omni_spool_sync (one write, one fdatasync).
 * Answer records are never synced on their own: losing one costs a resend the router deduplicates. A NACK
 * first goes to dead-letter.jsonl, fsynced, so a refused message is never lost between the two files. */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "omni/log.h"
#include "omni/util.h"

struct omni_spool {
    char *dir, *path, *tmp_path, *dl_path;
    int fd;            /* spool.log, O_APPEND, flocked */
    int dl_fd;         /* dead-letter.jsonl, opened on the first NACK; -1 until then */
    size_t file_bytes; /* the end of the last good record */
    size_t live_bytes; /* bytes of M records not yet answered */
    size_t compact_min;
    char *buf;         /* records appended and not yet written, in order; buf_len bytes of buf_cap */
    size_t buf_len, buf_cap;
    bool write_failed; /* the last write failed (and was cut back off): buf holds what it tried */
    bool broken;       /* a failed write could not be rolled back: refuse further appends */
};

/* The record's header up to its CRC, "OMS1 <type> <idlen> <bodylen>", into hdr (OMNI_SPOOL_HDR_MAX
 * bytes); returns its length. By hand: printf would cost more than the rest of the record. */
static size_t header(char *hdr, char type, size_t idlen, size_t bodylen)
{
    size_t p = strlen(OMNI_SPOOL_MAGIC);
    memcpy(hdr, OMNI_SPOOL_MAGIC, p);
    hdr[p++] = type;
    hdr[p++] = ' ';
    p += omni_fmt_u64(hdr + p, idlen);
    hdr[p++] = ' ';
    p += omni_fmt_u64(hdr + p, bodylen);
    return p;
}

/* Appends one whole record to buf (grown as needed), whose length *len grows by the record's size;
 * returns that size. */
static size_t record_put(char **buf, size_t *len, size_t *cap, char type, const char *id, size_t idlen,
                         const char *body, size_t bodylen)
{
    static const char hex[] = "0123456789abcdef";
    char hdr[OMNI_SPOOL_HDR_MAX];
    size_t p = header(hdr, type, idlen, bodylen);
    uint32_t crc = omni_spool_crc32(0, hdr, p);
    crc = omni_spool_crc32(crc, id, idlen);
    crc = omni_spool_crc32(crc, body, bodylen);
    hdr[p++] = ' ';
    for (int i = 7; i >= 0; i--)
        hdr[p++] = hex[(crc >> (4 * i)) & 0xf];
    hdr[p++] = '\n';
    size_t n = p + idlen + bodylen + 1;
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 64 * 1024;
        while (c < *len + n)
            c *= 2;
        *buf = omni_realloc(*buf, c);
        *cap = c;
    }
    char *rec = *buf + *len;
    memcpy(rec, hdr, p);
    memcpy(rec + p, id, idlen);
    if (bodylen > 0)
        memcpy(rec + p + idlen, body, bodylen);
    rec[n - 1] = '\n';
    *len += n;
    return n;
}

static size_t record_size(size_t idlen, size_t bodylen)
{
    char hdr[OMNI_SPOOL_HDR_MAX];
    return header(hdr, 'M', idlen, bodylen) + 10 + idlen + bodylen + 1;
}

/* ---- open, close ------------------------------------------------------------------------------------ */

/* Opens and locks spool.log. A compaction elsewhere may have renamed a new file over the path between
 * our open and our flock; the inode check catches that and tries again. */
static int open_locked(omni_spool_t *sp, char *err, size_t errsz)
{
    for (int tries = 0; tries < 10; tries++) {
        bool created = true;
        int fd = open(sp->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) {
            created = false;
            fd = open(sp->path, O_RDWR | O_APPEND | O_CLOEXEC);
        }
        if (fd < 0) {
            snprintf(err, errsz, "cannot open spool %s: %s", sp->path, strerror(errno));
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK)
                snprintf(err, errsz, "spool %s is in use by another client (locked)", sp->path);
            else
                snprintf(err, errsz, "cannot lock spool %s: %s", sp->path, strerror(errno));
            close(fd);
            return -1;
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(sp->path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            /* A file whose name may vanish in a crash must not hold messages we promised to keep. */
            if (created && omni_fsync_dir(sp->dir) != 0) {
                snprintf(err, errsz, "cannot fsync spool directory %s: %s", sp->dir, strerror(errno));
                close(fd);
                return -1;
            }
            sp->fd = fd;
            return 0;
        }
        close(fd);
    }
    snprintf(err, errsz, "spool %s keeps being replaced while opening it", sp->path);
    return -1;
}

/* Acts on how the replay ended. Returns 0, or -1 with err filled. */
static int repair(omni_spool_t *sp, omni_replay_t *rp, char *err, size_t errsz)
{
    if (rp->end == OMNI_REPLAY_TORN) {
        size_t lost = rp->file_bytes - rp->good_bytes;
        omni_warn("spool %s: torn record at offset %zu (%zu bytes, a write cut short by a crash): truncated",
                  sp->path, rp->good_bytes, lost);
        if (ftruncate(sp->fd, (off_t)rp->good_bytes) != 0 || fdatasync(sp->fd) != 0) {
            snprintf(err, errsz, "cannot truncate spool %s: %s", sp->path, strerror(errno));
            return -1;
        }
    } else if (rp->end == OMNI_REPLAY_DAMAGED) {
        /* Appending after the damage would make every later replay meet it again, so the file is rewritten
         * with the good records; the damaged one is kept for an operator, since the damage held records. */
        char *aside = omni_asprintf("%s.corrupt-%lld", sp->path, (long long)omni_wall_ms());
        bool kept = link(sp->path, aside) == 0;
        omni_warn("spool %s: corrupt record at offset %zu: %zu damaged bytes skipped, the good records before "
                  "and after them read (%zu unanswered messages; damaged file %s %s)", sp->path, rp->good_bytes,
                  rp->skipped_bytes, rp->nlive, kept ? "kept as" : "could not be kept as", aside);
        free(aside);
    }
    if (rp->end == OMNI_REPLAY_DAMAGED || omni_spool_wants_compact(sp)) {
        const omni_spool_rec_t **ptrs = omni_malloc((rp->nlive + 1) * sizeof *ptrs);
        for (size_t i = 0; i < rp->nlive; i++)
            ptrs[i] = &rp->live[i];
        int rc = omni_spool_compact(sp, ptrs, rp->nlive);
        free(ptrs);
        if (rc != 0 && rp->end == OMNI_REPLAY_DAMAGED) {
            snprintf(err, errsz, "cannot rewrite damaged spool %s: %s", sp->path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* fsyncs the directory holding dir, which was just created. */
static void sync_parent(const char *dir)
{
    char *parent = omni_strdup(dir);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/')
        parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    const char *p = slash == NULL ? "." : slash == parent ? "/" : (*slash = '\0', parent);
    if (omni_fsync_dir(p) != 0)
        omni_warn("cannot fsync %s after creating %s: %s", p, dir, strerror(errno));
    free(parent);
}

omni_spool_t *omni_spool_open(const char *dir, omni_spool_rec_t **live, size_t *nlive, char *err,
                              size_t errsz)
{
    *live = NULL;
    *nlive = 0;
    struct stat st;
    bool fresh = stat(dir, &st) != 0;
    if (omni_mkdir_p(dir, 0700) != 0) {
        snprintf(err, errsz, "cannot create spool directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    if (fresh) /* a directory whose name may vanish in a crash would take the messages with it */
        sync_parent(dir);
    omni_spool_t *sp = omni_calloc(1, sizeof *sp);
    sp->dir = omni_strdup(dir);
    sp->path = omni_asprintf("%s/spool.log", dir);
    sp->tmp_path = omni_asprintf("%s/spool.log.tmp", dir);
    sp->dl_path = omni_asprintf("%s/dead-letter.jsonl", dir);
    sp->fd = sp->dl_fd = -1;
    sp->compact_min = 1024 * 1024;
    if (open_locked(sp, err, errsz) != 0) {
        omni_spool_close(&sp);
        return NULL;
    }
    omni_replay_t rp;
    if (omni_spool_replay(sp->fd, &rp) != 0) {
        snprintf(err, errsz, "cannot read spool %s: %s", sp->path, strerror(errno));
        omni_spool_close(&sp);
        return NULL;
    }
    sp->file_bytes = rp.good_bytes;
    sp->live_bytes = rp.live_bytes;
    if (repair(sp, &rp, err, errsz) != 0) {
        omni_spool_recs_free(&rp.live, rp.nlive);
        omni_spool_close(&sp);
        return NULL;
    }
    if (rp.nlive > 0)
        omni_info("spool %s: unanswered messages to send again: %zu", sp->path, rp.nlive);
    *live = rp.live;
    *nlive = rp.nlive;
    return sp;
}

void omni_spool_close(omni_spool_t **spool)
{
    if (spool == NULL || *spool == NULL)
        return;
    omni_spool_t *sp = *spool;
    /* What was gathered goes to the file as appends always did, unsynced: to the page cache. */
    if (sp->fd >= 0 && sp->buf_len > 0 && omni_spool_write(sp) != 0)
        omni_warn("spool %s: %zu bytes of records not written on close (their messages are sent again)",
                  sp->path, sp->buf_len);
    if (sp->fd >= 0)
        close(sp->fd);
    if (sp->dl_fd >= 0)
        close(sp->dl_fd);
    free(sp->dir), free(sp->path), free(sp->tmp_path), free(sp->dl_path);
    free(sp->buf);
    free(sp);
    *spool = NULL;
}

/* ---- writing ---------------------------------------------------------------------------------------- */


/* Gathers one record for the next write. Returns its size, or 0 with errno EIO once the file is broken. */
static size_t append(omni_spool_t *sp, char type, const char *id, const char *body, size_t bodylen)
{
    if (sp->broken) {
        errno = EIO;
        return 0;
    }
    return record_put(&sp->buf, &sp->buf_len, &sp->buf_cap, type, id, strlen(id), body, bodylen);
}

int omni_spool_write(omni_spool_t *sp)
{
    if (sp->broken) {
        errno = EIO;
        return -1;
    }
    if (sp->buf_len == 0)
        return 0;
    if (omni_write_all(sp->fd, sp->buf, sp->buf_len) != 0) {
        /* A torn record left in the middle would make the next replay stop there and lose everything
         * appended after it: cut it back off, and keep the records to write them again. */
        int e = errno;
        if (ftruncate(sp->fd, (off_t)sp->file_bytes) != 0)
            sp->broken = true;
        if (!sp->write_failed || sp->broken)
            omni_error("spool %s: cannot append: %s%s", sp->path, strerror(e),
                       sp->broken ? "; cannot truncate it either, refusing further writes" : "");
        sp->write_failed = true;
        errno = EIO;
        return -1;
    }
    if (sp->write_failed)
        omni_info("spool %s: writing works again", sp->path);
    sp->write_failed = false;
    sp->file_bytes += sp->buf_len;
    sp->buf_len = 0;
    if (sp->buf_cap > OMNI_SPOOL_BUF_KEEP) { /* one large batch should not pin its memory for good */
        free(sp->buf);
        sp->buf = NULL;
        sp->buf_cap = 0;
    }
    return 0;
}

size_t omni_spool_unwritten(const omni_spool_t *sp) { return sp->buf_len; }

bool omni_spool_write_failed(const omni_spool_t *sp) { return sp->write_failed || sp->broken; }

int omni_spool_submit(omni_spool_t *sp, const char *id, const char *json, size_t len)
{
    size_t n = append(sp, 'M', id, json, len);
    if (n == 0)
        return -1;
    sp->live_bytes += n;
    return 0;
}

/* The answered message's M record is dead weight from now on. */
static void forget(omni_spool_t *sp, const char *id, size_t json_len)
{
    size_t n = record_size(strlen(id), json_len);
    sp->live_bytes = sp->live_bytes > n ? sp->live_bytes - n : 0;
}

int omni_spool_ack(omni_spool_t *sp, const char *id, size_t json_len)
{
    if (append(sp, 'A', id, NULL, 0) == 0)
        return -1;
    forget(sp, id, json_len);
    return 0;
}

/* Opens dead-letter.jsonl for appending, durably created. A line cut short by an earlier crash gets its
 * newline, so the next entry does not run into it. Returns 0 or -1 (errno). */
static int dead_letter_open(omni_spool_t *sp)
{
    bool created = true;
    int fd = open(sp->dl_path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        created = false;
        fd = open(sp->dl_path, O_RDWR | O_APPEND | O_CLOEXEC);
    }
    if (fd < 0)
        return -1;
    char last = '\n';
    off_t end = lseek(fd, 0, SEEK_END);
    bool ok = end >= 0 && (end == 0 || pread(fd, &last, 1, end - 1) == 1);
    ok = ok && (last == '\n' || omni_write_all(fd, "\n", 1) == 0);
    ok = ok && (!created || omni_fsync_dir(sp->dir) == 0);
    if (!ok) {
        int e = errno;
        close(fd);
        if (created)
            unlink(sp->dl_path); /* an entry that may vanish in a crash must not be counted on */
        errno = e;
        return -1;
    }
    sp->dl_fd = fd;
    return 0;
}

static int dead_letter(omni_spool_t *sp, const char *id, const char *reason, const char *json, size_t len)
{
    if (sp->dl_fd < 0 && dead_letter_open(sp) != 0)
        return -1;
    char when[40];
    json_t *msg = json_loadb(json, len, 0, NULL);
    if (msg == NULL)
        msg = json_stringn(json, len); /* NULL when not UTF-8 (submit refuses those): stored as null */
    json_t *doc = json_pack("{s:s, s:s, s:s, s:o?}", "id", id, "reason", reason, "nacked_at",
                            omni_rfc3339(omni_wall_ms(), when, sizeof when), "message", msg);
    char *line = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (line == NULL) {
        errno = EINVAL;
        return -1;
    }
    size_t n = strlen(line);
    line[n] = '\n'; /* replaces the NUL: the buffer is written by length */
    off_t end = lseek(sp->dl_fd, 0, SEEK_END);
    int rc = end >= 0 && omni_write_all(sp->dl_fd, line, n + 1) == 0 && fdatasync(sp->dl_fd) == 0 ? 0 : -1;
    if (rc != 0 && end >= 0) { /* cut a partial line back off, as omni_spool_write does */
        int e = errno;
        if (ftruncate(sp->dl_fd, end) != 0)
            omni_warn("spool %s: cannot cut a partial line: %s", sp->dl_path, strerror(errno));
        errno = e;
    }
    free(line);
    return rc;
}

int omni_spool_nack(omni_spool_t *sp, const char *id, const char *reason, const char *json, size_t len)
{
    if (dead_letter(sp, id, reason, json, len) != 0) {
        int e = errno;
        omni_error("spool %s: cannot write dead letter for %s: %s", sp->dl_path, id, strerror(e));
        errno = e;
        return -1;
    }
    if (append(sp, 'N', id, NULL, 0) == 0)
        return -1;
    forget(sp, id, len);
    return 0;
}

int omni_spool_sync(omni_spool_t *sp)
{
    if (omni_spool_write(sp) != 0)
        return -1;
    return fdatasync(sp->fd);
}

bool omni_spool_wants_compact(const omni_spool_t *sp)
{
    return sp->file_bytes > sp->compact_min && sp->file_bytes - sp->live_bytes > sp->file_bytes / 2;
}

void omni_spool_set_compact_min(omni_spool_t *sp, size_t bytes) { sp->compact_min = bytes; }

size_t omni_spool_size(const omni_spool_t *sp) { return sp->file_bytes; }

int omni_spool_compact(omni_spool_t *sp, const omni_spool_rec_t *const *live, size_t n)
{
    if (sp->buf_len > 0) { /* the live set may not be what the file plus those records say */
        errno = EBUSY;
        return -1;
    }
    size_t bytes = 0;
    int fd = open(sp->tmp_path, O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    /* Locked before it takes the name, so no other client can ever hold the new spool.log. */
    bool ok = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (size_t i = 0; ok && i < n; i++) {
        bytes += record_put(&buf, &len, &cap, 'M', live[i]->id, strlen(live[i]->id), live[i]->json, live[i]->len);
        if (len >= OMNI_SPOOL_BUF_KEEP || i + 1 == n) {
            ok = omni_write_all(fd, buf, len) == 0;
            len = 0;
        }
    }
    free(buf);
    ok = ok && fsync(fd) == 0 && rename(sp->tmp_path, sp->path) == 0;
    if (!ok) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(sp->tmp_path);
        }
        omni_warn("spool %s: compaction failed, going on with the old file: %s", sp->path, strerror(e));
        errno = e;
        return -1;
    }
    if (omni_fsync_dir(sp->dir) != 0) /* either file is a correct spool: only the size gain may be lost */
        omni_warn("spool %s: cannot fsync the directory after compaction: %s", sp->dir, strerror(errno));
    omni_info("spool %s: compacted %zu bytes to %zu (%zu unanswered messages)", sp->path, sp->file_bytes,
              bytes, n);
    close(sp->fd);
    sp->fd = fd;
    sp->file_bytes = sp->live_bytes = bytes;
    sp->broken = false;
    return 0;
}
