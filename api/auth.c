/* Who is calling: the bearer token's SHA-256 looked up in Redis on every request (docs/delivery.md
 * "Tokens"). Nothing is cached, so a token revoked by omnictl fails on the very next request, on every
 * omni-api at once. */
#include <string.h>

#include "api.h"
#include "omni/token.h"
#include "scripts.h"

static int refuse(api_req_t *req, const api_error_t *e)
{
    req->challenge = strcmp(e->code, "unauthorized") ? CHALLENGE_INVALID : CHALLENGE_NO_TOKEN;
    api_fail_with(req, e);
    return -1;
}

int api_auth(api_req_t *req, const char *authorization)
{
    api_error_t e;
    const char *tok;
    size_t len;
    if (api_bearer(authorization, &tok, &len, &e) != 0)
        return refuse(req, &e);
    char hash[65], id[OMNI_TOKEN_ID_LEN + 1];
    omni_token_hash(tok, len, hash, id);
    redisReply *r = api_cmd(req, "HGET %s" KEY_TOKEN " subject", req->cfg->redis.key_prefix, hash);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_STRING || r->len >= sizeof req->caller.subject) {
        freeReplyObject(r);
        api_error_set(&e, 401, "invalid_token", "Authorization", "the token is unknown or was revoked");
        return refuse(req, &e);
    }
    api_caller_t *c = &req->caller;
    memcpy(c->subject, r->str, r->len + 1);
    freeReplyObject(r);
    snprintf(c->token_id, sizeof c->token_id, "%s", id);
    memcpy(c->token_hash, hash, sizeof c->token_hash);
    char *colon = strchr(c->subject, ':');
    c->name = colon ? colon + 1 : "";
    if (!strncmp(c->subject, "agent:", 6)) {
        c->kind = CALLER_AGENT;
        snprintf(c->owner, sizeof c->owner, "%s", c->subject);
    } else if (!strncmp(c->subject, "partner:", 8)) {
        c->kind = CALLER_PARTNER;
        snprintf(c->owner, sizeof c->owner, "team:%s", c->name);
    } else if (!strncmp(c->subject, "operator:", 9)) {
        c->kind = CALLER_OPERATOR;
    } else { /* only omnictl writes tokens, and it checks subjects: a token of another version */
        api_error_set(&e, 401, "invalid_token", "Authorization", "the token's subject is not understood");
        return refuse(req, &e);
    }
    return 0;
}
