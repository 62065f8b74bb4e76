/* loadgen: drives an OMNI/1 endpoint (the router, or bench/floor) with C concurrent DEALER clients from
 * one thread. Closed loop (default): each client keeps up to W messages unanswered. Open loop (--rate R
 * --duration S): message n is due at start + n/R whatever the answers, and is sent late if the sender
 * fell behind. A BUSY message is resent, by whichever client has room, once its retry hint has passed; a
 * NACK is final. Prints one machine-readable line:
 *   msgs=N seconds=S msgs_per_s=R acked=A busy=B nacked=K [assigned=N p50_ms=.. p99_ms=.. p999_ms=..
 *   max_ms=.. max_send_lag_ms=..] [resolved=N]
 * and exits 0 only when every message was ACKed (and, with --latency, assigned) before the deadline.
 *
 * With --redis ADDR (the router's Redis) a second thread follows the router's event stream (omni:events,
 * XREAD BLOCK on its own connection). --latency: a message's latency is from its due time (open loop:
 * never from when it was sent, so a stalled sender does not hide the stall: no coordinated omission) to
 * when that thread read the `assigned` event of the conversation the message opened (the first message of
 * omni:conversation:<n>:messages tells which). --resolve-above N: whenever more than N conversations
 * are assigned and unresolved, the oldest are resolved with resolve.lua, the script omni-api's
 * POST /v1/conversations/{id}/resolve runs, so capacity frees while the load runs.
 *
 * --mix P: the mixed workload. P % of messages come from a new customer; the rest from a customer who
 * wrote recently (among the last ~--lookback new ones), so most join an open conversation; a third of the
 * customers also have a phone linked to their email address (--link-only makes those links, before the
 * measured run) and half of their follow-ups come by SMS from it. --pool K: the customers are K, named
 * modulo K, so a long run's returning customers open new conversations instead of the store growing for good.
 *
 * The clock runs from the first send to the last answer, so start-up and connection set-up are not in
 * the figure; the caller proves the endpoint ready first (a one-message run works as that probe). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <hiredis/hiredis.h>

#include "omni/frames.h"
#include "omni/identity.h"
#include "omni/protocol.h"
#include "omni/util.h"
#include "redis_address.h" /* the router's own address syntax */
#include "scripts.h"       /* resolve.lua and link.lua, as omni-api and omnictl run them */

#define MAX_CLIENTS 256
#define PREFIX "omni:" /* redis.key_prefix's default: the bench runs the router at its defaults */

typedef struct retry {
    int64_t due; /* monotonic ms */
    uint32_t n;
} retry_t;

/* BUSY messages waiting for their hint to pass: a binary min-heap on due time, because two BUSY
 * answers may carry different hints. */
typedef struct heap {
    retry_t *v;
    size_t n, cap;
} heap_t;

static void heap_push(heap_t *h, retry_t r)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = omni_realloc(h->v, h->cap * sizeof *h->v);
    }
    size_t i = h->n++;
    for (; i > 0 && h->v[(i - 1) / 2].due > r.due; i = (i - 1) / 2)
        h->v[i] = h->v[(i - 1) / 2];
    h->v[i] = r;
}

static retry_t heap_pop(heap_t *h)
{
    retry_t top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1].due < h->v[c].due)
            c++;
        if (h->v[c].due >= last.due)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

typedef struct gen {
    const char *run;
    uint32_t messages, customers, next_fresh;
    uint32_t mix, lookback; /* --mix: percent of messages from new customers; 0: the plain workload */
    uint32_t pool;          /* --pool: the mixed workload's customers are this many, reused (0: unbounded) */
    unsigned char *done; /* per message: 0 open, 1 ACKed, 2 NACKed */
    uint32_t acked, nacked;
    uint64_t busy, stray;
    heap_t retries;
} gen_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The next message to send: a due retry first (it has waited longest), else a fresh one. */
static int take(gen_t *g, int64_t now, uint32_t *n)
{
    if (g->retries.n && g->retries.v[0].due <= now) {
        *n = heap_pop(&g->retries).n;
        return 1;
    }
    if (g->next_fresh < g->messages) {
        *n = g->next_fresh++;
        return 1;
    }
    return 0;
}

