/* omni-email: IMAP mailboxes to omnirouted. Each poll, per mailbox: SELECT, reconcile the UID cursor
 * (uidstate.h), UID SEARCH the next range, fetch the batch without \Seen (imap.h: one command for the
 * metadata, the bodies as many to a command as fit in 8 MiB), parse each as it arrives (mime.h),
 * build (email_build.h), submit, handing each to the router soon after it is spooled (the runtime serves
 * its client each time the loop's thread has taken what was queued, below; every FLUSH_EVERY messages in
 * any case), so the router stores a batch while the rest of it is read; then commit (fsync), save the
 * cursor, and only then set \Seen.
 * The runtime (connector.h) does the rest: config, signals, the spool and the router.
 *
 * Threads. The IMAP calls block (imap.h), and the runtime's loop must not: a server that stalls would stop
 * the watchdog, the router's answers, SIGTERM and every other mailbox for up to timeout_ms. So each mailbox
 * has a thread of its own that runs its turn (poll_box, below, as it always ran); what needs the runtime,
 * which is not thread-safe (parsing, building and submitting each message, flushing, the commit, the state
 * file), it hands to the loop's thread through an eventfd the runtime watches: each fetched message into a
 * short queue (take_one: QUEUE_MAX messages or QUEUE_BYTES at most) that the loop's thread takes in order
 * while this one reads the next (a fetch ends only once its messages were taken: wait_queue), the commit
 * and the state file as a request it waits for (on_loop). email_poll, on the loop's thread, serves those,
 * starts the turns that are due and decides what the runtime hears (OMNI_POLL_PENDING while no turn ended
 * since the last answer). So the order of everything within a mailbox's turn is the one it always was,
 * and a stalled server holds up only its own thread. SIGTERM: email_close stops the threads (imap_stop_t: a connect or login at once, a
 * command's wait within STOP_GRACE_MS, so the \Seen after a commit still gets done when the server
 * answers), serves their last requests (a take is refused then: the cursor stays before it) and joins them. */
#include "email_build.h"
#include "email_config.h"
#include "imap.h"
#include "mime.h"
#include "uidstate.h"
#include "omni/connector.h"
#include "omni/log.h"
#include "omni/util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <curl/curl.h>

#define SEARCH_SPAN 1000          /* UIDs per search range: keeps each SEARCH answer small */
#define SEARCHES_PER_POLL 20      /* ranges searched per mailbox per poll (sparse UIDs, a seen backlog) */
#define FLUSH_EVERY 32            /* messages of a batch written to the spool (unsynced) and sent together */
#define STOP_GRACE_MS 1000        /* on SIGTERM, how long a command still waits for its server */
#define QUEUE_MAX 64              /* fetched messages waiting for the loop's thread to take them, at most */
#define QUEUE_BYTES (8u << 20)    /* and their bytes (one larger message may wait alone) */

typedef struct email_conn email_conn_t;

/* What a mailbox's thread asks the loop's thread to do and waits for (on_loop). */
typedef enum { REQ_SAVE, REQ_COMMIT } req_kind_t;

typedef struct request {
    req_kind_t kind;
    int rc, err;                 /* the answer, and errno with it */
} request_t;

typedef struct batch batch_t;
typedef struct take_arg take_arg_t;

/* A fetched message the mailbox's thread queued for the loop's thread to take (take_one, serve_queue). */
typedef struct queued {
    struct queued *next;
    take_arg_t *a;               /* the fetch it came from (its answer goes there) */
    size_t i;                    /* its index in that fetch */
    imap_message_t m;            /* owned (m.raw) */
} queued_t;

typedef struct box {
    email_box_t *cfg;        /* borrowed from email_conn_t.cfg */
    email_conn_t *ec;
    /* The mailbox's thread's (the loop's thread reads them only while it waits in on_loop): */
    imap_t *imap;            /* owned */
    uid_cursor_t cur;
    bool known;              /* cur holds a cursor (from the state file or a reconcile) */
    /* The loop's thread's: */
    bool failing;
    bool answered;           /* its last turn reached the server */
    bool busy;               /* a turn is under way on its thread */
    int backoff_ms;
    int64_t next_try_ms;     /* monotonic; a failing mailbox waits until then */
    int64_t next_turn_ms;    /* monotonic; an answering one until then (poll_ms after its last turn began) */
    int64_t turn_began_ms;
    /* Between the two, under email_conn_t.mu: */
    pthread_t thread;
    bool started, exited;
    pthread_cond_t wake;     /* the thread waits on it for go, quit and its request's answer */
    bool go;                 /* loop -> thread: take a turn */
    request_t *req;          /* thread -> loop: a request to serve (NULL: none) */
    bool req_answered;
    queued_t *q_head, *q_tail; /* thread -> loop: messages to take, in order */
    size_t q_n, q_bytes;     /* queued and not taken yet (popped ones too until they are) */
    bool done;               /* thread -> loop: the turn ended with done_rc (poll_box), done_more */
    int done_rc;
    bool done_more;
} box_t;

