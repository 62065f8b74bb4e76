/* The template connector: follows a text file, one message per line ("SENDER<TAB>TEXT", or "TEXT" from
 * the configured sender), and hands each line to the router as a message on channel x-template.
 *
 * It shows the whole contract of include/omni/connector.h in one page:
 *   - own config keys in a table (template.path, template.sender, template.max_batch);
 *   - open() reads the saved offset, poll() reads new lines, close() frees;
 *   - submit every line, commit once per batch, and only then save the offset: the offset is how this
 *     source is "acknowledged", so a crash re-reads lines (same ids: the router deduplicates) and never
 *     skips one;
 *   - stable ids: "x-template:<inode>:<offset>:<hash of the line>" is the same each time the line is read;
 *   - no blocking: a regular file never blocks; a missing file is waited for, not an error;
 *   - back-pressure: when submit() answers EAGAIN the batch stops before that line.
 * Limits: a line is at most TPL_LINE_MAX bytes (a longer one is skipped with a warning); a partial last
 * line (no newline yet) waits for its newline. Unlike omni-phonelog it does not follow a rotated file: a
 * new inode or a shorter file restarts at offset 0. */
#include "template.h"
#include "omni/log.h"
#include "omni/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TPL_LINE_MAX 65536      /* bytes in one line, newline excluded; the router's text limit is the same */
#define TPL_STATE "template.offset"

typedef struct tpl {
    const char *path, *sender; /* borrowed from the runtime's config */
    long long max_batch;
    uint64_t ino;              /* the file the offset belongs to */
    uint64_t offset;           /* first byte not yet taken (saved after each commit) */
    char *buf;                 /* TPL_LINE_MAX + 1 bytes */
} tpl_t;

static const omni_connector_key_t tpl_keys[] = {
    { "path", OMNI_KEY_PATH, NULL, true, 0, 4096, NULL, "the text file to follow, one message per line" },
    { "sender", OMNI_KEY_STRING, "template-user", false, 1, 256, NULL,
      "from.id of a line without \"SENDER<TAB>\"" },
    { "max_batch", OMNI_KEY_INT, "500", false, 1, 100000, NULL, "lines read in one poll" },
    { NULL, 0, NULL, false, 0, 0, NULL, NULL },
};

/* FNV-1a, 64 bits: a short, stable fingerprint of a line for its id (not a security property). */
static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static int tpl_open(omni_connector_t *ctx)
{
    tpl_t *t = omni_calloc(1, sizeof *t);
    t->path = omni_connector_cfg_str(ctx, "path");
    t->sender = omni_connector_cfg_str(ctx, "sender");
    t->max_batch = omni_connector_cfg_int(ctx, "max_batch");
    t->buf = omni_malloc(TPL_LINE_MAX + 1);
    char *state = NULL;
    int rc = omni_connector_state_load(ctx, TPL_STATE, &state, NULL);
    if (rc < 0) {
        omni_error("%s/%s: %s", omni_connector_state_dir(ctx), TPL_STATE, strerror(errno));
        free(t->buf);
        free(t);
        return -1;
    }
    if (rc == 0 && sscanf(state, "%" SCNu64 " %" SCNu64, &t->ino, &t->offset) != 2)
        omni_warn("%s/%s: unreadable, starting at the beginning", omni_connector_state_dir(ctx), TPL_STATE);
    free(state);
    omni_connector_set_user(ctx, t);
    omni_connector_status(ctx, "following %s", t->path);
    return 0;
}

static void tpl_close(omni_connector_t *ctx)
{
    tpl_t *t = omni_connector_user(ctx);
    free(t->buf);
    free(t);
    omni_connector_set_user(ctx, NULL);
}

/* Submits one line found at offset off. Returns 0 when the line is taken (sent, or invalid and skipped),
 * -1 when it must be read again later (errno from omni_connector_submit). */