/* ~200 bytes of made-up words from a generator seeded with the run and the message number: the same
 * text on every resend, and no two messages' texts alike, across runs too (a readiness probe shares the
 * Redis of the run after it). Words from a short list would not do: the router's near-duplicate folding
 * hashes character 4-grams, which such texts would mostly share. */
static int make_text(const char *run, uint32_t n, char *buf, size_t size)
{
    uint64_t x = 1469598103934665603ull; /* FNV-1a of the run tag */
    for (const char *c = run; *c; c++)
        x = (x ^ (unsigned char)*c) * 1099511628211ull;
    x = (x ^ n) * 0x9E3779B97F4A7C15ull | 1; /* xorshift64* state: never 0 */
    size_t len = 0, word = 0;
    while (len + 1 < size && len < 200) {
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
        uint64_t r = (x * 0x2545F4914F6CDD1Dull) >> 32;
        if (word >= 2 && r % 6 == 0) { /* words of 2 to ~9 letters */
            buf[len++] = ' ';
            word = 0;
        } else {
            buf[len++] = (char)('a' + r % 26);
            word++;
        }
    }
    return (int)len;
}

static uint32_t mix_hash(uint32_t n, uint32_t salt)
{
    uint64_t x = ((uint64_t)n << 32 | salt) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32 ^ x);
}

/* Mixed workload: does message n come from a new customer? Message 0 always does. */
static int mix_new(const gen_t *g, uint32_t n) { return n == 0 || mix_hash(n, 1) % 100 < g->mix; }

/* A customer of the mixed workload is named by the message that introduced it (modulo --pool, so that a
 * long run's "new" customers come back, as real ones do, opening a new conversation once their last one was
 * resolved); a third of them (k % 3 == 0) also have a phone, linked before the run. */
static uint32_t mix_who(const gen_t *g, uint32_t k) { return g->pool ? k % g->pool : k; }
static void mix_email(const gen_t *g, uint32_t k, char *buf, size_t size)
{
    snprintf(buf, size, "m%u@example.com", mix_who(g, k));
}
static void mix_phone(const gen_t *g, uint32_t k, char *buf, size_t size)
{
    snprintf(buf, size, "+1415%07u", 2000000 + mix_who(g, k) % 8000000);
}
static int mix_linked(const gen_t *g, uint32_t k) { return mix_who(g, k) % 3 == 0; }

/* Who sends message n, and on which channel: a pure function of n, so a resend is the same message. */
static const char *sender(const gen_t *g, uint32_t n, char *from, size_t size)
{
    if (!g->mix) {
        /* Senders spread over the customers by a multiplicative hash, so consecutive messages mostly come
         * from different customers, as they would from a real inbox. */
        snprintf(from, size, "c%u@example.com", (uint32_t)((n * 2654435761u) % g->customers));
        return "email";
    }
    if (mix_new(g, n)) {
        mix_email(g, n, from, size);
        return "email";
    }
    /* a recent customer: back a random distance, then to the nearest message that introduced one */
    uint32_t back = 1 + mix_hash(n, 2) % (g->lookback * 100 / (g->mix ? g->mix : 1));
    uint32_t k = n > back ? n - back : 0;
    while (!mix_new(g, k))
        k--;
    if (mix_linked(g, k) && mix_hash(n, 3) % 2 == 0) {
        mix_phone(g, k, from, size);
        return "sms";
    }
    mix_email(g, k, from, size);
    return "email";
}

