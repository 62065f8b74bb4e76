/* omni-webhooks' keys: one table (the router's config machinery reads it), then what needs every key read:
 * the Redis address resolved, partners' team names unique, their secrets read and decoded. */
#include "wh_config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "config_schema.h"
#include "omni/log.h"
#include "omni/metrics.h"
#include "omni/secret.h"
#include "omni/util.h"
#include "policy.h"

#define CONFIG_FILE_MAX (1024 * 1024)

static const char *check_redis_address(const char *value, char *buf, size_t bufsz)
{
    redis_address_t addr;
    return redis_address_parse(value, &addr, buf, bufsz) == 0 ? NULL : buf;
}

static const char *check_url(const char *value, char *buf, size_t bufsz)
{
    if (!(strncmp(value, "https://", 8) == 0 && value[8]) && !(strncmp(value, "http://", 7) == 0 && value[7])) {
        snprintf(buf, bufsz, "\"%s\" is not an http(s) URL: write https://HOST[:PORT]/PATH", value);
        return buf;
    }
    /* Parsed as every attempt parses it (libcurl's URL parser, no flags, as CURLOPT_URL): a url no attempt could
     * be sent to is an error here, at its key, not a dead letter found out after max_attempts. */
    CURLU *u = curl_url();
    if (!u)
        omni_fatal("curl_url: out of memory");
    char *host = NULL, *user = NULL, *port = NULL;
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, value, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    if (rc == CURLUE_OK && !host[0])
        rc = CURLUE_NO_HOST;
    /* parsed, but nothing can be connected to on port 0 */
    bool port0 = rc == CURLUE_OK && curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && !strcmp(port, "0");
    if (port0)
        rc = CURLUE_BAD_PORT_NUMBER;
    bool credentials = rc == CURLUE_OK && curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK;
    curl_free(host);
    curl_free(user);
    curl_free(port);
    curl_url_cleanup(u);
    if (credentials) /* a password here would be a secret written in the config and in the logs: not echoed */
        snprintf(buf, bufsz, "credentials in the url (USER[:PASSWORD]@) would be a secret written in the "
                 "configuration: deliveries are authenticated by their signatures; write https://HOST[:PORT]/PATH");
    else if (rc != CURLUE_OK)
        snprintf(buf, bufsz, "\"%s\" is not a URL a request can be sent to (%s): write https://HOST[:PORT]/PATH",
                 value, port0 ? "port 0" : curl_url_strerror(rc));
    return rc == CURLUE_OK && !credentials ? NULL : buf;
}

static const char *check_partner(const void *obj, char *buf, size_t bufsz)
{
    const wh_partner_t *p = obj;
    if (p->url && strncmp(p->url, "http://", 7) == 0 && !p->insecure_http) {
        snprintf(buf, bufsz, "url %s is plain http: deliveries and their signatures would cross the network in "
                 "clear; use https://, or set insecure_http: true to mean it", p->url);
        return buf;
    }
    if (p->backoff_base_ms > p->backoff_max_ms) {
        snprintf(buf, bufsz, "backoff.base (%d ms) is above backoff.max (%d ms)", p->backoff_base_ms,
                 p->backoff_max_ms);
        return buf;
    }
    return NULL;
}

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };

