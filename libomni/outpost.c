/* Who an outpost connector pointed, and when (omni/outpost.h). A flat array, newest last: an outpost channel
 * is quiet by definition (nobody staffs it), so a linear look per message costs nothing worth an index. */
#include "omni/outpost.h"
#include "omni/log.h"
#include "omni/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pointed {
    int64_t at;   /* wall ms */
    char *sender; /* owned */
} pointed_t;

struct omni_outpost {
    const char *dir, *name;
    int64_t window_ms;
    size_t max;
    pointed_t *list; /* oldest first */
    size_t n, cap;
};

static void forget_first(omni_outpost_t *o, size_t k)
{
    for (size_t i = 0; i < k; i++)
        free(o->list[i].sender);
    memmove(o->list, o->list + k, (o->n - k) * sizeof *o->list);
    o->n -= k;
}

/* Drops whoever's window is over at now (the list is oldest first). A time ahead of now means the wall clock
 * stepped back since (set wrong ahead, then corrected): when they were pointed is not known, so it is read as
 * now, which keeps the list in time order (those times are its tail) and their window to one from the step,
 * instead of running until the clock catches up. */
static void expire(omni_outpost_t *o, int64_t now)
{
    for (size_t i = o->n; i-- > 0 && o->list[i].at > now;)
        o->list[i].at = now;
    size_t k = 0;
    while (k < o->n && o->list[k].at <= now - o->window_ms)
        k++;
    if (k)
        forget_first(o, k);
}

static void add(omni_outpost_t *o, const char *sender, int64_t at)
{
    if (o->n == o->max)
        forget_first(o, 1);
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        o->list = omni_realloc(o->list, o->cap * sizeof *o->list);
    }
    o->list[o->n++] = (pointed_t){ at, omni_strdup(sender) };
}

static void save(omni_outpost_t *o)
{
    size_t cap = 64, len = 0;
    for (size_t i = 0; i < o->n; i++)
        cap += strlen(o->list[i].sender) + 24;
    char *buf = omni_calloc(1, cap);
    for (size_t i = 0; i < o->n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%" PRId64 " %s\n", o->list[i].at, o->list[i].sender);
    if (omni_state_write(o->dir, o->name, buf, len) != 0)
        omni_warn("%s/%s: cannot save who was pointed to a covered channel: %s (after a restart they may be "
                  "pointed again)", o->dir, o->name, strerror(errno));
    free(buf);
}

omni_outpost_t *omni_outpost_new(const char *dir, const char *name, int64_t window_ms, size_t max)
{
    char *text = NULL;
    /* A file that cannot be read at all costs the memory, never the channel: a webhook connector that does not
     * start loses what its provider sends meanwhile, while forgetting who was pointed costs a second pointer. */
    if (omni_state_read(dir, name, &text, NULL) < 0) {
        omni_warn("%s/%s: cannot be read (%s): who was pointed to a covered channel is not known, nobody is "
                  "remembered (some may be pointed again)", dir, name, strerror(errno));
        text = NULL;
    }
    omni_outpost_t *o = omni_calloc(1, sizeof *o);
    o->dir = dir, o->name = name, o->window_ms = window_ms, o->max = max ? max : 1;
    size_t line = 0;
    for (char *p = text, *next; p && *p; p = next) {
        next = strchr(p, '\n');
        if (next)
            *next++ = '\0';
        line++;
        size_t len = strlen(p);
        if (len && p[len - 1] == '\r') /* a file saved with CRLF line ends (edited by hand) */
            p[len - 1] = '\0';
        char *end, *sender;
        errno = 0;
        long long at = strtoll(p, &end, 10);
        sender = end + 1;
        if (errno || end == p || *end != ' ' || *sender == '\0' || strpbrk(sender, " \t\r") ||
            (o->n && at < o->list[o->n - 1].at)) {
            omni_warn("%s/%s:%zu: not \"MS SENDER\" in time order: skipped", dir, name, line);
            continue;
        }
        add(o, sender, at);
    }
    free(text);
    return o;
}

void omni_outpost_destroy(omni_outpost_t **o)
{
    if (o == NULL || *o == NULL)
        return;
    forget_first(*o, (*o)->n);
    free((*o)->list);
    free(*o);
    *o = NULL;
}

int omni_outpost_due(omni_outpost_t *o, const char *sender, int64_t now_ms)
{
    expire(o, now_ms);
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->list[i].sender, sender) == 0)
            return 0;
    return 1;
}

int omni_outpost_claim(omni_outpost_t *o, const char *sender, int64_t now_ms)
{
    if (!omni_outpost_due(o, sender, now_ms))
        return 0;
    add(o, sender, now_ms); /* in time order: expire() brought any time ahead of now_ms back to it */
    save(o);
    return 1;
}

void omni_outpost_forget(omni_outpost_t *o, const char *sender)
{
    for (size_t i = o->n; i-- > 0;)
        if (strcmp(o->list[i].sender, sender) == 0) {
            free(o->list[i].sender);
            memmove(o->list + i, o->list + i + 1, (o->n - i - 1) * sizeof *o->list);
            o->n--;
            save(o);
            return;
        }
}
