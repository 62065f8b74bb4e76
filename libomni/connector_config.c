/* A connector's config: YAML (libyaml's document API, whose nodes keep their line and column) and -D
 * overrides, checked against one table of typed keys. Every value, whatever its source (a YAML scalar, a
 * -D value, a default), goes through the same parser, so a default and a config value can never be read
 * differently; numbers with units are read by omni/units.h and country codes by omni_country_check, as
 * the router reads its own, and -D lists are YAML as in the router. All errors are collected, not only the
 * first, so one run shows everything to fix. */
#include "connector_config.h"
#include "omni/curve.h"
#include "omni/identity.h"
#include "omni/log.h"
#include "omni/units.h"
#include "omni/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "omni/metrics.h"

#define CONN_COMMON_KEYS 14
static const omni_connector_key_t common_keys[CONN_COMMON_KEYS] = {
    { "router.endpoint", OMNI_KEY_LIST, "ipc:///var/lib/omnirouter/omnirouter-ingest.sock", false, 0, 16, NULL,
      "OMNI/1 endpoint of omnirouted (ipc://PATH or tcp://HOST:PORT), or a list of several routers' endpoints" },
    { "router.resend_ms", OMNI_KEY_DURATION, "5000", false, 100, 3600000, NULL,
      "resend a message the router has not answered after this long" },
    { "router.ping_ms", OMNI_KEY_DURATION, "10000", false, 100, 3600000, NULL,
      "PING the router when it has been silent this long" },
    { "spool_dir", OMNI_KEY_PATH, NULL, false, 0, 4096, NULL,
      "the spool of unanswered messages; default /var/spool/omnirouter/<name>" },
    { "state_dir", OMNI_KEY_PATH, NULL, false, 0, 4096, NULL, "connector state files; default spool_dir" },
    { "max_spooled", OMNI_KEY_INT, "100000", false, 1, 10000000, NULL,
      "stop reading the source while this many messages wait for the router" },
    { "poll_ms", OMNI_KEY_DURATION, "1000", false, 10, 3600000, NULL, "how often the source is read" },
    { "retry_max_ms", OMNI_KEY_DURATION, "60000", false, 10, 3600000, NULL,
      "longest pause between tries while the source fails" },
    { "log_level", OMNI_KEY_ENUM, "info", false, 0, 0, "debug|info|warn|error", "least severe level logged" },
    { "default_country", OMNI_KEY_STRING, NULL, false, 0, 0, NULL,
      "ISO 3166 alpha-2 country for national phone numbers (e.g. US); default none" },
    { "router.server_public_key", OMNI_KEY_STRING, NULL, false, 1, 4096, NULL,
      "CURVE over tcp: the router's public key, 40 Z85 characters or a file holding them (its .pub)" },
    { "router.curve_secret_key_file", OMNI_KEY_PATH, NULL, false, 0, 4096, NULL,
      "CURVE: this connector's secret key, a file of mode 0600 (omnictl keygen NAME writes NAME.key)" },
    { "router.curve_public_key_file", OMNI_KEY_PATH, NULL, false, 0, 4096, NULL,
      "CURVE: this connector's public key file (NAME.pub), checked against the secret key; optional" },
    { "metrics_listen", OMNI_KEY_STRING, NULL, false, 1, 256, NULL,
      "GET /metrics (Prometheus) on a numeric HOST:PORT, e.g. 127.0.0.1:9465; default none" },
};

/* Checks of common string keys beyond their type, the functions the router's table uses for its own keys
 * (NULL: none). Each returns NULL or the reason, usually written into its buffer. */
typedef const char *(*check_fn)(const char *value, char *buf, size_t bufsz);
/* An OMNI/1 endpoint a connector can connect to. */
static const char *check_endpoint(const char *value, char *buf, size_t bufsz)
{
    if ((strncmp(value, "ipc://", 6) != 0 || value[6] == '\0') && (strncmp(value, "tcp://", 6) != 0 ||
                                                                   strchr(value + 6, ':') == NULL)) {
        snprintf(buf, bufsz, "\"%.64s\" is not an endpoint: ipc://PATH or tcp://HOST:PORT", value);
        return buf;
    }
    if (strchr(value, ',') != NULL) {
        snprintf(buf, bufsz, "\"%.64s\": one endpoint per entry (a list names several)", value);
        return buf;
    }
    return NULL;
}

static const check_fn common_checks[CONN_COMMON_KEYS] = { [0] = check_endpoint, [9] = omni_country_check,
                                                          [13] = omni_metrics_listen_check };

static check_fn key_check(const omni_connector_key_t *k)
{
    return k >= common_keys && k < common_keys + CONN_COMMON_KEYS ? common_checks[k - common_keys] : NULL;
}

