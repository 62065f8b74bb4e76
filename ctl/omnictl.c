/* omnictl: the operator's command line. Talks to the Redis the router uses; changes go through the
 * same Lua scripts as the router's, so they are atomic and safe while routers run. */
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "embedded.h"
#include "omni/identity.h"
#include "omni/util.h"
#include "sentinel_lookup.h"
#include "scripts.h"
#include "simulate.h"

#define DEFAULT_CONFIG "/etc/omnirouter/omnirouter.yaml"

/* Every command, once: its synopsis, what it does (omnictl COMMAND --help), and what it needs. */
enum { NEEDS_NOTHING, NEEDS_REDIS };
typedef struct command {
    const char *name;
    const char *synopsis; /* the lines after "omnictl [-c FILE] " in the usage, continuation lines indented */
    const char *help;     /* omnictl NAME --help: what it does, its arguments, what it prints */
    int needs;
    int (*run)(ctl_t *c, int argc, char **argv); /* argv[0] is the command's name */
} command_t;

static int run_status(ctl_t *c, int argc, char **argv) { (void)argv; return argc == 1 ? ctl_status(c) : -1; }
static int run_watch(ctl_t *c, int argc, char **argv) { (void)argv; return argc == 1 ? ctl_watch(c) : -1; }
static int run_customer(ctl_t *c, int argc, char **argv) { return ctl_customer(c, argc - 1, argv + 1); }
static int run_conversation(ctl_t *c, int argc, char **argv) { return ctl_conversation(c, argc - 1, argv + 1); }
static int run_agent(ctl_t *c, int argc, char **argv) { return ctl_agent(c, argc - 1, argv + 1); }
static int run_queue(ctl_t *c, int argc, char **argv) { return argc <= 2 ? ctl_queue(c, argc - 1, argv + 1) : -1; }
static int run_explain(ctl_t *c, int argc, char **argv) { return argc == 2 ? ctl_explain(c, argv[1]) : -1; }
static int run_clock(ctl_t *c, int argc, char **argv) { return ctl_clock(c, argc - 1, argv + 1); }
static int run_report(ctl_t *c, int argc, char **argv) { return ctl_report(c, argc - 1, argv + 1); }
static int run_reload(ctl_t *c, int argc, char **argv) { return ctl_reload(c, argc - 1, argv + 1); }
static int run_webhooks(ctl_t *c, int argc, char **argv) { return ctl_webhooks(c, argc - 1, argv + 1); }
static int run_token(ctl_t *c, int argc, char **argv) { return ctl_token(c, argc - 1, argv + 1); }
static int run_keygen(ctl_t *c, int argc, char **argv) { (void)c; return ctl_keygen(argc, argv); }
static int run_simulate(ctl_t *c, int argc, char **argv) { (void)c; return ctl_simulate(argc, argv); }

