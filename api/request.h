/* What omni-api reads from a request before touching Redis, as pure functions (fuzz/api_request.c drives
 * them): the route a method and path name, the bearer token of an Authorization header, a JSON body checked
 * against the fields its route takes, and a Last-Event-ID. Every refusal comes with the HTTP status, an
 * error code and a sentence naming the field (docs/api.md "Errors"). */
#ifndef OMNI_API_REQUEST_H
#define OMNI_API_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define API_ID_MAX 64 /* a conversation id (digits) or an agent id (policy names: 1..64 of a-z 0-9 . _ -) */

typedef enum {
    ROUTE_NONE,
    ROUTE_HEALTHZ,         /* GET /healthz */
    ROUTE_ME,              /* GET /v1/me */
    ROUTE_PRESENCE,        /* GET, PUT /v1/presence */
    ROUTE_AGENT_PRESENCE,  /* PUT /v1/agents/{id}/presence */
    ROUTE_WORK,            /* GET /v1/work */
    ROUTE_CONVERSATION,    /* GET /v1/conversations/{id} */
    ROUTE_ACCEPT,          /* POST /v1/conversations/{id}/accept */
    ROUTE_REJECT,          /* POST .../reject {"reason"} */
    ROUTE_RESPOND,         /* POST .../respond */
    ROUTE_RESOLVE,         /* POST .../resolve */
    ROUTE_TRANSFER,        /* POST .../transfer {"team"} */
    ROUTE_SURVEY,          /* POST .../survey {"csat", "ces", "nps"} (operators): a survey's answer */
    ROUTE_EVENTS,          /* GET /v1/events (Server-Sent Events) */
    ROUTE_OVERVIEW,        /* GET /v1/overview (operators) */
    ROUTE_REPORT,          /* GET /v1/report?days=N|from=&to= (operators): the SLA report */
    ROUTE_CONSOLE,         /* GET /console/{file}: the web console's static files, no token */
    ROUTE_CONSOLE_ROOT,    /* GET /console: redirected to /console/ */
    ROUTE_COUNT
} api_route_t;

typedef struct api_path {
    api_route_t route;
    char id[API_ID_MAX + 1]; /* the {id} of the path, "" when it has none; ROUTE_CONSOLE: the file's name */
    const char *allow;       /* the methods the path takes, for Allow (static) */
} api_path_t;

/* A refusal: HTTP status, error code, the field concerned (NULL: none) and a sentence. */
typedef struct api_error {
    unsigned status;
    const char *code;  /* static */
    const char *field; /* static or NULL */
    char message[320];
} api_error_t;

/* Matches method and url (the path MHD decoded, without the query). Returns 0 with *out filled, or -1 with
 * *err: 404 (no such path, or an id that cannot name anything), 405 (out->allow says what it takes). */
int api_route(const char *method, const char *url, api_path_t *out, api_error_t *err);

/* A console file's name as the path names it (after /console/; "" is index.html): 1..64 of A-Z a-z 0-9 . _ -
 * not starting with '.', so no path can leave the console's directory or reach a hidden file. */
bool api_console_name(const char *s);

/* Finds the token in an Authorization header value (NULL: absent). Returns 0 with *tok, *len pointing into
 * header, or -1 with a 401 in *err (code "unauthorized" when absent, "invalid_token" when malformed). */
int api_bearer(const char *header, const char **tok, size_t *len, api_error_t *err);

/* Parses body[0..len) for route: a JSON object holding the fields the route takes (an empty body is {}).
 * Returns the object (caller owns; json_decref), or NULL with a 400 in *err naming the field. */
json_t *api_body(api_route_t route, const char *body, size_t len, api_error_t *err);

/* Whether the route takes a body at all (PUT and POST ones). */
bool api_route_has_body(api_route_t route);

/* A stream entry id as SSE sends it ("1700000000000-0"): digits, '-', digits. */
bool api_stream_id(const char *s);

/* Fills *err and returns -1. */
int api_error_set(api_error_t *err, unsigned status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
