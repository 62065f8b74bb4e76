/* Fuzz target: the message validator, omni_msg_parse with the default limits (include/omni/message.h).
 * Beyond not crashing: a message it accepts serializes, and that text parses again to the same text, so
 * what the router stores is what it validated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "omni/message.h"
#include "omni/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    omni_limits_t lim;
    omni_limits_default(&lim);
    omni_msg_error_t err;
    omni_msg_t *m = omni_msg_parse((const char *)data, size, &lim, &err);
    if (m == NULL) {
        char line[1024];
        omni_msg_error_str(&err, line, sizeof line);
        return 0;
    }
    size_t len;
    char *once = omni_msg_serialize(m, &len);
    if (once == NULL)
        omni_panic("fuzz: an accepted message does not serialize");
    omni_msg_t *again = omni_msg_parse(once, len, &lim, &err);
    if (again == NULL)
        omni_panic("fuzz: an accepted message, serialized, is refused: %s: %s", err.field, err.reason);
    char *twice = omni_msg_serialize(again, NULL);
    if (twice == NULL || strcmp(once, twice) != 0)
        omni_panic("fuzz: serialize is not stable");
    free(once);
    free(twice);
    omni_msg_destroy(&again);
    omni_msg_destroy(&m);
    return 0;
}