#define POFF(f) offsetof(wh_partner_t, f)
static const cfg_key_t partner_keys[] = {
    { .path = "team", .type = CFG_STRING, .offset = POFF(team), .check = policy_check_name, .flags = CFG_REQUIRED,
      .doc = "The partner team (its name in the router's teams): its inbox omni:inbox:team:TEAM is delivered." },
    { .path = "url", .type = CFG_STRING, .offset = POFF(url), .check = check_url, .flags = CFG_REQUIRED,
      .doc = "The partner's endpoint; every delivery is POSTed there. https:// unless insecure_http." },
    { .path = "secrets", .type = CFG_STRLIST, .offset = POFF(secrets), .count_offset = POFF(n_secrets), .min = 1,
      .max = WH_SECRETS_MAX, .flags = CFG_REQUIRED | CFG_UNIQUE,
      .doc = "Where the signing secrets are (a file, credential:NAME or env:NAME; never the secret itself), each "
             "a Standard Webhooks whsec_ secret. Two while rotating: every delivery carries both signatures." },
    { .path = "insecure_http", .type = CFG_BOOL, .offset = POFF(insecure_http), .def = "false",
      .doc = "Allow an http:// url (a partner on a private network, tests)." },
    { .path = "ca_file", .type = CFG_STRING, .offset = POFF(ca_file), .flags = CFG_NULLABLE,
      .doc = "PEM file of the CA certificates the endpoint's TLS certificate is verified against (a partner with "
             "a private CA), relative to this file; empty: the system's CA store." },
    { .path = "connect_timeout", .type = CFG_DURATION, .offset = POFF(connect_timeout_ms), .min = 100,
      .max = 60000, .def = "5s", .unit_ms = 1, .doc = "Longest wait for the connection (and TLS) to be made." },
    { .path = "timeout", .type = CFG_DURATION, .offset = POFF(timeout_ms), .min = 100, .max = 300000,
      .def = "10s", .unit_ms = 1, .doc = "Longest one attempt may take, connecting included; past it the attempt "
                                         "failed." },
    { .path = "max_attempts", .type = CFG_INT, .offset = POFF(max_attempts), .min = 1, .max = 100, .def = "10",
      .doc = "Attempts before a delivery is dead-lettered and the work re-routed." },
    { .path = "backoff.base", .type = CFG_DURATION, .offset = POFF(backoff_base_ms), .min = 10, .max = 3600000,
      .def = "1s", .unit_ms = 1, .doc = "Delay before the second attempt; each further one doubles it, with jitter." },
    { .path = "backoff.max", .type = CFG_DURATION, .offset = POFF(backoff_max_ms), .min = 10, .max = 86400000,
      .def = "1h", .unit_ms = 1, .doc = "The longest delay between two attempts (a Retry-After may ask for more, "
                                        "up to 1 h)." },
    { .path = NULL },
};
static const cfg_table_t partner_table = { .keys = partner_keys, .size = sizeof(wh_partner_t),
                                           .check = check_partner, .has_where = true, .where_offset = POFF(where) };

#define OFF(f) offsetof(wh_config_t, f)
static const cfg_key_t keys[] = {
    { .path = "redis.address", .type = CFG_STRING, .offset = OFF(redis.address),
      .def = "unix:/var/lib/omnirouter/redis/redis.sock", .check = check_redis_address,
      .doc = "The router's Redis: tcp://HOST:PORT or unix:/PATH (the default is where omnirouted's embedded "
             "Redis listens with router.state_dir /var/lib/omnirouter). A name is resolved once, at start." },
    { .path = "redis.password", .type = CFG_STRING, .offset = OFF(redis.password), .flags = CFG_NULLABLE,
      .doc = "Where the password sent with AUTH is (a file, credential:NAME or env:NAME); empty: no AUTH." },
    { .path = "redis.database", .type = CFG_INT, .offset = OFF(redis.database), .min = 0, .max = 15, .def = "0",
      .doc = "Database number SELECTed after connecting (the router's)." },
    { .path = "redis.key_prefix", .type = CFG_STRING, .offset = OFF(redis.key_prefix), .def = "omni:",
      .doc = "The router's redis.key_prefix." },
    { .path = "redis.timeout", .type = CFG_DURATION, .offset = OFF(redis.timeout_ms), .min = 100, .max = 600000,
      .def = "5s", .unit_ms = 1, .doc = "A command unanswered this long drops the connection (and it reconnects)." },
    { .path = "redis.reconnect", .type = CFG_DURATION, .offset = OFF(redis.reconnect_ms), .min = 10,
      .max = 60000, .def = "200ms", .unit_ms = 1, .doc = "First delay before reconnecting; it doubles up to 5 s." },
    CONFIG_SENTINEL_KEYS(wh_config_t, 0),
    { .path = "webhooks.log_level", .type = CFG_ENUM, .offset = OFF(webhooks.log_level), .def = "info",
      .names = log_levels, .parse = omni_log_level_parse, .doc = "Least important level logged." },
    { .path = "webhooks.metrics_listen", .type = CFG_STRING, .offset = OFF(webhooks.metrics_listen),
      .flags = CFG_NULLABLE, .check = omni_metrics_listen_check,
      .doc = "Numeric HOST:PORT (e.g. 127.0.0.1:9466) where GET /metrics (Prometheus text), /healthz and "
             "/readyz are served; empty: none. The metrics are listed in docs/webhooks.md \"Metrics\"." },
    { .path = "webhooks.concurrency", .type = CFG_INT, .offset = OFF(webhooks.concurrency), .min = 1,
      .max = 10000, .def = "32", .doc = "Deliveries in flight at once, all partners together." },
    { .path = "webhooks.poll", .type = CFG_DURATION, .offset = OFF(webhooks.poll_ms), .min = 10, .max = 10000,
      .def = "200ms", .unit_ms = 1,
      .doc = "How often the inboxes are read and due deliveries claimed: the most a new event waits." },
    { .path = "webhooks.keep_delivered", .type = CFG_DURATION, .offset = OFF(webhooks.keep_delivered_ms),
      .min = 1000, .max = 1814400000, .def = "168h", .unit_ms = 1,
      .doc = "How long a delivered delivery's record (omni:webhook:ID) is kept; dead ones are kept." },
    { .path = "partners", .type = CFG_OBJLIST, .offset = OFF(partners), .count_offset = OFF(n_partners), .min = 1,
      .max = 1000, .sub = &partner_table, .doc = "The partner teams whose inboxes are delivered." },
    { .path = NULL },
};
static const cfg_table_t table = { .keys = keys, .size = sizeof(wh_config_t) };

