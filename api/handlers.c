/* What each path does (docs/api.md, docs/openapi.yaml). Every change is one Lua script, as for the router
 * and omnictl; reads of someone's work go through scripts too (view.lua, work.lua), which answer "not found"
 * for work that is not the caller's, so another agent's or team's conversation is 404 whatever the verb. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "omni/util.h"
#include "scripts.h"

static void now_text(char *buf, size_t sz) { snprintf(buf, sz, "%lld", (long long)omni_wall_ms()); }

static void not_found(api_req_t *req, const char *what)
{
    api_fail(req, 404, "not_found", NULL, "no %s with that id among yours", what);
}

static void healthz(api_req_t *req)
{
    redisReply *r = api_cmd(req, "PING");
    if (!r)
        return;
    freeReplyObject(r);
    api_answer(req, 200, json_pack("{s:s, s:s}", "status", "ok", "redis", "ok"));
}

static void me(api_req_t *req)
{
    static const char *const kinds[] = { "agent", "partner", "operator" };
    api_answer(req, 200, json_pack("{s:s, s:s, s:s, s:s}", "subject", req->caller.subject, "kind",
                                   kinds[req->caller.kind], "id", req->caller.name, "token", req->caller.token_id));
}

/* An agent's presence as Redis has it; "available" when never set (presence.lua reads it so too). */
static void presence_get(api_req_t *req, const char *agent)
{
    redisReply *r = api_cmd(req, "HGET %s" KEY_AGENT " presence", req->cfg->redis.key_prefix, agent);
    if (!r)
        return;
    api_answer(req, 200, json_pack("{s:s, s:s}", "agent", agent, "presence",
                                   r->type == REDIS_REPLY_STRING ? r->str : "available"));
    freeReplyObject(r);
}

static void presence_set(api_req_t *req, const char *agent)
{
    const char *presence = json_string_value(json_object_get(req->in, "presence"));
    char now[24];
    now_text(now, sizeof now);
    const char *args[PRESENCE_NARGS] = { [PRESENCE_ARG_AGENT] = agent, [PRESENCE_ARG_PRESENCE] = presence,
                                         [PRESENCE_ARG_NOW] = now };
    redisReply *r = api_script(req, LUA_PRESENCE, PRESENCE_NARGS, args);
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ERROR)
        api_fail(req, 500, "internal", NULL, "%s", r->str);
    else
        api_answer(req, 200, json_pack("{s:s, s:s, s:s}", "agent", agent, "presence", presence, "was", r->str));
    freeReplyObject(r);
}

/* PUT /v1/agents/{id}/presence: operators for any agent the router knows, an agent for itself. */
static void agent_presence(api_req_t *req)
{
    const char *id = req->path.id;
    if (req->caller.kind == CALLER_AGENT && !strcmp(req->caller.name, id))
        return presence_set(req, id);
    if (req->caller.kind != CALLER_OPERATOR)
        return not_found(req, "agent");
    redisReply *r = api_cmd(req, "EXISTS %s" KEY_AGENT, req->cfg->redis.key_prefix, id);
    if (!r)
        return;
    bool known = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (!known)
        return not_found(req, "agent");
    presence_set(req, id);
}

void api_handle(api_req_t *req)
{
    const api_caller_t *c = &req->caller;
    switch (req->path.route) {
    case ROUTE_HEALTHZ: return healthz(req);
    case ROUTE_ME: return me(req);
    case ROUTE_PRESENCE:
        if (c->kind != CALLER_AGENT) /* presence is an agent's: there is none of yours here */
            return api_fail(req, 404, "not_found", NULL, "presence belongs to agents; this token is %s", c->subject);
        return req->in ? presence_set(req, c->name) : presence_get(req, c->name);
    case ROUTE_AGENT_PRESENCE: return agent_presence(req);
    default: return api_fail(req, 501, "not_implemented", NULL, "not implemented yet");
    }
}
