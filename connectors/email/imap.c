/* IMAP over libcurl (see imap.h for the fetch strategy and why). */
#include "imap.h"
#include "omni/log.h"
#include "omni/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

/* curl's receive buffer; curl cuts response lines longer than half of it (see imap.h), so it must hold
 * a whole IMAP_CHUNK with room to spare. */
#define IMAP_BUFFER (512L * 1024)
/* Responses other than a fetched message (SEARCH results, SELECT) are refused beyond this. */
#define IMAP_MAX_RESPONSE (8u * 1024 * 1024)
/* Bytes per PEEK request. curl (7.88 as patched by Debian) refuses more than 300 KiB of "headers" per
 * request, and the header callback is where the literal arrives; and curl cuts lines longer than half its
 * buffer. A chunk of 192 KiB stays under both, whatever the message's line lengths. */
#define IMAP_CHUNK (192u * 1024)
/* UIDs per STORE command, so the command line stays far below servers' line limits (Dovecot: 64 KiB). */
#define IMAP_STORE_CHUNK 500
/* What a response may hold, because of how curl 7.88 reads one. Every response line passes its header
 * callback and counts against a limit of 300 KiB per request; and every untagged line ("* 5 FETCH ...")
 * ends a "response" in curl's pingpong reader, which keeps the rest of what it had read and counts it again
 * on the next call. A response of n untagged lines over B bytes that arrive together is thus counted up
 * to ~(n/2 + 1) * B: 300 metadata lines (30 KB) already fail, as do 20 small bodies of 200 KB together
 * (measured with the curl tool against Dovecot 2.3). So: metadata for at most IMAP_META_SET UIDs per
 * command, and bodies together only while (n/2 + 1) * B stays under IMAP_GROUP_COUNTED. A group refused
 * anyway is fetched one by one. */
#define IMAP_META_SET 40                    /* 40 lines of ~100 bytes: counted ~80 KiB at most */
#define IMAP_GROUP_MAX 32                   /* bodies per command at most */
#define IMAP_GROUP_COUNTED (192u * 1024)    /* (n/2 + 1) * B at most, B the bodies' bytes */

struct imap {
    imap_opts_t o;          /* strings owned (copies) */
    CURL *h;                /* one handle: curl keeps the connection in it between calls */
    char errbuf[CURL_ERROR_SIZE];
    char error[512];
    char *body;             /* what the write callback got */
    size_t body_len, body_cap, body_max;
    imap_capture_t *cap;    /* set while a PEEK fetch runs */
    CURLcode last;          /* of the last request */
};

static size_t on_write(char *p, size_t size, size_t n, void *user)
{
    imap_t *m = user;
    size_t len = size * n;
    if (m->body_len + len > m->body_max)
        return 0; /* curl fails the call with CURLE_WRITE_ERROR */
    if (m->body_len + len + 1 > m->body_cap) {
        size_t cap = m->body_cap ? m->body_cap : 4096;
        while (cap < m->body_len + len + 1)
            cap *= 2;
        m->body = omni_realloc(m->body, cap);
        m->body_cap = cap;
    }
    memcpy(m->body + m->body_len, p, len);
    m->body_len += len;
    m->body[m->body_len] = '\0';
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    imap_t *m = user;
    if (m->cap)
        imap_capture_feed(m->cap, p, size * n);
    return size * n;
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

void imap_destroy(imap_t **pm)
{
    if (!pm || !*pm)
        return;
    imap_t *m = *pm;
    if (m->h)
        curl_easy_cleanup(m->h);
    free((char *)m->o.url);
    free((char *)m->o.user);
    free((char *)m->o.password);
    free((char *)m->o.ca_file);
    free(m->body);
    free(m);
    *pm = NULL;
}

const char *imap_error(const imap_t *m) { return m->error; }

/* Forgets the connection: the next call connects and logs in again. */
static void drop(imap_t *m)
{
    if (m->h)
        curl_easy_cleanup(m->h);
    m->h = NULL;
}

static CURL *handle(imap_t *m)
{
    if (m->h)
        return m->h;
    CURL *h = curl_easy_init();
    if (!h)
        omni_fatal("curl_easy_init failed (out of memory)");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "imap,imaps");
    curl_easy_setopt(h, CURLOPT_USERNAME, m->o.user);
    curl_easy_setopt(h, CURLOPT_PASSWORD, m->o.password);
    curl_easy_setopt(h, CURLOPT_USE_SSL, (long)(m->o.tls == IMAP_TLS_NONE ? CURLUSESSL_NONE : CURLUSESSL_ALL));
    if (m->o.ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, m->o.ca_file);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, m->o.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, m->o.timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM: the runtime owns signals */
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, IMAP_BUFFER);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, m->errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, m);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, m);
    m->h = h;
    return h;
}