/* A file spec relative to the config file's directory, as secret.h promises; others as they are. */
static char *secret_path(const char *spec, const char *config_path)
{
    const char *slash = strrchr(config_path, '/');
    if (spec[0] == '/' || !strncmp(spec, "credential:", 11) || !strncmp(spec, "env:", 4) || !slash)
        return omni_strdup(spec);
    return omni_asprintf("%.*s/%s", (int)(slash - config_path), config_path, spec);
}

/* Checks, when the config is read, that a partner's ca_file can be read and holds a PEM certificate: libcurl
 * would only say so at every attempt. */
static void load_ca_file(wh_partner_t *p, const char *config_path, const char *key, config_errors_t *errs)
{
    p->ca_path = secret_path(p->ca_file, config_path); /* relative to the config file, as a secret's file */
    FILE *f = fopen(p->ca_path, "r");
    if (!f) {
        cfg_error_key(errs, &p->where, key, "%s: %s", p->ca_path, strerror(errno));
        return;
    }
    char *text = omni_malloc(CONFIG_FILE_MAX + 1);
    size_t n = fread(text, 1, CONFIG_FILE_MAX, f);
    text[n] = '\0';
    if (ferror(f))
        cfg_error_key(errs, &p->where, key, "%s: cannot be read", p->ca_path);
    else if (!strstr(text, "-----BEGIN CERTIFICATE-----"))
        cfg_error_key(errs, &p->where, key, "%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", p->ca_path);
    fclose(f);
    free(text);
}

static void load_secrets(wh_config_t *cfg, const char *path, config_errors_t *errs)
{
    char value[OMNI_SECRET_MAX + 1], why[600];
    for (size_t i = 0; i < cfg->n_partners; i++) {
        wh_partner_t *p = &cfg->partners[i];
        for (size_t j = 0; j < p->n_secrets && j < WH_SECRETS_MAX; j++) {
            char *key = omni_asprintf("partners[%zu].secrets[%zu]", i, j);
            char *spec = secret_path(p->secrets[j], path);
            long n = p->secrets[j][0] ? omni_secret_load(spec, key, value, sizeof value, why, sizeof why) : -1;
            if (n < 0) {
                if (p->secrets[j][0]) /* "" is a refused entry: its error is already there */
                    cfg_error_key(errs, &p->where, key, "%s", strncmp(why, key, strlen(key)) ? why
                                  : why + strlen(key) + 2);
            } else if (strncmp(value, "whsec_", 6) != 0) {
                cfg_error_key(errs, &p->where, key, "%s does not hold a whsec_ secret (Standard Webhooks: whsec_ "
                              "then base64)", p->secrets[j]);
            } else {
                unsigned char buf[OMNI_SECRET_MAX];
                long len = omni_base64_decode(value + 6, buf, sizeof buf);
                if (len <= 0 || len > WH_KEY_MAX)
                    cfg_error_key(errs, &p->where, key, "%s: what follows whsec_ is not base64 of 1..%d bytes",
                                  p->secrets[j], WH_KEY_MAX);
                else {
                    memcpy(p->key[j], buf, (size_t)len);
                    p->key_len[j] = (size_t)len;
                }
                explicit_bzero(buf, sizeof buf);
            }
            free(spec);
            free(key);
        }
        if (p->ca_file && p->ca_file[0]) {
            char *key = omni_asprintf("partners[%zu].ca_file", i);
            load_ca_file(p, path, key, errs);
            free(key);
        }
        for (size_t k = 0; k < i; k++)
            if (p->team && cfg->partners[k].team && !strcmp(p->team, cfg->partners[k].team)) {
                char *key = omni_asprintf("partners[%zu].team", i);
                cfg_error_key(errs, &p->where, key, "%s is already partners[%zu]: one entry per team", p->team, k);
                free(key);
            }
    }
    explicit_bzero(value, sizeof value);
}