static int send_msg(const gen_t *g, void *sock, uint32_t n)
{
    char text[256], json[1024], from[64];
    const char *channel = sender(g, n, from, sizeof from);
    int tlen = make_text(g->run, n, text, sizeof text);
    int len = snprintf(json, sizeof json,
                       "{\"id\":\"bench:%s:%u\",\"channel\":\"%s\",\"from\":{\"id\":\"%s\"},"
                       "\"received_at\":\"2026-11-22T08:00:00Z\",\"text\":\"%.*s\"}",
                       g->run, n, channel, from, tlen, text);
    if (zmq_send(sock, OMNI_PROTO_VERSION, strlen(OMNI_PROTO_VERSION), ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, OMNI_CMD_MSG, strlen(OMNI_CMD_MSG), ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, json, (size_t)len, 0) < 0) {
        fprintf(stderr, "loadgen: send: %s\n", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

/* The message number in "bench:<run>:<n>", or -1 when the id is not one of this run's. */
static long id_number(const gen_t *g, const char *id, size_t len)
{
    char buf[300];
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, id, len);
    buf[len] = 0;
    size_t pre = strlen(g->run);
    if (strncmp(buf, "bench:", 6) != 0 || strncmp(buf + 6, g->run, pre) != 0 || buf[6 + pre] != ':')
        return -1;
    char *end;
    long n = strtol(buf + 7 + pre, &end, 10);
    return *end || n < 0 || (uint32_t)n >= g->messages ? -1 : n;
}

/* Reads one answer if one is waiting. Returns 1 when it answered a message sent on this socket (the
 * window has room again), 0 for anything else, -1 when none was waiting. */
static int recv_answer(gen_t *g, void *sock)
{
    omni_frames_t fr;
    if (omni_frames_recv(sock, &fr) <= 0)
        return -1;
    omni_frame_t f[OMNI_FRAMES_KEEP];
    omni_decoded_t d;
    omni_frames_view(&fr, f);
    int rc = 0;
    long num = omni_frames_decode(OMNI_FROM_ROUTER, f, fr.n, &d) == NULL && d.arg[0] != NULL
                   ? id_number(g, d.arg[0], d.arg_len[0])
                   : -1;
    if (num < 0) {
        g->stray++;
    } else if (d.kind == OMNI_DEC_ACK) {
        if (!g->done[num]) {
            g->acked++;
            g->done[num] = 1;
        }
        rc = 1;
    } else if (d.kind == OMNI_DEC_BUSY) {
        g->busy++;
        heap_push(&g->retries, (retry_t){ omni_mono_ms() + d.retry_ms, (uint32_t)num });
        rc = 1;
    } else if (d.kind == OMNI_DEC_NACK) {
        if (!g->done[num]) {
            g->nacked++;
            if (g->nacked == 1)
                fprintf(stderr, "loadgen: first NACK: message %ld: %.*s\n", num, (int)d.arg_len[1], d.arg[1]);
        }
        g->done[num] = 2;
        rc = 1;
    } else {
        g->stray++;
    }
    omni_frames_close(&fr);
    return rc;
}

/* ---- the second thread: the router's event stream (--redis) ---- */

typedef struct watch {
    const gen_t *g;
    redisContext *rc; /* its own connection: XREAD BLOCK holds it */
    int latency;
    int64_t *assigned_ns;   /* --latency: per message, when its conversation's assignment was read; 0: not yet */
    atomic_uint assigned;   /* messages with assigned_ns set */
    uint32_t resolve_above; /* 0: never resolve */
    char **fifo;            /* assigned conversations not resolved yet, oldest first (a ring) */
    size_t head, n, cap;
    unsigned long long resolved;
    atomic_int stop, failed;
    char last_id[64];
} watch_t;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The field NAME of a stream entry's flat field/value array, or NULL. */
static const char *entry_field(const redisReply *kv, const char *name)
{
    for (size_t i = 0; i + 1 < kv->elements; i += 2)
        if (kv->element[i]->type == REDIS_REPLY_STRING && !strcmp(kv->element[i]->str, name))
            return kv->element[i + 1]->type == REDIS_REPLY_STRING ? kv->element[i + 1]->str : NULL;
    return NULL;
}

static void fifo_push(watch_t *w, const char *cv)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        char **v = omni_calloc(cap, sizeof *v);
        for (size_t i = 0; i < w->n; i++)
            v[i] = w->fifo[(w->head + i) % w->cap];
        free(w->fifo);
        w->fifo = v, w->head = 0, w->cap = cap;
    }
    w->fifo[(w->head + w->n++) % w->cap] = omni_strdup(cv);
}

/* Resolves the oldest assigned conversations while more than resolve_above are open, as an operator
 * would through omni-api (the same script, caller and arguments). */
