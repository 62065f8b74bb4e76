/* omnirouted's configuration: YAML read with libyaml against one declarative table of keys, each with its
 * type, default, bounds and validator (after Redis's config.c). Every error names file:line:column.
 * Unknown keys, wrong types, out-of-range values and duplicate keys are errors; a config with any error is
 * never used. docs/configuration.md lists every key; `omnirouted --config-reference` prints the table. */
#ifndef OMNI_DAEMON_CONFIG_H
#define OMNI_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "config_where.h"
#include "omni/message.h"
#include "policy.h"
#include "redis_address.h"

enum { REDIS_DURABILITY_STRICT, REDIS_DURABILITY_RELAXED };

typedef struct router_config {
    char *source; /* the file it was read from */
    char version[13]; /* 12 hex digits of a digest of the file and the overrides: what omnictl status shows */
    struct {
        char **ingest;            /* endpoints the ROUTER socket binds: "ipc://PATH", "tcp://HOST:PORT" */
        size_t n_ingest;
        char *state_dir;          /* embedded Redis, sockets; relative paths are relative to the config file */
        int log_level;            /* omni_log_level_t */
        int tick_ms;              /* period of the cron tick */
        int max_inflight;         /* messages waiting for Redis before new ones get BUSY */
        int busy_retry_ms;        /* retry hint sent with BUSY */
        int peer_violation_limit; /* protocol violations before a peer is dropped */
        int peer_ban_s;           /* how long a dropped peer's frames are ignored */
        struct {
            char *secret_key_file; /* the router's CURVE secret key (a file, 0600); NULL: no CURVE */
            char **allowed_keys;   /* connectors' public keys: Z85 keys, .pub files, directories of them */
            size_t n_allowed_keys;
        } curve;                   /* tcp:// endpoints; relative paths come back resolved like state_dir */
        bool insecure_tcp;         /* tcp:// without CURVE is allowed (anyone who reaches the port may submit) */
        char *ipc_mode;            /* octal mode of ipc:// socket files, e.g. "0660" */
        char *ipc_owner, *ipc_group; /* user and group the ipc:// socket files are given; NULL: the router's */
        char *metrics_listen;      /* "HOST:PORT" of GET /metrics (Prometheus); NULL: none */
    } router;
    struct {
        char *address;    /* NULL: embedded. "tcp://HOST:PORT" or "unix:PATH", as written */
        redis_address_t addr; /* address parsed, its host resolved to a number at load (unset: embedded) */
        int durability;   /* REDIS_DURABILITY_STRICT: ACK only on a Redis seen to fsync every write */
        char *password;   /* NULL: no AUTH */
        int database;     /* SELECT n */
        char *key_prefix; /* every key the router writes starts with it; default "omni:" */
        int timeout_ms;   /* a command unanswered this long drops the connection */
        int reconnect_ms; /* first reconnect delay; doubles up to 5 s */
        int connections;  /* connections the router keeps to Redis (more commands per fsync) */
        char *server;     /* embedded: the redis-server binary; default "redis-server" */
        char **sentinels; /* "HOST:PORT" of each sentinel, as written; none: redis.address or embedded */
        size_t n_sentinels;
        redis_address_t *sentinel_addrs; /* n_sentinels, resolved at load (owned) */
        char *master_name;  /* the sentinels' name for the primary */
        int wait_replicas;  /* ACK only once WAIT confirmed this many replicas have the message; 0: no WAIT */
        int wait_timeout_ms;
    } redis;
    omni_limits_t limits;
    struct {
        char *default_country; /* ISO 3166 alpha-2 for national phone numbers, e.g. "US"; NULL: none */
    } identity;
    struct {
        char *default_queue; /* queue new conversations join until the routing engine lands */
    } conversations;
    struct {
        int dedup_s;       /* a message id is remembered this long for deduplication (its seen:<id> marker) */
        int resolved_s;    /* a resolved conversation stays in Redis this long, then is archived and deleted */
        int tombstone_s;   /* an archived conversation's archived:<n> (where it went) is kept this long */
        char *archive_dir; /* JSON-lines archive, one file per UTC day; absolute once loaded (default
                            * STATE_DIR/archive) */
    } retention;
    policy_t policy; /* calendars, teams, agents, classification, routing, sla, ...: see policy.h */
} router_config_t;

struct cfg_source;
typedef struct config_errors {
    char **lines; /* "conf/omnirouter.yaml:12:5: router.tick_ms: 0 is below the minimum 1" */
    size_t n;
    /* Internal to a load: the file as parsed, so errors found after the walk (policy_compile's) point at
     * the entry their key names; NULL outside config_load. Borrowed, never freed through errs. */
    const struct cfg_source *source;
} config_errors_t;

