/* A feed's place (tw_cursor.h). */
#include "tw_cursor.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni/util.h"

static void set(char **slot, const char *v)
{
    free(*slot);
    *slot = v != NULL ? omni_strdup(v) : NULL;
}

static bool same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

char *tw_cursor_format(const tw_cursor_t *c, const char *user_id)
{
    json_t *o = json_pack("{s:i, s:s}", "v", 1, "user_id", user_id);
    if (c->since != NULL)
        json_object_set_new(o, "since", json_string(c->since));
    if (c->round_newest != NULL)
        json_object_set_new(o, "round_newest", json_string(c->round_newest));
    if (c->next_token != NULL)
        json_object_set_new(o, "next_token", json_string(c->next_token));
    if (c->started)
        json_object_set_new(o, "started", json_true());
    char *s = omni_json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static int member(const json_t *o, const char *key, char **slot, char *err, size_t errsz)
{
    const json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 512) {
        snprintf(err, errsz, "\"%s\" is not a string of 1..512 bytes", key);
        return -1;
    }
    *slot = omni_strdup(json_string_value(v));
    return 0;
}

/* An id of the state file is an X id, decimal (sent as since_id and compared as a number): anything else, a
 * hand-edited "latest", would be refused by the API at every call, the feed stopped for good. */
static bool decimal(const char *id, const char *key, char *err, size_t errsz)
{
    size_t n = id != NULL ? strlen(id) : 0;
    if (id == NULL || (n <= 32 && strspn(id, "0123456789") == n && (id[0] != '0' || n == 1)))
        return true;
    snprintf(err, errsz, "\"%s\" is not a decimal id", key);
    return false;
}

int tw_cursor_parse(const char *text, const char *user_id, tw_cursor_t *c, char *err, size_t errsz)
{
    tw_cursor_clear(c);
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    if (!json_is_object(o)) {
        snprintf(err, errsz, "not a JSON object (%s)", o == NULL ? jerr.text : "another JSON value");
        json_decref(o);
        return -1;
    }
    if (json_integer_value(json_object_get(o, "v")) != 1) {
        snprintf(err, errsz, "\"v\" is not 1");
        json_decref(o);
        return -1;
    }
    const char *uid = json_string_value(json_object_get(o, "user_id"));
    if (uid == NULL || strcmp(uid, user_id) != 0) {
        json_decref(o);
        return 1;
    }
    if (member(o, "since", &c->since, err, errsz) != 0 ||
        member(o, "round_newest", &c->round_newest, err, errsz) != 0 ||
        member(o, "next_token", &c->next_token, err, errsz) != 0 || !decimal(c->since, "since", err, errsz) ||
        !decimal(c->round_newest, "round_newest", err, errsz)) {
        tw_cursor_clear(c);
        json_decref(o);
        return -1;
    }
    c->started = json_is_true(json_object_get(o, "started"));
    json_decref(o);
    return 0;
}

void tw_cursor_advance(tw_cursor_t *c, const tw_page_t *page)
{
    if (c->round_newest == NULL && page->newest_id != NULL &&
        (c->since == NULL || tw_id_cmp(page->newest_id, c->since) > 0))
        set(&c->round_newest, page->newest_id);
    if (page->next_token != NULL && !page->reached_after) {
        set(&c->next_token, page->next_token);
        return;
    }
    if (c->round_newest != NULL)
        set(&c->since, c->round_newest);
    set(&c->round_newest, NULL);
    set(&c->next_token, NULL);
}

void tw_cursor_restart_round(tw_cursor_t *c)
{
    set(&c->round_newest, NULL);
    set(&c->next_token, NULL);
}

bool tw_cursor_equal(const tw_cursor_t *a, const tw_cursor_t *b)
{
    return same(a->since, b->since) && same(a->round_newest, b->round_newest) &&
           same(a->next_token, b->next_token) && a->started == b->started;
}

void tw_cursor_copy(tw_cursor_t *dst, const tw_cursor_t *src)
{
    set(&dst->since, src->since);
    set(&dst->round_newest, src->round_newest);
    set(&dst->next_token, src->next_token);
    dst->started = src->started;
}

void tw_cursor_clear(tw_cursor_t *c)
{
    free(c->since);
    free(c->round_newest);
    free(c->next_token);
    memset(c, 0, sizeof *c);
}
