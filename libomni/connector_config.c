/* A connector's config: YAML (libyaml's document API, whose nodes keep their line and column) and -D
 * overrides, checked against one table of typed keys. Every value, whatever its source (a YAML scalar, a
 * -D value, a default), goes through the same parser, so a default and a config value can never be read
 * differently. All errors are collected, not only the first, so one run shows everything to fix. */
#include "connector_config.h"
#include "omni/curve.h"
#include "omni/log.h"
#include "omni/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#define CONN_COMMON_KEYS 13
static const omni_connector_key_t common_keys[CONN_COMMON_KEYS] = {
    { "router.endpoint", OMNI_KEY_STRING, "ipc:///var/lib/omnirouter/omnirouter-ingest.sock", false, 1, 1024, NULL,
      "OMNI/1 endpoint of omnirouted (ipc://PATH or tcp://HOST:PORT)" },
    { "router.resend_ms", OMNI_KEY_INT, "5000", false, 100, 3600000, NULL,
      "resend a message the router has not answered after this long" },
    { "router.ping_ms", OMNI_KEY_INT, "10000", false, 100, 3600000, NULL,
      "PING the router when it has been silent this long" },
    { "spool_dir", OMNI_KEY_PATH, NULL, false, 0, 4096, NULL,
      "the spool of unanswered messages; default /var/spool/omnirouter/<name>" },
    { "state_dir", OMNI_KEY_PATH, NULL, false, 0, 4096, NULL, "connector state files; default spool_dir" },
    { "max_spooled", OMNI_KEY_INT, "100000", false, 1, 10000000, NULL,
      "stop reading the source while this many messages wait for the router" },
    { "poll_ms", OMNI_KEY_INT, "1000", false, 10, 3600000, NULL, "how often the source is read" },
    { "retry_max_ms", OMNI_KEY_INT, "60000", false, 10, 3600000, NULL,
      "longest pause between tries while the source fails" },
    { "log_level", OMNI_KEY_ENUM, "info", false, 0, 0, "debug|info|warn|error", "least severe level logged" },
    { "default_country", OMNI_KEY_STRING, NULL, false, 2, 2, NULL,
      "ISO 3166 alpha-2 country for national phone numbers (e.g. US); default none" },
    { "router.server_public_key", OMNI_KEY_STRING, NULL, false, 1, 4096, NULL,
      "CURVE over tcp: the router's public key, 40 Z85 characters or a file holding them (its .pub)" },
    { "router.curve_secret_key_file", OMNI_KEY_PATH, NULL, false, 0, 4096, NULL,
      "CURVE: this connector's secret key, a file of mode 0600 (omnictl keygen NAME writes NAME.key)" },
    { "router.curve_public_key_file", OMNI_KEY_PATH, NULL, false, 0, 4096, NULL,
      "CURVE: this connector's public key file (NAME.pub), checked against the secret key; optional" },
};

static const char *const type_names[] = { "string", "path", "integer", "boolean", "choice", "list", "secret" };

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

/* Parses text as the slot's type. base: directory for relative paths (NULL or ".": keep them relative).
 * Returns 0, or -1 with a reason in why. */
static int slot_parse(conn_slot_t *s, const char *text, const char *base, char *why, size_t whysz)
{
    const omni_connector_key_t *k = s->key;
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
        slot_clear(s);
        /* A secret's file resolves like a path; credential:NAME and env:NAME are names, not files. */
        if (k->type == OMNI_KEY_PATH || (k->type == OMNI_KEY_SECRET && strncmp(text, "env:", 4) != 0 &&
                                         strncmp(text, "credential:", 11) != 0))
            s->str = resolve_path(base, text);
        else
            s->str = omni_strdup(text);
        return 0;
    case OMNI_KEY_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (len == 0 || *end != '\0' || errno != 0) {
            snprintf(why, whysz, "\"%.64s\" is not an integer", text);
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
    /* A list in text form: comma-separated (the -D form and defaults). */
    slot_clear(s);
    for (const char *p = text; len > 0;) {
        size_t n = strcspn(p, ",");
        s->list = omni_realloc(s->list, (s->n_list + 2) * sizeof *s->list);
        s->list[s->n_list++] = omni_strndup(p, n);
        s->list[s->n_list] = NULL;
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    if (k->max > 0 && (long long)s->n_list > k->max) {
        snprintf(why, whysz, "more than %lld entries", k->max);
        return -1;
    }
    return 0;
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
    if (val->type == YAML_SCALAR_NODE) {
        if (scalar_is_null(val))
            return; /* "key:" with nothing: the default stays */
        if (s->key->type == OMNI_KEY_LIST) {
            add_error(w->errs, "%s:%zu:%zu: %s: expected a list", w->file, line, col, path);
            return;
        }
        if (slot_parse(s, (const char *)val->data.scalar.value, w->cfg->base_dir, why, sizeof why) != 0) {
            add_error(w->errs, "%s:%zu:%zu: %s: %s", w->file, line, col, path, why);
            return;
        }
    } else if (val->type == YAML_SEQUENCE_NODE && s->key->type == OMNI_KEY_LIST) {
        slot_clear(s);
        for (yaml_node_item_t *it = val->data.sequence.items.start; it < val->data.sequence.items.top; it++) {
            yaml_node_t *item = yaml_document_get_node(w->doc, *it);
            if (item == NULL || item->type != YAML_SCALAR_NODE) {
                add_error(w->errs, "%s:%zu:%zu: %s: list entries must be strings", w->file,
                          item ? item->start_mark.line + 1 : line, item ? item->start_mark.column + 1 : col, path);
                return;
            }
            s->list = omni_realloc(s->list, (s->n_list + 2) * sizeof *s->list);
            s->list[s->n_list++] = omni_strdup((const char *)item->data.scalar.value);
            s->list[s->n_list] = NULL;
        }
        if (s->key->max > 0 && (long long)s->n_list > s->key->max) {
            add_error(w->errs, "%s:%zu:%zu: %s: more than %lld entries", w->file, line, col, path, s->key->max);
            return;
        }
    } else {
        add_error(w->errs, "%s:%zu:%zu: %s: expected a %s, got a %s", w->file, line, col, path,
                  type_names[s->key->type], val->type == YAML_MAPPING_NODE ? "mapping" : "list");
        return;
    }
    s->set = s->from_file = true;
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
        if (v->type == YAML_MAPPING_NODE && is_section(w->cfg, path) && find_slot(w->cfg, path) == NULL)
            walk_mapping(w, v, path);
        else
            walk_value(w, path, k, v);
        free(path);
    }
}

static void load_file(conn_config_t *cfg, const char *path, conn_errors_t *errs)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        add_error(errs, "%s: cannot open: %s", path, strerror(errno));
        return;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        add_error(errs, "%s:%zu:%zu: %s%s%s", path, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                  parser.problem ? parser.problem : "invalid YAML", parser.context ? " " : "",
                  parser.context ? parser.context : "");
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        walk_t w = { cfg, &doc, errs, path };
        if (root != NULL && !(root->type == YAML_SCALAR_NODE && scalar_is_null(root)))
            walk_mapping(&w, root, "");
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
}

