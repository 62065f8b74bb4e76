/* Scalar values against their key (strings, integers, sizes, durations, booleans, enum names) and the
 * did-you-mean for misspelt keys and names. */
#include "config_schema.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "omni/units.h"
#include "omni/util.h"

bool cfg_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)n->data.scalar.value;
    return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

const char *cfg_describe(const yaml_node_t *n, char *buf, size_t bufsz)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (cfg_is_null(n))
        return "null";
    /* Quoted, control characters shown as '?', cut on a UTF-8 boundary so a long value keeps lines short. */
    const unsigned char *s = n->data.scalar.value;
    size_t len = n->data.scalar.length, o = 0, room = bufsz - 6;
    buf[o++] = '"';
    size_t i = 0;
    for (; i < len && o < room; i++)
        buf[o++] = (s[i] < 0x20 || s[i] == 0x7f) ? '?' : (char)s[i];
    if (i < len) {
        while (i > 0 && (s[i] & 0xc0) == 0x80) { /* s[i] continues a character: drop its start too */
            i--;
            o--;
        }
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* Optimal string alignment distance (Levenshtein plus adjacent transpositions: "tikc" -> "tick" is 1),
 * ignoring case. Long words are never typos of a key: SIZE_MAX. */
static size_t osa(const char *a, const char *b)
{
    enum { MAXLEN = 128 };
    size_t m = strlen(a), n = strlen(b), rows[3][MAXLEN + 1];
    if (m > MAXLEN || n > MAXLEN)
        return SIZE_MAX;
    size_t *pp = rows[0], *p = rows[1], *c = rows[2];
    for (size_t j = 0; j <= n; j++)
        p[j] = j;
    for (size_t i = 1; i <= m; i++) {
        c[0] = i;
        for (size_t j = 1; j <= n; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t v = p[j - 1] + cost;
            if (p[j] + 1 < v)
                v = p[j] + 1;
            if (c[j - 1] + 1 < v)
                v = c[j - 1] + 1;
            if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            c[j] = v;
        }
        size_t *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[n];
}

const char *cfg_suggest(const char *word, const char *const *cands, size_t n)
{
    /* About one edit per five characters: "rooter" finds "router", "x" finds nothing. */
    size_t limit = 1 + strlen(word) / 5, best_d = SIZE_MAX;
    const char *best = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t d = osa(word, cands[i]);
        if (d <= limit && d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    return best;
}

/* Besides a close spelling, a key with the same last segment in another section counts as a suggestion
 * ("router.key_prefix" -> "redis.key_prefix"): a key put in the wrong section is a common slip. */
void cfg_unknown(cfg_ctx_t *ctx, const cfg_table_t *t, const char *disp_prefix, const char *path,
                 const yaml_mark_t *mark)
{
    size_t n = 0, nc = 0, cap = 0;
    while (t->keys[n].path)
        n++;
    for (size_t i = 0; i < n; i++)
        for (const char *p = t->keys[i].path; p; p = strchr(p + 1, '.'))
            cap++;
    char **cands = omni_calloc(cap + 1, sizeof *cands);
    for (size_t i = 0; i < n; i++) {
        const char *full = t->keys[i].path;
        for (const char *dot = strchr(full, '.'); dot; dot = strchr(dot + 1, '.'))
            cands[nc++] = omni_strndup(full, (size_t)(dot - full));
        cands[nc++] = omni_strdup(full);
    }
    /* The sections enclosing path are no suggestion: "redis.x" is not a misspelt "redis". */
    size_t kept = 0;
    for (size_t i = 0; i < nc; i++) {
        size_t len = strlen(cands[i]);
        if (strncmp(path, cands[i], len) == 0 && path[len] == '.')
            free(cands[i]);
        else
            cands[kept++] = cands[i];
    }
    nc = kept;
    const char *best = cfg_suggest(path, (const char *const *)cands, nc);
    if (best == NULL) {
        const char *leaf = strrchr(path, '.');
        leaf = leaf ? leaf + 1 : path;
        for (size_t i = 0; i < n && best == NULL; i++) {
            const char *kleaf = strrchr(t->keys[i].path, '.');
            if (kleaf && strcmp(kleaf + 1, leaf) == 0)
                best = t->keys[i].path;
        }
    }
    char *disp = *disp_prefix ? omni_asprintf("%s.%s", disp_prefix, path) : omni_strdup(path);
    if (best) {
        char *sugg = *disp_prefix ? omni_asprintf("%s.%s", disp_prefix, best) : omni_strdup(best);
        cfg_error(ctx, mark, disp, "unknown key (did you mean %s?)", sugg);
        free(sugg);
    } else {
        cfg_error(ctx, mark, disp, "unknown key");
    }
    free(disp);
    for (size_t i = 0; i < nc; i++)
        free(cands[i]);
    free(cands);
}

static const char *unit_name(int unit_ms) { return unit_ms == 1000 ? "s" : "ms"; }

/* How k's type reads numbers (omni/units.h, the connectors' reading too), and in which unit. */
static omni_num_kind_t num_kind(const cfg_key_t *k)
{
    return k->type == CFG_SIZE ? OMNI_NUM_SIZE : k->type == CFG_DURATION ? OMNI_NUM_DURATION : OMNI_NUM_PLAIN;
}

/* What a key accepts, for "expected X, got Y". Returns buf. */
static const char *wanted(const cfg_key_t *k, char *buf, size_t bufsz)
{
    switch (k->type) {
    case CFG_INT:
    case CFG_COUNT:
    case CFG_SIZE:
    case CFG_DURATION:
        return omni_number_wanted(num_kind(k), k->type == CFG_DURATION ? k->unit_ms : 1);
    case CFG_BOOL:
        return "true or false";
    case CFG_ENUM: {
        size_t o = (size_t)snprintf(buf, bufsz, "one of");
        for (size_t i = 0; k->names[i] && o < bufsz; i++)
            o += (size_t)snprintf(buf + o, bufsz - o, "%s %s", i ? "," : "", k->names[i]);
        return buf;
    }
    default:
        return "a string";
    }
}

static bool set_number(cfg_ctx_t *ctx, const cfg_key_t *k, void *field, const char *disp, const yaml_node_t *node)
{
    const char *s = (const char *)node->data.scalar.value;
    char want[64], got[96];
    long long v = 0;
    int rc = omni_number_parse(s, num_kind(k), k->type == CFG_DURATION ? k->unit_ms : 1, &v);
    /* Past what 64 bits hold (99999999999999999h), the reading saturates: that made-up number is neither
     * shown nor divided into the key's unit ("not a whole number of s"); the value is simply out of bounds. */
    long long raw = 0;
    bool huge = rc != OMNI_NUM_BAD && omni_number_parse(s, num_kind(k), 1, &raw) == OMNI_NUM_OK &&
                (raw == LLONG_MAX || raw == LLONG_MIN);
    if (huge) {
        rc = OMNI_NUM_OK;
        v = raw;
    }
    if (rc == OMNI_NUM_FRACTION) {
        cfg_error(ctx, &node->start_mark, disp, "%s is not a whole number of %s", s, unit_name(k->unit_ms));
        return false;
    }
    if (rc != OMNI_NUM_OK) {
        cfg_error(ctx, &node->start_mark, disp, "expected %s, got %s", wanted(k, want, sizeof want),
                  cfg_describe(node, got, sizeof got));
        return false;
    }
    bool has_unit = s[strspn(s, "+-0123456789")] != '\0';
    long long lo = k->min, hi = k->max;
    bool is_int = k->type == CFG_INT || k->type == CFG_DURATION;
    if (lo == 0 && hi == 0) { /* no bounds given: what the field can hold */
        lo = is_int ? INT_MIN : 0;
        hi = is_int ? INT_MAX : LLONG_MAX;
    }
    char shown[96];
    if (has_unit && !huge)
        snprintf(shown, sizeof shown, "%.40s (%lld)", s, v);
    else
        snprintf(shown, sizeof shown, "%.40s", s);
    if (v < lo) {
        cfg_error(ctx, &node->start_mark, disp, "%s is below the minimum %lld", shown, lo);
        return false;
    }
    if (v > hi) {
        cfg_error(ctx, &node->start_mark, disp, "%s is above the maximum %lld", shown, hi);
        return false;
    }
    if (is_int)
        *(int *)field = (int)v;
    else
        *(size_t *)field = (size_t)v;
    return true;
}

bool cfg_set_scalar(cfg_ctx_t *ctx, const cfg_key_t *k, void *obj, const char *disp, const yaml_node_t *node)
{
    char want[256], got[96], buf[256];
    void *field = (char *)obj + k->offset;
    bool nullable = k->type == CFG_STRING && (k->flags & CFG_NULLABLE);
    if (node->type != YAML_SCALAR_NODE || (cfg_is_null(node) && !nullable)) {
        cfg_error(ctx, &node->start_mark, disp, "expected %s, got %s", wanted(k, want, sizeof want),
                  cfg_describe(node, got, sizeof got));
        return false;
    }
    const char *s = (const char *)node->data.scalar.value, *why;
    if (strlen(s) != node->data.scalar.length) {
        cfg_error(ctx, &node->start_mark, disp, "contains a NUL byte");
        return false;
    }
    switch (k->type) {
    case CFG_STRING:
        if (*s == '\0' || cfg_is_null(node)) {
            if (!nullable) {
                cfg_error(ctx, &node->start_mark, disp, "must not be empty");
                return false;
            }
            free(*(char **)field);
            *(char **)field = NULL;
            return true;
        }
        if (k->check && (why = k->check(s, buf, sizeof buf)) != NULL) {
            cfg_error(ctx, &node->start_mark, disp, "%s", why);
            return false;
        }
        free(*(char **)field);
        *(char **)field = omni_strdup(s);
        return true;
    case CFG_BOOL: {
        static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
        for (size_t i = 0; i < 3; i++) {
            if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
                *(bool *)field = strcasecmp(s, yes[i]) == 0;
                return true;
            }
        }
        break;
    }
    case CFG_ENUM: {
        size_t n = 0;
        for (; k->names[n]; n++) {
            int v = strcmp(s, k->names[n]) != 0 ? -1 : k->parse ? k->parse(s) : (int)n;
            if (v >= 0) { /* a listed name parse refuses is a table bug; refusing it shows up in tests */
                *(int *)field = v;
                return true;
            }
        }
        const char *sugg = cfg_suggest(s, k->names, n);
        if (sugg) {
            cfg_error(ctx, &node->start_mark, disp, "expected %s, got %s (did you mean %s?)", wanted(k, want, sizeof want),
                      cfg_describe(node, got, sizeof got), sugg);
            return false;
        }
        break;
    }
    default:
        return set_number(ctx, k, field, disp, node);
    }
    cfg_error(ctx, &node->start_mark, disp, "expected %s, got %s", wanted(k, want, sizeof want),
              cfg_describe(node, got, sizeof got));
    return false;
}
