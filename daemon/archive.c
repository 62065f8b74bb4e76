/* See archive.h. The order that makes "nothing leaves silently, nothing is written twice":
 *   1. archive_claim.lua claims a batch and adds to each conversation's archive_tried the file and the offset its
 *      record will land at or after, returning what earlier claims (a router's that died or failed) named
 *      (with redis.wait_replicas, answered once the replicas have the claim: a failover keeps it);
 *   2. the writer thread looks in each of those files from its offset for a record already there (a router
 *      killed after its fsync and before step 3 left it), appends what is not there, fsyncs;
 *   3. archive_done.lua deletes what was fsynced, while the claim is still this router's.
 * A claim is written only within ARCHIVE_WRITE_MS of being made, half the lease, so a claim another router may
 * take over (after ARCHIVE_LEASE_MS) is never written by its first owner after the second looked. */
#define _GNU_SOURCE /* pipe2 */
#include "archive.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "clock.h"
#include "decision_record.h"
#include "omni/log.h"
#include "omni/util.h"
#include "scripts.h"

typedef struct item {
    char *conv;
    char *tried;     /* every file an earlier claim of it named, a line "OFFSET FILE" each ("" when none) */
    char *found_in;  /* the file of tried its record was found in (ITEM_FOUND) */
    char *data;      /* archive_claim.lua's data */
    char *line;      /* the record, newline-terminated: made by the writer thread from data */
    int state;       /* after the writer: ITEM_WRITTEN, ITEM_FOUND (an earlier claim's, fsynced again), ITEM_LATE
                      * (released: claimed again), ITEM_BAD (data not a conversation: left claimed) */
} item_t;

enum { ITEM_PENDING, ITEM_WRITTEN, ITEM_FOUND, ITEM_LATE, ITEM_BAD };

/* One batch, from the claim to archive_done.lua. Between the hand-over and the pipe's byte the thread owns it. */
typedef struct batch {
    item_t *items;
    size_t n;
    char *dir, *file;
    int64_t now;         /* the router's clock at the claim (its archive_claimed_at): the records' archived_at */
    int64_t write_until; /* monotonic ms: past it, nothing more is written (the claim may be taken over) */
    /* the writer's answer */
    char error[512]; /* "" when written */
    long long size;  /* the file's size after it, for the next claim's offset; -1: not opened */
} batch_t;

struct archive {
    loop_t *loop;
    store_t *store;
    const char *router;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch_t *todo; /* handed to the thread; NULL when it has nothing */
    bool stop;
    int pipe[2]; /* the thread writes one byte when a batch is done */
    /* the loop's */
    batch_t *cur;      /* the batch in flight (claim, write or done); NULL when idle */
    bool busy;         /* a claim or done script is in flight, or the thread has the batch */
    bool handed;       /* the thread has the batch (until its byte in the pipe is read) */
    bool full;         /* the last claim brought a batch: claim again at once */
    bool paused;       /* test: stopped before archive_done.lua (OMNIROUTER_TEST_ARCHIVE_PAUSE) */
    int64_t next_at;   /* monotonic ms of the next claim */
    int64_t error_logged_at;
    char last_error[512];
    char *known_file;  /* the file whose size is known, and that size */
    long long known_size;
    char prefix[128], tombstone[24], dedup[24]; /* archive_done.lua's: retention.tombstone, .dedup in ms */
    unsigned long long archived;
};

char *archive_file_name(const char *dir, int64_t wall_ms)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') /* "archive/" names the same directory: one slash before the name */
        n--;
    const char *slash = n > 0 && dir[n - 1] == '/' ? "" : "/"; /* "/" itself */
    return omni_asprintf("%.*s%s%04d-%02d-%02d.jsonl", (int)n, dir, slash, tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday);
}

/* cjson sends an empty list as {}: either is an empty array here. */
static json_t *list_of(json_t *v)
{
    return json_is_array(v) ? json_incref(v) : json_array();
}

