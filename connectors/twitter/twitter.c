/* omni-twitter: the feeds (mentions, DMs), each a small state machine driven from poll().
 *
 * A feed is idle until its due time, then has one GET in flight (tw_http.h: libcurl multi, no blocking),
 * then handles the answer: a page is parsed (tw_parse.h), its messages submitted and committed, and only
 * then its cursor saved (tw_cursor.h); the next page is due at once, the next round after poll_ms. Waits
 * are due times, turned into omni_connector_poll_in: a 429 or an exhausted window waits until
 * x-rate-limit-reset, a failure (no answer, 5xx, 401/403, a malformed page) backs off with jitter
 * (tw_pace.h). poll() returns 0 even while a feed fails: each feed paces itself, because the runtime's
 * paced retry stops watching the HTTP sockets of the other feed's transfer (and of the retry itself); the
 * failure is logged, shown in the status line and counted there.
 *
 * An outpost (twitter.outpost_reply set, docs/routing.md "Outpost channels"): once a page of the DM feed is
 * committed, each sender not pointed within twitter.outpost_window is sent the reply as a DM (POST
 * /2/dm_conversations/with/:id/messages, on the same multi handle); one the API refuses is forgotten, so the
 * sender's next DM tries again. */
#include "twitter.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include "omni/http_intake.h"
#include "omni/identity.h"
#include "omni/log.h"
#include "omni/outpost.h"
#include "omni/secret.h"
#include "omni/util.h"
#include "tw_cursor.h"
#include "tw_http.h"
#include "tw_pace.h"
#include "tw_parse.h"
#include "tw_webhook.h"

#define TW_FEEDS 2
#define OUTPOST_STATE "outpost-pointed" /* omni/outpost.h: who was pointed when */

/* A pointer DM in flight: the tag of its POST. */
typedef struct pointer {
    char sender[40];
    struct pointer *next;
} pointer_t;

typedef struct feed {
    tw_kind_t kind;
    const char *name;        /* "mentions", "dms" */
    const char *state_file;  /* in state_dir */
    tw_cursor_t cur;         /* as saved */
    bool in_flight, probing; /* probing: the first request under "start: end" */
    bool had_token;          /* the request in flight carried a pagination_token */
    int64_t due;             /* monotonic ms when the next request may start */
    int failures;            /* in a row */
    unsigned long long pages, taken, errors, limited;
    char last[128];          /* what happened last, for the status line */
} feed_t;

typedef struct tw {
    omni_connector_t *ctx;
    tw_http_t *http;
    tw_webhook_t *webhook;     /* NULL unless consumer_secret is set */
    int ep;                    /* with the webhook: an epoll set of the HTTP client's fd and the webhook's */
    const char *api, *user_id; /* borrowed from the config */
    bool start_end;
    long long max_results;
    char token[OMNI_SECRET_MAX + 1];
    feed_t feeds[TW_FEEDS];
    size_t n_feeds;
    bool reached;              /* the API has answered a call (a page, or a rate limit): READY=1 may go */
    omni_outpost_t *outpost;   /* NULL: a covered channel */
    char *pointer_json;        /* {"text": outpost_reply} (owned) */
    pointer_t *pointing;       /* pointers in flight (owned) */
    unsigned long long pointed, pointer_errors;
} tw_t;

