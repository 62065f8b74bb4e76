/* One page of an X API v2 response (GET /2/users/:id/mentions or GET /2/dm_events) turned into normalized
 * messages. Pure: no I/O and no clock (the caller passes now), so the recorded fixtures, the unit tests and
 * the fuzz target (fuzz/twitter.c) drive exactly the code the connector runs.
 *
 * The page is {"data": [...], "includes": {"users": [...]}, "meta": {...}, "errors": [...]}; every part may
 * be missing. An item that cannot become a message (no id, no author, an author id that is not a user id,
 * text that is not a string, a string holding U+0000, a message over the router's default limits) is skipped
 * with a warning naming its id and the field, and counted; the page goes on, and the cursor still moves past
 * it (reading it again would not make it valid). A lone UTF-16 surrogate escape (half of an emoji's pair) is
 * read as U+FFFD rather than costing the whole page; errors beside a page's data or meta are partial.
 *
 * Messages, channel "twitter":
 *   mention  id "twitter:<tweet id>", from.id author_id, from.name the user's name (includes.users),
 *            received_at created_at (else the time in the tweet id, a snowflake), text (a long post's whole
 *            note_tweet.text when there is one) with &amp; &lt; &gt; decoded (the API escapes them in tweets),
 *            thread the conversation_id (else the tweet id), lang when it is an ISO 639-1 code; meta kind
 *            "mention", tweet_id, username, conversation_id,
 *            in_reply_to_user_id, lang, url. The account's own tweets (author_id is own_user_id) are passed
 *            over silently.
 *   dm       id "twitter:dm:<event id>", from.id sender_id, from.name as above, received_at created_at (else
 *            the snowflake time), text as sent, thread "dm:<dm_conversation_id>"; meta kind "dm", dm_event_id,
 *            dm_conversation_id, username. Only MessageCreate events are messages; the account's own DMs
 *            (sender_id is own_user_id) and other event types are passed over silently.
 * Items whose id is not above after_id are passed over too (already taken in an earlier round). */
#ifndef TW_PARSE_H
#define TW_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omni/message.h"

typedef enum { TW_MENTIONS, TW_DMS } tw_kind_t;

typedef struct tw_parse_opts {
    tw_kind_t kind;
    const char *own_user_id; /* the account's user id: its own tweets and DMs are not messages; may be NULL */
    const char *after_id;    /* items with an id at or below it are passed over; NULL: none */
    int64_t now_ms;          /* wall clock, for an item with neither created_at nor a snowflake id */
} tw_parse_opts_t;

typedef struct tw_page {
    omni_msg_t **msgs;   /* owned, in the page's order (newest first) */
    size_t n;
    char *newest_id;     /* owned: the highest item id on the page (any kind of item), NULL when empty */
    char *next_token;    /* owned: meta.next_token, NULL when this is the last page */
    size_t skipped;      /* items that could not become messages (each logged) */
    size_t passed_over;  /* own DMs, other event types, items at or below after_id */
    bool reached_after;  /* an item at or below after_id was seen: older pages hold nothing new */
} tw_page_t;

/* Parses len bytes of a response body. Returns 0 with *out filled (free with tw_page_free), or -1 with one
 * sentence in err: not JSON, not an object, "data" not an array, or an API error object without data or meta
 * ("API error: <title>: <detail>"). */
int tw_parse_page(const char *body, size_t len, const tw_parse_opts_t *o, tw_page_t *out, char *err,
                  size_t errsz);

/* Frees what the page holds and zeroes it. */
void tw_page_free(tw_page_t *page);

/* Compares two decimal ids (X ids are 64-bit snowflakes, too big for a double): <0, 0, >0. */
int tw_id_cmp(const char *a, const char *b);

/* The creation time (ms since the epoch) written in a snowflake id, or -1 for an id that is not one. */
int64_t tw_snowflake_ms(const char *id);

#endif
