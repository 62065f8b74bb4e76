/* The printed reference of a key table (docs/configuration.md is config_print_reference's output). */
#include "config_schema.h"

#include <stdlib.h>
#include <string.h>
#include "omni/util.h"

static const char *unit_name(int unit_ms) { return unit_ms == 1000 ? "s" : "ms"; }

static void print_default(const cfg_key_t *k, const void *obj, FILE *out)
{
    const void *f = (const char *)obj + k->offset;
    if (k->flags & CFG_REQUIRED)
        return;
    switch (k->type) {
    case CFG_STRING:
        if (*(char *const *)f)
            fprintf(out, ", default `%s`", *(char *const *)f);
        else
            fprintf(out, ", default none");
        break;
    case CFG_INT:
    case CFG_DURATION:
        fprintf(out, ", default `%d`", *(const int *)f);
        break;
    case CFG_COUNT:
    case CFG_SIZE:
        fprintf(out, ", default `%zu`", *(const size_t *)f);
        break;
    case CFG_BOOL:
        fprintf(out, ", default `%s`", *(const bool *)f ? "true" : "false");
        break;
    case CFG_ENUM:
        for (size_t i = 0; k->names[i]; i++)
            if ((k->parse ? k->parse(k->names[i]) : (int)i) == *(const int *)f)
                fprintf(out, ", default `%s`", k->names[i]);
        break;
    case CFG_STRLIST: {
        char *const *list = *(char **const *)f;
        size_t n = *(const size_t *)((const char *)obj + k->count_offset);
        fprintf(out, ", default `[");
        for (size_t i = 0; i < n; i++)
            fprintf(out, "%s%s", i ? ", " : "", list[i]);
        fprintf(out, "]`");
        break;
    }
    case CFG_OBJLIST:
        fprintf(out, ", default `[]`");
        break;
    case CFG_OBJECT:
        break;
    }
}

static void print_type(const cfg_key_t *k, FILE *out)
{
    switch (k->type) {
    case CFG_STRING:
        fprintf(out, "string%s", (k->flags & CFG_NULLABLE) ? ", optional" : "");
        break;
    case CFG_INT:
    case CFG_COUNT:
        fprintf(out, "integer %lld..%lld", k->min, k->max);
        break;
    case CFG_SIZE:
        fprintf(out, "size in bytes %lld..%lld", k->min, k->max);
        break;
    case CFG_DURATION:
        fprintf(out, "duration in %s %lld..%lld", unit_name(k->unit_ms), k->min, k->max);
        break;
    case CFG_BOOL:
        fprintf(out, "boolean");
        break;
    case CFG_ENUM:
        fprintf(out, "one of");
        for (size_t i = 0; k->names[i]; i++)
            fprintf(out, "%s %s", i ? "," : "", k->names[i]);
        break;
    case CFG_STRLIST:
    case CFG_OBJLIST:
        fprintf(out, "list of %s", k->type == CFG_STRLIST ? "strings" : "mappings with the keys below");
        if (k->max > 0)
            fprintf(out, ", %lld..%lld entries", k->min, k->max);
        else if (k->min > 0)
            fprintf(out, ", at least %lld entr%s", k->min, k->min == 1 ? "y" : "ies");
        break;
    case CFG_OBJECT:
        fprintf(out, "mapping with the keys below");
        break;
    }
    if (k->flags & CFG_REQUIRED)
        fprintf(out, ", required");
}

static void print_keys(const cfg_table_t *t, const void *obj, const char *prefix, int depth, FILE *out)
{
    const char *section = NULL;
    size_t seclen = 0;
    for (const cfg_key_t *k = t->keys; k->path; k++) {
        size_t len = strcspn(k->path, ".");
        if (depth == 0 && (section == NULL || len != seclen || strncmp(section, k->path, len) != 0)) {
            fprintf(out, "%s### %.*s\n\n", section ? "\n" : "", (int)len, k->path);
            section = k->path;
            seclen = len;
        }
        fprintf(out, "%*s- `%s%s`: ", depth * 2, "", prefix, k->path);
        print_type(k, out);
        print_default(k, obj, out);
        fprintf(out, ".\n%*s  %s%s\n", depth * 2, "", k->doc,
                (k->flags & CFG_RESTART) ? " A reload keeps the running value: restart to change it." : "");
        const void *f = (const char *)obj + k->offset;
        if (k->type == CFG_OBJECT) {
            char *sub = omni_asprintf("%s%s.", prefix, k->path);
            print_keys(k->sub, f, sub, depth + 1, out);
            free(sub);
        } else if (k->type == CFG_OBJLIST) {
            char *sub = omni_asprintf("%s%s[].", prefix, k->path);
            void *elem = omni_calloc(1, k->sub->size);
            cfg_defaults(k->sub, elem);
            print_keys(k->sub, elem, sub, depth + 1, out);
            cfg_free(k->sub, elem);
            free(elem);
            free(sub);
        }
    }
}

/* Defaults are read from a defaulted object, so defaults made by code (a table's init) show too. */
void cfg_print_table(const cfg_table_t *t, FILE *out)
{
    void *obj = omni_calloc(1, t->size);
    cfg_defaults(t, obj);
    print_keys(t, obj, "", 0, out);
    cfg_free(t, obj);
    free(obj);
}
