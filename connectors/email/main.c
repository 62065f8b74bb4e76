/* omni-email: IMAP mailboxes to omnirouted. Each poll, per mailbox: SELECT, reconcile the UID cursor
 * (uidstate.h), UID SEARCH the next range, fetch the batch without \Seen (imap.h: one command for the
 * metadata, the bodies as many to a command as fit in 8 MiB), parse each as it arrives (mime.h),
 * build (email_build.h), submit, handing what was submitted to the router every FLUSH_EVERY messages (the
 * router stores a batch while the rest of it is read); then commit (fsync), save the cursor, and only then
 * set \Seen.
 * The runtime (connector.h) does the rest: config, signals, the spool and the router. */
#include "email_build.h"
#include "email_config.h"
#include "imap.h"
#include "mime.h"
#include "uidstate.h"
#include "omni/connector.h"
#include "omni/log.h"
#include "omni/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define SEARCH_SPAN 1000          /* UIDs per search range: keeps each SEARCH answer small */
#define SEARCHES_PER_POLL 20      /* ranges searched per mailbox per poll (sparse UIDs, a seen backlog) */
#define BOX_RETRY_MAX_MS 60000    /* a failing mailbox is retried at most this far apart */
#define FLUSH_EVERY 32            /* messages of a batch written to the spool (unsynced) and sent together */

typedef struct box {
    email_box_t *cfg;        /* borrowed from email_conn_t.cfg */
    imap_t *imap;            /* owned */
    uid_cursor_t cur;
    bool known;              /* cur holds a cursor (from the state file or a reconcile) */
    bool failing;
    int backoff_ms;
    int64_t next_try_ms;     /* monotonic; a failing mailbox waits until then */
} box_t;

typedef struct email_conn {
    email_config_t cfg;
    box_t *boxes;
    uidstate_t *state;       /* owned */
    omni_limits_t lim;
} email_conn_t;

/* UIDs of one batch. taken: spooled, they get \Seen after the commit (fetching never sets it, imap.h). */
typedef struct batch {
    uint32_t *taken;
    size_t n_taken;
} batch_t;

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

/* What take_one needs: the batch being taken, and where its prefix taken so far ends. */
typedef struct take_arg {
    omni_connector_t *ctx;
    email_conn_t *ec;
    box_t *b;
    const uint32_t *uids;    /* of this fetch: uids[0] is the first message it hands on */
    size_t base;             /* index of uids[0] in the batch */
    batch_t *bt;
    size_t *taken;           /* the batch's prefix the cursor may pass */
    int rc;                  /* take's first non-zero answer */
} take_arg_t;

/* imap_take_fn: takes message i of the fetch (and frees its bytes). */
static int take_one(void *arg, size_t i, imap_message_t *m)
{
    take_arg_t *a = arg;
    int rc = take(a->ctx, a->ec, a->b, a->uids[i], m, a->bt);
    free(m->raw);
    m->raw = NULL;
    if (rc == 0)
        *a->taken = a->base + i + 1;
    else
        a->rc = rc;
    return rc;
}

/* Takes uids[0..n) (ascending) in order: their metadata with one command, their bodies several to a
 * command (imap.h), each submitted as it comes in. *taken: how many the cursor may pass (a prefix).
 * Returns 0 when all were taken, 1 when the spool is full, 2 when UIDVALIDITY changed, -1 on an error
 * (logged). */
static int take_all(omni_connector_t *ctx, email_conn_t *ec, box_t *b, const uint32_t *uids, size_t n,
                    batch_t *bt, size_t *taken)
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
        take_arg_t a = {.ctx = ctx, .ec = ec, .b = b, .uids = uids + i, .base = i, .bt = bt, .taken = taken};
        r = imap_fetch_bodies(b->imap, b->cfg->mailbox, b->cur.uidvalidity, uids + i, meta + i, k, take_one,
                              &a, &handed);
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

/* One mailbox's turn. Returns 0 (reached; *more when it stopped at the batch size) or -1 (failed). */
static int poll_box(omni_connector_t *ctx, email_conn_t *ec, box_t *b, bool *more)
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
    if (ch != UID_SAME && save_state(ctx, ec, b) != 0)
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
        int t = take_all(ctx, ec, b, uids, k, &bt, &taken);
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

    if (omni_connector_commit(ctx) != 0) {
        omni_error("%s: commit: %s", b->cfg->key, strerror(errno));
        rc = -1;
    } else if (!uidstate_cursor_eq(&before, &b->cur) && save_state(ctx, ec, b) != 0) {
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

static int email_poll(omni_connector_t *ctx)
{
    email_conn_t *ec = omni_connector_user(ctx);
    int64_t now = omni_mono_ms();
    size_t tried = 0, failed = 0, failing = 0;
    bool more = false;
    for (size_t i = 0; i < ec->cfg.n; i++) {
        box_t *b = &ec->boxes[i];
        if (b->failing && now < b->next_try_ms) {
            failing++;
            continue;
        }
        tried++;
        if (poll_box(ctx, ec, b, &more) == 0) {
            if (b->failing)
                omni_info("%s: reachable again", b->cfg->key);
            b->failing = false;
            b->backoff_ms = 0;
            continue;
        }
        /* Each mailbox is paced on its own, so one broken account does not slow the others. */
        failed++;
        failing++;
        b->failing = true;
        int base = omni_connector_poll_ms(ctx);
        b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : base;
        if (b->backoff_ms > BOX_RETRY_MAX_MS)
            b->backoff_ms = BOX_RETRY_MAX_MS > base ? BOX_RETRY_MAX_MS : base;
        b->next_try_ms = omni_mono_ms() + b->backoff_ms;
    }
    omni_connector_status(ctx, "%zu mailbox(es), %zu failing", ec->cfg.n, failing);
    if (more)
        omni_connector_poll_in(ctx, 0);
    /* Reached when one mailbox at least answers: every one failing (just now, or waiting out its back-off) is
     * a source not reached, so no READY and no "reachable again" for a pause between retries. */
    return failing == ec->cfg.n ? -1 : 0;
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
    ec->boxes = omni_calloc(ec->cfg.n, sizeof *ec->boxes);
    for (size_t i = 0; i < ec->cfg.n; i++) {
        box_t *b = &ec->boxes[i];
        b->cfg = &ec->cfg.boxes[i];
        imap_opts_t o = {.url = b->cfg->url, .user = b->cfg->user, .password = b->cfg->password,
                         .tls = b->cfg->tls, .ca_file = b->cfg->ca_file,
                         .connect_timeout_ms = ec->cfg.connect_timeout_ms, .timeout_ms = ec->cfg.timeout_ms,
                         .max_fetch = ec->cfg.max_fetch};
        b->imap = imap_new(&o);
        b->known = uidstate_get(ec->state, b->cfg->key, &b->cur) == 0;
    }
    omni_connector_set_user(ctx, ec);
    omni_info("watching %zu mailbox(es)", ec->cfg.n);
    return 0;
}

static void email_close(omni_connector_t *ctx)
{
    email_conn_t *ec = omni_connector_user(ctx);
    if (!ec)
        return;
    for (size_t i = 0; i < ec->cfg.n; i++)
        imap_destroy(&ec->boxes[i].imap);
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
