/* omnirouted: the omnirouter daemon. Reads its configuration, then runs the router (server.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "config_cli.h"
#include "omni/log.h"
#include "omni/util.h"
#include "server.h"

#define DEFAULT_CONFIG "/etc/omnirouter/omnirouter.yaml"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: omnirouted [--config FILE] [-D KEY=VALUE ...]\n"
            "       omnirouted --check-config FILE [-D KEY=VALUE ...]\n"
            "       omnirouted --config-reference\n"
            "\n"
            "  -c, --config FILE        configuration file (default " DEFAULT_CONFIG ")\n"
            "  -t, --check-config FILE  check FILE, print every warning and \"configuration OK\", or every error, and exit\n"
            "  -D KEY=VALUE             override one key, e.g. -D router.state_dir=/tmp/omni\n"
            "      --config-reference   print every configuration key with its type, default and bounds\n"
            "  -h, --help               this text\n"
            "\n"
            "Runs in the foreground and logs to stderr (journald under systemd). SIGTERM or SIGINT stop it; SIGHUP\n"
            "(or omnictl reload) reads the configuration again and applies it when it is valid.\n");
}

/* Whether a process answers on the unix socket at path (a socket file left by a process gone refuses). */
static bool socket_answers(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path)
        return false;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool up = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return up;
}

/* Whether process pid works in directory dir (the embedded Redis runs with --dir STATE_DIR/redis). */
static bool works_in(long pid, const char *dir)
{
    char path[64], cwd[4096], real[4096];
    snprintf(path, sizeof path, "/proc/%ld/cwd", pid);
    ssize_t n = readlink(path, cwd, sizeof cwd - 1);
    if (n <= 0 || realpath(dir, real) == NULL)
        return false;
    cwd[n] = '\0';
    return strcmp(cwd, real) == 0;
}

/* The pid of pid's parent and whether that parent runs omnirouted, from /proc. */
static bool parent_is_router(long pid, long *ppid)
{
    char path[64], buf[512], comm[32] = "";
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (close_paren == NULL || sscanf(close_paren + 1, " %*c %ld", ppid) != 1 || *ppid <= 1)
        return false;
    snprintf(path, sizeof path, "/proc/%ld/comm", *ppid);
    f = fopen(path, "r");
    bool ok = f && fgets(comm, sizeof comm, f) && strcmp(comm, "omnirouted\n") == 0;
    if (f)
        fclose(f);
    return ok;
}

/* Whether another router already runs with this configuration's ingest sockets or embedded Redis (said, at
 * fatal level): ZeroMQ would unlink its ipc socket files and bind new ones (cutting it off from its connectors
 * for good, even after this one stops), and the embedded Redis it supervises would be stopped as if stale.
 * The start is refused before either. */
static bool a_second_router(const router_config_t *cfg)
{
    for (size_t i = 0; i < cfg->router.n_ingest; i++) {
        const char *ep = cfg->router.ingest[i];
        if (strncmp(ep, "ipc://", 6) == 0 && ep[6] != '@' && socket_answers(ep + 6)) {
            omni_log(OMNI_LOG_FATAL, "ingest: cannot bind %s: Address already in use (a running process answers "
                     "on that socket: another omnirouted with the same router.ingest?)", ep);
            return true;
        }
    }
    if (cfg->redis.address != NULL || cfg->redis.n_sentinels > 0)
        return false;
    char *pidfile = omni_asprintf("%s/redis/redis.pid", cfg->router.state_dir);
    FILE *f = fopen(pidfile, "r");
    long pid = 0, ppid = 0;
    if (f && fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    if (f)
        fclose(f);
    free(pidfile);
    char *dir = omni_asprintf("%s/redis", cfg->router.state_dir);
    bool ours = pid > 1 && works_in(pid, dir); /* not a pid reused since by another program */
    free(dir);
    if (ours && parent_is_router(pid, &ppid) && ppid != (long)getpid()) {
        omni_log(OMNI_LOG_FATAL, "router.state_dir %s: its embedded Redis (pid %ld) is supervised by a running "
                 "omnirouted (pid %ld): each router needs a state directory of its own", cfg->router.state_dir, pid,
                 ppid);
        return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    static const config_cli_spec_t spec = { .prog = "omnirouted", .default_path = DEFAULT_CONFIG, .overrides = true,
                                            .usage = usage, .reference = config_print_reference };
    config_cli_t cli;
    omni_log_init("omnirouted", OMNI_LOG_INFO);
    int rc = config_cli_parse(&spec, argc, argv, &cli);
    if (rc >= 0)
        return rc;
    config_errors_t errs = { 0 };
    config_read_key_files(true);
    router_config_t *cfg = config_load(cli.path, cli.overrides, cli.n_overrides, &errs);
    if (!cfg)
        return config_cli_refused(spec.prog, &errs);
    /* Warnings do not stop the router: what they describe may be meant (work waiting in a queue). */
    config_errors_t warns = { 0 };
    config_warnings(cfg, &warns);
    if (cli.check) {
        for (size_t i = 0; i < warns.n; i++)
            fprintf(stderr, "%s\n", warns.lines[i]);
        config_errors_free(&warns);
        printf("configuration OK\n");
        config_destroy(&cfg);
        return 0;
    }
    omni_log_set_level((omni_log_level_t)cfg->router.log_level);
    for (size_t i = 0; i < warns.n; i++)
        omni_warn("%s", warns.lines[i]);
    config_errors_free(&warns);
    omni_info("starting with %s", cfg->source);
    if (a_second_router(cfg)) {
        config_destroy(&cfg);
        return 1;
    }
    router_source_t src = { .path = cli.path, .overrides = cli.overrides, .n_overrides = cli.n_overrides };
    return router_run(cfg, &src);
}
