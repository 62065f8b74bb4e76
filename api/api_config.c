/* omni-api's keys (see api_config.h). The Redis keys mean what the router's do, so one Redis serves both;
 * the password differs: it is never written in the YAML, only where to read it (omni/secret.h). */
#include "api_config.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>

#include "config_schema.h"
#include "omni/log.h"
#include "omni/metrics.h"
#include "omni/util.h"

#define CONFIG_FILE_MAX (1024 * 1024)

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };

static const char *check_listen(const char *value, char *buf, size_t bufsz)
{
    char host[REDIS_ADDRESS_HOST_MAX + 1];
    int port;
    /* port 0 is allowed here (any free port): redis_address_host_port wants 1..65535, so ask with 1 */
    size_t n = strlen(value);
    char *copy = omni_strdup(value);
    if (n >= 2 && !strcmp(value + n - 2, ":0"))
        copy[n - 1] = '1';
    int rc = redis_address_host_port(copy, host, sizeof host, &port);
    free(copy);
    if (rc == 0)
        return NULL;
    snprintf(buf, bufsz, "\"%s\" is not HOST:PORT (a name, an address, [IPv6] or * for every interface; a port "
             "0..65535, 0 for any free one)", value);
    return buf;
}

#define OFF(field) offsetof(api_config_t, field)

