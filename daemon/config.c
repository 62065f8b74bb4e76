/* omnirouted's keys: the one table every value, default, bound and check lives in, plus what only makes
 * sense once everything is read (paths resolved against the file and state_dir). The machinery that
 * reads YAML against a table is in config_schema.c; docs/configuration.md is config_print_reference(). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "config_schema.h"
#include "embedded.h"
#include "omni/curve.h"
#include "omni/identity.h"
#include "omni/secret.h"
#include "redis_address.h"
#include "omni/log.h"
#include "omni/metrics.h"
#include "omni/util.h"

/* Longest path a unix socket (ipc:// endpoint, unix: address) can bind or connect to. */
#define UNIX_PATH_MAX_LEN (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)


#define CONFIG_FILE_MAX (16 * 1024 * 1024) /* a policy of thousands of agents is far below this */

/* "HOST:PORT" after a scheme: a host (a name, an address, [IPv6], or * to bind every interface) and a
 * port 1..65535. Returns NULL or the reason in buf. */
static const char *check_host_port(const char *value, const char *hp, const char *form, char *buf, size_t bufsz)
{
    char host[REDIS_ADDRESS_HOST_MAX + 1];
    int port;
    if (redis_address_host_port(hp, host, sizeof host, &port) != 0) {
        snprintf(buf, bufsz, "\"%s\" is not %s (a host, then a port 1..65535)", value, form);
        return buf;
    }
    return NULL;
}

static const char *check_endpoint(const char *value, char *buf, size_t bufsz)
{
    if (strncmp(value, "ipc://", 6) == 0)
        return value[6] ? NULL : "an ipc:// endpoint needs a path, e.g. ipc://omnirouter-ingest.sock";
    if (strncmp(value, "tcp://", 6) == 0)
        return check_host_port(value, value + 6, "tcp://HOST:PORT", buf, bufsz);
    snprintf(buf, bufsz, "\"%s\" is not an endpoint: write ipc://PATH or tcp://HOST:PORT", value);
    return buf;
}

const char *config_check_redis_address(const char *value, char *buf, size_t bufsz)
{
    redis_address_t addr;
    return redis_address_parse(value, &addr, buf, bufsz) == 0 ? NULL : buf;
}

const char *config_check_key_prefix(const char *value, char *buf, size_t bufsz)
{
    (void)buf;
    (void)bufsz;
    if (strlen(value) > 64)
        return "is longer than 64 bytes; every key the router writes carries it";
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return "must not contain spaces or control characters (keys are typed in redis-cli)";
    return NULL;
}

void config_sentinels_resolve(char *const *sentinels, size_t n, const char *master_name, bool address_written,
                              redis_address_t **addrs, const cfg_where_t *w, config_errors_t *errs)
{
    /* CONFIG_SENTINEL_KEYS declares redis.master_name right after redis.sentinels: its where is w[1] */
    const cfg_where_t *w_name = &w[1];
    *addrs = NULL;
    if (n == 0) {
        if (master_name && !w_name->bad) /* else redis.address or the embedded Redis is used, silently */
            cfg_error_at(errs, w_name, "redis.master_name", "is set but redis.sentinels is not: the master name is "
                         "only asked of sentinels; list them (redis.sentinels: [HOST:PORT, ...]) or remove it");
        return;
    }
    *addrs = omni_calloc(n, sizeof **addrs); /* resolved here, once, like redis.address: never in a loop */
    for (size_t i = 0; i < n; i++) {
        char why[400], *text = omni_asprintf("tcp://%s", sentinels[i]);
        if (sentinels[i][0] && redis_address_parse(text, &(*addrs)[i], why, sizeof why) != 0)
            snprintf(why, sizeof why, "\"%.200s\" is not HOST:PORT (a host, or an [IPv6] address in brackets, then "
                     "a port 1..65535), e.g. 127.0.0.1:26379%s", sentinels[i],
                     strstr(sentinels[i], "://") ? "; without a scheme: sentinels are always reached over tcp" : "");
        else if (!sentinels[i][0] || redis_address_resolve(&(*addrs)[i], why, sizeof why) == 0)
            why[0] = 0;
        if (why[0]) {
            char *key = omni_asprintf("redis.sentinels[%zu]", i);
            cfg_error_key(errs, w, key, "%s", why);
            free(key);
        }
        free(text);
    }
    if (!master_name && !w_name->bad) /* a master_name of the wrong type has its own error already */
        cfg_error_at(errs, w, "redis.sentinels", "needs redis.master_name (the name the sentinels monitor)");
    if (address_written)
        cfg_error_at(errs, w, "redis.sentinels", "redis.address is set too: name one Redis, or sentinels");
}

static const char *check_queue(const char *value, char *buf, size_t bufsz)
{
    size_t len = strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_-");
    if (value[len] == '\0' && len <= 64)
        return NULL;
    snprintf(buf, bufsz, "\"%s\" is not a queue name: 1..64 of a-z, 0-9, _ and -", value);
    return buf;
}

/* The socket files' owner and group must exist here, so that -t finds what the bind would refuse. */
static const char *check_user(const char *value, char *buf, size_t bufsz)
{
    if (getpwnam(value) != NULL)
        return NULL;
    snprintf(buf, bufsz, "no user named %s", value);
    return buf;
}

static const char *check_group(const char *value, char *buf, size_t bufsz)
{
    if (getgrnam(value) != NULL)
        return NULL;
    snprintf(buf, bufsz, "no group named %s", value);
    return buf;
}

static const char *check_mode(const char *value, char *buf, size_t bufsz)
{
    char *end;
    long mode = strtol(value, &end, 8);
    if (value[0] == '0' && strlen(value) == 4 && *end == '\0' && mode >= 0 && mode <= 0777)
        return NULL;
    snprintf(buf, bufsz, "\"%s\" is not a file mode: four octal digits such as 0660 (no setuid, setgid or sticky "
             "bits)", value);
    return buf;
}

