/* Reading the spool's record format (described at the top of spool.c): the replay that rebuilds the set
 * of unanswered messages, and the checks that tell a torn tail from damage in the middle. Only reads;
 * spool.c decides what to do with the file. */
#include "spool.h"

#include <errno.h>
#include <pthread.h>
#include <search.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "omni/message.h"
#include "omni/protocol.h"
#include "omni/util.h"

#define CHUNK (64 * 1024)

/* CRC-32 (zlib's) eight bytes a step ("slicing by 8": eight tables, one per byte position), ~5 times fewer
 * instructions than a byte a step: every spooled message passes through it once when written. The tables
 * are built once, before any thread can need them (pthread_once). */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = crc_table[0][crc_table[t - 1][i] & 0xff] ^ (crc_table[t - 1][i] >> 8);
}

uint32_t omni_spool_crc32(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
    crc = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
              crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
    }
    while (n--)
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* pread through a window, so replay costs one syscall per 64 KiB and can also probe at any offset. */
typedef struct reader {
    int fd, error; /* error: errno of a failed pread, which must not pass for the end of the file */
    size_t size, win_off, win_len;
    char win[CHUNK];
} reader_t;

/* Copies up to n bytes at off into dst; returns how many were there (fewer at the end of the file). */
static size_t rd_at(reader_t *r, size_t off, void *dst, size_t n)
{
    size_t done = 0;
    while (done < n && off + done < r->size) {
        size_t at = off + done;
        if (at < r->win_off || at >= r->win_off + r->win_len) {
            ssize_t got = pread(r->fd, r->win, CHUNK, (off_t)at);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                r->error = errno;
            if (got <= 0)
                break;
            r->win_off = at;
            r->win_len = (size_t)got;
        }
        size_t take = r->win_off + r->win_len - at;
        if (take > n - done)
            take = n - done;
        memcpy((char *)dst + done, r->win + (at - r->win_off), take);
        done += take;
    }
    return done;
}

typedef enum { REC_OK, REC_EOF, REC_TORN, REC_BAD } rec_status_t;

typedef struct rec {
    char type;
    size_t size; /* of the whole record */
    char *id, *body;
    size_t bodylen;
} rec_t;

static bool parse_num(const char **p, size_t max, size_t *out)
{
    size_t v = 0;
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (size_t)(*s - '0');
        if (v > max)
            return false;
    }
    *p = s;
    *out = v;
    return true;
}

/* Reads the record at off. On REC_OK, rec->id and rec->body are new strings the caller frees. */
static rec_status_t read_record(reader_t *r, size_t off, rec_t *rec)
{
    char hdr[OMNI_SPOOL_HDR_MAX + 1];
    size_t got = rd_at(r, off, hdr, OMNI_SPOOL_HDR_MAX), ml = strlen(OMNI_SPOOL_MAGIC), idlen, bodylen;
    if (got == 0)
        return REC_EOF;
    char *nl = memchr(hdr, '\n', got);
    if (nl == NULL)
        return got < OMNI_SPOOL_HDR_MAX ? REC_TORN : REC_BAD;
    *nl = '\0';
    const char *p = hdr + ml;
    if (strncmp(hdr, OMNI_SPOOL_MAGIC, ml) != 0 || (p[0] != 'M' && p[0] != 'A' && p[0] != 'N') || p[1] != ' ')
        return REC_BAD;
    rec->type = p[0];
    p += 2;
    if (!parse_num(&p, OMNI_MSG_ID_MAX, &idlen) || idlen == 0 || *p++ != ' ' ||
        !parse_num(&p, OMNI_FRAME_HARD_MAX, &bodylen) || *p++ != ' ' || strlen(p) != 8 ||
        strspn(p, "0123456789abcdef") != 8 || (rec->type != 'M' && bodylen != 0))
        return REC_BAD;
    uint32_t want = (uint32_t)strtoul(p, NULL, 16);
    size_t hlen = (size_t)(nl - hdr) + 1;
    rec->size = hlen + idlen + bodylen + 1;
    if (off + rec->size > r->size)
        return REC_TORN;
    rec->id = omni_malloc(idlen + 1);
    rec->body = omni_malloc(bodylen + 1);
    rec->bodylen = bodylen;
    rec_status_t s = REC_BAD;
    if (rd_at(r, off + hlen, rec->id, idlen) != idlen || rd_at(r, off + hlen + idlen, rec->body, bodylen + 1)
        != bodylen + 1) {
        s = REC_TORN; /* the file shrank under us, or a read error (r->error says which) */
    } else {
        uint32_t crc = omni_spool_crc32(0, hdr, (size_t)(p - 1 - hdr)); /* up to the space before crc */
        crc = omni_spool_crc32(crc, rec->id, idlen);
        crc = omni_spool_crc32(crc, rec->body, bodylen);
        if (crc == want && rec->body[bodylen] == '\n' && memchr(rec->id, '\0', idlen) == NULL)
            s = REC_OK;
    }
    if (s != REC_OK) {
        free(rec->id), free(rec->body);
        return s;
    }
    rec->id[idlen] = '\0';
    rec->body[bodylen] = '\0';
    return REC_OK;
}

/* Where the first good record after off starts, or SIZE_MAX when none does: then the bad record at off is
 * the torn end of the last write (which may be followed by zeros or garbage, never by a good one); else it
 * is damage in the middle, and replay goes on from there. A good record cannot hide inside a message's
 * body: the body is JSON, which holds no raw newline, and a record header ends with one. */
