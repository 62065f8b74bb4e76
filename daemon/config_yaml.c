/* libyaml for the config: one document per text, every node with its mark, anchors and aliases refused,
 * and the error lines "FILE:LINE:COL: KEY: MESSAGE" (1-based, as editors count). */
#include "config_schema.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "omni/util.h"

/* Each error is one line: a control character from a value ("a\nb" in double quotes), a key or a message built
 * from them is shown as '?', from byte `from` on (the file name before it is the caller's, matched by sorting). */
static void push_from(config_errors_t *errs, char *line, size_t from)
{
    for (unsigned char *c = (unsigned char *)line + from; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            *c = '?';
    errs->lines = omni_realloc(errs->lines, (errs->n + 1) * sizeof *errs->lines);
    errs->lines[errs->n++] = line;
}

static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *s = omni_malloc((size_t)(n < 0 ? 0 : n) + 1);
    vsnprintf(s, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
    return s;
}

void cfg_error(cfg_ctx_t *ctx, const yaml_mark_t *mark, const char *key, const char *fmt, ...)
{
    long line = 1, col = 1;
    if (ctx->fixed_line > 0) {
        line = ctx->fixed_line;
    } else if (mark) {
        line = (long)mark->line + 1;
        col = (long)mark->column + 1;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    const char *file = ctx->file ? ctx->file : "(no file)";
    if (key)
        push_from(ctx->errs, omni_asprintf("%s:%ld:%ld: %s: %s", file, line, col, key, msg), strlen(file));
    else
        push_from(ctx->errs, omni_asprintf("%s:%ld:%ld: %s", file, line, col, msg), strlen(file));
    free(msg);
}

void cfg_error_at(config_errors_t *errs, const cfg_where_t *w, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    if (w->line > 0)
        push_from(errs, omni_asprintf("%s:%ld:%ld: %s: %s", w->file, w->line, w->col, key, msg), strlen(w->file));
    else
        push_from(errs, omni_asprintf("%s: %s: %s", w->file ? w->file : "default", key, msg),
                  strlen(w->file ? w->file : "default"));
    free(msg);
}

/* The node key names in doc ("a.b[2].c"; a lone scalar stands for a list of one: "[0]" is itself), or
 * NULL when it is not written there. */
static const yaml_node_t *locate(yaml_document_t *doc, const char *key)
{
    yaml_node_t *n = yaml_document_get_root_node(doc);
    const char *p = key;
    while (n && *p) {
        if (*p == '[') {
            char *end;
            unsigned long i = strtoul(p + 1, &end, 10);
            if (*end != ']')
                return NULL;
            p = end + 1;
            if (n->type == YAML_SCALAR_NODE && i == 0)
                continue;
            if (n->type != YAML_SEQUENCE_NODE || i >= (unsigned long)(n->data.sequence.items.top -
                                                                      n->data.sequence.items.start))
                return NULL;
            n = yaml_document_get_node(doc, n->data.sequence.items.start[i]);
            continue;
        }
        if (*p == '.')
            p++;
        size_t len = strcspn(p, ".[");
        if (n->type != YAML_MAPPING_NODE)
            return NULL;
        yaml_node_t *found = NULL;
        for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top && !found; pr++) {
            yaml_node_t *k = yaml_document_get_node(doc, pr->key);
            if (k->type == YAML_SCALAR_NODE && k->data.scalar.length == len &&
                memcmp(k->data.scalar.value, p, len) == 0)
                found = yaml_document_get_node(doc, pr->value);
        }
        n = found;
        p += len;
    }
    return n;
}

cfg_where_t cfg_where_key(const config_errors_t *errs, const cfg_where_t *w, const char *key)
{
    cfg_where_t at = *w;
    const cfg_source_t *src = errs->source;
    const yaml_node_t *n = src && w->file == src->file && w->line > 0 ? locate((yaml_document_t *)&src->doc, key) : NULL;
    if (n) {
        at.line = (long)n->start_mark.line + 1;
        at.col = (long)n->start_mark.column + 1;
    }
    return at;
}

void cfg_error_key(config_errors_t *errs, const cfg_where_t *w, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    cfg_where_t at = cfg_where_key(errs, w, key);
    cfg_error_at(errs, &at, key, "%s", msg);
    free(msg);
}

/* Where an error line points, for sorting: group 0 the file (by line and column; "FILE: cannot read: ..." and
 * other lines naming the file without a place first), 1 the command line (by override), 2 anything else (no
 * place: kept last, in the order found). */
typedef struct placed {
    char *line;
    int group;
    long l, c;
    size_t i;
} placed_t;

static int by_place(const void *a, const void *b)
{
    const placed_t *x = a, *y = b;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    if (x->l != y->l)
        return x->l < y->l ? -1 : 1;
    if (x->c != y->c)
        return x->c < y->c ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static bool parse_place(const char *line, const char *file, long *l, long *c)
{
    size_t len = strlen(file);
    if (strncmp(line, file, len) != 0 || line[len] != ':')
        return false;
    return sscanf(line + len + 1, "%ld:%ld:", l, c) == 2;
}

void cfg_errors_sort(config_errors_t *errs, const char *file)
{
    placed_t *p = omni_calloc(errs->n + 1, sizeof *p);
    size_t flen = file ? strlen(file) : 0;
    for (size_t i = 0; i < errs->n; i++) {
        p[i] = (placed_t){ errs->lines[i], 2, 0, 0, i };
        if (file && parse_place(errs->lines[i], file, &p[i].l, &p[i].c))
            p[i].group = 0;
        else if (file && strncmp(errs->lines[i], file, flen) == 0 && errs->lines[i][flen] == ':' &&
                 errs->lines[i][flen + 1] == ' ')
            p[i].group = 0; /* the file as a whole, at line 0: before its lines, as it is before the command line */
        else if (parse_place(errs->lines[i], CFG_COMMAND_LINE, &p[i].l, &p[i].c))
            p[i].group = 1;
    }
    qsort(p, errs->n, sizeof *p, by_place);
    for (size_t i = 0; i < errs->n; i++)
        errs->lines[i] = p[i].line;
    free(p);
}

/* The mark of a byte offset: libyaml's reader errors (bad UTF-8) come with an offset, not a mark.
 * Columns count characters, as libyaml's do. */
static yaml_mark_t mark_of_offset(const char *text, size_t len, size_t offset)
{
    yaml_mark_t m = { offset, 0, 0 };
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
            m.column++;
        }
    }
    return m;
}