static const char *const type_names[] = { "string", "path", "integer", "boolean", "choice", "list", "duration",
                                          "size", "secret" };

static void add_error(conn_errors_t *errs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_error(conn_errors_t *errs, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    errs->lines = omni_realloc(errs->lines, (errs->n + 1) * sizeof *errs->lines);
    errs->lines[errs->n++] = omni_strdup(line);
}

void conn_errors_free(conn_errors_t *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        free(errs->lines[i]);
    free(errs->lines);
    errs->lines = NULL;
    errs->n = 0;
}

static void slot_clear(conn_slot_t *s)
{
    free(s->str);
    s->str = NULL;
    for (size_t i = 0; i < s->n_list; i++)
        free(s->list[i]);
    free(s->list);
    s->list = NULL;
    s->n_list = 0;
}

static char *resolve_path(const char *base, const char *path)
{
    if (path[0] == '/' || base == NULL || strcmp(base, ".") == 0)
        return omni_strdup(path);
    size_t n = strlen(base);
    return omni_asprintf("%s%s%s", base, n > 0 && base[n - 1] == '/' ? "" : "/", path);
}

/* Sets a LIST slot from a YAML node: a sequence of strings, or one string (a list of one, as in the
 * router). Returns 0, or -1 with why and, when at is not NULL, *at pointed at the node to blame. */
static int list_from_node(conn_slot_t *s, yaml_document_t *doc, const yaml_node_t *val, char *why, size_t whysz,
                          const yaml_node_t **at)
{
    check_fn check = key_check(s->key);
    const char *bad;
    if (val->type == YAML_SCALAR_NODE) {
        if (check && (bad = check((const char *)val->data.scalar.value, why, whysz)) != NULL) {
            if (bad != why)
                snprintf(why, whysz, "%s", bad);
            return -1;
        }
        slot_clear(s);
        s->list = omni_calloc(2, sizeof *s->list);
        s->list[s->n_list++] = omni_strdup((const char *)val->data.scalar.value);
        return 0;
    }
    if (val->type != YAML_SEQUENCE_NODE) {
        snprintf(why, whysz, "expected a list of strings, got a mapping");
        return -1;
    }
    slot_clear(s);
    for (yaml_node_item_t *it = val->data.sequence.items.start; it < val->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(doc, *it);
        if (item == NULL || item->type != YAML_SCALAR_NODE) {
            if (at != NULL && item != NULL)
                *at = item;
            snprintf(why, whysz, "list entries must be strings");
            return -1;
        }
        if (check && (bad = check((const char *)item->data.scalar.value, why, whysz)) != NULL) {
            if (bad != why)
                snprintf(why, whysz, "%s", bad);
            if (at != NULL)
                *at = item;
            return -1;
        }
        s->list = omni_realloc(s->list, (s->n_list + 2) * sizeof *s->list);
        s->list[s->n_list++] = omni_strdup((const char *)item->data.scalar.value);
        s->list[s->n_list] = NULL;
    }
    if (s->key->max > 0 && (long long)s->n_list > s->key->max) {
        snprintf(why, whysz, "more than %lld entries", s->key->max);
        return -1;
    }
    return 0;
}

#define CONN_YAML_DEPTH 64 /* lists and mappings inside each other: no key needs more (the router's limit) */

/* An event pass before loading, as the router makes over its own config: yaml_parser_load resolves aliases
 * into shared nodes and keeps no trace of them, so this is where they are refused (a walker following shared
 * nodes can be made to do exponential work), and where nesting past CONN_YAML_DEPTH stops while it is cheap
 * (libyaml's scanner works in proportion to the depth for every token). Returns 0, or -1 with why and the
 * place (1-based); a syntax error is left to the load, which says where. p: initialized, with its input set. */
static int prescan(yaml_parser_t *p, char *why, size_t whysz, size_t *line, size_t *col)
{
    int depth = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev))
            return 0;
        const yaml_char_t *anchor = NULL;
        int rc = 0;
        switch (ev.type) {
        case YAML_ALIAS_EVENT:
            snprintf(why, whysz, "aliases (*%s) are not supported; write the value out",
                     (const char *)ev.data.alias.anchor);
            rc = -1;
            break;
        case YAML_SCALAR_EVENT: anchor = ev.data.scalar.anchor; break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            anchor = ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.anchor : ev.data.mapping_start.anchor;
            if (++depth > CONN_YAML_DEPTH) {
                snprintf(why, whysz, "nesting deeper than %d levels (lists and mappings inside each other); no key "
                         "needs more", CONN_YAML_DEPTH);
                rc = -1;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: depth--; break;
        default: break;
        }
        if (rc == 0 && anchor != NULL) {
            snprintf(why, whysz, "anchors (&%s) are not supported", (const char *)anchor);
            rc = -1;
        }
        bool end = ev.type == YAML_STREAM_END_EVENT;
        if (rc != 0)
            *line = ev.start_mark.line + 1, *col = ev.start_mark.column + 1;
        yaml_event_delete(&ev);
        if (rc != 0 || end)
            return rc;
    }
}

