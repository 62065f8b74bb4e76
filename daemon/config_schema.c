/* The walker: matches a YAML tree against a key table and fills the described struct (see config_schema.h).
 * Values are replaced only when they are wholly valid, so a struct is always consistent and freeable,
 * even half-way through a config full of errors. Lists are the exception: a list of objects is kept with
 * its faulty elements (each consistent on its own, marked where.bad), a list of strings with "" for each
 * refused entry, so the checks across sections still run on the rest, in the same pass. */
#include "config_schema.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "omni/log.h"
#include "omni/util.h"

#define FIELD(obj, off) ((void *)((char *)(obj) + (off)))

/* One object being read: its table, the struct, how its keys are displayed ("" at the top, "teams[0]"
 * in a list element), and which keys the object has written so far (for CFG_REQUIRED). */
typedef struct walk {
    const cfg_table_t *t;
    void *obj;
    const char *disp;
    bool *seen;
} walk_t;

static void apply_value(cfg_ctx_t *ctx, const cfg_key_t *k, void *obj, const char *disp, yaml_node_t *node);

static size_t n_keys(const cfg_table_t *t)
{
    size_t n = 0;
    while (t->keys[n].path)
        n++;
    return n;
}

int cfg_key_index(const cfg_table_t *t, const char *path)
{
    for (size_t i = 0; t->keys[i].path; i++)
        if (strcmp(t->keys[i].path, path) == 0)
            return (int)i;
    return -1;
}

/* True when some key of t lies under path, i.e. path is a section such as "router". */
static bool is_section(const cfg_table_t *t, const char *path)
{
    size_t len = strlen(path);
    for (const cfg_key_t *k = t->keys; k->path; k++)
        if (strncmp(k->path, path, len) == 0 && k->path[len] == '.')
            return true;
    return false;
}

/* "a.b" from a and b, or b alone when a is empty. Returns a new string the caller frees. */
static char *join(const char *a, const char *b)
{
    return *a ? omni_asprintf("%s.%s", a, b) : omni_strdup(b);
}

static yaml_node_t *node_at(cfg_ctx_t *ctx, int index) { return yaml_document_get_node(ctx->doc, index); }

/* Remembers where a key of the root table was set, for the checks config.c makes after the walk. */
static void record(cfg_ctx_t *ctx, const cfg_table_t *t, int index, const yaml_mark_t *mark)
{
    if (ctx->root != t || ctx->where == NULL)
        return;
    cfg_where_t *w = &ctx->where[index];
    w->file = ctx->file;
    bool fixed = ctx->fixed_line > 0 || mark == NULL;
    w->line = fixed ? (ctx->fixed_line > 0 ? ctx->fixed_line : 1) : (long)mark->line + 1;
    w->col = fixed ? 1 : (long)mark->column + 1;
}

static void walk_map(cfg_ctx_t *ctx, walk_t *w, const char *rel, yaml_node_t *map);

typedef struct key_at {
    const yaml_node_t *key;
    size_t i;
} key_at_t;

static int by_key(const void *a, const void *b)
{
    const key_at_t *x = a, *y = b;
    size_t lx = x->key->data.scalar.length, ly = y->key->data.scalar.length;
    int c = lx != ly ? (lx < ly ? -1 : 1) : memcmp(x->key->data.scalar.value, y->key->data.scalar.value, lx);
    return c ? c : x->i < y->i ? -1 : x->i > y->i;
}

/* For each pair of map, the index of the first pair with the same scalar key (its own when it is the first).
 * Sorted, so that a mapping of 100000 keys is not 5e9 comparisons (it was 36 s for -t). Caller frees. */
