/* A small zmq_poll loop. Registrations live in a flat array; the poll set is rebuilt from it when it
 * changes. The router watches a handful of sockets and fds, so linear scans are the simple right answer. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "omni/log.h"
#include "omni/util.h"

typedef struct watch {
    void *socket; /* ZeroMQ socket, or NULL for an fd */
    int fd;
    int events;
    loop_io_fn *fn;
    void *data;
} watch_t;

struct loop {
    watch_t *watches;
    size_t n, cap;
    zmq_pollitem_t *items;
    size_t n_items, items_cap;
    int dirty;
    int running;
    int tick_ms;
    int64_t next_tick;
    loop_tick_fn *tick;
    void *tick_data;
    loop_before_sleep_fn *before_sleep;
    void *before_sleep_data;
};

loop_t *loop_new(void)
{
    loop_t *loop = omni_calloc(1, sizeof *loop);
    loop->tick_ms = 100;
    return loop;
}

void loop_destroy(loop_t **loop)
{
    if (!loop || !*loop)
        return;
    free((*loop)->watches);
    free((*loop)->items);
    free(*loop);
    *loop = NULL;
}

static watch_t *find(const loop_t *loop, void *socket, int fd)
{
    for (size_t i = 0; i < loop->n; i++)
        if (socket ? loop->watches[i].socket == socket : (!loop->watches[i].socket && loop->watches[i].fd == fd))
            return &loop->watches[i];
    return NULL;
}

static int add(loop_t *loop, void *socket, int fd, int events, loop_io_fn *fn, void *data)
{
    watch_t *w = find(loop, socket, fd);
    if (!w) {
        if (loop->n == loop->cap) {
            loop->cap = loop->cap ? loop->cap * 2 : 8;
            loop->watches = omni_realloc(loop->watches, loop->cap * sizeof *loop->watches);
        }
        w = &loop->watches[loop->n++];
    }
    *w = (watch_t){ .socket = socket, .fd = fd, .events = events, .fn = fn, .data = data };
    loop->dirty = 1;
    return 0;
}

static void del(loop_t *loop, void *socket, int fd)
{
    watch_t *w = find(loop, socket, fd);
    if (!w)
        return;
    *w = loop->watches[--loop->n];
    loop->dirty = 1;
}

int loop_add_socket(loop_t *loop, void *socket, int events, loop_io_fn *fn, void *data)
{
    return add(loop, socket, -1, events, fn, data);
}

void loop_del_socket(loop_t *loop, void *socket) { del(loop, socket, -1); }

int loop_add_fd(loop_t *loop, int fd, int events, loop_io_fn *fn, void *data)
{
    return add(loop, NULL, fd, events, fn, data);
}

void loop_del_fd(loop_t *loop, int fd) { del(loop, NULL, fd); }

void loop_set_fd_events(loop_t *loop, int fd, int events)
{
    watch_t *w = find(loop, NULL, fd);
    if (w && w->events != events) {
        w->events = events;
        loop->dirty = 1;
    }
}

int loop_fd_events(const loop_t *loop, int fd)
{
    watch_t *w = find(loop, NULL, fd);
    return w ? w->events : 0;
}

void loop_set_tick(loop_t *loop, int period_ms, loop_tick_fn *fn, void *data)
{
    loop->tick_ms = period_ms > 0 ? period_ms : 100;
    loop->tick = fn;
    loop->tick_data = data;
    loop->next_tick = omni_mono_ms() + loop->tick_ms;
}

void loop_set_before_sleep(loop_t *loop, loop_before_sleep_fn *fn, void *data)
{
    loop->before_sleep = fn;
    loop->before_sleep_data = data;
}

void loop_stop(loop_t *loop) { loop->running = 0; }

static void rebuild(loop_t *loop)
{
    if (loop->items_cap < loop->n) {
        loop->items_cap = loop->n;
        loop->items = omni_realloc(loop->items, loop->items_cap * sizeof *loop->items);
    }
    loop->n_items = loop->n;
    for (size_t i = 0; i < loop->n; i++) {
        const watch_t *w = &loop->watches[i];
        loop->items[i] = (zmq_pollitem_t){
            .socket = w->socket,
            .fd = w->socket ? 0 : w->fd,
            .events = (short)(((w->events & LOOP_READ) ? ZMQ_POLLIN : 0) | ((w->events & LOOP_WRITE) ? ZMQ_POLLOUT : 0)),
        };
    }
    loop->dirty = 0;
}

/* Dispatches the ready items. A callback may add or remove watches, so each ready item is looked up again
 * by its identity before its callback runs, and a removed one is skipped. */
static void dispatch(loop_t *loop)
{
    size_t n = loop->n_items;
    zmq_pollitem_t ready[n ? n : 1];
    memcpy(ready, loop->items, n * sizeof *ready);
    for (size_t i = 0; i < n; i++) {
        if (!ready[i].revents)
            continue;
        watch_t *w = find(loop, ready[i].socket, ready[i].socket ? -1 : ready[i].fd);
        if (!w)
            continue;
        int ev = ((ready[i].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) ? LOOP_READ : 0) |
                 ((ready[i].revents & ZMQ_POLLOUT) ? LOOP_WRITE : 0);
        ev &= w->events ? w->events : 0;
        if (ev)
            w->fn(loop, w->socket ? -1 : w->fd, ev, w->data);
    }
}

int loop_once(loop_t *loop, int max_wait_ms)
{
    if (loop->before_sleep)
        loop->before_sleep(loop, loop->before_sleep_data);
    if (loop->dirty)
        rebuild(loop);
    int64_t wait = loop->next_tick - omni_mono_ms();
    if (wait < 0)
        wait = 0;
    if (max_wait_ms >= 0 && wait > max_wait_ms)
        wait = max_wait_ms;
    int rc = zmq_poll(loop->items, (int)loop->n_items, (long)wait);
    if (rc < 0 && errno != EINTR) {
        omni_error("zmq_poll: %s", zmq_strerror(errno));
        return -1;
    }
    if (rc > 0)
        dispatch(loop);
    if (omni_mono_ms() >= loop->next_tick) {
        loop->next_tick = omni_mono_ms() + loop->tick_ms;
        if (loop->tick)
            loop->tick(loop, loop->tick_data);
    }
    return 0;
}

int loop_run(loop_t *loop)
{
    loop->running = 1;
    while (loop->running)
        if (loop_once(loop, -1) != 0)
            return -1;
    return 0;
}
