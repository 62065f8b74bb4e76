/* omnictl: the operator's command line. Talks to the Redis the router uses; changes go through the
 * same Lua scripts as the router's, so they are atomic and safe while routers run. */
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "embedded.h"
#include "omni/identity.h"
#include "omni/util.h"
#include "scripts.h"
#include "simulate.h"

#define DEFAULT_CONFIG "/etc/omnirouter/omnirouter.yaml"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: omnictl [-c FILE] [-D KEY=VALUE] COMMAND\n"
            "\n"
            "  status                              routers alive, Redis, counters, queues\n"
            "  watch                               follow events (messages stored, links) as they happen\n"
            "  customer show IDENTITY              the customer an identity belongs to\n"
            "  customer link IDENTITY IDENTITY [--by WHO] [--note TEXT]\n"
            "                                      the two identities are one person\n"
            "  customer unlink IDENTITY IDENTITY [--by WHO]\n"
            "                                      undo a link; conversations go back with their identities\n"
            "  conversation show ID                a conversation, its owner, SLA and messages\n"
            "  conversation respond ID [--by WHO]  record the first response (stops SLA escalation)\n"
            "  conversation resolve ID [--by WHO]  resolve it: its owner's capacity is freed\n"
            "  agent presence ID available|away|offline\n"
            "  agent show ID                       presence, load and conversations of an agent\n"
            "  queue [TEAM]                        each team's load and waiting conversations by priority\n"
            "  explain MESSAGE-ID                  every routing decision for the message's conversation, and why\n"
            "  token create agent:ID|partner:TEAM|operator:NAME\n"
            "                                      a bearer token for omni-api, printed once (only its hash is kept)\n"
            "  token list                          tokens: id, when made, whose (never the token)\n"
            "  token revoke ID                     the token stops working at once\n"
            "  keygen NAME                         a CURVE key pair for OMNI/1 over tcp: NAME.key (secret, 0600),\n"
            "                                      NAME.pub; prints the public key and its fingerprint\n"
            "  clock advance DURATION              move the test clock (routers run with OMNIROUTER_TEST_CLOCK=1)\n"
            "  simulate --config FILE --input FILE [--handle-time D] [--answer-after D] [--trace FILE]\n"
            "                                      replay messages and presence changes through a policy on a\n"
            "                                      scratch Redis, simulated clock; prints where the work went, queue\n"
            "                                      peaks, SLA outcomes, what still waits and why (simulate --help)\n"
            "\n"
            "IDENTITY is email:ADDR, phone:NUMBER, twitter:ID, facebook:ID, x-NAME:VALUE, or a bare email\n"
            "address or phone number. -c names the router's configuration (default " DEFAULT_CONFIG ").\n");
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("omnictl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static redisReply *checked(ctl_t *c, redisReply *r)
{
    if (!r)
        die("redis: %s", c->redis->errstr);
    return r;
}

redisReply *ctl_cmd(ctl_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c->redis, fmt, ap);
    va_end(ap);
    return checked(c, r);
}

redisReply *ctl_cmd_argv(ctl_t *c, int argc, const char **argv)
{
    return checked(c, redisCommandArgv(c->redis, argc, argv, NULL));
}

redisReply *ctl_script(ctl_t *c, int script, int argc, const char **argv)
{
    char err[256];
    argv[0] = c->prefix; /* every script's first argument */
    redisReply *r = lua_call(c->redis, script, argc, argv, err, sizeof err);
    if (!r)
        die("redis: %s", err);
    return r;
}

const char *ctl_time(const char *ms, char *buf, size_t bufsz)
{
    if (!ms)
        return "-";
    return omni_rfc3339(strtoll(ms, NULL, 10), buf, bufsz);
}

void ctl_identity(ctl_t *c, const char *arg, char *out, size_t outsz)
{
    const char *why = NULL;
    if (omni_identity_parse_key(arg, c->cfg->identity.default_country, out, outsz, &why) != 0) {
        fprintf(stderr, "omnictl: identity \"%s\": %s\n", arg, why ? why : "not understood");
        exit(2);
    }
}

