/* omni-api's configuration: its own small declarative table (the same machinery and error format as the
 * router's, daemon/config_schema.h), read from YAML; docs/api.md "Configuration" is api_config_print_reference(). */
#ifndef OMNI_API_CONFIG_H
#define OMNI_API_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "config.h" /* config_errors_t */
#include "omni/secret.h"
#include "redis_address.h"

typedef struct api_config {
    char *source; /* the file it was read from */
    struct {
        char *listen;                /* "HOST:PORT" as written; port 0: any free port (logged when ready) */
        struct sockaddr_storage addr; /* listen, resolved at load */
        socklen_t addr_len;
        int max_connections;         /* open connections at once (each one thread and one Redis connection) */
        int connection_timeout_s;    /* an idle connection is closed after this */
        int log_level;               /* omni_log_level_t */
        int retry_after_s;           /* Retry-After sent with 503 while Redis is unreachable */
        char *metrics_listen;        /* numeric HOST:PORT of GET /metrics; NULL: none */
    } api;
    struct {
        char *address;         /* "tcp://HOST:PORT" or "unix:/PATH" */
        redis_address_t addr;  /* parsed, host resolved at load */
        char *password;        /* where the password is (a file, credential:NAME, env:NAME); NULL: no AUTH */
        char password_value[OMNI_SECRET_MAX + 1]; /* read at load */
        int database;
        char *key_prefix;
        int timeout_ms;        /* connect and command timeout */
        char **sentinels;      /* redis.sentinels as written (HOST:PORT); none: redis.address */
        size_t n_sentinels;
        redis_address_t *sentinel_addrs; /* resolved at load (owned) */
        char *master_name;
    } redis;
    struct {
        size_t body_bytes;     /* largest request body; more is 413 */
    } limits;
    struct {
        int keepalive_ms;      /* a comment line on an idle event stream this often */
        int block_ms;          /* longest one wait for new entries (and for noticing a shutdown) */
    } sse;
    struct {
        char *directory;       /* the web console's files (index.html ...); NULL: no console */
    } console;
    struct {
        char *router_config;   /* the router's configuration file, as written; NULL: no GET /v1/overview */
        router_config_t *router; /* read from it at load (owned): its policy names the teams, agents, contracts */
        int sla_risk_ms;       /* waiting work whose SLA falls due within this is "at risk" */
        int recent;            /* routing decisions shown */
    } overview;
} api_config_t;

/* Reads path, applies overrides ("api.listen=127.0.0.1:0", located as "command line:N:1"), checks
 * everything, resolves the addresses and reads the Redis password. Returns a new config (caller owns;
 * api_config_destroy) or NULL with every error in *errs (caller frees with config_errors_free). Arguments
 * are borrowed for the call. */
api_config_t *api_config_load(const char *path, const char *const *overrides, size_t n_overrides,
                              config_errors_t *errs);
/* Frees and sets *cfg = NULL; NULL is fine. */
void api_config_destroy(api_config_t **cfg);
/* Every key with its type, default, bounds and description (markdown). */
void api_config_print_reference(FILE *out);

#endif