/* The URL of mailbox, pinned to uidvalidity when it is not 0, with an optional suffix ("/;UID=5"). */
static char *mailbox_url(imap_t *m, const char *mailbox, uint32_t uidvalidity, const char *suffix)
{
    char *enc = curl_easy_escape(handle(m), mailbox, 0);
    if (!enc)
        omni_fatal("curl_easy_escape failed (out of memory)");
    size_t n = strlen(m->o.url);
    while (n > 0 && m->o.url[n - 1] == '/')
        n--;
    char *u = uidvalidity ? omni_asprintf("%.*s/%s;UIDVALIDITY=%u%s", (int)n, m->o.url, enc, uidvalidity, suffix)
                          : omni_asprintf("%.*s/%s%s", (int)n, m->o.url, enc, suffix);
    curl_free(enc);
    return u;
}

/* Runs one request; the response's untagged lines (custom) or the literal (fetch) land in m->body. */
static int run(imap_t *m, const char *url, const char *custom, size_t body_max)
{
    CURL *h = handle(m);
    m->body_len = 0;
    if (m->body)
        m->body[0] = '\0';
    m->body_max = body_max;
    m->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, custom);
    CURLcode rc = curl_easy_perform(h);
    m->last = rc;
    if (rc == CURLE_OK)
        return IMAP_OK;
    snprintf(m->error, sizeof m->error, "%s: %s", curl_easy_strerror(rc),
             m->errbuf[0] ? m->errbuf : "no detail");
    if (rc == CURLE_REMOTE_FILE_NOT_FOUND)
        return IMAP_CHANGED; /* curl's answer to a UIDVALIDITY other than the URL's */
    drop(m); /* after a failure curl's idea of the session may be off: start clean */
    return IMAP_ERROR;
}

int imap_status(imap_t *m, const char *mailbox, uint32_t *uidvalidity, uint32_t *uidnext)
{
    /* SELECT, not STATUS: servers answer STATUS on the selected mailbox from the session's old view (no
     * new mail until it is selected again), and this connection keeps the mailbox selected. The name is a
     * quoted string; email_config.c made sure it holds no CR, LF or NUL. */
    size_t n = strlen(mailbox);
    char *q = omni_malloc(2 * n + 1), *w = q;
    for (size_t i = 0; i < n; i++) {
        if (mailbox[i] == '"' || mailbox[i] == '\\')
            *w++ = '\\';
        *w++ = mailbox[i];
    }
    *w = '\0';
    char *cmd = omni_asprintf("SELECT \"%s\"", q);
    free(q);
    char *url = omni_asprintf("%s/", m->o.url);
    int r = run(m, url, cmd, IMAP_MAX_RESPONSE);
    free(url);
    free(cmd);
    if (r == IMAP_CHANGED)
        r = IMAP_ERROR; /* no UIDVALIDITY in this URL: not a UIDVALIDITY answer */
    if (r != IMAP_OK)
        return r;
    if (imap_parse_select(m->body, m->body_len, uidvalidity, uidnext) != 0) {
        snprintf(m->error, sizeof m->error, "SELECT %s: no UIDVALIDITY and UIDNEXT in the answer", mailbox);
        return IMAP_ERROR;
    }
    return IMAP_OK;
}

int imap_search(imap_t *m, const char *mailbox, uint32_t uidvalidity, const char *criteria,
                uint32_t **uids, size_t *n)
{
    *uids = NULL;
    *n = 0;
    char *url = mailbox_url(m, mailbox, uidvalidity, "");
    char *cmd = omni_asprintf("UID SEARCH %s", criteria);
    int r = run(m, url, cmd, IMAP_MAX_RESPONSE);
    free(url);
    free(cmd);
    if (r != IMAP_OK)
        return r;
    if (imap_parse_search(m->body, m->body_len, uids, n) != 0) {
        snprintf(m->error, sizeof m->error, "UID SEARCH %s: the answer is not a list of numbers", criteria);
        return IMAP_ERROR;
    }
    return IMAP_OK;
}

/* The ordinary fetch (BODY[], sets \Seen) on a fresh connection; see imap.h. */
static int fetch_fallback(imap_t *m, const char *mailbox, uint32_t uidvalidity, uint32_t uid,
                          imap_message_t *out)
{
    drop(m);
    char suffix[64];
    if (out->truncated)
        snprintf(suffix, sizeof suffix, "/;UID=%u;PARTIAL=0.%zu", uid, m->o.max_fetch);
    else
        snprintf(suffix, sizeof suffix, "/;UID=%u", uid);
    char *url = mailbox_url(m, mailbox, uidvalidity, suffix);
    int r = run(m, url, NULL, m->o.max_fetch);
    free(url);
    if (r == IMAP_CHANGED) /* curl answers a missing UID like a changed UIDVALIDITY: retry next poll */
        r = IMAP_ERROR;
    if (r != IMAP_OK)
        return r;
    out->raw = omni_strndup(m->body ? m->body : "", m->body_len);
    out->len = m->body_len;
    out->seen_set = true;
    return IMAP_OK;
}

