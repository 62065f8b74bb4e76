/* webhookgen: drives omni-sms with Twilio-signed inbound-SMS POSTs over C concurrent HTTP/1.1 keep-alive
 * connections from one thread, one request in flight per connection (as Twilio's senders do). A 503 is
 * sent again after 20 ms; any other answer but 200 fails the run. Prints one machine-readable line:
 *   posts=N seconds=S posts_per_s=R retried=K last=<message id>
 * and exits 0 only when every POST was answered 200 before the deadline. The clock runs from the first
 * send to the last answer; the signature is X-Twilio-Signature over PUBLIC/sms and the sorted parameters,
 * computed with libomni's HMAC, the way the tests compute it in Python. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "omni/secret.h"
#include "omni/util.h"

#define MAX_CONNS 256

typedef struct conn {
    int fd;
    long msg;           /* the message in flight, or -1 */
    char *out;          /* the request */
    size_t out_len, out_off;
    char in[4096];
    size_t in_len;
} conn_t;

static const char *token = "benchtoken", *public_url = "https://bench.example/twilio";
static unsigned run_id;

/* Form-encodes s (space as '+', everything but [A-Za-z0-9._-] as %XX) onto o; returns the end. */
static char *form(char *o, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
            *o++ = (char)c;
        else if (c == ' ')
            *o++ = '+';
        else
            o += sprintf(o, "%%%02X", c);
    }
    return o;
}

static void sid_of(long n, char sid[40])
{
    snprintf(sid, 40, "SM%08x%024lx", run_id, (unsigned long)n);
}