static const cfg_key_t api_keys[] = {
    { .path = "api.listen", .type = CFG_STRING, .offset = OFF(api.listen), .def = "127.0.0.1:8080",
      .check = check_listen,
      .doc = "Address and port the HTTP server listens on: HOST:PORT, [IPv6]:PORT, or *:PORT for every "
             "interface; port 0 takes any free port (the `ready:` log line names it). Plain HTTP: put a TLS "
             "proxy in front when it faces a network." },
    { .path = "api.max_connections", .type = CFG_INT, .offset = OFF(api.max_connections), .min = 1, .max = 10000,
      .def = "256",
      .doc = "Connections served at once, event streams included. Each is one thread and one Redis "
             "connection (thread per connection: a blocking Redis call stalls only its own client). "
             "Further connections wait in the listen queue and are served as connections close." },
    { .path = "api.connection_timeout", .type = CFG_DURATION, .offset = OFF(api.connection_timeout_s), .min = 1,
      .max = 3600, .def = "30s", .unit_ms = 1000,
      .doc = "An idle connection (no request, or a request body that stops arriving) is closed after this; "
             "an event stream waiting for events is not idle." },
    { .path = "api.retry_after", .type = CFG_DURATION, .offset = OFF(api.retry_after_s), .min = 1, .max = 3600,
      .def = "2s", .unit_ms = 1000,
      .doc = "Retry-After sent with 503 while Redis cannot be reached." },
    { .path = "api.metrics_listen", .type = CFG_STRING, .offset = OFF(api.metrics_listen), .flags = CFG_NULLABLE,
      .check = omni_metrics_listen_check,
      .doc = "Numeric HOST:PORT (e.g. 127.0.0.1:9465) where GET /metrics (Prometheus text), /healthz and /readyz "
             "are served, apart from the API's port so scrapes need no token and the metrics stay off the "
             "public side; empty: none. docs/api.md \"Metrics\" lists them." },
    { .path = "api.log_level", .type = CFG_ENUM, .offset = OFF(api.log_level), .def = "info", .names = log_levels,
      .parse = omni_log_level_parse, .doc = "Least important level logged: debug logs every request." },

    { .path = "redis.address", .type = CFG_STRING, .offset = OFF(redis.address),
      .def = "unix:/var/lib/omnirouter/redis/redis.sock", .check = config_check_redis_address,
      .doc = "The router's Redis: tcp://HOST:PORT or unix:/PATH. The default is the embedded Redis of a "
             "router whose router.state_dir is /var/lib/omnirouter. A name is resolved once, at start." },
    { .path = "redis.password", .type = CFG_STRING, .offset = OFF(redis.password), .flags = CFG_NULLABLE,
      .doc = "Where the password sent with AUTH is: a file (mode 0600 or 0400; relative to the config "
             "file), credential:NAME (systemd LoadCredential=) or env:NAME; never the password itself. "
             "Empty: no AUTH." },
    { .path = "redis.database", .type = CFG_INT, .offset = OFF(redis.database), .min = 0, .max = 15, .def = "0",
      .doc = "Database number SELECTed after connecting; the router's." },
    { .path = "redis.key_prefix", .type = CFG_STRING, .offset = OFF(redis.key_prefix), .def = "omni:",
      .check = config_check_key_prefix, .doc = "The router's redis.key_prefix." },
    { .path = "redis.timeout_ms", .type = CFG_DURATION, .offset = OFF(redis.timeout_ms), .min = 100,
      .max = 60000, .def = "2000", .unit_ms = 1,
      .doc = "Connecting, and each command, may take this long; then the request gets 503 and the next one "
             "connects again." },
    CONFIG_SENTINEL_KEYS(api_config_t, 0),

    { .path = "limits.body_bytes", .type = CFG_SIZE, .offset = OFF(limits.body_bytes), .min = 256,
      .max = 1048576, .def = "16k",
      .doc = "Largest request body. A larger one is answered 413: by its Content-Length before it is read; a "
             "chunked one once it passes the limit (the rest is read and dropped, and past 1 MiB more the "
             "connection is closed)." },

    { .path = "sse.keepalive", .type = CFG_DURATION, .offset = OFF(sse.keepalive_ms), .min = 1000,
      .max = 300000, .def = "15s", .unit_ms = 1,
      .doc = "An event stream with nothing to send gets a comment line this often, so proxies keep it open "
             "and a client that went away is noticed (its thread and Redis connection freed)." },

    { .path = "console.directory", .type = CFG_STRING, .offset = OFF(console.directory), .flags = CFG_NULLABLE,
      .def = "/usr/local/share/omnirouter/console",
      .doc = "The web console's files (index.html, console.css, console.js; `make install` puts them here), "
             "served under /console/ without a token (the page asks for one). Relative to the config file. "
             "Empty: no console (/console/ answers 404)." },

    { .path = "overview.router_config", .type = CFG_STRING, .offset = OFF(overview.router_config),
      .flags = CFG_NULLABLE,
      .doc = "The router's configuration file, read at start for GET /v1/overview (and the console's "
             "supervisor view): its policy names the teams, agents and partners' contracts whose figures "
             "are read from Redis. Relative to this file; an error in it is an error here. Empty: "
             "GET /v1/overview answers 404. Restart omni-api after changing the policy." },
    { .path = "overview.sla_risk", .type = CFG_DURATION, .offset = OFF(overview.sla_risk_ms), .min = 1000,
      .max = 86400000, .def = "10m", .unit_ms = 1,
      .doc = "Waiting work whose first-response target falls due within this is counted at risk." },
    { .path = "overview.decisions", .type = CFG_INT, .offset = OFF(overview.recent), .min = 0, .max = 100,
      .def = "20", .doc = "Recent routing decisions the overview lists, newest first." },
    { .path = NULL },
};

static const cfg_table_t api_table = { .keys = api_keys, .size = sizeof(api_config_t) };

static int where_index(const char *key) { return cfg_key_index(&api_table, key); }

/* The listen address as a socket address (numeric or a name, resolved now: never while serving). */
static void resolve_listen(api_config_t *cfg, const cfg_where_t *w, config_errors_t *errs)
{
    char host[REDIS_ADDRESS_HOST_MAX + 1];
    const char *colon = strrchr(cfg->api.listen, ':');
    if (!colon)
        return; /* already reported by check_listen */
    const char *h = cfg->api.listen, *end = colon;
    if (*h == '[' && end > h && end[-1] == ']')
        h++, end--;
    snprintf(host, sizeof host, "%.*s", (int)(end - h), h);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
    int rc = getaddrinfo(strcmp(host, "*") ? host : NULL, colon + 1, &hints, &res);
    if (rc != 0) {
        cfg_error_at(errs, w, "api.listen", "cannot resolve \"%s\": %s", host, gai_strerror(rc));
        return;
    }
    memcpy(&cfg->api.addr, res->ai_addr, res->ai_addrlen);
    cfg->api.addr_len = res->ai_addrlen;
    freeaddrinfo(res);
}

