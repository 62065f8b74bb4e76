/* The OMNI/1 client's on-disk spool (internal to libomni; the record format is described in spool.c).
 *
 * The spool is the durable half of the client: it writes what was submitted and what was answered, and
 * on open gives back the messages still unanswered. It keeps no message bodies in memory; the caller
 * (client.c) holds the live set and hands it back when the spool compacts itself. */
#ifndef OMNI_SPOOL_H
#define OMNI_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct omni_spool omni_spool_t;

/* One unanswered message. */
typedef struct omni_spool_rec {
    char *id;   /* NUL-terminated, 1..OMNI_MSG_ID_MAX bytes */
    char *json; /* len bytes plus a terminating NUL */
    size_t len;
} omni_spool_rec_t;

/* Opens dir/spool.log (creating dir 0700 and the file when missing), takes an exclusive flock on it and
 * replays it. On success *live gets a new array of *nlive unanswered messages in submit order: the
 * caller owns the array and its strings (free them with omni_spool_recs_free, or take the strings and set
 * them to NULL first). A torn tail is truncated and a corrupt record stops the replay (both logged as
 * warnings, never fatal). Returns NULL with a sentence in err when the directory cannot be used or
 * another process holds the lock. dir is borrowed. Caller owns the result (omni_spool_close). */
omni_spool_t *omni_spool_open(const char *dir, omni_spool_rec_t **live, size_t *nlive, char *err,
                              size_t errsz);

/* Writes what was gathered (unsynced), closes the files (releasing the lock), frees, sets *spool = NULL.
 * Unsynced records stay in the page cache: they reach the disk unless the machine crashes first. NULL and
 * *spool == NULL are fine. */
void omni_spool_close(omni_spool_t **spool);

/* Frees n records and their strings (NULL strings are skipped), sets *recs = NULL. */
void omni_spool_recs_free(omni_spool_rec_t **recs, size_t n);

/* Gathers a "submitted" record; omni_spool_write() writes it, omni_spool_sync() makes a batch durable.
 * id (NUL-terminated) and json are borrowed (copied). Returns 0 or -1 with errno (EIO once the file is
 * broken). */
int omni_spool_submit(omni_spool_t *spool, const char *id, const char *json, size_t len);

/* Gathers an "acked" record for a message submitted with json_len bytes (the length lets the spool count
 * how much of the file is dead without keeping an index), for the next write. Never synced on its own:
 * losing it only means one resend, which the router deduplicates. Returns 0 or -1 with errno. */
int omni_spool_ack(omni_spool_t *spool, const char *id, size_t json_len);

/* Appends {"id","reason","nacked_at","message"} to dead-letter.jsonl and fsyncs it, then gathers a
 * "nacked" record (as omni_spool_ack). If the dead letter cannot be written nothing is recorded (the message stays live, so
 * it is not lost) and -1 is returned with errno. All arguments borrowed. */
int omni_spool_nack(omni_spool_t *spool, const char *id, const char *reason, const char *json, size_t len);

/* Writes every record gathered so far with one write(2), not synced. On failure what was written is cut
 * back off, the records are kept for the next try, and -1 is returned with errno EIO (logged once until a
 * write works again). Returns 0 (also when there was nothing to write). */
int omni_spool_write(omni_spool_t *spool);

/* omni_spool_write(), then one fdatasync: every record gathered so far is durable. Returns 0 or -1 (errno). */
int omni_spool_sync(omni_spool_t *spool);

/* Bytes gathered and not yet written; whether the last write failed (or the file is broken). */
size_t omni_spool_unwritten(const omni_spool_t *spool);
bool omni_spool_write_failed(const omni_spool_t *spool);

/* A buffer larger than this is freed after its write (a big batch should not pin memory), and a
 * compaction writes in pieces of about this size. */
#define OMNI_SPOOL_BUF_KEEP (1024 * 1024)

/* True when answered records dominate the file (more than half of it, and it is over the minimum size
 * set by omni_spool_set_compact_min, 1 MiB by default). */
bool omni_spool_wants_compact(const omni_spool_t *spool);
void omni_spool_set_compact_min(omni_spool_t *spool, size_t bytes);

/* Rewrites the file to hold exactly the n live records (borrowed, in submit order, the caller's view of
 * what is unanswered): spool.log.tmp is written, fsynced and renamed over spool.log, and the directory
 * fsynced. Only with nothing gathered unwritten (else -1, errno EBUSY: write first). On failure the old
 * file stays in use and -1 is returned with errno. */
int omni_spool_compact(omni_spool_t *spool, const omni_spool_rec_t *const *live, size_t n);

/* Bytes in spool.log as the spool knows them (for tests and logs). */
size_t omni_spool_size(const omni_spool_t *spool);

/* ---- between spool.c (files, writing) and spool_replay.c (reading the record format) ---- */

#define OMNI_SPOOL_MAGIC "OMS1 "
#define OMNI_SPOOL_HDR_MAX 64 /* "OMS1 M 256 16777216 01234567\n" is 30 bytes: longer is garbage */

/* CRC-32 (IEEE, the zlib one); start with crc = 0. */
uint32_t omni_spool_crc32(uint32_t crc, const void *data, size_t n);

typedef enum {
    OMNI_REPLAY_CLEAN,   /* read to the end */
    OMNI_REPLAY_TORN,    /* the tail after good_bytes is a cut-short write: truncate it */
    OMNI_REPLAY_DAMAGED, /* a bad record at good_bytes with good ones after it: those were read too */
} omni_replay_end_t;

typedef struct omni_replay {
    omni_spool_rec_t *live; /* unanswered messages in submit order; caller owns (omni_spool_recs_free) */
    size_t nlive;
    size_t good_bytes;      /* where the last good record ends; DAMAGED: where the first bad one starts */
    size_t skipped_bytes;   /* DAMAGED: bytes of damage skipped, a torn tail after the last good record included */
    size_t live_bytes;      /* bytes of the live messages' records */
    size_t file_bytes;      /* the size of the file that was read */
    omni_replay_end_t end;
} omni_replay_t;

/* Reads the spool file open on fd from its start; changes nothing. Returns 0 with *out filled, or -1 with
 * errno when the file cannot be read (an I/O error is never taken for a torn tail). */
int omni_spool_replay(int fd, omni_replay_t *out);

#endif
