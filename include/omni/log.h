/* Logging shared by every omnirouter program.
 * Each level means one thing (after Postfix msg.c):
 *   debug  - detail for a developer, off by default
 *   info   - a normal event worth a line (a message stored, a peer connected)
 *   warn   - something went wrong that the program recovers from (bad input, a peer dropped, Redis down)
 *   error  - an operation failed and its caller must handle it (used while returning an error)
 *   fatal  - the program cannot go on because of its environment or config: logs and exit(1)
 *   panic  - a bug (an invariant broken): logs and abort()
 * At the default level (info) nothing is logged per message in normal operation: a message stored, routed
 * or assigned is debug; what a person must act on (refused input, Redis away, a refused reload) always is.
 *
 * Where lines go. Under systemd, when stderr is the journal stream systemd gave (JOURNAL_STREAM names its
 * device and inode), each event is sent to journald as a structured entry (sd_journal_send): MESSAGE,
 * PRIORITY, SYSLOG_IDENTIFIER, and for events of the catalogue (docs/logging.md) MESSAGE_ID and the fields
 * that apply (CONVERSATION, CUSTOMER, TEAM, PARTNER, AGENT, OMNI_MESSAGE). If journald cannot be reached the
 * line goes to stderr with a <N> priority prefix. Elsewhere (a terminal, a file) lines carry a timestamp. */
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

/* An event of the catalogue: msgid one of the OMNI_MSGID_ values below; fields a NULL-terminated list of
 * NAME, value pairs ({"CONVERSATION", "12", "TEAM", "core", NULL}; a NULL value skips its pair; NULL: none),
 * borrowed for the call. Under journald they are fields of the entry; elsewhere the line is the same as
 * omni_log's. */
void omni_log_event(omni_log_level_t level, const char *msgid, const char *const *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The catalogue of events (docs/logging.md explains each; systemd/omnirouter.catalog for journalctl -x). */
#define OMNI_MSGID_READY             "6fee83c9c87345789b1f0b84c38f04f4" /* info: taking messages */
#define OMNI_MSGID_STOPPING          "fa03cef2f01744d7bd4dcec2d35cefd1" /* info: SIGTERM, finishing what is in flight */
#define OMNI_MSGID_RELOADED          "98edf90f11ec4f9ab09ef90a99759626" /* info: a new configuration applied */
#define OMNI_MSGID_RELOAD_REFUSED    "7810657511254aaebbe818669db0efcf" /* error: an invalid one refused */
#define OMNI_MSGID_REDIS_DOWN        "69cec4542fce43e0bef44691b49dde83" /* warn: Redis unreachable, BUSY */
#define OMNI_MSGID_REDIS_UP          "ee71502f224e4a468212769ed3c15d85" /* info: Redis reached, ACKs resume */
#define OMNI_MSGID_NOT_DURABLE       "5c14df266a2842208423183a61a1a651" /* error: Redis does not fsync: BUSY */
#define OMNI_MSGID_MESSAGE_REFUSED   "737586a486b7425292ff1e801f4bb254" /* warn: a message NACKed, and why */
#define OMNI_MSGID_PEER_DROPPED      "570f296bc3ab4c8aaf6a1e8024f7fdea" /* warn: a connector broke OMNI/1 */
#define OMNI_MSGID_PEER_REFUSED      "31b103d0e2224b50a1734e55eb2b3bd1" /* warn: a CURVE key not allowed */
#define OMNI_MSGID_STORED            "8418f0e2705e49fb8ddb4bab04bd944b" /* debug: a message stored */
#define OMNI_MSGID_ASSIGNED          "305d9e54e1144a8ea67c0eed77fb2762" /* debug: work assigned */
#define OMNI_MSGID_QUEUED            "8a03c411b614436b8943f9a6a081b2fc" /* debug: work waits in a queue */
#define OMNI_MSGID_REROUTED          "9d3cc9d120d44ea09e027d2a01b39c58" /* debug: timeout, escalation, offline */
#define OMNI_MSGID_ROUTING_FAILED    "25d95db525ec4cc6b7d0dd7a8a5d21b2" /* warn: a decision not made; retried */
#define OMNI_MSGID_EMBEDDED_EXITED   "500e07d0a46e498ca12a5ca2e687f1b9" /* warn: the embedded Redis died */
#define OMNI_MSGID_WEBHOOK_DISABLED  "9a7defeab89342e78532525042736ff6" /* error: a partner answered 410 */
#define OMNI_MSGID_WEBHOOK_DEAD      "3a380c669277480cb64865b9261a929b" /* error: a delivery dead-lettered */
#define OMNI_MSGID_ARCHIVE_FAILED    "b6bd0ff934c44e3fb9ebc01dfdb6a7d8" /* error: the archive cannot be written */

#define omni_debug(...) omni_log(OMNI_LOG_DEBUG, __VA_ARGS__)
#define omni_info(...)  omni_log(OMNI_LOG_INFO, __VA_ARGS__)
#define omni_warn(...)  omni_log(OMNI_LOG_WARN, __VA_ARGS__)
#define omni_error(...) omni_log(OMNI_LOG_ERROR, __VA_ARGS__)
void omni_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void omni_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