static int resolve_oldest(watch_t *w)
{
    while (w->resolve_above && w->n > w->resolve_above) {
        char *cv = w->fifo[w->head];
        w->head = (w->head + 1) % w->cap, w->n--;
        char now[24], err[300];
        snprintf(now, sizeof now, "%lld", (long long)omni_wall_ms());
        const char *a[RESOLVE_NARGS] = { [RESOLVE_ARG_PREFIX] = PREFIX, [RESOLVE_ARG_CALLER] = "operator:bench",
                                         [RESOLVE_ARG_CONVERSATION] = cv, [RESOLVE_ARG_WHO] = "bench",
                                         [RESOLVE_ARG_NOW] = now };
        redisReply *r = lua_call(w->rc, LUA_RESOLVE, RESOLVE_NARGS, a, err, sizeof err);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "loadgen: resolving conversation %s: %s\n", cv, r ? r->str : err);
            freeReplyObject(r);
            free(cv);
            return -1;
        }
        w->resolved += !strcmp(r->element[RESOLVE_REPLY_OUTCOME]->str, "resolved");
        freeReplyObject(r);
        free(cv);
    }
    return 0;
}

/* One batch of events: the assignments in it are noted (at the moment XREAD returned them), and for
 * --latency mapped to the message that opened the conversation, with one pipelined LINDEX each. */
static int watch_batch(watch_t *w, const redisReply *entries, int64_t t)
{
    size_t asked = 0;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        snprintf(w->last_id, sizeof w->last_id, "%s", e->element[0]->str);
        const char *type = entry_field(e->element[1], "type"), *cv = entry_field(e->element[1], "conversation");
        if (!type || !cv || strcmp(type, "assigned") != 0)
            continue;
        if (w->resolve_above)
            fifo_push(w, cv);
        if (w->latency) {
            redisAppendCommand(w->rc, "LINDEX " PREFIX "conversation:%s:messages 0", cv);
            asked++;
        }
    }
    for (size_t i = 0; i < asked; i++) {
        redisReply *r;
        if (redisGetReply(w->rc, (void **)&r) != REDIS_OK) {
            fprintf(stderr, "loadgen: redis: %s\n", w->rc->errstr);
            return -1;
        }
        long n = r->type == REDIS_REPLY_STRING ? id_number(w->g, r->str, r->len) : -1;
        if (n >= 0 && !w->assigned_ns[n]) {
            w->assigned_ns[n] = t;
            atomic_fetch_add(&w->assigned, 1);
        }
        freeReplyObject(r);
    }
    return resolve_oldest(w);
}

static void *watch_main(void *arg)
{
    watch_t *w = arg;
    while (!atomic_load(&w->stop)) {
        redisReply *r = redisCommand(w->rc, "XREAD COUNT 1000 BLOCK 100 STREAMS " PREFIX "events %s", w->last_id);
        int64_t t = mono_ns();
        if (!r || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "loadgen: XREAD: %s\n", r ? r->str : w->rc->errstr);
            freeReplyObject(r);
            atomic_store(&w->failed, 1);
            return NULL;
        }
        int rc = 0;
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && rc == 0; i++)
            if (r->element[i]->type == REDIS_REPLY_ARRAY && r->element[i]->elements == 2)
                rc = watch_batch(w, r->element[i]->element[1], t);
        freeReplyObject(r);
        if (rc != 0) {
            atomic_store(&w->failed, 1);
            return NULL;
        }
    }
    return NULL;
}

static redisContext *redis_connect(const char *address)
{
    redis_address_t addr;
    char why[400] = "";
    if (redis_address_parse(address, &addr, why, sizeof why) != 0 || redis_address_resolve(&addr, why, sizeof why) != 0) {
        fprintf(stderr, "loadgen: --redis %s: %s\n", address, why);
        return NULL;
    }
    redisContext *rc = addr.path[0] ? redisConnectUnix(addr.path) : redisConnect(addr.host, addr.port);
    if (!rc || rc->err) {
        fprintf(stderr, "loadgen: redis %s: %s\n", address, rc ? rc->errstr : "out of memory");
        redisFree(rc);
        return NULL;
    }
    return rc;
}

/* Starts following the stream from its current end: events before this run are not ours. */
static int watch_start(watch_t *w, pthread_t *th)
{
    redisReply *r = redisCommand(w->rc, "XREVRANGE " PREFIX "events + - COUNT 1");
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "loadgen: XREVRANGE: %s\n", r && r->type == REDIS_REPLY_ERROR ? r->str : w->rc->errstr);
        freeReplyObject(r);
        return -1;
    }
    snprintf(w->last_id, sizeof w->last_id, "%s", r->elements ? r->element[0]->element[0]->str : "0-0");
    freeReplyObject(r);
    return pthread_create(th, NULL, watch_main, w) == 0 ? 0 : -1;
}

