/* Where the email connector is in each mailbox: a UID cursor, kept in one state file (written
 * atomically by the connector runtime, omni_state_write) after every committed batch.
 *
 * Why a UID cursor and not UNSEEN. The connector asks "UID SEARCH UID a:b" for the UIDs after the last
 * one it took. \Seen belongs to the people who read the mailbox: one who opens a message before the
 * connector polls would make UNSEEN lose it, one who marks an old message unread would send it again.
 * UIDs only grow (RFC 3501) while UIDVALIDITY stays, so "everything up to last_uid is done" is exact and
 * survives crashes: after a restart the connector resumes after last_uid, and what it had spooled but
 * not recorded is sent again and dropped by the router's dedup by id. Ranges are bounded (a:b, never
 * a:*), because "UID n:*" matches the highest UID even when it is below n.
 *
 * The backlog. The first time a mailbox is seen, the messages already in it (UIDs below UIDNEXT) are
 * taken only when they match the `initial` setting: UNSEEN (default: what nobody has handled), ALL, or
 * none. After a UIDVALIDITY change (the mailbox was rebuilt or migrated: every UID is new) the messages
 * below the new UIDNEXT are taken when their INTERNALDATE is on or after the day before the newest one
 * taken under the old UIDVALIDITY ("SINCE <date>"): that covers everything that arrived since, and the
 * messages already taken come again with the same content-based ids (email_build.h), which the router
 * drops as duplicates. So nothing is lost and nothing is routed twice. Without such a date (nothing
 * taken yet) the `initial` rule applies again. */
#ifndef EMAIL_UIDSTATE_H
#define EMAIL_UIDSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UIDSTATE_FILE "email-state.json"

typedef enum { UID_INITIAL_UNSEEN, UID_INITIAL_ALL, UID_INITIAL_NONE } uid_initial_t;

typedef struct uid_cursor {
    uint32_t uidvalidity;
    uint32_t last_uid;       /* every UID <= last_uid is done */
    uint32_t backlog_until;  /* UIDs <= this are taken only when they match backlog */
    char backlog[48];        /* SEARCH criteria of the backlog ("UNSEEN", "SINCE 1-Feb-2010"); "" none */
    bool has_last_date;
    int64_t last_date_ms;    /* INTERNALDATE of the newest message taken */
} uid_cursor_t;

typedef struct uidstate uidstate_t;

/* An empty state. Caller owns it (uidstate_destroy). */
uidstate_t *uidstate_new(void);
/* Reads a state file's content. Returns NULL with a sentence in err when it is not one. */
uidstate_t *uidstate_parse(const char *json, size_t len, char *err, size_t errsz);
/* The file content; caller frees. */
char *uidstate_serialize(const uidstate_t *st, size_t *len);
void uidstate_destroy(uidstate_t **st);

/* The cursor of a mailbox ("<account>/<mailbox>"): 0 and *out filled, or -1 when there is none. */
int uidstate_get(const uidstate_t *st, const char *key, uid_cursor_t *out);
void uidstate_put(uidstate_t *st, const char *key, const uid_cursor_t *c);

typedef enum { UID_SAME, UID_FIRST, UID_RESET } uid_change_t;

/* Brings the cursor in line with what SELECT said (UIDVALIDITY, UIDNEXT). known: *c holds the stored cursor. Returns
 * UID_SAME, UID_FIRST (first sight: backlog per initial) or UID_RESET (UIDVALIDITY changed, or UIDs went
 * backwards, which RFC 3501 forbids: handled the same way). */
uid_change_t uidstate_reconcile(uid_cursor_t *c, bool known, uint32_t uidvalidity, uint32_t uidnext,
                                uid_initial_t initial);

/* The next search: writes its criteria ("UID 5:1004 UNSEEN") and the range's last UID. Returns false when
 * every UID below uidnext is done. At most span UIDs per range. */
bool uidstate_next_search(const uid_cursor_t *c, uint32_t uidnext, uint32_t span, char *criteria,
                          size_t sz, uint32_t *range_end);

/* Records that uid is done (taken, or the end of a searched range); leaves the backlog when passed. */
void uidstate_advance(uid_cursor_t *c, uint32_t uid);

/* True when both cursors say the same. */
bool uidstate_cursor_eq(const uid_cursor_t *a, const uid_cursor_t *b);

#endif