/* The whole HTTP request for message n (caller frees). */
static char *request(long n, int port, size_t *len)
{
    static const char *const words[] = { "hello", "my", "order", "is", "late", "please", "call", "me", "back",
                                         "thanks", "refund", "where", "parcel", "today" };
    char sid[40], from[20], text[200] = "";
    sid_of(n, sid);
    snprintf(from, sizeof from, "+1415555%04lu", (unsigned long)((n * 2654435761u) % 5000));
    uint64_t r = (uint64_t)n * 6364136223846793005ULL + run_id;
    for (int w = 0; w < 12; w++, r = r * 6364136223846793005ULL + 1442695040888963407ULL)
        strcat(strcat(text, w ? " " : ""), words[(r >> 33) % (sizeof words / sizeof words[0])]);
    /* Names in sorted order, all distinct: the signed string is the URL and name+value in this order. */
    const char *const p[][2] = { { "AccountSid", "AC0123456789abcdef0123456789abcdef" }, { "ApiVersion", "2010-04-01" },
                                 { "Body", text }, { "From", from }, { "MessageSid", sid }, { "NumMedia", "0" },
                                 { "NumSegments", "1" }, { "SmsMessageSid", sid }, { "SmsSid", sid },
                                 { "SmsStatus", "received" }, { "To", "+18005551212" }, { "ToCountry", "US" } };
    char signed_[2048], body[2048], *s = signed_, *b = body;
    s += sprintf(s, "%s/sms", public_url);
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        s += sprintf(s, "%s%s", p[i][0], p[i][1]);
        b += sprintf(b, "%s%s=", i ? "&" : "", p[i][0]);
        b = form(b, p[i][1]);
    }
    *b = '\0';
    unsigned char mac[20];
    char sig[32];
    omni_hmac_sha1(token, strlen(token), signed_, (size_t)(s - signed_), mac);
    omni_base64_encode(mac, sizeof mac, sig);
    char *req = omni_asprintf("POST /sms HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                              "X-Twilio-Signature: %s\r\nContent-Length: %zu\r\n\r\n%s", port, sig, strlen(body), body);
    *len = strlen(req);
    return req;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        fprintf(stderr, "webhookgen: connect 127.0.0.1:%d: %s\n", port, strerror(errno));
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* A complete response in c->in: its status, and the bytes it took; 0 when incomplete. */
static size_t response(conn_t *c, int *status)
{
    c->in[c->in_len < sizeof c->in ? c->in_len : sizeof c->in - 1] = '\0';
    char *end = strstr(c->in, "\r\n\r\n");
    if (end == NULL)
        return 0;
    *status = atoi(c->in + 9);
    size_t body = 0;
    for (char *h = strstr(c->in, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
        if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
            body = strtoul(h + 17, NULL, 10);
    size_t total = (size_t)(end + 4 - c->in) + body;
    return c->in_len >= total ? total : 0;
}

int main(int argc, char **argv)
{
    int port = 0, nconns = 16, deadline_s = 120;
    long n = 10000;
    static const struct option opts[] = { { "port", 1, 0, 'p' }, { "posts", 1, 0, 'n' }, { "connections", 1, 0, 'c' },
                                           { "run", 1, 0, 'r' }, { "token", 1, 0, 't' }, { "public", 1, 0, 'u' },
                                           { "deadline", 1, 0, 'd' }, { 0, 0, 0, 0 } };
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (o == 'p') port = atoi(optarg);
        else if (o == 'n') n = atol(optarg);
        else if (o == 'c') nconns = atoi(optarg);
        else if (o == 'r') for (const char *s = optarg; *s; s++) run_id = run_id * 31 + (unsigned char)*s;
        else if (o == 't') token = optarg;
        else if (o == 'u') public_url = optarg;
        else if (o == 'd') deadline_s = atoi(optarg);
        else return 2;
    }
    if (port <= 0 || n <= 0 || nconns < 1 || nconns > MAX_CONNS) {
        fprintf(stderr, "usage: webhookgen --port P [--posts N] [--connections C<=%d] [--run ID] [--token T] "
                        "[--public URL] [--deadline S]\n", MAX_CONNS);
        return 2;
    }
    conn_t cs[MAX_CONNS];
    long *retry = omni_malloc((size_t)n * sizeof *retry), nretry = 0, next = 0, answered = 0, retried = 0;
    int64_t *retry_at = omni_malloc((size_t)n * sizeof *retry_at);
    for (int i = 0; i < nconns; i++)
        cs[i] = (conn_t){ .fd = dial(port), .msg = -1 };
    int64_t t0 = omni_mono_ms(), stop_at = t0 + deadline_s * 1000LL;
    struct pollfd pf[MAX_CONNS];
    while (answered < n) {
        int64_t now = omni_mono_ms();
        if (now > stop_at) {
            fprintf(stderr, "webhookgen: %ld of %ld answered after %d s\n", answered, n, deadline_s);
            return 1;
        }
        for (int i = 0; i < nconns; i++) {
            conn_t *c = &cs[i];
            if (c->msg < 0) { /* idle: a retry that is due, else the next message */
                if (nretry > 0 && retry_at[0] <= now) {
                    c->msg = retry[0];
                    memmove(retry, retry + 1, (size_t)(--nretry) * sizeof *retry);
                    memmove(retry_at, retry_at + 1, (size_t)nretry * sizeof *retry_at);
                } else if (next < n) {
                    c->msg = next++;
                }
                if (c->msg >= 0) {
                    free(c->out);
                    c->out = request(c->msg, port, &c->out_len);
                    c->out_off = c->in_len = 0;
                }
            }
            pf[i] = (struct pollfd){ c->fd, (short)(c->msg < 0 ? 0 : c->out_off < c->out_len ? POLLOUT : POLLIN), 0 };
        }
        if (poll(pf, (nfds_t)nconns, 20) < 0 && errno != EINTR)
            return 1;
        for (int i = 0; i < nconns; i++) {
            conn_t *c = &cs[i];
            if (pf[i].revents & POLLOUT) {
                ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (w > 0)
                    c->out_off += (size_t)w;
            } else if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = recv(c->fd, c->in + c->in_len, sizeof c->in - 1 - c->in_len, 0);
                int status = 0;
                if (r <= 0) { /* closed: send the message again on a new connection */
                    close(c->fd);
                    c->fd = dial(port);
                    c->out_off = c->in_len = 0;
                    continue;
                }
                c->in_len += (size_t)r;
                if (response(c, &status) == 0)
                    continue;
                if (status == 200) {
                    answered++;
                } else if (status == 503) {
                    retried++;
                    retry[nretry] = c->msg;
                    retry_at[nretry++] = omni_mono_ms() + 20;
                } else {
                    fprintf(stderr, "webhookgen: message %ld answered %d:\n%s\n", c->msg, status, c->in);
                    return 1;
                }
                c->msg = -1;
            }
        }
    }
    double secs = (double)(omni_mono_ms() - t0) / 1000.0;
    char last[40];
    sid_of(n - 1, last);
    printf("posts=%ld seconds=%.3f posts_per_s=%.0f retried=%ld last=sms:%s\n", n, secs, (double)n / secs, retried,
           last);
    for (int i = 0; i < nconns; i++) {
        close(cs[i].fd);
        free(cs[i].out);
    }
    free(retry);
    free(retry_at);
    return 0;
}