static const command_t commands[] = {
    { "status", "status                              routers alive, Redis, counters, queues",
      "Prints each live router (its counters, the durability Redis runs with, the configuration version it\n"
      "runs and its last reload; one of this machine stopped in the last seconds, whose entry has not expired\n"
      "yet, is marked stopped and not counted alive), the stored totals, and routing as it stands: held,\n"
      "waiting, unservable.\n",
      NEEDS_REDIS, run_status },
    { "watch", "watch                               follow events (messages stored, links) as they happen",
      "Prints every event of the events stream as it is written (opened, folded, assigned, queued,\n"
      "responded, resolved, presence, sla_breached, link, unlink) until interrupted.\n",
      NEEDS_REDIS, run_watch },
    { "customer",
      "customer show IDENTITY              the customer an identity belongs to\n"
      "  customer link IDENTITY IDENTITY [--by WHO] [--note TEXT]\n"
      "                                      the two identities are one person\n"
      "  customer unlink IDENTITY IDENTITY [--by WHO]\n"
      "                                      undo a link; open conversations go back with their identities\n"
      "  customer tier IDENTITY vip|repeat|new|auto [--by WHO]\n"
      "                                      route the customer as this tier (auto: as the policy says)",
      "show: the customer, its identities, links, tier and conversations. link: the two identities are one\n"
      "person from now on (their open conversations merge into the older). unlink: undoes one link.\n"
      "tier: the customer is routed as vip, repeat or new from its next decision on, whatever its history\n"
      "(an identity never seen becomes a customer); auto gives the tier back to the policy.\n",
      NEEDS_REDIS, run_customer },
    { "conversation",
      "conversation show ID                a conversation, its owner, SLA and messages\n"
      "  conversation respond ID [--by WHO]  record the first response (stops SLA escalation)\n"
      "  conversation resolve ID [--by WHO]  resolve it: its owner's capacity is freed\n"
      "  conversation survey ID [--csat N] [--ces N] [--nps N] [--by WHO]\n"
      "                                      record the customer's survey answer for a resolved conversation",
      "show: status, owner, SLA and messages; of an archived conversation, the archive file it went to\n"
      "(docs/archive.md). respond: records the first response (the SLA is met or\n"
      "breached; no timeout or escalation applies any more). resolve: closes it and frees its owner.\n"
      "survey: CSAT 1..5, CES 1..7, NPS 0..10, any of them, each recorded once (the same score again\n"
      "changes nothing; another is refused, exit 1); counted in the report under the team that resolved it.\n",
      NEEDS_REDIS, run_conversation },
    { "agent",
      "agent presence ID available|away|offline\n"
      "  agent show ID                       presence, load and conversations of an agent",
      "presence: sets an agent's presence (offline starts the grace period for its work). show: its\n"
      "presence, load per channel and the conversations it holds.\n",
      NEEDS_REDIS, run_agent },
    { "queue", "queue [TEAM]                        each team's load and waiting conversations by priority",
      "Each team (or TEAM): what it holds, the work waiting that it can take by priority, the work waiting\n"
      "there that it cannot take and why, and work nobody can ever take, flagged UNSERVABLE.\n",
      NEEDS_REDIS, run_queue },
    { "explain", "explain MESSAGE-ID                  every routing decision for the message's conversation, and why",
      "Every routing decision of the message's conversation: classification, rule, each target with the\n"
      "reasons that held then and the live ones, and the outcome.\n",
      NEEDS_REDIS, run_explain },
    { "report", "report [--json] [--days N | FROM [TO]]\n"
      "                                      the SLA report: first responses in and out of target, mean\n"
      "                                      response time, resolutions, first-contact resolution",
      "Per team and channel, summed over UTC days (the last 7 by default; --days N for the last N, or FROM\n"
      "and TO as YYYY-MM-DD, at most 400 days): first responses recorded, met and breached (\"in SLA\": met\n"
      "of those with a target), their mean time from the conversation's opening, resolutions and how many\n"
      "were resolved by their first assignee (FCR), the surveys' CSAT (share of 4-5), CES (mean) and NPS,\n"
      "then the totals. A first response or a resolution counts\n"
      "on its own day, a breach on the day it was seen, each under the team holding the conversation then, or\n"
      "whose queue it waits in (\"-\": none); --days N or FROM [TO], not both. --json prints {\"from\", \"to\",\n"
      "\"rows\": [...], \"total\"}, each row's counters by name.\n",
      NEEDS_REDIS, run_report },
    { "reload", "reload                              every router on this machine reads its configuration again",
      "Checks the configuration (-c) first: with any error it prints them all and signals nothing. Then\n"
      "sends SIGHUP to each router on this machine using that configuration's Redis and waits for each to\n"
      "answer: \"applied version V\", or \"refused: N errors\" (the router keeps running the previous\n"
      "configuration and logs each error). Routers on other machines are listed, not signalled, and so is\n"
      "a pid that no longer runs omnirouted (a stopped router's entry lasts a few seconds). Exits 1\n"
      "when the configuration has errors, no router was signalled, or a router refused or did not answer\n"
      "in 10 s.\n",
      NEEDS_REDIS, run_reload },
    { "webhooks", "webhooks enable TEAM                a partner endpoint disabled by a 410 (omni-webhooks) is sent to again",
      "enable: a partner endpoint omni-webhooks disabled after a 410 Gone is delivered to again\n"
      "(docs/webhooks.md); omnictl status lists the disabled ones.\n",
      NEEDS_REDIS, run_webhooks },
    { "token",
      "token create agent:ID|partner:TEAM|operator:NAME\n"
      "                                      a bearer token for omni-api, printed once (only its hash is kept)\n"
      "  token list                          tokens: id, when made, whose (never the token)\n"
      "  token revoke ID                     the token stops working at once, on every omni-api",
      "create: a new token for an agent or partner team of the configuration, or any operator name; the\n"
      "token alone on stdout (only its SHA-256 is stored: it cannot be shown again). list: each token's id,\n"
      "when it was made and whose. revoke: the next request carrying it is refused (docs/api.md).\n",
      NEEDS_REDIS, run_token },
    { "keygen",
      "keygen NAME                         a CURVE key pair for OMNI/1 over tcp: NAME.key (secret, 0600),\n"
      "                                      NAME.pub; prints the public key and its fingerprint",
      "Writes NAME.key (the secret key, mode 0600) and NAME.pub, and prints the public key and its\n"
      "fingerprint. Needs no configuration and no Redis.\n",
      NEEDS_NOTHING, run_keygen },
    { "clock", "clock advance DURATION              move the test clock (routers run with OMNIROUTER_TEST_CLOCK=1)",
      "Moves the test clock forward (500ms, 30s, 2m, 1h, 1d). Only routers started with\n"
      "OMNIROUTER_TEST_CLOCK=1 follow it, and omnictl moves it only when it runs with OMNIROUTER_TEST_CLOCK=1\n"
      "too (else exit 2); for tests and demonstrations.\n",
      NEEDS_REDIS, run_clock },
    { "simulate",
      "simulate --config FILE --input FILE [--handle-time D] [--answer-after D] [--trace FILE]\n"
      "                                      replay messages and presence changes through a policy on a\n"
      "                                      scratch Redis, simulated clock; prints where the work went, queue\n"
      "                                      peaks, SLA outcomes, what still waits and why (simulate --help)",
      NULL, NEEDS_NOTHING, run_simulate },
};
enum { N_COMMANDS = sizeof commands / sizeof *commands };