static int tpl_line(omni_connector_t *ctx, tpl_t *t, const char *line, size_t len, uint64_t off)
{
    if (len > 0 && line[len - 1] == '\r') /* a line ended by \r\n: the \r is its end, not its text */
        len--;
    if (len == 0)
        return 0; /* "\r\n" alone is as blank as "\n" alone: no message */
    if (memchr(line, '\0', len) != NULL) {
        /* a string stops at it: the rest of the line would be lost without a word */
        omni_warn("%s: the line at byte %" PRIu64 " holds a NUL byte: not sent", t->path, off);
        omni_connector_invalid(ctx, 1);
        return 0;
    }
    char *copy = omni_strndup(line, len);
    const char *sender = t->sender, *text = copy;
    char *tab = strchr(copy, '\t');
    if (tab != NULL) {
        *tab = '\0';
        sender = copy;
        text = tab + 1;
    }
    char id[96], now[40];
    snprintf(id, sizeof id, "x-template:%" PRIu64 ":%" PRIu64 ":%016" PRIx64, t->ino, off, fnv1a(line, len));
    omni_msg_t *msg = omni_msg_new(id, "x-template", sender, omni_rfc3339(omni_wall_ms(), now, sizeof now), text);
    omni_msg_set_meta(msg, "offset", json_integer((json_int_t)off));
    int rc = omni_connector_submit(ctx, msg); /* an invalid line (bad UTF-8, ...) is logged and counted */
    omni_msg_destroy(&msg);
    free(copy);
    return rc < 0 ? -1 : 0;
}

/* Offset just past the newline ending a line that continues at pos, or 0 when it has no newline yet. */
static uint64_t skip_line(int fd, char *buf, uint64_t pos)
{
    for (;;) {
        ssize_t n = pread(fd, buf, TPL_LINE_MAX + 1, (off_t)pos);
        if (n <= 0)
            return 0;
        char *nl = memchr(buf, '\n', (size_t)n);
        if (nl != NULL)
            return pos + (uint64_t)(nl - buf) + 1;
        pos += (uint64_t)n;
    }
}

static int tpl_poll(omni_connector_t *ctx)
{
    tpl_t *t = omni_connector_user(ctx);
    int fd = open(t->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT) {
        omni_connector_status(ctx, "waiting for %s to appear", t->path);
        return 0; /* nothing to read yet is not a failure */
    }
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        omni_warn("%s: %s", t->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if ((uint64_t)st.st_ino != t->ino || (uint64_t)st.st_size < t->offset) {
        if (t->ino != 0)
            omni_info("%s: new or truncated file: reading from the start", t->path);
        t->ino = (uint64_t)st.st_ino;
        t->offset = 0;
    }
    uint64_t off = t->offset;
    long long taken = 0;
    bool stalled = false;
    int stall_errno = 0;
    while (taken < t->max_batch && !stalled) {
        ssize_t n = pread(fd, t->buf, TPL_LINE_MAX + 1, (off_t)off);
        if (n <= 0)
            break;
        char *nl = memchr(t->buf, '\n', (size_t)n);
        if (nl == NULL) {
            if (n <= TPL_LINE_MAX)
                break; /* a partial last line: wait for its newline */
            uint64_t end = skip_line(fd, t->buf, off + (uint64_t)n);
            if (end == 0)
                break; /* the long line is not complete yet; skip it whole once it is */
            omni_warn("%s: line at byte %" PRIu64 " is longer than %d bytes: skipped", t->path, off, TPL_LINE_MAX);
            off = end;
            taken++;
            continue;
        }
        size_t len = (size_t)(nl - t->buf);
        if (len > 0 && tpl_line(ctx, t, t->buf, len, off) != 0) {
            stalled = true;  /* spool full or broken: this line is read again next time */
            stall_errno = errno;
            break;
        }
        off += len + 1;
        taken++;
    }
    close(fd);
    /* Spool full (EAGAIN): not a source failure; poll() runs again after poll_ms. */
    int rc = stalled && stall_errno != EAGAIN ? -1 : 0;
    if (off == t->offset)
        return rc;
    /* The order that makes the promise: spool durable first, then acknowledge the source. */
    if (omni_connector_commit(ctx) != 0) {
        omni_error("spool sync: %s", strerror(errno));
        return -1;
    }
    char state[64];
    int n = snprintf(state, sizeof state, "%" PRIu64 " %" PRIu64 "\n", t->ino, off);
    if (omni_connector_state_save(ctx, TPL_STATE, state, (size_t)n) != 0) {
        omni_error("%s/%s: %s", omni_connector_state_dir(ctx), TPL_STATE, strerror(errno));
        return -1; /* the lines will be read again: same ids, no duplicates at the router */
    }
    t->offset = off;
    if (taken == t->max_batch)
        omni_connector_poll_in(ctx, 0); /* more may be waiting: do not sleep poll_ms */
    omni_connector_status(ctx, "following %s at byte %" PRIu64, t->path, off);
    return rc;
}

const omni_connector_def_t template_connector = {
    .name = "template",
    .channel = "x-template",
    .summary = "Follows a text file and sends each new line to omnirouted (a model connector).",
    .keys = tpl_keys,
    .open = tpl_open,
    .poll = tpl_poll,
    .close = tpl_close,
};
