/* See scripts.h: every reply of a script is checked against its declaration before a caller reads it, so a
 * script and its callers that disagree is a logged error, never a crash. */
#include "scripts.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "omni/log.h"

typedef struct field {
    char name[48];
    char type; /* 's' or 'i' */
    bool optional;
} field_t;

enum { SHAPE_FIELDS, SHAPE_EACH, SHAPE_ONE };
#define FIELDS_MAX 16

/* Reads a "@reply" declaration. Returns the number of fields (declarations are ours: a bad one is a bug). */
static int parse(const char *decl, int *shape, field_t *f)
{
    int n = 0;
    *shape = SHAPE_FIELDS;
    char word[64];
    for (const char *p = decl; *p;) {
        size_t len = strcspn(p, " ");
        if (len > 0 && len < sizeof word) {
            memcpy(word, p, len);
            word[len] = 0;
            char *colon = strchr(word, ':');
            if (!strcmp(word, "each"))
                *shape = SHAPE_EACH;
            else if (!strcmp(word, "one"))
                *shape = SHAPE_ONE;
            else if (colon && n < FIELDS_MAX) {
                *colon = 0;
                f[n].optional = word[0] == '?';
                snprintf(f[n].name, sizeof f[n].name, "%s", word + f[n].optional);
                f[n].type = colon[1] == 'i' ? 'i' : 's';
                n++;
            }
        }
        p += len;
        while (*p == ' ')
            p++;
    }
    return n;
}

static int check_value(const field_t *f, const redisReply *v, const char *script, size_t at, char *err, size_t errsz)
{
    int want = f->type == 'i' ? REDIS_REPLY_INTEGER : REDIS_REPLY_STRING;
    if (v->type == want || (f->type == 's' && v->type == REDIS_REPLY_STATUS))
        return 0;
    snprintf(err, errsz, "%s: reply element %zu (%s) is %s, declared %s", script, at, f->name,
             v->type == REDIS_REPLY_INTEGER ? "an integer"
             : v->type == REDIS_REPLY_STRING ? "a string"
             : v->type == REDIS_REPLY_ARRAY  ? "an array"
             : v->type == REDIS_REPLY_NIL    ? "nil"
                                             : "another type",
             f->type == 'i' ? "int" : "str");
    return -1;
}

/* parsed once per script (this runs for every message), on first use or by lua_contract_init */
static field_t fields[LUA_NSCRIPTS][FIELDS_MAX];
static int shapes[LUA_NSCRIPTS], counts[LUA_NSCRIPTS];
/* each script's SHA-1 as EVALSHA names it: on first use, or all at once by lua_contract_init */
static char sha[LUA_NSCRIPTS][41];

void lua_contract_init(void)
{
    for (int i = 0; i < LUA_NSCRIPTS; i++) {
        const struct omni_lua_script *s = &omni_lua_scripts[i];
        counts[i] = parse(s->reply, &shapes[i], fields[i]);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (EVP_Digest(s->body, strlen(s->body), md, &len, EVP_sha1(), NULL) != 1 || len != 20)
            omni_panic("lua_contract_init: SHA-1 of %s failed", s->name);
        for (unsigned j = 0; j < len; j++)
            snprintf(sha[i] + 2 * j, 3, "%02x", md[j]);
    }
}

int lua_reply_check(const struct omni_lua_script *s, const redisReply *r, char *err, size_t errsz)
{
    size_t id = (size_t)(s - omni_lua_scripts);
    if (!counts[id])
        counts[id] = parse(s->reply, &shapes[id], fields[id]);
    const field_t *f = fields[id];
    int shape = shapes[id], n = counts[id];
    if (r->type == REDIS_REPLY_ERROR)
        return 0;
    if (shape == SHAPE_ONE)
        return check_value(&f[0], r, s->name, 0, err, errsz);
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errsz, "%s: reply is not an array", s->name);
        return -1;
    }
    int required = 0;
    for (int i = 0; i < n; i++)
        required += !f[i].optional;
    if (shape == SHAPE_EACH ? r->elements % (size_t)n != 0
                            : r->elements < (size_t)required || r->elements > (size_t)n) {
        snprintf(err, errsz, "%s: reply has %zu elements, declared %s%d", s->name, r->elements,
                 shape == SHAPE_EACH ? "a multiple of " : "", shape == SHAPE_EACH ? n : required);
        return -1;
    }
    for (size_t i = 0; i < r->elements; i++)
        if (check_value(&f[i % (size_t)n], r->element[i], s->name, i, err, errsz) != 0)
            return -1;
    return 0;
}

/* Every synchronous caller (omnictl, simulate) runs scripts through here: by id, EVALSHA with the hash
 * cached per process, loading the script once when the server does not know it yet. */
redisReply *lua_call(redisContext *rc, int script, int argc, const char **argv, char *err, size_t errsz)
{
    const struct omni_lua_script *s = &omni_lua_scripts[script];
    if (argc < s->nargs || (!s->variadic && argc != s->nargs))
        omni_panic("lua_call: %s called with %d arguments, declared %d%s", s->name, argc, s->nargs,
                   s->variadic ? " or more" : "");
    const char *av[argc + 3];
    av[0] = "EVALSHA", av[1] = sha[script], av[2] = "0";
    memcpy(av + 3, argv, (size_t)argc * sizeof *argv);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!sha[script][0] || attempt == 1) {
            redisReply *l = redisCommand(rc, "SCRIPT LOAD %s", s->body);
            if (!l || l->type != REDIS_REPLY_STRING || l->len != 40) {
                snprintf(err, errsz, "%s: cannot load the script: %s", s->name,
                         !l ? rc->errstr : l->type == REDIS_REPLY_ERROR ? l->str : "unexpected reply");
                freeReplyObject(l);
                return NULL;
            }
            if (strcmp(sha[script], l->str) != 0) /* after lua_contract_init, never written: threads share it */
                memcpy(sha[script], l->str, 41);
            freeReplyObject(l);
        }
        redisReply *r = redisCommandArgv(rc, argc + 3, av, NULL);
        if (!r) {
            snprintf(err, errsz, "%s: %s", s->name, rc->errstr);
            return NULL;
        }
        if (r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8) && attempt == 0) {
            freeReplyObject(r);
            continue;
        }
        if (lua_reply_check(s, r, err, errsz) != 0) {
            freeReplyObject(r);
            return NULL;
        }
        return r;
    }
    snprintf(err, errsz, "%s: the server forgot the script it just loaded", s->name);
    return NULL;
}
