/* loadgen: drives an OMNI/1 endpoint (the router, or bench/floor) with C concurrent DEALER clients from
 * one thread, each keeping up to W messages unanswered. A BUSY message is resent, by whichever client
 * has room, once its retry hint has passed; a NACK is final. Prints one machine-readable line:
 *   msgs=N seconds=S msgs_per_s=R acked=A busy=B nacked=K
 * and exits 0 only when every message was ACKed before the deadline.
 *
 * The clock runs from the first send to the last answer, so start-up and connection set-up are not in
 * the figure; the caller proves the endpoint ready first (a one-message run works as that probe). */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "omni/frames.h"
#include "omni/protocol.h"
#include "omni/util.h"

#define MAX_CLIENTS 256

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

static int send_msg(const gen_t *g, void *sock, uint32_t n)
{
    /* Senders spread over the customers by a multiplicative hash, so consecutive messages mostly come
     * from different customers, as they would from a real inbox. */
    uint32_t cust = (uint32_t)((n * 2654435761u) % g->customers);
    char text[256], json[1024];
    int tlen = make_text(g->run, n, text, sizeof text);
    int len = snprintf(json, sizeof json,
                       "{\"id\":\"bench:%s:%u\",\"channel\":\"email\",\"from\":{\"id\":\"c%u@example.com\"},"
                       "\"received_at\":\"2026-11-22T08:00:00Z\",\"text\":\"%.*s\"}",
                       g->run, n, cust, tlen, text);
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

static void usage(void)
{
    fprintf(stderr, "usage: loadgen --endpoint EP --clients C --messages N --window W [--run TAG]\n"
                    "               [--customers K] [--deadline SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "endpoint", required_argument, 0, 'e' }, { "clients", required_argument, 0, 'c' },
        { "messages", required_argument, 0, 'n' }, { "window", required_argument, 0, 'w' },
        { "run", required_argument, 0, 'r' },      { "customers", required_argument, 0, 'k' },
        { "deadline", required_argument, 0, 'd' }, { 0, 0, 0, 0 },
    };
    const char *endpoint = NULL;
    char run_default[32];
    snprintf(run_default, sizeof run_default, "%d-%lld", (int)getpid(), (long long)omni_wall_ms());
    gen_t g = { .run = run_default, .messages = 10000, .customers = 5000 };
    int clients = 4, window = 200, deadline_s = 120, opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'e': endpoint = optarg; break;
        case 'c': clients = atoi(optarg); break;
        case 'n': g.messages = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'w': window = atoi(optarg); break;
        case 'r': g.run = optarg; break;
        case 'k': g.customers = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'd': deadline_s = atoi(optarg); break;
        default: usage();
        }
    }
    if (!endpoint || clients < 1 || clients > MAX_CLIENTS || window < 1 || g.messages < 1 || g.customers < 1 ||
        deadline_s < 1 || strlen(g.run) > 200 || optind != argc)
        usage();
    g.done = omni_calloc(g.messages, 1);

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

    int64_t deadline = omni_mono_ms() + (int64_t)deadline_s * 1000;
    double t0 = now_s(), t1 = t0;
    int failed = 0;
    while (g.acked + g.nacked < g.messages) {
        int64_t now = omni_mono_ms();
        if (now >= deadline) {
            fprintf(stderr, "loadgen: deadline of %d s passed with %u of %u messages answered\n", deadline_s,
                    g.acked + g.nacked, g.messages);
            failed = 1;
            break;
        }
        uint32_t n;
        for (int i = 0; i < clients; i++)
            while (inflight[i] < window && take(&g, now, &n)) {
                if (send_msg(&g, sock[i], n) != 0)
                    return 1;
                inflight[i]++;
            }
        long wait = (long)(deadline - now);
        if (g.retries.n && g.retries.v[0].due - now < wait)
            wait = (long)(g.retries.v[0].due - now);
        if (zmq_poll(items, clients, wait < 0 ? 0 : wait) < 0 && errno != EINTR) {
            fprintf(stderr, "loadgen: zmq_poll: %s\n", zmq_strerror(errno));
            return 1;
        }
        for (int i = 0; i < clients; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            int rc;
            while ((rc = recv_answer(&g, sock[i])) >= 0)
                inflight[i] -= rc;
        }
        t1 = now_s();
    }
    double secs = t1 - t0 > 1e-9 ? t1 - t0 : 1e-9;
    printf("msgs=%u seconds=%.3f msgs_per_s=%.0f acked=%u busy=%llu nacked=%u\n", g.messages, secs,
           g.acked / secs, g.acked, (unsigned long long)g.busy, g.nacked);
    if (g.stray)
        fprintf(stderr, "loadgen: %llu answers matched no message of run %s\n", (unsigned long long)g.stray, g.run);
    for (int i = 0; i < clients; i++)
        zmq_close(sock[i]);
    zmq_ctx_term(ctx);
    free(g.done);
    free(g.retries.v);
    return failed || g.acked != g.messages ? 1 : 0;
}