/* prescan of a text (a -D value). */
static int prescan_text(const char *text, size_t len, char *why, size_t whysz)
{
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    size_t line, col;
    int rc = prescan(&p, why, whysz, &line, &col);
    yaml_parser_delete(&p);
    return rc;
}

/* Parses text as the slot's type. base: directory for relative paths (NULL or ".": keep them relative).
 * Returns 0, or -1 with a reason in why. */
static int slot_parse(conn_slot_t *s, const char *text, const char *base, char *why, size_t whysz)
{
    const omni_connector_key_t *k = s->key;
    const char *bad;
    size_t len = strlen(text);
    switch (k->type) {
    case OMNI_KEY_STRING:
    case OMNI_KEY_PATH:
    case OMNI_KEY_SECRET:
        if (k->max > 0 && (long long)len > k->max) {
            snprintf(why, whysz, "longer than %lld bytes", k->max);
            return -1;
        }
        if ((long long)len < k->min || (len == 0 && k->type == OMNI_KEY_PATH)) {
            snprintf(why, whysz, "shorter than %lld bytes", k->min > 0 ? k->min : 1);
            return -1;
        }
        if (key_check(k) != NULL && (bad = key_check(k)(text, why, whysz)) != NULL) {
            if (bad != why)
                snprintf(why, whysz, "%s", bad);
            return -1;
        }
        slot_clear(s);
        /* A secret's file resolves like a path; credential:NAME and env:NAME are names, not files. */
        if (k->type == OMNI_KEY_PATH || (k->type == OMNI_KEY_SECRET && strncmp(text, "env:", 4) != 0 &&
                                         strncmp(text, "credential:", 11) != 0))
            s->str = resolve_path(base, text);
        else
            s->str = omni_strdup(text);
        return 0;
    case OMNI_KEY_INT:
    case OMNI_KEY_DURATION:
    case OMNI_KEY_SIZE: {
        omni_num_kind_t kind = k->type == OMNI_KEY_DURATION ? OMNI_NUM_DURATION
                             : k->type == OMNI_KEY_SIZE     ? OMNI_NUM_SIZE : OMNI_NUM_PLAIN;
        long long v = 0;
        if (omni_number_parse(text, kind, 1, &v) != OMNI_NUM_OK) {
            if (kind == OMNI_NUM_PLAIN)
                snprintf(why, whysz, "\"%.64s\" is not an integer", text);
            else
                snprintf(why, whysz, "expected %s, got \"%.64s\"", omni_number_wanted(kind, 1), text);
            return -1;
        }
        if (v < k->min || v > k->max) {
            snprintf(why, whysz, "%lld is %s %lld", v, v < k->min ? "below the minimum" : "above the maximum",
                     v < k->min ? k->min : k->max);
            return -1;
        }
        s->num = v;
        return 0;
    }
    case OMNI_KEY_BOOL: {
        static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
        for (size_t i = 0; i < 3; i++) {
            if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
                s->flag = strcasecmp(text, yes[i]) == 0;
                return 0;
            }
        }
        snprintf(why, whysz, "\"%.64s\" is not a boolean (true or false)", text);
        return -1;
    }
    case OMNI_KEY_ENUM:
        for (const char *c = k->choices; *c != '\0';) {
            size_t n = strcspn(c, "|");
            if (n == len && strncmp(c, text, n) == 0) {
                slot_clear(s);
                s->str = omni_strdup(text);
                return 0;
            }
            c += n + (c[n] == '|');
        }
        snprintf(why, whysz, "\"%.64s\" is not one of %s", text, k->choices);
        return -1;
    case OMNI_KEY_LIST:
        break;
    }
    /* A list in text form (-D and defaults): YAML, as the router reads its -D lists: "[a, b]", or one value
     * for a list of one; nothing at all is an empty list. */
    yaml_parser_t parser;
    yaml_document_t doc;
    if (prescan_text(text, len, why, whysz) != 0)
        return -1;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = 0;
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(why, whysz, "not a list in YAML flow syntax ([a, b]): %s", parser.problem ? parser.problem : "invalid");
        rc = -1;
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root == NULL)
            slot_clear(s);
        else
            rc = list_from_node(s, &doc, root, why, whysz, NULL);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    return rc;
}

