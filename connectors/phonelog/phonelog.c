/* omni-phonelog (phonelog.h): the follower (follow.c) feeds lines to the CSV parser (csv.c), the layout
 * (layout.c) names the fields, cdr.c decides what the call means; this file wires them to the runtime.
 * Order per poll, which is the connector contract: submit every record, commit the spool, then save the
 * file position. A crash anywhere re-reads records, whose ids are stable, and never skips one. */
#include "phonelog.h"
#include "follow.h"
#include "omni/log.h"
#include "omni/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLOG_STATE "phonelog.offset"

struct plog {
    plog_opts_t o;
    follow_t *f;
    csv_record_t rec;
    int submit_errno; /* why the last batch stopped early, 0 when it did not */
    plog_stats_t st;
};

static int on_line(void *user, const char *line, size_t len, const follow_pos_t *pos)
{
    plog_t *p = user;
    char why[512];
    cdr_t cdr;
    p->st.lines++;
    /* A UTF-8 byte order mark at the start of the file (a log saved by a Windows editor or an export
     * tool) is not part of the first field: read as data it would make the first record malformed. */
    if (pos->offset == 0 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        len -= 3;
    }
    /* A run of NUL bytes in front of a record is a hole a crash left (the file was extended, its data never
     * written) and the PBX wrote after it: not part of the record, which would be lost with it. */
    size_t hole = 0;
    while (hole < len && line[hole] == '\0')
        hole++;
    if (hole > 0) {
        omni_warn("%s:%lu: %zu NUL bytes before the record passed over (a hole a crash left in the file)", pos->path,
                  pos->line, hole);
        line += hole;
        len -= hole;
    }
    if (len == 0) {
        p->st.skipped++;
        return 0;
    }
    if (csv_parse(line, len, &p->rec, why, sizeof why) != 0 ||
        layout_map(&p->o.layout, &p->rec, &cdr, why, sizeof why) != 0) {
        p->st.malformed++;
        omni_warn("%s:%lu: malformed record skipped: %s", pos->path, pos->line, why);
        return 0;
    }
    cdr_where_t w = { pos->path, pos->line, pos->ino, pos->offset, line, len };
    omni_msg_t *msg = NULL;
    int rc = cdr_message(&cdr, &p->o.cdr, &w, &msg, why, sizeof why);
    if (rc != 0) {
        if (rc > 0)
            p->st.skipped++;
        else
            p->st.unreadable++;
        omni_log(rc < 0 ? OMNI_LOG_WARN : strncmp(why, "answered", 8) == 0 ? OMNI_LOG_DEBUG : OMNI_LOG_INFO,
                 "%s:%lu: no message: %s", pos->path, pos->line, why);
        return 0;
    }
    rc = p->o.submit(p->o.user, msg);
    int e = errno;
    omni_msg_destroy(&msg);
    if (rc == OMNI_SUBMIT_INVALID) {
        p->st.invalid++; /* logged by the submitter with the field; the record stays in the file */
        return 0;
    }
    if (rc != 0) {
        p->submit_errno = e != 0 ? e : EIO;
        return 1; /* not taken: read again next poll */
    }
    p->st.messages++;
    return 0;
}