/* The directory of the config file, for a relative password file. */
static char *relative_to(const char *path, const char *file)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (file[0] == '/' || !slash || !strncmp(file, "credential:", 11) || !strncmp(file, "env:", 4))
        return omni_strdup(file);
    return omni_asprintf("%.*s/%s", (int)(slash - path), path, file);
}

static void finalize(void *obj, const char *path, const cfg_where_t *where, config_errors_t *errs)
{
    api_config_t *cfg = obj;
    resolve_listen(cfg, &where[where_index("api.listen")], errs);
    char why[400];
    const cfg_where_t *w_addr = &where[where_index("redis.address")];
    config_sentinels_resolve(cfg->redis.sentinels, cfg->redis.n_sentinels, cfg->redis.master_name, w_addr->line > 0,
                             &cfg->redis.sentinel_addrs, &where[where_index("redis.sentinels")], errs);
    if (redis_address_parse(cfg->redis.address, &cfg->redis.addr, why, sizeof why) != 0 ||
        redis_address_resolve(&cfg->redis.addr, why, sizeof why) != 0)
        cfg_error_at(errs, w_addr, "redis.address", "%s", why);
    if (cfg->redis.password) {
        const cfg_where_t *w = &where[where_index("redis.password")];
        char *spec = relative_to(w->file == cfg_command_line ? NULL : path, cfg->redis.password);
        if (omni_secret_load(spec, "redis.password", cfg->redis.password_value, sizeof cfg->redis.password_value,
                             why, sizeof why) < 0)
            cfg_error_at(errs, w, "redis.password", "%s", strncmp(why, "redis.password: ", 16) ? why : why + 16);
        free(spec);
    }
    if (cfg->console.directory) {
        const cfg_where_t *w = &where[where_index("console.directory")];
        char *dir = relative_to(w->file == cfg_command_line ? NULL : path, cfg->console.directory);
        free(cfg->console.directory);
        cfg->console.directory = dir;
    }
    if (cfg->overview.router_config) {
        const cfg_where_t *w = &where[where_index("overview.router_config")];
        char *file = relative_to(w->file == cfg_command_line ? NULL : path, cfg->overview.router_config);
        config_errors_t rerrs = { 0 };
        cfg->overview.router = config_load(file, NULL, 0, &rerrs);
        for (size_t i = 0; i < rerrs.n; i++) /* the router's own errors, FILE:LINE:COLUMN in its file */
            cfg_error_at(errs, w, "overview.router_config", "%s", rerrs.lines[i]);
        config_errors_free(&rerrs);
        free(file);
    }
}

/* Resolving and reading the password only make sense for values that are valid. */
static void finalize_valid(void *obj, const char *path, const cfg_where_t *where, config_errors_t *errs)
{
    if (errs->n == 0)
        finalize(obj, path, where, errs);
}

api_config_t *api_config_load(const char *path, const char *const *overrides, size_t n_overrides,
                              config_errors_t *errs)
{
    api_config_t *cfg = omni_calloc(1, sizeof *cfg);
    if (cfg_load_file(&api_table, cfg, path, CONFIG_FILE_MAX, overrides, n_overrides, finalize_valid, &cfg->source,
                      errs) > 0)
        api_config_destroy(&cfg);
    return cfg;
}

void api_config_destroy(api_config_t **cfg)
{
    if (!cfg || !*cfg)
        return;
    explicit_bzero((*cfg)->redis.password_value, sizeof (*cfg)->redis.password_value);
    free((*cfg)->redis.sentinel_addrs);
    config_destroy(&(*cfg)->overview.router);
    cfg_free(&api_table, *cfg);
    free((*cfg)->source);
    free(*cfg);
    *cfg = NULL;
}

void api_config_print_reference(FILE *out)
{
    cfg_print_table(&api_table, out);
}
