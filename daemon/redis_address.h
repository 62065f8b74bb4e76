/* A Redis address as redis.address writes it, parsed in one place for the router, omnictl and the bench:
 * tcp://HOST:PORT (HOST a name, an IPv4 address or an [IPv6] address in brackets) or unix:/PATH. The host
 * is resolved once, at start-up (redis_address_resolve), so nothing resolves names inside the event loop:
 * hiredis's redisAsyncConnect would call getaddrinfo synchronously on a name. */
#ifndef OMNI_DAEMON_REDIS_ADDRESS_H
#define OMNI_DAEMON_REDIS_ADDRESS_H

#include <stddef.h>

#define REDIS_ADDRESS_HOST_MAX 255 /* a DNS name is at most 253 bytes */
#define REDIS_ADDRESS_PATH_MAX 107 /* sun_path less its NUL */

typedef struct redis_address {
    char host[REDIS_ADDRESS_HOST_MAX + 1]; /* tcp: as written, without [ ]; after resolve: numeric. "" for unix */
    int port;                              /* tcp: 1..65535 */
    char path[REDIS_ADDRESS_PATH_MAX + 1]; /* unix: the absolute socket path; "" for tcp */
} redis_address_t;

/* Splits "HOST:PORT" (after a scheme) into host (the brackets of [IPv6] removed, at most hostsz - 1
 * bytes) and a port 1..65535; the router's tcp:// ingest endpoints use it too. Returns 0 or -1. */
int redis_address_host_port(const char *hp, char *host, size_t hostsz, int *port);

/* Parses text into *out. Returns 0, or -1 with the reason in err (a sentence quoting text). */
int redis_address_parse(const char *text, redis_address_t *out, char *err, size_t errsz);

/* Replaces a tcp host name by the first address it resolves to (numeric, IPv4 or IPv6). Blocks on DNS:
 * only at start-up or in a command-line tool. A unix address is left as it is. Returns 0, or -1 with the
 * reason in err. */
int redis_address_resolve(redis_address_t *a, char *err, size_t errsz);

/* "tcp://10.0.0.5:6379", "tcp://[::1]:6379" or "unix:/run/redis.sock" into buf. Returns buf. */
char *redis_address_format(const redis_address_t *a, char *buf, size_t bufsz);

#endif
