/* Follows a growing log file line by line, like `tail -F`, with a position that survives restarts,
 * rotation and truncation, and that advances only when the caller says its lines are safe.
 *
 * Per poll the caller does: follow_read() (each complete line goes to on_line), then its commit, then
 * follow_checkpoint() (persists the position atomically), or follow_rewind() when the commit failed
 * (the same lines are read again next time).
 *
 * Rules:
 *   - only complete lines are read: a last line without its newline waits for it. "\r\n" and "\n" both end
 *     a line (the "\r" is not passed on). A line longer than FOLLOW_LINE_MAX is skipped with a warning.
 *   - rotation (a different inode at path, e.g. Master.csv renamed to Master.csv.1 and a new Master.csv):
 *     the old file is read to its end, given one more poll for late writes, then closed (an unterminated
 *     last line in it is dropped with a warning) and the new file is read from offset 0.
 *   - truncation (size below the position) or a file replaced in place (its first bytes changed) restarts
 *     at offset 0.
 *   - the saved state is "v1 <inode> <offset> <line> <head length> <head hash>": on start, it is used
 *     only if the file at path has that inode and still begins with the same bytes (inode numbers are
 *     reused); otherwise the file is new since the last run and is read from 0.
 *   - with no saved state, reading starts at the end (start_at_end) or at the beginning. start_at_end
 *     applies to the file that exists when first looked for: a file that appears later is new, and is
 *     read from its beginning. A state file that cannot be read is no first run: the file is read from its
 *     beginning (its calls may never have been sent; the router drops by id what it has). */
#ifndef PHONELOG_FOLLOW_H
#define PHONELOG_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FOLLOW_LINE_MAX 65536 /* bytes in one line (Asterisk writes at most 1024) */
#define FOLLOW_HEAD_MAX 256   /* bytes fingerprinted at the start of the file */

typedef struct follow follow_t;

/* Where a line is. */
typedef struct follow_pos {
    const char *path;
    unsigned long line;   /* 1-based line number in the current file */
    uint64_t ino, offset; /* the file's inode and the line's first byte */
} follow_pos_t;

/* Called for each complete line (len bytes, no newline). Returns 0 when the line is taken (even when it was
 * bad and only logged), or 1 to stop before it (it is read again next time). */
typedef int (*follow_line_fn)(void *user, const char *line, size_t len, const follow_pos_t *pos);

typedef struct follow_opts {
    const char *path;       /* the log file; copied */
    const char *state_dir;  /* copied */
    const char *state_name; /* file name of the state in state_dir; copied */
    bool start_at_end;      /* with no saved state: skip what the file holds now */
    follow_line_fn on_line;
    void *user;
} follow_opts_t;

/* Loads the saved state (does not open the log yet: it may not exist). Returns NULL with err on a state
 * file that cannot be read. Caller owns the result. */
follow_t *follow_new(const follow_opts_t *opts, char *err, size_t errsz);
void follow_destroy(follow_t **f);

/* Reads up to max_lines lines. Returns the number taken, or -1 on an I/O error (logged). *more is set when
 * more lines may be waiting (max_lines reached, or a rotation is ready to complete). */
int follow_read(follow_t *f, size_t max_lines, bool *more);
/* Completes a rotation that is ready and persists the position if it moved. Returns 0 or -1 (errno). */
int follow_checkpoint(follow_t *f);
/* Forgets what the last follow_read took. */
void follow_rewind(follow_t *f);

/* For status lines: true when the file is open, with its position. */
bool follow_where(const follow_t *f, uint64_t *offset, unsigned long *line);

#endif
