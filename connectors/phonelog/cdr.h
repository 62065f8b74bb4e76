/* From one call record to one normalized message (channel "phone"), or to a reasoned skip.
 *
 * Outcome of a call, from the disposition column (Asterisk) or hangup cause (FreeSWITCH):
 *   answered  ANSWERED; a FreeSWITCH record with an answer time; LOSE_RACE / PICKED_OFF (taken elsewhere)
 *   missed    NO ANSWER, NO_ANSWER, NO_USER_RESPONSE, ORIGINATOR_CANCEL, ALLOTTED_TIMEOUT, and an
 *             unanswered NORMAL_CLEARING
 *   busy      BUSY, USER_BUSY, CALL_REJECTED
 *   failed    FAILED, CONGESTION, and everything else, UNKNOWN included: when in doubt a customer is
 *             called back rather than lost
 * Missed, busy and failed calls are callback work (meta.callback = true). A voicemail (lastapp VoiceMail,
 * or dst one of phonelog.voicemail_extensions) that was answered is callback work too, flagged
 * meta.voicemail. Other answered calls are skipped (phonelog.answered: skip) or sent with meta.callback =
 * false so the conversation history shows them (phonelog.answered: log).
 *
 * The caller is src (else the number in clid's <...>) normalized to E.164 with default_country. A caller
 * that is withheld (empty, anonymous, restricted, private, unknown, unavailable) is skipped (info); one
 * that cannot be read as a phone number is skipped with a warning naming file:line: a phone message must
 * carry an identity the router can call back, and the raw record stays in the CDR file.
 *
 * Message id, the same on every read of the same record (restart, rotation):
 *   phone:<pbx>:<uniqueid>[:<sequence>]   when the layout has a uniqueid (FreeSWITCH: uuid)
 *   phone:<pbx>:h<16 hex digits>          otherwise: FNV-1a 64 of file path, inode, byte offset and raw line
 *                                         (the same line at the same place of the same file; a copy of the
 *                                         file restored under a new inode is read as new records) */
#ifndef PHONELOG_CDR_H
#define PHONELOG_CDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "layout.h"
#include "omni/message.h"

typedef enum { OUTCOME_ANSWERED, OUTCOME_MISSED, OUTCOME_BUSY, OUTCOME_FAILED } cdr_outcome_t;

typedef struct cdr_opts {
    const char *pbx;              /* id namespace: two PBXes may number calls alike */
    const char *default_country;  /* NULL: national numbers are unreadable */
    bool log_answered;            /* answered: log */
    bool utc;                     /* the log's dates are UTC (Asterisk usegmtime=yes); else local time */
    const char *const *voicemail; /* extensions that reach voicemail */
    size_t n_voicemail;
} cdr_opts_t;

/* Where the record was read. */
typedef struct cdr_where {
    const char *file;
    unsigned long line;
    uint64_t ino, offset;
    const char *raw;
    size_t raw_len;
} cdr_where_t;

/* The outcome of c; *reason (static) is the words the message uses ("no answer", "line busy"). */
cdr_outcome_t cdr_outcome(const cdr_t *c, const char **reason);

/* Builds the message. Returns 0 with *msg (caller owns; omni_msg_destroy); 1 when skipped by design (an
 * answered call under answered: skip, a withheld caller) with why; -1 when the record cannot become a
 * message (an unreadable caller number) with why. */
int cdr_message(const cdr_t *c, const cdr_opts_t *o, const cdr_where_t *w, omni_msg_t **msg, char *why,
                size_t whysz);

#endif
