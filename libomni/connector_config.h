/* Internal to the connector runtime: the config of one connector, read from YAML and -D overrides against
 * the common keys plus the connector's own table (connector.h lists the common keys). */
#ifndef OMNI_CONNECTOR_CONFIG_H
#define OMNI_CONNECTOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "omni/connector.h"

/* One key with its value. */
typedef struct conn_slot {
    char *path;                     /* full dotted name: "poll_ms", "phonelog.files" */
    const omni_connector_key_t *key;
    bool set;                       /* given in the file or on the command line (not a default) */
    bool from_file;                 /* set by the file: a second time in the file is a duplicate */
    bool refused;                   /* given, but its value was an error (reported): not "missing" too */
    char *where;                    /* owned: where the value was set ("conf/x.yaml:12:5", "command line:2:1"),
                                       NULL at its default: an error about it is located there */
    char *str;                      /* STRING, PATH, ENUM */
    long long num;                  /* INT */
    bool flag;                      /* BOOL */
    char **list;                    /* LIST: n_list strings and a NULL */
    size_t n_list;
} conn_slot_t;

typedef struct conn_config {
    char *source;        /* the config file, or NULL */
    char *base_dir;      /* relative paths resolve against it: the file's directory, or "." */
    conn_slot_t *slots;  /* the common keys first (CONN_COMMON_KEYS of them), then the connector's */
    size_t n_slots;
    /* the common values, typed, borrowed from slots */
    const char *endpoint, *spool_dir, *state_dir, *default_country;
    const char *server_public_key, *curve_secret_key_file, *curve_public_key_file; /* NULL: no CURVE */
    const char *metrics_listen; /* GET /metrics; NULL: none */
    char *endpoint_list;        /* owned: router.endpoint's entries joined with commas (endpoint points here) */
    int resend_ms, ping_ms, poll_ms, retry_max_ms, log_level;
    size_t max_spooled;
} conn_config_t;

/* Error lines ("conf/phonelog.yaml:12:5: poll_ms: 0 is below the minimum 10"). */
typedef struct conn_errors {
    char **lines;
    size_t n;
} conn_errors_t;

/* Reads path (NULL: none) and the overrides ("key=value"; override i is located as "command line:i+1").
 * def is borrowed and must outlive the result. Returns a new config (caller owns; conn_config_destroy) or
 * NULL with every error in *errs (caller frees with conn_errors_free). */
conn_config_t *conn_config_load(const omni_connector_def_t *def, const char *path,
                                const char *const *overrides, size_t n_overrides, conn_errors_t *errs);
void conn_config_destroy(conn_config_t **cfg);
void conn_errors_free(conn_errors_t *errs);

/* The slot for a connector key by short name, or NULL. */
const conn_slot_t *conn_config_own(const conn_config_t *cfg, const char *name);

/* The slot for a common key by its full name ("max_spooled", "router.endpoint"), or NULL. */
const conn_slot_t *conn_config_common(const conn_config_t *cfg, const char *path);

/* Where an error about slot s is located: its where, else the config file, else "config". Borrowed. */
const char *conn_config_where(const conn_config_t *cfg, const conn_slot_t *s);

/* Prints every key (common and own) with type, default, bounds and help. */
void conn_config_print_reference(const omni_connector_def_t *def, FILE *out);

#endif