/* One conversation of the claim's data as the record has it; decisions (ours, JSON text) as JSON. */
static json_t *conversation_json(json_t *c, int64_t now, bool top)
{
    json_t *o = json_object();
    json_object_set(o, "conversation", json_object_get(c, "conversation"));
    if (top)
        json_object_set_new(o, "archived_at", json_integer(now));
    json_object_set(o, "fields", json_object_get(c, "fields"));
    json_object_set_new(o, "messages", list_of(json_object_get(c, "messages")));
    json_t *ds = json_array(), *raw = json_object_get(c, "decisions");
    size_t i;
    json_t *d;
    if (json_is_array(raw))
        json_array_foreach(raw, i, d) {
            json_t *doc = json_loads(json_string_value(d) ? json_string_value(d) : "", JSON_DECODE_ANY, NULL);
            decision_record_complete(doc); /* the archive holds each record whole */
            json_array_append_new(ds, doc ? doc : json_incref(d));
        }
    json_object_set_new(o, "decisions", ds);
    return o;
}

/* The length of the valid UTF-8 sequence at p (n bytes left), or 0 when it is not one; *bad then says how many
 * bytes make its maximal ill-formed part (one U+FFFD each, as Unicode recommends). */
static size_t utf8_at(const unsigned char *p, size_t n, size_t *bad)
{
    unsigned char c = p[0];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xc2 && c <= 0xdf ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    *bad = 1;
    if (len == 0)
        return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned char lo = 0x80, hi = 0xbf;
        if (i == 1) { /* the second byte's range excludes overlong forms, surrogates and what is past U+10FFFF */
            lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
        }
        if (i >= n || p[i] < lo || p[i] > hi) {
            *bad = i;
            return 0;
        }
    }
    return len;
}

/* data with each ill-formed UTF-8 part as U+FFFD (a new string), or NULL when it is all UTF-8. Such bytes can
 * only be inside JSON strings (cjson passes a string's bytes as they are), so the JSON stays whole. */
static char *utf8_fixed(const char *data)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t n = strlen(data), bad, len, i = 0, o = 0;
    char *out = NULL;
    while (i < n) {
        if ((len = utf8_at(p + i, n - i, &bad)) > 0) {
            if (out) {
                memcpy(out + o, p + i, len);
                o += len;
            }
            i += len;
            continue;
        }
        if (!out) { /* at most 3 bytes for each byte */
            out = omni_calloc(3 * n + 1, 1);
            memcpy(out, data, i);
            o = i;
        }
        memcpy(out + o, "\xef\xbf\xbd", 3);
        o += 3;
        i += bad;
    }
    return out;
}

char *archive_record(const char *data, int64_t now)
{
    json_t *c = json_loads(data, JSON_ALLOW_NUL, NULL);
    if (!c) {
        /* a field written from bytes that are not UTF-8 (omnictl takes its arguments as they come): the record
         * holds U+FFFD for them rather than the conversation staying in Redis for good */
        char *fixed = utf8_fixed(data);
        if (fixed)
            c = json_loads(fixed, JSON_ALLOW_NUL, NULL);
        free(fixed);
    }
    if (!json_is_object(c) || !json_is_string(json_object_get(c, "conversation")) ||
        !json_is_object(json_object_get(c, "fields"))) {
        json_decref(c);
        return NULL;
    }
    json_t *o = conversation_json(c, now, true), *merged = json_array(), *m;
    json_t *raw = json_object_get(c, "merged");
    size_t i;
    if (json_is_array(raw))
        json_array_foreach(raw, i, m) json_array_append_new(merged, conversation_json(m, now, false));
    json_object_set_new(o, "merged", merged);
    /* "conversation" first, on one line: a takeover finds a record by the start of its line */
    char *body = omni_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *line = omni_asprintf("%s\n", body);
    free(body);
    json_decref(o);
    json_decref(c);
    return line;
}