/* One PEEK request for bytes [off, off + k) of the message, appended to *buf. Returns IMAP_OK with *got
 * set, IMAP_GONE, IMAP_ERROR (network; m->error), or 3 when the response stream was spoiled (*why). */
enum { SPOILED = 3 };
static int fetch_chunk(imap_t *m, const char *url, uint32_t uid, size_t off, size_t k, char **buf,
                       size_t *len, size_t *got, const char **why)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "UID FETCH %u BODY.PEEK[]<%zu.%zu>", uid, off, k);
    imap_literal_t lit = {.uid = uid};
    imap_capture_t cap;
    imap_capture_init(&cap, &lit, 1, k);
    m->cap = &cap;
    int r = run(m, url, cmd, IMAP_MAX_RESPONSE);
    m->cap = NULL;
    int c = r == IMAP_OK ? imap_capture_finish(&cap) : -1;
    if (c == 0) {
        *buf = omni_realloc(*buf, *len + lit.len + 1);
        memcpy(*buf + *len, lit.data, lit.len);
        *len += lit.len;
        (*buf)[*len] = '\0';
        *got = lit.len;
    }
    *why = r == IMAP_OK ? cap.error : m->error;
    imap_capture_free(&cap);
    if (c == 0)
        return IMAP_OK;
    if (r == IMAP_OK)
        return c == 1 && off == 0 ? IMAP_GONE : SPOILED;
    /* A body line that looks like the tagged reply makes curl see a failed command; a network failure,
     * though, is one (and would fail the ordinary fetch as well). */
    return m->last == CURLE_QUOTE_ERROR || m->last == CURLE_WEIRD_SERVER_REPLY ? SPOILED : r;
}

/* The bytes of the message to fetch: all of it, or max_fetch when it is larger (or of unknown size). */
static size_t wanted(const imap_t *m, const imap_meta_t *meta)
{
    return meta->size >= 0 && meta->size <= (long long)m->o.max_fetch ? (size_t)meta->size : m->o.max_fetch;
}

/* One message, in IMAP_CHUNK pieces, whose metadata is known. */
static int fetch_one(imap_t *m, const char *mailbox, uint32_t uidvalidity, uint32_t uid, const char *url,
                     imap_message_t *out)
{
    out->truncated = out->meta.size > (long long)m->o.max_fetch;
    size_t want = wanted(m, &out->meta);
    char *buf = omni_strdup("");
    size_t len = 0, got = 0;
    const char *why = NULL;
    int r = IMAP_OK;
    /* In chunks, so that no response passes curl's limits (see IMAP_CHUNK). */
    while (r == IMAP_OK && len < want) {
        size_t k = want - len < IMAP_CHUNK ? want - len : IMAP_CHUNK;
        r = fetch_chunk(m, url, uid, len, k, &buf, &len, &got, &why);
        if (r == IMAP_OK && got < k)
            break; /* the message ended sooner than RFC822.SIZE said: checked below */
    }
    if (r == IMAP_OK && !out->truncated && out->meta.size >= 0 && len != (size_t)out->meta.size) {
        r = SPOILED;
        why = "the bytes fetched are not RFC822.SIZE";
    }
    if (r == IMAP_OK) {
        out->raw = buf;
        out->len = len;
        return IMAP_OK;
    }
    free(buf);
    if (r != SPOILED)
        return r;
    omni_warn("imap: UID %u in %s: fetching without \\Seen failed (%s); fetching with BODY[], which sets "
              "\\Seen", uid, mailbox, why ? why : "no detail");
    return fetch_fallback(m, mailbox, uidvalidity, uid, out);
}

/* Appends uids[0..n) (ascending) to the command being built as a UID set, runs of consecutive UIDs as
 * a:b, so that a batch of new mail is a few bytes. */
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

int imap_fetch_meta(imap_t *m, const char *mailbox, uint32_t uidvalidity, const uint32_t *uids, size_t n,
                    imap_meta_t *meta, bool *found)
{
    char *url = mailbox_url(m, mailbox, uidvalidity, "");
    int r = IMAP_OK;
    for (size_t i = 0; i < n && r == IMAP_OK; i += IMAP_META_SET) {
        size_t k = n - i < IMAP_META_SET ? n - i : IMAP_META_SET;
        char *cmd = omni_malloc(k * 22 + 64);
        int p = sprintf(cmd, "UID FETCH ");
        uid_set(cmd + p, uids + i, k);
        strcat(cmd, " (UID FLAGS RFC822.SIZE INTERNALDATE)");
        r = run(m, url, cmd, IMAP_MAX_RESPONSE);
        free(cmd);
        if (r == IMAP_OK)
            imap_parse_fetch_metas(m->body, m->body_len, uids + i, k, meta + i, found + i);
    }
    free(url);
    return r;
}