plog_t *plog_new(const plog_opts_t *o, char *err, size_t errsz)
{
    plog_t *p = omni_calloc(1, sizeof *p);
    p->o = *o;
    follow_opts_t fo = { o->path, o->state_dir, PLOG_STATE, o->start_at_end, on_line, p };
    p->f = follow_new(&fo, err, errsz);
    if (p->f == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

void plog_destroy(plog_t **pp)
{
    if (pp == NULL || *pp == NULL)
        return;
    follow_destroy(&(*pp)->f);
    csv_record_free(&(*pp)->rec);
    free(*pp);
    *pp = NULL;
}

int plog_poll(plog_t *p, bool *more)
{
    p->submit_errno = 0;
    int taken = follow_read(p->f, p->o.max_batch, more);
    if (taken < 0)
        return -1;
    if (p->o.commit(p->o.user) != 0) {
        omni_error("spool sync: %s: the records are read again", strerror(errno));
        follow_rewind(p->f);
        return -1;
    }
    if (follow_checkpoint(p->f) != 0) {
        omni_error("%s/%s: %s: the records are read again after a restart", p->o.state_dir, PLOG_STATE,
                   strerror(errno));
        return -1;
    }
    /* A full spool is the router's absence, not a file failure: poll() returns 0 and waits poll_ms. */
    return p->submit_errno != 0 && p->submit_errno != EAGAIN ? -1 : 0;
}

void plog_stats(const plog_t *p, plog_stats_t *out)
{
    *out = p->st;
}

/* ---- the connector ---- */

static const omni_connector_key_t plog_keys[] = {
    { "path", OMNI_KEY_PATH, "/var/log/asterisk/cdr-csv/Master.csv", false, 0, 4096, NULL,
      "the CDR CSV file to follow" },
    { "layout", OMNI_KEY_ENUM, "asterisk", false, 0, 0, "asterisk|freeswitch|custom",
      "asterisk: Master.csv, 16/17/18/21 fields by count; freeswitch: the example template; custom: columns" },
    { "columns", OMNI_KEY_LIST, NULL, false, 0, CSV_FIELDS_MAX, NULL,
      "layout custom: the column names in order (src, dst, disposition, ... or FreeSWITCH variables)" },
    { "pbx", OMNI_KEY_STRING, "pbx", false, 1, 64, NULL, "name of the PBX in message ids: phone:<pbx>:<uniqueid>" },
    { "answered", OMNI_KEY_ENUM, "skip", false, 0, 0, "skip|log",
      "answered calls: skip, or log (sent with meta.callback false)" },
    { "voicemail_extensions", OMNI_KEY_LIST, NULL, false, 0, 64, NULL,
      "dst values that reach voicemail (lastapp VoiceMail is recognised anyway)" },
    { "dates", OMNI_KEY_ENUM, "local", false, 0, 0, "local|utc",
      "time zone of the log's dates: local, or utc (Asterisk usegmtime=yes)" },
    { "start", OMNI_KEY_ENUM, "end", false, 0, 0, "end|beginning",
      "first run (no saved position): skip the records already in the file, or read them all" },
    { "max_batch", OMNI_KEY_INT, "1000", false, 1, 100000, NULL, "records per poll" },
    { NULL, 0, NULL, false, 0, 0, NULL, NULL },
};

static int layout_from(omni_connector_t *ctx, layout_t *lay, char *err, size_t errsz)
{
    const char *const *cols;
    size_t n = omni_connector_cfg_list(ctx, "columns", &cols);
    char why[256];
    if (layout_init(lay, omni_connector_cfg_str(ctx, "layout"), cols, n, why, sizeof why) != 0) {
        snprintf(err, errsz, "phonelog.layout/columns: %s", why);
        return -1;
    }
    return 0;
}

/* Every error is reported (omni_connector_check_error), not only the first. */
static int plog_check(omni_connector_t *ctx, char *err, size_t errsz)
{
    (void)err, (void)errsz;
    layout_t lay;
    const char *const *cols;
    size_t n = omni_connector_cfg_list(ctx, "columns", &cols);
    char why[256];
    if (layout_init(&lay, omni_connector_cfg_str(ctx, "layout"), cols, n, why, sizeof why) != 0)
        omni_connector_check_error(ctx, n > 0 ? "columns" : "layout", "%s", why);
    const char *pbx = omni_connector_cfg_str(ctx, "pbx");
    if (strspn(pbx, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(pbx))
        omni_connector_check_error(ctx, "pbx", "\"%s\" may hold only letters, digits, '.', '_' and '-'", pbx);
    return 0;
}

static int ctx_submit(void *user, const omni_msg_t *msg) { return omni_connector_submit(user, msg); }
static int ctx_commit(void *user) { return omni_connector_commit(user); }

static int plog_open(omni_connector_t *ctx)
{
    plog_opts_t o = { 0 };
    char err[512];
    if (layout_from(ctx, &o.layout, err, sizeof err) != 0) {
        omni_error("%s", err);
        return -1;
    }
    o.path = omni_connector_cfg_str(ctx, "path");
    o.state_dir = omni_connector_state_dir(ctx);
    o.cdr.pbx = omni_connector_cfg_str(ctx, "pbx");
    o.cdr.default_country = omni_connector_default_country(ctx);
    o.cdr.log_answered = strcmp(omni_connector_cfg_str(ctx, "answered"), "log") == 0;
    o.cdr.utc = strcmp(omni_connector_cfg_str(ctx, "dates"), "utc") == 0;
    o.cdr.n_voicemail = omni_connector_cfg_list(ctx, "voicemail_extensions", &o.cdr.voicemail);
    o.start_at_end = strcmp(omni_connector_cfg_str(ctx, "start"), "end") == 0;
    o.max_batch = (size_t)omni_connector_cfg_int(ctx, "max_batch");
    o.submit = ctx_submit;
    o.commit = ctx_commit;
    o.user = ctx;
    if (o.cdr.default_country == NULL)
        omni_warn("no default_country: callers in national format (no + or 00) cannot be read");
    plog_t *p = plog_new(&o, err, sizeof err);
    if (p == NULL) {
        omni_error("%s", err);
        return -1;
    }
    omni_connector_set_user(ctx, p);
    omni_connector_status(ctx, "following %s", o.path);
    return 0;
}

static int plog_poll_cb(omni_connector_t *ctx)
{
    plog_t *p = omni_connector_user(ctx);
    bool more = false;
    int rc = plog_poll(p, &more);
    if (more)
        omni_connector_poll_in(ctx, 0);
    uint64_t off;
    unsigned long line;
    if (follow_where(p->f, &off, &line))
        omni_connector_status(ctx, "%s after line %lu: %llu records read, %llu sent, %llu skipped, "
                              "%llu malformed, %llu unreadable callers", p->o.path, line, p->st.lines,
                              p->st.messages, p->st.skipped, p->st.malformed, p->st.unreadable);
    else
        omni_connector_status(ctx, "waiting for %s to appear", p->o.path);
    return rc;
}

static void plog_close(omni_connector_t *ctx)
{
    plog_t *p = omni_connector_user(ctx);
    plog_destroy(&p);
    omni_connector_set_user(ctx, NULL);
}

const omni_connector_def_t phonelog_connector = {
    .name = "phonelog",
    .channel = "phone",
    .summary = "Follows an Asterisk or FreeSWITCH CSV call log; missed calls and voicemails become callback work.",
    .keys = plog_keys,
    .check = plog_check,
    .open = plog_open,
    .poll = plog_poll_cb,
    .close = plog_close,
};