/* An entry of router.curve.allowed_keys: a Z85 public key, or a path (checked when the router starts:
 * the file may be readable by the router only). */
static const char *check_allowed_key(const char *value, char *buf, size_t bufsz)
{
    if (omni_curve_is_key(value) || (strlen(value) != OMNI_CURVE_Z85_LEN && value[0] != '\0'))
        return NULL;
    snprintf(buf, bufsz, "\"%s\" is 40 characters but not a Z85 CURVE key (or name a .pub file or a directory of "
             "them)", value);
    return buf;
}

static void router_init(void *obj)
{
    /* Message limits are libomni's, so connectors and the router agree by default. */
    omni_limits_default(&((router_config_t *)obj)->limits);
}

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const durabilities[] = { "strict", "relaxed", NULL }; /* REDIS_DURABILITY_* */

#define OFF(field) offsetof(router_config_t, field)

static const cfg_key_t router_keys[] = {
    { .path = "router.ingest", .type = CFG_STRLIST, .offset = OFF(router.ingest), .count_offset = OFF(router.n_ingest),
      .min = 1, .max = 64, .def = "[ipc://omnirouter-ingest.sock]", .check = check_endpoint, .flags = CFG_UNIQUE | CFG_RESTART,
      .doc = "Endpoints the router binds for connectors: ipc://PATH or tcp://HOST:PORT. A relative ipc path "
             "is inside router.state_dir (ipc://omnirouter-ingest.sock is STATE_DIR/omnirouter-ingest.sock). "
             "tcp:// needs router.curve or router.insecure_tcp." },
    { .path = "router.state_dir", .flags = CFG_RESTART, .type = CFG_STRING, .offset = OFF(router.state_dir), .def = "/var/lib/omnirouter",
      .doc = "Directory for the embedded Redis and ipc sockets. A relative path is relative to the config "
             "file's directory (to the working directory when given on the command line)." },
    { .path = "router.log_level", .type = CFG_ENUM, .offset = OFF(router.log_level), .def = "info",
      .names = log_levels, .parse = omni_log_level_parse,
      .doc = "Least important level logged: debug shows every message and decision." },
    { .path = "router.metrics_listen", .type = CFG_STRING, .offset = OFF(router.metrics_listen),
      .flags = CFG_NULLABLE | CFG_RESTART, .check = omni_metrics_listen_check,
      .doc = "Address of GET /metrics in the Prometheus text format, e.g. 127.0.0.1:9464 (numeric host; "
             ":9464 for every address); empty: no metrics. docs/operations.md lists them." },
    { .path = "router.tick_ms", .flags = CFG_RESTART, .type = CFG_DURATION, .offset = OFF(router.tick_ms), .min = 1, .max = 1000,
      .def = "100", .unit_ms = 1,
      .doc = "Period of the cron tick that checks timeouts, retries, reconnects and queues." },
    { .path = "router.max_inflight", .type = CFG_INT, .offset = OFF(router.max_inflight), .min = 1,
      .max = 1000000, .def = "10000",
      .doc = "Messages received but not yet stored in Redis; beyond it new messages get BUSY, so memory "
             "stays bounded while Redis is slow or down." },
    { .path = "router.busy_retry_ms", .type = CFG_DURATION, .offset = OFF(router.busy_retry_ms), .min = 1,
      .max = 600000, .def = "1000", .unit_ms = 1,
      .doc = "Retry hint sent with BUSY: how long a connector waits before resending." },
    { .path = "router.peer_violation_limit", .flags = CFG_RESTART, .type = CFG_INT, .offset = OFF(router.peer_violation_limit),
      .min = 1, .max = 1000, .def = "10",
      .doc = "Protocol violations (frames that break OMNI/1) a connector may make before it is dropped." },
    { .path = "router.peer_ban_s", .flags = CFG_RESTART, .type = CFG_DURATION, .offset = OFF(router.peer_ban_s), .min = 0,
      .max = 86400, .def = "60", .unit_ms = 1000,
      .doc = "How long a dropped connector's frames are ignored; 0 forgets it at once." },
    { .path = "router.curve.secret_key_file", .type = CFG_STRING, .offset = OFF(router.curve.secret_key_file),
      .flags = CFG_NULLABLE | CFG_RESTART,
      .doc = "The router's CURVE secret key (a file from `omnictl keygen`, mode 0600; never the key itself). "
             "Set: every tcp:// endpoint encrypts and admits only router.curve.allowed_keys. A relative path is "
             "relative to the config file's directory." },
    { .path = "router.curve.allowed_keys", .type = CFG_STRLIST, .offset = OFF(router.curve.allowed_keys),
      .count_offset = OFF(router.curve.n_allowed_keys), .max = 100000, .check = check_allowed_key,
      .flags = CFG_UNIQUE | CFG_RESTART,
      .doc = "Connectors admitted over tcp://: each entry a public key (40 Z85 characters), a .pub file, or a "
             "directory whose *.pub files are read. Read when the router starts." },
    { .path = "router.insecure_tcp", .flags = CFG_RESTART, .type = CFG_BOOL, .offset = OFF(router.insecure_tcp), .def = "false",
      .doc = "Allow tcp:// endpoints without CURVE: anyone who can reach the port can submit, and messages "
             "cross the network in clear. Without it, such an endpoint is a config error." },
    { .path = "router.ipc_mode", .flags = CFG_RESTART, .type = CFG_STRING, .offset = OFF(router.ipc_mode), .def = "0660",
      .check = check_mode,
      .doc = "Mode of the ipc:// socket files: over ipc, file permissions are the only access control, so "
             "only the owner and group may connect by default." },
    { .path = "router.ipc_owner", .type = CFG_STRING, .offset = OFF(router.ipc_owner), .flags = CFG_NULLABLE | CFG_RESTART,
      .check = check_user,
      .doc = "User the ipc:// socket files are given (changing it needs root); empty: the router's." },
    { .path = "router.ipc_group", .type = CFG_STRING, .offset = OFF(router.ipc_group), .flags = CFG_NULLABLE | CFG_RESTART,
      .check = check_group,
      .doc = "Group the ipc:// socket files are given, e.g. the group connectors run in; empty: the router's." },

    { .path = "redis.address", .type = CFG_STRING, .offset = OFF(redis.address), .flags = CFG_NULLABLE | CFG_RESTART,
      .check = config_check_redis_address,
      .doc = "The Redis to use: tcp://HOST:PORT (a name, an IPv4 address or an [IPv6] address in brackets) or "
             "unix:/PATH. A name is resolved once, when the configuration is read (a name that does not resolve "
             "is an error), never while the router runs. Empty: omnirouted runs and supervises its own "
             "redis-server on a unix socket in STATE_DIR/redis." },
    { .path = "redis.durability", .flags = CFG_RESTART, .type = CFG_ENUM, .offset = OFF(redis.durability), .def = "strict",
      .names = durabilities,
      .doc = "strict: on every connection the router checks (CONFIG GET) that Redis runs with appendonly yes "
             "and appendfsync always, and until it has seen so it answers every message BUSY, never ACK. "
             "relaxed: it ACKs on whatever Redis is configured with (a warning at start, shown by omnictl "
             "status); an ACKed message may then be lost when Redis dies (docs/redis.md)." },
    { .path = "redis.password", .type = CFG_STRING, .offset = OFF(redis.password), .flags = CFG_NULLABLE | CFG_RESTART,
      .doc = "Sent with AUTH after connecting; empty: no AUTH. Keep the file readable by the router only." },
    { .path = "redis.database", .flags = CFG_RESTART, .type = CFG_INT, .offset = OFF(redis.database), .min = 0, .max = 15, .def = "0",
      .doc = "Database number SELECTed after connecting." },
    { .path = "redis.key_prefix", .flags = CFG_RESTART, .type = CFG_STRING, .offset = OFF(redis.key_prefix), .def = "omni:",
      .check = config_check_key_prefix,
      .doc = "Every key the router writes starts with it, so several deployments can share one Redis." },
    { .path = "redis.timeout_ms", .flags = CFG_RESTART, .type = CFG_DURATION, .offset = OFF(redis.timeout_ms), .min = 100,
      .max = 600000, .def = "5000", .unit_ms = 1,
      .doc = "A command unanswered this long drops the connection (and the router reconnects). Must be above "
             "redis.wait_timeout_ms." },
    { .path = "redis.reconnect_ms", .flags = CFG_RESTART, .type = CFG_DURATION, .offset = OFF(redis.reconnect_ms), .min = 10,
      .max = 60000, .def = "200", .unit_ms = 1,
      .doc = "First delay before reconnecting; it doubles after each failure up to 5 s." },
    { .path = "redis.connections", .flags = CFG_RESTART, .type = CFG_INT, .offset = OFF(redis.connections), .min = 1, .max = 8,
      .def = "4",
      .doc = "Connections the router keeps to Redis. Redis fsyncs once per turn of its loop and reads about "
             "16 KiB per connection per turn, so more put more messages behind each fsync." },
    { .path = "redis.server", .flags = CFG_RESTART, .type = CFG_STRING, .offset = OFF(redis.server), .def = "redis-server",
      .doc = "The redis-server binary the embedded Redis runs, looked up in PATH unless it holds a slash; one that "
             "cannot be run is an error when the embedded Redis is used." },
    CONFIG_SENTINEL_KEYS(router_config_t, CFG_RESTART),
    { .path = "redis.wait_replicas", .flags = CFG_RESTART, .type = CFG_INT, .offset = OFF(redis.wait_replicas), .min = 0,
      .max = 16, .def = "0",
      .doc = "ACK a message only after WAIT confirmed this many replicas have it (pipelined: the loop never "
             "waits; with redis.connections 2 or more the router's other work goes on a connection no WAIT "
             "holds up); fewer within redis.wait_timeout_ms: BUSY, at once for new messages until a WAIT "
             "succeeds again, and the connector resends. With 1 or more, and min-replicas-to-write on the "
             "primary, an ACKed message survives the loss of the primary; with a single replica, any one Redis "
             "down means BUSY (docs/operations.md recommends two replicas). Needs Redis with replicas: an error "
             "with the embedded Redis." },
    { .path = "redis.wait_timeout_ms", .flags = CFG_RESTART, .type = CFG_DURATION, .offset = OFF(redis.wait_timeout_ms),
      .min = 10, .max = 60000, .def = "1000", .unit_ms = 1,
      .doc = "How long WAIT waits for redis.wait_replicas; below redis.timeout_ms." },

    { .path = "limits.message_bytes", .type = CFG_SIZE, .offset = OFF(limits.message_bytes), .min = 1024,
      .max = 16777216, .doc = "Largest message frame (the whole JSON) accepted; larger ones are NACKed. A frame over four "
                              "times it plus 64 KiB is cut by ZeroMQ: the connection is dropped, nothing is answered "
                              "(that cap is set at start: a reload changes the NACK limit, not the cap)." },
    { .path = "limits.text_bytes", .type = CFG_SIZE, .offset = OFF(limits.text_bytes), .min = 64,
      .max = 16777216, .doc = "Largest \"text\" (the body) accepted." },
    { .path = "limits.field_bytes", .type = CFG_SIZE, .offset = OFF(limits.field_bytes), .min = 256,
      .max = 1048576, .doc = "Largest other string: subject, thread, names, urls, meta values." },
    { .path = "limits.attachments", .type = CFG_COUNT, .offset = OFF(limits.attachments), .min = 0, .max = 1024,
      .doc = "Most entries in \"attachments\"; 0 refuses messages with attachments." },
    { .path = "limits.meta_bytes", .type = CFG_SIZE, .offset = OFF(limits.meta_bytes), .min = 64,
      .max = 16777216, .doc = "Largest \"meta\" object, serialized compactly." },
    { .path = "limits.depth", .type = CFG_COUNT, .offset = OFF(limits.depth), .min = 1, .max = 64,
      .doc = "Deepest JSON nesting inside \"meta\"." },

    { .path = "identity.default_country", .type = CFG_STRING, .offset = OFF(identity.default_country),
      .flags = CFG_NULLABLE, .check = omni_country_check,
      .doc = "ISO 3166 alpha-2 country (e.g. US; any case) in which phone numbers written without +country code "
             "are read, for messages whose connector sent them as written (a connector with its own "
             "default_country sends E.164 already). Checked by libphonenumber like every connector's: UK is "
             "refused (did you mean GB?). Empty: such numbers are refused as identities." },

    { .path = "conversations.default_queue", .type = CFG_STRING, .offset = OFF(conversations.default_queue),
      .def = "default", .check = check_queue,
      .doc = "Queue new conversations join (1..64 of a-z, 0-9, _ and -)." },

    /* Retention (docs/archive.md): what stops Redis growing with every message. */
    { .path = "retention.dedup", .type = CFG_DURATION, .offset = OFF(retention.dedup_s), .min = 1, .max = 315360000,
      .def = "48h", .unit_ms = 1000,
      .doc = "How long a message id is remembered for deduplication, counted from when its message was stored. A "
             "resend of the id while its message is still in Redis, or within this time, is a duplicate (ACKed, not "
             "stored); one arriving later is stored as a new message. A message archived before this time is up "
             "leaves an omni:seen:<id> marker for the rest of it, expired by Redis's own clock (about 56 bytes, "
             "docs/redis.md \"Memory\"). Keep it above the longest time a connector may hold a message unanswered." },
    { .path = "retention.resolved", .type = CFG_DURATION, .offset = OFF(retention.resolved_s), .min = 1,
      .max = 315360000, .def = "168h", .unit_ms = 1000,
      .doc = "How long a resolved conversation (its messages and decisions, and the conversations merged into "
             "it) stays in Redis before it is written to the archive and deleted. Open conversations stay." },
    { .path = "retention.tombstone", .type = CFG_DURATION, .offset = OFF(retention.tombstone_s), .min = 0,
      .max = 315360000, .def = "2160h", .unit_ms = 1000,
      .doc = "How long Redis remembers which archive file an archived conversation went to (omnictl "
             "conversation show says it); 0: not at all (omnictl then searches retention.archive_dir)." },
    { .path = "retention.archive_dir", .type = CFG_STRING, .offset = OFF(retention.archive_dir),
      .flags = CFG_NULLABLE | CFG_RESTART,
      .doc = "Directory of the archive: one JSON-lines file per UTC day, YYYY-MM-DD.jsonl, each record fsynced "
             "before its conversation leaves Redis. Routers sharing one Redis should share it. A relative path "
             "is relative to the config file's directory. Empty: STATE_DIR/archive." },

    /* The hybrid-staffing policy (policy.h): element tables in policy_config.c, semantics in docs/routing.md. */
    { .path = "calendars", .type = CFG_OBJLIST, .offset = OFF(policy.calendars),
      .count_offset = OFF(policy.n_calendars), .max = 256, .sub = &policy_calendar_table,
      .doc = "Business calendars: a time zone, weekly opening hours and holidays, named by teams, conditions and "
             "SLA targets." },
    { .path = "teams", .type = CFG_OBJLIST, .offset = OFF(policy.teams), .count_offset = OFF(policy.n_teams),
      .max = 1024, .sub = &policy_team_table,
      .doc = "Teams: in-house (our staff) or outsourced (a partner, bound by its contract)." },
    { .path = "agents", .type = CFG_OBJLIST, .offset = OFF(policy.agents), .count_offset = OFF(policy.n_agents),
      .max = 100000, .sub = &policy_agent_table,
      .doc = "The people who take work: their teams, skills, languages and capacity per channel." },
    { .path = "classification.rules", .type = CFG_OBJLIST, .offset = OFF(policy.classify),
      .count_offset = OFF(policy.n_classify), .max = 1024, .sub = &policy_classify_table,
      .doc = "Rules setting a conversation's category, priority and required skills, looked at in order." },
    { .path = "classification.default_category", .type = CFG_STRING, .offset = OFF(policy.default_category),
      .def = "general", .check = policy_check_name, .doc = "Category of work no rule gave one." },
    { .path = "classification.default_priority", .type = CFG_STRING, .offset = OFF(policy.default_priority),
      .def = "normal", .check = policy_check_priority, .doc = "Priority of work no rule gave one." },
    { .path = "routing.rules", .type = CFG_OBJLIST, .offset = OFF(policy.routes), .count_offset = OFF(policy.n_routes),
      .max = 1024, .sub = &policy_route_table,
      .doc = "Which teams new work goes to, first matching rule wins. None: new work joins "
             "conversations.default_queue. Some: the last must have no `when` (the catch-all)." },
    { .path = "sla.targets", .type = CFG_OBJLIST, .offset = OFF(policy.sla), .count_offset = OFF(policy.n_sla),
      .max = 1024, .sub = &policy_sla_table,
      .doc = "First-response targets, first matching wins; work no target matches has no SLA clock." },
    { .path = "sla.escalate_at", .type = CFG_INT, .offset = OFF(policy.sla_escalate_pct), .min = 1, .max = 100,
      .def = "80", .doc = "Percent of the target used up at which work moves on to the rule's next target." },
    { .path = "ownership.offline_grace", .type = CFG_DURATION, .offset = OFF(policy.offline_grace_ms), .min = 0,
      .max = 604800000, .def = "15m", .unit_ms = 1,
      .doc = "An owner offline this long loses their conversations back to routing; 0: at once." },
    { .path = "ownership.prefer_previous_owner", .type = CFG_BOOL, .offset = OFF(policy.prefer_previous_owner),
      .def = "true", .doc = "A returning customer's new conversation goes to the agent who last helped them when "
                            "that agent can take it." },
    { .path = "queues.aging_every", .type = CFG_DURATION, .offset = OFF(policy.aging_every_ms), .min = 0,
      .max = 604800000, .def = "10m", .unit_ms = 1,
      .doc = "Waiting work gains one priority level per this much waiting, so low priority is never starved; "
             "0: no aging." },
    { .path = "folding.window", .type = CFG_DURATION, .offset = OFF(policy.fold_window_ms), .min = 0,
      .max = 86400000, .def = "10m", .unit_ms = 1,
      .doc = "Near-identical messages one customer sends over several channels within this fold into one "
             "conversation; 0: no folding." },
    { .path = "folding.similarity", .type = CFG_INT, .offset = OFF(policy.fold_similarity_pct), .min = 50,
      .max = 100, .def = "90", .doc = "Percent of text two messages must share to fold (50..100: unrelated texts "
      "share about half of their fingerprints' bits, so less would fold them)." },
    { .path = "customers.vip", .type = CFG_STRLIST, .offset = OFF(policy.vip), .count_offset = OFF(policy.n_vip),
      .check = policy_check_identity_glob, .flags = CFG_UNIQUE,
      .doc = "Identity globs of VIP customers: email:*@bigcorp.com, phone:+4420794609*." },
    { .path = "customers.repeat_after", .type = CFG_INT, .offset = OFF(policy.repeat_after), .min = 0, .max = 1000000,
      .def = "3", .doc = "Conversations after which a customer's tier is repeat; 0: never." },
    { .path = "follow_up.after", .type = CFG_DURATION, .offset = OFF(policy.follow_up_after_s), .min = 0,
      .max = 315359999, .def = "0", .unit_ms = 1000, /* below retention.resolved's maximum */
      .doc = "A conversation a person resolved gets a follow-up this long after: new work for the same customer "
             "on the same channel (did the fix work?), routed like a new conversation, so it goes to the "
             "customer's previous owner (the agent who held it) when ownership.prefer_previous_owner lets it "
             "(docs/routing.md \"Follow-ups\"). None when the customer has an open or a later conversation by "
             "then (one a record: true rule stored is not work and does not count). Below retention.resolved, and "
             "needs routing.rules; 0: no follow-ups." },
    { .path = NULL },
};

