/* Column layouts of call-detail-record (CDR) CSV files, and mapping one parsed record to named fields.
 *
 * Built in:
 *   asterisk   cdr_csv's Master.csv; the layout is chosen per line by its field count (see
 *              fixtures/phonelog/README.md): 16 base fields, 17 (+uniqueid or +userfield: a value shaped
 *              like a uniqueid, [name-]digits.digits, is taken as uniqueid), 18 (+uniqueid, userfield),
 *              21 (+uniqueid, userfield, peeraccount, linkedid, sequence).
 *   freeswitch mod_cdr_csv's "example" template (15 fields, caller_id_name first).
 *   custom     a list of column names (phonelog.columns): Asterisk names (src, dst, clid, ...), the
 *              FreeSWITCH variable names of the example template (caller_id_number, hangup_cause, uuid,
 *              ...; "${...}" is accepted as written in the template), or anything else, which is ignored. */
#ifndef PHONELOG_LAYOUT_H
#define PHONELOG_LAYOUT_H

#include <stddef.h>
#include "csv.h"

typedef enum {
    COL_IGNORE = 0, COL_ACCOUNTCODE, COL_SRC, COL_DST, COL_DCONTEXT, COL_CLID, COL_NAME, COL_CHANNEL,
    COL_DSTCHANNEL, COL_LASTAPP, COL_LASTDATA, COL_START, COL_ANSWER, COL_END, COL_DURATION, COL_BILLSEC,
    COL_DISPOSITION, COL_AMAFLAGS, COL_UNIQUEID, COL_USERFIELD, COL_PEERACCOUNT, COL_LINKEDID, COL_SEQUENCE,
    COL__COUNT
} col_role_t;

typedef enum { LAYOUT_ASTERISK, LAYOUT_FREESWITCH, LAYOUT_CUSTOM } layout_kind_t;

typedef struct layout {
    layout_kind_t kind;
    size_t n_custom;                  /* LAYOUT_CUSTOM: columns and their roles */
    col_role_t custom[CSV_FIELDS_MAX];
} layout_t;

/* One record by role; NULL where the layout has no such column. Strings are borrowed from the record. */
typedef struct cdr {
    const char *f[COL__COUNT];
    const char *layout; /* "asterisk-18", "freeswitch", "custom" (static) */
} cdr_t;

/* kind_name: "asterisk", "freeswitch" or "custom"; columns (custom only, n of them, borrowed for the
 * call). Returns 0, or -1 with a sentence in why. */
int layout_init(layout_t *lay, const char *kind_name, const char *const *columns, size_t n, char *why,
                size_t whysz);

/* Maps rec by the layout. Returns 0, or -1 with why ("17 fields; the freeswitch layout has 15"). */
int layout_map(const layout_t *lay, const csv_record_t *rec, cdr_t *out, char *why, size_t whysz);

/* The role of a column name (COL_IGNORE for an unknown one). */
col_role_t layout_role(const char *name);

#endif
