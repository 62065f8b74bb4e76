/* The email connector's settings (see email_config.h for the mailbox entries' syntax). */
#include "email_config.h"
#include "omni/secret.h"
#include "omni/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PASSWORD_MAX 4096

const omni_connector_key_t email_keys[] = {
    {"url", OMNI_KEY_STRING, NULL, false, 0, 1024, NULL, "imaps://host[:port] or imap://host[:port] (entries may override)"},
    {"user", OMNI_KEY_STRING, NULL, false, 0, 320, NULL, "IMAP login"},
    {"password", OMNI_KEY_STRING, NULL, false, 0, PASSWORD_MAX, NULL, "IMAP password (prefer password_file)"},
    {"password_file", OMNI_KEY_SECRET, NULL, false, 0, 0, NULL,
     "the IMAP password: a file only its owner may read, credential:NAME or env:NAME"},
    {"account", OMNI_KEY_STRING, NULL, false, 0, 64, NULL, "account name in message ids; default: user"},
    {"address", OMNI_KEY_STRING, NULL, false, 0, 320, NULL, "our address, the messages' \"to\"; default: user if it has an @"},
    {"tls", OMNI_KEY_ENUM, "starttls", false, 0, 0, "starttls|none", "for imap:// URLs: require STARTTLS, or none"},
    {"ca_file", OMNI_KEY_PATH, NULL, false, 0, 0, NULL, "CA bundle for the server certificate; default: system"},
    {"mailboxes", OMNI_KEY_LIST, "INBOX", false, 0, 100, NULL, "mailbox names, or \"key=value ...\" entries"},
    {"initial", OMNI_KEY_ENUM, "unseen", false, 0, 0, "unseen|all|none", "mail already there on first sight"},
    {"mark_seen", OMNI_KEY_BOOL, "true", false, 0, 0, NULL, "set \\Seen once a message is spooled"},
    {"batch", OMNI_KEY_INT, "500", false, 1, 10000, NULL, "messages per mailbox per commit"},
    {"connect_timeout_ms", OMNI_KEY_DURATION, "10000", false, 100, 600000, NULL, "IMAP connect timeout"},
    {"timeout_ms", OMNI_KEY_DURATION, "60000", false, 1000, 3600000, NULL, "longest one IMAP command may take"},
    {"max_fetch_bytes", OMNI_KEY_SIZE, "33554432", false, 65536, 1073741824, NULL, "bytes of one message fetched at most"},
    /* At most the SDK's limit: omni_connector_submit checks every message against the router's default limits
     * (limits.text_bytes 65536), and a longer text would be refused there and never sent. */
    {"max_text_bytes", OMNI_KEY_SIZE, "65536", false, 1, 65536, NULL, "text kept (at most the router's default limits.text_bytes)"},
    {NULL, OMNI_KEY_STRING, NULL, false, 0, 0, NULL, NULL},
};

static const char *const FIELDS[] = {"account", "url", "user", "password", "password_file", "mailbox",
                                     "address", "tls", "ca_file"};

static char **field_slot(email_box_t *b, size_t i)
{
    char **slots[] = {&b->account, &b->url, &b->user, &b->password, &b->password_file, &b->mailbox,
                      &b->address, NULL, &b->ca_file};
    return slots[i];
}

static void set(char **slot, const char *v)
{
    free(*slot);
    *slot = v ? omni_strdup(v) : NULL;
}

/* True when entry is written as fields ("key=..."), not as a bare mailbox name. */
static bool has_fields(const char *entry)
{
    for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
        size_t n = strlen(FIELDS[i]);
        if (strncmp(entry, FIELDS[i], n) == 0 && entry[n] == '=')
            return true;
    }
    return false;
}

/* Reads one value at *p (quoted or up to a blank) into a new string; advances *p. NULL: bad quoting. */
static char *value(const char **p)
{
    const char *s = *p;
    size_t n = 0;
    char *out = omni_malloc(strlen(s) + 1);
    if (*s == '"') {
        for (s++; *s && *s != '"'; s++) {
            if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
                s++;
            out[n++] = *s;
        }
        if (*s != '"') {
            free(out);
            return NULL;
        }
        s++;
    } else {
        while (*s && *s != ' ' && *s != '\t')
            out[n++] = *s++;
    }
    out[n] = '\0';
    *p = s;
    return out;
}

/* The password as every connector reads a secret (omni_secret_load): a file only its owner may read, a systemd
 * credential or an environment variable; its trailing line break dropped. */
