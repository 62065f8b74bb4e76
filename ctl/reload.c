/* omnictl reload: asks every router on this machine to read its configuration again (SIGHUP), then waits
 * for each to say what became of it. Routers on other machines reload on their own signal (systemctl
 * reload omnirouted there); they are listed, not signalled. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "omni/util.h"

#define RELOAD_WAIT_MS 10000 /* a router answers within a tick and a status update; this is generous */

typedef struct target {
    char *name;
    long pid;
    unsigned long reloads; /* its count before the signal */
    int state;             /* 0 waiting, 1 answered, -1 not signalled */
} target_t;

/* Whether pid runs omnirouted (1), runs something else (0), or cannot be told (-1: gone meanwhile, or hidden by
 * /proc's hidepid=): a router's entry outlives it by a few seconds (its TTL), and a pid freed by a router killed
 * meanwhile may already be another program's, which SIGHUP would most likely end. */
static int is_router(long pid)
{
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    bool ok = fgets(comm, sizeof comm, f) != NULL && strcmp(comm, "omnirouted\n") == 0;
    fclose(f);
    return ok;
}

/* Whether the router NAME (HOST:PID, as it names itself in Redis) with this pid: 1 runs on this machine, 0
 * was of this machine and runs no more (its entry outlives it by its TTL), -1 is of another machine. */
int ctl_router_here(const char *name, long pid)
{
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    size_t hostlen = strlen(host);
    if (strncmp(name, host, hostlen) != 0 || name[hostlen] != ':')
        return -1;
    if (pid <= 1)
        return 0;
    if (kill((pid_t)pid, 0) == 0)
        return is_router(pid) == 1;
    /* EPERM: another user's process, which /proc may hide: unless it is seen to be another program, it is
     * taken to be the router (signalling it then says why not), not called stopped */
    return errno == ESRCH ? 0 : is_router(pid) != 0;
}

static unsigned long field_ul(const redisReply *h, const char *f)
{
    const char *v = ctl_field(h, f);
    return v ? strtoul(v, NULL, 10) : 0;
}

int ctl_reload(ctl_t *c, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return -1; /* wrong arguments: omnictl prints the command's usage and exits 2 */
    redisReply *names = ctl_cmd(c, "ZRANGE %s" KEY_ROUTERS " 0 -1", c->prefix);
    size_t n = names->type == REDIS_REPLY_ARRAY ? names->elements : 0, signalled = 0;
    target_t *t = omni_calloc(n + 1, sizeof *t);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        t[i].name = omni_strdup(names->element[i]->str);
        redisReply *h = ctl_cmd(c, "HGETALL %s" KEY_ROUTER, c->prefix, t[i].name);
        t[i].pid = (long)field_ul(h, "pid");
        t[i].reloads = field_ul(h, "reloads");
        int here = h->elements == 0 ? 0 : ctl_router_here(t[i].name, t[i].pid);
        t[i].state = -1;
        if (h->elements == 0) {
            /* expired meanwhile: not alive */
        } else if (here < 0) {
            printf("router %s: on another machine: reload it there (systemctl reload omnirouted)\n", t[i].name);
        } else if (here == 0) {
            /* A router stopped (or restarted) within the entry's TTL: nothing to reload there, and not a
             * failure: the routers that run are signalled, and none signalled at all still exits 1 below. */
            printf("router %s: pid %ld is not omnirouted (the router stopped; its entry expires within "
                   "seconds): not signalled\n", t[i].name, t[i].pid);
        } else if (kill((pid_t)t[i].pid, SIGHUP) != 0) {
            printf("router %s: cannot signal pid %ld: %s\n", t[i].name, t[i].pid, strerror(errno));
            rc = 1;
        } else {
            t[i].state = 0;
            signalled++;
        }
        freeReplyObject(h);
    }
    freeReplyObject(names);
    if (signalled == 0) { /* nothing was reloaded: not a success */
        fprintf(stderr, "omnictl: reload: %s\n",
                n == 0 ? "no router is running with this configuration's Redis (if redis.address or "
                         "redis.key_prefix changed: a reload cannot apply that; restart the routers)"
                       : "no router of this machine was signalled");
        rc = 1;
    }
    int64_t deadline = omni_mono_ms() + RELOAD_WAIT_MS;
    for (size_t done = 0; done < signalled && omni_mono_ms() < deadline;) {
        for (size_t i = 0; i < n; i++) {
            if (t[i].state != 0)
                continue;
            redisReply *h = ctl_cmd(c, "HGETALL %s" KEY_ROUTER, c->prefix, t[i].name);
            if (field_ul(h, "reloads") > t[i].reloads) {
                const char *what = ctl_field(h, "reload");
                printf("router %s: %s\n", t[i].name, what ? what : "reloaded");
                rc |= what && !strncmp(what, "refused", 7);
                t[i].state = 1;
                done++;
            } else if (ctl_router_here(t[i].name, t[i].pid) == 0) { /* killed or stopped: no answer will come */
                printf("router %s: stopped before it answered (see its log)\n", t[i].name);
                rc = 1;
                t[i].state = 1;
                done++;
            }
            freeReplyObject(h);
        }
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL); /* polling a hash a router updates within a tick; no readiness to wait on */
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i].state == 0) {
            printf("router %s: no answer within %d s (see its log)\n", t[i].name, RELOAD_WAIT_MS / 1000);
            rc = 1;
        }
        free(t[i].name);
    }
    free(t);
    return rc;
}
