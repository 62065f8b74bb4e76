/* The connector SDK: what a connector promises, and the runtime that keeps those promises for it.
 *
 * A connector is one program (omni-<name>) that reads one kind of source (IMAP, a call log, a webhook) and
 * hands each source message to omnirouted as a normalized message (message.h) over OMNI/1 (client.h).
 *
 * The contract. A connector:
 *   MUST spool before it acknowledges: omni_connector_submit() each message, then omni_connector_commit()
 *        (one fsync for the batch), and only after commit returned 0 tell its source the message is taken
 *        (mark mail \Seen, answer a webhook 200, save a file offset). A crash between the two then sends a
 *        message twice (the router deduplicates by id), never zero times.
 *   MUST give every message an id that is the same each time the same source message is read again
 *        (after a restart, a reconnect, a log rotation): that is what makes deduplication work.
 *   MUST NOT block on its source longer than poll_ms: every network or file operation in poll() has a
 *        timeout, so signals, router replies and the watchdog are served while the source is slow.
 *   MUST return from poll() with -1 when the source failed (unreachable, refused): the runtime then paces
 *        retries (poll_ms doubling up to retry_max_ms) instead of the connector sleeping.
 *   MAY return OMNI_POLL_PENDING from poll() while the source's answer is not in yet (read by a thread of
 *        its own, or a transfer under way, that wakes it through the watched fd): nothing is decided then.
 *   MUST stop reading its source while submit() answers EAGAIN (the spool is full: the router is away);
 *        it returns 0 from poll() and is called again after poll_ms.
 *   MUST free everything it allocated in close(); SIGTERM and SIGINT end the program with status 0 after
 *        close(), and the spool keeps every message the router has not answered yet (resent on start).
 *   MAY watch a file descriptor (omni_connector_watch_fd): poll() is then also called when it is readable.
 *        A webhook connector uses the HTTP intake (http_intake.h), which watches its server's fd this way
 *        and answers each request only after the commit that made its messages durable.
 *   MAY ask to be polled sooner (omni_connector_poll_in), e.g. when it stopped a batch at a size limit.
 *   MAY keep a small state file (omni_connector_state_save/load), written atomically, for offsets or UIDs.
 *
 * The runtime (libomni/connector.c) gives a connector, so it does not write them again:
 *   - the command line: --config FILE, --check-config, --help, -D key=value (repeatable; a key is the full
 *     dotted YAML path, "poll_ms=200", "poll_ms=2s", "phonelog.answered=log"; values are written as the
 *     router's -D takes them: a scalar literally, a list in YAML flow syntax "[a, b]" or one value);
 *   - a YAML config (libyaml) checked against a declarative table of typed keys; every error names
 *     file:line:column ("command line:N" for -D); unknown keys, wrong types and out-of-range values are
 *     errors and a config with any error is never used. Common keys, at the top level:
 *         router.endpoint   OMNI/1 endpoint of omnirouted      default ipc:///var/lib/omnirouter/omnirouter-ingest.sock
 *         router.resend_ms  resend an unanswered message       default 5000    (100 .. 3600000)
 *         router.ping_ms    PING when the router is silent     default 10000   (100 .. 3600000)
 *         spool_dir         the client's spool (client.h)      default /var/spool/omnirouter/<name>
 *         state_dir         connector state files              default: spool_dir
 *         max_spooled       submit answers EAGAIN past this    default 100000  (1 .. 10000000)
 *         poll_ms           period of poll()                   default 1000    (10 .. 3600000)
 *         retry_max_ms      longest pause after source errors  default 60000   (10 .. 3600000)
 *         log_level         debug|info|warn|error              default info
 *         metrics_listen    GET /metrics on a numeric HOST:PORT  default: none (docs/operations.md)
 *         default_country   ISO 3166 alpha-2 for national phone numbers, e.g. US; default: none
 *         router.server_public_key      CURVE over tcp: the router's public key (Z85 or its .pub file)
 *         router.curve_secret_key_file  CURVE: this connector's secret key file (0600; never the key inline)
 *         router.curve_public_key_file  CURVE: its public key file, checked against the secret (optional)
 *     and the connector's own keys in a mapping named after it ("phonelog:"). Relative paths are
 *     relative to the config file's directory. Without --config the defaults and -D are used.
 *   - logging (log.h) under the ident omni-<name>;
 *   - signals through a signalfd: SIGTERM/SIGINT stop cleanly, SIGHUP is logged and ignored (restart to
 *     reload: a connector holds no state a restart loses), SIGPIPE is ignored;
 *   - the OMNI/1 client and its spool, with NACKs logged (the message is in dead-letter.jsonl);
 *   - health through sd_notify (libsystemd; a no-op outside systemd): READY=1 once the router client exists
 *     and the first poll() returned 0 (the source was reached), STATUS= a line with the counters and the
 *     connector's own status text, WATCHDOG=1 at half of WatchdogSec while the loop runs, STOPPING=1;
 *   - one loop multiplexing the signalfd, the client's fd, the connector's fd and the timers.
 *
 * Threading: everything here runs on one thread, the one that calls omni_connector_run(), and none of it may
 * be called from another: a connector that reads its source on threads of its own (omni-email: one per
 * mailbox, so that a stalled server blocks nothing else) hands the work that needs the runtime (submit,
 * commit, state files) to the loop's thread through its watched fd, and returns OMNI_POLL_PENDING while an
 * answer is under way. */
