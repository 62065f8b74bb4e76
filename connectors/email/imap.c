/* IMAP: libcurl connects, does TLS and logs in; the commands and their responses are ours (see imap.h). */
#include "imap.h"
#include "omni/log.h"
#include "omni/util.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <curl/curl.h>

/* A response other than fetched bodies (SELECT, SEARCH, metadata, STORE) is refused beyond this. */
#define IMAP_MAX_RESPONSE (8u * 1024 * 1024)
/* A response line outside literals longer than this is refused (ours are short; a SEARCH answer of a
 * SEARCH_SPAN range is ~11 KB). */
#define IMAP_MAX_LINE (256u * 1024)
/* Bodies per command: the messages from the first on while their sizes add up to at most this (a message
 * larger than it goes alone). Bounds what one response holds in memory, not what the server can do. */
#define IMAP_GROUP_BYTES (8u * 1024 * 1024)
/* UIDs per STORE or metadata FETCH command, so the command line stays far below servers' line limits
 * (Dovecot: 64 KiB) even when no two UIDs are consecutive. */
#define IMAP_SET_MAX 500
/* What each read asks for at most. */
#define IMAP_READ (256u * 1024)

struct imap {
    imap_opts_t o;          /* strings owned (copies) */
    CURL *h;                /* logged in (CURLOPT_CONNECT_ONLY), or NULL: the next call connects */
    curl_socket_t sock;
    char errbuf[CURL_ERROR_SIZE];
    char error[512];
    unsigned tag;           /* of the last command sent */
    char *selected;         /* the mailbox this connection has selected, or NULL */
    uint32_t selected_uidvalidity;
    bool announced;         /* the last command's response announced a UIDVALIDITY: */
    uint32_t announced_uidvalidity;
    char *resp;             /* the last response's untagged part, lines and literals as they came */
    size_t resp_len, resp_cap;
    size_t in_len;          /* bytes in resp received so far for the command under way */
    size_t left_off, left_len; /* bytes that came after the last tagged reply (the next response's start) */
};

int imap_stop_init(imap_stop_t *s)
{
    atomic_init(&s->at, 0);
    s->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return s->fd < 0 ? -1 : 0;
}

void imap_stop_request(imap_stop_t *s, int grace_ms)
{
    long long none = 0, at = (long long)omni_mono_ms() + (grace_ms > 0 ? grace_ms : 1);
    if (!atomic_compare_exchange_strong(&s->at, &none, at))
        return;
    uint64_t one = 1; /* after the deadline is set: a waiter woken by the fd reads it */
    if (write(s->fd, &one, sizeof one) < 0)
        omni_warn("imap stop: %s", strerror(errno));
}

bool imap_stop_requested(imap_stop_t *s) { return s != NULL && atomic_load(&s->at) != 0; }

void imap_stop_free(imap_stop_t *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

imap_t *imap_new(const imap_opts_t *opts)
{
    imap_t *m = omni_calloc(1, sizeof *m);
    m->o = *opts;
    m->o.url = omni_strdup(opts->url);
    m->o.user = omni_strdup(opts->user ? opts->user : "");
    m->o.password = omni_strdup(opts->password ? opts->password : "");
    m->o.ca_file = opts->ca_file ? omni_strdup(opts->ca_file) : NULL;
    return m;
}

/* Forgets the connection: the next call connects and logs in again. */
static void drop(imap_t *m)
{
    if (m->h)
        curl_easy_cleanup(m->h);
    m->h = NULL;
    m->left_off = m->left_len = 0;
    free(m->selected);
    m->selected = NULL;
}

void imap_destroy(imap_t **pm)
{
    if (!pm || !*pm)
        return;
    imap_t *m = *pm;
    drop(m);
    free((char *)m->o.url);
    free((char *)m->o.user);
    free((char *)m->o.password);
    free((char *)m->o.ca_file);
    free(m->resp);
    free(m);
    *pm = NULL;
}

const char *imap_error(const imap_t *m) { return m->error; }

static void set_error(imap_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(imap_t *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->error, sizeof m->error, fmt, ap);
    va_end(ap);
}

/* curl's progress callback while it connects and logs in: a stop ends it at once (curl calls this about
 * once a second while it waits for the server). */
static int connect_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return imap_stop_requested(((imap_t *)arg)->o.stop);
}

