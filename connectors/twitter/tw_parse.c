/* X API v2 pages to normalized messages (tw_parse.h). */
#include "tw_parse.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni/identity.h"
#include "omni/json_mend.h"
#include "omni/log.h"
#include "omni/util.h"

#define TWITTER_EPOCH_MS 1288834974657LL /* snowflake ids count from here (2010-11-04) */
#define ID_MAX 32                        /* digits in an id: X's are at most 19 */

static bool is_id(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    return n > 0 && n <= ID_MAX && strspn(s, "0123456789") == n && (s[0] != '0' || n == 1);
}

int tw_id_cmp(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(a, b);
}

int64_t tw_snowflake_ms(const char *id)
{
    if (!is_id(id) || strlen(id) > 19)
        return -1;
    unsigned long long v = strtoull(id, NULL, 10);
    if ((v >> 22) == 0 || v > (unsigned long long)INT64_MAX)
        return -1; /* ids from before 2010 are plain counters */
    return (int64_t)(v >> 22) + TWITTER_EPOCH_MS;
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* A string member of the author's user object, or NULL when absent or holding U+0000 (a name cut short there
 * would be a name the user never wrote; the message goes without it). */
static const char *user_str(const json_t *user, const char *key)
{
    const json_t *v = json_object_get(user, key);
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v) ? json_string_value(v) : NULL;
}

