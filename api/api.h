/* omni-api's request context and the pieces that serve a request (server.c calls them in this order):
 * redis.c gives the thread its Redis connection, auth.c finds the caller from the token, handlers.c acts,
 * events.c streams an inbox, overview.c gives operators the supervisor's figures; console.c serves the web
 * console's static files (no token, no Redis). A handler fills req->status and req->body (or an error);
 * server.c sends it.
 *
 * Threads: MHD runs one thread per connection (MHD_USE_THREAD_PER_CONNECTION), at most api.max_connections;
 * each thread keeps its own blocking hiredis connection (redis.c), so a slow Redis stalls only the clients
 * waiting on it, and an event stream may block on XREAD without holding anyone else up. */
#ifndef OMNI_API_API_H
#define OMNI_API_API_H

#include <stdbool.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "api_config.h"
#include "request.h"
#include "scripts.h" /* the generated contract: LUA_X, X_ARG_Y, KEY_X */

typedef enum { CALLER_AGENT, CALLER_PARTNER, CALLER_OPERATOR } caller_kind_t;

typedef struct api_caller {
    caller_kind_t kind;
    char subject[80];          /* "agent:ann", "partner:acme", "operator:olga" */
    const char *name;          /* points into subject, after the colon */
    char owner[80];            /* as conversations name their owner: "agent:ann", "team:acme", "" for operators */
    char token_id[16];
    char token_hash[65];       /* what Redis keys the token by: a stream looks it up again before it sends */
} api_caller_t;

typedef struct api_req {
    const api_config_t *cfg;   /* borrowed from the server */
    redisContext *redis;       /* this thread's connection (redis.c owns it) */
    api_path_t path;
    api_caller_t caller;
    json_t *in;                /* the parsed body (owned), or NULL */
    json_t *query;             /* GET /v1/report: its query arguments, name -> string (owned), or NULL */
    /* the answer */
    unsigned status;
    json_t *body;              /* owned; sent as it is */
    char *raw;                 /* or, when set, a body that is JSON text already (a script's view): sent byte for
                                * byte, so a message's meta reaches the caller as its connector wrote it; owned */
    bool unavailable;          /* Redis could not be reached: 503 with Retry-After */
    char unavailable_why[200]; /* ... and why (for /healthz and the log) */
    enum { CHALLENGE_NONE, CHALLENGE_NO_TOKEN, CHALLENGE_INVALID } challenge; /* 401: WWW-Authenticate */
    const char *allow;         /* 405: Allow */
} api_req_t;

/* redis.c */
/* This thread's Redis connection, connected (and AUTHed, SELECTed) when it has none. NULL when Redis cannot
 * be reached, after setting a 503 on req. */
redisContext *api_redis(api_req_t *req);
/* Runs a command (printf-like for hiredis). Returns the reply (caller frees), or NULL after setting a 503
 * and dropping the connection when Redis failed; a Redis error reply is returned as it is. */
redisReply *api_cmd(api_req_t *req, const char *fmt, ...);
/* Runs a script (daemon/scripts.h) with argv as its "@args" declares them; argv[0] (the key prefix) is
 * filled in here. NULL after setting 503 (Redis failed) or 500 (the reply broke the contract). */
redisReply *api_script(api_req_t *req, int script, int argc, const char **argv);
/* The routers' clock (daemon/clock.h): the wall clock plus the test clock's offset in Redis (omnictl clock
 * advance; absent in production), so that what the API writes and decides agrees with the routers. Returns -1,
 * the request answered (503/500), when Redis cannot tell. */
int api_now(api_req_t *req, int64_t *now);
/* Drops this thread's connection (the next call connects again). */
void api_redis_drop(void);
/* Creates the thread-local key; call once before threads start. */
void api_redis_init(void);

/* auth.c: finds the caller from the Authorization header (NULL: absent). Returns 0, or -1 with the answer
 * (401, or 503) set on req. */
int api_auth(api_req_t *req, const char *authorization);

/* report.c: GET /v1/report, the SLA report for operators (its query in req->query). */
void api_report(api_req_t *req);

/* handlers.c: acts on req->path for req->caller and sets the answer. */
void api_handle(api_req_t *req);

/* Setting the answer. body is stolen. */
void api_answer(api_req_t *req, unsigned status, json_t *body);
/* Setting the answer to text that is JSON already (checked by the caller), copied and sent as it is. */
void api_answer_text(api_req_t *req, unsigned status, const char *text, size_t len);
/* An error answer {"error": {"code", "message", "field"?}}. */
void api_fail(api_req_t *req, unsigned status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void api_fail_with(api_req_t *req, const api_error_t *err);
/* The error body alone (the same shape), for answers made outside a handler. Returns a new object. */
json_t *api_error_body(const char *code, const char *field, const char *message);

#endif