/* Connects, does TLS (imaps://, or STARTTLS) and logs in, all by curl (CURLOPT_CONNECT_ONLY stops it
 * there); from then on the socket's bytes, through curl's TLS, are ours (curl_easy_send/recv). */
static int connect_login(imap_t *m)
{
    if (m->h)
        return IMAP_OK;
    if (imap_stop_requested(m->o.stop)) {
        set_error(m, "not connecting: the connector is stopping");
        return IMAP_ERROR;
    }
    CURL *h = curl_easy_init();
    if (!h)
        omni_fatal("curl_easy_init failed (out of memory)");
    curl_easy_setopt(h, CURLOPT_URL, m->o.url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "imap,imaps");
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(h, CURLOPT_USERNAME, m->o.user);
    curl_easy_setopt(h, CURLOPT_PASSWORD, m->o.password);
    curl_easy_setopt(h, CURLOPT_USE_SSL, (long)(m->o.tls == IMAP_TLS_NONE ? CURLUSESSL_NONE : CURLUSESSL_ALL));
    if (m->o.ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, m->o.ca_file);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, m->o.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, m->o.timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM: the runtime owns signals */
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, m->errbuf);
    if (m->o.stop) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, connect_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, m);
    }
    m->errbuf[0] = '\0';
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        set_error(m, "connecting: given up, the connector is stopping");
        curl_easy_cleanup(h);
        return IMAP_ERROR;
    }
    if (rc == CURLE_OK)
        rc = curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &m->sock);
    if (rc != CURLE_OK) {
        set_error(m, "%s: %s", curl_easy_strerror(rc), m->errbuf[0] ? m->errbuf : "no detail");
        curl_easy_cleanup(h);
        return IMAP_ERROR;
    }
    m->h = h;
    m->in_len = 0;
    return IMAP_OK;
}

/* Waits until the socket is ready for events or the deadline (monotonic ms) passed, or a stop's grace
 * deadline did. 0, or -1 (m->error). */
static int wait_socket(imap_t *m, short events, int64_t deadline, const char *what)
{
    for (;;) {
        int64_t stop_at = m->o.stop ? (int64_t)atomic_load(&m->o.stop->at) : 0;
        bool stopping = stop_at != 0 && stop_at < deadline;
        int64_t left = (stopping ? stop_at : deadline) - omni_mono_ms();
        if (left <= 0) {
            if (stopping)
                set_error(m, "%s: no answer before the connector stopped", what);
            else
                set_error(m, "%s: no answer within %ld ms", what, m->o.timeout_ms);
            return -1;
        }
        /* The stop's fd only until the stop is requested (it stays readable): then its deadline bounds this. */
        struct pollfd p[2] = {{.fd = m->sock, .events = events},
                              {.fd = m->o.stop && stop_at == 0 ? m->o.stop->fd : -1, .events = POLLIN}};
        int r = poll(p, 2, left > 1000000 ? 1000000 : (int)left);
        if (r > 0 && p[0].revents != 0)
            return 0;
        if (r < 0 && errno != EINTR) {
            set_error(m, "%s: poll: %s", what, strerror(errno));
            return -1;
        }
    }
}

static int send_all(imap_t *m, const char *b, size_t n, int64_t deadline, const char *what)
{
    while (n > 0) {
        size_t sent = 0;
        CURLcode rc = curl_easy_send(m->h, b, n, &sent);
        if (rc == CURLE_AGAIN) {
            if (wait_socket(m, POLLOUT, deadline, what) != 0)
                return -1;
            continue;
        }
        if (rc != CURLE_OK) {
            set_error(m, "%s: sending: %s", what, curl_easy_strerror(rc));
            return -1;
        }
        b += sent;
        n -= sent;
    }
    return 0;
}

/* Reads more bytes onto m->resp, of which held (the response not yet handed on) may be at most max. 0, or
 * -1 (m->error). */