struct email_conn {
    email_config_t cfg;
    box_t *boxes;
    uidstate_t *state;       /* owned; the loop's thread's */
    omni_limits_t lim;
    pthread_mutex_t mu;
    bool quit;               /* under mu: the threads end (email_close) */
    int efd;                 /* eventfd the runtime watches: a thread posted a request or ended a turn */
    imap_stop_t stop;
};

/* UIDs of one batch. taken: spooled, they get \Seen after the commit (fetching never sets it, imap.h). */
struct batch {
    uint32_t *taken;
    size_t n_taken;
};

static void push(uint32_t **v, size_t *n, uint32_t uid)
{
    *v = omni_realloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = uid;
}

static int check(omni_connector_t *ctx, char *err, size_t errsz)
{
    email_config_t c;
    (void)err, (void)errsz;
    char first[512];
    /* every entry's error is reported (omni_connector_check_error), not only the first */
    if (email_config_check(ctx, false, &c, first, sizeof first, ctx) == 0)
        email_config_free(&c);
    return 0;
}

static int save_state(omni_connector_t *ctx, email_conn_t *ec, box_t *b)
{
    uidstate_put(ec->state, b->cfg->key, &b->cur);
    size_t len;
    char *data = uidstate_serialize(ec->state, &len);
    int rc = omni_connector_state_save(ctx, UIDSTATE_FILE, data, len);
    if (rc != 0)
        omni_error("%s: cannot save %s: %s", b->cfg->key, UIDSTATE_FILE, strerror(errno));
    free(data);
    return rc;
}

/* Parses, builds and submits one fetched message (m: its raw bytes are freed by the caller). Returns 0
 * (taken or skipped for good: the cursor may pass it), 1 when the spool is full (stop here, do not pass
 * it), -1 on an error (logged). */
static int take(omni_connector_t *ctx, email_conn_t *ec, box_t *b, uint32_t uid, const imap_message_t *m,
                batch_t *bt)
{
    if (m->gone) {
        omni_info("%s: UID %u was expunged before it could be read", b->cfg->key, uid);
        return 0;
    }
    email_parsed_t *p = email_parse(m->raw, m->len);
    char key[65];
    email_content_key(m->raw, m->len, key);
    email_source_t src = {
        .account = b->cfg->account, .mailbox = b->cfg->mailbox, .address = b->cfg->address,
        .uidvalidity = b->cur.uidvalidity, .uid = uid, .has_internaldate = m->meta.has_internaldate,
        .internaldate_ms = m->meta.internaldate_ms, .now_ms = omni_wall_ms(),
        .size = m->meta.size >= 0 ? m->meta.size : (long long)m->len, .fetch_truncated = m->truncated,
        .max_text = ec->cfg.max_text,
    };
    omni_msg_t *msg = email_build(p, key, &src, &ec->lim);
    int r = omni_connector_submit(ctx, msg);
    int saved = errno;
    if (r == 0 || r == OMNI_SUBMIT_INVALID)
        omni_debug("%s: UID %u -> %s%s", b->cfg->key, uid, msg->id, r ? " (invalid, not sent)" : "");
    omni_msg_destroy(&msg);
    email_parsed_destroy(&p);
    if (r == 0 || r == OMNI_SUBMIT_INVALID) {
        if (r == 0) {
            push(&bt->taken, &bt->n_taken, uid);
            if (bt->n_taken % FLUSH_EVERY == 0 && omni_connector_flush(ctx) != 0)
                return -1;
        }
        if (m->meta.has_internaldate && (!b->cur.has_last_date || m->meta.internaldate_ms > b->cur.last_date_ms)) {
            b->cur.has_last_date = true;
            b->cur.last_date_ms = m->meta.internaldate_ms;
        }
        return 0;
    }
    if (saved == EAGAIN)
        return 1;
    omni_error("%s: cannot spool UID %u: %s", b->cfg->key, uid, strerror(saved));
    return -1;
}

