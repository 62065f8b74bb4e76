/* Retention's archive (docs/archive.md): a resolved conversation past retention.resolved is claimed from Redis
 * (archive_claim.lua), written as one JSON line to the UTC day's file in retention.archive_dir and fsynced, and
 * only then deleted from Redis (archive_done.lua). The disk is a writer thread's: the loop only sends it a
 * batch and hears back through a pipe, so a slow or full disk never stops messages. One batch at a time. */
#ifndef OMNI_DAEMON_ARCHIVE_H
#define OMNI_DAEMON_ARCHIVE_H

#include <stdbool.h>
#include <stdint.h>
#include "config.h"
#include "loop.h"
#include "store.h"

#define ARCHIVE_EVERY_MS 1000   /* how often resolved conversations are looked for when the last batch was short */
#define ARCHIVE_RETRY_MS 5000   /* after the archive could not be written */
#define ARCHIVE_LEASE_MS 60000  /* a claim comes due again for any router after this (a dead router's) */
#define ARCHIVE_WRITE_MS 30000  /* a claim older than this is not written any more: released, claimed again */
#define ARCHIVE_BATCH 500       /* conversations per batch */
#define ARCHIVE_BATCH_MESSAGES 5000 /* and no more than this many messages (one conversation always) */
#define ARCHIVE_BATCH_BYTES (16 << 20) /* or this much message JSON */

typedef struct archive archive_t;

/* loop, store and router_name (this router's "<host>:<pid>", the claim's owner) are borrowed and must outlive
 * it. Starts the writer thread; NULL when it cannot (logged). */
archive_t *archive_new(loop_t *loop, store_t *store, const char *router_name);
/* Waits for the batch being written (if any), stops the thread, frees, sets *a = NULL. After store_destroy:
 * the store's callbacks use it. */
void archive_destroy(archive_t **a);
/* From the cron tick: claims the next batch when due. cfg is borrowed for the call (retention.*, the key
 * prefix); now is the router's clock (ms), known says whether it is (the test clock read from Redis). */
void archive_tick(archive_t *a, const router_config_t *cfg, int64_t now, bool known);
/* Conversations this router archived since it started (a batch counts once archive_done.lua said so). */
unsigned long long archive_count(const archive_t *a);
/* Why the archive cannot be written now, "" while it can (borrowed; changes on the loop). */
const char *archive_error(const archive_t *a);

/* The archive file of the UTC day of wall_ms: DIR/YYYY-MM-DD.jsonl. Returns a new string (caller frees). */
char *archive_file_name(const char *dir, int64_t wall_ms);
/* One record of archive_claim.lua's data (borrowed) as its archive line: {"conversation":ID,"archived_at":MS,
 * "fields":{...},"messages":[...],"decisions":[...],"merged":[...]} and a newline. Returns a new string (caller
 * frees), or NULL when data is not what the script sends. */
char *archive_record(const char *data, int64_t now);

#endif