static int receive(imap_t *m, size_t held, size_t max, int64_t deadline, const char *what)
{
    if (held >= max + IMAP_MAX_LINE) {
        set_error(m, "%s: the response passes %zu bytes", what, max);
        return -1;
    }
    if (m->resp_cap - m->in_len < IMAP_READ + 1) {
        m->resp_cap = m->resp_cap ? m->resp_cap * 2 : 2 * IMAP_READ;
        while (m->resp_cap - m->in_len < IMAP_READ + 1)
            m->resp_cap *= 2;
        m->resp = omni_realloc(m->resp, m->resp_cap);
    }
    for (;;) {
        size_t got = 0;
        CURLcode rc = curl_easy_recv(m->h, m->resp + m->in_len, IMAP_READ, &got);
        if (rc == CURLE_AGAIN) {
            if (wait_socket(m, POLLIN, deadline, what) != 0)
                return -1;
            continue;
        }
        if (rc != CURLE_OK) {
            set_error(m, "%s: receiving: %s", what, curl_easy_strerror(rc));
            return -1;
        }
        if (got == 0) {
            set_error(m, "%s: the server closed the connection in the middle of the response", what);
            return -1;
        }
        m->in_len += got;
        return 0;
    }
}

/* The size of the literal a line announces at its end ("... {123}" or the non-synchronizing "{123+}"),
 * or -1 when it announces none; -2 when the braces hold something that is not a size. */
static long long literal_size(const char *line, size_t len)
{
    if (len < 3 || line[len - 1] != '}')
        return -1;
    size_t open = len - 1;
    while (open > 0 && line[open] != '{')
        open--;
    if (line[open] != '{')
        return -1;
    size_t i = open + 1, end = len - 1;
    if (end > i && line[end - 1] == '+')
        end--;
    if (i == end || end - i > 12)
        return -2;
    long long v = 0;
    for (; i < end; i++) {
        if (line[i] < '0' || line[i] > '9')
            return -2;
        v = v * 10 + (line[i] - '0');
    }
    return v;
}

/* Called with each whole untagged response line (its literals inside, as they came) as soon as it is in;
 * the line is valid during the call only. */
typedef void (*line_fn)(const char *line, size_t len, void *arg);

/* Sends "<tag> <cmd>" and reads its response. Without fn, the untagged part (every line, literals inside
 * them as they came) goes into m->resp[0..resp_len), NUL-terminated, at most max bytes; with fn, each
 * untagged line is handed to fn as it completes, and dropped (then max bounds one line). Literals are
 * counted, never searched for line ends, so a body line that looks like a tagged reply is just body.
 * Returns IMAP_OK on the tagged OK; IMAP_ERROR on NO or BAD (m->error quotes it; the connection stays)
 * or on a broken connection, a malformed response or one beyond max (m->error; the connection is
 * dropped). A "* OK [UIDVALIDITY n]" seen on the way is kept in m->announced_uidvalidity. */