static void usage(FILE *out)
{
    fprintf(out, "usage: omnictl [-c FILE] [-D KEY=VALUE] COMMAND\n\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %s\n", commands[i].synopsis);
    fprintf(out, "\n"
                 "IDENTITY is email:ADDR, phone:NUMBER, twitter:ID, facebook:ID, x-NAME:VALUE, or a bare email\n"
                 "address or phone number. -c names the router's configuration (default " DEFAULT_CONFIG ").\n"
                 "omnictl COMMAND --help explains one command.\n");
}

/* The synopsis's forms without their one-line summaries (cut at the first run of three spaces). */
static void print_forms(FILE *out, const command_t *cmd)
{
    const char *line = cmd->synopsis;
    bool first = true;
    while (*line) {
        size_t len = strcspn(line, "\n"), lead = strspn(line, " ");
        /* a line indented six or more is a summary's continuation; others are "FORM   summary" */
        const char *form = line + lead, *gap = strstr(form, "   ");
        size_t flen = lead >= 6 ? 0 : gap && gap < line + len ? (size_t)(gap - form) : len - lead;
        if (flen > 0) {
            fprintf(out, "%s%.*s\n", first ? "usage: omnictl [-c FILE] " : "       omnictl [-c FILE] ", (int)flen, form);
            first = false;
        }
        line += len + (line[len] == '\n');
    }
}

