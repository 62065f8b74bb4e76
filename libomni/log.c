/* Logging to stderr: syslog priority prefix under systemd, timestamped lines on a terminal or in a file.
 * Not thread-safe: the daemon logs from one thread, and a lock here would only hide that rule. */
#include "omni/log.h"
#include "omni/util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

static const char *log_ident = "omni";
static omni_log_level_t log_min = OMNI_LOG_INFO;
/* -1 until the first line is written: JOURNAL_STREAM is read once, at init or first use. 0: not under
 * journald; 1: stderr is the journal stream but journald's socket is missing (lines with a <N> prefix);
 * 2: entries go to journald structured (sd_journal_sendv). */
static int log_journal = -1;

/* log_journal's value: whether stderr is the stream JOURNAL_STREAM ("DEV:INODE") names (a child that
 * inherited the variable but writes elsewhere, a pipe to a pager, must not send to journald), and whether
 * journald listens. */
static int journal_mode(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return 0;
    if ((unsigned long long)st.st_dev != dev || (unsigned long long)st.st_ino != ino)
        return 0;
    /* libsystemd drops entries silently when journald's socket is missing: then lines go to stderr */
    return access("/run/systemd/journal/socket", W_OK) == 0 ? 2 : 1;
}

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
    log_journal = journal_mode();
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

/* One structured entry to journald; false when it could not be sent (the caller writes the line instead). */
static bool journal_send(omni_log_level_t level, const char *msgid, const char *const *fields, const char *text)
{
    enum { MAX_FIELDS = 16 };
    struct iovec iov[4 + MAX_FIELDS];
    char *parts[4 + MAX_FIELDS];
    int n = 0;
    parts[n++] = omni_asprintf("MESSAGE=%s", text);
    parts[n++] = omni_asprintf("PRIORITY=%d", level_prio[level]);
    parts[n++] = omni_asprintf("SYSLOG_IDENTIFIER=%s", log_ident);
    if (msgid)
        parts[n++] = omni_asprintf("MESSAGE_ID=%s", msgid);
    for (size_t i = 0; fields && fields[i] && n < 4 + MAX_FIELDS; i += 2) /* NAME, value; NULL ends */
        if (fields[i + 1])
            parts[n++] = omni_asprintf("%s=%s", fields[i], fields[i + 1]);
    for (int i = 0; i < n; i++)
        iov[i] = (struct iovec){ .iov_base = parts[i], .iov_len = strlen(parts[i]) };
    int rc = sd_journal_sendv(iov, n);
    for (int i = 0; i < n; i++)
        free(parts[i]);
    return rc >= 0;
}

static void logv(omni_log_level_t level, const char *msgid, const char *const *fields, const char *fmt, va_list ap)
{
    if (level < OMNI_LOG_DEBUG || level > OMNI_LOG_PANIC)
        level = OMNI_LOG_ERROR;
    if (level < log_min && level < OMNI_LOG_FATAL)
        return;
    int saved_errno = errno;       /* callers may log "%m"-style after errno and still use errno */
    if (log_journal < 0)
        log_journal = journal_mode();

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
    int text_at = n < (int)sizeof line ? n : (int)sizeof line - 1;
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
    line[len] = '\0';
    if (log_journal == 2 && journal_send(level, msgid, fields, line + text_at)) {
        errno = saved_errno;
        return;
    }
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

void omni_logv(omni_log_level_t level, const char *fmt, va_list ap) { logv(level, NULL, NULL, fmt, ap); }

void omni_log_event(omni_log_level_t level, const char *msgid, const char *const *fields, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    logv(level, msgid, fields, fmt, ap);
    va_end(ap);
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