static size_t *first_keys(cfg_ctx_t *ctx, const yaml_node_t *map)
{
    size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start), m = 0;
    size_t *first = omni_calloc(n + 1, sizeof *first);
    key_at_t *v = omni_calloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *k = node_at(ctx, map->data.mapping.pairs.start[i].key);
        first[i] = i;
        if (k->type == YAML_SCALAR_NODE)
            v[m++] = (key_at_t){ k, i };
    }
    qsort(v, m, sizeof *v, by_key);
    for (size_t j = 1; j < m; j++) /* by key, then index: each run's first comes first */
        if (by_key(&(key_at_t){ v[j].key, 0 }, &(key_at_t){ v[j - 1].key, 0 }) == 0)
            first[v[j].i] = first[v[j - 1].i];
    free(v);
    return first;
}

/* The value of a key written twice (index: its key, or -1 for section path) is checked too, so that the errors
 * in it come in the same pass as the duplicate's; it is read into a scratch object, leaving w's object as the
 * first one set it and the checks after the walk as they were. */
static void check_duplicate(cfg_ctx_t *ctx, const walk_t *w, const char *path, const char *disp, int index,
                            yaml_node_t *vn)
{
    char buf[96];
    void *scratch = omni_calloc(1, w->t->size);
    cfg_defaults(w->t, scratch);
    cfg_where_t *where = ctx->where;
    ctx->where = NULL; /* nothing recorded: the first one is where the key was set */
    walk_t sw = { w->t, scratch, w->disp, omni_calloc(n_keys(w->t) + 1, sizeof(bool)) };
    if (index >= 0)
        apply_value(ctx, &w->t->keys[index], scratch, disp, vn);
    else if (vn->type == YAML_MAPPING_NODE)
        walk_map(ctx, &sw, path, vn);
    else if (!cfg_is_null(vn))
        cfg_error(ctx, &vn->start_mark, disp, "expected a mapping, got %s", cfg_describe(vn, buf, sizeof buf));
    ctx->where = where;
    free(sw.seen);
    cfg_free(w->t, scratch);
    free(scratch);
}

/* Reads the pairs of map, a mapping found at section rel ("" for the object itself) of w's object. */
static void walk_map(cfg_ctx_t *ctx, walk_t *w, const char *rel, yaml_node_t *map)
{
    size_t *firsts = first_keys(ctx, map);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node_at(ctx, p->key), *vn = node_at(ctx, p->value);
        char buf[96];
        if (kn->type != YAML_SCALAR_NODE) {
            char *here = join(w->disp, rel);
            cfg_error(ctx, &kn->start_mark, *here ? here : NULL, "a key must be a name, got %s",
                      cfg_describe(kn, buf, sizeof buf));
            free(here);
            continue;
        }
        const yaml_node_pair_t *first = map->data.mapping.pairs.start + firsts[p - map->data.mapping.pairs.start];
        const char *name = (const char *)kn->data.scalar.value;
        bool clean = strlen(name) == kn->data.scalar.length; /* a key with a NUL byte matches nothing */
        char *path = join(rel, name), *disp = join(w->disp, path);
        int index = clean ? cfg_key_index(w->t, path) : -1;
        if (first < p) {
            const yaml_mark_t *m = &node_at(ctx, first->key)->start_mark;
            cfg_error(ctx, &kn->start_mark, disp, "duplicate key (first at line %zu column %zu)", m->line + 1,
                      m->column + 1);
            if (!strchr(name, '.') && (index >= 0 || (clean && is_section(w->t, path))))
                check_duplicate(ctx, w, path, disp, index, vn);
        } else if (strchr(name, '.') && (index >= 0 || is_section(w->t, path))) {
            /* Dotted names are the command line's; in a file, one spelling per key keeps duplicates visible. */
            cfg_error(ctx, &kn->start_mark, disp, "write the key nested (\"%.*s:\" then the rest under it)",
                      (int)strcspn(name, "."), name);
        } else if (index >= 0) {
            w->seen[index] = true;
            record(ctx, w->t, index, &vn->start_mark);
            size_t before = ctx->errs->n;
            apply_value(ctx, &w->t->keys[index], w->obj, disp, vn);
            if (ctx->root == w->t && ctx->where) /* a key with a bad value: later checks do not echo it */
                ctx->where[index].bad = ctx->errs->n != before;
        } else if (clean && is_section(w->t, path)) {
            if (vn->type == YAML_MAPPING_NODE)
                walk_map(ctx, w, path, vn);
            else if (!cfg_is_null(vn)) /* a section with every key commented out is null: fine */
                cfg_error(ctx, &vn->start_mark, disp, "expected a mapping, got %s", cfg_describe(vn, buf, sizeof buf));
        } else {
            cfg_unknown(ctx, w->t, w->disp, path, &kn->start_mark);
        }
        free(path);
        free(disp);
    }
    free(firsts);
}