static void command_help(const command_t *cmd)
{
    print_forms(stdout, cmd);
    printf("\n%s", cmd->help);
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

void ctl_policy_agent(ctl_t *c, const char *id)
{
    const policy_t *p = &c->cfg->policy;
    for (size_t i = 0; i < p->n_agents; i++)
        if (!strcmp(p->agents[i].id, id))
            return;
    /* One a reload removed may still hold work (docs/configuration.md "Reload"): it can be shown, and set
     * offline so that ownership.offline_grace hands its work on. */
    redisReply *r = ctl_cmd(c, "EXISTS %s" KEY_AGENT, c->prefix, id);
    bool known = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (known) {
        fprintf(stderr, "omnictl: agent \"%s\" is not in %s: acting on what Redis holds for it\n", id,
                c->cfg->source ? c->cfg->source : "the configuration");
        return;
    }
    fprintf(stderr, "omnictl: no agent \"%s\" in %s\n", id, c->cfg->source ? c->cfg->source : "the configuration");
    exit(2);
}

void ctl_policy_partner(ctl_t *c, const char *team)
{
    const policy_t *p = &c->cfg->policy;
    for (size_t i = 0; i < p->n_teams; i++)
        if (!strcmp(p->teams[i].name, team)) {
            if (p->teams[i].kind == TEAM_OUTSOURCED)
                return;
            fprintf(stderr, "omnictl: team \"%s\" is in-house: it has no webhook endpoint\n", team);
            exit(2);
        }
    fprintf(stderr, "omnictl: no team \"%s\" in %s\n", team, c->cfg->source ? c->cfg->source : "the configuration");
    exit(2);
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

void ctl_check_text(const char *option, const char *value)
{
    size_t bad = 0, n = strlen(value);
    bool ok = omni_utf8_valid(value, n, &bad);
    for (size_t i = 0; ok && i < n; i++)
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
            ok = false, bad = i;
    if (!ok) {
        /* it is written into Redis and read back as JSON (events, the archive, the API): text only */
        fprintf(stderr, "omnictl: %s: not UTF-8 text without control characters (byte %zu)\n", option, bad);
        exit(2);
    }
}

const char *ctl_actor(const char *by)
{
    if (by) {
        ctl_check_text("--by", by);
        return by;
    }
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

/* Dies if r is an error reply, naming Redis and, when it is the likely cause, the key to look at. */
static void expect_ok(ctl_t *c, redisReply *r, const char *where, const char *key)
{
    if (r->type != REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        return;
    }
    bool auth = !strncmp(r->str, "NOAUTH", 6) || !strncmp(r->str, "WRONGPASS", 9) ||
                strstr(r->str, "invalid password") != NULL;
    const char *look = key && (auth || !strcmp(key, "redis.database")) ? key : NULL;
    char why[600];
    snprintf(why, sizeof why, "redis (%s): %s", where, r->str);
    freeReplyObject(r);
    if (look)
        die("%s (%s in %s)", why, look, c->cfg->source ? c->cfg->source : "the configuration");
    die("%s", why);
}

static void connect_redis(ctl_t *c)
{
    const router_config_t *cfg = c->cfg;
    struct timeval tv = { 5, 0 };
    if (cfg->redis.n_sentinels > 0) { /* the primary, as the first sentinel that answers names it */
        char why[512];
        c->redis = sentinel_connect_primary(cfg->redis.sentinel_addrs, cfg->redis.n_sentinels, cfg->redis.master_name,
                                            cfg->redis.password, 5000, why, sizeof why);
        if (!c->redis)
            die("%s", why);
    } else if (cfg->redis.address && *cfg->redis.address) {
        const redis_address_t *a = &cfg->redis.addr; /* parsed and resolved with the configuration */
        c->redis = a->path[0] ? redisConnectUnixWithTimeout(a->path, tv)
                              : redisConnectWithTimeout(a->host, a->port, tv);
    } else {
        char *sock = embedded_socket_path(cfg->router.state_dir);
        c->redis = redisConnectUnixWithTimeout(sock, tv);
        if (!c->redis || c->redis->err) /* name the socket: it moves with router.state_dir */
            die("cannot reach Redis (embedded, unix:%s in router.state_dir): %s; is omnirouted running with this "
                "configuration?", sock, c->redis ? c->redis->errstr : "out of memory");
        free(sock);
    }
    if (!c->redis || c->redis->err)
        die("cannot reach Redis (%s): %s; is omnirouted running with this configuration?",
            cfg->redis.address && *cfg->redis.address ? cfg->redis.address : "the sentinels' primary",
            c->redis ? c->redis->errstr : "out of memory");
    /* An error here (a wrong or missing password, a database Redis does not have, a Redis still loading its
     * append-only file) would otherwise come back as the answer to every command: read as data, it prints
     * figures that are not there, "no customer", "no router", or spins in watch. Said once, exit 1. */
    const char *where = cfg->redis.n_sentinels > 0 ? "the sentinels' primary"
                        : cfg->redis.address && *cfg->redis.address ? cfg->redis.address : "embedded";
    if (cfg->redis.password)
        expect_ok(c, ctl_cmd(c, "AUTH %s", cfg->redis.password), where, "redis.password");
    if (cfg->redis.database)
        expect_ok(c, ctl_cmd(c, "SELECT %d", cfg->redis.database), where, "redis.database");
    expect_ok(c, ctl_cmd(c, "PING"), where, cfg->redis.password ? NULL : "redis.password");
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
        case 'D': /* a malformed or 65th -D is a bad option: exit 2 before anything is read */
            if (strchr(optarg, '=') == NULL || optarg[0] == '=') {
                fprintf(stderr, "omnictl: -D takes KEY=VALUE, not \"%s\"\n", optarg);
                return 2;
            }
            if (n_overrides == sizeof overrides / sizeof *overrides) {
                fprintf(stderr, "omnictl: at most %zu -D options\n", sizeof overrides / sizeof *overrides);
                return 2;
            }
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
    const command_t *cmd = NULL;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[optind], commands[i].name))
            cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr, "omnictl: unknown command %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    for (int i = 1; cmd->help && i < nargs; i++)
        if (!strcmp(args[i], "--help") || !strcmp(args[i], "-h")) {
            command_help(cmd);
            return 0;
        }
    if (cmd->needs == NEEDS_NOTHING) /* simulate has its own config and scratch Redis: never the live one */
        return cmd->run(NULL, nargs, args);
    config_errors_t errs = { 0 };
    ctl_t c = { .cfg = config_load(path, overrides, n_overrides, &errs) };
    if (!c.cfg) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        config_errors_free(&errs);
        return 1;
    }
    c.prefix = c.cfg->redis.key_prefix;
    connect_redis(&c);
    int rc = cmd->run(&c, nargs, args);
    if (rc < 0) { /* wrong arguments */
        print_forms(stderr, cmd);
        rc = 2;
    }
    redisFree(c.redis);
    config_destroy(&c.cfg);
    return rc;
}