static const omni_connector_key_t tw_keys[] = {
    { "api_url", OMNI_KEY_STRING, "https://api.x.com", false, 8, 1024, NULL,
      "base URL of the X API (http:// only for tests against a local server)" },
    { "user_id", OMNI_KEY_STRING, NULL, true, 1, 32, NULL, "the account's numeric user id (its mentions and DMs)" },
    { "token", OMNI_KEY_SECRET, NULL, true, 1, 4096, NULL,
      "where the bearer token is: a file (mode 0600), credential:NAME or env:NAME; DMs need a user-context "
      "token with dm.read" },
    { "feeds", OMNI_KEY_LIST, "[mentions, dms]", false, 0, 2, NULL, "what to read: mentions, dms" },
    { "start", OMNI_KEY_ENUM, "all", false, 0, 0, "all|end",
      "first run only: all (what the API still returns) or end (only what comes after the first start)" },
    { "max_results", OMNI_KEY_INT, "100", false, 5, 100, NULL, "items asked for per page" },
    { "connect_timeout_ms", OMNI_KEY_DURATION, "10000", false, 100, 600000, NULL, "bound on connecting to the API" },
    { "call_timeout_ms", OMNI_KEY_DURATION, "30000", false, 100, 600000, NULL, "bound on one whole API call" },
    { "max_response_bytes", OMNI_KEY_SIZE, "4194304", false, 4096, 67108864, NULL,
      "largest response body read; a larger one is a failed call" },
    { "ca_file", OMNI_KEY_PATH, NULL, false, 0, 4096, NULL,
      "CA bundle for the API's certificate; default the system's" },
    { "consumer_secret", OMNI_KEY_SECRET, NULL, false, 1, 4096, NULL,
      "the app's consumer secret (file, credential:NAME or env:NAME): enables the Account Activity webhook "
      "(CRC answers, signed POSTs) on listen" },
    OMNI_HTTP_INTAKE_KEYS("127.0.0.1:8092", "1048576"),
    { "outpost_reply", OMNI_KEY_STRING, NULL, false, 0, 10000, NULL,
      "an outpost: the DM a sender is answered with (where to reach us), once per sender per outpost_window; "
      "needs a token with dm.write" },
    { "outpost_window", OMNI_KEY_DURATION, "86400000", false, 1000, 31536000000LL, NULL,
      "how long a sender who was pointed elsewhere is not pointed again" },
    { NULL, 0, NULL, false, 0, 0, NULL, NULL },
};

/* Every error is reported (omni_connector_check_error), not only the first. */
static int tw_check(omni_connector_t *ctx, char *err, size_t errsz)
{
    (void)err, (void)errsz;
    const char *why = NULL;
    char uid[40];
    const char *user = omni_connector_cfg_str(ctx, "user_id");
    if (omni_numeric_id(user, uid, sizeof uid, &why) != 0 || strcmp(uid, user) != 0)
        omni_connector_check_error(ctx, "user_id", "\"%s\" is not a numeric user id (%s)", user,
                                   why ? why : "blanks around it");
    const char *api = omni_connector_cfg_str(ctx, "api_url");
    if (strncmp(api, "https://", 8) != 0 && strncmp(api, "http://", 7) != 0)
        omni_connector_check_error(ctx, "api_url", "\"%s\" is not an http:// or https:// URL", api);
    const char *const *feeds;
    size_t n = omni_connector_cfg_list(ctx, "feeds", &feeds);
    if (n == 0)
        omni_connector_check_error(ctx, "feeds", "empty: name mentions, dms or both");
    for (size_t i = 0; i < n; i++)
        if (strcmp(feeds[i], "mentions") != 0 && strcmp(feeds[i], "dms") != 0)
            omni_connector_check_error(ctx, "feeds", "\"%s\" is not a feed (mentions, dms)", feeds[i]);
    /* its secrets are read here as at start, so that a missing or unsafe one is found now (docs/connectors.md);
     * listen is used only by the webhook */
    omni_connector_check_secret(ctx, "token");
    const char *reply = omni_connector_cfg_str(ctx, "outpost_reply");
    size_t bad = 0;
    if (reply && !omni_utf8_valid(reply, strlen(reply), &bad))
        omni_connector_check_error(ctx, "outpost_reply", "not UTF-8 at byte %zu", bad);
    if (reply && reply[0]) {
        bool dms = false;
        for (size_t i = 0; i < n; i++)
            dms |= strcmp(feeds[i], "dms") == 0;
        if (!dms)
            omni_connector_check_error(ctx, "outpost_reply", "answers DMs, and feeds has no dms");
    }
    if (omni_connector_cfg_str(ctx, "consumer_secret") != NULL) {
        omni_connector_check_secret(ctx, "consumer_secret");
        omni_http_intake_check(ctx);
    }
    return 0;
}

