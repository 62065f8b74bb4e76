/* Logging to stderr: syslog priority prefix under systemd, timestamped lines on a terminal or in a file.
 * Not thread-safe: the daemon logs from one thread, and a lock here would only hide that rule. */
#include "omni/log.h"
#include "omni/util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *log_ident = "omni";
static omni_log_level_t log_min = OMNI_LOG_INFO;
/* -1 until the first line is written: JOURNAL_STREAM is read once, at init or first use. */
static int log_journal = -1;

static const char *const level_names[] = { "debug", "info", "warn", "error", "fatal", "panic" };
/* syslog priorities: debug 7, info 6, warning 4, err 3, crit 2, alert 1. */
static const int level_prio[] = { 7, 6, 4, 3, 2, 1 };

void omni_log_init(const char *ident, omni_log_level_t min_level)
{
    if (ident != NULL && ident[0] != '\0') {
        const char *slash = strrchr(ident, '/');
        log_ident = slash != NULL && slash[1] != '\0' ? slash + 1 : ident;
    }
    log_min = min_level;
    log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void omni_log_set_level(omni_log_level_t min_level)
{
    log_min = min_level;
}

int omni_log_level_parse(const char *name)
{
    if (name == NULL)
        return -1;
    /* fatal and panic are not levels a user may choose to hide. */
    for (int i = OMNI_LOG_DEBUG; i <= OMNI_LOG_ERROR; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void omni_logv(omni_log_level_t level, const char *fmt, va_list ap)
{
    if (level < OMNI_LOG_DEBUG || level > OMNI_LOG_PANIC)
        level = OMNI_LOG_ERROR;
    if (level < log_min && level < OMNI_LOG_FATAL)
        return;
    int saved_errno = errno;       /* callers may log "%m"-style after errno and still use errno */
    if (log_journal < 0)
        log_journal = getenv("JOURNAL_STREAM") != NULL;

    /* Build the whole line first so one write() carries it: lines from several processes sharing
     * stderr (connectors under one supervisor) then do not interleave mid-line. */
    char line[4096];
    int n;
    if (log_journal) {
        n = snprintf(line, sizeof line, "<%d>%s: ", level_prio[level], level_names[level]);
    } else {
        char ts[40];
        omni_rfc3339(omni_wall_ms(), ts, sizeof ts);
        n = snprintf(line, sizeof line, "%s %s[%ld]: %s: ", ts, log_ident, (long)getpid(),
                     level_names[level]);
    }
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof line) {
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        n = m < 0 ? n : n + m;
    }
    size_t len = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 1;
    /* Newlines inside the text would split one event into several journal entries; flatten them. */
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    if (len == sizeof line - 1 && len >= 3)
        memcpy(line + len - 3, "...", 3);   /* mark truncation visibly */
    line[len++] = '\n';
    const char *p = line;
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;                  /* nowhere left to report a logging failure */
        p += w;
        len -= (size_t)w;
    }
    errno = saved_errno;
}

void omni_log(omni_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    omni_logv(level, fmt, ap);
    va_end(ap);
}

void omni_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    omni_logv(OMNI_LOG_FATAL, fmt, ap);
    va_end(ap);
    exit(1);
}

void omni_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    omni_logv(OMNI_LOG_PANIC, fmt, ap);
    va_end(ap);
    abort();
}
