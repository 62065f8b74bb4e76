/* The shape of every answer: a JSON body, and on error {"error": {"code", "message", "field"?}}
 * (docs/openapi.yaml, components/schemas/Error). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "omni/util.h"

void api_answer(api_req_t *req, unsigned status, json_t *body)
{
    json_decref(req->body);
    free(req->raw);
    req->raw = NULL;
    req->status = status;
    req->body = body;
}

void api_answer_text(api_req_t *req, unsigned status, const char *text, size_t len)
{
    api_answer(req, status, NULL);
    req->raw = omni_malloc(len + 1);
    memcpy(req->raw, text, len);
    req->raw[len] = '\0';
}

json_t *api_error_body(const char *code, const char *field, const char *message)
{
    /* a message quoting the client's bytes may have cut a UTF-8 sequence short: keep what is whole */
    size_t bad = strlen(message);
    omni_utf8_valid(message, bad, &bad);
    json_t *e = json_pack("{s:s, s:s%}", "code", code, "message", message, bad);
    if (field)
        json_object_set_new(e, "field", json_string(field));
    return json_pack("{s:o}", "error", e);
}

void api_fail(api_req_t *req, unsigned status, const char *code, const char *field, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    api_answer(req, status, api_error_body(code, field, msg));
}

void api_fail_with(api_req_t *req, const api_error_t *err)
{
    api_answer(req, err->status, api_error_body(err->code, err->field, err->message));
}