static const cfg_table_t router_table = { .keys = router_keys, .size = sizeof(router_config_t),
                                          .init = router_init };

/* The absolute directory holding path, or the working directory for NULL. Returns a new string (caller
 * frees) or NULL with errno. */
static char *base_dir(const char *path)
{
    char cwd[PATH_MAX];
    while (path && path[0] == '.' && path[1] == '/')
        path += 2;
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (slash == path && path != NULL)
        return omni_strdup("/");
    if (slash && path[0] == '/')
        return omni_strndup(path, (size_t)(slash - path));
    if (getcwd(cwd, sizeof cwd) == NULL)
        return NULL;
    if (slash == NULL)
        return omni_strdup(cwd);
    return omni_asprintf("%s/%.*s", cwd, (int)(slash - path), path);
}

/* path made absolute against the directory of where it was written (the config file, or the working
 * directory for the command line). Frees *p and replaces it. */
static void resolve_against(char **p, const char *config_path, const cfg_where_t *w)
{
    if ((*p)[0] == '/')
        return;
    char *base = base_dir(w->file == cfg_command_line ? NULL : config_path);
    if (base == NULL)
        return; /* left relative: the error when it is opened names it */
    char *abs = omni_asprintf("%s/%s", base, *p);
    free(base);
    free(*p);
    *p = abs;
}

