/* The connector runtime's calls for connectors (connector.h "inside the callbacks"): submit and commit,
 * scheduling, status, and typed config getters. */
#include "client_int.h"
#include "connector_int.h"
#include "message_int.h"
#include "omni/identity.h"
#include "omni/log.h"
#include "omni/secret.h"
#include "omni/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void omni_connector_set_user(omni_connector_t *ctx, void *user) { ctx->user = user; }
void *omni_connector_user(const omni_connector_t *ctx) { return ctx->user; }

void omni_connector_invalid(omni_connector_t *ctx, unsigned n)
{
    ctx->st.invalid += n;
}

int omni_connector_submit(omni_connector_t *ctx, const omni_msg_t *msg)
{
    omni_msg_error_t err;
    char buf[512];
    /* Serialized once: that text is what the limit is checked on, what the spool keeps and what the
     * router gets; the client takes it without parsing it back (its id is msg->id, which the rules checked). */
    size_t len = 0;
    char *json = omni__msg_serialize_valid(msg, &ctx->limits, &err, &len);
    if (json == NULL) {
        ctx->st.invalid++;
        omni_warn("invalid message not sent: %s", omni_msg_error_str(&err, buf, sizeof buf));
        return OMNI_SUBMIT_INVALID;
    }
    /* The router refuses a sender it cannot make an identity of (docs/protocol.md "Identity keys"): checked
     * here too, so that the source learns it now. Not read again: a phone number already in E.164 form (the
     * connector read it: libphonenumber is most of a call log's cost), and a national one when this
     * connector has no default_country of its own (the router's, which may differ, reads it). */
    const char *cc = ctx->cfg->default_country, *why = NULL, *p = msg->from_id;
    char key[OMNI_IDENTITY_MAX];
    while (*p == ' ' || *p == '\t')
        p++;
    const char *kind = omni_identity_kind(msg->channel);
    bool phone = kind && strcmp(kind, "phone") == 0, e164 = phone && p[0] == '+' && p[1] >= '1' && p[1] <= '9';
    for (size_t i = 2; e164 && p[i - 1]; i++)
        e164 = p[i] == '\0' ? i <= 16 : (p[i] >= '0' && p[i] <= '9');
    bool national = phone && !cc && *p != '+' && strncmp(p, "tel:+", 5) != 0;
    if (!e164 && !national && omni_identity_key(msg->channel, msg->from_id, cc, key, sizeof key, &why) != 0) {
        free(json);
        ctx->st.invalid++;
        omni_warn("invalid message not sent: message %s: from.id: %s", msg->id, why);
        return OMNI_SUBMIT_INVALID;
    }
    if (strcmp(msg->channel, ctx->def->channel) != 0) {
        free(json);
        ctx->st.invalid++;
        omni_warn("invalid message not sent: message %s: channel: \"%s\" is not this connector's channel \"%s\"",
                  msg->id, msg->channel, ctx->def->channel);
        return OMNI_SUBMIT_INVALID;
    }
    int rc = omni__client_submit_built(ctx->client, msg->id, json, len);
    int e = errno;
    if (rc != 0) {
        if (e == EAGAIN && !ctx->spool_full)
            omni_warn("spool full (%zu messages wait for the router): pausing the source",
                      omni_client_pending(ctx->client));
        ctx->spool_full = e == EAGAIN;
        errno = e;
        return -1;
    }
    if (ctx->spool_full)
        omni_info("spool has room again: reading the source");
    ctx->spool_full = false;
    ctx->dirty = true;
    ctx->st.submitted++;
    return 0;
}

int omni_connector_begin_whole(omni_connector_t *ctx)
{
    if (omni_client_pending(ctx->client) >= ctx->cfg->max_spooled) {
        errno = EAGAIN;
        return -1;
    }
    ctx->client->whole = true;
    return 0;
}

void omni_connector_end_whole(omni_connector_t *ctx) { ctx->client->whole = false; }

int omni_connector_commit(omni_connector_t *ctx)
{
    if (!ctx->dirty)
        return 0;
    if (omni_client_sync(ctx->client) != 0)
        return -1;
    ctx->dirty = false;
    ctx->st.commits++;
    return 0;
}