#ifndef OMNI_CONNECTOR_H
#define OMNI_CONNECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include "omni/client.h"
#include "omni/message.h"

typedef struct omni_connector omni_connector_t;

/* ---- the connector's own config keys: a table ending with an entry whose name is NULL ---- */

typedef enum {
    OMNI_KEY_STRING, /* any string; min/max bound its length in bytes when max > 0 */
    OMNI_KEY_PATH,   /* a string; relative paths resolve against the config file's directory */
    OMNI_KEY_INT,    /* a decimal integer within [min, max] */
    OMNI_KEY_BOOL,   /* true|false|yes|no|on|off */
    OMNI_KEY_ENUM,   /* one of choices, "skip|log" */
    OMNI_KEY_LIST,   /* a YAML sequence of strings, or one string (a list of one); in -D the same in YAML flow
                        syntax, "[a, b]"; max bounds its entries when > 0 */
    OMNI_KEY_DURATION, /* milliseconds within [min, max]: "500", "500ms", "5s", "2m", "1h" (omni/units.h, as the
                          router reads its durations); read with omni_connector_cfg_int */
    OMNI_KEY_SIZE,   /* bytes within [min, max]: "65536", "64k", "32m", "1g" (powers of 1024); cfg_int */
    OMNI_KEY_SECRET, /* where a secret is (secret.h): a file (relative: to the config file's directory),
                        credential:NAME or env:NAME; never the secret itself. Read it with omni_connector_secret */
} omni_key_type_t;

typedef struct omni_connector_key {
    const char *name;      /* under the connector's section: "files" is phonelog.files */
    omni_key_type_t type;
    const char *def;       /* default written as on the command line ("1000", "5s", "true", "skip", "[a, b]");
                              NULL: no default (the getter returns NULL / 0 / false / an empty list) */
    bool required;         /* missing is an error (then def is NULL) */
    long long min, max;    /* see the type */
    const char *choices;   /* OMNI_KEY_ENUM only */
    const char *help;      /* one line, shown by --help */
} omni_connector_key_t;

/* ---- the definition a connector hands to the runtime (static, outlives the runtime) ---- */

typedef struct omni_connector_def {
    const char *name;      /* [a-z0-9-]+: program omni-<name>, config section, default spool dir */
    const char *channel;   /* every message submitted must carry this channel ("phone", "x-foo") */
    const char *summary;   /* one line for --help */
    const omni_connector_key_t *keys; /* may be NULL: no own keys */
    /* Optional: checks the connector's keys beyond their types and across keys (run by --check-config too),
     * once every key has a value of its type. Reports each error it finds with omni_connector_check_error
     * (located where the key was set) and goes on, so that one run lists them all; returns 0 (the runtime
     * still fails when an error was reported), or -1 with one sentence in err naming the key (the older
     * form: printed after the file's name). Must not touch the source. */
    int (*check)(omni_connector_t *ctx, char *err, size_t errsz);
    /* Sets up (parses config into its state, opens files it needs at once); does not need the source to be
     * reachable. Returns 0, or -1 after logging why: the program then exits with status 1. */
    int (*open)(omni_connector_t *ctx);
    /* Reads what the source has, submits, commits, acknowledges. Called every poll_ms (or as asked by
     * omni_connector_poll_in), when the watched fd is readable, and paced after errors.
     * Returns 0 (the source was reached), -1 (the source failed; logged by the connector), or
     * OMNI_POLL_PENDING (below). */
    int (*poll)(omni_connector_t *ctx);
    /* Frees the connector's state. Called once, if open returned 0, before the program ends. */
    void (*close)(omni_connector_t *ctx);
} omni_connector_def_t;

