/* CDR layouts (layout.h). Field counts identify Asterisk's variants because cdr_csv writes a fixed set of
 * columns per configuration and never omits one, so a count outside 16/17/18/21 is a broken line. */
#include "layout.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct { const char *name; col_role_t role; } names[] = {
    { "accountcode", COL_ACCOUNTCODE }, { "src", COL_SRC }, { "dst", COL_DST }, { "dcontext", COL_DCONTEXT },
    { "clid", COL_CLID }, { "channel", COL_CHANNEL }, { "dstchannel", COL_DSTCHANNEL },
    { "lastapp", COL_LASTAPP }, { "lastdata", COL_LASTDATA }, { "start", COL_START }, { "answer", COL_ANSWER },
    { "end", COL_END }, { "duration", COL_DURATION }, { "billsec", COL_BILLSEC },
    { "disposition", COL_DISPOSITION }, { "amaflags", COL_AMAFLAGS }, { "uniqueid", COL_UNIQUEID },
    { "userfield", COL_USERFIELD }, { "peeraccount", COL_PEERACCOUNT }, { "linkedid", COL_LINKEDID },
    { "sequence", COL_SEQUENCE }, { "name", COL_NAME },
    /* FreeSWITCH channel variables, as the example template names them */
    { "caller_id_name", COL_NAME }, { "caller_id_number", COL_SRC }, { "destination_number", COL_DST },
    { "context", COL_DCONTEXT }, { "start_stamp", COL_START }, { "answer_stamp", COL_ANSWER },
    { "end_stamp", COL_END }, { "hangup_cause", COL_DISPOSITION }, { "uuid", COL_UNIQUEID },
};

/* Asterisk: the 16 base columns, then the optional tails. */
static const col_role_t ast_base[16] = {
    COL_ACCOUNTCODE, COL_SRC, COL_DST, COL_DCONTEXT, COL_CLID, COL_CHANNEL, COL_DSTCHANNEL, COL_LASTAPP,
    COL_LASTDATA, COL_START, COL_ANSWER, COL_END, COL_DURATION, COL_BILLSEC, COL_DISPOSITION, COL_AMAFLAGS,
};
static const col_role_t ast_tail21[5] = { COL_UNIQUEID, COL_USERFIELD, COL_PEERACCOUNT, COL_LINKEDID,
                                          COL_SEQUENCE };
static const col_role_t fs_example[15] = {
    COL_NAME, COL_SRC, COL_DST, COL_DCONTEXT, COL_START, COL_ANSWER, COL_END, COL_DURATION, COL_BILLSEC,
    COL_DISPOSITION, COL_UNIQUEID, COL_IGNORE /* bleg_uuid */, COL_ACCOUNTCODE, COL_IGNORE, COL_IGNORE,
};

col_role_t layout_role(const char *name)
{
    char bare[64];
    size_t len = strlen(name);
    if (len > 3 && len < sizeof bare && strncmp(name, "${", 2) == 0 && name[len - 1] == '}') {
        memcpy(bare, name + 2, len - 3);
        bare[len - 3] = '\0';
        name = bare;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i].name, name) == 0)
            return names[i].role;
    return COL_IGNORE;
}

int layout_init(layout_t *lay, const char *kind_name, const char *const *columns, size_t n, char *why,
                size_t whysz)
{
    memset(lay, 0, sizeof *lay);
    if (strcmp(kind_name, "asterisk") == 0 || strcmp(kind_name, "freeswitch") == 0) {
        lay->kind = kind_name[0] == 'a' ? LAYOUT_ASTERISK : LAYOUT_FREESWITCH;
        if (n > 0) {
            snprintf(why, whysz, "columns is only for layout custom (layout is %s)", kind_name);
            return -1;
        }
        return 0;
    }
    if (strcmp(kind_name, "custom") != 0) {
        snprintf(why, whysz, "unknown layout \"%s\"", kind_name);
        return -1;
    }
    lay->kind = LAYOUT_CUSTOM;
    if (n == 0 || n > CSV_FIELDS_MAX) {
        snprintf(why, whysz, "layout custom needs columns: 1 to %d names", CSV_FIELDS_MAX);
        return -1;
    }
    bool has_src = false, has_outcome = false;
    for (size_t i = 0; i < n; i++) {
        col_role_t r = layout_role(columns[i]);
        for (size_t j = 0; j < i && r != COL_IGNORE; j++) {
            if (lay->custom[j] == r) {
                snprintf(why, whysz, "\"%s\" names the same field as column %zu", columns[i], j + 1);
                return -1;
            }
        }
        lay->custom[i] = r;
        has_src |= r == COL_SRC || r == COL_CLID;
        has_outcome |= r == COL_DISPOSITION;
    }
    lay->n_custom = n;
    if (!has_src || !has_outcome) {
        snprintf(why, whysz, "columns must include the caller (src, clid or caller_id_number) and the outcome "
                             "(disposition or hangup_cause)");
        return -1;
    }
    return 0;
}

/* "1763630043.1" or "pbx1-1763630043.1": Asterisk's uniqueid, [systemname-]epoch.sequence. */
static bool looks_like_uniqueid(const char *s)
{
    const char *dash = strrchr(s, '-');
    if (dash != NULL)
        s = dash + 1;
    size_t a = strspn(s, "0123456789");
    return a > 0 && s[a] == '.' && s[a + 1] != '\0' && strspn(s + a + 1, "0123456789") == strlen(s + a + 1);
}

static void apply(cdr_t *out, const csv_record_t *rec, const col_role_t *roles, size_t n, size_t from)
{
    for (size_t i = 0; i < n; i++)
        if (roles[i] != COL_IGNORE)
            out->f[roles[i]] = rec->field[from + i];
}

int layout_map(const layout_t *lay, const csv_record_t *rec, cdr_t *out, char *why, size_t whysz)
{
    memset(out, 0, sizeof *out);
    switch (lay->kind) {
    case LAYOUT_ASTERISK:
        if (rec->n != 16 && rec->n != 17 && rec->n != 18 && rec->n != 21) {
            snprintf(why, whysz, "%zu fields; Asterisk layouts have 16, 17, 18 or 21", rec->n);
            return -1;
        }
        apply(out, rec, ast_base, 16, 0);
        if (rec->n == 17)
            out->f[looks_like_uniqueid(rec->field[16]) ? COL_UNIQUEID : COL_USERFIELD] = rec->field[16];
        else if (rec->n == 18)
            apply(out, rec, ast_tail21, 2, 16);
        else if (rec->n == 21)
            apply(out, rec, ast_tail21, 5, 16);
        out->layout = rec->n == 16 ? "asterisk-16" : rec->n == 17 ? "asterisk-17"
                    : rec->n == 18 ? "asterisk-18" : "asterisk-21";
        return 0;
    case LAYOUT_FREESWITCH:
        if (rec->n != 15) {
            snprintf(why, whysz, "%zu fields; the freeswitch layout has 15", rec->n);
            return -1;
        }
        apply(out, rec, fs_example, 15, 0);
        out->layout = "freeswitch";
        return 0;
    case LAYOUT_CUSTOM:
        if (rec->n != lay->n_custom) {
            snprintf(why, whysz, "%zu fields; the custom layout has %zu", rec->n, lay->n_custom);
            return -1;
        }
        apply(out, rec, lay->custom, lay->n_custom, 0);
        out->layout = "custom";
        return 0;
    }
    snprintf(why, whysz, "no layout");
    return -1;
}
