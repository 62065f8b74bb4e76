/* Fuzz target: call-detail records in omni-phonelog (connectors/phonelog: csv.c, layout.c, cdr.c), line by
 * line as the follower hands them over. The first byte picks the layout and options; each following line
 * is one record. Beyond not crashing: a message built from a record passes the router's validation (the
 * connector must never send what the router refuses) and serializes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../connectors/phonelog/cdr.h"
#include "omni/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const COLUMNS[] = { "src", "dst", "clid", "disposition", "start", "answer", "end",
                                       "uniqueid", "lastapp", "billsec", "sequence", "name", "junk",
                                       "${userfield}", "duration" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet++)
        omni_log_set_level(OMNI_LOG_FATAL);
    if (size < 1)
        return 0;
    static const char *const kinds[] = { "asterisk", "freeswitch", "custom" };
    static const char *const vm[] = { "*97", "8500" };
    char why[512];
    layout_t lay;
    bool custom = data[0] % 3 == 2;
    if (layout_init(&lay, kinds[data[0] % 3], custom ? COLUMNS : NULL, custom ? sizeof COLUMNS / sizeof COLUMNS[0] : 0,
                    why, sizeof why) != 0)
        omni_panic("fuzz: layout: %s", why);
    cdr_opts_t o = { .pbx = "pbx1", .default_country = data[0] & 4 ? "US" : data[0] & 8 ? "GB" : NULL,
                     .log_answered = data[0] & 16, .utc = data[0] & 32, .voicemail = vm, .n_voicemail = 2 };
    omni_limits_t lim;
    omni_limits_default(&lim);
    csv_record_t rec = { 0 };
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    for (unsigned long line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t len = (size_t)(le - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        cdr_t cdr;
        omni_msg_t *msg = NULL;
        cdr_where_t w = { "fuzz.csv", line, 42, (uint64_t)(p - (const char *)data), p, len };
        if (len > 0 && csv_parse(p, len, &rec, why, sizeof why) == 0 &&
            layout_map(&lay, &rec, &cdr, why, sizeof why) == 0 &&
            cdr_message(&cdr, &o, &w, &msg, why, sizeof why) == 0) {
            omni_msg_error_t err;
            if (omni_msg_validate(msg, &lim, &err) != 0)
                omni_panic("fuzz: line %lu: the router would refuse it: %s: %s", line, err.field, err.reason);
            free(omni_msg_serialize(msg, NULL));
            omni_msg_destroy(&msg);
        }
        p = nl ? nl + 1 : end;
    }
    csv_record_free(&rec);
    return 0;
}
