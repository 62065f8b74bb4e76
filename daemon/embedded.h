/* The embedded default: with no redis.address configured, omnirouted runs its own redis-server on a unix
 * socket in <state_dir>/redis/ (append-only file on, appendfsync always, no TCP port), restarts it when
 * it dies, and stops it on exit. The child gets SIGTERM if the router dies, even by SIGKILL
 * (PR_SET_PDEATHSIG), so a killed router never leaves a second writer on the same files. */
#ifndef OMNI_DAEMON_EMBEDDED_H
#define OMNI_DAEMON_EMBEDDED_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct embedded embedded_t;

/* server: the redis-server binary (borrowed for the call). state_dir must exist. Returns NULL with a
 * logged error when the directory cannot be prepared. */
embedded_t *embedded_new(const char *server, const char *state_dir);
/* Stops the server (SIGTERM, waits up to 10 s, then SIGKILL), frees, sets *e = NULL. */
void embedded_destroy(embedded_t **e);

/* Starts the server now if it is not running. Returns 0 or -1 (logged). */
int embedded_start(embedded_t *e);
/* From the cron tick: reaps a dead server and, when may_start (not while the router stops), restarts it with
 * backoff (0.1 s doubling to 5 s). */
void embedded_tick(embedded_t *e, bool may_start);
/* The socket path clients connect to (borrowed). */
const char *embedded_socket(const embedded_t *e);
pid_t embedded_pid(const embedded_t *e);

/* Starts a private redis-server (server: the binary, looked up in PATH unless it holds a slash) with its
 * files in dir, on the unix socket sock (mode 700) and no TCP port, no snapshots, logging to dir/redis.log.
 * durable: append-only file, fsync always, pid file dir/redis.pid (the embedded Redis); else nothing on
 * disk (omnictl simulate's scratch server). The child runs in its own process group (a terminal's Ctrl-C
 * goes to the caller, which stops it in order) and gets SIGTERM when the caller dies, even by SIGKILL
 * (PR_SET_PDEATHSIG). All strings are borrowed for the call. Returns the pid, or -1 with errno. */
pid_t redis_spawn(const char *server, const char *dir, const char *sock, int durable);

/* The socket path the embedded server of state_dir uses, for omnictl (a new string the caller frees). */
char *embedded_socket_path(const char *state_dir);

#endif