/* Reads map into obj (already defaulted), then checks required keys and the table's own check. */
static void walk_object(cfg_ctx_t *ctx, const cfg_table_t *t, void *obj, const char *disp, yaml_node_t *map)
{
    size_t before = ctx->errs->n;
    walk_t w = { t, obj, disp, omni_calloc(n_keys(t) + 1, sizeof(bool)) };
    if (t->has_where) {
        cfg_where_t *where = FIELD(obj, t->where_offset);
        where->file = ctx->file;
        where->line = ctx->fixed_line > 0 ? ctx->fixed_line : (long)map->start_mark.line + 1;
        where->col = ctx->fixed_line > 0 ? 1 : (long)map->start_mark.column + 1;
    }
    walk_map(ctx, &w, "", map);
    for (size_t i = 0; t->keys[i].path; i++) {
        if ((t->keys[i].flags & CFG_REQUIRED) && !w.seen[i]) {
            char *kdisp = join(disp, t->keys[i].path);
            cfg_error(ctx, &map->start_mark, kdisp, "required key missing");
            free(kdisp);
        }
    }
    free(w.seen);
    char buf[256];
    const char *why;
    if (ctx->errs->n == before && t->check && (why = t->check(obj, buf, sizeof buf)) != NULL)
        cfg_error(ctx, &map->start_mark, *disp ? disp : NULL, "%s", why);
    if (t->has_where)
        ((cfg_where_t *)FIELD(obj, t->where_offset))->bad = ctx->errs->n != before;
}

/* The items of a list node: a sequence's, a lone scalar as a list of one, nothing for null. Returns false
 * for anything else. */
static bool list_items(cfg_ctx_t *ctx, yaml_node_t *node, bool scalar_ok, yaml_node_t ***items, size_t *n)
{
    *items = NULL;
    *n = 0;
    if (cfg_is_null(node))
        return true;
    if (node->type == YAML_SCALAR_NODE && scalar_ok) {
        *items = omni_malloc(sizeof **items);
        (*items)[0] = node;
        *n = 1;
        return true;
    }
    if (node->type != YAML_SEQUENCE_NODE)
        return false;
    *n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    *items = omni_calloc(*n + 1, sizeof **items);
    for (size_t i = 0; i < *n; i++)
        (*items)[i] = node_at(ctx, node->data.sequence.items.start[i]);
    return true;
}

static void check_count(cfg_ctx_t *ctx, const cfg_key_t *k, const char *disp, yaml_node_t *node, size_t n)
{
    if ((long long)n < k->min)
        cfg_error(ctx, &node->start_mark, disp, "has %zu entries; at least %lld needed", n, k->min);
    else if (k->max > 0 && (long long)n > k->max)
        cfg_error(ctx, &node->start_mark, disp, "has %zu entries; at most %lld allowed", n, k->max);
}