static int read_password(email_box_t *b, char *err, size_t errsz)
{
    char *buf = omni_malloc(OMNI_SECRET_MAX + 1);
    if (omni_secret_load(b->password_file, "password_file", buf, OMNI_SECRET_MAX + 1, err, errsz) < 0) {
        explicit_bzero(buf, OMNI_SECRET_MAX + 1);
        free(buf);
        return -1;
    }
    free(b->password);
    b->password = buf;
    return 0;
}

static bool account_ok(const char *a)
{
    size_t n = strlen(a);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._@+-", c)))
            return false;
    }
    return true;
}

/* Checks and completes a box whose fields are all set; err names the problem. */
static int finish_box(email_box_t *b, bool read_pw, char *err, size_t errsz)
{
    if (!b->url || !*b->url) {
        snprintf(err, errsz, "url: missing (set email.url, or url= in the entry)");
        return -1;
    }
    if (strncmp(b->url, "imap://", 7) != 0 && strncmp(b->url, "imaps://", 8) != 0) {
        snprintf(err, errsz, "url: \"%s\" is not imap://host or imaps://host", b->url);
        return -1;
    }
    if (strncmp(b->url, "imaps://", 8) == 0)
        b->tls = IMAP_TLS_IMPLICIT;
    if (!b->user || !*b->user) {
        snprintf(err, errsz, "user: missing (set email.user, or user= in the entry)");
        return -1;
    }
    if ((b->password != NULL) == (b->password_file != NULL)) {
        snprintf(err, errsz, "%s", b->password ? "give exactly one of password and password_file, not both"
                                               : "password_file: missing (set email.password_file, or "
                                                 "password_file= in the entry; or password)");
        return -1;
    }
    if (!b->mailbox)
        set(&b->mailbox, "INBOX");
    if (!*b->mailbox || strpbrk(b->mailbox, "\r\n")) {
        snprintf(err, errsz, "mailbox: must be a non-empty name without line breaks");
        return -1;
    }
    if (!b->account)
        set(&b->account, b->user);
    if (!account_ok(b->account)) {
        snprintf(err, errsz, "account: \"%s\" is not 1..64 of A-Z a-z 0-9 . _ @ + -", b->account);
        return -1;
    }
    if (!b->address && strchr(b->user, '@'))
        set(&b->address, b->user);
    free(b->key);
    b->key = omni_asprintf("%s/%s", b->account, b->mailbox);
    if (read_pw && b->password_file)
        return read_password(b, err, errsz);
    return 0;
}

int email_box_parse(const char *entry, const email_box_t *d, bool read_pw, email_box_t *b, char *err,
                    size_t errsz)
{
    memset(b, 0, sizeof *b);
    b->tls = d->tls;
    for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++)
        if (field_slot(b, i))
            set(field_slot(b, i), *field_slot((email_box_t *)d, i));
    if (!has_fields(entry)) {
        set(&b->mailbox, entry);
    } else {
        bool own_pw = false;
        for (const char *p = entry; *p;) {
            if (*p == ' ' || *p == '\t') {
                p++;
                continue;
            }
            size_t n = strcspn(p, "= \t"), f = 0;
            while (f < sizeof FIELDS / sizeof FIELDS[0] && !(strlen(FIELDS[f]) == n && strncmp(p, FIELDS[f], n) == 0))
                f++;
            if (f == sizeof FIELDS / sizeof FIELDS[0] || p[n] != '=') {
                snprintf(err, errsz, "\"%.*s\" is not a field (%s)", (int)n, p,
                         "account url user password password_file mailbox address tls ca_file");
                email_box_free(b);
                return -1;
            }
            p += n + 1;
            char *v = value(&p);
            if (!v) {
                snprintf(err, errsz, "%s: unterminated quote", FIELDS[f]);
                email_box_free(b);
                return -1;
            }
            if (strcmp(FIELDS[f], "tls") == 0) {
                bool none = strcmp(v, "none") == 0;
                if (!none && strcmp(v, "starttls") != 0) {
                    snprintf(err, errsz, "tls: \"%s\" is not starttls or none", v);
                    free(v);
                    email_box_free(b);
                    return -1;
                }
                b->tls = none ? IMAP_TLS_NONE : IMAP_TLS_STARTTLS;
            } else if ((strcmp(FIELDS[f], "password_file") == 0 || strcmp(FIELDS[f], "ca_file") == 0) &&
                       v[0] != '/' && !(strcmp(FIELDS[f], "password_file") == 0 &&
                                        (strncmp(v, "env:", 4) == 0 || strncmp(v, "credential:", 11) == 0))) {
                snprintf(err, errsz, "%s: \"%s\" must be an absolute path in an entry%s", FIELDS[f], v,
                         strcmp(FIELDS[f], "password_file") == 0 ? " (or credential:NAME, env:NAME)" : "");
                free(v);
                email_box_free(b);
                return -1;
            } else {
                /* An entry's own password or password_file replaces both of the section's. */
                if (!own_pw && (strcmp(FIELDS[f], "password") == 0 || strcmp(FIELDS[f], "password_file") == 0)) {
                    set(&b->password, NULL);
                    set(&b->password_file, NULL);
                    own_pw = true;
                }
                set(field_slot(b, f), v);
            }
            free(v);
        }
    }
    if (finish_box(b, read_pw, err, errsz) != 0) {
        email_box_free(b);
        return -1;
    }
    return 0;
}

