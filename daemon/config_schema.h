/* Internal to the config loader: the declarative key tables and the walker that fills a struct from YAML.
 *
 * A table describes one C struct. Each key names a dotted path relative to the table ("router.tick_ms";
 * "name" inside a list element), a type, bounds, a default and an optional check, plus offsetof() the
 * field. The path's leading segments are sections: "router.tick_ms" is read from `router: {tick_ms: 5}`.
 * A key may itself be an embedded struct (CFG_OBJECT) or an array of structs (CFG_OBJLIST), each described
 * by its own table, so sections such as `teams: [{name: support, members: [...]}]` need no new code.
 *
 * Adding a section of objects (e.g. `teams:`): write the element struct (team_t) and a cfg_table_t for it
 * (keys relative to the element: "name", "members", "hours.start"; CFG_REQUIRED for keys without a
 * sensible default; .check for rules across its keys; has_where to locate later errors); add `team_t *teams; size_t n_teams;` to the
 * config struct and one CFG_OBJLIST key { .path = "teams", .offset, .count_offset, .sub = &team_table }.
 * The walker allocates the array, starts each element from the table's defaults, names errors
 * "teams[2].members[0]", frees it all in cfg_free, and prints it in the reference. Rules across sections
 * (a rule naming an unknown team) belong after the walk, like config.c's finalize().
 *
 * Errors never stop the walk: each becomes one line "FILE:LINE:COL: KEY: MESSAGE" in a config_errors_t,
 * so an operator sees every mistake at once. Split across config_schema.c (walking), config_value.c
 * (scalars, did-you-mean), config_yaml.c (libyaml, error lines) and config_ref.c (the reference). */
#ifndef OMNI_DAEMON_CONFIG_SCHEMA_H
#define OMNI_DAEMON_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <yaml.h>
#include "config.h"
#include "config_where.h"

typedef enum {
    CFG_STRING,   /* char *: owned copy; "" and null are NULL with CFG_NULLABLE, refused otherwise */
    CFG_INT,      /* int, min..max, a plain decimal integer */
    CFG_COUNT,    /* size_t, min..max, a plain decimal integer */
    CFG_SIZE,     /* size_t bytes, min..max; also "256k", "1m", "1g" (powers of 1024) */
    CFG_DURATION, /* int counted in units of unit_ms (1 for *_ms keys, 1000 for *_s); also "500ms", "5s", "2m", "1h" */
    CFG_BOOL,     /* bool: true/false, yes/no, on/off */
    CFG_ENUM,     /* int: one of names; the value is parse(name), or the index in names when parse is NULL */
    CFG_STRLIST,  /* char ** at offset, size_t at count_offset; min..max entries; a lone string is a list of one.
                     After errors, a refused entry is "" in its place (checks after the walk skip it) */
    CFG_OBJECT,   /* a struct embedded at offset, described by sub */
    CFG_OBJLIST,  /* sub->size-byte structs: array pointer at offset, size_t count at count_offset; min..max */
} cfg_type_t;

enum {
    CFG_NULLABLE = 1, /* CFG_STRING: may be absent (NULL); "" and null mean absent */
    CFG_REQUIRED = 2, /* inside an object: the key must be written (list elements have no useful defaults) */
    CFG_UNIQUE = 4,   /* CFG_STRLIST: an entry may not appear twice */
    CFG_RESTART = 8,  /* a reload does not change it (sockets, Redis): the running value stays until a restart */
};

typedef struct cfg_table cfg_table_t;


/* Checks one string (a CFG_STRING value or each CFG_STRLIST entry). Returns NULL when it is fine, else the
 * reason, usually formatted into buf (bufsz bytes). value is borrowed for the call. */
typedef const char *(*cfg_check_fn)(const char *value, char *buf, size_t bufsz);