static void free_strlist(char **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

static void free_objlist(const cfg_table_t *sub, char *arr, size_t n)
{
    for (size_t i = 0; arr && i < n; i++)
        cfg_free(sub, arr + i * sub->size);
    free(arr);
}

static void set_strlist(cfg_ctx_t *ctx, const cfg_key_t *k, void *obj, const char *disp, yaml_node_t *node)
{
    yaml_node_t **items;
    size_t n, before = ctx->errs->n;
    char buf[256];
    if (!list_items(ctx, node, true, &items, &n)) {
        cfg_error(ctx, &node->start_mark, disp, "expected a list of strings, got %s", cfg_describe(node, buf, sizeof buf));
        return;
    }
    char **list = omni_calloc(n + 1, sizeof *list);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *e = items[i];
        char *edisp = node->type == YAML_SEQUENCE_NODE ? omni_asprintf("%s[%zu]", disp, i) : omni_strdup(disp);
        const char *s = e->type == YAML_SCALAR_NODE ? (const char *)e->data.scalar.value : "", *why;
        if (e->type != YAML_SCALAR_NODE || cfg_is_null(e))
            cfg_error(ctx, &e->start_mark, edisp, "expected a string, got %s", cfg_describe(e, buf, sizeof buf));
        else if (strlen(s) != e->data.scalar.length)
            cfg_error(ctx, &e->start_mark, edisp, "contains a NUL byte");
        else if (*s == '\0')
            cfg_error(ctx, &e->start_mark, edisp, "must not be empty");
        else if (k->check && (why = k->check(s, buf, sizeof buf)) != NULL)
            cfg_error(ctx, &e->start_mark, edisp, "%s", why);
        else
            list[i] = omni_strdup(s);
        for (size_t j = 0; list[i] && (k->flags & CFG_UNIQUE) && j < i; j++) {
            if (list[j] && strcmp(list[j], list[i]) == 0) {
                cfg_error(ctx, &e->start_mark, edisp, "\"%s\" is listed twice (first as entry %zu)", list[i], j);
                free(list[i]);
                list[i] = NULL;
                break;
            }
        }
        free(edisp);
    }
    check_count(ctx, k, disp, node, n);
    char ***field = FIELD(obj, k->offset);
    size_t *count = FIELD(obj, k->count_offset);
    /* With errors, each refused entry becomes "" in its place: the checks after the walk still see the
     * others (an unknown team next to a misspelt one) and name them by their index; they skip "". */
    for (size_t i = 0; ctx->errs->n != before && i < n; i++)
        if (list[i] == NULL)
            list[i] = omni_strdup("");
    free_strlist(*field, *count);
    *field = list;
    *count = n;
    free(items);
}

static void set_objlist(cfg_ctx_t *ctx, const cfg_key_t *k, void *obj, const char *disp, yaml_node_t *node)
{
    yaml_node_t **items;
    size_t n, size = k->sub->size;
    char buf[96];
    if (!list_items(ctx, node, false, &items, &n)) {
        cfg_error(ctx, &node->start_mark, disp, "expected a list of mappings, got %s", cfg_describe(node, buf, sizeof buf));
        return;
    }
    char *arr = n ? omni_calloc(n, size) : NULL;
    for (size_t i = 0; i < n; i++) {
        char *edisp = omni_asprintf("%s[%zu]", disp, i);
        cfg_defaults(k->sub, arr + i * size);
        if (items[i]->type == YAML_MAPPING_NODE) {
            walk_object(ctx, k->sub, arr + i * size, edisp, items[i]);
        } else {
            cfg_error(ctx, &items[i]->start_mark, edisp, "expected a mapping, got %s",
                      cfg_describe(items[i], buf, sizeof buf));
            if (k->sub->has_where) /* an element with only defaults: no name, nothing to check it by */
                *(cfg_where_t *)FIELD(arr + i * size, k->sub->where_offset) =
                    (cfg_where_t){ ctx->file, ctx->fixed_line > 0 ? ctx->fixed_line : (long)items[i]->start_mark.line + 1,
                                   ctx->fixed_line > 0 ? 1 : (long)items[i]->start_mark.column + 1, true };
        }
        free(edisp);
    }
    check_count(ctx, k, disp, node, n);
    /* Kept even with errors: each element is consistent (a bad value left its default), so the checks
     * across sections still run on the rest and report their errors in the same pass. */
    char **field = FIELD(obj, k->offset);
    size_t *count = FIELD(obj, k->count_offset);
    free_objlist(k->sub, *field, *count);
    *field = arr;
    *count = n;
    free(items);
}