static int command_lines(imap_t *m, const char *cmd, size_t max, line_fn fn, void *arg)
{
    /* What errors name: the command's verb ("SELECT", "UID FETCH"), not its (possibly long) arguments. */
    char what[32];
    size_t wl = strcspn(cmd, " ");
    if (wl == 3 && strncmp(cmd, "UID", 3) == 0 && cmd[3] == ' ')
        wl = 4 + strcspn(cmd + 4, " ");
    snprintf(what, sizeof what, "%.*s", (int)wl, cmd);
    if (connect_login(m) != IMAP_OK)
        return IMAP_ERROR;
    int64_t deadline = omni_mono_ms() + m->o.timeout_ms;
    char tag[16];
    int tl = snprintf(tag, sizeof tag, "X%u", ++m->tag);
    char *line = omni_asprintf("%s %s\r\n", tag, cmd);
    int s = send_all(m, line, strlen(line), deadline, what);
    free(line);
    if (s != 0) {
        drop(m);
        return IMAP_ERROR;
    }
    /* What came after the last tagged reply belongs to this response (unsolicited "* 5 EXISTS"...). */
    if (m->left_len)
        memmove(m->resp, m->resp + m->left_off, m->left_len);
    m->in_len = m->left_len;
    m->left_off = m->left_len = 0;
    m->announced = false;
    size_t start = 0;  /* of the response line being read (logical: literals included) */
    size_t seg = 0;    /* of its part since its last literal (or its start) */
    size_t scan = 0;   /* where to look for the next line end */
    for (;;) {
        char *nl = scan < m->in_len ? memchr(m->resp + scan, '\n', m->in_len - scan) : NULL;
        if (!nl) {
            if (m->in_len - seg > IMAP_MAX_LINE) {
                set_error(m, "%s: a response line is longer than %u bytes", what, IMAP_MAX_LINE);
                break;
            }
            scan = m->in_len;
            if (receive(m, m->in_len - start, max, deadline, what) != 0)
                break;
            continue;
        }
        size_t end = (size_t)(nl - m->resp); /* the '\n' */
        size_t len = end - seg;
        if (len > 0 && m->resp[seg + len - 1] == '\r')
            len--;
        long long lit = literal_size(m->resp + seg, len);
        if (lit == -2) {
            set_error(m, "%s: a literal's size is not a number", what);
            break;
        }
        if (lit >= 0) {
            if ((unsigned long long)lit > max) {
                set_error(m, "%s: the server announces a literal of %lld bytes, more than the %zu allowed",
                          what, lit, max);
                break;
            }
            while (m->in_len < end + 1 + (size_t)lit)
                if (receive(m, m->in_len - start, max, deadline, what) != 0)
                    goto broken;
            seg = scan = end + 1 + (size_t)lit; /* the line goes on after the literal */
            continue;
        }
        /* A whole response line, from start to end. */
        const char *l = m->resp + start;
        size_t ll = end - start;
        if (ll > (size_t)tl && memcmp(l, tag, (size_t)tl) == 0 && l[tl] == ' ') {
            const char *st = l + tl + 1;
            m->left_off = end + 1;
            m->left_len = m->in_len - (end + 1);
            m->resp_len = start;
            if (strncasecmp(st, "OK", 2) == 0) {
                m->resp[start] = '\0'; /* after the status is read: it overwrites the tag's first byte */
                return IMAP_OK;
            }
            size_t sl = ll - (size_t)tl - 1;
            while (sl > 0 && (st[sl - 1] == '\r' || st[sl - 1] == '\n'))
                sl--;
            set_error(m, "%s: the server answered %.*s", what, (int)(sl > 300 ? 300 : sl), st);
            m->resp[start] = '\0';
            if (strncasecmp(st, "NO", 2) == 0 || strncasecmp(st, "BAD", 3) == 0)
                return IMAP_ERROR;
            drop(m);
            return IMAP_ERROR;
        }
        if (ll >= 5 && strncasecmp(l, "* BYE", 5) == 0) {
            size_t sl = ll;
            while (sl > 0 && (l[sl - 1] == '\r' || l[sl - 1] == '\n'))
                sl--;
            set_error(m, "%s: the server is closing the connection: %.*s", what, (int)(sl > 300 ? 300 : sl),
                      l);
            break;
        }
        if (ll < 2 || l[0] != '*' || l[1] != ' ') {
            set_error(m, "%s: a response line is neither untagged nor ours: %.*s", what,
                      (int)(ll > 80 ? 80 : ll), l);
            break;
        }
        if (ll > 17 && strncasecmp(l, "* OK [UIDVALIDITY ", 18) == 0) {
            m->announced = true;
            m->announced_uidvalidity = (uint32_t)strtoul(l + 18, NULL, 10);
        }
        start = seg = scan = end + 1;
        if (fn) {
            fn(l, ll + 1, arg);
            if (start >= 2 * IMAP_READ || start == m->in_len) {
                /* What was handed on is dropped, so that a long response does not pile up. */
                memmove(m->resp, m->resp + start, m->in_len - start);
                m->in_len -= start;
                start = seg = scan = 0;
            }
        }
    }
broken:
    m->resp_len = 0;
    m->left_off = m->left_len = 0;
    drop(m);
    return IMAP_ERROR;
}

/* A mailbox name as an IMAP quoted string; email_config.c made sure it holds no CR, LF or NUL. Caller
 * frees. */
static int command(imap_t *m, const char *cmd, size_t max) { return command_lines(m, cmd, max, NULL, NULL); }

static char *quoted(const char *mailbox)
{
    size_t n = strlen(mailbox);
    char *q = omni_malloc(2 * n + 3), *w = q;
    *w++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (mailbox[i] == '"' || mailbox[i] == '\\')
            *w++ = '\\';
        *w++ = mailbox[i];
    }
    *w++ = '"';
    *w = '\0';
    return q;
}

