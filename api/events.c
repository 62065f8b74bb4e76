/* An event stream: XREAD on the caller's stream (omni:inbox:agent:<id>, omni:inbox:team:<name>; operators:
 * omni:events), each entry sent as
 *     id: <entry id>\nevent: <type>\ndata: <JSON>\n\n
 * so a client resumes with Last-Event-ID and misses nothing still in the stream. MHD calls the reader in the
 * connection's own thread (thread per connection), so waiting in XREAD BLOCK holds up no one else; each wait
 * is at most a second so a shutdown is noticed, and an idle stream gets a ": keepalive" comment every
 * sse.keepalive (a client that went away is noticed when that write fails). */
#include "events.h"
#include "api_metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni/log.h"
#include "omni/util.h"

#define WAIT_MS 1000   /* longest XREAD BLOCK */
#define BATCH 100      /* entries read at once */

static atomic_bool stopping;

void api_events_stop(void) { atomic_store(&stopping, true); }

typedef struct stream {
    api_req_t req;     /* a copy: the request's own is gone once the handler returns */
    char key[200];
    char last[48];     /* the id of the last entry sent (or the start) */
    bool operator_;    /* omni:events: every field goes into data */
    char *out;         /* formatted, not yet handed to MHD */
    size_t len, off;
    int64_t idle_since;
} stream_t;

static void append(stream_t *s, const char *text, size_t n)
{
    s->out = omni_realloc(s->out, s->len + n + 1);
    memcpy(s->out + s->len, text, n);
    s->len += n;
    s->out[s->len] = '\0';
}

static void appends(stream_t *s, const char *text) { append(s, text, strlen(text)); }

/* "data: " lines of text: a line break inside would end the field, so each line gets its own. */
static void data_lines(stream_t *s, const char *text)
{
    do {
        size_t n = strcspn(text, "\r\n");
        appends(s, "data: ");
        append(s, text, n);
        appends(s, "\n");
        text += n;
        if (*text == '\r' && text[1] == '\n')
            text++;
    } while (*text && *++text);
    appends(s, "\n");
}

static const char *field(const redisReply *kv, const char *name)
{
    for (size_t i = 0; i + 1 < kv->elements; i += 2)
        if (kv->element[i]->type == REDIS_REPLY_STRING && !strcmp(kv->element[i]->str, name))
            return kv->element[i + 1]->str;
    return NULL;
}

/* One stream entry [id, [field, value, ...]] as an event. */
static void format_entry(stream_t *s, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    const char *id = e->element[0]->str;
    const redisReply *kv = e->element[1];
    const char *type = field(kv, "type");
    appends(s, "id: ");
    appends(s, id);
    appends(s, "\nevent: ");
    appends(s, type && !strpbrk(type, "\r\n") ? type : "message");
    appends(s, "\n");
    const char *data = s->operator_ ? NULL : field(kv, "data");
    if (data) {
        data_lines(s, data);
    } else { /* the router's events: flat fields, made an object here */
        json_t *o = json_object();
        for (size_t i = 0; i + 1 < kv->elements; i += 2)
            if (kv->element[i]->type == REDIS_REPLY_STRING && kv->element[i + 1]->type == REDIS_REPLY_STRING)
                json_object_set_new(o, kv->element[i]->str,
                                    json_stringn_nocheck(kv->element[i + 1]->str, kv->element[i + 1]->len));
        char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        data_lines(s, text ? text : "{}");
        free(text);
        json_decref(o);
    }
    snprintf(s->last, sizeof s->last, "%s", id);
}

/* Reads what follows s->last into s->out. Returns 1 (something to send), 0 (nothing yet), -1 (Redis failed). */
static int read_more(stream_t *s, int block_ms)
{
    redisReply *r = api_cmd(&s->req, "XREAD COUNT %d BLOCK %d STREAMS %s %s", BATCH, block_ms, s->key, s->last);
    if (!r)
        return -1;
    int got = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2 && r->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
        const redisReply *entries = r->element[0]->element[1];
        for (size_t i = 0; i < entries->elements; i++)
            format_entry(s, entries->element[i]);
        got = entries->elements > 0;
    } else if (r->type == REDIS_REPLY_ERROR) {
        omni_warn("events %s: %s", s->key, r->str);
        got = -1;
    }
    freeReplyObject(r);
    return got;
}

/* The caller's token, looked up again before a stream sends anything: one revoked while its stream is open
 * ends the stream (docs/api.md, "Tokens"; its client's reconnection is refused 401). 1 valid, 0 revoked,
 * -1 Redis failed. */
