/* See redis_address.h. */
#include "redis_address.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

int redis_address_host_port(const char *hp, char *host, size_t hostsz, int *port)
{
    const char *colon = strrchr(hp, ':');
    if (!colon || colon == hp || !colon[1])
        return -1;
    long p = 0;
    const char *d = colon + 1;
    while (*d >= '0' && *d <= '9' && p <= 65535)
        p = p * 10 + (*d++ - '0');
    if (*d || p < 1 || p > 65535)
        return -1;
    const char *start = hp, *end = colon;
    if (hp[0] == '[') { /* [IPv6]:port: the brackets must close right before the port */
        if (colon[-1] != ']' || colon - hp < 3)
            return -1;
        start = hp + 1, end = colon - 1;
        if (memchr(start, '[', (size_t)(end - start)) || memchr(start, ']', (size_t)(end - start)))
            return -1;
    } else if (memchr(hp, ':', (size_t)(colon - hp)) || memchr(hp, '[', (size_t)(colon - hp)) ||
               memchr(hp, ']', (size_t)(colon - hp))) {
        return -1; /* an IPv6 address needs its brackets, or the port is ambiguous */
    }
    if ((size_t)(end - start) >= hostsz)
        return -1;
    memcpy(host, start, (size_t)(end - start));
    host[end - start] = '\0';
    *port = (int)p;
    return 0;
}

int redis_address_parse(const char *text, redis_address_t *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    if (strncmp(text, "tcp://", 6) == 0) {
        if (redis_address_host_port(text + 6, out->host, sizeof out->host, &out->port) != 0) {
            snprintf(err, errsz, "\"%s\" is not tcp://HOST:PORT (a host, or an [IPv6] address in brackets, "
                     "then a port 1..65535)", text);
            return -1;
        }
        return 0;
    }
    if (strncmp(text, "unix:", 5) == 0) {
        const char *path = text + 5;
        if (path[0] != '/') {
            snprintf(err, errsz, "a unix: address needs an absolute path, e.g. unix:/run/redis/redis.sock");
            return -1;
        }
        if (strlen(path) > REDIS_ADDRESS_PATH_MAX) {
            snprintf(err, errsz, "the socket path is %zu bytes, more than the %d a unix socket allows", strlen(path),
                     REDIS_ADDRESS_PATH_MAX);
            return -1;
        }
        memcpy(out->path, path, strlen(path) + 1);
        return 0;
    }
    snprintf(err, errsz, "\"%s\" is not a Redis address: write tcp://HOST:PORT or unix:/PATH, or leave it empty "
             "for the embedded Redis", text);
    return -1;
}

int redis_address_resolve(redis_address_t *a, char *err, size_t errsz)
{
    if (a->path[0])
        return 0;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo(a->host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errsz, "cannot resolve the host %s: %s", a->host, rc ? gai_strerror(rc) : "no address");
        return -1;
    }
    char num[INET6_ADDRSTRLEN];
    const void *bin = res->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                                                 : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
    const char *ok = inet_ntop(res->ai_family, bin, num, sizeof num);
    freeaddrinfo(res);
    if (!ok) {
        snprintf(err, errsz, "cannot resolve the host %s: unsupported address family", a->host);
        return -1;
    }
    snprintf(a->host, sizeof a->host, "%s", num);
    return 0;
}

char *redis_address_format(const redis_address_t *a, char *buf, size_t bufsz)
{
    if (a->path[0])
        snprintf(buf, bufsz, "unix:%s", a->path);
    else if (strchr(a->host, ':'))
        snprintf(buf, bufsz, "tcp://[%s]:%d", a->host, a->port);
    else
        snprintf(buf, bufsz, "tcp://%s:%d", a->host, a->port);
    return buf;
}
