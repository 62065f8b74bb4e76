/* omni-submit: hands messages (one JSON document a line) to omnirouted over OMNI/1, through a spool, and
 * waits for the answers. Also the way to drain a spool left by a connector: run it with no input. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni/client.h"
#include "omni/log.h"
#include "omni/message.h"
#include "omni/util.h"

#define SYNC_EVERY 256 /* lines per fsync: one disk flush per batch, not per message */

static const char usage[] =
    "usage: omni-submit --endpoint EP --spool DIR [--timeout SEC] [--quiet]\n"
    "                   [--server-key KEY|FILE --curve-secret FILE [--curve-public FILE]] [FILE.jsonl ...]\n"
    "\n"
    "Submits normalized messages (one JSON object per line; standard input when no FILE is given) to\n"
    "omnirouted over OMNI/1 and waits until the router has answered every one of them.\n"
    "\n"
    "  --endpoint EP   the router's ingest endpoint, e.g. ipc:///var/lib/omnirouter/omnirouter-ingest.sock\n"
    "  --spool DIR     spool directory: messages stay there until answered, so a message is not lost if\n"
    "                  this program or the router stops; NACKed ones go to DIR/dead-letter.jsonl.\n"
    "                  Messages a previous run left unanswered in DIR are sent again first.\n"
    "  --timeout SEC   how long to wait for answers after the input is read (default 30)\n"
    "  --quiet         print only the summary line and errors\n"
    "  --server-key K  CURVE, for a router's tcp:// endpoint: its public key (40 Z85 characters) or .pub file\n"
    "  --curve-secret F  this client's secret key file (mode 0600; omnictl keygen NAME writes NAME.key)\n"
    "  --curve-public F  this client's public key file, checked against the secret (optional)\n"
    "  --help          this text\n"
    "\n"
    "Each line is validated with the default limits first; a bad line is reported as FILE:LINE: reason\n"
    "and skipped. Prints \"ACK <id>\" or \"NACK <id> <reason>\" per answer, then\n"
    "\"submitted=N acked=N nacked=N pending=N invalid=N\".\n"
    "Exit status: 0 when every message was answered and no line was invalid, 1 otherwise, 2 on a usage\n"
    "error. With empty input it only drains the spool.\n";

typedef struct run {
    omni_client_t *client;
    bool quiet;
    unsigned long long submitted, acked, nacked, invalid;
    unsigned unsynced;
} run_t;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void on_ack(void *user, const char *id)
{
    run_t *r = user;
    r->acked++;
    if (!r->quiet)
        printf("ACK %s\n", id);
}

static void on_nack(void *user, const char *id, const char *reason)
{
    run_t *r = user;
    r->nacked++;
    if (!r->quiet)
        printf("NACK %s %s\n", id, reason);
}

