/* A strict parser for one CSV record as call-log writers produce it (RFC 4180 quoting): fields separated
 * by commas, a field either bare (no quote inside) or wholly in double quotes with inner quotes doubled,
 * commas inside quotes, empty bare fields. One line is one record: a newline inside quotes is not
 * accepted, so one broken line can never swallow the lines after it. */
#ifndef PHONELOG_CSV_H
#define PHONELOG_CSV_H

#include <stdbool.h>
#include <stddef.h>

#define CSV_FIELDS_MAX 64 /* the widest layout has 21; anything near this is not a call record */

typedef struct csv_record {
    size_t n;                          /* fields parsed */
    const char *field[CSV_FIELDS_MAX]; /* unescaped, NUL-terminated; borrowed from buf */
    bool quoted[CSV_FIELDS_MAX];       /* the field was written in quotes ("" vs an empty bare field) */
    char *buf;                         /* owned storage, reused by the next parse */
    size_t cap;
} csv_record_t;

/* Parses line[0..len) (no newline; the caller strips "\r\n" or "\n") into rec, replacing what it held.
 * Returns 0, or -1 with a sentence in why naming the 1-based column ("unterminated quoted field starting
 * at column 12"). */
int csv_parse(const char *line, size_t len, csv_record_t *rec, char *why, size_t whysz);

/* Frees rec's storage (rec itself is the caller's) and zeroes it. */
void csv_record_free(csv_record_t *rec);

#endif