long long ctl_duration(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 0)
        return -1;
    static const struct { const char *unit; long long ms; } units[] = {
        { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
    };
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (!strcmp(end, units[i].unit))
            return v * units[i].ms;
    return -1;
}

const char *ctl_actor(const char *by)
{
    if (by)
        return by;
    const char *u = getenv("SUDO_USER");
    if (u && *u)
        return u;
    struct passwd *pw = getpwuid(getuid());
    return pw ? pw->pw_name : "unknown";
}

const char *ctl_field(const redisReply *h, const char *field)
{
    if (!h || h->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (strcmp(h->element[i]->str, field) == 0)
            return h->element[i + 1]->str;
    return NULL;
}

static void connect_redis(ctl_t *c)
{
    const router_config_t *cfg = c->cfg;
    struct timeval tv = { 5, 0 };
    if (cfg->redis.address && *cfg->redis.address) {
        const redis_address_t *a = &cfg->redis.addr; /* parsed and resolved with the configuration */
        c->redis = a->path[0] ? redisConnectUnixWithTimeout(a->path, tv)
                              : redisConnectWithTimeout(a->host, a->port, tv);
    } else {
        char *sock = embedded_socket_path(cfg->router.state_dir);
        c->redis = redisConnectUnixWithTimeout(sock, tv);
        free(sock);
    }
    if (!c->redis || c->redis->err)
        die("cannot reach Redis (%s): %s; is omnirouted running with this configuration?",
            cfg->redis.address && *cfg->redis.address ? cfg->redis.address : "embedded",
            c->redis ? c->redis->errstr : "out of memory");
    if (cfg->redis.password)
        freeReplyObject(ctl_cmd(c, "AUTH %s", cfg->redis.password));
    if (cfg->redis.database)
        freeReplyObject(ctl_cmd(c, "SELECT %d", cfg->redis.database));
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = { { "config", required_argument, 0, 'c' },
                                              { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    const char *path = DEFAULT_CONFIG, *overrides[64];
    size_t n_overrides = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+c:D:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'D':
            if (n_overrides < 64)
                overrides[n_overrides++] = optarg;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[optind], "simulate")) /* its own config and its own scratch Redis: never the live one */
        return ctl_simulate(argc - optind, argv + optind);
    if (!strcmp(argv[optind], "keygen")) /* files only: no config, no Redis */
        return ctl_keygen(argc - optind, argv + optind);
    config_errors_t errs = { 0 };
    ctl_t c = { .cfg = config_load(path, overrides, n_overrides, &errs) };
    if (!c.cfg) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        config_errors_free(&errs);
        return 1;
    }
    c.prefix = c.cfg->redis.key_prefix;
    const char *cmd = argv[optind];
    int rc = 2;
    static const char *const commands[] = { "status", "watch", "customer", "conversation", "agent", "queue",
                                            "explain", "clock", "token", NULL };
    int known = 0;
    for (int i = 0; commands[i]; i++)
        known |= !strcmp(cmd, commands[i]);
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;
    if (known) {
        connect_redis(&c);
        if (!strcmp(cmd, "status"))
            rc = ctl_status(&c);
        else if (!strcmp(cmd, "watch"))
            rc = ctl_watch(&c);
        else if (!strcmp(cmd, "customer"))
            rc = ctl_customer(&c, nargs, args);
        else if (!strcmp(cmd, "conversation"))
            rc = ctl_conversation(&c, nargs, args);
        else if (!strcmp(cmd, "agent"))
            rc = ctl_agent(&c, nargs, args);
        else if (!strcmp(cmd, "queue"))
            rc = ctl_queue(&c, nargs, args);
        else if (!strcmp(cmd, "explain") && nargs == 1)
            rc = ctl_explain(&c, args[0]);
        else if (!strcmp(cmd, "clock"))
            rc = ctl_clock(&c, nargs, args);
        else if (!strcmp(cmd, "token"))
            rc = ctl_token(&c, nargs, args);
        else
            usage(stderr);
        redisFree(c.redis);
    } else {
        fprintf(stderr, "omnictl: unknown command %s\n", cmd);
        usage(stderr);
    }
    config_destroy(&c.cfg);
    return rc;
}
