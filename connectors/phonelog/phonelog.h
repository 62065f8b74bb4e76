/* omni-phonelog: follows an Asterisk or FreeSWITCH CSV call log and turns missed, busy and failed calls
 * (and voicemails) into callback work on channel "phone". docs/connectors.md describes its config.
 *
 * plog_t is the connector without the runtime: it reads, submits, commits and checkpoints through the
 * callbacks it is given, so the tests drive it with a fake spool. One plog_t follows one file; run one
 * omni-phonelog per call log (each with its own spool_dir). */
#ifndef PHONELOG_H
#define PHONELOG_H

#include <stdbool.h>
#include <stddef.h>
#include "cdr.h"
#include "layout.h"
#include "omni/connector.h"

typedef struct plog plog_t;

typedef struct plog_opts {
    const char *path;       /* the CDR CSV file */
    const char *state_dir;  /* where "phonelog.offset" is kept */
    layout_t layout;
    cdr_opts_t cdr;         /* its strings and list are borrowed: they must outlive the plog_t */
    bool start_at_end;      /* with no saved position, skip the records already in the file */
    size_t max_batch;       /* records per poll */
    /* Same contract as omni_connector_submit / omni_connector_commit. */
    int (*submit)(void *user, const omni_msg_t *msg);
    int (*commit)(void *user);
    void *user;
} plog_opts_t;

typedef struct plog_stats {
    unsigned long long lines;      /* lines read */
    unsigned long long messages;   /* submitted */
    unsigned long long skipped;    /* by design: answered (answered: skip), caller withheld, blank lines */
    unsigned long long malformed;  /* not a record: CSV or field-count errors */
    unsigned long long unreadable; /* caller number not a phone number */
    unsigned long long invalid;    /* refused by message validation */
} plog_stats_t;

/* Strings in o are borrowed (see cdr). Returns NULL with err when the saved state cannot be read. */
plog_t *plog_new(const plog_opts_t *o, char *err, size_t errsz);
void plog_destroy(plog_t **p);
/* Reads up to max_batch records, submits, commits, then saves the position. Returns 0, or -1 when the file
 * or the spool failed (logged). *more: call again without waiting. */
int plog_poll(plog_t *p, bool *more);
void plog_stats(const plog_t *p, plog_stats_t *out);

/* The connector definition for the runtime. */
extern const omni_connector_def_t phonelog_connector;

#endif