static conn_slot_t *find_slot(conn_config_t *cfg, const char *path)
{
    for (size_t i = 0; i < cfg->n_slots; i++)
        if (strcmp(cfg->slots[i].path, path) == 0)
            return &cfg->slots[i];
    return NULL;
}

/* True when some key lives under prefix ("router" for "router.endpoint"). */
static bool is_section(const conn_config_t *cfg, const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < cfg->n_slots; i++)
        if (strncmp(cfg->slots[i].path, prefix, n) == 0 && cfg->slots[i].path[n] == '.')
            return true;
    return false;
}

typedef struct walk {
    conn_config_t *cfg;
    yaml_document_t *doc;
    conn_errors_t *errs;
    const char *file;
} walk_t;

static bool scalar_is_null(const yaml_node_t *n)
{
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

static void walk_value(walk_t *w, const char *path, const yaml_node_t *key, const yaml_node_t *val)
{
    size_t line = key->start_mark.line + 1, col = key->start_mark.column + 1;
    conn_slot_t *s = find_slot(w->cfg, path);
    if (s == NULL) {
        add_error(w->errs, "%s:%zu:%zu: %s: unknown key", w->file, line, col, path);
        return;
    }
    if (s->from_file) {
        add_error(w->errs, "%s:%zu:%zu: %s: duplicate key", w->file, line, col, path);
        return;
    }
    line = val->start_mark.line + 1;
    col = val->start_mark.column + 1;
    char why[256];
    const yaml_node_t *at = val;
    if (val->type == YAML_SCALAR_NODE && scalar_is_null(val))
        return; /* "key:" with nothing: the default stays */
    s->refused = true; /* until the value is read */
    if (s->key->type == OMNI_KEY_LIST && val->type != YAML_MAPPING_NODE) {
        if (list_from_node(s, w->doc, val, why, sizeof why, &at) != 0) {
            add_error(w->errs, "%s:%zu:%zu: %s: %s", w->file, at->start_mark.line + 1, at->start_mark.column + 1,
                      path, why);
            return;
        }
    } else if (val->type == YAML_SCALAR_NODE) {
        if (slot_parse(s, (const char *)val->data.scalar.value, w->cfg->base_dir, why, sizeof why) != 0) {
            add_error(w->errs, "%s:%zu:%zu: %s: %s", w->file, line, col, path, why);
            return;
        }
    } else {
        add_error(w->errs, "%s:%zu:%zu: %s: expected a %s, got a %s", w->file, line, col, path,
                  type_names[s->key->type], val->type == YAML_MAPPING_NODE ? "mapping" : "list");
        return;
    }
    s->set = s->from_file = true;
    s->refused = false;
    free(s->where);
    s->where = omni_asprintf("%s:%zu:%zu", w->file, line, col);
}

static void walk_mapping(walk_t *w, const yaml_node_t *map, const char *prefix)
{
    if (map->type != YAML_MAPPING_NODE) {
        add_error(w->errs, "%s:%zu:%zu: %s: expected a mapping", w->file, map->start_mark.line + 1,
                  map->start_mark.column + 1, prefix[0] ? prefix : "(top level)");
        return;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key), *v = yaml_document_get_node(w->doc, p->value);
        if (k == NULL || v == NULL)
            continue;
        if (k->type != YAML_SCALAR_NODE) {
            add_error(w->errs, "%s:%zu:%zu: keys must be strings", w->file, k->start_mark.line + 1,
                      k->start_mark.column + 1);
            continue;
        }
        char *path = prefix[0] ? omni_asprintf("%s.%s", prefix, (const char *)k->data.scalar.value)
                               : omni_strdup((const char *)k->data.scalar.value);
        /* a section written twice: its keys would merge unsaid (a key written twice is found by its slot) */
        const yaml_node_t *twice = NULL;
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p && twice == NULL; q++) {
            yaml_node_t *qk = yaml_document_get_node(w->doc, q->key);
            if (qk != NULL && qk->type == YAML_SCALAR_NODE &&
                strcmp((const char *)qk->data.scalar.value, (const char *)k->data.scalar.value) == 0)
                twice = qk;
        }
        if (twice != NULL && v->type == YAML_MAPPING_NODE && is_section(w->cfg, path) && find_slot(w->cfg, path) == NULL) {
            add_error(w->errs, "%s:%zu:%zu: %s: duplicate key (first at line %zu column %zu)", w->file,
                      k->start_mark.line + 1, k->start_mark.column + 1, path, twice->start_mark.line + 1,
                      twice->start_mark.column + 1);
        } else if (is_section(w->cfg, path) && find_slot(w->cfg, path) == NULL) {
            /* a section with no value (its keys commented out) keeps their defaults, as "key:" does; any
             * other non-mapping is refused by walk_mapping as what it is, not as an unknown key */
            if (!(v->type == YAML_SCALAR_NODE && scalar_is_null(v)))
                walk_mapping(w, v, path);
        } else
            walk_value(w, path, k, v);
        free(path);
    }
}

