/* Fuzz target: X API v2 response pages in omni-twitter (connectors/twitter: tw_parse.c, tw_cursor.c). Byte 0
 * picks the feed (bit 0: DMs), whether an after_id is set (bit 1) and an own user id (bit 2); the rest is the
 * response body. Beyond not crashing: every message built passes the router's validation (the connector
 * must never send what the router refuses) and serializes; the cursor moved past the page writes a state
 * file that reads back equal. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../connectors/twitter/tw_cursor.h"
#include "../connectors/twitter/tw_parse.h"
#include "omni/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet++)
        omni_log_set_level(OMNI_LOG_FATAL);
    if (size < 1)
        return 0;
    tw_parse_opts_t o = { .kind = data[0] & 1 ? TW_DMS : TW_MENTIONS,
                          .after_id = data[0] & 2 ? "1301573587187331074" : NULL,
                          .own_user_id = data[0] & 4 ? "783214" : NULL, .now_ms = 1764576000000LL };
    tw_page_t page;
    char err[512];
    if (tw_parse_page((const char *)data + 1, size - 1, &o, &page, err, sizeof err) != 0)
        return 0;
    omni_limits_t lim;
    omni_limits_default(&lim);
    for (size_t i = 0; i < page.n; i++) {
        omni_msg_error_t e;
        if (omni_msg_validate(page.msgs[i], &lim, &e) != 0)
            omni_panic("fuzz: message %zu: the router would refuse it: %s: %s", i, e.field, e.reason);
        char *json = omni_msg_serialize(page.msgs[i], NULL);
        if (json == NULL)
            omni_panic("fuzz: message %zu does not serialize", i);
        free(json);
    }
    tw_cursor_t c = { 0 }, back = { 0 };
    tw_cursor_advance(&c, &page);
    char *text = tw_cursor_format(&c, "783214");
    if (tw_cursor_parse(text, "783214", &back, err, sizeof err) != 0 || !tw_cursor_equal(&c, &back))
        omni_panic("fuzz: the cursor's state file does not read back: %s", text);
    free(text);
    tw_cursor_clear(&c);
    tw_cursor_clear(&back);
    tw_page_free(&page);
    return 0;
}