static void apply_value(cfg_ctx_t *ctx, const cfg_key_t *k, void *obj, const char *disp, yaml_node_t *node)
{
    char buf[96];
    switch (k->type) {
    case CFG_STRLIST:
        set_strlist(ctx, k, obj, disp, node);
        break;
    case CFG_OBJLIST:
        set_objlist(ctx, k, obj, disp, node);
        break;
    case CFG_OBJECT:
        if (node->type == YAML_MAPPING_NODE)
            walk_object(ctx, k->sub, FIELD(obj, k->offset), disp, node);
        else if (!cfg_is_null(node))
            cfg_error(ctx, &node->start_mark, disp, "expected a mapping, got %s", cfg_describe(node, buf, sizeof buf));
        break;
    default:
        cfg_set_scalar(ctx, k, obj, disp, node);
        break;
    }
}

/* Applies text to k the way the command line does. A scalar is taken literally (a double-quoted scalar
 * is never null, so "router.state_dir=null" means the directory "null"); lists and objects are YAML. */
static void apply_text(cfg_ctx_t *ctx, const cfg_key_t *k, void *obj, const char *disp, const char *text)
{
    yaml_node_t lit;
    memset(&lit, 0, sizeof lit);
    lit.type = YAML_SCALAR_NODE;
    lit.data.scalar.value = (yaml_char_t *)text; /* only read */
    lit.data.scalar.length = strlen(text);
    lit.data.scalar.style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    if (k->type != CFG_STRLIST && k->type != CFG_OBJECT && k->type != CFG_OBJLIST) {
        cfg_set_scalar(ctx, k, obj, disp, &lit);
        return;
    }
    yaml_document_t doc, *saved = ctx->doc;
    int r = cfg_yaml_parse(ctx, disp, text, strlen(text), &doc);
    if (r < 0)
        return;
    lit.data.scalar.style = YAML_PLAIN_SCALAR_STYLE; /* an empty value: null, an empty list */
    ctx->doc = r ? &doc : NULL;
    apply_value(ctx, k, obj, disp, r ? yaml_document_get_root_node(&doc) : &lit);
    ctx->doc = saved;
    if (r)
        yaml_document_delete(&doc);
}

void cfg_defaults(const cfg_table_t *t, void *obj)
{
    if (t->init)
        t->init(obj);
    config_errors_t errs = { 0 };
    cfg_ctx_t ctx = { .errs = &errs, .file = "default", .fixed_line = 1 };
    for (const cfg_key_t *k = t->keys; k->path; k++)
        if (k->def)
            apply_text(&ctx, k, obj, k->path, k->def);
    if (errs.n > 0)
        omni_panic("config table: bad default: %s", errs.lines[0]);
}

size_t cfg_load_text(cfg_ctx_t *ctx, const cfg_table_t *t, void *obj, const char *text, size_t len)
{
    size_t before = ctx->errs->n;
    cfg_load_source(ctx, t, obj, text, len, NULL);
    return ctx->errs->n - before;
}

bool cfg_load_source(cfg_ctx_t *ctx, const cfg_table_t *t, void *obj, const char *text, size_t len,
                     cfg_source_t *keep)
{
    yaml_document_t doc;
    if (cfg_yaml_parse(ctx, NULL, text, len, &doc) <= 0)
        return false;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    char buf[96];
    ctx->doc = &doc;
    if (root->type == YAML_MAPPING_NODE)
        walk_object(ctx, t, obj, "", root);
    else if (!cfg_is_null(root))
        cfg_error(ctx, &root->start_mark, NULL, "expected a mapping of keys at the top level, got %s",
                  cfg_describe(root, buf, sizeof buf));
    ctx->doc = NULL;
    if (keep == NULL) {
        yaml_document_delete(&doc);
        return false;
    }
    keep->file = ctx->file;
    keep->doc = doc;
    return true;
}