/* --link-only: links the phone of every mixed-workload customer that has one to its email address, as an
 * operator does with `omnictl customer link`, so that its SMS join the conversation its email opened. */
static int link_phones(const gen_t *g, redisContext *rc)
{
    unsigned linked = 0;
    for (uint32_t k = 0; k < (g->pool ? g->pool : g->messages); k++) {
        if ((!g->pool && !mix_new(g, k)) || !mix_linked(g, k))
            continue;
        char email[64], phone[64], a[OMNI_IDENTITY_MAX], b[OMNI_IDENTITY_MAX], now[24], err[300];
        const char *why = NULL;
        mix_email(g, k, email, sizeof email);
        mix_phone(g, k, phone, sizeof phone);
        if (omni_identity_key("email", email, "US", a, sizeof a, &why) != 0 ||
            omni_identity_key("sms", phone, "US", b, sizeof b, &why) != 0) {
            fprintf(stderr, "loadgen: customer %u: %s\n", k, why ? why : "no identity");
            return -1;
        }
        snprintf(now, sizeof now, "%lld", (long long)omni_wall_ms());
        const char *args[LINK_NARGS] = { [LINK_ARG_PREFIX] = PREFIX, [LINK_ARG_A] = a, [LINK_ARG_B] = b,
                                         [LINK_ARG_WHO] = "bench", [LINK_ARG_NOW] = now, [LINK_ARG_NOTE] = "" };
        redisReply *r = lua_call(rc, LUA_LINK, LINK_NARGS, args, err, sizeof err);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "loadgen: linking %s and %s: %s\n", a, b, r ? r->str : err);
            freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
        linked++;
    }
    printf("linked=%u\n", linked);
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted v (n > 0): the smallest value at least q of them do not exceed. */
static double quantile_ms(const int64_t *v, size_t n, double q)
{
    size_t i = (size_t)(q * (double)n + 0.999999);
    return (double)v[i ? i - 1 : 0] / 1e6;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen --endpoint EP --clients C (--messages N --window W | --rate R --duration S)\n"
                    "               [--run TAG] [--customers K] [--deadline SECONDS] [--redis ADDR [--latency]\n"
                    "               [--resolve-above N]] [--mix PERCENT [--lookback K] [--pool K]] [--link-only]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "endpoint", required_argument, 0, 'e' }, { "clients", required_argument, 0, 'c' },
        { "messages", required_argument, 0, 'n' }, { "window", required_argument, 0, 'w' },
        { "run", required_argument, 0, 'r' },      { "customers", required_argument, 0, 'k' },
        { "deadline", required_argument, 0, 'd' }, { "rate", required_argument, 0, 'R' },
        { "duration", required_argument, 0, 'D' }, { "redis", required_argument, 0, 'a' },
        { "latency", no_argument, 0, 'L' },        { "resolve-above", required_argument, 0, 'o' },
        { "mix", required_argument, 0, 'm' },      { "lookback", required_argument, 0, 'b' },
        { "pool", required_argument, 0, 'p' },
        { "link-only", no_argument, 0, 'l' },      { 0, 0, 0, 0 },
    };
    const char *endpoint = NULL, *redis = NULL;
    char run_default[32];
    snprintf(run_default, sizeof run_default, "%d-%lld", (int)getpid(), (long long)omni_wall_ms());
    gen_t g = { .run = run_default, .messages = 10000, .customers = 5000, .lookback = 100 };
    int clients = 4, window = 200, deadline_s = 120, latency = 0, link_only = 0, opt;
    double rate = 0, duration = 0;
    long resolve_above = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'e': endpoint = optarg; break;
        case 'c': clients = atoi(optarg); break;
        case 'n': g.messages = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'w': window = atoi(optarg); break;
        case 'r': g.run = optarg; break;
        case 'k': g.customers = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'd': deadline_s = atoi(optarg); break;
        case 'R': rate = atof(optarg); break;
        case 'D': duration = atof(optarg); break;
        case 'a': redis = optarg; break;
        case 'L': latency = 1; break;
        case 'o': resolve_above = atol(optarg); break;
        case 'm': g.mix = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'b': g.lookback = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'p': g.pool = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'l': link_only = 1; break;
        default: usage();
        }
    }
    int open_loop = rate > 0 || duration > 0;
    if (open_loop) {
        if (rate <= 0 || duration <= 0 || rate * duration > 100000000)
            usage();
        g.messages = (uint32_t)(rate * duration + 0.5);
    }
    if ((!endpoint && !link_only) || clients < 1 || clients > MAX_CLIENTS || window < 1 || g.messages < 1 ||
        g.customers < 1 || deadline_s < 1 || strlen(g.run) > 200 || optind != argc || g.mix > 100 ||
        g.lookback < 1 || resolve_above < 0 || ((latency || resolve_above || link_only) && !redis))
        usage();

    redisContext *rc = NULL;
    if (redis && !(rc = redis_connect(redis)))
        return 2;
    if (link_only) {
        int rc_link = link_phones(&g, rc);
        redisFree(rc);
        return rc_link ? 1 : 0;
    }
    g.done = omni_calloc(g.messages, 1);
    watch_t w = { .g = &g, .rc = rc, .latency = latency, .resolve_above = (uint32_t)resolve_above };
    pthread_t watcher;
    if (latency)
        w.assigned_ns = omni_calloc(g.messages, sizeof *w.assigned_ns);
    if (rc && watch_start(&w, &watcher) != 0)
        return 2;

    void *ctx = zmq_ctx_new();
    void *sock[MAX_CLIENTS];
    zmq_pollitem_t items[MAX_CLIENTS];
    int inflight[MAX_CLIENTS] = { 0 };
    for (int i = 0; i < clients; i++) {
        int zero = 0;
        sock[i] = zmq_socket(ctx, ZMQ_DEALER);
        /* The window is the only bound we want; a high-water mark would make sends block instead. */
        zmq_setsockopt(sock[i], ZMQ_SNDHWM, &zero, sizeof zero);
        zmq_setsockopt(sock[i], ZMQ_RCVHWM, &zero, sizeof zero);
        zmq_setsockopt(sock[i], ZMQ_LINGER, &zero, sizeof zero);
        if (zmq_connect(sock[i], endpoint) != 0) {
            fprintf(stderr, "loadgen: connect %s: %s\n", endpoint, zmq_strerror(errno));
            return 2;
        }
        items[i] = (zmq_pollitem_t){ .socket = sock[i], .events = ZMQ_POLLIN };
    }

    int64_t deadline = omni_mono_ms() + (int64_t)deadline_s * 1000 + (int64_t)(duration * 1000);
    double t0 = now_s(), t1 = t0;
    int64_t start_ns = mono_ns(), max_lag_ns = 0;
    int failed = 0, next_client = 0;
    while (g.acked + g.nacked < g.messages) {
        int64_t now = omni_mono_ms();
        if (now >= deadline) {
            fprintf(stderr, "loadgen: deadline of %d s passed with %u of %u messages answered\n", deadline_s,
                    g.acked + g.nacked, g.messages);
            failed = 1;
            break;
        }
        uint32_t n;
        long wait = (long)(deadline - now);
        if (open_loop) {
            /* every message now due, late or not; the clients in turn, no window */
            int64_t t = mono_ns();
            while (g.next_fresh < g.messages &&
                   start_ns + (int64_t)((double)g.next_fresh * 1e9 / rate) <= t) {
                int64_t lag = t - (start_ns + (int64_t)((double)g.next_fresh * 1e9 / rate));
                if (lag > max_lag_ns)
                    max_lag_ns = lag;
                if (send_msg(&g, sock[next_client], g.next_fresh++) != 0)
                    return 1;
                next_client = (next_client + 1) % clients;
            }
            while (g.retries.n && g.retries.v[0].due <= now) {
                if (send_msg(&g, sock[next_client], heap_pop(&g.retries).n) != 0)
                    return 1;
                next_client = (next_client + 1) % clients;
            }
            if (g.next_fresh < g.messages) {
                int64_t due = start_ns + (int64_t)((double)g.next_fresh * 1e9 / rate);
                long until = (long)((due - mono_ns() + 999999) / 1000000);
                wait = until < wait ? (until < 0 ? 0 : until) : wait;
            }
        } else {
            for (int i = 0; i < clients; i++)
                while (inflight[i] < window && take(&g, now, &n)) {
                    if (send_msg(&g, sock[i], n) != 0)
                        return 1;
                    inflight[i]++;
                }
        }
        if (g.retries.n && g.retries.v[0].due - now < wait)
            wait = (long)(g.retries.v[0].due - now);
        if (zmq_poll(items, clients, wait < 0 ? 0 : wait) < 0 && errno != EINTR) {
            fprintf(stderr, "loadgen: zmq_poll: %s\n", zmq_strerror(errno));
            return 1;
        }
        for (int i = 0; i < clients; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            int got;
            while ((got = recv_answer(&g, sock[i])) >= 0)
                inflight[i] -= got;
        }
        t1 = now_s();
        if (rc && atomic_load(&w.failed)) {
            failed = 1;
            break;
        }
    }
    double secs = t1 - t0 > 1e-9 ? t1 - t0 : 1e-9;
    printf("msgs=%u seconds=%.3f msgs_per_s=%.0f acked=%u busy=%llu nacked=%u", g.messages, secs, g.acked / secs,
           g.acked, (unsigned long long)g.busy, g.nacked);
    /* the routing decision follows the ACK: wait for the last ones, within the deadline */
    while (latency && !failed && atomic_load(&w.assigned) < g.acked && omni_mono_ms() < deadline &&
           !atomic_load(&w.failed))
        usleep(10 * 1000);
    if (rc) { /* stopped before its figures are read: it writes them */
        atomic_store(&w.stop, 1);
        pthread_join(watcher, NULL);
        failed |= atomic_load(&w.failed);
    }
    if (latency) {
        size_t k = 0;
        /* LOADGEN_LATENCIES=FILE: each message's latency too, "index due_ms latency_ms" (to see when the
         * slow ones were due: periodic, in bursts, at an AOF rewrite) */
        const char *dump = getenv("LOADGEN_LATENCIES");
        FILE *df = dump != NULL && *dump ? fopen(dump, "w") : NULL;
        for (uint32_t i = 0; i < g.messages; i++)
            if (w.assigned_ns[i]) {
                int64_t due = open_loop ? start_ns + (int64_t)((double)i * 1e9 / rate) : start_ns;
                w.assigned_ns[k++] = w.assigned_ns[i] - due;
                if (df != NULL)
                    fprintf(df, "%u %.3f %.3f\n", i, (double)(due - start_ns) / 1e6,
                            (double)w.assigned_ns[k - 1] / 1e6);
            }
        if (df != NULL)
            fclose(df);
        qsort(w.assigned_ns, k, sizeof *w.assigned_ns, cmp_i64);
        printf(" assigned=%zu p50_ms=%.1f p99_ms=%.1f p999_ms=%.1f max_ms=%.1f max_send_lag_ms=%.1f", k,
               k ? quantile_ms(w.assigned_ns, k, 0.5) : 0, k ? quantile_ms(w.assigned_ns, k, 0.99) : 0,
               k ? quantile_ms(w.assigned_ns, k, 0.999) : 0, k ? (double)w.assigned_ns[k - 1] / 1e6 : 0,
               (double)max_lag_ns / 1e6);
        if (k < g.acked) {
            fprintf(stderr, "loadgen: %zu of %u messages were not seen assigned by the deadline\n", g.acked - k, g.acked);
            failed = 1;
        }
    }
    if (rc) {
        if (w.resolve_above)
            printf(" resolved=%llu", w.resolved);
        for (size_t i = 0; i < w.n; i++)
            free(w.fifo[(w.head + i) % w.cap]);
        free(w.fifo);
        free(w.assigned_ns);
        redisFree(rc);
    }
    printf("\n");
    if (g.stray)
        fprintf(stderr, "loadgen: %llu answers matched no message of run %s\n", (unsigned long long)g.stray, g.run);
    for (int i = 0; i < clients; i++)
        zmq_close(sock[i]);
    zmq_ctx_term(ctx);
    free(g.done);
    free(g.retries.v);
    return failed || g.acked != g.messages ? 1 : 0;
}