static bool read_key_files; /* config_read_key_files(): omnirouted reads them, omnictl and omni-api do not */

void config_read_key_files(bool on) { read_key_files = on; }

/* The CURVE key files read as the router will read them at start, so that -t finds a missing file or a
 * secret key others may read, at the place the key was set. err from libomni starts with the key's name. */
static void check_key_files(const router_config_t *cfg, const cfg_where_t *w_secret, const cfg_where_t *w_allowed,
                            config_errors_t *errs)
{
    char key[OMNI_CURVE_Z85_LEN + 1], err[512];
    const char *secret_key = "router.curve.secret_key_file", *allowed_key = "router.curve.allowed_keys";
    if (omni_curve_read_secret(cfg->router.curve.secret_key_file, key, secret_key, err, sizeof err) != 0)
        cfg_error_at(errs, w_secret, secret_key, "%s",
                     strncmp(err, secret_key, strlen(secret_key)) ? err : err + strlen(secret_key) + 2);
    explicit_bzero(key, sizeof key);
    for (size_t i = 0; i < cfg->router.curve.n_allowed_keys; i++) {
        const char *entry = cfg->router.curve.allowed_keys[i];
        struct stat st;
        if (omni_curve_is_key(entry))
            continue;
        /* named and placed as the entry, as any other list entry's error (docs/configuration.md) */
        char *name = omni_asprintf("%s[%zu]", allowed_key, i);
        if (stat(entry, &st) == 0 && S_ISDIR(st.st_mode)) {
            /* every *.pub in it, as zap.c reads them at start: what start-up refuses, -t refuses */
            DIR *d = opendir(entry);
            if (d == NULL)
                cfg_error_key(errs, w_allowed, name, "cannot read the directory %s: %s", entry, strerror(errno));
            for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
                size_t n = strlen(e->d_name);
                if (n <= 4 || strcmp(e->d_name + n - 4, ".pub") != 0)
                    continue;
                char *file = omni_asprintf("%s/%s", entry, e->d_name);
                if (omni_curve_read_public(file, key, allowed_key, err, sizeof err) != 0)
                    cfg_error_key(errs, w_allowed, name, "%s",
                                  strncmp(err, allowed_key, strlen(allowed_key)) ? err : err + strlen(allowed_key) + 2);
                free(file);
            }
            if (d)
                closedir(d);
        } else if (omni_curve_read_public(entry, key, allowed_key, err, sizeof err) != 0) {
            cfg_error_key(errs, w_allowed, name, "%s",
                          strncmp(err, allowed_key, strlen(allowed_key)) ? err : err + strlen(allowed_key) + 2);
        }
        free(name);
    }
}