static size_t next_good_record(reader_t *r, size_t off)
{
    char *buf = omni_malloc(CHUNK);
    size_t ml = strlen(OMNI_SPOOL_MAGIC), found = SIZE_MAX;
    for (size_t at = off + 1; found == SIZE_MAX && at < r->size && r->error == 0;) {
        size_t got = rd_at(r, at, buf, CHUNK);
        if (got < ml)
            break;
        for (size_t i = 0; found == SIZE_MAX && i + ml <= got; i++) { /* memmem is a GNU extension */
            rec_t rec;
            if (buf[i] == OMNI_SPOOL_MAGIC[0] && memcmp(buf + i, OMNI_SPOOL_MAGIC, ml) == 0 &&
                read_record(r, at + i, &rec) == REC_OK) {
                free(rec.id), free(rec.body);
                found = at + i;
            }
        }
        at += got - (ml - 1); /* overlap, so a magic split across two chunks is seen */
    }
    free(buf);
    return found;
}

/* The messages seen so far, in M order, with an index by id to apply answers. */
typedef struct replay_set {
    omni_spool_rec_t *recs; /* answered ones have id == NULL until squeezed out at the end */
    size_t n, cap, live_bytes;
    void *index; /* tsearch tree of index_node_t; a tree suffices for a once-per-start pass */
} replay_set_t;

typedef struct index_node {
    const char *id; /* borrowed from recs[i].id */
    size_t i, size; /* where the message is, and the size of its M record */
} index_node_t;

static int index_cmp(const void *a, const void *b)
{
    return strcmp(((const index_node_t *)a)->id, ((const index_node_t *)b)->id);
}

/* Applies one good record; takes rec's strings. */
static void replay_apply(replay_set_t *rs, rec_t *rec)
{
    index_node_t key = {.id = rec->id}, **found = tfind(&key, &rs->index, index_cmp);
    if (rec->type == 'M' && found == NULL) {
        if (rs->n == rs->cap) {
            rs->cap = rs->cap ? rs->cap * 2 : 64;
            rs->recs = omni_realloc(rs->recs, rs->cap * sizeof *rs->recs);
        }
        rs->recs[rs->n] = (omni_spool_rec_t){.id = rec->id, .json = rec->body, .len = rec->bodylen};
        index_node_t *node = omni_malloc(sizeof *node);
        *node = (index_node_t){.id = rec->id, .i = rs->n++, .size = rec->size};
        tsearch(node, &rs->index, index_cmp);
        rs->live_bytes += rec->size;
        return;
    }
    if (rec->type != 'M' && found != NULL) {
        index_node_t *node = *found;
        omni_spool_rec_t *live = &rs->recs[node->i];
        tdelete(&key, &rs->index, index_cmp);
        rs->live_bytes -= node->size;
        free(node);
        free(live->id), free(live->json);
        live->id = live->json = NULL;
    }
    /* An M for an id already live (client.c never writes one) or an answer for an unknown id is dead. */
    free(rec->id), free(rec->body);
}

/* Frees the index and squeezes the answered messages out, keeping M order. */
static void replay_finish(replay_set_t *rs)
{
    size_t n = 0;
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->recs[i].id == NULL)
            continue;
        index_node_t key = {.id = rs->recs[i].id}, *node = *(index_node_t **)tfind(&key, &rs->index, index_cmp);
        tdelete(&key, &rs->index, index_cmp);
        free(node);
        rs->recs[n++] = rs->recs[i];
    }
    rs->n = n;
}

int omni_spool_replay(int fd, omni_replay_t *out)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    reader_t *r = omni_malloc(sizeof *r);
    *r = (reader_t){.fd = fd, .size = (size_t)st.st_size};
    replay_set_t rs = {0};
    size_t off = 0, bad_at = SIZE_MAX, skipped = 0;
    rec_status_t s;
    rec_t rec;
    for (;;) {
        while ((s = read_record(r, off, &rec)) == REC_OK) {
            replay_apply(&rs, &rec);
            off += rec.size;
        }
        /* Damage in the middle costs only the records it hit: the good ones after it are messages too,
         * whose sources may already have been acknowledged. */
        size_t next = s == REC_BAD ? next_good_record(r, off) : SIZE_MAX;
        if (next == SIZE_MAX)
            break;
        if (bad_at == SIZE_MAX)
            bad_at = off;
        skipped += next - off;
        off = next;
    }
    replay_finish(&rs);
    int err = r->error;
    bool damaged = bad_at != SIZE_MAX;
    size_t tail = s == REC_EOF ? 0 : r->size - off;
    *out = (omni_replay_t){.live = rs.recs, .nlive = rs.n, .good_bytes = damaged ? bad_at : off,
                           .skipped_bytes = skipped + (damaged ? tail : 0), .live_bytes = rs.live_bytes,
                           .file_bytes = r->size};
    out->end = damaged ? OMNI_REPLAY_DAMAGED : s == REC_EOF ? OMNI_REPLAY_CLEAN : OMNI_REPLAY_TORN;
    free(r);
    if (err != 0) {
        omni_spool_recs_free(&out->live, out->nlive);
        out->nlive = 0;
        errno = err;
        return -1;
    }
    return 0;
}

void omni_spool_recs_free(omni_spool_rec_t **recs, size_t n)
{
    if (recs == NULL || *recs == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free((*recs)[i].id), free((*recs)[i].json);
    free(*recs);
    *recs = NULL;
}