static void batch_free(batch_t **b)
{
    if (!b || !*b)
        return;
    for (size_t i = 0; i < (*b)->n; i++) {
        free((*b)->items[i].conv);
        free((*b)->items[i].tried);
        free((*b)->items[i].found_in);
        free((*b)->items[i].data);
        free((*b)->items[i].line);
    }
    free((*b)->items);
    free((*b)->dir);
    free((*b)->file);
    free(*b);
    *b = NULL;
}

/* ---- the writer thread: the only one touching the disk ------------------------------------------------ */

/* Whether item's earlier claims named file: its offset there, or -1. */
static long long tried_at(const item_t *it, const char *file)
{
    size_t fl = strlen(file);
    for (const char *p = it->tried; *p;) {
        const char *nl = strchr(p, '\n'), *sp = strchr(p, ' ');
        if (!nl)
            break;
        if (sp && sp < nl && (size_t)(nl - sp - 1) == fl && !strncmp(sp + 1, file, fl))
            return strtoll(p, NULL, 10);
        p = nl + 1;
    }
    return -1;
}

/* Ends the unterminated last line of file, which ends at end, with a newline, fsynced: a whole record found there
 * (its newline lost with a power loss before its fsync) is then a line of its own. Under the appenders' flock; a
 * file longer than end was ended by the writer that appended after it (write_batch). Returns 0, or -1 (errno). */