static void finalize(void *obj, const char *path, const cfg_where_t *where, config_errors_t *errs)
{
    wh_config_t *cfg = obj;
    if (cfg->n_partners == 0 && errs->n == 0) { /* not written at all: the file's top names the place */
        cfg_where_t w = where[cfg_key_index(&table, "partners")];
        if (w.line == 0)
            w = (cfg_where_t){ .file = path, .line = 1, .col = 1 };
        cfg_error_at(errs, &w, "partners", "no partner listed: there is nothing to deliver");
    }
    char why[600];
    const cfg_where_t *w_addr = &where[cfg_key_index(&table, "redis.address")];
    config_sentinels_resolve(cfg->redis.sentinels, cfg->redis.n_sentinels, cfg->redis.master_name, w_addr->line > 0,
                             &cfg->redis.sentinel_addrs, &where[cfg_key_index(&table, "redis.sentinels")], errs);
    if (redis_address_parse(cfg->redis.address, &cfg->redis.addr, why, sizeof why) != 0 ||
        redis_address_resolve(&cfg->redis.addr, why, sizeof why) != 0)
        cfg_error_at(errs, w_addr, "redis.address", "%s", why);
    if (cfg->redis.password) {
        char value[OMNI_SECRET_MAX + 1];
        char *spec = secret_path(cfg->redis.password, path);
        if (omni_secret_load(spec, "redis.password", value, sizeof value, why, sizeof why) < 0)
            cfg_error_at(errs, &where[cfg_key_index(&table, "redis.password")], "redis.password", "%s",
                         strncmp(why, "redis.password: ", 16) ? why : why + 16);
        else
            cfg->redis.password_value = omni_strdup(value);
        explicit_bzero(value, sizeof value);
        free(spec);
    }
    load_secrets(cfg, path, errs);
}

wh_config_t *wh_config_load(const char *path, config_errors_t *errs)
{
    wh_config_t *cfg = omni_calloc(1, sizeof *cfg);
    if (cfg_load_file(&table, cfg, path, CONFIG_FILE_MAX, NULL, 0, finalize, &cfg->source, errs) > 0)
        wh_config_destroy(&cfg);
    return cfg;
}

void wh_config_destroy(wh_config_t **cfg)
{
    if (!cfg || !*cfg)
        return;
    wh_config_t *c = *cfg;
    for (size_t i = 0; i < c->n_partners; i++) {
        explicit_bzero(c->partners[i].key, sizeof c->partners[i].key);
        free(c->partners[i].ca_path);
    }
    if (c->redis.password_value) {
        explicit_bzero(c->redis.password_value, strlen(c->redis.password_value));
        free(c->redis.password_value);
    }
    free(c->redis.sentinel_addrs);
    cfg_free(&table, c);
    free(c->source);
    free(c);
    *cfg = NULL;
}

const wh_partner_t *wh_config_partner(const wh_config_t *cfg, const char *team)
{
    for (size_t i = 0; i < cfg->n_partners; i++)
        if (!strcmp(cfg->partners[i].team, team))
            return &cfg->partners[i];
    return NULL;
}

void wh_config_print_reference(FILE *out)
{
    cfg_print_table(&table, out);
}
