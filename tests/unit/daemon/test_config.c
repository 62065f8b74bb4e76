/* omnirouted's config loader: the sample, defaults, every kind of error with its exact file:line:column,
 * overrides, path resolution, and the table walker on a test-only table with a list of objects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "config_schema.h"
#include "omni/log.h"
#include "omni/message.h"

/* Writes text to a new temp file; returns its path (caller unlinks and frees). */
static char *temp_file(const char *dir, const char *text)
{
    char *path = malloc(4096);
    snprintf(path, 4096, "%s/test_config_XXXXXX", dir ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* Loads text as a file; *path (caller unlinks, frees) is set for building the expected lines. */
static router_config_t *load(const char *text, const char *const *ov, size_t n, config_errors_t *errs, char **path)
{
    *path = temp_file(NULL, text);
    return config_load(*path, ov, n, errs);
}

static void done(char *path, router_config_t **cfg, config_errors_t *errs)
{
    if (path)
        unlink(path);
    free(path);
    config_destroy(cfg);
    config_errors_free(errs);
}

/* Asserts errs holds exactly the expected lines (NULL-terminated); "%s" in them stands for path. */
static void expect(const config_errors_t *errs, const char *path, const char *const *want)
{
    size_t n = 0;
    char lines[16][1024];
    bool same = true;
    for (; want[n]; n++) {
        snprintf(lines[n], sizeof lines[n], want[n], path);
        same = same && n < errs->n && strcmp(errs->lines[n], lines[n]) == 0;
    }
    if (same && n == errs->n)
        return;
    for (size_t i = 0; i < errs->n; i++) /* the whole list makes a failure easy to read */
        print_message("  got: %s\n", errs->lines[i]);
    assert_int_equal(errs->n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(errs->lines[i], lines[i]);
}

/* The whole check for a file expected to fail: loads text, asserts NULL and exactly the lines. */
static void fails(const char *text, const char *const *want)
{
    config_errors_t errs;
    char *path;
    router_config_t *cfg = load(text, NULL, 0, &errs, &path);
    assert_null(cfg);
    expect(&errs, path, want);
    done(path, &cfg, &errs);
}

#define LINES(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_sample_loads(void **state)
{
    (void)state;
    config_errors_t errs;
    const char *ov[] = { "router.state_dir=/tmp/omni-sample" };
    router_config_t *cfg = config_load("conf/omnirouter.yaml", ov, 1, &errs);
    expect(&errs, "", LINES(NULL));
    assert_non_null(cfg);
    assert_string_equal(cfg->source, "conf/omnirouter.yaml");
    assert_string_equal(cfg->identity.default_country, "US");
    assert_int_equal(cfg->router.n_ingest, 1);
    assert_string_equal(cfg->router.ingest[0], "ipc:///tmp/omni-sample/omnirouter-ingest.sock");
    assert_null(cfg->redis.address);
    assert_null(cfg->redis.password);
    omni_limits_t lim;
    omni_limits_default(&lim);
    assert_memory_equal(&cfg->limits, &lim, sizeof lim);
    config_destroy(&cfg);
    assert_null(cfg);

    /* The sample documents every key: each leaf of the reference appears in it as "leaf:". */
    char *ref = NULL, *sample = NULL;
    size_t reflen, slen;
    FILE *out = open_memstream(&ref, &reflen);
    config_print_reference(out);
    fclose(out);
    FILE *in = fopen("conf/omnirouter.yaml", "r");
    assert_non_null(in);
    sample = calloc(1, 1 << 16);
    slen = fread(sample, 1, (1 << 16) - 1, in);
    fclose(in);
    assert_true(slen > 0);
    for (char *p = strstr(ref, "- `"); p; p = strstr(p + 1, "- `")) {
        char *end = strchr(p + 3, '`'), *dot = end;
        if (memchr(p + 3, '[', (size_t)(end - p - 3)))
            continue; /* a list element's keys are shown in an example element, not one per line */
        while (dot > p + 3 && dot[-1] != '.')
            dot--;
        char leaf[128];
        /* a top-level list ("teams") is written at the start of a line */
        snprintf(leaf, sizeof leaf, dot == p + 3 ? "\n%.*s:" : "\n  %.*s:", (int)(end - dot), dot);
        char nested[132]; /* a key of a section inside a section ("router.curve.allowed_keys") */
        snprintf(nested, sizeof nested, "\n    %.*s:", (int)(end - dot), dot);
        if (strstr(sample, leaf) == NULL && (dot - p - 3 < 2 || memchr(p + 3, '.', (size_t)(dot - p - 4)) == NULL ||
                                             strstr(sample, nested) == NULL))
            fail_msg("the sample does not show %.*s", (int)(end - p - 3), p + 3);
    }
    free(ref);
    free(sample);
}

static void check_defaults(const router_config_t *cfg)
{
    assert_int_equal(cfg->router.n_ingest, 1);
    assert_string_equal(cfg->router.ingest[0], "ipc:///var/lib/omnirouter/omnirouter-ingest.sock");
    assert_string_equal(cfg->router.state_dir, "/var/lib/omnirouter");
    assert_int_equal(cfg->router.log_level, OMNI_LOG_INFO);
    assert_int_equal(cfg->router.tick_ms, 100);
    assert_int_equal(cfg->router.max_inflight, 10000);
    assert_int_equal(cfg->router.busy_retry_ms, 1000);
    assert_int_equal(cfg->router.peer_violation_limit, 10);
    assert_int_equal(cfg->router.peer_ban_s, 60);
    assert_null(cfg->redis.address);
    assert_null(cfg->redis.password);
    assert_int_equal(cfg->redis.database, 0);
    assert_string_equal(cfg->redis.key_prefix, "omni:");
    assert_int_equal(cfg->redis.timeout_ms, 5000);
    assert_int_equal(cfg->redis.reconnect_ms, 200);
    assert_string_equal(cfg->redis.server, "redis-server");
    assert_int_equal(cfg->limits.message_bytes, 262144);
    assert_int_equal(cfg->limits.depth, 8);
    assert_null(cfg->identity.default_country);
    assert_string_equal(cfg->conversations.default_queue, "default");
}

static void test_defaults(void **state)
{
    (void)state;
    const char *texts[] = { "", "# nothing but a comment\n", "---\n", "router:\nredis:\n  # address: x\n",
                            "identity: {}\nlimits: ~\n" };
    config_errors_t errs;
    router_config_t *cfg = config_load(NULL, NULL, 0, &errs);
    assert_non_null(cfg);
    check_defaults(cfg);
    assert_null(cfg->source);
    config_destroy(&cfg);
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        char *path;
        cfg = load(texts[i], NULL, 0, &errs, &path);
        expect(&errs, path, LINES(NULL));
        check_defaults(cfg);
        done(path, &cfg, &errs);
    }
}

static void test_values(void **state)
{
    (void)state;
    config_errors_t errs;
    char *path;
    router_config_t *cfg = load("router:\n  ingest: tcp://*:5555\n  tick_ms: 1s\n  busy_retry_ms: 2m\n"
                                "  peer_ban_s: 1h\n  log_level: debug\n  insecure_tcp: yes\n"
                                "redis:\n  address: \"unix:/run/redis.sock\"\n  password: ~\n  database: 15\n"
                                "limits:\n  message_bytes: 1m\n  text_bytes: 4KiB\n  attachments: 0\n"
                                "identity: {default_country: GB}\n",
                                NULL, 0, &errs, &path);
    expect(&errs, path, LINES(NULL));
    assert_string_equal(cfg->router.ingest[0], "tcp://*:5555");
    assert_int_equal(cfg->router.tick_ms, 1000);
    assert_int_equal(cfg->router.busy_retry_ms, 120000);
    assert_int_equal(cfg->router.peer_ban_s, 3600);
    assert_int_equal(cfg->router.log_level, OMNI_LOG_DEBUG);
    assert_string_equal(cfg->redis.address, "unix:/run/redis.sock");
    assert_null(cfg->redis.password);
    assert_int_equal(cfg->redis.database, 15);
    assert_int_equal(cfg->limits.message_bytes, 1048576);
    assert_int_equal(cfg->limits.text_bytes, 4096);
    assert_int_equal(cfg->limits.attachments, 0);
    assert_string_equal(cfg->identity.default_country, "GB");
    done(path, &cfg, &errs);
}

static void test_type_errors(void **state)
{
    (void)state;
    fails("router:\n  max_inflight: abc\n  tick_ms: [1]\n  log_level: loud\n  state_dir:\n"
          "  ingest: {a: 1}\n  peer_ban_s: 1500ms\nredis:\n  server: \"\"\n  database: 1.5\n"
          "limits:\n  message_bytes: 12q\nconversations: 5\n",
          LINES("%s:2:17: router.max_inflight: expected an integer, got \"abc\"",
                "%s:3:12: router.tick_ms: expected a duration in milliseconds (500, 500ms, 5s), got a list",
                "%s:4:14: router.log_level: expected one of debug, info, warn, error, got \"loud\"",
                "%s:5:13: router.state_dir: expected a string, got null",
                "%s:6:11: router.ingest: expected a list of strings, got a mapping",
                "%s:7:15: router.peer_ban_s: 1500ms is not a whole number of s",
                "%s:9:11: redis.server: must not be empty",
                "%s:10:13: redis.database: expected an integer, got \"1.5\"",
                "%s:12:18: limits.message_bytes: expected a size in bytes (262144, 256k, 1m), got \"12q\"",
                "%s:13:16: conversations: expected a mapping, got \"5\""));
    fails("- router\n", LINES("%s:1:1: expected a mapping of keys at the top level, got a list"));
    fails("router:\n  log_level: inof\n  ingest: [[x]]\n  state_dir: \"a\\0b\"\n",
          LINES("%s:2:14: router.log_level: expected one of debug, info, warn, error, got \"inof\" (did you mean info?)",
                "%s:3:12: router.ingest[0]: expected a string, got a list",
                "%s:4:14: router.state_dir: contains a NUL byte"));
}

static void test_validators(void **state)
{
    (void)state;
    /* a rule across two keys blames the one written: a default is not the user's to find */
    fails("redis:\n  timeout_ms: 100\n",
          LINES("%s:2:15: redis.timeout_ms: 100 ms is not above redis.wait_timeout_ms (1000 ms, its default): set "
                "that below it too"));
    fails("redis:\n  timeout_ms: 100\n  wait_timeout_ms: 200\n",
          LINES("%s:3:20: redis.wait_timeout_ms: 200 ms is not below redis.timeout_ms (100 ms), which would drop the "
                "connection first"));
    /* a follow-up needs its resolved conversation still in Redis, and a routing rule to reach anyone */
    fails("follow_up:\n  after: 200h\n",
          LINES("%s:2:10: follow_up.after: 720000 s is not below retention.resolved (604800 s): the resolved "
                "conversation would be archived, and gone from Redis, before its follow-up opens",
                "%s:2:10: follow_up.after: a follow-up is routed like new work, and there are no routing.rules: it "
                "would never reach anyone; add routing rules, or set it to 0"));
    fails("router:\n  ipc_owner: nosuchuser-omni\n  ipc_group: nosuchgroup-omni\n",
          LINES("%s:2:14: router.ipc_owner: no user named nosuchuser-omni",
                "%s:3:14: router.ipc_group: no group named nosuchgroup-omni"));
    fails("router:\n  ingest: [udp://x, \"tcp://host\", \"ipc://\", ipc://a, ipc://a]\n"
          "redis:\n  address: http://x\n  key_prefix: a b\nidentity:\n  default_country: UK\n"
          "conversations:\n  default_queue: Bad Queue\n",
          LINES("%s:2:12: router.ingest[0]: \"udp://x\" is not an endpoint: write ipc://PATH or tcp://HOST:PORT",
                "%s:2:21: router.ingest[1]: \"tcp://host\" is not tcp://HOST:PORT (a host, then a port 1..65535)",
                "%s:2:35: router.ingest[2]: an ipc:// endpoint needs a path, e.g. ipc://omnirouter-ingest.sock",
                "%s:2:54: router.ingest[4]: \"ipc://a\" is listed twice (first as entry 3)",
                "%s:4:12: redis.address: \"http://x\" is not a Redis address: write tcp://HOST:PORT or unix:/PATH, "
                "or leave it empty for the embedded Redis",
                "%s:5:15: redis.key_prefix: must not contain spaces or control characters (keys are typed in redis-cli)",
                /* was "us", refused for its case: any case is now read (as in every connector), and the
                 * check is libphonenumber's, shared with the connectors */
                "%s:7:20: identity.default_country: \"UK\" is not an ISO 3166 alpha-2 country code (did you "
                "mean GB?)",
                "%s:9:18: conversations.default_queue: \"Bad Queue\" is not a queue name: 1..64 of a-z, 0-9, _ and -"));
    fails("router:\n  ingest: []\nredis:\n  address: unix:redis.sock\n",
          LINES("%s:2:11: router.ingest: has 0 entries; at least 1 needed",
                "%s:4:12: redis.address: a unix: address needs an absolute path, e.g. unix:/run/redis/redis.sock"));
}

static void test_bounds(void **state)
{
    (void)state;
    fails("router:\n  tick_ms: 0\n  max_inflight: 1000001\n  busy_retry_ms: 11m\n  peer_ban_s: -1\n"
          "redis:\n  database: 99999999999999999999\nlimits:\n  message_bytes: 32m\n  depth: 65\n",
          LINES("%s:2:12: router.tick_ms: 0 is below the minimum 1",
                "%s:3:17: router.max_inflight: 1000001 is above the maximum 1000000",
                "%s:4:18: router.busy_retry_ms: 11m (660000) is above the maximum 600000",
                "%s:5:15: router.peer_ban_s: -1 is below the minimum 0",
                "%s:7:13: redis.database: 99999999999999999999 is above the maximum 15",
                "%s:9:18: limits.message_bytes: 32m (33554432) is above the maximum 16777216",
                "%s:10:10: limits.depth: 65 is above the maximum 64"));
    /* past 64 bits with a unit: out of bounds, never a made-up number nor "not a whole number of s" */
    fails("router:\n  peer_ban_s: 99999999999999999h\n  tick_ms: -99999999999999999h\n"
          "limits:\n  message_bytes: 99999999999999g\n",
          LINES("%s:2:15: router.peer_ban_s: 99999999999999999h is above the maximum 86400",
                "%s:3:12: router.tick_ms: -99999999999999999h is below the minimum 1",
                "%s:5:18: limits.message_bytes: 99999999999999g is above the maximum 16777216"));
}

static void test_unknown_keys(void **state)
{
    (void)state;
    fails("router:\n  tikc_ms: 5\n  key_prefix: x\nrooter:\n  tick_ms: 5\nbogus: 1\nredis:\n  x: 1\n"
          "router.tick_ms: 5\n",
          LINES("%s:2:3: router.tikc_ms: unknown key (did you mean router.tick_ms?)",
                "%s:3:3: router.key_prefix: unknown key (did you mean redis.key_prefix?)",
                "%s:4:1: rooter: unknown key (did you mean router?)",
                "%s:6:1: bogus: unknown key",
                "%s:8:3: redis.x: unknown key",
                "%s:9:1: router.tick_ms: write the key nested (\"router:\" then the rest under it)"));
}

static void test_syntax_errors(void **state)
{
    (void)state;
    fails("router:\n  tick_ms: 5\n bad: 1\n",
          LINES("%s:3:2: syntax error: did not find expected key (while parsing a block mapping at line 1 column 1)"));
    fails("router:\n  ingest: [ipc://a\n", LINES("%s:3:1: syntax error: did not find expected ',' or ']' "
                                                "(while parsing a flow sequence at line 2 column 11)"));
    fails("router: {tick_ms: 5}\n\txx: 1\n",
          LINES("%s:2:1: syntax error: found character that cannot start any token "
                "(while scanning for the next token at line 2 column 1)"));
    fails("redis:\n  key_prefix: \"\xff\"\n", LINES("%s:2:16: syntax error: invalid leading UTF-8 octet (#FF)"));
    fails("base: &b {tick_ms: 5}\nrouter: *b\n", LINES("%s:1:7: anchors (&b) are not supported",
                                                     "%s:2:9: aliases (*b) are not supported; write the value out"));
    fails("router: {}\n---\nredis: {}\n",
          LINES("%s:2:1: a second YAML document (---); a config file holds one"));
    /* an anchor alone, or a second document, does not hide the first document's other errors */
    fails("router:\n  tick_ms: &t 5000\n", LINES("%s:2:12: anchors (&t) are not supported",
                                                 "%s:2:12: router.tick_ms: 5000 is above the maximum 1000"));
    fails("router: {tick_ms: 5000}\n---\nb: 2\n",
          LINES("%s:1:19: router.tick_ms: 5000 is above the maximum 1000",
                "%s:2:1: a second YAML document (---); a config file holds one"));
}

static void test_duplicates(void **state)
{
    (void)state;
    fails("router:\n  tick_ms: 5\n  tick_ms: 6\nredis: {}\nrouter:\n  max_inflight: 3\n",
          LINES("%s:3:3: router.tick_ms: duplicate key (first at line 2 column 3)",
                "%s:5:1: router: duplicate key (first at line 1 column 1)"));
    /* what a duplicate holds is checked too: every error in one pass, not those behind a duplicate later */
    fails("router:\n  tick_ms: 5\n  tick_ms: 2s\nredis: {}\nrouter:\n  max_inflight: 0\n  bogus: 1\n"
          "teams: [{name: a}]\nteams: [{name: B, kind: partner}]\n",
          LINES("%s:3:3: router.tick_ms: duplicate key (first at line 2 column 3)",
                "%s:3:12: router.tick_ms: 2s (2000) is above the maximum 1000",
                "%s:5:1: router: duplicate key (first at line 1 column 1)",
                "%s:6:17: router.max_inflight: 0 is below the minimum 1",
                "%s:7:3: router.bogus: unknown key",
                "%s:9:1: teams: duplicate key (first at line 8 column 1)",
                "%s:9:16: teams[0].name: \"B\" is not a name: 1..64 of a-z, 0-9, '.', '_' and '-'",
                "%s:9:25: teams[0].kind: expected one of in-house, outsourced, got \"partner\""));
}

static void test_overrides(void **state)
{
    (void)state;
    config_errors_t errs;
    char *path;
    const char *ov[] = { "router.tick_ms=7", "redis.address=tcp://127.0.0.1:6379",
                         "router.ingest=[tcp://*:5555, ipc:///tmp/x.sock]", "identity.default_country=",
                         "redis.password=p@ss: #word", "router={max_inflight: 5}", "router.insecure_tcp=true",
                         "router.peer_ban_s=2m" }; /* units as every connector's -D takes them (test_config_values) */
    router_config_t *cfg = load("router:\n  tick_ms: 50\nidentity:\n  default_country: US\n", ov, 8, &errs, &path);
    expect(&errs, path, LINES(NULL));
    assert_int_equal(cfg->router.tick_ms, 7);
    assert_int_equal(cfg->router.max_inflight, 5);
    assert_int_equal(cfg->router.peer_ban_s, 120);
    assert_string_equal(cfg->redis.address, "tcp://127.0.0.1:6379");
    assert_int_equal(cfg->router.n_ingest, 2);
    assert_string_equal(cfg->router.ingest[0], "tcp://*:5555");
    assert_string_equal(cfg->router.ingest[1], "ipc:///tmp/x.sock");
    assert_null(cfg->identity.default_country);
    assert_string_equal(cfg->redis.password, "p@ss: #word");
    done(path, &cfg, &errs);

    const char *bad[] = { "router.tick_ms=abc", "router.tikc_ms=5", "nonsense", "router.ingest=[a",
                          "router.state_dir=", "limits.depth=0" };
    cfg = config_load(NULL, bad, 6, &errs);
    assert_null(cfg);
    expect(&errs, "", LINES("command line:1:1: router.tick_ms: expected a duration in milliseconds (500, 500ms, 5s), "
                            "got \"abc\"",
                            "command line:2:1: router.tikc_ms: unknown key (did you mean router.tick_ms?)",
                            "command line:3:1: expected KEY=VALUE, got \"nonsense\"",
                            "command line:4:1: router.ingest: syntax error: did not find expected ',' or ']' "
                            "(while parsing a flow sequence at line 1 column 1)",
                            "command line:5:1: router.state_dir: must not be empty",
                            "command line:6:1: limits.depth: 0 is below the minimum 1"));
    config_errors_free(&errs);

    /* Errors from the file and the command line come together, file first. */
    const char *one[] = { "router.tick_ms=0" };
    cfg = load("redis:\n  database: 16\n", one, 1, &errs, &path);
    expect(&errs, path, LINES("%s:2:13: redis.database: 16 is above the maximum 15",
                              "command line:1:1: router.tick_ms: 0 is below the minimum 1"));
    done(path, &cfg, &errs);
}

/* tcp:// needs CURVE or an explicit opt-out, named where the endpoint was written; CURVE needs allowed keys;
 * key paths resolve against the config file's directory; ipc_mode is four octal digits. */
static void test_transport(void **state)
{
    (void)state;
    fails("router:\n  ingest: [ipc://a.sock, \"tcp://*:5555\"]\n",
          LINES("%s:2:26: router.ingest[1]: tcp://*:5555 would accept anyone who can reach it, in clear: set "
                "router.curve.secret_key_file and router.curve.allowed_keys (see docs/protocol.md), or "
                "router.insecure_tcp: true to mean it"));
    fails("router:\n  ingest: \"tcp://*:5555\"\n  curve:\n    secret_key_file: r.key\n",
          LINES("%s:4:22: router.curve.allowed_keys: empty: no connector could connect over tcp; list their public "
                "keys (omnictl keygen NAME writes NAME.pub)"));
    fails("router:\n  ipc_mode: 755\n  curve:\n    allowed_keys: [\"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf\\\"\"]\n",
          LINES("%s:2:13: router.ipc_mode: \"755\" is not a file mode: four octal digits such as 0660 (no setuid, "
                "setgid or sticky bits)",
                "%s:4:20: router.curve.allowed_keys[0]: \"rq:rM>}U?@Lns47E1%%kR.o@n%%FcmmsL/@{H8]yf\"\" is 40 characters "
                "but not a Z85 CURVE key (or name a .pub file or a directory of them)"));
    config_errors_t errs;
    char *path;
    router_config_t *cfg = load("router:\n  ingest: \"tcp://*:5555\"\n  curve:\n    secret_key_file: keys/r.key\n"
                                "    allowed_keys: [conn.pub, \"/etc/k\", \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"]\n",
                                NULL, 0, &errs, &path);
    expect(&errs, path, LINES(NULL));
    char want[4200];
    snprintf(want, sizeof want, "%.*s/keys/r.key", (int)(strrchr(path, '/') - path), path);
    assert_string_equal(cfg->router.curve.secret_key_file, want);
    snprintf(want, sizeof want, "%.*s/conn.pub", (int)(strrchr(path, '/') - path), path);
    assert_string_equal(cfg->router.curve.allowed_keys[0], want);
    assert_string_equal(cfg->router.curve.allowed_keys[1], "/etc/k");
    assert_string_equal(cfg->router.curve.allowed_keys[2], "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
    assert_false(cfg->router.insecure_tcp);
    assert_string_equal(cfg->router.ipc_mode, "0660");
    done(path, &cfg, &errs);
}

static void test_paths(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_config_dir_XXXXXX", cwd[4096], want[8192];
    assert_non_null(mkdtemp(dir));
    assert_non_null(getcwd(cwd, sizeof cwd));
    char *path = temp_file(dir, "router:\n  state_dir: ./state/\n  ingest: [ipc://in.sock, ipc:///abs.sock, ipc://@abs]\n");
    config_errors_t errs;
    router_config_t *cfg = config_load(path, NULL, 0, &errs);
    expect(&errs, path, LINES(NULL));
    snprintf(want, sizeof want, "%s/state", dir);
    assert_string_equal(cfg->router.state_dir, want);
    snprintf(want, sizeof want, "ipc://%s/state/in.sock", dir);
    assert_string_equal(cfg->router.ingest[0], want);
    assert_string_equal(cfg->router.ingest[1], "ipc:///abs.sock");
    assert_string_equal(cfg->router.ingest[2], "ipc://@abs");
    config_destroy(&cfg);

    /* On the command line a relative path is relative to the working directory, as in a shell. */
    const char *ov[] = { "router.state_dir=run" };
    cfg = config_load(path, ov, 1, &errs);
    snprintf(want, sizeof want, "%s/run", cwd);
    assert_string_equal(cfg->router.state_dir, want);
    config_destroy(&cfg);

    /* A state_dir so long its sockets could not exist is refused where it was written. */
    char long_ov[300];
    snprintf(long_ov, sizeof long_ov, "router.state_dir=/%0200d", 0);
    const char *ovs[] = { long_ov };
    cfg = config_load(NULL, ovs, 1, &errs);
    assert_null(cfg);
    assert_int_equal(errs.n, 2);
    assert_non_null(strstr(errs.lines[0], "command line:1:1: router.state_dir: too long for the embedded Redis"));
    assert_non_null(strstr(errs.lines[1], "command line:1:1: router.ingest[0]: the ipc path /000"));
    config_errors_free(&errs);

    cfg = config_load("/nonexistent/omnirouter.yaml", NULL, 0, &errs);
    assert_null(cfg);
    expect(&errs, "", LINES("/nonexistent/omnirouter.yaml: cannot read: No such file or directory"));
    config_errors_free(&errs);
    unlink(path);
    free(path);
    rmdir(dir);
}

/* A test-only table in the shape the routing engine's sections will have: a list of objects, each with
 * a required name, an enum, a list of strings, a nested section, a bool, and a whole-object check. */
typedef struct test_team {
    char *name;
    int kind;
    char **members;
    size_t n_members;
    int max_load;
    bool open;
    cfg_where_t where;
} test_team_t;

typedef struct test_cfg {
    int tick;
    test_team_t *teams;
    size_t n_teams;
    struct { int a; char *b; } box;
} test_cfg_t;

static const char *const kinds[] = { "in-house", "partner", NULL };

static const char *team_check(const void *obj, char *buf, size_t bufsz)
{
    const test_team_t *t = obj;
    if (t->kind == 1 && t->n_members > 0) {
        snprintf(buf, bufsz, "team %s is a partner: its people are the partner's, list no members", t->name);
        return buf;
    }
    return NULL;
}

static const cfg_key_t team_keys[] = {
    { .path = "name", .type = CFG_STRING, .offset = offsetof(test_team_t, name), .flags = CFG_REQUIRED, .doc = "Name." },
    { .path = "kind", .type = CFG_ENUM, .offset = offsetof(test_team_t, kind), .names = kinds, .def = "in-house", .doc = "Kind." },
    { .path = "members", .type = CFG_STRLIST, .offset = offsetof(test_team_t, members),
      .count_offset = offsetof(test_team_t, n_members), .flags = CFG_UNIQUE, .doc = "Agents." },
    { .path = "limits.max_load", .type = CFG_INT, .offset = offsetof(test_team_t, max_load), .min = 1, .max = 100,
      .def = "10", .doc = "Load." },
    { .path = "open", .type = CFG_BOOL, .offset = offsetof(test_team_t, open), .def = "true", .doc = "Open." },
    { .path = NULL },
};
static const cfg_table_t team_table = { .keys = team_keys, .size = sizeof(test_team_t), .check = team_check,
                                        .has_where = true, .where_offset = offsetof(test_team_t, where) };
static const cfg_key_t box_keys[] = {
    { .path = "a", .type = CFG_INT, .offset = offsetof(test_cfg_t, box.a) - offsetof(test_cfg_t, box), .min = 0,
      .max = 9, .doc = "A." },
    { .path = "b", .type = CFG_STRING, .offset = offsetof(test_cfg_t, box.b) - offsetof(test_cfg_t, box),
      .flags = CFG_NULLABLE, .doc = "B." },
    { .path = NULL },
};
static const cfg_table_t box_table = { .keys = box_keys, .size = sizeof(((test_cfg_t *)0)->box) };
static const cfg_key_t test_keys[] = {
    { .path = "router.tick_ms", .type = CFG_INT, .offset = offsetof(test_cfg_t, tick), .min = 1, .max = 1000,
      .def = "100", .doc = "Tick." },
    { .path = "teams", .type = CFG_OBJLIST, .offset = offsetof(test_cfg_t, teams),
      .count_offset = offsetof(test_cfg_t, n_teams), .max = 8, .sub = &team_table, .doc = "Teams." },
    { .path = "box", .type = CFG_OBJECT, .offset = offsetof(test_cfg_t, box), .sub = &box_table, .doc = "Box." },
    { .path = NULL },
};
static const cfg_table_t test_table = { .keys = test_keys, .size = sizeof(test_cfg_t) };

static void test_list_of_objects(void **state)
{
    (void)state;
    config_errors_t errs = { 0 };
    cfg_ctx_t ctx = { .errs = &errs, .file = "t.yaml" };
    test_cfg_t c = { 0 };
    cfg_defaults(&test_table, &c);
    const char *good = "teams:\n  - name: support\n    members: [ann, bob]\n    limits: {max_load: 3}\n"
                       "  - {name: acme, kind: partner, open: no}\nbox: {a: 4, b: x}\n";
    assert_int_equal(cfg_load_text(&ctx, &test_table, &c, good, strlen(good)), 0);
    assert_int_equal(c.n_teams, 2);
    assert_string_equal(c.teams[0].name, "support");
    assert_int_equal(c.teams[0].kind, 0);
    assert_int_equal(c.teams[0].n_members, 2);
    assert_string_equal(c.teams[0].members[1], "bob");
    assert_int_equal(c.teams[0].max_load, 3);
    assert_true(c.teams[0].open);
    assert_string_equal(c.teams[1].name, "acme");
    assert_int_equal(c.teams[1].kind, 1);
    assert_int_equal(c.teams[1].max_load, 10); /* each element starts from the defaults */
    assert_false(c.teams[1].open);
    assert_string_equal(c.teams[1].where.file, "t.yaml"); /* for errors found after the walk */
    assert_int_equal(c.teams[1].where.line, 5);
    assert_int_equal(c.teams[1].where.col, 5);
    assert_int_equal(c.box.a, 4);
    assert_string_equal(c.box.b, "x");

    /* Broken elements: each error names the element. The list is kept, each element with what was right in
     * it and marked bad, so that the checks across sections can still run in the same pass. */
    const char *bad = "teams:\n  - nmae: x\n  - name: b\n    members: [a, a]\n  - name: p\n    kind: partner\n"
                      "    members: [z]\n  - oops\nbox: {a: 10}\n";
    assert_int_equal(cfg_load_text(&ctx, &test_table, &c, bad, strlen(bad)), 6);
    expect(&errs, "", LINES("t.yaml:2:5: teams[0].nmae: unknown key (did you mean teams[0].name?)",
                            "t.yaml:2:5: teams[0].name: required key missing",
                            "t.yaml:4:18: teams[1].members[1]: \"a\" is listed twice (first as entry 0)",
                            "t.yaml:5:5: teams[2]: team p is a partner: its people are the partner's, list no members",
                            "t.yaml:8:5: teams[3]: expected a mapping, got \"oops\"",
                            "t.yaml:9:10: box.a: 10 is above the maximum 9"));
    assert_int_equal(c.n_teams, 4);
    assert_null(c.teams[0].name);
    assert_true(c.teams[0].where.bad);
    assert_string_equal(c.teams[1].name, "b");
    assert_int_equal(c.teams[1].n_members, 2); /* a refused entry is "" in its place */
    assert_string_equal(c.teams[1].members[0], "a");
    assert_string_equal(c.teams[1].members[1], "");
    assert_true(c.teams[1].where.bad);
    assert_string_equal(c.teams[2].name, "p");
    assert_true(c.teams[3].where.bad);
    assert_int_equal(c.teams[3].where.line, 8);
    config_errors_free(&errs);

    /* An override replaces the whole list, in YAML flow syntax. */
    ctx.file = CFG_COMMAND_LINE;
    ctx.fixed_line = 1;
    cfg_apply_override(&ctx, &test_table, &c, "teams=[{name: solo, members: [x]}]");
    expect(&errs, "", LINES(NULL));
    assert_int_equal(c.n_teams, 1);
    assert_string_equal(c.teams[0].name, "solo");
    cfg_apply_override(&ctx, &test_table, &c, "teams=[{name: solo, kind: partnr}]");
    expect(&errs, "", LINES("command line:1:1: teams[0].kind: expected one of in-house, partner, got \"partnr\" "
                            "(did you mean partner?)"));
    config_errors_free(&errs);

    /* The reference lists the element keys under the list. */
    char *ref = NULL;
    size_t len;
    FILE *out = open_memstream(&ref, &len);
    cfg_print_table(&test_table, out);
    fclose(out);
    assert_non_null(strstr(ref, "- `teams`: list of mappings with the keys below, 0..8 entries, default `[]`.\n"));
    assert_non_null(strstr(ref, "  - `teams[].name`: string, required.\n"));
    assert_non_null(strstr(ref, "  - `teams[].limits.max_load`: integer 1..100, default `10`.\n"));
    assert_non_null(strstr(ref, "  - `box.b`: string, optional, default none.\n"));
    free(ref);
    cfg_free(&test_table, &c);
    assert_null(c.teams);
}

/* docs/configuration.md carries the reference verbatim between markers, so the two cannot drift. */
static void test_reference_matches_docs(void **state)
{
    (void)state;
    char *ref = NULL, *docs = calloc(1, 1 << 17);
    size_t len;
    FILE *out = open_memstream(&ref, &len);
    config_print_reference(out);
    fclose(out);
    FILE *in = fopen("docs/configuration.md", "r");
    assert_non_null(in);
    size_t n = fread(docs, 1, (1 << 17) - 1, in);
    fclose(in);
    assert_true(n > 0);
    const char *begin = "<!-- reference: begin (omnirouted --config-reference) -->\n", *end = "<!-- reference: end -->";
    char *b = strstr(docs, begin), *e = strstr(docs, end);
    assert_non_null(b);
    assert_non_null(e);
    b += strlen(begin);
    *e = '\0';
    if (strcmp(b, ref) != 0)
        fail_msg("docs/configuration.md is out of date: paste `omnirouted --config-reference` between the markers");
    free(ref);
    free(docs);
}

/* Each error is one line, whatever control characters a quoted value or key holds: they show as '?'. */
static void test_one_line_per_error(void **state)
{
    (void)state;
    fails("router:\n  ingest: [\"udp://a\\nb\"]\n  \"tick\\tms\": 1\nredis:\n  key_prefix: \"a\\nb\"\n",
          LINES("%s:2:12: router.ingest[0]: \"udp://a?b\" is not an endpoint: write ipc://PATH or tcp://HOST:PORT",
                "%s:3:3: router.tick?ms: unknown key (did you mean router.tick_ms?)",
                "%s:5:15: redis.key_prefix: must not contain spaces or control characters (keys are typed in "
                "redis-cli)"));
}

/* An override naming a list entry (as the reference writes teams[].name) says the list is given whole. */
static void test_override_list_entry(void **state)
{
    (void)state;
    const char *ov[] = { "teams[0].name=b", "router.ingest[1]=ipc://x" };
    config_errors_t errs;
    char *path;
    router_config_t *cfg = load("", ov, 2, &errs, &path);
    assert_null(cfg);
    expect(&errs, path, LINES("command line:1:1: teams[0].name: a list is given whole, not entry by entry: -D "
                              "'teams=[...]' (YAML flow syntax)",
                              "command line:2:1: router.ingest[1]: a list is given whole, not entry by entry: -D "
                              "'router.ingest=[...]' (YAML flow syntax)"));
    done(path, &cfg, &errs);
}

/* A file past the 16 MiB a configuration may be says so, not a bare "File too large". */
static void test_file_too_large(void **state)
{
    (void)state;
    size_t len = 16 * 1024 * 1024 + 1;
    char *text = malloc(len + 1);
    memset(text, '#', len);
    text[len] = '\0';
    config_errors_t errs;
    char *path;
    router_config_t *cfg = load(text, NULL, 0, &errs, &path);
    free(text);
    assert_null(cfg);
    expect(&errs, path, LINES("%s: cannot read: larger than 16 MiB, the most a configuration may be"));
    done(path, &cfg, &errs);
}

/* Lists and mappings nested past any key table's depth are refused while parsing, before libyaml's
 * scanner, whose work grows with the square of the depth, could spend minutes on a 200 KB file. */
static void test_deep_nesting(void **state)
{
    (void)state;
    size_t depth = 30000;
    char *text = malloc(2 * depth + 64);
    size_t o = (size_t)sprintf(text, "router:\n  ingest: ");
    memset(text + o, '[', depth);
    memset(text + o + depth, ']', depth);
    strcpy(text + o + 2 * depth, "\n");
    /* the root mapping, router's and 62 lists make 64 levels: the 63rd '[' (column 11 + 62) is one too many */
    fails(text, LINES("%s:2:73: nesting deeper than 64 levels (lists and mappings inside each other); no key "
                      "needs more"));
    free(text);
    /* a -D value too: located on the command line like its other errors */
    char *ov = malloc(depth + 32);
    o = (size_t)sprintf(ov, "router.ingest=");
    memset(ov + o, '[', depth);
    ov[o + depth] = '\0';
    const char *ovs[] = { ov };
    config_errors_t errs;
    char *path;
    router_config_t *cfg = load("", ovs, 1, &errs, &path);
    assert_null(cfg);
    expect(&errs, path, LINES("command line:1:1: router.ingest: nesting deeper than 64 levels (lists and mappings "
                              "inside each other); no key needs more"));
    done(path, &cfg, &errs);
    free(ov);
}

/* A file that cannot be read is the file's error: it comes first, before the command line's
 * (docs/configuration.md: "in the order of the file, then the command line's"). */
static void test_unreadable_file_first(void **state)
{
    (void)state;
    const char *ov[] = { "router.tick_ms=abc" };
    config_errors_t errs;
    router_config_t *cfg = config_load("/nonexistent/omni.yaml", ov, 1, &errs);
    assert_null(cfg);
    expect(&errs, "", LINES("/nonexistent/omni.yaml: cannot read: No such file or directory",
                            "command line:1:1: router.tick_ms: expected a duration in milliseconds (500, 500ms, 5s), "
                            "got \"abc\""));
    config_errors_free(&errs);
}

/* follow_up.after must stay below retention.resolved, whose maximum is 315360000 s: the reference's bound
 * for follow_up.after is what can be accepted, so a value at it loads and one past it names the bound. */
static void test_follow_up_bound(void **state)
{
    (void)state;
    const char *policy = "teams: [{name: core}]\nrouting:\n  rules: [{name: all, targets: [{team: core}]}]\n"
                         "retention:\n  resolved: 315360000\n";
    char text[512];
    snprintf(text, sizeof text, "%sfollow_up:\n  after: 315359999\n", policy);
    config_errors_t errs;
    char *path;
    router_config_t *cfg = load(text, NULL, 0, &errs, &path);
    expect(&errs, path, LINES(NULL));
    assert_int_equal(cfg->policy.follow_up_after_s, 315359999);
    done(path, &cfg, &errs);
    snprintf(text, sizeof text, "%sfollow_up:\n  after: 315360000\n", policy);
    fails(text, LINES("%s:7:10: follow_up.after: 315360000 is above the maximum 315359999"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_loads),   cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),         cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_validators),     cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_unknown_keys),   cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_duplicates),     cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_transport),          cmocka_unit_test(test_list_of_objects),
        cmocka_unit_test(test_reference_matches_docs), cmocka_unit_test(test_one_line_per_error),
        cmocka_unit_test(test_file_too_large),  cmocka_unit_test(test_override_list_entry),
        cmocka_unit_test(test_deep_nesting),     cmocka_unit_test(test_unreadable_file_first),
        cmocka_unit_test(test_follow_up_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