static int end_line(const char *file, off_t end)
{
    int fd = open(file, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
        ;
    struct stat st;
    int rc = fstat(fd, &st);
    if (rc == 0 && st.st_size == end)
        rc = omni_write_all(fd, "\n", 1);
    if (rc == 0)
        rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Looks in one file, from the smallest offset the batch's earlier claims give for it, for whole lines that are
 * records of the batch's conversations that named it. Returns 0, or -1 with b->error. */
static int find_in(batch_t *b, const char *file)
{
    long long from = -1;
    for (size_t j = 0; j < b->n; j++) {
        long long at = b->items[j].state == ITEM_PENDING ? tried_at(&b->items[j], file) : -1;
        if (at >= 0 && (from < 0 || at < from))
            from = at;
    }
    if (from < 0)
        return 0;
    FILE *f = fopen(file, "r");
    if (!f && errno == ENOENT)
        return 0; /* never created: nothing was written there */
    if (!f) { /* it may hold records: none is written again before it can be read */
        snprintf(b->error, sizeof b->error, "cannot read %s: %s", file, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool any = false, unended = false;
    off_t end = (off_t)from;
    if (fseeko(f, (off_t)from, SEEK_SET) == 0)
        while (!unended && (len = getline(&line, &cap, f)) > 0) {
            end += (off_t)len;
            /* the last line without its newline: a torn record (a kill inside write(), a power loss before the
             * fsync), or another router's being appended now, or a whole record whose newline alone was lost:
             * that one is found all the same, and ended below */
            unended = line[len - 1] != '\n';
            bool here = false;
            for (size_t j = 0; j < b->n; j++) {
                item_t *o = &b->items[j];
                char head[64];
                int hl = snprintf(head, sizeof head, "{\"conversation\":\"%s\",", o->conv);
                if (o->state != ITEM_PENDING || strncmp(line, head, (size_t)hl) || tried_at(o, file) < 0)
                    continue;
                /* whole JSON only: a router killed inside its write() leaves a torn line, which the next
                 * writer ends with a newline of its own */
                json_t *rec = json_loadb(line, (size_t)len, 0, NULL);
                if (rec) {
                    o->state = ITEM_FOUND;
                    o->found_in = omni_strdup(file);
                    any = here = true;
                }
                json_decref(rec);
            }
            if (here && unended && end_line(file, end) != 0) {
                snprintf(b->error, sizeof b->error, "cannot write %s: %s", file, strerror(errno));
                free(line);
                fclose(f);
                return -1;
            }
        }
    bool failed = ferror(f) || (any && fsync(fileno(f)) != 0); /* its writer may have died before its fsync */
    if (failed)
        snprintf(b->error, sizeof b->error, "cannot read %s: %s", file, strerror(errno));
    free(line);
    fclose(f);
    return failed ? -1 : 0;
}

/* Looks in every file an earlier claim of the batch's conversations named (a router killed between its fsync and
 * archive_done.lua, or a batch that failed after some of its writes, left records there): found ones are not
 * written twice. Each file is read once. Returns 0, or -1 with b->error. */
static int find_earlier(batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        for (const char *p = b->items[i].tried; *p;) {
            const char *nl = strchr(p, '\n'), *sp = strchr(p, ' ');
            if (!nl)
                break;
            if (sp && sp < nl) {
                char *file = omni_strndup(sp + 1, (size_t)(nl - sp - 1));
                bool seen = false; /* named by an earlier item too: read already */
                for (size_t k = 0; k < i && !seen; k++)
                    seen = tried_at(&b->items[k], file) >= 0;
                int rc = seen ? 0 : find_in(b, file);
                free(file);
                if (rc != 0)
                    return -1;
            }
            p = nl + 1;
        }
    return 0;
}

/* Appends the batch's records to its file and fsyncs it. Sets b->error on failure, and then none of the batch
 * counts as written (what it wrote is cut back off the file). */
static void write_batch(batch_t *b)
{
    /* the records are made here too, off the loop: a batch can be megabytes of JSON */
    for (size_t i = 0; i < b->n; i++) {
        b->items[i].line = archive_record(b->items[i].data, b->now);
        if (!b->items[i].line)
            b->items[i].state = ITEM_BAD;
        free(b->items[i].data);
        b->items[i].data = NULL;
    }
    if (find_earlier(b) != 0)
        return;
    bool some = false;
    for (size_t i = 0; i < b->n && !some; i++)
        some = b->items[i].state == ITEM_PENDING;
    if (!some) { /* all found (or bad): the day's file is not even created */
        b->size = -1;
        return;
    }
    bool created = access(b->file, F_OK) != 0;
    if (omni_mkdir_p(b->dir, 0750) != 0) {
        snprintf(b->error, sizeof b->error, "cannot create the directory %s: %s", b->dir, strerror(errno));
        return;
    }
    int fd = open(b->file, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(b->error, sizeof b->error, "cannot open %s: %s", b->file, strerror(errno));
        return;
    }
    /* routers on one machine sharing the directory append whole lines, one at a time */
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
        ;
    struct stat st;
    char last = '\n';
    if (fstat(fd, &st) != 0 || (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)) {
        snprintf(b->error, sizeof b->error, "cannot read %s: %s", b->file, strerror(errno));
        close(fd);
        return;
    }
    off_t size = st.st_size;
    /* a torn line at the end (a power loss before an fsync) stays a line of its own, not glued to ours */
    if (last != '\n' && omni_write_all(fd, "\n", 1) == 0)
        size++;
    off_t start = size; /* where this batch's records begin: cut back to it when they cannot all be fsynced */
    for (size_t i = 0; i < b->n && !b->error[0]; i++) {
        item_t *it = &b->items[i];
        if (it->state != ITEM_PENDING)
            continue;
        if (omni_mono_ms() > b->write_until) {
            it->state = ITEM_LATE; /* its claim may be another router's by now: it is claimed again */
            continue;
        }
        size_t n = strlen(it->line);
        if (omni_write_all(fd, it->line, n) != 0) {
            snprintf(b->error, sizeof b->error, "cannot write %s: %s", b->file, strerror(errno));
            break;
        }
        size += (off_t)n;
        it->state = ITEM_WRITTEN;
    }
    if (!b->error[0] && fsync(fd) != 0)
        snprintf(b->error, sizeof b->error, "cannot fsync %s: %s", b->file, strerror(errno));
    /* A failed write is cut back off the file, with the batch's records before it: none of them counts as
     * written, and after a failed fsync the kernel may have dropped their pages while a later fsync reports
     * success, so a record found there later would not be proof. Nobody appended after them: the flock is ours.
     * Should the cut fail, the records stay; a torn one is then a line of its own (see above). */
    if (!b->error[0] && created && omni_fsync_dir(b->dir) != 0)
        snprintf(b->error, sizeof b->error, "cannot fsync the directory %s: %s", b->dir, strerror(errno));
    if (b->error[0] && size > start && ftruncate(fd, start) == 0)
        size = start;
    b->size = (long long)size;
    close(fd); /* the lock goes with it */
}

static void *writer(void *data)
{
    archive_t *a = data;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->todo && !a->stop)
            pthread_cond_wait(&a->cv, &a->mu);
        if (!a->todo)
            break;
        batch_t *b = a->todo;
        pthread_mutex_unlock(&a->mu);
        write_batch(b);
        pthread_mutex_lock(&a->mu);
        a->todo = NULL;
        char one = 1;
        if (write(a->pipe[1], &one, 1) < 0) { /* a full pipe already wakes the loop */
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- the loop's side --------------------------------------------------------------------------------- */

static void done_with(archive_t *a, int64_t again_in)
{
    batch_free(&a->cur);
    a->busy = false;
    a->next_at = omni_mono_ms() + again_in;
}

static void on_done(store_t *store, redisReply *rep, void *data)
{
    (void)store;
    archive_t *a = data;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        /* the records are fsynced; the claims lapse and whoever claims them next finds them in the file */
        omni_warn("archive: %s: %s; retried after the claims lapse", a->cur ? a->cur->file : "?",
                  rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no answer from redis");
        done_with(a, ARCHIVE_RETRY_MS);
        return;
    }
    size_t archived = 0;
    for (size_t i = 0; i + ARCHIVE_DONE_REPLY_FIELDS <= rep->elements; i += ARCHIVE_DONE_REPLY_FIELDS)
        if (!strcmp(rep->element[i + ARCHIVE_DONE_REPLY_OUTCOME]->str, "archived"))
            archived++;
    a->archived += archived;
    if (archived)
        omni_debug("archive: %zu conversations archived to %s", archived, a->cur->file);
    done_with(a, a->cur->error[0] ? ARCHIVE_RETRY_MS : a->full ? 0 : ARCHIVE_EVERY_MS);
}

static void log_error(archive_t *a, const char *dir, const char *error, size_t n)
{
    int64_t now = omni_mono_ms();
    /* once per cause, and again every 5 minutes while it lasts: a person must act */
    if (strcmp(error, a->last_error) != 0 || now - a->error_logged_at >= 300000) {
        omni_log_event(OMNI_LOG_ERROR, OMNI_MSGID_ARCHIVE_FAILED, (const char *[]){ "DIRECTORY", dir, NULL },
                       "archive: %s; %zu resolved conversations stay in Redis until it can be written (retried "
                       "every %d s)", error, n, ARCHIVE_RETRY_MS / 1000);
        a->error_logged_at = now;
    }
    snprintf(a->last_error, sizeof a->last_error, "%s", error);
}

/* The writer answered: what was fsynced (written now, or found from an earlier claim) leaves Redis, what came
 * too late is released. After an error everything is released and stays in Redis. */
static void on_written(loop_t *loop, int fd, int events, void *data)
{
    (void)loop, (void)events;
    archive_t *a = data;
    char buf[16];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&a->mu);
    bool back = a->handed && !a->todo;
    pthread_mutex_unlock(&a->mu);
    if (!back)
        return;
    a->handed = false;
    batch_t *b = a->cur;
    if (b->error[0]) {
        log_error(a, b->dir, b->error, b->n);
    } else if (a->last_error[0]) {
        omni_info("archive: writing to %s again", b->dir);
        a->last_error[0] = '\0';
    }
    if (!b->error[0] && b->size >= 0) {
        free(a->known_file);
        a->known_file = omni_strdup(b->file);
        a->known_size = b->size;
    }
    const char *test_pause = getenv("OMNIROUTER_TEST_ARCHIVE_PAUSE");
    if (clock_test_mode() && test_pause && !strcmp(test_pause, "1") && !b->error[0]) {
        omni_info("archive: test pause: %zu records fsynced to %s, archive_done.lua not sent", b->n, b->file);
        a->paused = true; /* stays busy: the test kills the router here */
        return;
    }
    /* pairs: conversation, file ("" releases the claim); a bad one is left claimed: it comes back after the lease */
    const char **argv = omni_calloc(ARCHIVE_DONE_NARGS + 2 * b->n, sizeof *argv);
    int argc = ARCHIVE_DONE_NARGS;
    argv[ARCHIVE_DONE_ARG_PREFIX] = a->prefix;
    argv[ARCHIVE_DONE_ARG_ROUTER] = a->router;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)clock_now());
    argv[ARCHIVE_DONE_ARG_NOW] = now;
    argv[ARCHIVE_DONE_ARG_TOMBSTONE_MS] = a->tombstone;
    argv[ARCHIVE_DONE_ARG_DEDUP_MS] = a->dedup;
    for (size_t i = 0; i < b->n; i++) {
        const item_t *it = &b->items[i];
        if (it->state == ITEM_BAD) { /* a bug, not data */
            omni_error("archive: conversation %s: archive_claim.lua sent data that is not a conversation; it stays "
                       "in Redis", it->conv);
            continue;
        }
        /* after an error none of it counts as written: it stays in Redis, and the next claim looks in this one's
         * file for what was written after all */
        bool kept = !b->error[0] && (it->state == ITEM_WRITTEN || it->state == ITEM_FOUND);
        argv[argc++] = it->conv;
        argv[argc++] = !kept ? "" : it->state == ITEM_FOUND ? it->found_in : b->file;
    }
    int rc = store_script(a->store, LUA_ARCHIVE_DONE, argc, argv, NULL, on_done, a);
    free(argv);
    if (rc != 0)
        done_with(a, ARCHIVE_RETRY_MS); /* not connected: the claims lapse, the records are found next time */
}

static void on_claimed(store_t *store, redisReply *rep, void *data)
{
    (void)store;
    archive_t *a = data;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            omni_warn("archive: archive_claim.lua: %s", rep->str);
        a->full = false;
        done_with(a, ARCHIVE_EVERY_MS);
        return;
    }
    batch_t *b = a->cur;
    b->n = rep->elements / ARCHIVE_CLAIM_REPLY_FIELDS;
    b->items = omni_calloc(b->n, sizeof *b->items);
    a->full = true; /* a batch came (it may have stopped at a limit): the next claim goes at once */
    for (size_t i = 0; i < b->n; i++) {
        redisReply **f = rep->element + i * ARCHIVE_CLAIM_REPLY_FIELDS;
        item_t *it = &b->items[i];
        it->conv = omni_strdup(f[ARCHIVE_CLAIM_REPLY_CONVERSATION]->str);
        it->tried = omni_strdup(f[ARCHIVE_CLAIM_REPLY_TRIED]->str);
        it->data = omni_strndup(f[ARCHIVE_CLAIM_REPLY_DATA]->str, f[ARCHIVE_CLAIM_REPLY_DATA]->len);
    }
    a->handed = true;
    pthread_mutex_lock(&a->mu);
    a->todo = b;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

void archive_tick(archive_t *a, const router_config_t *cfg, int64_t now, bool known)
{
    if (a->busy || a->paused || !known || omni_mono_ms() < a->next_at || !store_connected(a->store))
        return;
    snprintf(a->prefix, sizeof a->prefix, "%s", cfg->redis.key_prefix);
    snprintf(a->tombstone, sizeof a->tombstone, "%lld", (long long)cfg->retention.tombstone_s * 1000);
    snprintf(a->dedup, sizeof a->dedup, "%lld", (long long)cfg->retention.dedup_s * 1000);
    batch_t *b = omni_calloc(1, sizeof *b);
    b->dir = omni_strdup(cfg->retention.archive_dir);
    b->file = archive_file_name(b->dir, now);
    b->now = now; /* the records' archived_at: the claim's time, so always of the file's day */
    b->write_until = omni_mono_ms() + ARCHIVE_WRITE_MS;
    char snow[24], cutoff[24], lease[16], limit[16], maxm[16], maxb[16], offset[24];
    snprintf(snow, sizeof snow, "%lld", (long long)now);
    snprintf(cutoff, sizeof cutoff, "%lld", (long long)(now - (int64_t)cfg->retention.resolved_s * 1000));
    snprintf(lease, sizeof lease, "%d", ARCHIVE_LEASE_MS);
    const char *test_batch = clock_test_mode() ? getenv("OMNIROUTER_TEST_ARCHIVE_BATCH") : NULL;
    snprintf(limit, sizeof limit, "%d", test_batch ? atoi(test_batch) : ARCHIVE_BATCH); /* test: small batches race */
    snprintf(maxm, sizeof maxm, "%d", ARCHIVE_BATCH_MESSAGES);
    snprintf(maxb, sizeof maxb, "%d", ARCHIVE_BATCH_BYTES);
    snprintf(offset, sizeof offset, "%lld", a->known_file && !strcmp(a->known_file, b->file) ? a->known_size : 0LL);
    const char *argv[ARCHIVE_CLAIM_NARGS] = {
        [ARCHIVE_CLAIM_ARG_PREFIX] = a->prefix, [ARCHIVE_CLAIM_ARG_ROUTER] = a->router,
        [ARCHIVE_CLAIM_ARG_NOW] = snow, [ARCHIVE_CLAIM_ARG_CUTOFF] = cutoff, [ARCHIVE_CLAIM_ARG_LEASE_MS] = lease,
        [ARCHIVE_CLAIM_ARG_LIMIT] = limit, [ARCHIVE_CLAIM_ARG_MAX_MESSAGES] = maxm,
        [ARCHIVE_CLAIM_ARG_MAX_BYTES] = maxb,
        [ARCHIVE_CLAIM_ARG_FILE] = b->file, [ARCHIVE_CLAIM_ARG_OFFSET] = offset,
    };
    a->cur = b;
    /* With redis.wait_replicas the claim is on that many replicas before its records are written: a failover
     * that loses the primary then still knows, on the promoted replica, which file to look in (archive_tried),
     * and the conversations are not written a second time. Replicas short: nothing is written, as nothing is
     * ACKed (-1 at once, or no answer: a claim made on the primary alone lapses after its lease). */
    if (store_script_replicated(a->store, "archive", LUA_ARCHIVE_CLAIM, ARCHIVE_CLAIM_NARGS, argv, NULL, on_claimed,
                                a) != 0) {
        done_with(a, ARCHIVE_EVERY_MS);
        return;
    }
    a->busy = true;
}

unsigned long long archive_count(const archive_t *a) { return a->archived; }
const char *archive_error(const archive_t *a) { return a->last_error; }

archive_t *archive_new(loop_t *loop, store_t *store, const char *router_name)
{
    archive_t *a = omni_calloc(1, sizeof *a);
    a->loop = loop;
    a->store = store;
    a->router = router_name;
    if (pipe2(a->pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        omni_error("archive: pipe: %s", strerror(errno));
        free(a);
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (pthread_create(&a->thread, NULL, writer, a) != 0) {
        omni_error("archive: cannot start the writer thread");
        close(a->pipe[0]);
        close(a->pipe[1]);
        free(a);
        return NULL;
    }
    loop_add_fd(loop, a->pipe[0], LOOP_READ, on_written, a);
    return a;
}

void archive_destroy(archive_t **ap)
{
    if (!ap || !*ap)
        return;
    archive_t *a = *ap;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL); /* a batch being written is finished first: its claims then lapse */
    loop_del_fd(a->loop, a->pipe[0]);
    close(a->pipe[0]);
    close(a->pipe[1]);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    batch_free(&a->cur);
    free(a->known_file);
    free(a);
    *ap = NULL;
}