/* Whether path names inside an entry of one of t's lists ("teams[0].name", "router.ingest[1]"). */
static bool list_entry_key(const cfg_table_t *t, const char *path)
{
    size_t n = strcspn(path, "[");
    if (path[n] != '[')
        return false;
    char *list = omni_strndup(path, n);
    int i = cfg_key_index(t, list);
    free(list);
    return i >= 0 && (t->keys[i].type == CFG_STRLIST || t->keys[i].type == CFG_OBJLIST);
}

void cfg_apply_override(cfg_ctx_t *ctx, const cfg_table_t *t, void *obj, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg) {
        cfg_error(ctx, NULL, NULL, "expected KEY=VALUE, got \"%s\"", arg);
        return;
    }
    char *path = omni_strndup(arg, (size_t)(eq - arg));
    int index = cfg_key_index(t, path);
    if (index >= 0) {
        record(ctx, t, index, NULL);
        apply_text(ctx, &t->keys[index], obj, path, eq + 1);
    } else if (is_section(t, path)) {
        /* "router={tick_ms: 5, max_inflight: 10}": the section's keys as YAML. */
        yaml_document_t doc, *saved = ctx->doc;
        int r = cfg_yaml_parse(ctx, path, eq + 1, strlen(eq + 1), &doc);
        if (r > 0) {
            yaml_node_t *root = yaml_document_get_root_node(&doc);
            walk_t w = { t, obj, "", omni_calloc(n_keys(t) + 1, sizeof(bool)) };
            char buf[96];
            ctx->doc = &doc;
            if (root->type == YAML_MAPPING_NODE)
                walk_map(ctx, &w, path, root);
            else if (!cfg_is_null(root))
                cfg_error(ctx, NULL, path, "expected a mapping, got %s", cfg_describe(root, buf, sizeof buf));
            ctx->doc = saved;
            free(w.seen);
            yaml_document_delete(&doc);
        }
    } else if (list_entry_key(t, path)) {
        /* "teams[0].name=x", as the reference writes teams[].name: the entries have no keys of their own */
        cfg_error(ctx, NULL, path, "a list is given whole, not entry by entry: -D '%.*s=[...]' (YAML flow syntax)",
                  (int)strcspn(path, "["), path);
    } else {
        cfg_unknown(ctx, t, "", path, NULL);
    }
    free(path);
}

void cfg_free(const cfg_table_t *t, void *obj)
{
    for (const cfg_key_t *k = t->keys; k->path; k++) {
        void *f = FIELD(obj, k->offset);
        switch (k->type) {
        case CFG_STRING:
            free(*(char **)f);
            *(char **)f = NULL;
            break;
        case CFG_STRLIST:
            free_strlist(*(char ***)f, *(size_t *)FIELD(obj, k->count_offset));
            *(char ***)f = NULL;
            *(size_t *)FIELD(obj, k->count_offset) = 0;
            break;
        case CFG_OBJECT:
            cfg_free(k->sub, f);
            break;
        case CFG_OBJLIST:
            free_objlist(k->sub, *(char **)f, *(size_t *)FIELD(obj, k->count_offset));
            *(char **)f = NULL;
            *(size_t *)FIELD(obj, k->count_offset) = 0;
            break;
        default:
            break;
        }
    }
}