static void feed_load(tw_t *t, feed_t *f)
{
    char *text = NULL, err[256];
    int rc = omni_connector_state_load(t->ctx, f->state_file, &text, NULL);
    if (rc < 0) {
        omni_warn("%s/%s: %s: the %s feed starts afresh", omni_connector_state_dir(t->ctx), f->state_file,
                  strerror(errno), f->name);
    } else if (rc == 0) {
        rc = tw_cursor_parse(text, t->user_id, &f->cur, err, sizeof err);
        if (rc < 0)
            omni_warn("%s/%s: %s: the %s feed starts afresh", omni_connector_state_dir(t->ctx), f->state_file, err,
                      f->name);
        else if (rc == 1)
            omni_warn("%s/%s: belongs to another user_id: the %s feed starts afresh",
                      omni_connector_state_dir(t->ctx), f->state_file, f->name);
        else
            omni_info("%s: since %s%s%s", f->name, f->cur.since ? f->cur.since : "(none)",
                      f->cur.next_token ? ", resuming a round at page " : "",
                      f->cur.next_token ? f->cur.next_token : "");
    }
    free(text);
}

/* Starts the webhook; the runtime watches one fd, so the HTTP client's and the webhook's (both epoll fds)
 * go into an epoll set of their own, readable when either is. Returns 0 or -1 (logged). */
static int watch_webhook(tw_t *t)
{
    t->webhook = tw_webhook_new(t->ctx);
    if (t->webhook == NULL)
        return -1;
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event a = { .events = EPOLLIN, .data.fd = tw_http_fd(t->http) },
                       b = { .events = EPOLLIN, .data.fd = tw_webhook_fd(t->webhook) };
    if (t->ep < 0 || epoll_ctl(t->ep, EPOLL_CTL_ADD, a.data.fd, &a) != 0 ||
        epoll_ctl(t->ep, EPOLL_CTL_ADD, b.data.fd, &b) != 0) {
        omni_error("epoll: %s", strerror(errno));
        return -1;
    }
    omni_connector_watch_fd(t->ctx, t->ep);
    return 0;
}

/* Frees t and what open built in it (any part may be missing). */
static void tw_close_state(tw_t *t)
{
    omni_connector_watch_fd(t->ctx, -1);
    tw_webhook_destroy(&t->webhook);
    if (t->ep >= 0)
        close(t->ep);
    tw_http_destroy(&t->http);
    for (size_t i = 0; i < t->n_feeds; i++)
        tw_cursor_clear(&t->feeds[i].cur);
    while (t->pointing != NULL) { /* their transfers went with the client */
        pointer_t *p = t->pointing;
        t->pointing = p->next;
        free(p);
    }
    omni_outpost_destroy(&t->outpost);
    free(t->pointer_json);
    explicit_bzero(t->token, sizeof t->token);
    free(t);
}