/* What poll() returns when the source's answer is not in yet: the work is under way elsewhere (a thread of
 * the connector's, a transfer) and wakes the connector through its watched fd (omni_connector_watch_fd).
 * Neither reached nor failed: READY, the back-off and the poll counters stay as they are; the fd is
 * watched even while the runtime backs off (the retry under way answers through it); and the runtime does
 * not commit after such a poll (a batch under way may span several polls: the connector commits it when
 * it is whole). poll() is called again after poll_ms, when asked (omni_connector_poll_in), or when the
 * fd is readable. */
#define OMNI_POLL_PENDING 1

/* ---- life cycle ---- */

/* Reads the command line and config, checks them (def->check too), sets up logging, blocks the signals and
 * creates the OMNI/1 client. def and argv are borrowed and must outlive the result.
 * Returns the runtime (caller owns; omni_connector_destroy), or NULL when the program should exit now with
 * *status: 0 after --help or a good --check-config, 1 on a config or startup error (already printed),
 * 2 on a usage error. */
omni_connector_t *omni_connector_new(const omni_connector_def_t *def, int argc, char **argv, int *status);

/* Calls open, then loops until SIGTERM/SIGINT or omni_connector_stop(), then close. Returns the exit
 * status: 0 after a signal, the stop() status otherwise, 1 when open failed or the client broke. */
int omni_connector_run(omni_connector_t *ctx);

/* One turn of the loop, for tests and for embedding: opens on the first call, waits up to timeout_ms
 * (0: not at all) for a signal, the client, the fd or a timer, serves them (poll() when due).
 * Returns 0 to go on, 1 when a stop was requested, -1 when open failed or the client broke. */
int omni_connector_step(omni_connector_t *ctx, int timeout_ms);

/* Ends the loop after the current turn; run() returns status. */
void omni_connector_stop(omni_connector_t *ctx, int status);

/* Calls close if open succeeded, destroys the client (the spool stays on disk), frees, sets *ctx = NULL. */
void omni_connector_destroy(omni_connector_t **ctx);

/* new + run + destroy: the whole main() of a connector is `return omni_connector_main(&def, argc, argv);` */
int omni_connector_main(const omni_connector_def_t *def, int argc, char **argv);

/* ---- inside the callbacks ---- */

/* The connector's own state pointer (owned by the connector: set in open, freed in close). */
void omni_connector_set_user(omni_connector_t *ctx, void *user);
void *omni_connector_user(const omni_connector_t *ctx);

/* Validates msg (default limits, and its channel is def->channel) and spools it: serialized once, and
 * that text is what the size limit is checked on, what the spool keeps and what the router gets. msg stays
 * the caller's. Returns 0 when spooled (gathered for the commit's one write; durable only after commit);
 *         OMNI_SUBMIT_INVALID when invalid: logged (warn) with its id and field, counted, never sent. The
 *             source message can be acknowledged after the next commit: retrying will not make it valid;
 *        -1 with errno EAGAIN when the spool is full (stop reading the source, return 0 from poll),
 *             or another errno when the spool could not be written (return -1 from poll). */
#define OMNI_SUBMIT_INVALID 1
int omni_connector_submit(omni_connector_t *ctx, const omni_msg_t *msg);

/* Counts n source messages the connector found invalid itself, never submitted (an event it cannot read, a
 * message over the router's limits that it refuses to its source), as a submit refused OMNI_SUBMIT_INVALID is
 * counted (omnirouter_connector_messages_invalid_total). The connector logs each, with its id and field. */
void omni_connector_invalid(omni_connector_t *ctx, unsigned n);

/* Around the submits of a unit the source delivers whole, that cannot be taken in part (an HTTP request
 * answered once for all its messages, an API page whose cursor moves only after it): begin returns -1
 * with errno EAGAIN when the spool is full now (refuse or pause the unit), else 0, and until end no
 * submit is refused for a full spool, so a unit larger than max_spooled is taken, not refused for good
 * (the spool passes max_spooled by at most that unit). */
int omni_connector_begin_whole(omni_connector_t *ctx);
void omni_connector_end_whole(omni_connector_t *ctx);

/* Makes every message submitted so far durable (omni_client_sync: one write(2), one fdatasync); they go to
 * the router after it. Returns 0 or -1 with errno. Only after 0 may the connector acknowledge the source.
 * Cheap when nothing was submitted since the last commit. */
int omni_connector_commit(omni_connector_t *ctx);