/* line:column of byte offset in the file (libyaml locates a reader error, such as bad UTF-8, by offset only). */
static void offset_place(FILE *f, size_t offset, size_t *line, size_t *col)
{
    *line = *col = 1;
    rewind(f);
    for (size_t i = 0; i < offset; i++) {
        int c = getc(f);
        if (c == EOF)
            break;
        if (c == '\n')
            ++*line, *col = 1;
        else if ((c & 0xC0) != 0x80) /* a column is a character, not a byte */
            ++*col;
    }
}

/* Returns 0, or -1 when the file could not be read as YAML at all (its keys' absence then means nothing). */
static int load_file(conn_config_t *cfg, const char *path, conn_errors_t *errs)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (f == NULL || fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        add_error(errs, "%s: cannot read: %s", path, f == NULL ? strerror(errno) : strerror(EISDIR));
        if (f != NULL)
            fclose(f);
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = 0;
    char why[200];
    size_t pline, pcol;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (prescan(&parser, why, sizeof why, &pline, &pcol) != 0) {
        add_error(errs, "%s:%zu:%zu: %s", path, pline, pcol, why);
        yaml_parser_delete(&parser);
        fclose(f);
        return -1;
    }
    yaml_parser_delete(&parser);
    rewind(f);
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        size_t line = parser.problem_mark.line + 1, col = parser.problem_mark.column + 1;
        if (parser.error == YAML_READER_ERROR)
            offset_place(f, parser.problem_offset, &line, &col);
        add_error(errs, "%s:%zu:%zu: %s%s%s", path, line, col, parser.problem ? parser.problem : "invalid YAML",
                  parser.context ? " " : "", parser.context ? parser.context : "");
        rc = -1;
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        walk_t w = { cfg, &doc, errs, path };
        if (root != NULL && !(root->type == YAML_SCALAR_NODE && scalar_is_null(root)))
            walk_mapping(&w, root, "");
        yaml_document_delete(&doc);
        /* One document a file, as the router reads its own: what a second one says would be ignored, and
         * a broken one is still a broken file. */
        if (!yaml_parser_load(&parser, &doc)) {
            add_error(errs, "%s:%zu:%zu: %s%s%s", path, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                      parser.problem ? parser.problem : "invalid YAML", parser.context ? " " : "",
                      parser.context ? parser.context : "");
        } else {
            if (yaml_document_get_root_node(&doc) != NULL)
                add_error(errs, "%s:%zu:%zu: a second YAML document (---); a config file holds one", path,
                          doc.start_mark.line + 1, doc.start_mark.column + 1);
            yaml_document_delete(&doc);
        }
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

/* One key of a section given whole on the command line (-D 'email={host: a, port: 993}'), as the router takes
 * its own: each value set as its own -D would set it, errors at command line:IDX:1. */
static void override_node(conn_config_t *cfg, yaml_document_t *doc, const char *path, const yaml_node_t *val,
                          size_t idx, const char *base, conn_errors_t *errs)
{
    conn_slot_t *s = find_slot(cfg, path);
    if (s == NULL && val->type == YAML_MAPPING_NODE && is_section(cfg, path)) {
        for (yaml_node_pair_t *p = val->data.mapping.pairs.start; p < val->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
            if (k == NULL || v == NULL)
                continue;
            if (k->type != YAML_SCALAR_NODE) {
                add_error(errs, "command line:%zu:1: %s: keys must be strings", idx, path);
                continue;
            }
            char *sub = omni_asprintf("%s.%s", path, (const char *)k->data.scalar.value);
            override_node(cfg, doc, sub, v, idx, base, errs);
            free(sub);
        }
        return;
    }
    if (s == NULL) {
        add_error(errs, "command line:%zu:1: %s: unknown key", idx, path);
        return;
    }
    if (val->type == YAML_SCALAR_NODE && scalar_is_null(val))
        return; /* "key:" with nothing, as in a file: what was there stays */
    char why[256];
    int rc;
    if (s->key->type == OMNI_KEY_LIST && val->type != YAML_MAPPING_NODE) {
        rc = list_from_node(s, doc, val, why, sizeof why, NULL);
    } else if (val->type == YAML_SCALAR_NODE) {
        rc = slot_parse(s, (const char *)val->data.scalar.value, base, why, sizeof why);
    } else {
        snprintf(why, sizeof why, "expected a %s, got a %s",
                 s->key->type == OMNI_KEY_LIST ? "list of strings" : type_names[s->key->type],
                 val->type == YAML_MAPPING_NODE ? "mapping" : "list");
        rc = -1;
    }
    if (rc != 0) {
        add_error(errs, "command line:%zu:1: %s: %s", idx, path, why);
        s->refused = true;
        return;
    }
    s->set = true;
    s->refused = false;
    free(s->where);
    s->where = omni_asprintf("command line:%zu:1", idx);
}

/* A section given whole: VALUE must be a YAML mapping. */
static void override_section(conn_config_t *cfg, const char *path, const char *text, size_t idx, const char *base,
                             conn_errors_t *errs)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    char why[200];
    if (prescan_text(text, strlen(text), why, sizeof why) != 0) {
        add_error(errs, "command line:%zu:1: %s: %s", idx, path, why);
        return;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    if (!yaml_parser_load(&parser, &doc)) {
        add_error(errs, "command line:%zu:1: %s: not a mapping in YAML flow syntax ({key: value}): %s", idx, path,
                  parser.problem ? parser.problem : "invalid YAML");
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root == NULL || root->type != YAML_MAPPING_NODE)
            add_error(errs, "command line:%zu:1: %s: a section takes a mapping ({key: value, ...})", idx, path);
        else
            override_node(cfg, &doc, path, root, idx, base, errs);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
}

/* base: the directory relative paths on the command line are relative to (the cwd). */
static void apply_override(conn_config_t *cfg, const char *ov, size_t idx, const char *base, conn_errors_t *errs)
{
    const char *eq = strchr(ov, '=');
    if (eq == NULL || eq == ov) {
        add_error(errs, "command line:%zu:1: expected -D key=value, got \"%s\"", idx, ov);
        return;
    }
    char *path = omni_strndup(ov, (size_t)(eq - ov));
    conn_slot_t *s = find_slot(cfg, path);
    char why[256];
    if (s == NULL && is_section(cfg, path)) {
        override_section(cfg, path, eq + 1, idx, base, errs);
    } else if (s == NULL) {
        add_error(errs, "command line:%zu:1: %s: unknown key", idx, path);
    } else if (slot_parse(s, eq + 1, base, why, sizeof why) != 0) {
        add_error(errs, "command line:%zu:1: %s: %s", idx, path, why);
        s->refused = true;
    } else {
        s->set = true;
        free(s->where);
        s->where = omni_asprintf("command line:%zu:1", idx);
    }
    free(path);
}

/* CURVE keys: all or nothing, the router's public key inline or a file, secrets in files only. */
static void fill_curve(conn_config_t *cfg, conn_slot_t *s, conn_errors_t *errs)
{
    const char *src = cfg->source ? cfg->source : "config";
    if (s[10].str != NULL && !omni_curve_is_key(s[10].str)) {
        char *path = resolve_path(cfg->base_dir, s[10].str); /* a file, relative to the config's directory */
        free(s[10].str);
        s[10].str = path;
    }
    /* A Z85 key may hold '/', so it was joined to the config's directory like a path: it is a key when what
     * was written (the part after that directory) is one, not when a missing file's name merely ends in 40
     * characters that Z85 has ('/', '.', '-' and letters are). */
    size_t n = s[11].str != NULL ? strlen(s[11].str) : 0, bl = cfg->base_dir ? strlen(cfg->base_dir) : 0;
    bool written_key = n == OMNI_CURVE_Z85_LEN ||
                       (bl > 0 && n == bl + (cfg->base_dir[bl - 1] == '/' ? 0 : 1) + OMNI_CURVE_Z85_LEN &&
                        strncmp(s[11].str, cfg->base_dir, bl) == 0);
    bool pasted = written_key && access(s[11].str, F_OK) != 0 && omni_curve_is_key(s[11].str + n - OMNI_CURVE_Z85_LEN);
    if (pasted)
        add_error(errs, "%s: router.curve_secret_key_file: this is a key, not a file: a secret key is never written "
                  "in the config; put it in a file of mode 0600 and name that file", s[11].where ? s[11].where : src);
    if (s[10].str != NULL && s[11].str == NULL)
        add_error(errs, "%s: router.server_public_key is set but router.curve_secret_key_file is not (omnictl keygen "
                  "NAME writes a key pair)", src);
    if (s[10].str == NULL && (s[11].str != NULL || s[12].str != NULL))
        add_error(errs, "%s: a CURVE key file is set but router.server_public_key (the router's public key) is not",
                  src);
    /* What the client reads at start, read now too, so that --check-config finds what start-up would: a
     * file that cannot be read, a secret key others may read, a key file of another pair. */
    if (s[10].str != NULL && s[11].str != NULL && !pasted) {
        char server[OMNI_CURVE_Z85_LEN + 1], secret[OMNI_CURVE_Z85_LEN + 1], pub[OMNI_CURVE_Z85_LEN + 1];
        char given[OMNI_CURVE_Z85_LEN + 1], why[512];
        if (omni_curve_read_public(s[10].str, server, "router.server_public_key", why, sizeof why) != 0)
            add_error(errs, "%s: %s", s[10].where ? s[10].where : src, why);
        if (omni_curve_read_secret(s[11].str, secret, "router.curve_secret_key_file", why, sizeof why) != 0)
            add_error(errs, "%s: %s", s[11].where ? s[11].where : src, why);
        else if (omni_curve_public_of(secret, pub) != 0)
            add_error(errs, "%s: router.curve_secret_key_file: %s: not a usable key", s[11].where ? s[11].where : src,
                      s[11].str);
        else if (s[12].str != NULL) {
            if (omni_curve_read_public(s[12].str, given, "router.curve_public_key_file", why, sizeof why) != 0)
                add_error(errs, "%s: %s", s[12].where ? s[12].where : src, why);
            else if (strcmp(given, pub) != 0)
                add_error(errs, "%s: router.curve_public_key_file: %s is not the public key of %s",
                          s[12].where ? s[12].where : src, s[12].str, s[11].str);
        }
        explicit_bzero(secret, sizeof secret);
    }
    cfg->server_public_key = s[10].str;
    cfg->curve_secret_key_file = s[11].str;
    cfg->curve_public_key_file = s[12].str;
}

static void fill_common(conn_config_t *cfg, const omni_connector_def_t *def, conn_errors_t *errs)
{
    conn_slot_t *s = cfg->slots;
    /* the client takes several endpoints separated by commas (no endpoint holds one) */
    size_t len = 0;
    for (size_t i = 0; i < s[0].n_list; i++)
        len += strlen(s[0].list[i]) + 1;
    cfg->endpoint_list = omni_calloc(1, len + 1);
    for (size_t i = 0; i < s[0].n_list; i++) /* each checked where it was read (check_endpoint) */
        strcat(strcat(cfg->endpoint_list, i ? "," : ""), s[0].list[i]);
    if (s[0].n_list == 0)
        add_error(errs, "%s: router.endpoint: no endpoint", cfg->source ? cfg->source : "config");
    cfg->endpoint = cfg->endpoint_list;
    cfg->resend_ms = (int)s[1].num;
    cfg->ping_ms = (int)s[2].num;
    if (s[3].str == NULL)
        s[3].str = omni_asprintf("/var/spool/omnirouter/%s", def->name);
    cfg->spool_dir = s[3].str;
    if (s[4].str == NULL)
        s[4].str = omni_strdup(s[3].str);
    cfg->state_dir = s[4].str;
    cfg->max_spooled = (size_t)s[5].num;
    cfg->poll_ms = (int)s[6].num;
    cfg->retry_max_ms = (int)s[7].num;
    cfg->log_level = omni_log_level_parse(s[8].str);
    if (s[9].str != NULL) { /* checked by omni_country_check as it was read: "fr" is stored as FR */
        s[9].str[0] = (char)toupper((unsigned char)s[9].str[0]);
        s[9].str[1] = (char)toupper((unsigned char)s[9].str[1]);
    }
    cfg->default_country = s[9].str;
    fill_curve(cfg, s, errs);
    cfg->metrics_listen = s[13].str; /* checked where it was read (common_checks) */
}

conn_config_t *conn_config_load(const omni_connector_def_t *def, const char *path,
                                const char *const *overrides, size_t n_overrides, conn_errors_t *errs)
{
    size_t n_own = 0;
    while (def->keys != NULL && def->keys[n_own].name != NULL)
        n_own++;
    conn_config_t *cfg = omni_calloc(1, sizeof *cfg);
    cfg->n_slots = CONN_COMMON_KEYS + n_own;
    cfg->slots = omni_calloc(cfg->n_slots, sizeof *cfg->slots);
    for (size_t i = 0; i < cfg->n_slots; i++) {
        conn_slot_t *s = &cfg->slots[i];
        s->key = i < CONN_COMMON_KEYS ? &common_keys[i] : &def->keys[i - CONN_COMMON_KEYS];
        s->path = i < CONN_COMMON_KEYS ? omni_strdup(s->key->name) : omni_asprintf("%s.%s", def->name, s->key->name);
        if (s->key->type == OMNI_KEY_ENUM && s->key->choices == NULL)
            omni_panic("connector %s: enum key %s has no choices", def->name, s->path);
    }
    /* Paths are made absolute: they appear in logs and message meta, read without knowing the cwd. */
    char *cwd = getcwd(NULL, 0);
    bool unread = false; /* the file could not be read: no "missing" errors about what it may well hold */
    if (path != NULL) {
        cfg->source = omni_strdup(path);
        const char *slash = strrchr(path, '/');
        char *dir = slash == NULL ? omni_strdup(".") : slash == path ? omni_strdup("/")
                                                                     : omni_strndup(path, (size_t)(slash - path));
        char *abs = realpath(dir, NULL);
        cfg->base_dir = abs != NULL ? omni_strdup(abs) : omni_strdup(dir);
        free(abs);
        free(dir);
        unread = load_file(cfg, path, errs) != 0;
    } else {
        cfg->base_dir = omni_strdup(cwd != NULL ? cwd : ".");
    }
    for (size_t i = 0; i < n_overrides; i++)
        apply_override(cfg, overrides[i], i + 1, cwd, errs);
    free(cwd);
    for (size_t i = 0; i < cfg->n_slots; i++) {
        conn_slot_t *s = &cfg->slots[i];
        char why[256];
        if (s->set)
            continue;
        if (s->key->required && !unread && !s->refused)
            add_error(errs, "%s: %s: missing (required)", cfg->source ? cfg->source : "config", s->path);
        else if (s->key->def != NULL && slot_parse(s, s->key->def, cfg->base_dir, why, sizeof why) != 0)
            omni_panic("connector %s: default of %s: %s", def->name, s->path, why);
    }
    fill_common(cfg, def, errs);
    if (errs->n > 0)
        conn_config_destroy(&cfg);
    return cfg;
}

void conn_config_destroy(conn_config_t **cfgp)
{
    if (cfgp == NULL || *cfgp == NULL)
        return;
    conn_config_t *cfg = *cfgp;
    for (size_t i = 0; i < cfg->n_slots; i++) {
        slot_clear(&cfg->slots[i]);
        free(cfg->slots[i].path);
        free(cfg->slots[i].where);
    }
    free(cfg->slots);
    free(cfg->endpoint_list);
    free(cfg->source);
    free(cfg->base_dir);
    free(cfg);
    *cfgp = NULL;
}

const conn_slot_t *conn_config_own(const conn_config_t *cfg, const char *name)
{
    for (size_t i = CONN_COMMON_KEYS; i < cfg->n_slots; i++)
        if (strcmp(cfg->slots[i].key->name, name) == 0)
            return &cfg->slots[i];
    return NULL;
}

const conn_slot_t *conn_config_common(const conn_config_t *cfg, const char *path)
{
    for (size_t i = 0; i < CONN_COMMON_KEYS; i++)
        if (strcmp(cfg->slots[i].path, path) == 0)
            return &cfg->slots[i];
    return NULL;
}

const char *conn_config_where(const conn_config_t *cfg, const conn_slot_t *s)
{
    return s != NULL && s->where != NULL ? s->where : cfg->source != NULL ? cfg->source : "config";
}

static void print_key(FILE *out, const char *path, const omni_connector_key_t *k)
{
    fprintf(out, "  %-24s %-8s", path, type_names[k->type]);
    if (k->required)
        fprintf(out, " required");
    else if (k->def != NULL)
        fprintf(out, " default %s", k->def[0] ? k->def : "\"\"");
    if (k->type == OMNI_KEY_INT || k->type == OMNI_KEY_DURATION || k->type == OMNI_KEY_SIZE)
        fprintf(out, " (%lld..%lld%s)", k->min, k->max,
                k->type == OMNI_KEY_DURATION ? " ms" : k->type == OMNI_KEY_SIZE ? " bytes" : "");
    else if (k->type == OMNI_KEY_ENUM)
        fprintf(out, " (%s)", k->choices);
    else if ((k->type == OMNI_KEY_STRING || k->type == OMNI_KEY_PATH || k->type == OMNI_KEY_SECRET) && k->max > 0)
        fprintf(out, " (%lld..%lld bytes)", k->type == OMNI_KEY_PATH && k->min < 1 ? 1 : k->min,
                k->max); /* the bounds slot_parse holds a value to: an empty path is refused whatever min says */
    else if (k->type == OMNI_KEY_LIST && k->max > 0)
        fprintf(out, " (at most %lld)", k->max);
    fprintf(out, "\n      %s\n", k->help ? k->help : "");
}

void conn_config_print_reference(const omni_connector_def_t *def, FILE *out)
{
    for (size_t i = 0; i < CONN_COMMON_KEYS; i++)
        print_key(out, common_keys[i].name, &common_keys[i]);
    for (size_t i = 0; def->keys != NULL && def->keys[i].name != NULL; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s.%s", def->name, def->keys[i].name);
        print_key(out, path, &def->keys[i]);
    }
}