int omni_connector_flush(omni_connector_t *ctx)
{
    if (omni_client_poll(ctx->client, 0) < 0) {
        omni_error("router client: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void omni_connector_poll_in(omni_connector_t *ctx, int ms)
{
    int64_t t = omni_mono_ms() + (ms > 0 ? ms : 0);
    if (t < ctx->next_poll)
        ctx->next_poll = t;
}

void omni_connector_watch_fd(omni_connector_t *ctx, int fd) { ctx->watch_fd = fd; }

void omni_connector_status(omni_connector_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->status, sizeof ctx->status, fmt, ap);
    va_end(ap);
    for (char *p = ctx->status; *p; p++)
        if (*p == '\n')
            *p = ' '; /* one sd_notify assignment per line */
}

static const conn_slot_t *own(const omni_connector_t *ctx, const char *key, int t1, int t2, int t3)
{
    const conn_slot_t *s = conn_config_own(ctx->cfg, key);
    if (s == NULL)
        omni_panic("connector %s: no config key %s", ctx->def->name, key);
    int t = (int)s->key->type;
    if (t != t1 && t != t2 && t != t3)
        omni_panic("connector %s: config key %s read with the wrong type", ctx->def->name, key);
    return s;
}

const char *omni_connector_cfg_str(const omni_connector_t *ctx, const char *key)
{
    const conn_slot_t *s = conn_config_own(ctx->cfg, key);
    if (s != NULL && s->key->type == OMNI_KEY_SECRET)
        return s->str;
    return own(ctx, key, OMNI_KEY_STRING, OMNI_KEY_PATH, OMNI_KEY_ENUM)->str;
}

long omni_connector_secret(const omni_connector_t *ctx, const char *key, char *out, size_t outsz, char *err,
                           size_t errsz)
{
    const conn_slot_t *s = own(ctx, key, OMNI_KEY_SECRET, -1, -1);
    char what[128];
    snprintf(what, sizeof what, "%s.%s", ctx->def->name, key);
    return omni_secret_load(s->str, what, out, outsz, err, errsz);
}

void omni_connector_check_error(omni_connector_t *ctx, const char *key, const char *fmt, ...)
{
    const conn_slot_t *s = key != NULL ? conn_config_own(ctx->cfg, key) : NULL;
    if (key != NULL && s == NULL)
        s = conn_config_common(ctx->cfg, key);
    if (key != NULL && s == NULL)
        omni_panic("connector %s: check_error about %s, not one of its keys", ctx->def->name, key);
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (s != NULL)
        fprintf(stderr, "omni-%s: %s: %s: %s\n", ctx->def->name, conn_config_where(ctx->cfg, s), s->path, text);
    else
        fprintf(stderr, "omni-%s: %s: %s\n", ctx->def->name, conn_config_where(ctx->cfg, NULL), text);
    ctx->check_errors++;
}

int omni_connector_check_secret(omni_connector_t *ctx, const char *key)
{
    char secret[OMNI_SECRET_MAX + 1], err[512];
    const conn_slot_t *s = own(ctx, key, OMNI_KEY_SECRET, -1, -1);
    /* named "" so that the reason reads after the key the error line names already */
    long len = omni_secret_load(s->str, "", secret, sizeof secret, err, sizeof err);
    explicit_bzero(secret, sizeof secret);
    if (len >= 0)
        return 0;
    omni_connector_check_error(ctx, key, "%s", strncmp(err, ": ", 2) == 0 ? err + 2 : err);
    return -1;
}
long long omni_connector_cfg_int(const omni_connector_t *ctx, const char *key)
{
    return own(ctx, key, OMNI_KEY_INT, OMNI_KEY_DURATION, OMNI_KEY_SIZE)->num;
}
bool omni_connector_cfg_bool(const omni_connector_t *ctx, const char *key)
{
    return own(ctx, key, OMNI_KEY_BOOL, -1, -1)->flag;
}
size_t omni_connector_cfg_list(const omni_connector_t *ctx, const char *key, const char *const **items)
{
    const conn_slot_t *s = own(ctx, key, OMNI_KEY_LIST, -1, -1);
    static const char *const empty[1] = { NULL };
    *items = s->list != NULL ? (const char *const *)s->list : empty;
    return s->n_list;
}

const char *omni_connector_name(const omni_connector_t *ctx) { return ctx->def->name; }
const char *omni_connector_channel(const omni_connector_t *ctx) { return ctx->def->channel; }
const char *omni_connector_default_country(const omni_connector_t *ctx) { return ctx->cfg->default_country; }
const char *omni_connector_state_dir(const omni_connector_t *ctx) { return ctx->cfg->state_dir; }
int omni_connector_poll_ms(const omni_connector_t *ctx) { return ctx->cfg->poll_ms; }
int omni_connector_retry_max_ms(const omni_connector_t *ctx) { return ctx->cfg->retry_max_ms; }
omni_client_t *omni_connector_client(const omni_connector_t *ctx) { return ctx->client; }

void omni_connector_stats(const omni_connector_t *ctx, omni_connector_stats_t *out) { *out = ctx->st; }