typedef struct cfg_key {
    const char *path;               /* dotted, relative to the table */
    cfg_type_t type;
    size_t offset;                  /* offsetof the field in the table's struct */
    size_t count_offset;            /* CFG_STRLIST, CFG_OBJLIST: offsetof the size_t count */
    long long min, max;             /* numbers: bounds in the field's unit; lists: entries (max 0: no limit) */
    const char *def;                /* default, written as on the command line; NULL: zero, NULL or table init */
    const char *const *names;       /* CFG_ENUM: the accepted names, NULL-terminated */
    int (*parse)(const char *name); /* CFG_ENUM: name -> value (-1: unknown); NULL: the index in names */
    int unit_ms;                    /* CFG_DURATION: milliseconds per unit of the field */
    cfg_check_fn check;             /* optional */
    const cfg_table_t *sub;         /* CFG_OBJECT, CFG_OBJLIST */
    unsigned flags;                 /* CFG_NULLABLE, CFG_REQUIRED, CFG_UNIQUE */
    const char *doc;                /* one or two sentences for the reference */
} cfg_key_t;

struct cfg_table {
    const cfg_key_t *keys;   /* ends with an entry whose path is NULL */
    size_t size;             /* sizeof the struct: CFG_OBJLIST elements are allocated this big, zeroed */
    void (*init)(void *obj); /* optional: fills fields whose default comes from code, before the defs */
    /* optional: checks an object once all its keys are read (keys that depend on each other). Returns NULL
     * or the reason (see cfg_check_fn); the error is located at the object. */
    const char *(*check)(const void *obj, char *buf, size_t bufsz);
    /* optional: has_where stores where each object was written in the cfg_where_t at where_offset, so
     * checks after the walk (a rule naming an unknown team) can point at the element. Its file is
     * borrowed from the load: valid until config_load returns. */
    bool has_where;
    size_t where_offset;
};

typedef struct cfg_ctx {
    config_errors_t *errs;   /* borrowed; errors are appended */
    const char *file;        /* borrowed; names errors: the config path or "command line" */
    long fixed_line;         /* > 0: every error is located at file:fixed_line:1 (the override's index) */
    yaml_document_t *doc;    /* borrowed; the document being walked */
    const cfg_table_t *root; /* optional: keys of this table record where they were set ... */
    cfg_where_t *where;      /* ... in where[index of the key] */
} cfg_ctx_t;

#define CFG_COMMAND_LINE "command line"

/* Lists and mappings inside each other, the document's top level counting as one: the deepest key of any
 * table (routing.rules[].when.any[].not[].channel) is 10; deeper text is refused while it is parsed. */
#define CFG_MAX_DEPTH 64

/* A file as parsed, kept until the checks after the walk are done (config_errors_t.source). */
typedef struct cfg_source {
    const char *file;     /* borrowed: the name errors of this file carry (cfg_where_t.file, compared as a pointer) */
    yaml_document_t doc;  /* owned: yaml_document_delete */
} cfg_source_t;

/* config_schema.c */

/* Sets every field of obj (zeroed by the caller) to its default. A default that fails its own key's rules
 * is a bug in the table: panics. */
void cfg_defaults(const cfg_table_t *t, void *obj);
/* Reads YAML text (len bytes, borrowed) into obj: its top level must be a mapping of t's paths; an empty
 * document leaves obj alone. Errors go to ctx; returns how many this call added. */
size_t cfg_load_text(cfg_ctx_t *ctx, const cfg_table_t *t, void *obj, const char *text, size_t len);
/* The same, keeping the parsed document in *keep (caller deletes keep->doc) when it returns true; false:
 * nothing to keep (an empty or unparsable text). */
bool cfg_load_source(cfg_ctx_t *ctx, const cfg_table_t *t, void *obj, const char *text, size_t len,
                     cfg_source_t *keep);
/* Applies one "path=value" (borrowed). Scalars take the value literally ("" for nothing); lists and
 * objects read it as YAML ("[a, b]", "{name: x}"). ctx->fixed_line should be the override's index. */
void cfg_apply_override(cfg_ctx_t *ctx, const cfg_table_t *t, void *obj, const char *arg);
/* Frees everything obj's fields own (strings, lists, elements), not obj itself, and zeroes them. */
void cfg_free(const cfg_table_t *t, void *obj);
/* For a reload: every CFG_RESTART key of t whose value in fresh differs from running gets running's value
 * back in fresh (copied), and its path appended to changed (", "-separated, truncated to changedsz).
 * Returns how many differed. running is borrowed; fresh keeps owning its fields. */