/* The API writes &, < and > in tweet text as HTML entities (and only those). Returns a new string. */
static char *unescape_tweet(const char *s)
{
    static const struct { const char *ent; char c; } ents[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' } };
    char *out = omni_malloc(strlen(s) + 1), *w = out;
    while (*s) {
        bool done = false;
        for (size_t i = 0; i < sizeof ents / sizeof ents[0] && *s == '&'; i++) {
            size_t n = strlen(ents[i].ent);
            if (strncmp(s, ents[i].ent, n) == 0) {
                *w++ = ents[i].c;
                s += n;
                done = true;
                break;
            }
        }
        if (!done)
            *w++ = *s++;
    }
    *w = '\0';
    return out;
}

/* The user object of includes.users with this id, or NULL. */
static const json_t *user_by_id(const json_t *root, const char *id)
{
    const json_t *users = json_object_get(json_object_get(root, "includes"), "users");
    size_t i;
    const json_t *u;
    json_array_foreach(users, i, u)
        if (json_is_object(u) && str(u, "id") != NULL && strcmp(str(u, "id"), id) == 0)
            return u;
    return NULL;
}

static void set_meta_str(omni_msg_t *msg, const char *key, const char *value)
{
    if (value != NULL)
        omni_msg_set_meta(msg, key, json_string(value)); /* NULL from json_string (bad UTF-8) drops the key */
}

/* received_at: created_at when it is RFC 3339, else the snowflake's time, else now. */
static void received_at(const json_t *item, const char *id, int64_t now_ms, char *buf, size_t bufsz)
{
    int64_t ms;
    const char *created = str(item, "created_at");
    if (created != NULL && omni_rfc3339_parse(created, &ms) == 0 && ms >= 0) {
        omni_rfc3339(ms, buf, bufsz);
        return;
    }
    ms = tw_snowflake_ms(id);
    omni_rfc3339(ms >= 0 ? ms : now_ms, buf, bufsz);
}

/* Builds the message for one item, or returns NULL after logging why (why is then set) or silently
 * (*pass set: an item that is not for us). */
static omni_msg_t *item_message(const json_t *root, const json_t *item, const char *id, const tw_parse_opts_t *o,
                                bool *pass)
{
    bool dm = o->kind == TW_DMS;
    const char *what = dm ? "DM event" : "tweet";
    if (dm) {
        const char *type = str(item, "event_type");
        if (type != NULL && strcmp(type, "MessageCreate") != 0) {
            *pass = true;
            return NULL;
        }
    }
    const char *author_key = dm ? "sender_id" : "author_id";
    const char *author = str(item, author_key);
    if (author == NULL) {
        omni_warn("%s %s: no %s (the request asks for it; is the token allowed to see it?): skipped", what, id,
                  author_key);
        return NULL;
    }
    char uid[ID_MAX + 1];
    const char *why = NULL;
    if (omni_numeric_id(author, uid, sizeof uid, &why) != 0) {
        omni_warn("%s %s: %s \"%.40s\" is not a user id (%s): skipped", what, id, author_key, author, why);
        return NULL;
    }
    if (o->own_user_id != NULL && strcmp(uid, o->own_user_id) == 0) {
        /* our own DM in the conversation, or a tweet of ours naming the account (a thread of its own): the
         * account is not its own customer */
        *pass = true;
        return NULL;
    }
    const json_t *textv = json_object_get(item, "text");
    /* A long post's text is cut at about 280 characters; the whole of it is note_tweet.text (tweet.fields asks
     * for it). */
    const json_t *note = json_object_get(json_object_get(item, "note_tweet"), "text");
    if (!dm && json_is_string(note))
        textv = note;
    if (textv != NULL && !json_is_string(textv)) {
        omni_warn("%s %s: text is not a string: skipped", what, id);
        return NULL;
    }
    char *text = textv == NULL ? omni_strdup("") : dm ? omni_strdup(json_string_value(textv))
                                                       : unescape_tweet(json_string_value(textv));
    char msg_id[64], when[40];
    snprintf(msg_id, sizeof msg_id, dm ? "twitter:dm:%s" : "twitter:%s", id);
    received_at(item, id, o->now_ms, when, sizeof when);
    omni_msg_t *msg = omni_msg_new(msg_id, "twitter", uid, when, text);
    free(text);
    const json_t *user = user_by_id(root, uid);
    const char *username = user_str(user, "username"), *name = user_str(user, "name");
    if (name != NULL && name[0] != '\0')
        omni_msg_set(msg, "from.name", name);
    set_meta_str(msg, "kind", dm ? "dm" : "mention");
    set_meta_str(msg, "username", username);
    if (dm) {
        const char *conv = str(item, "dm_conversation_id");
        set_meta_str(msg, "dm_event_id", id);
        set_meta_str(msg, "dm_conversation_id", conv);
        if (conv != NULL) {
            char *thread = omni_asprintf("dm:%s", conv);
            omni_msg_set(msg, "thread", thread);
            free(thread);
        }
    } else {
        const char *conv = str(item, "conversation_id"), *lang = str(item, "lang");
        set_meta_str(msg, "tweet_id", id);
        set_meta_str(msg, "conversation_id", conv);
        set_meta_str(msg, "in_reply_to_user_id", str(item, "in_reply_to_user_id"));
        set_meta_str(msg, "lang", lang);
        omni_msg_set(msg, "thread", conv != NULL ? conv : id);
        if (lang != NULL && strlen(lang) == 2 && lang[0] >= 'a' && lang[0] <= 'z' && lang[1] >= 'a' && lang[1] <= 'z')
            omni_msg_set(msg, "lang", lang);
        char *url = omni_asprintf("https://x.com/%s/status/%s", username != NULL ? username : "i", id);
        set_meta_str(msg, "url", url);
        free(url);
    }
    return msg;
}

static void page_add(tw_page_t *p, omni_msg_t *msg)
{
    p->msgs = omni_realloc(p->msgs, (p->n + 1) * sizeof *p->msgs);
    p->msgs[p->n++] = msg;
}

int tw_parse_page(const char *body, size_t len, const tw_parse_opts_t *o, tw_page_t *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    /* Valid JSON that jansson would refuse whole for one odd item: a lone surrogate escape (read as U+FFFD, the
     * replacement character) or a string holding U+0000 (loaded, and its item skipped below). */
    char *mended = omni_json_mend_surrogates(body, len);
    json_t *root = json_loadb(mended ? mended : body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    free(mended);
    if (root == NULL) {
        snprintf(err, errsz, "not JSON: %s at byte %d", jerr.text, jerr.position);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errsz, "not a JSON object");
        json_decref(root);
        return -1;
    }
    const json_t *data = json_object_get(root, "data"), *errors = json_object_get(root, "errors");
    /* errors beside a page (its meta) are partial: a deleted or withheld tweet, a suspended author; without data
     * and meta they are the answer */
    if (data == NULL && json_array_size(errors) > 0 && !json_is_object(json_object_get(root, "meta"))) {
        const json_t *e = json_array_get(errors, 0);
        snprintf(err, errsz, "API error: %.100s: %.300s", str(e, "title") ? str(e, "title") : "(no title)",
                 str(e, "detail") ? str(e, "detail") : str(e, "message") ? str(e, "message") : "(no detail)");
        json_decref(root);
        return -1;
    }
    if (data == NULL && str(root, "title") != NULL && json_object_get(root, "status") != NULL) {
        snprintf(err, errsz, "API error: %.100s: %.300s", str(root, "title"),
                 str(root, "detail") ? str(root, "detail") : "(no detail)");
        json_decref(root);
        return -1;
    }
    if (data != NULL && !json_is_array(data)) {
        snprintf(err, errsz, "\"data\" is not an array");
        json_decref(root);
        return -1;
    }
    const json_t *meta = json_object_get(root, "meta");
    const char *next = str(meta, "next_token");
    if (next != NULL && next[0] != '\0')
        out->next_token = omni_strdup(next);
    omni_limits_t lim;
    omni_limits_default(&lim);
    size_t i;
    const json_t *item;
    json_array_foreach(data, i, item) {
        const char *id = str(item, "id");
        if (!is_id(id) || strlen(id) != json_string_length(json_object_get(item, "id"))) { /* "12\u00003" is no 12 */
            omni_warn("%s %zu of the page: %s: skipped", o->kind == TW_DMS ? "DM event" : "tweet", i,
                      id == NULL ? "no id" : "id is not a decimal number");
            out->skipped++;
            continue;
        }
        if (out->newest_id == NULL || tw_id_cmp(id, out->newest_id) > 0) {
            free(out->newest_id);
            out->newest_id = omni_strdup(id);
        }
        if (o->after_id != NULL && tw_id_cmp(id, o->after_id) <= 0) {
            out->reached_after = true;
            out->passed_over++;
            continue;
        }
        if (omni_json_holds_nul(item)) {
            omni_warn("%s %s: a string holds U+0000 (NUL), which no message field may carry: skipped",
                      o->kind == TW_DMS ? "DM event" : "tweet", id);
            out->skipped++;
            continue;
        }
        bool pass = false;
        omni_msg_t *msg = item_message(root, item, id, o, &pass);
        omni_msg_error_t merr;
        char line[512];
        if (msg != NULL && omni_msg_validate(msg, &lim, &merr) != 0) {
            /* Over a limit of the router's (a huge text, a name of 5 KiB): it would be refused there. */
            omni_warn("%s: skipped", omni_msg_error_str(&merr, line, sizeof line));
            omni_msg_destroy(&msg);
        }
        if (msg != NULL)
            page_add(out, msg);
        else if (pass)
            out->passed_over++;
        else
            out->skipped++;
    }
    json_decref(root);
    return 0;
}

void tw_page_free(tw_page_t *page)
{
    for (size_t i = 0; i < page->n; i++)
        omni_msg_destroy(&page->msgs[i]);
    free(page->msgs);
    free(page->newest_id);
    free(page->next_token);
    memset(page, 0, sizeof *page);
}
