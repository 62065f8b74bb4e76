/* Fuzz target: what omni-api reads from a request before Redis sees anything (api/request.c): the route of a
 * method and path, the bearer token of an Authorization header, a JSON body against its route's fields, a
 * Last-Event-ID. Byte 0 picks the method (bits 0-1) and the route whose body is parsed (the rest); the
 * remaining bytes are path NUL header NUL body. Beyond not crashing: a route found has a well-formed id and a
 * refusal a status and a sentence; a token found lies inside the header and has the token's shape; an
 * accepted body holds only its route's fields; every refusal makes an error body that serializes (its sentence
 * may quote the client's bytes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "omni/log.h"
#include "omni/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void error_serializes(const api_error_t *e, unsigned want)
{
    if (e->status != want || !e->code || !e->message[0])
        omni_panic("fuzz: refusal %u (%s) where %u was expected", e->status, e->code ? e->code : "-", want);
    json_t *body = api_error_body(e->code, e->field, e->message);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!text)
        omni_panic("fuzz: the error body for \"%s\" does not serialize", e->message);
    free(text);
    json_decref(body);
}

static void route(const char *method, const char *url)
{
    api_path_t p;
    api_error_t e;
    if (api_route(method, url, &p, &e) != 0) {
        error_serializes(&e, e.status == 405 ? 405 : 404);
        if (e.status == 405 && !p.allow)
            omni_panic("fuzz: 405 without Allow for %s", url);
        return;
    }
    size_t n = strlen(p.id);
    /* a console file's name: never a path, never hidden (nothing outside console.directory can be named) */
    const char *chars = p.route == ROUTE_CONSOLE ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
                                                 : "abcdefghijklmnopqrstuvwxyz0123456789._-";
    if (p.route <= ROUTE_NONE || p.route >= ROUTE_COUNT || !p.allow || n > API_ID_MAX || strspn(p.id, chars) != n ||
        (p.route == ROUTE_CONSOLE && (n == 0 || p.id[0] == '.')))
        omni_panic("fuzz: %s %s routed to %d with id \"%s\"", method, url, (int)p.route, p.id);
}

static void bearer(const char *header)
{
    const char *tok;
    size_t len;
    api_error_t e;
    if (api_bearer(header, &tok, &len, &e) != 0) {
        error_serializes(&e, 401);
        return;
    }
    if (tok < header || tok + len > header + strlen(header) || !omni_token_shape(tok, len))
        omni_panic("fuzz: bearer token outside its header or of the wrong shape");
    char hash[65], id[OMNI_TOKEN_ID_LEN + 1];
    omni_token_hash(tok, len, hash, id);
    if (strlen(hash) != 64 || strncmp(hash, id, OMNI_TOKEN_ID_LEN) != 0)
        omni_panic("fuzz: token hash and id disagree");
}

static void body(api_route_t r, const char *text, size_t len)
{
    api_error_t e;
    json_t *o = api_body(r, text, len, &e);
    if (!o) {
        error_serializes(&e, 400);
        if (api_route_has_body(r) && !e.field)
            omni_panic("fuzz: a body refused without naming a field: %s", e.message);
        return;
    }
    static const char *const known[] = { "presence", "reason", "team", "note", NULL };
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        const char *const *k = known;
        while (*k && strcmp(*k, key))
            k++;
        if (!*k || !json_is_string(v))
            omni_panic("fuzz: body accepted with field %s", key);
    }
    json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = { "GET", "PUT", "POST", "DELETE" };
    if (size < 1)
        return 0;
    const char *method = methods[data[0] & 3];
    api_route_t r = (api_route_t)((data[0] >> 2) % ROUTE_COUNT);
    const char *rest = (const char *)data + 1, *end = (const char *)data + size;
    const char *nul1 = memchr(rest, 0, (size_t)(end - rest));
    const char *nul2 = nul1 ? memchr(nul1 + 1, 0, (size_t)(end - nul1 - 1)) : NULL;
    char *url = strndup(rest, (size_t)((nul1 ? nul1 : end) - rest)); /* MHD hands C strings */
    char *header = nul1 ? strndup(nul1 + 1, (size_t)((nul2 ? nul2 : end) - nul1 - 1)) : NULL;
    route(method, url);
    bearer(header);
    if (header)
        api_stream_id(header);
    if (nul2)
        body(r, nul2 + 1, (size_t)(end - nul2 - 1)); /* a body may hold NULs: it is counted, not terminated */
    free(url);
    free(header);
    return 0;
}