/* Whether execvp would find prog: a path when it holds a slash, else looked up in PATH as execvp does. */
static bool runnable(const char *prog)
{
    struct stat st;
    if (strchr(prog, '/'))
        return stat(prog, &st) == 0 && S_ISREG(st.st_mode) && access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/bin:/usr/bin";
    for (const char *p = path;; p++) {
        size_t n = strcspn(p, ":");
        char *full = n ? omni_asprintf("%.*s/%s", (int)n, p, prog) : omni_asprintf("./%s", prog); /* "": here */
        bool ok = stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0;
        free(full);
        if (ok)
            return true;
        p += n;
        if (*p == '\0')
            return false;
    }
}

/* Over tcp, CURVE or an explicit opt-out: a router must not end up listening in clear by accident. Key
 * paths are resolved here; the files are read only where config_read_key_files() asked it (omnirouted: the
 * router reads them at start; omnictl need not be able to). */
static void check_transport(router_config_t *cfg, const char *path, const cfg_where_t *where, config_errors_t *errs)
{
    const cfg_where_t *w_ingest = &where[cfg_key_index(&router_table, "router.ingest")];
    const cfg_where_t *w_secret = &where[cfg_key_index(&router_table, "router.curve.secret_key_file")];
    const cfg_where_t *w_allowed = &where[cfg_key_index(&router_table, "router.curve.allowed_keys")];
    if (cfg->router.curve.secret_key_file != NULL)
        resolve_against(&cfg->router.curve.secret_key_file, path, w_secret);
    for (size_t i = 0; i < cfg->router.curve.n_allowed_keys; i++)
        if (!omni_curve_is_key(cfg->router.curve.allowed_keys[i]))
            resolve_against(&cfg->router.curve.allowed_keys[i], path, w_allowed);
    bool tcp = false;
    for (size_t i = 0; i < cfg->router.n_ingest; i++) {
        if (strncmp(cfg->router.ingest[i], "tcp://", 6) != 0)
            continue;
        tcp = true;
        if (cfg->router.curve.secret_key_file == NULL && !cfg->router.insecure_tcp) {
            char *key = omni_asprintf("router.ingest[%zu]", i);
            cfg_error_key(errs, w_ingest, key, "%s would accept anyone who can reach it, in clear: set "
                         "router.curve.secret_key_file and router.curve.allowed_keys (see docs/protocol.md), or "
                         "router.insecure_tcp: true to mean it", cfg->router.ingest[i]);
            free(key);
        }
    }
    if (tcp && cfg->router.curve.secret_key_file != NULL && cfg->router.curve.n_allowed_keys == 0)
        cfg_error_at(errs, w_secret->line > 0 ? w_secret : w_allowed, "router.curve.allowed_keys",
                     "empty: no connector could connect over tcp; list their public keys (omnictl keygen NAME "
                     "writes NAME.pub)");
    if (tcp && read_key_files && cfg->router.curve.secret_key_file != NULL)
        check_key_files(cfg, w_secret, w_allowed, errs);
}

