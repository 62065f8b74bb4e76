/* Small helpers every omnirouter program uses: clocks, UTF-8, RFC 3339, allocation that cannot fail. */
#ifndef OMNI_UTIL_H
#define OMNI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Monotonic milliseconds, for timeouts. */
int64_t omni_mono_ms(void);
/* Wall-clock milliseconds since the epoch. */
int64_t omni_wall_ms(void);
/* Formats ms since the epoch as RFC 3339 UTC with milliseconds ("2026-11-22T08:42:00.000Z") into buf
 * (at least 32 bytes). Returns buf. */
char *omni_rfc3339(int64_t wall_ms, char *buf, size_t bufsz);
/* Parses an RFC 3339 date-time (any offset, optional fraction) to ms since the epoch. Returns 0 or -1. */
int omni_rfc3339_parse(const char *s, int64_t *wall_ms);

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
 * On false and bad_offset != NULL, stores the byte offset of the first bad sequence. */
bool omni_utf8_valid(const char *s, size_t len, size_t *bad_offset);

/* Allocation that never returns NULL: out of memory is fatal (logged, exit 1). */
void *omni_malloc(size_t n);
void *omni_calloc(size_t n, size_t size);
void *omni_realloc(void *p, size_t n);
char *omni_strdup(const char *s);
char *omni_strndup(const char *s, size_t n);
/* json_dumps (jansson) that never returns NULL: out of memory (or a json that is not an object or array,
 * a programming error) is fatal like the above. Returns a new string the caller frees. */
struct json_t;
char *omni_json_dumps(const struct json_t *json, size_t flags);
/* v in decimal into out (at least 21 bytes), NUL-terminated; returns the number of digits. For paths run
 * per message, where snprintf's ~1,000 instructions a number add up. */
size_t omni_fmt_u64(char *out, uint64_t v);

/* Safe formatted string building: returns a new string the caller frees. */
char *omni_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Creates dir and its parents with mode (like mkdir -p). Returns 0 or -1 with errno. */
int omni_mkdir_p(const char *dir, unsigned mode);
/* Reads a whole file into a new NUL-terminated string (caller frees); *len (if not NULL) gets its length.
 * Returns NULL with errno on failure, EFBIG when it holds more than max bytes. */
char *omni_read_file(const char *path, size_t max, size_t *len);
/* Writes all len bytes of buf to fd, again after EINTR and short writes. Returns 0 or -1 with errno. */
int omni_write_all(int fd, const void *buf, size_t len);
/* fsyncs a directory so a rename or create inside it is durable. Returns 0 or -1 with errno. */
int omni_fsync_dir(const char *dir);

#endif