static void syntax_error(cfg_ctx_t *ctx, const char *key, const yaml_parser_t *p, const char *text, size_t len)
{
    const char *problem = p->problem ? p->problem : p->error == YAML_MEMORY_ERROR ? "out of memory" : "cannot parse";
    if (p->error == YAML_READER_ERROR) {
        yaml_mark_t m = mark_of_offset(text, len, p->problem_offset);
        if (p->problem_value >= 0)
            cfg_error(ctx, &m, key, "syntax error: %s (#%X)", problem, (unsigned)p->problem_value);
        else
            cfg_error(ctx, &m, key, "syntax error: %s", problem);
    } else if (p->context) {
        cfg_error(ctx, &p->problem_mark, key, "syntax error: %s (%s at line %zu column %zu)", problem, p->context,
                  p->context_mark.line + 1, p->context_mark.column + 1);
    } else {
        cfg_error(ctx, &p->problem_mark, key, "syntax error: %s", problem);
    }
}

/* An event pass before loading: yaml_parser_load resolves aliases into shared nodes and keeps no trace
 * of them, so this is the only place they can be seen. They are refused because a key table has no use
 * for them, and because a walker following shared nodes can be made to do exponential work. */
/* *fatal: the document cannot be walked (a syntax error, an alias, nesting too deep); an anchor alone or a
 * second document is an error too, but the first document is still checked, so that every error is reported,
 * not only those. */
static void scan(cfg_ctx_t *ctx, const char *key, const char *text, size_t len, int *docs, bool *fatal)
{
    yaml_parser_t p;
    yaml_event_t ev;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    *docs = 0;
    *fatal = false;
    int depth = 0;
    for (bool done = false; !done;) {
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(ctx, key, &p, text, len);
            *fatal = true;
            break;
        }
        const yaml_char_t *anchor = NULL;
        switch (ev.type) {
        case YAML_ALIAS_EVENT:
            cfg_error(ctx, &ev.start_mark, key, "aliases (*%s) are not supported; write the value out",
                      (const char *)ev.data.alias.anchor);
            *fatal = true;
            break;
        case YAML_SCALAR_EVENT:
            anchor = ev.data.scalar.anchor;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            anchor = ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.anchor
                                                          : ev.data.mapping_start.anchor;
            /* Stopped here, while still cheap: libyaml's scanner does work in proportion to the depth for every
             * token, so "[[[[..." a few hundred KB long would keep -t busy for minutes. */
            if (++depth > CFG_MAX_DEPTH) {
                cfg_error(ctx, &ev.start_mark, key, "nesting deeper than %d levels (lists and mappings inside each "
                          "other); no key needs more", CFG_MAX_DEPTH);
                *fatal = true;
                done = true;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++*docs == 2)
                cfg_error(ctx, &ev.start_mark, key, "a second YAML document (---); a config file holds one");
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        if (anchor)
            cfg_error(ctx, &ev.start_mark, key, "anchors (&%s) are not supported", (const char *)anchor);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
}

int cfg_yaml_parse(cfg_ctx_t *ctx, const char *key, const char *text, size_t len, yaml_document_t *doc)
{
    int docs;
    bool fatal;
    scan(ctx, key, text, len, &docs, &fatal);
    if (fatal)
        return -1;
    if (docs == 0)
        return 0;
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int ok = yaml_parser_load(&p, doc);
    if (!ok)
        syntax_error(ctx, key, &p, text, len);
    yaml_parser_delete(&p);
    if (!ok)
        return -1;
    if (yaml_document_get_root_node(doc) == NULL) {
        yaml_document_delete(doc);
        return 0;
    }
    return 1;
}
