/* What each path does (docs/api.md, docs/openapi.yaml). Every change is one Lua script, as for the router
 * and omnictl; reads of someone's work go through scripts too (view.lua, work.lua), which answer "not found"
 * for work that is not the caller's, so another agent's or team's conversation is 404 whatever the verb. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "console.h"
#include "omni/log.h"
#include "omni/util.h"
#include "scripts.h"
#include "survey.h"

/* The routers' clock as text for a script's `now`; -1 with the request answered when Redis cannot tell. */
static int now_text(api_req_t *req, char *buf, size_t sz)
{
    int64_t t;
    if (api_now(req, &t) != 0)
        return -1;
    snprintf(buf, sz, "%lld", (long long)t);
    return 0;
}

static void not_found(api_req_t *req, const char *what)
{
    api_fail(req, 404, "not_found", NULL, "no %s with that id among yours", what);
}

static void healthz(api_req_t *req)
{
    redisReply *r = api_cmd(req, "PING");
    if (!r) { /* 503 with Retry-After as for every request; here the sentence says why (unreachable, no primary) */
        api_fail(req, 503, "unavailable", NULL, "the store (Redis) cannot be reached: %s; retry in %d s",
                 req->unavailable_why, req->cfg->api.retry_after_s);
        return;
    }
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
    if (r->type == REDIS_REPLY_ERROR) { /* not "available": the store holds what no router writes there */
        omni_error("presence of agent %s: %s", agent, r->str);
        api_fail(req, 500, "internal", NULL, "internal error (logged)");
        freeReplyObject(r);
        return;
    }
    api_answer(req, 200, json_pack("{s:s, s:s}", "agent", agent, "presence",
                                   r->type == REDIS_REPLY_STRING ? r->str : "available"));
    freeReplyObject(r);
}