/* From inside a long poll (a source read in large batches): writes what was submitted so far to the spool
 * (one write(2), not synced) and serves the router client once (sends what the window allows, reads the
 * answers), so the router stores the first messages of a batch while the connector still reads the rest.
 * Not a commit: nothing is durable yet, and the source is acknowledged only after omni_connector_commit()
 * (a message the router stored before a crash comes again from the source and is deduplicated by its id).
 * Returns 0, or -1 when the client broke (logged; return -1 from poll). */
int omni_connector_flush(omni_connector_t *ctx);

/* Poll again after ms (0: as soon as the client is served) instead of after poll_ms. The earliest
 * request wins until the next poll. */
void omni_connector_poll_in(omni_connector_t *ctx, int ms);

/* poll() is also called when fd is readable (level-triggered). fd stays the connector's; -1 stops. */
void omni_connector_watch_fd(omni_connector_t *ctx, int fd);

/* Sets the connector's part of the STATUS= line ("following /var/log/asterisk/cdr-csv/Master.csv"). */
void omni_connector_status(omni_connector_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Config values of the connector's own keys by their short name ("files"). Asking for a key that is not
 * in def->keys, or with the getter of another type, is a bug (omni_panic). Strings are borrowed from ctx.
 * _str serves STRING, PATH, ENUM and SECRET keys (a SECRET's value is where the secret is, not the secret);
 * _int INT, DURATION (ms) and SIZE (bytes) keys; _list stores a borrowed array in *items and returns its length. */
const char *omni_connector_cfg_str(const omni_connector_t *ctx, const char *key);
long long omni_connector_cfg_int(const omni_connector_t *ctx, const char *key);
bool omni_connector_cfg_bool(const omni_connector_t *ctx, const char *key);
size_t omni_connector_cfg_list(const omni_connector_t *ctx, const char *key, const char *const **items);

/* Loads the secret a SECRET key names (omni_secret_load) into out. Returns its length, or -1 with a
 * sentence in err naming the key and the place ("sms.auth_token: /etc/x: readable by others ..."). */
long omni_connector_secret(const omni_connector_t *ctx, const char *key, char *out, size_t outsz, char *err,
                           size_t errsz);

/* From inside def->check: one error about the connector's own key (short name) or a common one (its full
 * name, "max_spooled"; NULL: about no key), printed
 * at once as "omni-NAME: PLACE: SECTION.KEY: text", PLACE being where the key was set: FILE:LINE:COLUMN,
 * "command line:N:1" for a -D, or the config file when the key has its default. The run then fails. */
void omni_connector_check_error(omni_connector_t *ctx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* From inside def->check: loads the secret a SECRET key names and wipes it; reports why it cannot be loaded
 * (omni_connector_check_error) and returns -1, else returns 0. */
int omni_connector_check_secret(omni_connector_t *ctx, const char *key);

/* Common settings; strings borrowed from ctx. default_country is NULL when not configured. */
const char *omni_connector_name(const omni_connector_t *ctx);
const char *omni_connector_channel(const omni_connector_t *ctx);
const char *omni_connector_default_country(const omni_connector_t *ctx);
const char *omni_connector_state_dir(const omni_connector_t *ctx);
int omni_connector_poll_ms(const omni_connector_t *ctx);
int omni_connector_retry_max_ms(const omni_connector_t *ctx);

/* The OMNI/1 client (borrowed), for its stats and pending count. */
omni_client_t *omni_connector_client(const omni_connector_t *ctx);

typedef struct omni_connector_stats {
    unsigned long long polls, poll_errors, submitted, invalid, commits, nacked;
} omni_connector_stats_t;
void omni_connector_stats(const omni_connector_t *ctx, omni_connector_stats_t *out);

/* ---- small state files (offsets, UIDs) ---- */

#define OMNI_STATE_MAX (1024 * 1024) /* a state file is small: larger ones are refused on read and write */

/* Replaces dir/name with len bytes atomically: writes dir/.name.tmp, fsyncs it, renames it over name,
 * fsyncs dir. After a crash the file holds the old or the new content, never a mix. name is a plain file
 * name (no '/'). Returns 0 or -1 with errno. */
int omni_state_write(const char *dir, const char *name, const void *data, size_t len);
/* Reads dir/name. Returns 0 with *data (NUL-terminated, caller frees) and *len (may be NULL),
 * 1 when the file does not exist (*data = NULL), -1 with errno on an error (EFBIG over OMNI_STATE_MAX). */
int omni_state_read(const char *dir, const char *name, char **data, size_t *len);
/* The same in omni_connector_state_dir(ctx). */
int omni_connector_state_save(omni_connector_t *ctx, const char *name, const void *data, size_t len);
int omni_connector_state_load(omni_connector_t *ctx, const char *name, char **data, size_t *len);

#endif