/* Reads path (NULL: no file, defaults only), applies overrides ("router.state_dir=/tmp/x", located as
 * "command line:N:1" in errors, N counting from 1), checks everything. Returns a new config (caller owns;
 * config_destroy) or NULL with every error in *errs. *errs is overwritten, not appended to: free it with
 * config_errors_free after each call; errs may be NULL. Relative paths come back resolved: state_dir
 * absolute, relative ipc:// endpoints inside state_dir. path and overrides are borrowed for the call. */
/* From now on, loading also reads the CURVE key files (router.curve.*), as the router will at start, and
 * reports what it cannot read at the place the key was set. omnirouted turns it on; omnictl and omni-api,
 * which need not be able to read the router's secret key, leave it off. */
void config_read_key_files(bool on);

router_config_t *config_load(const char *path, const char *const *overrides, size_t n_overrides,
                             config_errors_t *errs);
/* The same for a config already in memory (the fuzzer, tests): len bytes of text, which need no NUL, named
 * name in errors and for relative paths; no overrides. name and text are borrowed for the call. */
router_config_t *config_load_text(const char *name, const char *text, size_t len, config_errors_t *errs);
/* For a reload (SIGHUP): loads path and overrides again like config_load; keys a reload cannot change
 * (sockets, Redis: marked in the reference) keep running's values, and their paths are listed in kept
 * (", "-separated; "" when none changed). Returns the new config (caller owns) or NULL with *errs. running
 * is borrowed. */
router_config_t *config_reload(const router_config_t *running, const char *path, const char *const *overrides,
                               size_t n_overrides, config_errors_t *errs, char *kept, size_t keptsz);
/* Frees and sets *cfg = NULL; NULL and *cfg == NULL are fine. */
void config_destroy(router_config_t **cfg);
/* Frees the lines and leaves *errs empty (reusable). */
void config_errors_free(config_errors_t *errs);
/* Appends to *warns (config_errors_free frees it) what a config that loaded may still do wrong: routing
 * rules whose work none of their targets can ever take (docs/routing.md, "Warnings"), each line
 * "FILE:LINE:COLUMN: warning: KEY: WHY". cfg is borrowed for the call. */
void config_warnings(const router_config_t *cfg, config_errors_t *warns);
/* The checks of redis.address and redis.key_prefix, shared with omni-api's table (cfg_check_fn: NULL or the
 * reason, in buf or static). */
const char *config_check_redis_address(const char *value, char *buf, size_t bufsz);
const char *config_check_key_prefix(const char *value, char *buf, size_t bufsz);

/* The Sentinel keys of every program that talks to Redis (the router, omni-api, omni-webhooks; omnictl reads
 * the router's), declared once: TYPE has redis.sentinels, redis.n_sentinels and redis.master_name. FLAGS:
 * CFG_RESTART for the router (a reload keeps them), 0 for programs that read their file only at start. */
#define CONFIG_SENTINEL_KEYS(TYPE, FLAGS)                                                                              \
    { .path = "redis.sentinels", .type = CFG_STRLIST, .offset = offsetof(TYPE, redis.sentinels),               \
      .count_offset = offsetof(TYPE, redis.n_sentinels), .min = 0, .max = 16, .def = "[]",                     \
      .flags = CFG_UNIQUE | (FLAGS),                                                                           \
      .doc = "Redis Sentinel instead of redis.address: HOST:PORT of each sentinel (names resolved when the "   \
             "configuration is read). The primary of redis.master_name is asked of them and checked with ROLE; " \
             "a failover is followed, and while there is no primary nothing is written: the router answers "    \
             "BUSY, omni-api 503, omni-webhooks waits (docs/redis.md, \"Failover\")." },                        \
    { .path = "redis.master_name", .type = CFG_STRING, .offset = offsetof(TYPE, redis.master_name),            \
      .flags = CFG_NULLABLE | (FLAGS),                                                                         \
      .doc = "The name the sentinels monitor the primary under (sentinel monitor NAME ...); required with "    \
             "redis.sentinels." }
/* After a table with CONFIG_SENTINEL_KEYS is read: resolves the n sentinels into *addrs (allocated, the
 * caller frees it; NULL when n is 0) and checks redis.master_name is set and redis.address was not written
 * too (address_written). Errors are located at w (redis.sentinels). Arguments borrowed for the call. */
void config_sentinels_resolve(char *const *sentinels, size_t n, const char *master_name, bool address_written,
                              redis_address_t **addrs, const cfg_where_t *w, config_errors_t *errs);
/* Prints every key with its type, default, bounds and description (the reference in docs/configuration.md). */
void config_print_reference(FILE *out);

#endif
