/* Strict CSV (csv.h). Strict because a lenient reader guesses, and a wrong guess here moves a caller's
 * number into the wrong column: a line that breaks the rules is reported, never repaired. */
#include "csv.h"
#include "omni/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void csv_record_free(csv_record_t *rec)
{
    free(rec->buf);
    memset(rec, 0, sizeof *rec);
}

int csv_parse(const char *line, size_t len, csv_record_t *rec, char *why, size_t whysz)
{
    /* Unescaping only shortens a field, and each field adds one NUL in place of its comma. */
    if (rec->cap < len + 1) {
        rec->buf = omni_realloc(rec->buf, len + 1);
        rec->cap = len + 1;
    }
    rec->n = 0;
    if (memchr(line, '\0', len) != NULL) {
        snprintf(why, whysz, "NUL byte at column %zu", (size_t)((const char *)memchr(line, '\0', len) - line) + 1);
        return -1;
    }
    char *out = rec->buf;
    size_t i = 0;
    for (;;) {
        if (rec->n == CSV_FIELDS_MAX) {
            snprintf(why, whysz, "more than %d fields", CSV_FIELDS_MAX);
            return -1;
        }
        rec->field[rec->n] = out;
        rec->quoted[rec->n] = i < len && line[i] == '"';
        if (rec->quoted[rec->n]) {
            size_t start = i++;
            for (;;) {
                if (i >= len) {
                    snprintf(why, whysz, "unterminated quoted field starting at column %zu", start + 1);
                    return -1;
                }
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        *out++ = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                *out++ = line[i++];
            }
            if (i < len && line[i] != ',') {
                snprintf(why, whysz, "text after the closing quote at column %zu", i + 1);
                return -1;
            }
        } else {
            while (i < len && line[i] != ',') {
                if (line[i] == '"') {
                    snprintf(why, whysz, "quote inside an unquoted field at column %zu", i + 1);
                    return -1;
                }
                *out++ = line[i++];
            }
        }
        *out++ = '\0';
        rec->n++;
        if (i >= len)
            return 0;
        i++; /* the comma: a field follows, maybe empty */
    }
}