static int token_still_valid(stream_t *s)
{
    redisReply *r = api_cmd(&s->req, "EXISTS %s" KEY_TOKEN, s->req.cfg->redis.key_prefix, s->req.caller.token_hash);
    if (!r)
        return -1;
    int ok = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (!ok)
        omni_info("events %s: token %s revoked: stream ended", s->key, s->req.caller.token_id);
    return ok;
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_t *s = cls;
    const int keepalive = s->req.cfg->sse.keepalive_ms;
    while (s->off == s->len) {
        s->off = s->len = 0;
        if (atomic_load(&stopping))
            return MHD_CONTENT_READER_END_OF_STREAM;
        int64_t idle = omni_mono_ms() - s->idle_since;
        if (idle >= keepalive) {
            appends(s, ": keepalive\n\n");
        } else {
            int got = read_more(s, (int)(keepalive - idle < WAIT_MS ? keepalive - idle : WAIT_MS));
            if (got < 0) /* the client reconnects with Last-Event-ID and gets 503 until Redis is back */
                return MHD_CONTENT_READER_END_WITH_ERROR;
            if (got == 0)
                continue;
        }
        int valid = token_still_valid(s);
        if (valid < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (!valid)
            return MHD_CONTENT_READER_END_OF_STREAM;
        break;
    }
    s->idle_since = omni_mono_ms();
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->out + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    stream_t *s = cls;
    api_metrics_stream(-1);
    json_decref(s->req.body); /* an error answer made after the headers went out: nobody reads it */
    free(s->out);
    free(s);
}

/* Whether stream id a is after b (both "ms-seq"). */
static bool id_after(const char *a, const char *b)
{
    unsigned long long am = 0, as = 0, bm = 0, bs = 0;
    sscanf(a, "%llu-%llu", &am, &as);
    sscanf(b, "%llu-%llu", &bm, &bs);
    return am > bm || (am == bm && as > bs);
}

/* A client resuming from an entry the stream no longer holds (it keeps about the last 10,000): what followed
 * that entry may have been trimmed away too and cannot be sent, so the client is told, and refetches
 * GET /v1/work. Only the first entry kept is read: a resume from an id still there costs nothing more. */
static void tell_gap(stream_t *s)
{
    redisReply *r = api_cmd(&s->req, "XRANGE %s - + COUNT 1", s->key);
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2 && r->element[0]->element[0]->type == REDIS_REPLY_STRING &&
        id_after(r->element[0]->element[0]->str, s->last)) {
        char data[160];
        snprintf(data, sizeof data, "{\"after\":\"%s\",\"first_kept\":\"%s\"}", s->last,
                 r->element[0]->element[0]->str);
        appends(s, "event: gap\n");
        data_lines(s, data);
    }
    freeReplyObject(r);
}

struct MHD_Response *api_events_response(api_req_t *req, const char *last_event_id)
{
    const char *prefix = req->cfg->redis.key_prefix;
    stream_t *s = omni_calloc(1, sizeof *s);
    s->req = *req;
    s->req.in = s->req.body = NULL;
    if (req->caller.kind == CALLER_OPERATOR) {
        snprintf(s->key, sizeof s->key, "%s" KEY_EVENTS, prefix);
        s->operator_ = true;
    } else { /* the inbox of the owner the caller acts as: agent:ID, or team:NAME for a partner */
        snprintf(s->key, sizeof s->key, "%s" KEY_INBOX, prefix, req->caller.owner);
    }
    if (last_event_id) {
        if (!api_stream_id(last_event_id)) {
            api_fail(req, 400, "invalid_field", "Last-Event-ID",
                     "Last-Event-ID: not an event id as this stream sends them (digits-digits)");
            free(s);
            return NULL;
        }
        snprintf(s->last, sizeof s->last, "%s", last_event_id);
    } else { /* from now on: the newest entry's id, resolved now so nothing falls between two reads */
        redisReply *r = api_cmd(req, "XREVRANGE %s + - COUNT 1", s->key);
        if (!r) {
            free(s);
            return NULL;
        }
        bool any = r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
                   r->element[0]->elements == 2 && r->element[0]->element[0]->type == REDIS_REPLY_STRING;
        snprintf(s->last, sizeof s->last, "%s", any ? r->element[0]->element[0]->str : "0-0");
        freeReplyObject(r);
    }
    /* this thread's connection now waits in XREAD BLOCK: its read timeout must outlast one wait */
    struct timeval tv = { (req->cfg->redis.timeout_ms + WAIT_MS) / 1000,
                          (req->cfg->redis.timeout_ms + WAIT_MS) % 1000 * 1000 };
    if (!api_redis(req)) {
        free(s);
        return NULL;
    }
    redisSetTimeout(req->redis, tv);
    s->idle_since = omni_mono_ms();
    /* the first bytes: the headers go out at once, and the client's reconnect delay */
    appends(s, "retry: 2000\n: ");
    appends(s, s->key + strlen(prefix));
    appends(s, "\n\n");
    if (last_event_id)
        tell_gap(s);
    if (s->req.unavailable) {
        api_answer(req, s->req.status, s->req.body);
        req->unavailable = true;
        free(s->out);
        free(s);
        return NULL;
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, s, stream_free);
    api_metrics_stream(+1); /* stream_free takes it back */
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return resp;
}