/* Resolves what depends on other keys: state_dir against its origin's directory, relative ipc paths
 * against state_dir, and socket paths against the unix limit. Errors point where the value was set. */
static void finalize(router_config_t *cfg, const char *path, const cfg_where_t *where, config_errors_t *errs)
{
    const cfg_where_t *w_dir = &where[cfg_key_index(&router_table, "router.state_dir")];
    const cfg_where_t *w_ingest = &where[cfg_key_index(&router_table, "router.ingest")];
    char *dir = cfg->router.state_dir;
    for (size_t len = strlen(dir); len > 1 && dir[len - 1] == '/'; len--)
        dir[len - 1] = '\0';
    if (dir[0] != '/') {
        char *base = base_dir(w_dir->file == cfg_command_line ? NULL : path);
        if (base == NULL) {
            cfg_error_at(errs, w_dir, "router.state_dir", "cannot resolve the relative path: %s", strerror(errno));
            return;
        }
        const char *rel = dir;
        while (rel[0] == '.' && rel[1] == '/')
            rel += 2;
        cfg->router.state_dir = strcmp(rel, ".") == 0 ? omni_strdup(base) : omni_asprintf("%s/%s", base, rel);
        free(base);
        free(dir);
    }
    if (cfg->retention.archive_dir && cfg->retention.archive_dir[0])
        resolve_against(&cfg->retention.archive_dir, path,
                        &where[cfg_key_index(&router_table, "retention.archive_dir")]);
    else {
        free(cfg->retention.archive_dir);
        cfg->retention.archive_dir = omni_asprintf("%s/archive", cfg->router.state_dir);
    }
    /* "DIR/" is DIR: the router writes DIR/DAY.jsonl and omnictl names the same path when it searches */
    for (size_t n = strlen(cfg->retention.archive_dir); n > 1 && cfg->retention.archive_dir[n - 1] == '/'; n--)
        cfg->retention.archive_dir[n - 1] = '\0';
    config_sentinels_resolve(cfg->redis.sentinels, cfg->redis.n_sentinels, cfg->redis.master_name,
                             cfg->redis.address != NULL, &cfg->redis.sentinel_addrs,
                             &where[cfg_key_index(&router_table, "redis.sentinels")], errs);
    if (cfg->redis.wait_timeout_ms >= cfg->redis.timeout_ms) {
        /* blamed on the key that was written: a wait_timeout_ms left at its default is not the user's doing */
        const cfg_where_t *wait = &where[cfg_key_index(&router_table, "redis.wait_timeout_ms")],
                          *timeout = &where[cfg_key_index(&router_table, "redis.timeout_ms")];
        if (wait->line > 0 || timeout->line == 0)
            cfg_error_at(errs, wait, "redis.wait_timeout_ms",
                         "%d ms is not below redis.timeout_ms (%d ms), which would drop the connection first",
                         cfg->redis.wait_timeout_ms, cfg->redis.timeout_ms);
        else
            cfg_error_at(errs, timeout, "redis.timeout_ms",
                         "%d ms is not above redis.wait_timeout_ms (%d ms, its default): set that below it too",
                         cfg->redis.timeout_ms, cfg->redis.wait_timeout_ms);
    }
    if (cfg->policy.follow_up_after_s > 0) {
        const cfg_where_t *w = &where[cfg_key_index(&router_table, "follow_up.after")];
        if (cfg->policy.follow_up_after_s >= cfg->retention.resolved_s)
            cfg_error_at(errs, w, "follow_up.after", "%d s is not below retention.resolved (%d s): the resolved "
                         "conversation would be archived, and gone from Redis, before its follow-up opens",
                         cfg->policy.follow_up_after_s, cfg->retention.resolved_s);
        if (cfg->policy.n_routes == 0)
            cfg_error_at(errs, w, "follow_up.after", "a follow-up is routed like new work, and there are no "
                         "routing.rules: it would never reach anyone; add routing rules, or set it to 0");
    }
    if (cfg->redis.address == NULL && cfg->redis.n_sentinels == 0 && cfg->redis.wait_replicas > 0)
        cfg_error_at(errs, &where[cfg_key_index(&router_table, "redis.wait_replicas")], "redis.wait_replicas",
                     "%d needs replicas, and the embedded Redis (no redis.address, no redis.sentinels) has none: "
                     "WAIT would never be met and every message would get BUSY; set it to 0, or use a Redis with "
                     "replicas (redis.sentinels, or redis.address)", cfg->redis.wait_replicas);
    if (cfg->redis.address == NULL && cfg->redis.n_sentinels == 0 && read_key_files &&
        !runnable(cfg->redis.server)) {
        /* the router would start it, fail, and try again forever: found here, -t and start-up agree */
        const cfg_where_t *w = &where[cfg_key_index(&router_table, "redis.server")];
        cfg_where_t at = w->line > 0 ? *w : (cfg_where_t){ .file = cfg->source ? cfg->source : "default" };
        cfg_error_at(errs, &at, "redis.server", "cannot run %s: %s; the embedded Redis (no redis.address, no "
                     "redis.sentinels) needs it: install redis-server, or name Redis in redis.address",
                     cfg->redis.server, strchr(cfg->redis.server, '/') ? "not an executable file" : "not found in PATH");
    }
    if (cfg->redis.address == NULL && cfg->redis.n_sentinels == 0) {
        char *sock = embedded_socket_path(cfg->router.state_dir);
        if (strlen(sock) > UNIX_PATH_MAX_LEN)
            cfg_error_at(errs, w_dir, "router.state_dir", "too long for the embedded Redis: its socket %s would be "
                         "%zu bytes, more than the %zu a unix socket allows", sock, strlen(sock), UNIX_PATH_MAX_LEN);
        free(sock);
    }
    if (cfg->redis.address) { /* resolved here, once: never by a blocking getaddrinfo inside the loop */
        char why[400];
        const cfg_where_t *w_addr = &where[cfg_key_index(&router_table, "redis.address")];
        if (redis_address_parse(cfg->redis.address, &cfg->redis.addr, why, sizeof why) != 0 ||
            redis_address_resolve(&cfg->redis.addr, why, sizeof why) != 0)
            cfg_error_at(errs, w_addr, "redis.address", "%s", why);
    }
    for (size_t i = 0; i < cfg->router.n_ingest; i++) {
        char *ep = cfg->router.ingest[i];
        const char *ipc = strncmp(ep, "ipc://", 6) == 0 ? ep + 6 : NULL;
        if (ipc == NULL)
            continue;
        if (ipc[0] != '/' && ipc[0] != '@') { /* '@': Linux's abstract namespace, no file */
            cfg->router.ingest[i] = omni_asprintf("ipc://%s/%s", cfg->router.state_dir, ipc);
            free(ep);
            ipc = cfg->router.ingest[i] + 6;
        }
        if (strlen(ipc) > UNIX_PATH_MAX_LEN) {
            char *key = omni_asprintf("router.ingest[%zu]", i);
            cfg_error_key(errs, w_ingest->line > 0 ? w_ingest : w_dir, key, "the ipc path %s is %zu bytes, more than "
                         "the %zu a unix socket allows", ipc, strlen(ipc), UNIX_PATH_MAX_LEN);
            free(key);
        }
    }
    check_transport(cfg, path, where, errs);
    policy_compile(&cfg->policy, errs); /* cross-section checks; errors name where each item was written */
}

