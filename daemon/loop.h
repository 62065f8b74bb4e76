/* The router's one event loop (after Redis's ae.c): ZeroMQ sockets and plain file descriptors polled
 * together with zmq_poll, plus one periodic timer, the cron tick. Nothing here blocks but the poll. */
#ifndef OMNI_DAEMON_LOOP_H
#define OMNI_DAEMON_LOOP_H

#include <stdint.h>

#define LOOP_READ  1
#define LOOP_WRITE 2

typedef struct loop loop_t;
/* fd is -1 for a ZeroMQ socket; events is LOOP_READ and/or LOOP_WRITE that fired. */
typedef void loop_io_fn(loop_t *loop, int fd, int events, void *data);
typedef void loop_tick_fn(loop_t *loop, void *data);
/* Called right before the loop sleeps: the place to flush output (ae's beforeSleep). */
typedef void loop_before_sleep_fn(loop_t *loop, void *data);

loop_t *loop_new(void);
/* Frees the loop (not the sockets or fds it watched) and sets *loop = NULL. */
void loop_destroy(loop_t **loop);

/* Watches a ZeroMQ socket (borrowed; the caller closes it after loop_del_socket). Returns 0 or -1. */
int loop_add_socket(loop_t *loop, void *socket, int events, loop_io_fn *fn, void *data);
void loop_del_socket(loop_t *loop, void *socket);
/* Watches a file descriptor (borrowed). Adding one already watched replaces its events and callback. */
int loop_add_fd(loop_t *loop, int fd, int events, loop_io_fn *fn, void *data);
/* Changes which events of a watched fd matter; 0 keeps it registered but idle. */
void loop_set_fd_events(loop_t *loop, int fd, int events);
int loop_fd_events(const loop_t *loop, int fd);
void loop_del_fd(loop_t *loop, int fd);

/* The cron tick: fn runs every period_ms (and at most that late). One per loop. */
void loop_set_tick(loop_t *loop, int period_ms, loop_tick_fn *fn, void *data);
void loop_set_before_sleep(loop_t *loop, loop_before_sleep_fn *fn, void *data);

/* Runs until loop_stop(). Returns 0, or -1 when zmq_poll fails for a reason other than EINTR. */
int loop_run(loop_t *loop);
void loop_stop(loop_t *loop);
/* One turn: waits at most max_wait_ms (-1: until the next tick) for events, dispatches them, runs the
 * tick when due. Returns 0 or -1 like loop_run. */
int loop_once(loop_t *loop, int max_wait_ms);

#endif
