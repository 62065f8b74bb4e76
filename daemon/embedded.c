/* Supervises the embedded redis-server. See embedded.h. */
#include "embedded.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "omni/log.h"
#include "omni/util.h"

struct embedded {
    char *server, *dir, *socket, *pidfile;
    pid_t pid;
    int backoff_ms;
    int64_t next_start;
    int64_t started_at;
};

char *embedded_socket_path(const char *state_dir) { return omni_asprintf("%s/redis/redis.sock", state_dir); }

/* A server left running by a router that was killed before PR_SET_PDEATHSIG could act (or from an older
 * version) would be a second writer of the append-only file: stop it first. */
static void stop_stale(embedded_t *e)
{
    FILE *f = fopen(e->pidfile, "r");
    if (!f)
        return;
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    if (pid <= 1 || kill((pid_t)pid, 0) != 0)
        return;
    char exe[64], path[4096];
    snprintf(exe, sizeof exe, "/proc/%ld/exe", pid);
    ssize_t n = readlink(exe, path, sizeof path - 1);
    if (n <= 0 || (path[n] = 0, !strstr(path, "redis")))
        return; /* the pid was reused by something else */
    omni_warn("embedded redis: stopping a stale server (pid %ld) left in %s", pid, e->dir);
    kill((pid_t)pid, SIGTERM);
    for (int i = 0; i < 100 && kill((pid_t)pid, 0) == 0; i++)
        usleep(100 * 1000); /* start-up only, before the loop runs */
}

embedded_t *embedded_new(const char *server, const char *state_dir)
{
    embedded_t *e = omni_calloc(1, sizeof *e);
    e->server = omni_strdup(server);
    e->dir = omni_asprintf("%s/redis", state_dir);
    e->socket = embedded_socket_path(state_dir);
    e->pidfile = omni_asprintf("%s/redis.pid", e->dir);
    e->backoff_ms = 100;
    if (omni_mkdir_p(e->dir, 0700) != 0) {
        omni_error("embedded redis: cannot create %s: %s", e->dir, strerror(errno));
        embedded_destroy(&e);
        return NULL;
    }
    stop_stale(e);
    return e;
}

pid_t redis_spawn(const char *server, const char *dir, const char *sock, int durable)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(1); /* the parent died before prctl took effect */
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    const char *common[] = { server, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700", "--dir", dir,
                             "--save", "", "--daemonize", "no", "--loglevel", "warning", "--logfile", "redis.log" };
    const char *durable_args[] = { "--pidfile", "redis.pid", "--appendonly", "yes", "--appendfsync", "always" };
    const char *scratch_args[] = { "--appendonly", "no" };
    enum { NC = sizeof common / sizeof *common, ND = sizeof durable_args / sizeof *durable_args };
    const char *argv[NC + ND + 1];
    memcpy(argv, common, sizeof common);
    if (durable)
        memcpy(argv + NC, durable_args, sizeof durable_args), argv[NC + ND] = NULL;
    else
        memcpy(argv + NC, scratch_args, sizeof scratch_args), argv[NC + 2] = NULL;
    execvp(server, (char *const *)argv);
    fprintf(stderr, "redis-server: cannot run %s: %s\n", server, strerror(errno));
    _exit(127);
}

int embedded_start(embedded_t *e)
{
    if (e->pid > 0)
        return 0;
    unlink(e->socket); /* a stale socket file would make clients fail instead of wait */
    pid_t pid = redis_spawn(e->server, e->dir, e->socket, 1);
    if (pid < 0) {
        omni_error("embedded redis: fork: %s", strerror(errno));
        return -1;
    }
    e->pid = pid;
    e->started_at = omni_mono_ms();
    omni_info("embedded redis: started %s (pid %d) on unix:%s, append-only, fsync always", e->server, (int)pid,
              e->socket);
    return 0;
}

void embedded_tick(embedded_t *e, bool may_start)
{
    if (e->pid > 0) {
        int status;
        pid_t r = waitpid(e->pid, &status, WNOHANG);
        if (r != e->pid)
            return;
        if (WIFEXITED(status))
            omni_log_event(OMNI_LOG_WARN, OMNI_MSGID_EMBEDDED_EXITED, NULL,
                           "embedded redis: exited with status %d (see %s/redis.log)", WEXITSTATUS(status), e->dir);
        else
            omni_log_event(OMNI_LOG_WARN, OMNI_MSGID_EMBEDDED_EXITED, NULL, "embedded redis: killed by signal %d",
                           WTERMSIG(status));
        e->pid = 0;
        /* a server that ran a while gets restarted at once; one that keeps dying backs off */
        if (omni_mono_ms() - e->started_at > 10000)
            e->backoff_ms = 100;
        e->next_start = omni_mono_ms() + e->backoff_ms;
        e->backoff_ms = e->backoff_ms * 2 > 5000 ? 5000 : e->backoff_ms * 2;
        return;
    }
    if (may_start && omni_mono_ms() >= e->next_start)
        embedded_start(e);
}

const char *embedded_socket(const embedded_t *e) { return e->socket; }
pid_t embedded_pid(const embedded_t *e) { return e->pid; }

void embedded_destroy(embedded_t **ep)
{
    if (!ep || !*ep)
        return;
    embedded_t *e = *ep;
    if (e->pid > 0) {
        kill(e->pid, SIGTERM);
        int status, i;
        for (i = 0; i < 200 && waitpid(e->pid, &status, WNOHANG) == 0; i++)
            usleep(50 * 1000); /* shutdown only: redis fsyncs and exits */
        if (i == 200) {
            omni_warn("embedded redis: did not stop in 10 s; killing it");
            kill(e->pid, SIGKILL);
            waitpid(e->pid, &status, 0);
        }
        omni_info("embedded redis: stopped");
    }
    free(e->server);
    free(e->dir);
    free(e->socket);
    free(e->pidfile);
    free(e);
    *ep = NULL;
}