static bool same_str(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

size_t cfg_keep_restart(const cfg_table_t *t, void *fresh, const void *running, char *changed, size_t changedsz)
{
    size_t n = 0;
    for (const cfg_key_t *k = t->keys; k->path; k++) {
        if (!(k->flags & CFG_RESTART))
            continue;
        void *f = FIELD(fresh, k->offset);
        const void *r = FIELD((void *)running, k->offset);
        bool same = true;
        switch (k->type) {
        case CFG_STRING:
            if (!(same = same_str(*(char **)f, *(char *const *)r))) {
                free(*(char **)f);
                *(char **)f = *(char *const *)r ? omni_strdup(*(char *const *)r) : NULL;
            }
            break;
        case CFG_STRLIST: {
            size_t *fn = FIELD(fresh, k->count_offset);
            size_t rn = *(const size_t *)FIELD((void *)running, k->count_offset);
            char **fl = *(char ***)f, *const *rl = *(char **const *)r;
            same = *fn == rn;
            for (size_t i = 0; same && i < rn; i++)
                same = same_str(fl[i], rl[i]);
            if (!same) {
                free_strlist(fl, *fn);
                char **copy = omni_calloc(rn + 1, sizeof *copy);
                for (size_t i = 0; i < rn; i++)
                    copy[i] = rl[i] ? omni_strdup(rl[i]) : NULL;
                *(char ***)f = copy;
                *fn = rn;
            }
            break;
        }
        case CFG_INT:
        case CFG_DURATION:
        case CFG_ENUM:
            if (!(same = *(int *)f == *(const int *)r))
                *(int *)f = *(const int *)r;
            break;
        case CFG_COUNT:
        case CFG_SIZE:
            if (!(same = *(size_t *)f == *(const size_t *)r))
                *(size_t *)f = *(const size_t *)r;
            break;
        case CFG_BOOL:
            if (!(same = *(bool *)f == *(const bool *)r))
                *(bool *)f = *(const bool *)r;
            break;
        case CFG_OBJECT:
        case CFG_OBJLIST:
            omni_panic("config: %s: CFG_RESTART applies to scalars and string lists only", k->path);
        }
        if (!same) {
            size_t len = strlen(changed);
            if (len + 1 < changedsz)
                snprintf(changed + len, changedsz - len, "%s%s", len ? ", " : "", k->path);
            n++;
        }
    }
    return n;
}

const char cfg_command_line[] = CFG_COMMAND_LINE;

size_t cfg_load_file(const cfg_table_t *t, void *obj, const char *path, size_t max, const char *const *overrides,
                     size_t n_overrides, cfg_finalize_fn *finalize, char **source, config_errors_t *errs)
{
    *errs = (config_errors_t){ 0 };
    cfg_defaults(t, obj);
    size_t n_keys = 0;
    while (t->keys[n_keys].path)
        n_keys++;
    cfg_where_t *where = omni_calloc(n_keys ? n_keys : 1, sizeof *where);
    *source = path ? omni_strdup(path) : NULL;
    cfg_ctx_t ctx = { .errs = errs, .file = *source, .root = t, .where = where };
    cfg_source_t src;
    bool kept = false, unreadable = false;
    if (path) {
        size_t len = 0;
        char *text = omni_read_file(path, max, &len);
        if (!text) {
            errs->lines = omni_realloc(errs->lines, (errs->n + 1) * sizeof *errs->lines);
            errs->lines[errs->n++] = omni_asprintf("%s: cannot read: %s", path, strerror(errno));
            unreadable = true;
        } else {
            kept = cfg_load_source(&ctx, t, obj, text, len, &src);
            free(text);
        }
    }
    ctx.file = cfg_command_line;
    for (size_t i = 0; i < n_overrides; i++) {
        ctx.fixed_line = (long)i + 1;
        cfg_apply_override(&ctx, t, obj, overrides[i]);
    }
    errs->source = kept ? &src : NULL;
    if (finalize && !unreadable)
        finalize(obj, *source, where, errs);
    errs->source = NULL;
    if (kept)
        yaml_document_delete(&src.doc);
    cfg_errors_sort(errs, *source);
    free(where);
    return errs->n;
}