/* SELECT mailbox on this connection (connecting first when needed). */
static int select_box(imap_t *m, const char *mailbox, uint32_t *uidvalidity, uint32_t *uidnext)
{
    free(m->selected);
    m->selected = NULL;
    char *q = quoted(mailbox);
    char *cmd = omni_asprintf("SELECT %s", q);
    free(q);
    int r = command(m, cmd, IMAP_MAX_RESPONSE);
    free(cmd);
    if (r != IMAP_OK)
        return r;
    int found = imap_parse_select(m->resp, m->resp_len, uidvalidity, uidnext);
    bool asked_status = found == 1;
    if (asked_status) {
        /* No UIDNEXT (RFC 3501 requires it; some servers leave it out): STATUS says it. Asked right after the
         * SELECT, its view is the one the SELECT just gave. */
        q = quoted(mailbox);
        cmd = omni_asprintf("STATUS %s (UIDNEXT)", q);
        free(q);
        r = command(m, cmd, IMAP_MAX_RESPONSE);
        free(cmd);
        if (r != IMAP_OK)
            return r;
        found = imap_parse_status_uidnext(m->resp, m->resp_len, uidnext);
    }
    if (found != 0) {
        set_error(m, asked_status ? "SELECT %s: no UIDNEXT in the answer, nor in STATUS's"
                                  : "SELECT %s: no UIDVALIDITY and UIDNEXT in the answer", mailbox);
        return IMAP_ERROR;
    }
    m->selected = omni_strdup(mailbox);
    m->selected_uidvalidity = *uidvalidity;
    return IMAP_OK;
}

int imap_status(imap_t *m, const char *mailbox, uint32_t *uidvalidity, uint32_t *uidnext)
{
    /* SELECT, not STATUS: servers answer STATUS on the selected mailbox from the session's old view (no
     * new mail until it is selected again), and this connection keeps the mailbox selected. A kept
     * connection may have been closed by the server between polls (an idle timeout, a restart): then
     * once more on a new one, so that only a server that is really away makes a poll fail. */
    bool kept = m->h != NULL;
    int r = select_box(m, mailbox, uidvalidity, uidnext);
    if (r == IMAP_ERROR && kept && !m->h) /* dropped: the connection broke, not a NO or BAD */
        r = select_box(m, mailbox, uidvalidity, uidnext);
    return r;
}

/* Makes sure mailbox is selected with uidvalidity: IMAP_CHANGED when the server has another. A UID is
 * only meaningful with its UIDVALIDITY, so every UID command goes through here. */
static int ensure_selected(imap_t *m, const char *mailbox, uint32_t uidvalidity)
{
    if (m->h && m->selected && strcmp(m->selected, mailbox) == 0)
        return m->selected_uidvalidity == uidvalidity ? IMAP_OK : IMAP_CHANGED;
    uint32_t uv, un;
    int r = select_box(m, mailbox, &uv, &un);
    if (r != IMAP_OK)
        return r;
    return uv == uidvalidity ? IMAP_OK : IMAP_CHANGED;
}

/* A UID command on mailbox pinned to uidvalidity (lines to fn as command_lines does). IMAP_CHANGED also
 * when the response announces another UIDVALIDITY (a server may, in the middle of a session). */
static int uid_command_lines(imap_t *m, const char *mailbox, uint32_t uidvalidity, const char *cmd,
                             size_t max, line_fn fn, void *arg)
{
    int r = ensure_selected(m, mailbox, uidvalidity);
    if (r == IMAP_OK)
        r = command_lines(m, cmd, max, fn, arg);
    if (r == IMAP_OK && m->announced && m->announced_uidvalidity != uidvalidity) {
        set_error(m, "the server announced UIDVALIDITY %u, not %u", m->announced_uidvalidity, uidvalidity);
        m->selected_uidvalidity = m->announced_uidvalidity;
        r = IMAP_CHANGED;
    }
    return r;
}

static int uid_command(imap_t *m, const char *mailbox, uint32_t uidvalidity, const char *cmd, size_t max)
{
    return uid_command_lines(m, mailbox, uidvalidity, cmd, max, NULL, NULL);
}

int imap_search(imap_t *m, const char *mailbox, uint32_t uidvalidity, const char *criteria,
                uint32_t **uids, size_t *n)
{
    *uids = NULL;
    *n = 0;
    char *cmd = omni_asprintf("UID SEARCH %s", criteria);
    int r = uid_command(m, mailbox, uidvalidity, cmd, IMAP_MAX_RESPONSE);
    free(cmd);
    if (r != IMAP_OK)
        return r;
    if (imap_parse_search(m->resp, m->resp_len, uids, n) != 0) {
        set_error(m, "UID SEARCH %s: the answer is not a list of numbers", criteria);
        return IMAP_ERROR;
    }
    return IMAP_OK;
}