/* The configuration's version: a digest of the file's bytes and the overrides, chained in the order read. */
static void version_add(router_config_t *cfg, const char *bytes, size_t len)
{
    unsigned char d[32];
    char *both = omni_malloc(sizeof cfg->version + len);
    memcpy(both, cfg->version, sizeof cfg->version);
    memcpy(both + sizeof cfg->version, bytes, len);
    omni_sha256(both, sizeof cfg->version + len, d);
    free(both);
    omni_hex(d, (sizeof cfg->version - 1) / 2, cfg->version);
}

/* config_load's body: the text of path (NULL: none, or text given in memory under that name). */
static router_config_t *load(const char *path, const char *text, size_t len, const char *const *overrides,
                             size_t n_overrides, config_errors_t *errs)
{
    config_errors_t mine = { 0 };
    if (errs == NULL)
        errs = &mine;
    *errs = (config_errors_t){ 0 };
    router_config_t *cfg = omni_calloc(1, sizeof *cfg);
    cfg_defaults(&router_table, cfg);
    size_t n_keys = 0;
    while (router_keys[n_keys].path)
        n_keys++;
    cfg_where_t *where = omni_calloc(n_keys, sizeof *where);
    cfg_ctx_t ctx = { .errs = errs, .file = path, .root = &router_table, .where = where };
    cfg_source_t src;
    bool kept = false;
    if (path) {
        char *owned = text ? NULL : omni_read_file(path, CONFIG_FILE_MAX, &len);
        cfg->source = omni_strdup(path);
        ctx.file = cfg->source; /* the policy keeps where items were written as long as the config lives */
        if (text == NULL && owned == NULL) {
            /* No line or column exists to name; still one line per error, starting with the file. */
            errs->lines = omni_realloc(errs->lines, (errs->n + 1) * sizeof *errs->lines);
            errs->lines[errs->n++] = errno == EFBIG
                ? omni_asprintf("%s: cannot read: larger than %d MiB, the most a configuration may be", path,
                                CONFIG_FILE_MAX / (1024 * 1024))
                : omni_asprintf("%s: cannot read: %s", path, strerror(errno));
        } else {
            kept = cfg_load_source(&ctx, &router_table, cfg, text ? text : owned, len, &src);
            version_add(cfg, text ? text : owned, len);
            free(owned);
        }
    }
    ctx.file = cfg_command_line;
    for (size_t i = 0; i < n_overrides; i++) {
        version_add(cfg, overrides[i], strlen(overrides[i]) + 1);
        ctx.fixed_line = (long)i + 1;
        cfg_apply_override(&ctx, &router_table, cfg, overrides[i]);
    }
    /* Even after errors: every value left is valid on its own (a bad one kept its default), so the checks
     * across keys and sections report their errors in the same pass (docs/configuration.md). */
    errs->source = kept ? &src : NULL;
    finalize(cfg, path, where, errs);
    errs->source = NULL;
    if (kept)
        yaml_document_delete(&src.doc);
    cfg_errors_sort(errs, cfg->source);
    free(where);
    if (errs->n > 0) {
        config_destroy(&cfg);
        config_errors_free(&mine);
    }
    return cfg;
}