/* Wakes the loop's thread (the runtime watches ec->efd). */
static void wake_loop(email_conn_t *ec)
{
    uint64_t one = 1;
    if (write(ec->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        omni_fatal("eventfd: %s", strerror(errno));
}

/* From a mailbox's thread: has the loop's thread do r (serve_request) and waits for it. Returns r->rc, with
 * errno r->err. */
static int on_loop(box_t *b, request_t *r)
{
    email_conn_t *ec = b->ec;
    pthread_mutex_lock(&ec->mu);
    b->req = r;
    b->req_answered = false;
    pthread_mutex_unlock(&ec->mu);
    wake_loop(ec);
    pthread_mutex_lock(&ec->mu);
    while (!b->req_answered)
        pthread_cond_wait(&b->wake, &ec->mu);
    b->req = NULL;
    pthread_mutex_unlock(&ec->mu);
    errno = r->err;
    return r->rc;
}

static int loop_save(box_t *b)
{
    request_t r = {.kind = REQ_SAVE};
    return on_loop(b, &r);
}

static int loop_commit(box_t *b)
{
    request_t r = {.kind = REQ_COMMIT};
    return on_loop(b, &r);
}

/* What take_one needs: the batch being taken, and where its prefix taken so far ends. Written by the
 * loop's thread (serve_queue) under email_conn_t.mu; read by the mailbox's thread under it. */
struct take_arg {
    box_t *b;
    const uint32_t *uids;    /* of this fetch: uids[0] is the first message it hands on */
    size_t base;             /* index of uids[0] in the batch */
    batch_t *bt;
    size_t *taken;           /* the batch's prefix the cursor may pass */
    int rc;                  /* take's first non-zero answer */
};

/* imap_take_fn: queues message i of the fetch (its bytes too) for the loop's thread, which takes it
 * (serve_queue) while this thread reads the next ones; waits while the queue is full. Returns take's
 * first non-zero answer once the loop's thread gave one (the rest of the fetch is dropped, as take
 * wants), else 0. wait_queue() waits until all were taken. */
static int take_one(void *arg, size_t i, imap_message_t *m)
{
    take_arg_t *a = arg;
    box_t *b = a->b;
    email_conn_t *ec = b->ec;
    pthread_mutex_lock(&ec->mu);
    while (a->rc == 0 && b->q_n > 0 && (b->q_n >= QUEUE_MAX || b->q_bytes >= QUEUE_BYTES))
        pthread_cond_wait(&b->wake, &ec->mu);
    int rc = a->rc;
    bool wake = false;
    if (rc == 0) {
        queued_t *q = omni_calloc(1, sizeof *q);
        q->a = a;
        q->i = i;
        q->m = *m;
        m->raw = NULL;
        wake = b->q_head == NULL; /* else the loop's thread was woken for the first one and takes all */
        if (b->q_tail)
            b->q_tail->next = q;
        else
            b->q_head = q;
        b->q_tail = q;
        b->q_n++;
        b->q_bytes += q->m.len;
    }
    pthread_mutex_unlock(&ec->mu);
    free(m->raw);
    m->raw = NULL;
    if (wake)
        wake_loop(ec);
    return rc;
}

/* From a mailbox's thread: waits until the loop's thread took every message queued. */
static void wait_queue(box_t *b)
{
    pthread_mutex_lock(&b->ec->mu);
    while (b->q_n > 0)
        pthread_cond_wait(&b->wake, &b->ec->mu);
    pthread_mutex_unlock(&b->ec->mu);
}

/* Takes uids[0..n) (ascending) in order: their metadata with one command, their bodies several to a
 * command (imap.h), each submitted as it comes in. *taken: how many the cursor may pass (a prefix).
 * Returns 0 when all were taken, 1 when the spool is full, 2 when UIDVALIDITY changed, -1 on an error
 * (logged). */
static int take_all(box_t *b, const uint32_t *uids, size_t n, batch_t *bt, size_t *taken)
{
    *taken = 0;
    if (n == 0)
        return 0;
    imap_meta_t *meta = omni_calloc(n, sizeof *meta);
    bool *found = omni_calloc(n, sizeof *found);
    int rc = 0, r = imap_fetch_meta(b->imap, b->cfg->mailbox, b->cur.uidvalidity, uids, n, meta, found);
    if (r != IMAP_OK)
        rc = r == IMAP_CHANGED ? 2 : -1;
    size_t i = 0;
    while (rc == 0 && i < n) {
        if (!found[i]) {
            omni_info("%s: UID %u was expunged before it could be read", b->cfg->key, uids[i]);
            *taken = ++i;
            continue;
        }
        size_t k = 1, handed = 0; /* the run of messages still there, fetched together where they fit */
        while (i + k < n && found[i + k])
            k++;
        take_arg_t a = {.b = b, .uids = uids + i, .base = i, .bt = bt, .taken = taken};
        r = imap_fetch_bodies(b->imap, b->cfg->mailbox, b->cur.uidvalidity, uids + i, meta + i, k, take_one,
                              &a, &handed);
        wait_queue(b); /* then a.rc and *taken are final, and no longer written */
        if (a.rc != 0) {
            rc = a.rc;
            break;
        }
        if (r != IMAP_OK) {
            if (r != IMAP_CHANGED)
                omni_warn("%s: fetching UID %u: %s", b->cfg->key, uids[i + (handed < k ? handed : k - 1)],
                          imap_error(b->imap));
            rc = r == IMAP_CHANGED ? 2 : -1;
            break;
        }
        if (handed == 0) { /* cannot happen (imap.h); guards the loop */
            rc = -1;
            break;
        }
        i += handed;
    }
    free(found);
    free(meta);
    return rc;
}

/* One mailbox's turn, on its thread. Returns 0 (reached; *more when it stopped at the batch size) or -1
 * (failed). */
static int poll_box(email_conn_t *ec, box_t *b, bool *more)
{
    uint32_t uv, un;
    if (imap_status(b->imap, b->cfg->mailbox, &uv, &un) != IMAP_OK) {
        omni_warn("%s: SELECT: %s", b->cfg->key, imap_error(b->imap));
        return -1;
    }
    uint32_t old_uv = b->cur.uidvalidity;
    uid_change_t ch = uidstate_reconcile(&b->cur, b->known, uv, un, ec->cfg.initial);
    b->known = true;
    if (ch == UID_FIRST)
        omni_info("%s: first sight (UIDVALIDITY %u, UIDNEXT %u): taking UIDs up to %u that match \"%s\"",
                  b->cfg->key, uv, un, b->cur.backlog_until, b->cur.backlog[0] ? b->cur.backlog : "nothing");
    if (ch == UID_RESET)
        omni_warn("%s: UIDVALIDITY changed from %u to %u: every UID is new; re-reading UIDs up to %u that "
                  "match \"%s\" (mail already routed comes again with the same ids and the router drops it)",
                  b->cfg->key, old_uv, uv, b->cur.backlog_until, b->cur.backlog[0] ? b->cur.backlog : "nothing");
    if (ch != UID_SAME && loop_save(b) != 0)
        return -1;

    uid_cursor_t before = b->cur;
    batch_t bt = {0};
    size_t done = 0, searches = 0;
    int rc = 0;
    bool stop = false;
    char crit[96];
    uint32_t end;
    while (!stop && done < ec->cfg.batch &&
           uidstate_next_search(&b->cur, un, SEARCH_SPAN, crit, sizeof crit, &end)) {
        if (searches++ == SEARCHES_PER_POLL) {
            *more = true;
            break;
        }
        uint32_t first = b->cur.last_uid + 1, *uids;
        size_t n;
        int r = imap_search(b->imap, b->cfg->mailbox, uv, crit, &uids, &n);
        if (r == IMAP_CHANGED) {
            *more = true; /* the next poll reconciles the new UIDVALIDITY */
            break;
        }
        if (r != IMAP_OK) {
            omni_warn("%s: UID SEARCH %s: %s", b->cfg->key, crit, imap_error(b->imap));
            rc = -1;
            break;
        }
        /* Those in the range asked for (others are not ours to take now), up to the batch size. */
        size_t k = 0, in_range = 0, taken = 0;
        for (size_t i = 0; i < n; i++)
            if (uids[i] >= first && uids[i] <= end) {
                in_range++;
                if (done + k < ec->cfg.batch)
                    uids[k++] = uids[i];
            }
        int t = take_all(b, uids, k, &bt, &taken);
        if (taken > 0)
            uidstate_advance(&b->cur, uids[taken - 1]);
        done += taken;
        if (t != 0) {
            stop = true;
            rc = t < 0 ? -1 : 0;
            *more = *more || t == 2; /* the next poll reconciles the new UIDVALIDITY */
        } else if (k == in_range) {
            uidstate_advance(&b->cur, end); /* the whole range is done, matches or not */
        }
        free(uids);
    }
    if (done == ec->cfg.batch)
        *more = true;

    if (loop_commit(b) != 0) {
        omni_error("%s: commit: %s", b->cfg->key, strerror(errno));
        rc = -1;
    } else if (!uidstate_cursor_eq(&before, &b->cur) && loop_save(b) != 0) {
        rc = -1;
    } else {
        if (bt.n_taken)
            omni_info("%s: spooled %zu message(s), now after UID %u", b->cfg->key, bt.n_taken, b->cur.last_uid);
        if (ec->cfg.mark_seen && bt.n_taken &&
            imap_set_seen(b->imap, b->cfg->mailbox, uv, bt.taken, bt.n_taken, true) != IMAP_OK)
            omni_warn("%s: setting \\Seen: %s (the messages are spooled all the same)", b->cfg->key,
                      imap_error(b->imap));
    }
    free(bt.taken);
    return rc;
}

/* A mailbox's thread: a turn each time the loop's thread says go, until quit. */
static void *box_thread(void *arg)
{
    box_t *b = arg;
    email_conn_t *ec = b->ec;
    pthread_mutex_lock(&ec->mu);
    for (;;) {
        while (!b->go && !ec->quit)
            pthread_cond_wait(&b->wake, &ec->mu);
        if (ec->quit)
            break;
        b->go = false;
        pthread_mutex_unlock(&ec->mu);
        bool more = false;
        int rc = poll_box(ec, b, &more);
        pthread_mutex_lock(&ec->mu);
        b->done = true;
        b->done_rc = rc;
        b->done_more = more;
        wake_loop(ec);
    }
    b->exited = true;
    pthread_mutex_unlock(&ec->mu);
    wake_loop(ec);
    return NULL;
}

/* On the loop's thread: does what a mailbox's thread asked. */
static void serve_request(omni_connector_t *ctx, email_conn_t *ec, box_t *b, request_t *r)
{
    errno = 0;
    r->rc = r->kind == REQ_SAVE ? save_state(ctx, ec, b) : omni_connector_commit(ctx);
    r->err = errno;
}

/* On the loop's thread: takes the messages a mailbox's thread queued, in order; after a take's non-zero
 * answer, drops the rest of that fetch. Stopping (quit), takes no more: the cursor stays before them, and
 * the next start reads them again. */
static void serve_queue(omni_connector_t *ctx, email_conn_t *ec, box_t *b, bool quit)
{
    pthread_mutex_lock(&ec->mu);
    queued_t *q = b->q_head;
    b->q_head = b->q_tail = NULL;
    pthread_mutex_unlock(&ec->mu);
    if (q == NULL)
        return;
    size_t n = 0, bytes = 0;
    while (q != NULL) {
        take_arg_t *a = q->a; /* a->rc is written by this thread only */
        int rc = a->rc != 0 ? a->rc : quit ? 1 : take(ctx, ec, b, a->uids[q->i], &q->m, a->bt);
        pthread_mutex_lock(&ec->mu);
        if (a->rc == 0 && rc == 0)
            *a->taken = a->base + q->i + 1;
        else if (a->rc == 0)
            a->rc = rc;
        pthread_mutex_unlock(&ec->mu);
        n++;
        bytes += q->m.len;
        queued_t *next = q->next;
        free(q->m.raw);
        free(q);
        q = next;
    }
    pthread_mutex_lock(&ec->mu);
    b->q_n -= n;
    b->q_bytes -= bytes;
    pthread_cond_signal(&b->wake); /* room in the queue, or all taken */
    pthread_mutex_unlock(&ec->mu);
}

/* A turn ended (on the loop's thread): the mailbox's pace, as each is paced on its own, so that one broken
 * account does not slow the others. */
static void turn_ended(omni_connector_t *ctx, box_t *b, int rc, bool more)
{
    int64_t now = omni_mono_ms();
    b->busy = false;
    if (rc == 0) {
        if (b->failing)
            omni_info("%s: reachable again", b->cfg->key);
        b->failing = false;
        b->answered = true;
        b->backoff_ms = 0;
        b->next_turn_ms = more ? now : b->turn_began_ms + omni_connector_poll_ms(ctx);
        return;
    }
    b->failing = true;
    b->answered = false;
    /* The runtime's own back-off (poll_ms doubling up to retry_max_ms), kept per mailbox. */
    int base = omni_connector_poll_ms(ctx), max = omni_connector_retry_max_ms(ctx);
    b->backoff_ms = b->backoff_ms ? (b->backoff_ms > max / 2 ? max : b->backoff_ms * 2) : base;
    if (b->backoff_ms > max)
        b->backoff_ms = max > base ? max : base;
    b->next_try_ms = now + b->backoff_ms;
}

/* Serves every request posted and every turn ended (on the loop's thread). Returns how many turns ended. */
static size_t serve(omni_connector_t *ctx, email_conn_t *ec)
{
    uint64_t n;
    while (read(ec->efd, &n, sizeof n) == (ssize_t)sizeof n)
        continue;
    size_t ended = 0;
    for (size_t i = 0; i < ec->cfg.n; i++) {
        box_t *b = &ec->boxes[i];
        pthread_mutex_lock(&ec->mu);
        request_t *r = b->req != NULL && !b->req_answered ? b->req : NULL;
        bool done = b->done, more = b->done_more, quit = ec->quit;
        int rc = b->done_rc;
        b->done = false;
        pthread_mutex_unlock(&ec->mu);
        serve_queue(ctx, ec, b, quit);
        if (r != NULL) {
            serve_request(ctx, ec, b, r); /* the thread waits for it: r stays */
            pthread_mutex_lock(&ec->mu);
            b->req_answered = true;
            pthread_cond_signal(&b->wake);
            pthread_mutex_unlock(&ec->mu);
        }
        if (done) {
            turn_ended(ctx, b, rc, more);
            ended++;
        }
    }
    return ended;
}

static int email_poll(omni_connector_t *ctx)
{
    email_conn_t *ec = omni_connector_user(ctx);
    size_t ended = serve(ctx, ec);
    int64_t now = omni_mono_ms(), next = -1;
    size_t failing = 0, busy = 0, answered = 0;
    for (size_t i = 0; i < ec->cfg.n; i++) {
        box_t *b = &ec->boxes[i];
        int64_t due = b->failing ? b->next_try_ms : b->next_turn_ms;
        if (!b->busy && now >= due) {
            b->busy = true;
            b->turn_began_ms = now;
            pthread_mutex_lock(&ec->mu);
            b->go = true;
            pthread_cond_signal(&b->wake);
            pthread_mutex_unlock(&ec->mu);
        } else if (!b->busy && (next < 0 || due < next)) {
            next = due;
        }
        failing += b->failing;
        busy += b->busy;
        answered += b->answered;
    }
    omni_connector_status(ctx, "%zu mailbox(es), %zu failing", ec->cfg.n, failing);
    if (next >= 0)
        omni_connector_poll_in(ctx, next - now > 3600000 ? 3600000 : (int)(next - now));
    /* No turn ended since the last answer while one is under way: nothing is decided (and a batch under way
     * is committed by its turn, not by the runtime). Reached when one mailbox at least answered in its last
     * turn: every one failing (just now, or waiting out its back-off) is a source not reached, so no READY
     * and no "reachable again" for a pause between retries; nor while the first turns are under way. */
    if (busy > 0 && (ended == 0 || answered == 0))
        return OMNI_POLL_PENDING;
    return answered > 0 ? 0 : -1;
}

static int email_open(omni_connector_t *ctx)
{
    email_conn_t *ec = omni_calloc(1, sizeof *ec);
    char err[512];
    if (email_config_load(ctx, true, &ec->cfg, err, sizeof err) != 0) {
        omni_error("%s", err);
        free(ec);
        return -1;
    }
    char *data = NULL;
    size_t len = 0;
    int r = omni_connector_state_load(ctx, UIDSTATE_FILE, &data, &len);
    ec->state = r == 0 ? uidstate_parse(data, len, err, sizeof err) : r == 1 ? uidstate_new() : NULL;
    free(data);
    if (!ec->state) {
        /* Starting over would re-read whole mailboxes: a person should look at it first. */
        omni_error("%s/%s: %s", omni_connector_state_dir(ctx), UIDSTATE_FILE, r < 0 ? strerror(errno) : err);
        email_config_free(&ec->cfg);
        free(ec);
        return -1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        omni_fatal("curl_global_init failed");
    email_mime_init();
    omni_limits_default(&ec->lim);
    ec->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ec->efd < 0 || imap_stop_init(&ec->stop) != 0)
        omni_fatal("eventfd: %s", strerror(errno));
    pthread_mutex_init(&ec->mu, NULL);
    ec->boxes = omni_calloc(ec->cfg.n, sizeof *ec->boxes);
    for (size_t i = 0; i < ec->cfg.n; i++) {
        box_t *b = &ec->boxes[i];
        b->cfg = &ec->cfg.boxes[i];
        b->ec = ec;
        imap_opts_t o = {.url = b->cfg->url, .user = b->cfg->user, .password = b->cfg->password,
                         .tls = b->cfg->tls, .ca_file = b->cfg->ca_file,
                         .connect_timeout_ms = ec->cfg.connect_timeout_ms, .timeout_ms = ec->cfg.timeout_ms,
                         .max_fetch = ec->cfg.max_fetch, .stop = &ec->stop};
        b->imap = imap_new(&o);
        b->known = uidstate_get(ec->state, b->cfg->key, &b->cur) == 0;
        pthread_cond_init(&b->wake, NULL);
    }
    /* The threads inherit the runtime's signal mask (SIGTERM and the rest go to its signalfd only). */
    for (size_t i = 0; i < ec->cfg.n; i++) {
        int e = pthread_create(&ec->boxes[i].thread, NULL, box_thread, &ec->boxes[i]);
        if (e != 0)
            omni_fatal("%s: cannot start its thread: %s", ec->boxes[i].cfg->key, strerror(e));
        ec->boxes[i].started = true;
    }
    omni_connector_watch_fd(ctx, ec->efd);
    omni_connector_set_user(ctx, ec);
    omni_info("watching %zu mailbox(es)", ec->cfg.n);
    return 0;
}

/* Ends the mailboxes' threads: a turn under way gives up its waits on the server (at once, or within
 * STOP_GRACE_MS for a command), its requests are served (a take refused: the cursor stays before that
 * message), and it ends; so SIGTERM is served within about a second however the servers behave. */
static void stop_threads(omni_connector_t *ctx, email_conn_t *ec)
{
    pthread_mutex_lock(&ec->mu);
    ec->quit = true;
    for (size_t i = 0; i < ec->cfg.n; i++)
        pthread_cond_signal(&ec->boxes[i].wake);
    pthread_mutex_unlock(&ec->mu);
    imap_stop_request(&ec->stop, STOP_GRACE_MS);
    omni_debug("stopping: ending the mailboxes' threads");
    for (;;) {
        serve(ctx, ec);
        size_t running = 0;
        pthread_mutex_lock(&ec->mu);
        for (size_t i = 0; i < ec->cfg.n; i++)
            running += ec->boxes[i].started && !ec->boxes[i].exited;
        pthread_mutex_unlock(&ec->mu);
        if (running == 0)
            break;
        struct pollfd p = {.fd = ec->efd, .events = POLLIN};
        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            omni_fatal("poll: %s", strerror(errno));
    }
    for (size_t i = 0; i < ec->cfg.n; i++)
        if (ec->boxes[i].started)
            pthread_join(ec->boxes[i].thread, NULL);
}

static void email_close(omni_connector_t *ctx)
{
    email_conn_t *ec = omni_connector_user(ctx);
    if (!ec)
        return;
    stop_threads(ctx, ec);
    omni_connector_watch_fd(ctx, -1);
    for (size_t i = 0; i < ec->cfg.n; i++) {
        imap_destroy(&ec->boxes[i].imap);
        pthread_cond_destroy(&ec->boxes[i].wake);
    }
    pthread_mutex_destroy(&ec->mu);
    imap_stop_free(&ec->stop);
    close(ec->efd);
    free(ec->boxes);
    uidstate_destroy(&ec->state);
    email_config_free(&ec->cfg);
    free(ec);
    omni_connector_set_user(ctx, NULL);
    email_mime_shutdown();
    curl_global_cleanup();
}

static const omni_connector_def_t email_connector = {
    .name = "email",
    .channel = "email",
    .summary = "Reads IMAP mailboxes and hands each new message to omnirouted.",
    .keys = email_keys,
    .check = check,
    .open = email_open,
    .poll = email_poll,
    .close = email_close,
};

int main(int argc, char **argv)
{
    return omni_connector_main(&email_connector, argc, argv);
}
