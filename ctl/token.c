/* omnictl token create|list|revoke: the API's bearer tokens (docs/delivery.md "Tokens", docs/api.md).
 * A token is printed once and only its SHA-256 is stored, so neither Redis nor a backup can give it back;
 * changes go through token_create.lua and token_revoke.lua, so they are atomic beside running omni-apis. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>

#include "ctl.h"
#include "omni/secret.h"
#include "omni/util.h"
#include "policy.h"
#include "omni/token.h"

/* Whether subject names someone the configuration knows: a configured agent, an outsourced team, or any
 * well-formed operator name. Returns NULL or the reason (in buf). */
static const char *check_subject(const ctl_t *c, const char *subject, char *buf, size_t bufsz)
{
    const policy_t *p = &c->cfg->policy;
    const char *colon = strchr(subject, ':');
    const char *name = colon ? colon + 1 : "";
    if (policy_check_name(name, buf, bufsz) != NULL || !*name) {
        snprintf(buf, bufsz, "\"%s\" is not agent:ID, partner:TEAM or operator:NAME (a name is 1..64 of a-z, "
                 "0-9, '.', '_' and '-')", subject);
        return buf;
    }
    size_t kind = (size_t)(colon - subject);
    if (kind == 5 && !strncmp(subject, "agent", 5)) {
        for (size_t i = 0; i < p->n_agents; i++)
            if (!strcmp(p->agents[i].id, name))
                return NULL;
        snprintf(buf, bufsz, "no agent \"%s\" in %s", name, c->cfg->source ? c->cfg->source : "the configuration");
        return buf;
    }
    if (kind == 7 && !strncmp(subject, "partner", 7)) {
        for (size_t i = 0; i < p->n_teams; i++)
            if (!strcmp(p->teams[i].name, name)) {
                if (p->teams[i].kind == TEAM_OUTSOURCED)
                    return NULL;
                snprintf(buf, bufsz, "team \"%s\" is in-house: its agents get tokens of their own (agent:ID)", name);
                return buf;
            }
        snprintf(buf, bufsz, "no team \"%s\" in %s", name, c->cfg->source ? c->cfg->source : "the configuration");
        return buf;
    }
    if (kind == 8 && !strncmp(subject, "operator", 8))
        return NULL;
    snprintf(buf, bufsz, "\"%s\" is not agent:ID, partner:TEAM or operator:NAME", subject);
    return buf;
}

static int create(ctl_t *c, const char *subject)
{
    char why[300];
    if (check_subject(c, subject, why, sizeof why)) {
        fprintf(stderr, "omnictl: token create: %s\n", why);
        return 2;
    }
    unsigned char raw[OMNI_TOKEN_RANDOM_BYTES];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        perror("omnictl: getrandom");
        return 1;
    }
    char token[OMNI_TOKEN_LEN + 1], hash[65], id[OMNI_TOKEN_ID_LEN + 1];
    omni_token_format(raw, token);
    omni_token_hash(token, strlen(token), hash, id);
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)omni_wall_ms());
    const char *args[TOKEN_CREATE_NARGS] = { [TOKEN_CREATE_ARG_HASH] = hash, [TOKEN_CREATE_ARG_ID] = id,
                                             [TOKEN_CREATE_ARG_SUBJECT] = subject, [TOKEN_CREATE_ARG_NOW] = now };
    redisReply *r = ctl_script(c, LUA_TOKEN_CREATE, TOKEN_CREATE_NARGS, args);
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR || strcmp(r->str, "created") != 0) {
        fprintf(stderr, "omnictl: token create: %s\n", r->str);
        rc = 1;
    } else {
        /* the token alone on stdout, so `TOKEN=$(omnictl token create ...)` works; the rest on stderr */
        printf("%s\n", token);
        fprintf(stderr, "token %s for %s: shown once, only its hash is kept (revoke: omnictl token revoke %s)\n",
                id, subject, id);
    }
    explicit_bzero(token, sizeof token);
    explicit_bzero(raw, sizeof raw);
    freeReplyObject(r);
    return rc;
}

static int list(ctl_t *c)
{
    redisReply *h = ctl_cmd(c, "HGETALL %s" KEY_TOKENS, c->prefix);
    printf("%-12s  %-24s  %s\n", "ID", "CREATED", "SUBJECT");
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        json_t *t = json_loads(h->element[i + 1]->str, 0, NULL);
        const char *subject = json_string_value(json_object_get(t, "subject"));
        char at[40], ms[24];
        snprintf(ms, sizeof ms, "%lld", (long long)json_integer_value(json_object_get(t, "created_at")));
        printf("%-12s  %-24s  %s\n", h->element[i]->str, ctl_time(ms, at, sizeof at), subject ? subject : "?");
        json_decref(t);
    }
    freeReplyObject(h);
    return 0;
}

static int revoke(ctl_t *c, const char *id)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)omni_wall_ms());
    const char *args[TOKEN_REVOKE_NARGS] = { [TOKEN_REVOKE_ARG_ID] = id, [TOKEN_REVOKE_ARG_NOW] = now };
    redisReply *r = ctl_script(c, LUA_TOKEN_REVOKE, TOKEN_REVOKE_NARGS, args);
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "omnictl: token revoke: %s\n", r->str);
        rc = 1;
    } else if (!strcmp(r->element[TOKEN_REVOKE_REPLY_OUTCOME]->str, "unknown")) {
        fprintf(stderr, "omnictl: token revoke: no token with id %s (omnictl token list)\n", id);
        rc = 1;
    } else {
        printf("token %s of %s revoked\n", id, r->element[TOKEN_REVOKE_REPLY_SUBJECT]->str);
    }
    freeReplyObject(r);
    return rc;
}

int ctl_token(ctl_t *c, int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[0], "create"))
        return create(c, argv[1]);
    if (argc == 1 && !strcmp(argv[0], "list"))
        return list(c);
    if (argc == 2 && !strcmp(argv[0], "revoke"))
        return revoke(c, argv[1]);
    fprintf(stderr, "omnictl: token create agent:ID|partner:TEAM|operator:NAME | token list | token revoke ID\n");
    return 2;
}