static int sync_batch(run_t *r)
{
    if (r->unsynced == 0)
        return 0;
    r->unsynced = 0;
    if (omni_client_sync(r->client) != 0) {
        fprintf(stderr, "omni-submit: cannot sync the spool: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* Submits one line. Returns 0 (submitted or reported as invalid) or -1 (cannot go on). */
static int submit_line(run_t *r, const char *name, unsigned long lineno, const char *line, size_t len)
{
    omni_limits_t lim;
    omni_limits_default(&lim);
    omni_msg_error_t err;
    omni_msg_t *msg = omni_msg_parse(line, len, &lim, &err);
    if (msg == NULL) {
        char buf[600];
        fprintf(stderr, "%s:%lu: %s\n", name, lineno, omni_msg_error_str(&err, buf, sizeof buf));
        r->invalid++;
        return 0;
    }
    int rc;
    /* Over max_spooled: let answers come in (and sync, so they can be written off) until there is room. */
    size_t before; /* a submit of an id already waiting is taken as done (0) and adds nothing to the pending */
    while ((before = omni_client_pending(r->client), rc = omni_client_submit(r->client, msg->id, line, len)) != 0 &&
           errno == EAGAIN && !stop)
        if (sync_batch(r) != 0 || omni_client_poll(r->client, 100) < 0)
            break;
    if (rc == 0 && omni_client_pending(r->client) == before) { /* sent once, answered once, counted once */
        fprintf(stderr, "%s:%lu: message %s: the id of a message still waiting for its answer; not sent again\n",
                name, lineno, msg->id);
        omni_msg_destroy(&msg);
        return 0;
    }
    if (rc != 0)
        fprintf(stderr, "%s:%lu: cannot submit message %s: %s\n", name, lineno, msg->id, strerror(errno));
    omni_msg_destroy(&msg);
    if (rc != 0)
        return -1;
    r->submitted++;
    if (++r->unsynced >= SYNC_EVERY && sync_batch(r) != 0)
        return -1;
    return omni_client_poll(r->client, 0) < 0 ? -1 : 0; /* send while reading */
}

/* Reads one input. Returns 0, or -1 when the run cannot go on. *failed is set when the file is unreadable. */
static int submit_file(run_t *r, const char *path, bool *failed)
{
    const char *name = path ? path : "<stdin>";
    FILE *in = path ? fopen(path, "r") : stdin;
    if (in == NULL) {
        fprintf(stderr, "omni-submit: %s: %s\n", path, strerror(errno));
        *failed = true;
        return 0;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    int rc = 0;
    while (rc == 0 && !stop && (n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (lineno == 1 && n >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3)) { /* a UTF-8 BOM (Windows editors) */
            memmove(line, line + 3, (size_t)n - 2);
            n -= 3;
        }
        if (strspn(line, " \t") == (size_t)n) /* blank lines separate nothing and are not messages */
            continue;
        rc = submit_line(r, name, lineno, line, (size_t)n);
    }
    if (rc == 0 && ferror(in) && !stop) { /* a signal interrupts the read too */
        fprintf(stderr, "omni-submit: %s: read error: %s\n", name, strerror(errno));
        *failed = true;
    }
    free(line);
    if (path)
        fclose(in);
    return rc == 0 ? sync_batch(r) : -1;
}

/* The library names its options as a connector's config does (server_public_key...): said here as this
 * program's options, which are what the user typed. Rewrites err in place; returns it. */
static char *option_names(char *err)
{
    static const char *const names[][2] = { { "server_public_key", "--server-key" },
                                            { "curve_secret_key_file", "--curve-secret" },
                                            { "curve_public_key_file", "--curve-public" } };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t from = strlen(names[i][0]), to = strlen(names[i][1]); /* to < from: it fits */
        for (char *p = strstr(err, names[i][0]); p; p = strstr(p + to, names[i][0])) {
            memcpy(p, names[i][1], to);
            memmove(p + to, p + from, strlen(p + from) + 1);
        }
    }
    return err;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"endpoint", required_argument, NULL, 'e'}, {"spool", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'},  {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},           {"server-key", required_argument, NULL, 'K'},
        {"curve-secret", required_argument, NULL, 'S'}, {"curve-public", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0}};
    omni_client_opts_t opts = {0};
    run_t r = {0};
    double timeout = 30;
    int opt;
    while ((opt = getopt_long(argc, argv, "e:s:t:qh", longopts, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 'e': opts.endpoint = optarg; break;
        case 's': opts.spool_dir = optarg; break;
        case 'q': r.quiet = true; break;
        case 'K': opts.server_public_key = optarg; break;
        case 'S': opts.curve_secret_key_file = optarg; break;
        case 'P': opts.curve_public_key_file = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        case 't':
            errno = 0;
            timeout = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !(timeout >= 0 && timeout <= 86400)) {
                fprintf(stderr, "omni-submit: --timeout wants seconds between 0 and 86400, not \"%s\"\n",
                        optarg);
                return 2;
            }
            break;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (opts.endpoint == NULL || opts.spool_dir == NULL) {
        fprintf(stderr, "omni-submit: --endpoint and --spool are required (see --help)\n");
        return 2;
    }
    omni_log_init("omni-submit", r.quiet ? OMNI_LOG_WARN : OMNI_LOG_INFO);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    opts.on_ack = on_ack;
    opts.on_nack = on_nack;
    opts.user = &r;
    char err[512];
    r.client = omni_client_new(&opts, err, sizeof err);
    if (r.client == NULL) {
        fprintf(stderr, "omni-submit: %s\n", option_names(err));
        return 1;
    }
    bool failed = false;
    int rc = 0;
    for (int i = optind; rc == 0 && i < argc; i++)
        rc = submit_file(&r, argv[i], &failed);
    if (optind == argc)
        rc = submit_file(&r, NULL, &failed);
    int64_t deadline = omni_mono_ms() + (int64_t)(timeout * 1000);
    while (rc == 0 && !stop && omni_client_pending(r.client) > 0) {
        int64_t left = deadline - omni_mono_ms();
        if (left <= 0)
            break;
        if (omni_client_poll(r.client, left > 1000 ? 1000 : (int)left) < 0) {
            fprintf(stderr, "omni-submit: %s\n", strerror(errno));
            rc = -1;
        }
    }
    size_t pending = omni_client_pending(r.client);
    if (pending > 0 && !r.quiet)
        fprintf(stderr, "omni-submit: %zu message%s still unanswered; %s in %s and %s sent on the next run\n",
                pending, pending == 1 ? "" : "s", pending == 1 ? "it stays" : "they stay", opts.spool_dir,
                pending == 1 ? "is" : "are");
    printf("submitted=%llu acked=%llu nacked=%llu pending=%zu invalid=%llu\n", r.submitted, r.acked, r.nacked,
           pending, r.invalid);
    omni_client_destroy(&r.client);
    return rc == 0 && !failed && pending == 0 && r.invalid == 0 ? 0 : 1;
}
