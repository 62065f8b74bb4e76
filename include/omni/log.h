/* Logging shared by every omnirouter program.
 * Each level means one thing (after Postfix msg.c):
 *   debug  - detail for a developer, off by default
 *   info   - a normal event worth a line (a message stored, a peer connected)
 *   warn   - something went wrong that the program recovers from (bad input, a peer dropped, Redis down)
 *   error  - an operation failed and its caller must handle it (used while returning an error)
 *   fatal  - the program cannot go on because of its environment or config: logs and exit(1)
 *   panic  - a bug (an invariant broken): logs and abort()
 * Lines go to stderr. Under systemd (JOURNAL_STREAM set) each line carries a <N> syslog priority prefix
 * so journald files it at the right level; on a terminal they carry a timestamp. */
#ifndef OMNI_LOG_H
#define OMNI_LOG_H

#include <stdarg.h>

typedef enum { OMNI_LOG_DEBUG, OMNI_LOG_INFO, OMNI_LOG_WARN, OMNI_LOG_ERROR, OMNI_LOG_FATAL,
               OMNI_LOG_PANIC } omni_log_level_t;

/* ident is borrowed and must outlive the program (a string literal or argv[0]). */
void omni_log_init(const char *ident, omni_log_level_t min_level);
void omni_log_set_level(omni_log_level_t min_level);
/* "debug", "info", "warn", "error"; returns -1 for anything else. */
int omni_log_level_parse(const char *name);

void omni_log(omni_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void omni_logv(omni_log_level_t level, const char *fmt, va_list ap);

#define omni_debug(...) omni_log(OMNI_LOG_DEBUG, __VA_ARGS__)
#define omni_info(...)  omni_log(OMNI_LOG_INFO, __VA_ARGS__)
#define omni_warn(...)  omni_log(OMNI_LOG_WARN, __VA_ARGS__)
#define omni_error(...) omni_log(OMNI_LOG_ERROR, __VA_ARGS__)
void omni_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void omni_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