size_t cfg_keep_restart(const cfg_table_t *t, void *fresh, const void *running, char *changed, size_t changedsz);
/* Where overrides are located in errors ("command line:N:1"); cfg_where_t.file is this pointer for them. */
extern const char cfg_command_line[];
/* Checks across keys after the walk, with the parsed file still in errs->source so errors point at entries;
 * where: one place per key of the root table. obj and path (NULL: none) borrowed. */
typedef void cfg_finalize_fn(void *obj, const char *path, const cfg_where_t *where, config_errors_t *errs);
/* A whole load, for programs whose config is one table (omni-api, omni-webhooks): obj (zeroed) gets t's
 * defaults, then the file at path (NULL: none; at most max bytes; unreadable: one "FILE: cannot read: WHY"
 * line), then the overrides (located as "command line:N"), then finalize unless the file could not be read;
 * errors sorted. *source gets a copy of path (NULL without one), which the caller frees with obj. Returns the
 * number of errors; *errs is overwritten. */
size_t cfg_load_file(const cfg_table_t *t, void *obj, const char *path, size_t max, const char *const *overrides,
                     size_t n_overrides, cfg_finalize_fn *finalize, char **source, config_errors_t *errs);
/* The index of the key with this path in t, or -1. */
int cfg_key_index(const cfg_table_t *t, const char *path);

/* config_value.c */

/* Reads a scalar node into the field of k in obj; false after reporting the error (the field is untouched). */
bool cfg_set_scalar(cfg_ctx_t *ctx, const cfg_key_t *k, void *obj, const char *disp, const yaml_node_t *node);
/* True for a plain "", "~", "null", "Null", "NULL". */
bool cfg_is_null(const yaml_node_t *node);
/* "a mapping", "a list", "null", or the scalar quoted: for "expected X, got Y". Returns buf. */
const char *cfg_describe(const yaml_node_t *node, char *buf, size_t bufsz);
/* The candidate closest to word by edit distance when it is close enough to be a typo, else NULL.
 * Borrowed from cands (n entries). */
const char *cfg_suggest(const char *word, const char *const *cands, size_t n);
/* Reports path (relative to t; displayed after disp_prefix, "" at the top) as an unknown key, suggesting
 * the key or section it most likely misspells. */
void cfg_unknown(cfg_ctx_t *ctx, const cfg_table_t *t, const char *disp_prefix, const char *path,
                 const yaml_mark_t *mark);

/* config_ref.c */

/* Prints t's keys as the reference (markdown), each with its type, bounds, default (read from an object
 * cfg_defaults filled) and description; CFG_OBJECT and CFG_OBJLIST keys list their table's keys nested. */
void cfg_print_table(const cfg_table_t *t, FILE *out);

/* config_yaml.c */

/* Appends "FILE:LINE:COL: KEY: MESSAGE" at mark (1-based); with ctx->fixed_line > 0 (an override) at
 * FILE:fixed_line:1 instead, and mark NULL means 1:1. key NULL leaves out "KEY: ". Arguments borrowed. */
void cfg_error(cfg_ctx_t *ctx, const yaml_mark_t *mark, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same at a recorded place; a default (line 0) is reported as "FILE: KEY: MESSAGE". */
void cfg_error_at(config_errors_t *errs, const cfg_where_t *w, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same at the entry key names ("routing.rules[0].targets[2].team": that value, "agents[1].teams[0]":
 * that list entry) when w comes from the file errs->source holds and the key is written there; else at
 * w. For errors found after the walk, whose item's where is only the mapping holding the entry. */
void cfg_error_key(config_errors_t *errs, const cfg_where_t *w, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The place cfg_error_key would report: the entry key names, or w. */
cfg_where_t cfg_where_key(const config_errors_t *errs, const cfg_where_t *w, const char *key);
/* Puts the lines in the order of the places they name: file (the name errors of the file carry; NULL:
 * none) by line and column, then the command line, then lines naming no place, each group keeping the
 * order found. The walk and the checks after it find errors in different orders; a reader wants one. */
void cfg_errors_sort(config_errors_t *errs, const char *file);
/* Parses text into *doc after refusing anchors, aliases and a second document. Returns 1 with a document
 * (caller owns; yaml_document_delete), 0 for an empty text (nothing to delete), -1 after reporting. key
 * names the errors (NULL for a whole file). */
int cfg_yaml_parse(cfg_ctx_t *ctx, const char *key, const char *text, size_t len, yaml_document_t *doc);

#endif