void email_box_free(email_box_t *b)
{
    for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++)
        if (field_slot(b, i))
            set(field_slot(b, i), NULL);
    free(b->key);
    b->key = NULL;
}

/* err: the first error; with report (a check), each error also goes to omni_connector_check_error. */
static void config_error(omni_connector_t *report, char *err, size_t errsz, int *rc, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void config_error(omni_connector_t *report, char *err, size_t errsz, int *rc, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (*rc == 0)
        snprintf(err, errsz, "email.mailboxes: %s", text);
    if (report != NULL)
        omni_connector_check_error(report, "mailboxes", "%s", text);
    *rc = -1;
}

int email_config_load(const omni_connector_t *ctx, bool read_pw, email_config_t *c, char *err, size_t errsz)
{
    return email_config_check(ctx, read_pw, c, err, errsz, NULL);
}

int email_config_check(const omni_connector_t *ctx, bool read_pw, email_config_t *c, char *err, size_t errsz,
                       omni_connector_t *report)
{
    memset(c, 0, sizeof *c);
    email_box_t d = {0};
    const char *keys[] = {"account", "url", "user", "password", "password_file", NULL, "address", NULL, "ca_file"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (keys[i])
            set(field_slot(&d, i), omni_connector_cfg_str(ctx, keys[i]));
    d.tls = strcmp(omni_connector_cfg_str(ctx, "tls"), "none") == 0 ? IMAP_TLS_NONE : IMAP_TLS_STARTTLS;
    const char *const *items;
    size_t n = omni_connector_cfg_list(ctx, "mailboxes", &items);
    int rc = 0;
    if (n == 0)
        config_error(report, err, errsz, &rc, "no mailbox");
    c->boxes = omni_calloc(n ? n : 1, sizeof *c->boxes);
    for (size_t i = 0; i < n; i++) {
        char why[400];
        email_box_t *b = &c->boxes[c->n];
        if (email_box_parse(items[i], &d, read_pw, b, why, sizeof why) != 0) {
            config_error(report, err, errsz, &rc, "entry %zu (\"%.60s\"): %s", i, items[i], why);
            if (report == NULL)
                break;
            continue;
        }
        c->n++;
        for (size_t k = 0; k + 1 < c->n; k++)
            if (strcmp(c->boxes[k].key, b->key) == 0)
                config_error(report, err, errsz, &rc, "entry %zu: %s is already an entry before it", i, b->key);
    }
    email_box_free(&d);
    const char *init = omni_connector_cfg_str(ctx, "initial");
    c->initial = strcmp(init, "all") == 0 ? UID_INITIAL_ALL : strcmp(init, "none") == 0 ? UID_INITIAL_NONE
                                                                                         : UID_INITIAL_UNSEEN;
    c->mark_seen = omni_connector_cfg_bool(ctx, "mark_seen");
    c->batch = (size_t)omni_connector_cfg_int(ctx, "batch");
    c->connect_timeout_ms = (long)omni_connector_cfg_int(ctx, "connect_timeout_ms");
    c->timeout_ms = (long)omni_connector_cfg_int(ctx, "timeout_ms");
    c->max_fetch = (size_t)omni_connector_cfg_int(ctx, "max_fetch_bytes");
    c->max_text = (size_t)omni_connector_cfg_int(ctx, "max_text_bytes");
    if (rc != 0)
        email_config_free(c);
    return rc;
}

void email_config_free(email_config_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        email_box_free(&c->boxes[i]);
    free(c->boxes);
    c->boxes = NULL;
    c->n = 0;
}
