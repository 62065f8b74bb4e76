/* Fuzz target: MIME parsing in omni-email (connectors/email/mime*.c on GMime): email_parse and the
 * content key over one raw message. Beyond not crashing: every string it returns is UTF-8 without NUL,
 * as the normalized message requires (mime.h). */
#include <stdint.h>
#include <string.h>

#include "../connectors/email/mime.h"
#include "omni/log.h"
#include "omni/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void utf8(const char *what, const char *s, size_t len)
{
    if (s && (!omni_utf8_valid(s, len, NULL) || strlen(s) != len))
        omni_panic("fuzz: %s is not UTF-8 text", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready++)
        email_mime_init(); /* once: GMime's global tables; the process ends without a shutdown */
    email_parsed_t *p = email_parse((const char *)data, size);
    utf8("text", p->text, p->text_len);
    utf8("subject", p->subject, p->subject ? strlen(p->subject) : 0);
    utf8("from name", p->from_name, p->from_name ? strlen(p->from_name) : 0);
    utf8("from address", p->from_addr, p->from_addr ? strlen(p->from_addr) : 0);
    utf8("thread", p->thread, p->thread ? strlen(p->thread) : 0);
    for (size_t i = 0; i < p->n_atts; i++)
        utf8("attachment name", p->atts[i].name, strlen(p->atts[i].name));
    email_parsed_destroy(&p);
    char key[65];
    email_content_key((const char *)data, size, key);
    if (strlen(key) != 64)
        omni_panic("fuzz: content key of %zu characters", strlen(key));
    return 0;
}