static int tw_open(omni_connector_t *ctx)
{
    tw_t *t = omni_calloc(1, sizeof *t);
    t->ctx = ctx;
    t->ep = -1;
    t->api = omni_connector_cfg_str(ctx, "api_url");
    t->user_id = omni_connector_cfg_str(ctx, "user_id");
    t->start_end = strcmp(omni_connector_cfg_str(ctx, "start"), "end") == 0;
    t->max_results = omni_connector_cfg_int(ctx, "max_results");
    char err[512];
    if (omni_connector_secret(ctx, "token", t->token, sizeof t->token, err, sizeof err) < 0) {
        omni_error("%s", err);
        tw_close_state(t);
        return -1;
    }
    tw_http_opts_t ho = { .connect_timeout_ms = (long)omni_connector_cfg_int(ctx, "connect_timeout_ms"),
                          .timeout_ms = (long)omni_connector_cfg_int(ctx, "call_timeout_ms"),
                          .max_body = (size_t)omni_connector_cfg_int(ctx, "max_response_bytes"),
                          .ca_file = omni_connector_cfg_str(ctx, "ca_file"), .user_agent = "omni-twitter/1" };
    t->http = tw_http_new(&ho);
    if (t->http == NULL) {
        tw_close_state(t);
        return -1;
    }
    const char *const *feeds;
    size_t n = omni_connector_cfg_list(ctx, "feeds", &feeds);
    for (size_t i = 0; i < n; i++) {
        bool dm = strcmp(feeds[i], "dms") == 0;
        bool dup = false;
        for (size_t j = 0; j < t->n_feeds; j++)
            dup |= t->feeds[j].kind == (dm ? TW_DMS : TW_MENTIONS);
        if (dup)
            continue;
        feed_t *f = &t->feeds[t->n_feeds++];
        f->kind = dm ? TW_DMS : TW_MENTIONS;
        f->name = dm ? "dms" : "mentions";
        f->state_file = dm ? "twitter-dms.json" : "twitter-mentions.json";
        f->due = omni_mono_ms();
        feed_load(t, f);
    }
    const char *reply = omni_connector_cfg_str(ctx, "outpost_reply");
    if (reply && reply[0]) {
        t->outpost = omni_outpost_new(omni_connector_state_dir(ctx), OUTPOST_STATE,
                                      omni_connector_cfg_int(ctx, "outpost_window"), OMNI_OUTPOST_MAX);
        json_t *body = json_pack("{s:s}", "text", reply);
        t->pointer_json = json_dumps(body, JSON_COMPACT);
        json_decref(body);
    }
    if (omni_connector_cfg_str(ctx, "consumer_secret") != NULL && watch_webhook(t) != 0) {
        tw_close_state(t);
        return -1;
    }
    if (t->webhook == NULL)
        omni_connector_watch_fd(ctx, tw_http_fd(t->http));
    omni_connector_set_user(ctx, t);
    return 0;
}

static void tw_close(omni_connector_t *ctx)
{
    tw_close_state(omni_connector_user(ctx));
    omni_connector_set_user(ctx, NULL);
}

static uint32_t random32(void)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint32_t)omni_mono_ms() * 2654435761u; /* jitter only needs to differ between processes */
    return r;
}

