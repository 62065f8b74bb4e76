/* The email connector's settings: the keys under "email:" and the mailboxes they describe.
 *
 * The runtime's config keys are flat (connector.h), so several mailboxes are a list of strings. Each
 * entry of email.mailboxes is either a bare mailbox name, which takes every other field from the
 * section's keys (email.url, email.user, ...), or fields written "key=value" separated by blanks, which
 * override them:
 *     mailboxes: [INBOX, "mailbox=Escalations", "account=sales user=sales@example.com
 *                  password_file=/etc/omnirouter/sales.pass mailbox=INBOX address=sales@example.com"]
 * Fields: account, url, user, password, password_file, mailbox, address, tls, ca_file. A value with
 * blanks is double-quoted ("mailbox=\"Support Queue\""; \" and \\ escape inside). Paths given in an
 * entry must be absolute (the section's PATH keys are relative to the config file as usual).
 *   account   names the account in message ids ("email:<account>:...") and the state file:
 *             1..64 of [A-Za-z0-9._@+-]; default: the user. Entries of one account share ids, so one
 *             message filed in two of its folders is routed once.
 *   url       imaps://host[:port] (TLS from the start) or imap://host[:port] (STARTTLS unless tls=none).
 *   mailbox   the IMAP name as the server spells it (non-ASCII names in modified UTF-7, RFC 3501 5.1.3);
 *             default INBOX; no CR, LF or NUL.
 *   address   our address, sent as the message's "to"; default: the user when it holds an '@'.
 *   password / password_file   exactly one; the file's content less a final line break. */
#ifndef EMAIL_CONFIG_H
#define EMAIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "imap.h"
#include "omni/connector.h"
#include "uidstate.h"

typedef struct email_box {
    char *account, *url, *user, *password, *password_file, *mailbox, *address, *ca_file;
    imap_tls_t tls;
    char *key; /* "<account>/<mailbox>": the state file's key and the logs' name for it */
} email_box_t;

typedef struct email_config {
    email_box_t *boxes;
    size_t n;
    uid_initial_t initial;
    bool mark_seen;
    size_t batch;               /* messages per mailbox per commit */
    long connect_timeout_ms, timeout_ms;
    size_t max_fetch, max_text;
} email_config_t;

/* The key table for the runtime (ends with a NULL name). */
extern const omni_connector_key_t email_keys[];

/* Parses one mailboxes entry over the section defaults (their strings are copied). Returns 0, or -1
 * with a sentence in err. read_password: also read password_file. out is the caller's; free it with
 * email_box_free. */
int email_box_parse(const char *entry, const email_box_t *defaults, bool read_password, email_box_t *out,
                    char *err, size_t errsz);
void email_box_free(email_box_t *b);

/* Reads every key and entry from the runtime. Returns 0, or -1 with a sentence naming the key. */
int email_config_load(const omni_connector_t *ctx, bool read_password, email_config_t *out, char *err,
                      size_t errsz);
/* The same, from the connector's check: every entry's error also goes to omni_connector_check_error(report),
 * not only the first to err. */
int email_config_check(const omni_connector_t *ctx, bool read_password, email_config_t *out, char *err,
                       size_t errsz, omni_connector_t *report);
void email_config_free(email_config_t *c);

#endif