int imap_fetch_bodies(imap_t *m, const char *mailbox, uint32_t uidvalidity, const uint32_t *uids,
                      const imap_meta_t *meta, size_t n, imap_message_t *out, size_t *got)
{
    *got = 0;
    if (n == 0)
        return IMAP_OK;
    /* The group: the messages from the first on that curl takes together (see IMAP_GROUP_COUNTED), whole. */
    size_t k = 0, bytes = 0;
    while (k < n && k < IMAP_GROUP_MAX && meta[k].size >= 0 && meta[k].size <= (long long)m->o.max_fetch &&
           ((k + 1) / 2 + 1) * (bytes + (size_t)meta[k].size) <= IMAP_GROUP_COUNTED)
        bytes += (size_t)meta[k++].size;
    char *url = mailbox_url(m, mailbox, uidvalidity, "");
    for (size_t i = 0; i < (k ? k : 1); i++)
        out[i] = (imap_message_t){.meta = meta[i]};
    int r = IMAP_OK;
    size_t done = 0;
    if (k > 1) {
        char *cmd = omni_malloc(k * 22 + 64);
        int p = sprintf(cmd, "UID FETCH ");
        uid_set(cmd + p, uids, k);
        strcat(cmd, " (UID BODY.PEEK[])");
        imap_literal_t *lit = omni_calloc(k, sizeof *lit);
        for (size_t i = 0; i < k; i++)
            lit[i].uid = uids[i];
        imap_capture_t cap;
        imap_capture_init(&cap, lit, k, IMAP_CHUNK);
        m->cap = &cap;
        r = run(m, url, cmd, IMAP_MAX_RESPONSE);
        m->cap = NULL;
        free(cmd);
        int c = r == IMAP_OK ? imap_capture_finish(&cap) : -1;
        for (size_t i = 0; c == 0 && i < k; i++)
            c = lit[i].len == (size_t)meta[i].size ? 0 : -1;
        if (c == 0) {
            for (size_t i = 0; i < k; i++) {
                out[i].raw = lit[i].data;
                out[i].len = lit[i].len;
                lit[i].data = NULL;
            }
            done = k;
        } else if (r != IMAP_CHANGED) {
            /* A message gone since its metadata was read, a body line that ended curl's view of the
             * command early (then the connection is off), a response curl refused: each is fetched alone,
             * on a fresh connection, where a real failure shows again. */
            omni_debug("imap: UIDs %u..%u in %s: fetching together failed (%s); one by one", uids[0],
                       uids[k - 1], mailbox, r == IMAP_OK && cap.error ? cap.error : m->error);
            drop(m);
            r = IMAP_OK;
        }
        imap_capture_free(&cap);
        free(lit);
    }
    /* One by one: a large message (in chunks), or a group that could not be read together. */
    size_t first = done;
    for (size_t i = done; r == IMAP_OK && i < (k > 1 ? k : 1); i++) {
        int one = fetch_one(m, mailbox, uidvalidity, uids[i], url, &out[i]);
        if (one == IMAP_GONE) {
            out[i].gone = true;
            one = IMAP_OK;
        }
        if (one != IMAP_OK) {
            if (i == first)
                r = one; /* else the ones before are good, taken now; the next call meets the error again */
            break;
        }
        done = i + 1;
    }
    free(url);
    if (r != IMAP_OK)
        return r;
    *got = done;
    return IMAP_OK;
}

int imap_set_seen(imap_t *m, const char *mailbox, uint32_t uidvalidity, const uint32_t *uids, size_t n,
                  bool seen)
{
    char *url = mailbox_url(m, mailbox, uidvalidity, "");
    int r = IMAP_OK;
    for (size_t i = 0; i < n && r == IMAP_OK; i += IMAP_STORE_CHUNK) {
        size_t k = n - i < IMAP_STORE_CHUNK ? n - i : IMAP_STORE_CHUNK;
        char *set = omni_malloc(k * 11 + 1), *w = set;
        for (size_t j = 0; j < k; j++)
            w += sprintf(w, "%s%u", j ? "," : "", uids[i + j]);
        char *cmd = omni_asprintf("UID STORE %s %cFLAGS.SILENT (\\Seen)", set, seen ? '+' : '-');
        r = run(m, url, cmd, IMAP_MAX_RESPONSE);
        free(cmd);
        free(set);
    }
    free(url);
    return r;
}