router_config_t *config_load(const char *path, const char *const *overrides, size_t n_overrides,
                             config_errors_t *errs)
{
    return load(path, NULL, 0, overrides, n_overrides, errs);
}

router_config_t *config_load_text(const char *name, const char *text, size_t len, config_errors_t *errs)
{
    return load(name, text, len, NULL, 0, errs);
}

router_config_t *config_reload(const router_config_t *running, const char *path, const char *const *overrides,
                               size_t n_overrides, config_errors_t *errs, char *kept, size_t keptsz)
{
    router_config_t *cfg = config_load(path, overrides, n_overrides, errs);
    if (!cfg)
        return NULL;
    *kept = '\0';
    cfg_keep_restart(&router_table, cfg, running, kept, keptsz);
    cfg->redis.addr = running->redis.addr; /* parsed from redis.address, which a reload keeps */
    free(cfg->redis.sentinel_addrs);       /* and from redis.sentinels, kept too */
    cfg->redis.sentinel_addrs = NULL;
    if (running->redis.n_sentinels > 0) {
        cfg->redis.sentinel_addrs = omni_calloc(running->redis.n_sentinels, sizeof *cfg->redis.sentinel_addrs);
        memcpy(cfg->redis.sentinel_addrs, running->redis.sentinel_addrs,
               running->redis.n_sentinels * sizeof *cfg->redis.sentinel_addrs);
    }
    return cfg;
}

void config_destroy(router_config_t **cfg)
{
    if (cfg == NULL || *cfg == NULL)
        return;
    policy_release(&(*cfg)->policy); /* compiled state first: it points into what cfg_free frees */
    free((*cfg)->redis.sentinel_addrs);
    cfg_free(&router_table, *cfg);
    free((*cfg)->source);
    free(*cfg);
    *cfg = NULL;
}

void config_errors_free(config_errors_t *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->n; i++)
        free(errs->lines[i]);
    free(errs->lines);
    errs->lines = NULL;
    errs->n = 0;
}

void config_warnings(const router_config_t *cfg, config_errors_t *warns)
{
    policy_warnings(&cfg->policy, warns);
}

void config_print_reference(FILE *out)
{
    cfg_print_table(&router_table, out);
}
