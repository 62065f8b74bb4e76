/* Recognizing automatic mail (bounces, auto-replies, bulk) from headers, so the policy can drop it and
 * no agent answers a robot (see email_classify in mime.h for the rules and their order). */
#include "mime.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* The first token of a header value, case-insensitively equal to word (";" and blanks end it). */
static bool token_is(const char *value, const char *word)
{
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strcspn(value, " \t;\r\n(");
    return n == strlen(word) && strncasecmp(value, word, n) == 0;
}

/* addr's local part is name; an address without a domain ("Mail Delivery System <MAILER-DAEMON>", as a
 * local MTA writes its bounces) is all local part. */
static bool local_part_is(const char *addr, const char *name)
{
    if (!addr)
        return false;
    const char *at = strrchr(addr, '@');
    size_t n = strlen(name), len = at ? (size_t)(at - addr) : strlen(addr);
    return len == n && strncasecmp(addr, name, n) == 0;
}

const char *email_classify(const char *content_type, const char *report_type, const char *from_addr,
                           const char *auto_submitted, const char *x_autoreply, const char *precedence,
                           const char *list_unsubscribe, const char **why)
{
    bool report = content_type && strcasecmp(content_type, "multipart/report") == 0;
    if (report && report_type && token_is(report_type, "delivery-status")) {
        *why = "Content-Type: multipart/report; report-type=delivery-status";
        return "bounce";
    }
    if (local_part_is(from_addr, "mailer-daemon")) {
        *why = "From: mailer-daemon";
        return "bounce";
    }
    if (local_part_is(from_addr, "postmaster")) {
        *why = "From: postmaster";
        return "bounce";
    }
    if (auto_submitted && !token_is(auto_submitted, "no")) {
        *why = "Auto-Submitted";
        return "auto-reply";
    }
    if (x_autoreply) {
        *why = "X-Autoreply";
        return "auto-reply";
    }
    if (report) {
        *why = "Content-Type: multipart/report";
        return "auto-reply";
    }
    if (precedence && (token_is(precedence, "bulk") || token_is(precedence, "list") ||
                       token_is(precedence, "junk"))) {
        *why = "Precedence: bulk, list or junk";
        return "bulk";
    }
    if (list_unsubscribe) {
        *why = "List-Unsubscribe";
        return "bulk";
    }
    *why = NULL;
    return NULL;
}
