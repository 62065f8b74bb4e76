/* Where a feed is, kept across restarts in a state file (omni_connector_state_save), one per feed.
 *
 * The API returns the newest items first and pages towards older ones. A round starts at the first page
 * (mentions: since_id = since) and follows next_token until a page has none (or, for DMs, which have no
 * since_id, until it reaches an event at or below since). Only when a round is complete does since move
 * to the newest id the round saw: moving it earlier would skip the older pages after a crash. Between
 * pages the state holds the round (its newest id and the next page's token), saved after each page's
 * messages are committed, so a restart goes on with the next page; a token the API no longer accepts
 * starts the round again from since (what is read twice has the same ids: the router drops it).
 *
 * The file: {"v":1,"user_id":"...","since":"...","round_newest":"...","next_token":"...","started":true},
 * absent members meaning NULL / false. */
#ifndef TW_CURSOR_H
#define TW_CURSOR_H

#include <stdbool.h>
#include <stddef.h>

#include "tw_parse.h"

typedef struct tw_cursor {
    char *since;        /* owned: newest id of the last complete round; NULL: none yet */
    char *round_newest; /* owned: newest id of the round in progress; NULL: no round in progress */
    char *next_token;   /* owned: the round's next page; NULL: the round's first page comes next */
    bool started;       /* "start: end" was applied (the first round only records where the feed is) */
} tw_cursor_t;

/* The state file's text for user_id (caller frees). */
char *tw_cursor_format(const tw_cursor_t *c, const char *user_id);

/* Reads a state file's text into *c (cleared first). Returns 0; 1 when it belongs to another user_id (the
 * account changed: *c stays empty, the feed starts afresh); -1 with a sentence in err when unreadable. */
int tw_cursor_parse(const char *text, const char *user_id, tw_cursor_t *c, char *err, size_t errsz);

/* Moves the cursor past a page whose messages are committed (the rule above). */
void tw_cursor_advance(tw_cursor_t *c, const tw_page_t *page);

/* Forgets the round in progress (its token was refused): the next request starts from since again. */
void tw_cursor_restart_round(tw_cursor_t *c);

/* True when both hold the same values. */
bool tw_cursor_equal(const tw_cursor_t *a, const tw_cursor_t *b);

void tw_cursor_copy(tw_cursor_t *dst, const tw_cursor_t *src);
void tw_cursor_clear(tw_cursor_t *c);

#endif