/* base: the directory relative paths on the command line are relative to (the cwd). */
static void apply_override(conn_config_t *cfg, const char *ov, size_t idx, const char *base, conn_errors_t *errs)
{
    const char *eq = strchr(ov, '=');
    if (eq == NULL || eq == ov) {
        add_error(errs, "command line:%zu: expected -D key=value, got \"%s\"", idx, ov);
        return;
    }
    char *path = omni_strndup(ov, (size_t)(eq - ov));
    conn_slot_t *s = find_slot(cfg, path);
    char why[256];
    if (s == NULL)
        add_error(errs, "command line:%zu: %s: unknown key", idx, path);
    else if (slot_parse(s, eq + 1, base, why, sizeof why) != 0)
        add_error(errs, "command line:%zu: %s: %s", idx, path, why);
    else
        s->set = true;
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
    /* A Z85 key may hold '/', so it was joined to the config's directory like a path: look at the tail. */
    size_t n = s[11].str != NULL ? strlen(s[11].str) : 0;
    if (n >= OMNI_CURVE_Z85_LEN && access(s[11].str, F_OK) != 0 && omni_curve_is_key(s[11].str + n - OMNI_CURVE_Z85_LEN))
        add_error(errs, "%s: router.curve_secret_key_file: this is a key, not a file: a secret key is never written "
                  "in the config; put it in a file of mode 0600 and name that file", src);
    if (s[10].str != NULL && s[11].str == NULL)
        add_error(errs, "%s: router.server_public_key is set but router.curve_secret_key_file is not (omnictl keygen "
                  "NAME writes a key pair)", src);
    if (s[10].str == NULL && (s[11].str != NULL || s[12].str != NULL))
        add_error(errs, "%s: a CURVE key file is set but router.server_public_key (the router's public key) is not",
                  src);
    cfg->server_public_key = s[10].str;
    cfg->curve_secret_key_file = s[11].str;
    cfg->curve_public_key_file = s[12].str;
}

static void fill_common(conn_config_t *cfg, const omni_connector_def_t *def, conn_errors_t *errs)
{
    conn_slot_t *s = cfg->slots;
    cfg->endpoint = s[0].str;
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
    if (s[9].str != NULL) {
        char *c = s[9].str;
        if (!isalpha((unsigned char)c[0]) || !isalpha((unsigned char)c[1]))
            add_error(errs, "%s: default_country: \"%s\" is not an ISO 3166 alpha-2 code",
                      cfg->source ? cfg->source : "config", c);
        c[0] = (char)toupper((unsigned char)c[0]);
        c[1] = (char)toupper((unsigned char)c[1]);
    }
    cfg->default_country = s[9].str;
    fill_curve(cfg, s, errs);
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
    if (path != NULL) {
        cfg->source = omni_strdup(path);
        const char *slash = strrchr(path, '/');
        char *dir = slash == NULL ? omni_strdup(".") : slash == path ? omni_strdup("/")
                                                                     : omni_strndup(path, (size_t)(slash - path));
        char *abs = realpath(dir, NULL);
        cfg->base_dir = abs != NULL ? omni_strdup(abs) : omni_strdup(dir);
        free(abs);
        free(dir);
        load_file(cfg, path, errs);
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
        if (s->key->required)
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
    }
    free(cfg->slots);
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

static void print_key(FILE *out, const char *path, const omni_connector_key_t *k)
{
    fprintf(out, "  %-24s %-8s", path, type_names[k->type]);
    if (k->required)
        fprintf(out, " required");
    else if (k->def != NULL)
        fprintf(out, " default %s", k->def[0] ? k->def : "\"\"");
    if (k->type == OMNI_KEY_INT)
        fprintf(out, " (%lld..%lld)", k->min, k->max);
    else if (k->type == OMNI_KEY_ENUM)
        fprintf(out, " (%s)", k->choices);
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