/* Writes uids[0..n) (ascending) as a UID set, runs of consecutive UIDs as a:b, so that a batch of new
 * mail is a few bytes. w has room for n * 22 bytes. */
static void uid_set(char *w, const uint32_t *uids, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && uids[j + 1] == uids[j] + 1)
            j++;
        w += sprintf(w, "%s%u", i ? "," : "", uids[i]);
        if (j > i)
            w += sprintf(w, ":%u", uids[j]);
        i = j + 1;
    }
}

/* "<verb> <set of uids[0..n)><tail>"; caller frees. */
static char *set_command(const char *verb, const uint32_t *uids, size_t n, const char *tail)
{
    size_t vl = strlen(verb);
    char *cmd = omni_malloc(vl + n * 22 + strlen(tail) + 2);
    memcpy(cmd, verb, vl);
    cmd[vl] = ' ';
    uid_set(cmd + vl + 1, uids, n);
    strcat(cmd, tail);
    return cmd;
}

int imap_fetch_meta(imap_t *m, const char *mailbox, uint32_t uidvalidity, const uint32_t *uids, size_t n,
                    imap_meta_t *meta, bool *found)
{
    int r = IMAP_OK;
    for (size_t i = 0; i < n && r == IMAP_OK; i += IMAP_SET_MAX) {
        size_t k = n - i < IMAP_SET_MAX ? n - i : IMAP_SET_MAX;
        char *cmd = set_command("UID FETCH", uids + i, k, " (UID FLAGS RFC822.SIZE INTERNALDATE)");
        r = uid_command(m, mailbox, uidvalidity, cmd, IMAP_MAX_RESPONSE);
        free(cmd);
        if (r == IMAP_OK)
            imap_parse_fetch_metas(m->resp, m->resp_len, uids + i, k, meta + i, found + i);
    }
    return r;
}

/* The bytes of the message to fetch: all of it, or max_fetch when it is larger (or of unknown size). */
static size_t wanted(const imap_t *m, const imap_meta_t *meta)
{
    return meta->size >= 0 && meta->size <= (long long)m->o.max_fetch ? (size_t)meta->size : m->o.max_fetch;
}

/* One group's fetch under way: the literals as they arrive, handed to take in UID order. */
typedef struct body_fetch {
    imap_t *m;
    const imap_meta_t *meta;
    imap_literal_t *lit;
    size_t k, next;          /* lit[0..k); next: the first not yet handed to take */
    imap_capture_t cap;
    imap_take_fn take;
    void *arg;
    bool stopped;            /* take said stop: the rest is read and dropped */
    size_t end;              /* hand on lit[0..end) only (k unless a body missing is still there) */
} body_fetch_t;

/* Hands lit[next] to take when it is whole (gone: only at the end, when no response can come for it). */
static void hand_on(body_fetch_t *f, bool at_end)
{
    while (!f->stopped && f->next < f->end && (f->lit[f->next].whole || at_end)) {
        imap_literal_t *lit = &f->lit[f->next];
        const imap_meta_t *meta = &f->meta[f->next];
        imap_message_t msg = {.meta = *meta, .truncated = meta->size > (long long)f->m->o.max_fetch};
        if (lit->whole) {
            msg.raw = lit->data;
            msg.len = lit->len;
            lit->data = NULL;
        } else {
            msg.gone = true; /* expunged since its metadata was read: no FETCH response */
        }
        if (f->take(f->arg, f->next, &msg) != 0)
            f->stopped = true;
        f->next++;
    }
}

static void body_line(const char *line, size_t len, void *arg)
{
    body_fetch_t *f = arg;
    if (f->cap.error)
        return;
    imap_capture_feed(&f->cap, line, len);
    hand_on(f, false);
}

/* The UIDs of the fetch that got no body: expunged since their metadata was read, or a server that left
 * a body out. Only the first is told from the second by asking (UID SEARCH UID <set>): a message still
 * there is not passed over as gone (it would never be read), the fetch fails at it (f->end) and the next
 * poll reads it again. Returns IMAP_OK when every one is gone, else an IMAP error with the reason set. */