/* The feed's call failed: back off (poll_ms doubling up to retry_max_ms, with jitter). */
static void feed_fail(tw_t *t, feed_t *f, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void feed_fail(tw_t *t, feed_t *f, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    f->failures++;
    f->errors++;
    int64_t ms = tw_backoff_ms(f->failures, omni_connector_poll_ms(t->ctx), omni_connector_retry_max_ms(t->ctx),
                               random32());
    f->due = omni_mono_ms() + ms;
    omni_warn("%s: %s; retrying in %lld ms (failure %d in a row)", f->name, why, (long long)ms, f->failures);
    snprintf(f->last, sizeof f->last, "failing (%.80s)", why);
}

/* Saves the cursor next to the committed messages. Returns 0 or -1 (logged). */
static int feed_save(tw_t *t, feed_t *f, const tw_cursor_t *next)
{
    if (tw_cursor_equal(&f->cur, next))
        return 0;
    char *text = tw_cursor_format(next, t->user_id);
    int rc = omni_connector_state_save(t->ctx, f->state_file, text, strlen(text));
    free(text);
    if (rc != 0) {
        omni_error("%s/%s: %s", omni_connector_state_dir(t->ctx), f->state_file, strerror(errno));
        return -1;
    }
    tw_cursor_copy(&f->cur, next);
    return 0;
}

/* The base URL without trailing slashes: its length. */
static int api_len(const tw_t *t)
{
    size_t bl = strlen(t->api);
    while (bl > 0 && t->api[bl - 1] == '/')
        bl--;
    return (int)bl;
}

/* An outpost: the sender of a committed DM is sent the pointer unless pointed within the window. */
static void point(tw_t *t, const omni_msg_t *msg)
{
    if (omni_outpost_claim(t->outpost, msg->from_id, omni_wall_ms()) != 1)
        return;
    pointer_t *p = omni_calloc(1, sizeof *p);
    snprintf(p->sender, sizeof p->sender, "%s", msg->from_id);
    char *url = omni_asprintf("%.*s/2/dm_conversations/with/%s/messages", api_len(t), t->api, p->sender);
    if (tw_http_post_json(t->http, url, t->token, t->pointer_json, p) == 0) {
        p->next = t->pointing;
        t->pointing = p;
        omni_debug("dms: POST %s (outpost pointer for %s)", url, msg->id);
    } else {
        omni_outpost_forget(t->outpost, p->sender);
        t->pointer_errors++;
        free(p);
    }
    free(url);
}

/* The answer to a pointer DM: 201 is sent; anything else is logged and the sender forgotten, so their next
 * DM tries again. */
static void pointer_done(tw_t *t, pointer_t *p, const tw_http_resp_t *r)
{
    for (pointer_t **pp = &t->pointing; *pp != NULL; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    if (r->error == NULL && r->status / 100 == 2) {
        t->pointed++;
        omni_info("dms: outpost: %s pointed to a covered channel", p->sender);
    } else {
        t->pointer_errors++;
        omni_outpost_forget(t->outpost, p->sender);
        if (r->error != NULL)
            omni_warn("dms: outpost: the pointer DM to %s failed: %s (their next DM tries again)", p->sender, r->error);
        else
            omni_warn("dms: outpost: the pointer DM to %s was refused: HTTP %d %.200s (%stheir next DM tries again)",
                      p->sender, r->status, r->body,
                      r->status == 401 || r->status == 403 ? "does the token have dm.write? " : "");
    }
    free(p);
}

/* A 200 page: submit, commit, then move the cursor. */
static void feed_page(tw_t *t, feed_t *f, const tw_http_resp_t *r, int64_t wait_ms)
{
    int64_t now = omni_mono_ms();
    tw_parse_opts_t po = { .kind = f->kind, .own_user_id = t->user_id, .after_id = f->cur.since,
                           .now_ms = omni_wall_ms() };
    tw_page_t page;
    char err[512];
    if (tw_parse_page(r->body, r->len, &po, &page, err, sizeof err) != 0) {
        feed_fail(t, f, "malformed page: %s", err);
        return;
    }
    t->reached = true; /* a page of the API's: a 200 whose body is not one says nothing of the source */
    tw_cursor_t next = { 0 };
    tw_cursor_copy(&next, &f->cur);
    if (f->probing) {
        /* start: end: the newest item only marks where the feed begins. */
        if (page.newest_id != NULL) {
            free(next.since);
            next.since = omni_strdup(page.newest_id);
        }
        next.started = true;
        omni_info("%s: starting after %s (start: end)", f->name, page.newest_id ? page.newest_id : "nothing yet");
    } else {
        /* the cursor moves only after the whole page: taken whole when the spool has room, else read again later */
        int whole = page.n > 0 ? omni_connector_begin_whole(t->ctx) : 0;
        for (size_t i = 0; i < page.n; i++) {
            if (whole != 0 || omni_connector_submit(t->ctx, page.msgs[i]) < 0) {
                int e = errno;
                omni_connector_end_whole(t->ctx);
                tw_page_free(&page);
                tw_cursor_clear(&next);
                if (e == EAGAIN) { /* the router is away and the spool full: read this page again later */
                    f->due = now + omni_connector_poll_ms(t->ctx);
                    snprintf(f->last, sizeof f->last, "paused: spool full");
                } else {
                    feed_fail(t, f, "spool: %s", strerror(e));
                }
                return;
            }
        }
        omni_connector_end_whole(t->ctx);
        tw_cursor_advance(&next, &page);
    }
    if (omni_connector_commit(t->ctx) != 0) {
        feed_fail(t, f, "spool sync: %s", strerror(errno));
    } else if (feed_save(t, f, &next) != 0) {
        feed_fail(t, f, "state file not written"); /* the page is read again: same ids, dropped by the router */
    } else {
        if (f->kind == TW_DMS && t->outpost != NULL && !f->probing)
            for (size_t i = 0; i < page.n; i++)
                point(t, page.msgs[i]);
        f->failures = 0;
        f->pages++;
        f->taken += page.n;
        bool more = f->cur.next_token != NULL;
        f->due = more ? now : now + omni_connector_poll_ms(t->ctx);
        if (wait_ms >= 0 && now + wait_ms > f->due) {
            f->due = now + wait_ms;
            f->limited++;
            omni_info("%s: rate-limit window used up: next call in %lld ms", f->name, (long long)wait_ms);
        }
        omni_debug("%s: page of %zu message(s) (%zu skipped, %zu passed over), since %s%s", f->name, page.n,
                   page.skipped, page.passed_over, f->cur.since ? f->cur.since : "(none)", more ? ", more pages" : "");
        snprintf(f->last, sizeof f->last, "since %s", f->cur.since ? f->cur.since : "(none)");
    }
    tw_page_free(&page);
    tw_cursor_clear(&next);
}

static void on_done(void *tag, const tw_http_resp_t *r, void *user)
{
    tw_t *t = user;
    bool feed = false;
    for (size_t i = 0; i < TW_FEEDS; i++)
        feed |= tag == (void *)&t->feeds[i];
    if (!feed) { /* the only other tags are pointers */
        pointer_done(t, tag, r);
        return;
    }
    feed_t *f = tag;
    f->in_flight = false;
    int64_t wait = tw_ratelimit_wait(r->status, r->rl_remaining, r->rl_reset, r->retry_after, omni_wall_ms());
    if (r->error != NULL) {
        feed_fail(t, f, "%s", r->error);
    } else if (r->status == 429) {
        t->reached = true; /* the API answers: it only asks us to wait */
        f->due = omni_mono_ms() + wait;
        f->limited++;
        omni_warn("%s: 429 Too Many Requests: waiting %lld ms for the rate-limit reset", f->name, (long long)wait);
        snprintf(f->last, sizeof f->last, "rate limited");
    } else if (r->status == 400 && f->had_token) {
        omni_warn("%s: the API refused the saved page token: reading the round again from since %s", f->name,
                  f->cur.since ? f->cur.since : "(none)");
        tw_cursor_t next = { 0 };
        tw_cursor_copy(&next, &f->cur);
        tw_cursor_restart_round(&next);
        if (feed_save(t, f, &next) != 0)
            feed_fail(t, f, "state file not written");
        tw_cursor_clear(&next);
    } else if (r->status != 200) {
        char err[512] = "";
        tw_page_t page;
        tw_parse_opts_t po = { .kind = f->kind };
        if (tw_parse_page(r->body, r->len, &po, &page, err, sizeof err) == 0)
            tw_page_free(&page), err[0] = '\0';
        feed_fail(t, f, "HTTP %d%s%s", r->status, err[0] ? ": " : "", err);
    } else {
        feed_page(t, f, r, wait);
    }
}

static char *escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    if (e == NULL)
        omni_fatal("curl_easy_escape failed (out of memory)");
    char *copy = omni_strdup(e);
    curl_free(e);
    return copy;
}

/* The feed's next URL (caller frees). */
static char *feed_url(const tw_t *t, feed_t *f)
{
    const char *base = t->api;
    int bl = api_len(t);
    f->probing = t->start_end && f->cur.since == NULL && !f->cur.started && f->cur.round_newest == NULL;
    long long max = f->probing ? 5 : t->max_results;
    char *tok = f->cur.next_token != NULL && !f->probing ? escape(f->cur.next_token) : NULL;
    f->had_token = tok != NULL;
    char *url;
    if (f->kind == TW_MENTIONS)
        url = omni_asprintf("%.*s/2/users/%s/mentions?max_results=%lld&expansions=author_id"
                            "&tweet.fields=created_at,author_id,conversation_id,in_reply_to_user_id,lang,note_tweet"
                            "&user.fields=username,name%s%s%s%s",
                            bl, base, t->user_id, max, f->cur.since ? "&since_id=" : "",
                            f->cur.since ? f->cur.since : "", tok ? "&pagination_token=" : "", tok ? tok : "");
    else
        url = omni_asprintf("%.*s/2/dm_events?max_results=%lld&event_types=MessageCreate"
                            "&dm_event.fields=id,text,event_type,created_at,dm_conversation_id,sender_id"
                            "&expansions=sender_id&user.fields=username,name%s%s",
                            bl, base, max, tok ? "&pagination_token=" : "", tok ? tok : "");
    free(tok);
    return url;
}

static void status_line(tw_t *t)
{
    char line[256] = "";
    size_t off = 0;
    for (size_t i = 0; i < t->n_feeds && off < sizeof line; i++) {
        const feed_t *f = &t->feeds[i];
        int n = snprintf(line + off, sizeof line - off, "%s%s: %s, %llu taken, %llu errors, %llu rate-limited",
                         i ? "; " : "", f->name, f->last[0] ? f->last : "starting", f->taken, f->errors, f->limited);
        off += n > 0 ? (size_t)n : 0;
    }
    if (t->outpost != NULL && off < sizeof line) {
        int n = snprintf(line + off, sizeof line - off, "; outpost: %llu pointed, %llu not sent", t->pointed,
                         t->pointer_errors);
        off += n > 0 ? (size_t)n : 0;
    }
    if (t->webhook != NULL && off < sizeof line) {
        unsigned long long req, bad;
        tw_webhook_counts(t->webhook, &req, &bad);
        snprintf(line + off, sizeof line - off, "; webhook: %llu requests, %llu bad signatures", req, bad);
    }
    omni_connector_status(t->ctx, "%s", line);
}

static int tw_poll(omni_connector_t *ctx)
{
    tw_t *t = omni_connector_user(ctx);
    if (t->webhook != NULL && tw_webhook_poll(t->webhook) != 0)
        return -1;
    tw_http_drive(t->http, on_done, t);
    int64_t now = omni_mono_ms();
    for (size_t i = 0; i < t->n_feeds; i++) {
        feed_t *f = &t->feeds[i];
        if (f->in_flight || now < f->due)
            continue;
        char *url = feed_url(t, f);
        omni_debug("%s: GET %s", f->name, url);
        if (tw_http_get(t->http, url, t->token, f) == 0)
            f->in_flight = true;
        else
            feed_fail(t, f, "could not start the call");
        free(url);
    }
    /* curl may already have work (a connection to start): serve it now rather than after a wait. */
    int64_t next = tw_http_timeout_ms(t->http);
    now = omni_mono_ms();
    for (size_t i = 0; i < t->n_feeds; i++) {
        const feed_t *f = &t->feeds[i];
        if (!f->in_flight) {
            int64_t d = f->due > now ? f->due - now : 0;
            next = next < 0 || d < next ? d : next;
        }
    }
    if (next >= 0)
        omni_connector_poll_in(ctx, next > 3600000 ? 3600000 : (int)next);
    status_line(t);
    /* The source is reached once the API has answered (the webhook, when set, once it listens): until then
     * the calls are under way or paced by the feeds' own retries, which log each failure, so the runtime
     * neither says READY=1 nor backs off (connector.h, OMNI_POLL_PENDING). */
    return t->reached || t->webhook != NULL ? 0 : OMNI_POLL_PENDING;
}

const omni_connector_def_t twitter_connector = {
    .name = "twitter",
    .channel = "twitter",
    .summary = "Polls an X account's mentions and direct messages (X API v2) and sends them to omnirouted.",
    .keys = tw_keys,
    .check = tw_check,
    .open = tw_open,
    .poll = tw_poll,
    .close = tw_close,
};