static void presence_set(api_req_t *req, const char *agent)
{
    const char *presence = json_string_value(json_object_get(req->in, "presence"));
    char now[24];
    if (now_text(req, now, sizeof now) != 0)
        return;
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

/* A script's JSON answer (view.lua, work.lua) as the body, sent as the script wrote it (a message's meta is
 * its connector's own text there: docs/delivery.md; parsed and written again it would not be, 0.1 becoming
 * 0.10000000000000001), once checked to be a JSON object; "" is 404. */
static void json_answer(api_req_t *req, redisReply *r, const char *what)
{
    if (r->type == REDIS_REPLY_ERROR) {
        omni_error("%s: %s", what, r->str);
        api_fail(req, 500, "internal", NULL, "internal error (logged)");
    } else if (r->type != REDIS_REPLY_STRING || r->len == 0) {
        not_found(req, what);
    } else {
        json_error_t je;
        json_t *j = json_loadb(r->str, r->len, 0, &je);
        if (json_is_object(j))
            api_answer_text(req, 200, r->str, r->len);
        else if (j)
            api_fail(req, 500, "internal", NULL, "%s: the store's answer is not a JSON object", what);
        else
            api_fail(req, 500, "internal", NULL, "%s: the store's answer is not JSON: %s", what, je.text);
        json_decref(j);
    }
    freeReplyObject(r);
}

static void conversation(api_req_t *req)
{
    const char *args[VIEW_NARGS] = { [VIEW_ARG_CALLER] = req->caller.subject, [VIEW_ARG_CONVERSATION] = req->path.id };
    redisReply *r = api_script(req, LUA_VIEW, VIEW_NARGS, args);
    if (r)
        json_answer(req, r, "conversation");
}

static void work(api_req_t *req)
{
    const char *args[WORK_NARGS] = { [WORK_ARG_CALLER] = req->caller.subject };
    redisReply *r = api_script(req, LUA_WORK, WORK_NARGS, args);
    if (r)
        json_answer(req, r, "work");
}

/* A verb's outcome (the scripts' words) as an answer: done (200), "not found" (404: not the caller's, whatever
 * the verb), or a state the verb does not apply to (409, with the outcome as the code). */
static void outcome_answer(api_req_t *req, const char *outcome, json_t *extra, const char *const *done)
{
    for (const char *const *d = done; *d; d++)
        if (!strcmp(outcome, *d)) {
            json_t *o = json_pack("{s:s, s:s}", "conversation", req->path.id, "outcome", outcome);
            if (extra)
                json_object_update(o, extra);
            json_decref(extra);
            return api_answer(req, 200, o);
        }
    json_decref(extra);
    if (!strcmp(outcome, "not found"))
        return not_found(req, "conversation");
    if (!strcmp(outcome, "no such team"))
        return api_fail(req, 400, "invalid_field", "team", "team: no router has a team of that name");
    char code[32];
    snprintf(code, sizeof code, "%s", outcome);
    for (char *c = code; *c; c++)
        *c = *c == ' ' ? '_' : *c;
    static const char *const why[][2] = {
        { "not_offered", "it is not an open offer to you (accepted already, expired, or moved on)" },
        { "not_owned", "nobody holds it now (waiting, being re-routed, or closed)" },
        { "closed", "it is resolved or merged" },
    };
    for (size_t i = 0; i < sizeof why / sizeof why[0]; i++)
        if (!strcmp(code, why[i][0]))
            return api_fail(req, 409, why[i][0], NULL, "conversation %s: %s", req->path.id, why[i][1]);
    omni_error("conversation %s: unexpected outcome \"%s\"", req->path.id, outcome);
    api_fail(req, 500, "internal", NULL, "internal error (logged)");
}

/* Runs a verb's script with args; an error reply is logged and 500. Returns the reply or NULL (answered). */
static redisReply *verb(api_req_t *req, int script, int argc, const char **args)
{
    redisReply *r = api_script(req, script, argc, args);
    if (r && r->type == REDIS_REPLY_ERROR) {
        omni_error("%s conversation %s: %s", omni_lua_scripts[script].name, req->path.id, r->str);
        api_fail(req, 500, "internal", NULL, "internal error (logged)");
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static void act(api_req_t *req)
{
    char now[24];
    if (now_text(req, now, sizeof now) != 0)
        return;
    const char *caller = req->caller.subject, *cv = req->path.id;
    redisReply *r = NULL;
    switch (req->path.route) {
    case ROUTE_ACCEPT: {
        const char *a[ACCEPT_NARGS] = { [ACCEPT_ARG_CALLER] = caller, [ACCEPT_ARG_CONVERSATION] = cv,
                                        [ACCEPT_ARG_NOW] = now };
        if ((r = verb(req, LUA_ACCEPT, ACCEPT_NARGS, a)))
            outcome_answer(req, r->str, NULL, (const char *const[]){ "accepted", NULL });
        break;
    }
    case ROUTE_REJECT: {
        const char *a[REJECT_NARGS] = { [REJECT_ARG_CALLER] = caller, [REJECT_ARG_CONVERSATION] = cv,
                                        [REJECT_ARG_REASON] = json_string_value(json_object_get(req->in, "reason")),
                                        [REJECT_ARG_NOW] = now };
        if ((r = verb(req, LUA_REJECT, REJECT_NARGS, a)))
            outcome_answer(req, r->str, NULL, (const char *const[]){ "rejected", NULL });
        break;
    }
    case ROUTE_TRANSFER: {
        /* the note, when given, is the script's one variadic argument (kept in its transfer event) */
        const char *note = json_string_value(json_object_get(req->in, "note"));
        const char *a[TRANSFER_NARGS + 1] = { [TRANSFER_ARG_CALLER] = caller, [TRANSFER_ARG_CONVERSATION] = cv,
                                              [TRANSFER_ARG_TEAM] = json_string_value(json_object_get(req->in, "team")),
                                              [TRANSFER_ARG_NOW] = now, [TRANSFER_NARGS] = note };
        if ((r = verb(req, LUA_TRANSFER, note ? TRANSFER_NARGS + 1 : TRANSFER_NARGS, a)))
            outcome_answer(req, r->str, NULL, (const char *const[]){ "transferred", NULL });
        break;
    }
    case ROUTE_RESPOND: {
        const char *a[RESPOND_NARGS] = { [RESPOND_ARG_CALLER] = caller, [RESPOND_ARG_CONVERSATION] = cv,
                                         [RESPOND_ARG_WHO] = caller, [RESPOND_ARG_NOW] = now };
        if ((r = verb(req, LUA_RESPOND, RESPOND_NARGS, a)))
            outcome_answer(req, r->element[RESPOND_REPLY_OUTCOME]->str,
                           json_pack("{s:I}", "since_opened_ms", (json_int_t)r->element[RESPOND_REPLY_MS]->integer),
                           (const char *const[]){ "met", "breached", "no sla", "already", NULL });
        break;
    }
    case ROUTE_SURVEY: {
        char score[SURVEY_MEASURES][4];
        const char *a[SURVEY_NARGS] = { [SURVEY_ARG_CONVERSATION] = cv, [SURVEY_ARG_WHO] = caller, [SURVEY_ARG_NOW] = now };
        bool any = false;
        for (int m = 0; m < SURVEY_MEASURES; m++) {
            json_t *v = json_object_get(req->in, survey_measures[m].name); /* checked by api_body: in range */
            snprintf(score[m], sizeof score[m], "%d", v ? (int)json_integer_value(v) : 0);
            any = any || v;
            a[SURVEY_ARG_CSAT + m] = v ? score[m] : "";
        }
        /* "at least one score" is a check of the body, so it comes before the conversation (docs/api.md "Errors"),
         * whoever calls: the same body is 400 for every token, as any other malformed one is */
        if (!any)
            return api_fail(req, 400, "missing_field", "body", "give at least one score: csat (1..5), ces (1..7), "
                                                               "nps (0..10)");
        /* a survey tool's call, on an operator's token: an agent or partner learns nothing, as of others' work */
        if (req->caller.kind != CALLER_OPERATOR)
            return not_found(req, "conversation");
        if (!(r = verb(req, LUA_SURVEY, SURVEY_NARGS, a)))
            break;
        const char *outcome = r->element[SURVEY_REPLY_OUTCOME]->str;
        if (!strcmp(outcome, "not resolved"))
            api_fail(req, 409, "not_resolved", NULL, "conversation %s: it is not resolved; a survey is of a resolved "
                                                     "conversation", cv);
        else if (!strcmp(outcome, "surveyed"))
            api_fail(req, 409, "surveyed", NULL, "conversation %s: surveyed already with %s; each score is recorded "
                                                 "once", cv, r->element[SURVEY_REPLY_DETAIL]->str);
        else
            outcome_answer(req, outcome, NULL, (const char *const[]){ "recorded", "already", NULL });
        break;
    }
    case ROUTE_RESOLVE: {
        const char *a[RESOLVE_NARGS] = { [RESOLVE_ARG_CALLER] = caller, [RESOLVE_ARG_CONVERSATION] = cv,
                                         [RESOLVE_ARG_WHO] = caller, [RESOLVE_ARG_NOW] = now };
        if ((r = verb(req, LUA_RESOLVE, RESOLVE_NARGS, a)))
            outcome_answer(req, r->element[RESOLVE_REPLY_OUTCOME]->str, NULL,
                           (const char *const[]){ "resolved", NULL });
        break;
    }
    default: break;
    }
    freeReplyObject(r);
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
    case ROUTE_WORK: return work(req);
    case ROUTE_OVERVIEW: return api_overview(req);
    case ROUTE_REPORT: return api_report(req);
    case ROUTE_CONVERSATION: return conversation(req);
    case ROUTE_ACCEPT:
    case ROUTE_REJECT:
    case ROUTE_TRANSFER:
    case ROUTE_RESPOND:
    case ROUTE_RESOLVE:
    case ROUTE_SURVEY: return act(req);
    default: return api_fail(req, 404, "not_found", NULL, "no such path");
    }
}