static int missing_bodies(body_fetch_t *f, const char *mailbox, uint32_t uidvalidity)
{
    uint32_t *miss = omni_malloc((f->k + 1) * sizeof *miss);
    size_t n = 0;
    for (size_t i = f->next; i < f->k; i++)
        if (!f->lit[i].whole)
            miss[n++] = f->lit[i].uid;
    if (n == 0) {
        free(miss);
        return IMAP_OK;
    }
    char *set = set_command("UID", miss, n, "");
    uint32_t *there = NULL;
    size_t n_there = 0;
    int r = imap_search(f->m, mailbox, uidvalidity, set, &there, &n_there);
    free(set);
    for (size_t i = f->next; r != IMAP_OK && i < f->k; i++)
        if (!f->lit[i].whole) { /* not known to be gone: none of them is passed over */
            f->end = i;
            break;
        }
    for (size_t i = f->next; r == IMAP_OK && i < f->k; i++) {
        for (size_t j = 0; !f->lit[i].whole && j < n_there; j++)
            if (there[j] == f->lit[i].uid) {
                f->end = i;
                set_error(f->m, "UID FETCH gave no body for UID %u, which is still in %s", f->lit[i].uid,
                          mailbox);
                r = IMAP_ERROR;
                break;
            }
    }
    free(there);
    free(miss);
    return r;
}

int imap_fetch_bodies(imap_t *m, const char *mailbox, uint32_t uidvalidity, const uint32_t *uids,
                      const imap_meta_t *meta, size_t n, imap_take_fn take, void *arg, size_t *handed)
{
    *handed = 0;
    if (n == 0)
        return IMAP_OK;
    /* The group: whole messages from the first on while their bytes stay under IMAP_GROUP_BYTES; a
     * message larger than max_fetch (or of unknown size) alone, its first max_fetch bytes. */
    bool partial = meta[0].size < 0 || meta[0].size > (long long)m->o.max_fetch;
    size_t k = 1, bytes = wanted(m, &meta[0]);
    while (!partial && k < n && meta[k].size >= 0 && meta[k].size <= (long long)m->o.max_fetch &&
           bytes + (size_t)meta[k].size <= IMAP_GROUP_BYTES)
        bytes += (size_t)meta[k++].size;
    char *cmd;
    if (partial) {
        char tail[64];
        snprintf(tail, sizeof tail, " (UID BODY.PEEK[]<0.%zu>)", m->o.max_fetch);
        cmd = set_command("UID FETCH", uids, 1, tail);
    } else {
        cmd = set_command("UID FETCH", uids, k, " (UID BODY.PEEK[])");
    }
    body_fetch_t f = {.m = m, .meta = meta, .k = k, .take = take, .arg = arg, .end = k};
    f.lit = omni_calloc(k, sizeof *f.lit);
    for (size_t i = 0; i < k; i++)
        f.lit[i].uid = uids[i];
    /* A body may differ from its RFC822.SIZE (a server's bookkeeping): taken as sent, up to max_fetch. */
    imap_capture_init(&f.cap, f.lit, k, m->o.max_fetch);
    /* One line of the response holds one body and its FETCH items around it. */
    int r = uid_command_lines(m, mailbox, uidvalidity, cmd, m->o.max_fetch + 4096, body_line, &f);
    free(cmd);
    if (r == IMAP_OK) {
        int c = imap_capture_finish(&f.cap);
        if (c < 0 && strcmp(f.cap.error, "no FETCH response for some of the UIDs asked for") != 0) {
            /* The response was read whole by its literals' sizes: what is wrong is the server's answer. */
            set_error(m, "UID FETCH %u..%u in %s: %s", uids[0], uids[k - 1], mailbox, f.cap.error);
            r = IMAP_ERROR;
        } else {
            r = missing_bodies(&f, mailbox, uidvalidity);
            hand_on(&f, true); /* every one when all the missing are gone, else those before f.end */
        }
    }
    *handed = f.next;
    imap_capture_free(&f.cap);
    free(f.lit);
    return r;
}

int imap_set_seen(imap_t *m, const char *mailbox, uint32_t uidvalidity, const uint32_t *uids, size_t n,
                  bool seen)
{
    int r = IMAP_OK;
    for (size_t i = 0; i < n && r == IMAP_OK; i += IMAP_SET_MAX) {
        size_t k = n - i < IMAP_SET_MAX ? n - i : IMAP_SET_MAX;
        char *cmd = set_command("UID STORE", uids + i, k,
                                seen ? " +FLAGS.SILENT (\\Seen)" : " -FLAGS.SILENT (\\Seen)");
        r = uid_command(m, mailbox, uidvalidity, cmd, IMAP_MAX_RESPONSE);
        free(cmd);
    }
    return r;
}
