/* omni-webhooks' configuration: its own declarative table of keys (read by the router's config machinery,
 * daemon/config_schema.h), so every error names FILE:LINE:COLUMN. conf/omni-webhooks.yaml is the commented
 * sample; `omni-webhooks --config-reference` prints the table (docs/webhooks.md "Configuration").
 * Secrets are never written in the file: each partner's signing secrets and the Redis password name where
 * they are (a file, credential:NAME, env:NAME; include/omni/secret.h) and are read when the file is. */
#ifndef OMNI_WEBHOOKS_CONFIG_H
#define OMNI_WEBHOOKS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "config.h"
#include "config_where.h"
#include "redis_address.h"

#define WH_SECRETS_MAX 2   /* the current secret and, while rotating, the next one */
#define WH_KEY_MAX 256     /* bytes of a decoded whsec_ secret */

typedef struct wh_partner {
    char *team;              /* the partner team's name: its inbox is omni:inbox:team:<team> */
    char *url;               /* where deliveries are POSTed */
    char **secrets;          /* where each whsec_ secret is (1 or 2), as written */
    size_t n_secrets;
    bool insecure_http;      /* http:// allowed (tests, a partner on a private network) */
    char *ca_file;           /* PEM CA certificates its TLS certificate is verified against, as written; NULL:
                              * the system's */
    int connect_timeout_ms;
    int timeout_ms;          /* one attempt, from connecting to the last byte of the answer */
    int max_attempts;
    int backoff_base_ms, backoff_max_ms;
    cfg_where_t where;
    /* read at load: the secrets' key bytes (base64-decoded after "whsec_") */
    unsigned char key[WH_SECRETS_MAX][WH_KEY_MAX];
    size_t key_len[WH_SECRETS_MAX];
    char *ca_path;           /* ca_file resolved against the config file's directory (owned); NULL: none */
} wh_partner_t;

typedef struct wh_config {
    char *source; /* the file it was read from */
    struct {
        char *address;        /* tcp://HOST:PORT or unix:/PATH */
        redis_address_t addr; /* parsed, the host resolved at load */
        char *password;       /* where the password is (secret spec); NULL: no AUTH */
        char *password_value; /* read at load */
        int database;
        char *key_prefix;
        int timeout_ms, reconnect_ms;
        char **sentinels;     /* redis.sentinels as written (HOST:PORT); none: redis.address */
        size_t n_sentinels;
        redis_address_t *sentinel_addrs; /* resolved at load (owned) */
        char *master_name;
    } redis;
    struct {
        int log_level;
        char *metrics_listen; /* HOST:PORT of GET /metrics, /healthz, /readyz; NULL: none */
        int concurrency;     /* deliveries in flight at once, all partners together */
        int poll_ms;         /* how often the inboxes are read and due deliveries claimed */
        int keep_delivered_ms;
    } webhooks;
    wh_partner_t *partners;
    size_t n_partners;
} wh_config_t;

/* Reads path; returns a new config (caller owns; wh_config_destroy) or NULL with every error in *errs
 * (caller frees with config_errors_free). path is borrowed. */
wh_config_t *wh_config_load(const char *path, config_errors_t *errs);
/* Frees, wipes the secrets and sets *cfg = NULL; NULL is fine. */
void wh_config_destroy(wh_config_t **cfg);
/* The partner of that team, or NULL (borrowed from cfg). */
const wh_partner_t *wh_config_partner(const wh_config_t *cfg, const char *team);
/* Every key with its type, default, bounds and description. */
void wh_config_print_reference(FILE *out);

#endif
