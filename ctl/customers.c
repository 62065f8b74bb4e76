/* omnictl customer show|link|unlink|tier and conversation show. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "ctl.h"
#include "omni/identity.h"
#include "omni/util.h"
#include "survey.h"

/* Prints the conversations of customer id (" 5 (resolved) 7 (merged)", then its archived count) after label. */
static void print_conversations(ctl_t *c, const char *label, const char *id, const char *archived)
{
    redisReply *convs = ctl_cmd(c, "SMEMBERS %s" KEY_CUSTOMER_CONVERSATIONS, c->prefix, id);
    printf("%s", label);
    for (size_t i = 0; i < convs->elements; i++) {
        redisReply *st = ctl_cmd(c, "HGET %s" KEY_CONVERSATION " status", c->prefix, convs->element[i]->str);
        printf(" %s (%s)", convs->element[i]->str, st->type == REDIS_REPLY_STRING ? st->str : "?");
        freeReplyObject(st);
    }
    if (archived)
        printf("%s%s archived", convs->elements ? ", and " : " ", archived);
    printf("\n");
    freeReplyObject(convs);
}

/* The history of the customers a link joined into customer id: a link moves only open conversations (docs/redis.md
 * "Customers and links"), so what each identity's first customer resolved before stays with it, under its own id.
 * Each such customer is printed once, when it holds any. */
static void print_joined_history(ctl_t *c, const char *id, const redisReply *ids)
{
    char label[160];
    for (size_t i = 0; i < ids->elements; i++) {
        redisReply *home = ctl_cmd(c, "HGET %s" KEY_IDENTITY " home", c->prefix, ids->element[i]->str);
        bool first = home->type == REDIS_REPLY_STRING && strcmp(home->str, id) != 0;
        for (size_t j = 0; first && j < i; j++) { /* two identities of one home: print it once */
            redisReply *h = ctl_cmd(c, "HGET %s" KEY_IDENTITY " home", c->prefix, ids->element[j]->str);
            first = !(h->type == REDIS_REPLY_STRING && strcmp(h->str, home->str) == 0);
            freeReplyObject(h);
        }
        if (first) {
            redisReply *n = ctl_cmd(c, "SCARD %s" KEY_CUSTOMER_CONVERSATIONS, c->prefix, home->str);
            redisReply *hh = ctl_cmd(c, "HGETALL %s" KEY_CUSTOMER, c->prefix, home->str);
            const char *arch = ctl_field(hh, "archived_conversations"), *tier = ctl_field(hh, "tier");
            if ((n->type == REDIS_REPLY_INTEGER && n->integer > 0) || arch) {
                snprintf(label, sizeof label, "  as customer %s, before a link: conversations", home->str);
                print_conversations(c, label, home->str, arch);
            }
            /* the customer's own tier is the one routed by; one set on a customer a link joined into it is not */
            if (tier)
                printf("  as customer %s, before a link: tier %s (not routed by while linked)\n", home->str, tier);
            freeReplyObject(hh);
            freeReplyObject(n);
        }
        freeReplyObject(home);
    }
}

static int customer_show(ctl_t *c, const char *arg)
{
    char ident[OMNI_IDENTITY_MAX], t[40], key[600];
    ctl_identity(c, arg, ident, sizeof ident);
    redisReply *cust = ctl_cmd(c, "HGET %s" KEY_IDENTITY " customer", c->prefix, ident);
    if (cust->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "%s: no customer (never seen, never linked)\n", ident);
        freeReplyObject(cust);
        return 1;
    }
    const char *id = cust->str;
    redisReply *h = ctl_cmd(c, "HGETALL %s" KEY_CUSTOMER, c->prefix, id);
    printf("customer %s\n  created     %s\n", id, ctl_time(ctl_field(h, "created_at"), t, sizeof t));
    redisReply *ids = ctl_cmd(c, "SMEMBERS %s" KEY_CUSTOMER_IDENTITIES, c->prefix, id);
    printf("  identities\n");
    for (size_t i = 0; i < ids->elements; i++) {
        const char *m = ids->element[i]->str;
        redisReply *ih = ctl_cmd(c, "HGETALL %s" KEY_IDENTITY, c->prefix, m);
        printf("    %-40s first seen %s\n", m, ctl_time(ctl_field(ih, "first_seen"), t, sizeof t));
        freeReplyObject(ih);
        redisReply *links = ctl_cmd(c, "SMEMBERS %s" KEY_LINKS, c->prefix, m);
        for (size_t j = 0; j < links->elements; j++) {
            const char *o = links->element[j]->str;
            if (strcmp(m, o) > 0)
                continue; /* print each link once */
            snprintf(key, sizeof key, "%s" KEY_LINK, c->prefix, m, o);
            const char *argv[] = { "HGETALL", key };
            redisReply *lh = ctl_cmd_argv(c, 2, argv);
            const char *note = ctl_field(lh, "note");
            printf("      linked to %s by %s at %s%s%s%s\n", o, ctl_field(lh, "by") ? ctl_field(lh, "by") : "?",
                   ctl_time(ctl_field(lh, "at"), t, sizeof t), note && *note ? " (\"" : "", note && *note ? note : "",
                   note && *note ? "\")" : "");
            freeReplyObject(lh);
        }
        freeReplyObject(links);
    }
    const char *tier = ctl_field(h, "tier");
    printf("  tier        %s\n", tier ? tier : "as the policy works it out");
    const char *open = ctl_field(h, "open_conversation");
    printf("  open conversation %s\n", open ? open : "none");
    print_conversations(c, "  conversations", id, ctl_field(h, "archived_conversations"));
    print_joined_history(c, id, ids);
    freeReplyObject(ids);
    freeReplyObject(h);
    freeReplyObject(cust);
    return 0;
}

static int customer_link(ctl_t *c, int link, int argc, char **argv)
{
    /* Only a link has a note: an unlink given one would drop it unsaid. */
    static const struct option link_opts[] = { { "by", required_argument, 0, 'b' },
                                                { "note", required_argument, 0, 'n' }, { 0, 0, 0, 0 } };
    static const struct option unlink_opts[] = { { "by", required_argument, 0, 'b' }, { 0, 0, 0, 0 } };
    const char *verb = link ? "link" : "unlink", *by = NULL, *note = "";
    static char link_name[] = "omnictl: customer link", unlink_name[] = "omnictl: customer unlink";
    char *argv0 = argv[0];
    argv[0] = link ? link_name : unlink_name; /* getopt's messages name the command */
    int opt;
    optind = 0; /* GNU getopt: start over, and permute so options may follow the identities */
    bool noted = false;
    while ((opt = getopt_long(argc, argv, link ? "b:n:" : "b:", link ? link_opts : unlink_opts, NULL)) != -1) {
        if ((opt == 'b' && by) || (opt == 'n' && noted)) /* which one was meant? */
            return fprintf(stderr, "%s: --%s given twice\n", argv[0], opt == 'b' ? "by" : "note"), 2;
        if (opt == 'b')
            by = optarg;
        else if (opt == 'n')
            ctl_check_text("--note", note = optarg), noted = true;
        else
            return 2;
    }
    argv[0] = argv0;
    if (argc - optind != 2) {
        fprintf(stderr, "omnictl: customer %s takes two identities\n", verb);
        return 2;
    }
    char a[OMNI_IDENTITY_MAX], b[OMNI_IDENTITY_MAX], now[24];
    ctl_identity(c, argv[optind], a, sizeof a);
    ctl_identity(c, argv[optind + 1], b, sizeof b);
    if (strcmp(a, b) == 0) {
        /* "Ann@X.com" and "email:ann@x.com" are written apart but are one identity: a mistake in the arguments */
        fprintf(stderr, "omnictl: customer %s: \"%s\" and \"%s\" are the same identity, %s: an identity cannot be "
                "%s itself\n", verb, argv[optind], argv[optind + 1], a, link ? "linked to" : "unlinked from");
        return 2;
    }
    snprintf(now, sizeof now, "%lld", (long long)omni_wall_ms());
    const char *args[LINK_NARGS] = { [LINK_ARG_A] = a, [LINK_ARG_B] = b, [LINK_ARG_WHO] = ctl_actor(by),
                                     [LINK_ARG_NOW] = now, [LINK_ARG_NOTE] = note };
    _Static_assert((int)UNLINK_ARG_NOW == (int)LINK_ARG_NOW && (int)UNLINK_NARGS == (int)LINK_NARGS - 1, "unlink takes link's first args");
    redisReply *r = ctl_script(c, link ? LUA_LINK : LUA_UNLINK, link ? LINK_NARGS : UNLINK_NARGS, args);
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "omnictl: %s\n", r->str + (strncmp(r->str, "ERR ", 4) == 0 ? 4 : 0));
        rc = 1;
    } else if (link) {
        printf(r->element[LINK_REPLY_LINKED]->integer ? "linked %s and %s: customer %s\n"
                                                      : "%s and %s were already linked: customer %s\n",
               a, b, r->element[LINK_REPLY_CUSTOMER]->str);
    } else if (strcmp(r->element[UNLINK_REPLY_CUSTOMER_A]->str, r->element[UNLINK_REPLY_CUSTOMER_B]->str) == 0) {
        printf("unlinked %s and %s; other links still join them: customer %s\n", a, b,
               r->element[UNLINK_REPLY_CUSTOMER_A]->str);
    } else {
        long long moved = r->element[UNLINK_REPLY_MOVED]->integer;
        printf("unlinked %s and %s: customers %s and %s (%lld message%s moved back)\n", a, b,
               r->element[UNLINK_REPLY_CUSTOMER_A]->str, r->element[UNLINK_REPLY_CUSTOMER_B]->str, moved,
               moved == 1 ? "" : "s");
    }
    freeReplyObject(r);
    return rc;
}

/* omnictl customer tier IDENTITY vip|repeat|new|auto [--by WHO]: auto gives the tier back to the policy. */
static int customer_tier(ctl_t *c, int argc, char **argv)
{
    static const struct option longopts[] = { { "by", required_argument, 0, 'b' }, { 0, 0, 0, 0 } };
    const char *by = NULL;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "b:", longopts, NULL)) != -1) {
        if (opt != 'b')
            return 2;
        if (by) /* which one was meant? */
            return fprintf(stderr, "omnictl: customer tier: --by given twice\n"), 2;
        by = optarg;
    }
    if (argc - optind != 2) {
        fprintf(stderr, "omnictl: customer tier takes an identity and a tier (vip, repeat, new or auto)\n");
        return 2;
    }
    const char *tier = argv[optind + 1];
    if (strcmp(tier, "vip") && strcmp(tier, "repeat") && strcmp(tier, "new") && strcmp(tier, "auto")) {
        fprintf(stderr, "omnictl: customer tier: \"%s\" is not vip, repeat, new or auto\n", tier);
        return 2;
    }
    char ident[OMNI_IDENTITY_MAX], now[24];
    ctl_identity(c, argv[optind], ident, sizeof ident);
    snprintf(now, sizeof now, "%lld", (long long)omni_wall_ms());
    const char *args[TIER_NARGS] = { [TIER_ARG_IDENTITY] = ident, [TIER_ARG_TIER] = strcmp(tier, "auto") ? tier : "",
                                     [TIER_ARG_WHO] = ctl_actor(by), [TIER_ARG_NOW] = now };
    redisReply *r = ctl_script(c, LUA_TIER, TIER_NARGS, args);
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "omnictl: %s\n", r->str + (strncmp(r->str, "ERR ", 4) == 0 ? 4 : 0));
        rc = 1;
    } else {
        const char *was = r->element[TIER_REPLY_WAS]->str;
        printf("customer %s (%s): tier %s (was %s)\n", r->element[TIER_REPLY_CUSTOMER]->str, ident,
               strcmp(tier, "auto") ? tier : "as the policy works it out", *was ? was : "as the policy works it out");
    }
    freeReplyObject(r);
    return rc;
}

int ctl_customer(ctl_t *c, int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "show")) {
        if (argc == 2)
            return customer_show(c, argv[1]);
        fprintf(stderr, "omnictl: customer show takes one identity\n");
        return 2;
    }
    if (argc >= 1 && !strcmp(argv[0], "link"))
        return customer_link(c, 1, argc, argv);
    if (argc >= 1 && !strcmp(argv[0], "unlink"))
        return customer_link(c, 0, argc, argv);
    if (argc >= 1 && !strcmp(argv[0], "tier"))
        return customer_tier(c, argc, argv);
    fprintf(stderr, "omnictl: customer show IDENTITY | link A B | unlink A B | tier IDENTITY TIER\n");
    return 2;
}

static void print_messages(ctl_t *c, const char *conv)
{
    char t[40];
    redisReply *ids = ctl_cmd(c, "LRANGE %s" KEY_CONVERSATION_MESSAGES " 0 -1", c->prefix, conv);
    for (size_t i = 0; i < ids->elements; i++) {
        redisReply *m = ctl_cmd(c, "HGETALL %s" KEY_MSG, c->prefix, ids->element[i]->str);
        const char *json = ctl_field(m, "json");
        json_error_t e;
        json_t *doc = json ? json_loadb(json, strlen(json), 0, &e) : NULL;
        const char *text = json_string_value(json_object_get(doc, "text"));
        const char *subject = json_string_value(json_object_get(doc, "subject"));
        printf("    %s  %-8s %-32s %s\n      %s%s%.*s%s\n", ctl_time(ctl_field(m, "stored_at"), t, sizeof t),
               ctl_field(m, "channel") ? ctl_field(m, "channel") : "?", ctl_field(m, "identity") ? ctl_field(m, "identity") : "?",
               ids->element[i]->str, subject ? subject : "", subject ? ": " : "", 100, text ? text : "",
               text && strlen(text) > 100 ? "..." : "");
        json_decref(doc);
        freeReplyObject(m);
    }
    freeReplyObject(ids);
}

static int newest_first(const struct dirent **a, const struct dirent **b) { return -strcmp((*a)->d_name, (*b)->d_name); }
static int archive_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 6 && !strcmp(d->d_name + n - 6, ".jsonl");
}

/* Where conversation conv's record is in the archive file at path: 1 as a line of its own, 2 inside the line
 * of the conversation it was merged into (*parent: that one's id, a new string), 0 not there. A merged
 * conversation's entry opens with {"conversation":"N","fields": in its parent's "merged" list; JSON escapes
 * every quote inside a string, so the pattern cannot come from a message's text. */
static int archive_find(const char *path, const char *conv, char **parent)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char head[64], nested[80], *line = NULL;
    size_t cap = 0, hl = (size_t)snprintf(head, sizeof head, "{\"conversation\":\"%s\",", conv);
    snprintf(nested, sizeof nested, "{\"conversation\":\"%s\",\"fields\":", conv);
    int where = 0;
    while (where == 0 && getline(&line, &cap, f) > 0) {
        const char *merged = strstr(line, "\"merged\":[");
        if (!strncmp(line, head, hl)) {
            where = 1;
        } else if (merged != NULL && strstr(merged, nested) != NULL) {
            const char *id = line + strlen("{\"conversation\":\"");
            *parent = omni_strndup(id, strcspn(id, "\""));
            where = 2;
        }
    }
    free(line);
    fclose(f);
    return where;
}

/* The archive file holding conversation conv's record, newest day first (a new string, caller frees), or NULL;
 * *where and *parent as archive_find says. */
static char *archive_search(const char *dir, const char *conv, int *where, char **parent)
{
    struct dirent **names;
    int n = scandir(dir, &names, archive_file, newest_first);
    char *found = NULL;
    for (int i = 0; i < n; i++) {
        char *path = omni_asprintf("%s/%s", dir, names[i]->d_name);
        if (found == NULL && (*where = archive_find(path, conv, parent)) != 0)
            found = path;
        else
            free(path);
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    return found;
}

/* A conversation no longer in Redis: archived (where to, from its archived:<n> while it lasts, else by searching
 * retention.archive_dir), or never there. A conversation merged into another went with it, inside its record. */
static int archived_show(ctl_t *c, const char *conv)
{
    redisReply *t = ctl_cmd(c, "GET %s" KEY_ARCHIVED, c->prefix, conv);
    int where = 0;
    char *parent = NULL, *file = NULL;
    if (t->type == REDIS_REPLY_STRING) {
        file = omni_strdup(t->str);
        where = archive_find(file, conv, &parent); /* 0: the file is gone or moved; its name is still the answer */
    } else {
        file = archive_search(c->cfg->retention.archive_dir, conv, &where, &parent);
    }
    freeReplyObject(t);
    if (!file) {
        fprintf(stderr, "conversation %s: no such conversation (not in Redis, not in the archive %s)\n", conv,
               c->cfg->retention.archive_dir);
        return 1;
    }
    if (where == 2)
        printf("conversation %s: archived to %s\n  merged into conversation %s: inside its record, the line starting "
               "{\"conversation\":\"%s\", (docs/archive.md)\n", conv, file, parent, parent);
    else
        printf("conversation %s: archived to %s\n  its record is the line starting {\"conversation\":\"%s\", "
               "(docs/archive.md)\n", conv, file, conv);
    free(parent);
    free(file);
    return 0;
}

int ctl_conversation(ctl_t *c, int argc, char **argv)
{
    if ((argc == 2 || (argc == 4 && !strcmp(argv[2], "--by"))) &&
        (!strcmp(argv[0], "respond") || !strcmp(argv[0], "resolve")))
        return ctl_conversation_act(c, argv[0], argv[1], argc == 4 ? argv[3] : NULL);
    if (argc >= 1 && !strcmp(argv[0], "survey"))
        return ctl_conversation_survey(c, argc - 1, argv + 1);
    if (argc != 2 || strcmp(argv[0], "show")) {
        fprintf(stderr, "omnictl: conversation show ID | respond ID [--by WHO] | resolve ID [--by WHO] | survey ID "
                        "[--csat N] [--ces N] [--nps N] [--by WHO]\n");
        return 2;
    }
    char t[40];
    redisReply *h = ctl_cmd(c, "HGETALL %s" KEY_CONVERSATION, c->prefix, argv[1]);
    if (h->elements == 0) {
        freeReplyObject(h);
        return archived_show(c, argv[1]);
    }
    const char *into = ctl_field(h, "merged_into"), *owner = ctl_field(h, "owner");
    const char *status = ctl_field(h, "status");
    printf("conversation %s: %s%s%s, customer %s\n  opened %s from %s on %s\n", argv[1], status,
           into ? " into " : "", into ? into : "", ctl_field(h, "customer"),
           ctl_time(ctl_field(h, "opened_at"), t, sizeof t), ctl_field(h, "first_identity"), ctl_field(h, "channel"));
    if (!strcmp(status, "open") && ctl_field(h, "queue"))
        printf("  not routed: waiting on queue %s\n", ctl_field(h, "queue"));
    else if (!strcmp(status, "open"))
        printf("  not routed yet: waiting for a router's decision\n");
    if (owner)
        printf("  owner %s (team %s) since %s\n", owner, ctl_field(h, "team"),
               ctl_time(ctl_field(h, "assigned_at"), t, sizeof t));
    if (!strcmp(status, "offered") && ctl_field(h, "offer_expires_at"))
        printf("  offered, not accepted yet: the offer expires %s\n",
               ctl_time(ctl_field(h, "offer_expires_at"), t, sizeof t));
    if (!strcmp(status, "resolved") && ctl_field(h, "resolved_at")) {
        /* resolved_by "policy:RULE": a rule with record: true stored it resolved at once (docs/routing.md) */
        const char *by = ctl_field(h, "resolved_by");
        bool recorded = by && !strncmp(by, "policy:", 7);
        printf("  %s %s%s%s\n", recorded ? "recorded, not work: stored resolved by rule" : "resolved",
               recorded ? by + 7 : ctl_time(ctl_field(h, "resolved_at"), t, sizeof t),
               !recorded && by ? " by " : "", !recorded && by ? by : "");
    }
    if (ctl_field(h, "follow_up_of"))
        printf("  the follow-up of conversation %s\n", ctl_field(h, "follow_up_of"));
    if (ctl_field(h, "surveyed_at")) {
        printf("  survey");
        for (int k = 0; k < SURVEY_MEASURES; k++)
            if (ctl_field(h, survey_measures[k].name))
                printf(" %s %s", survey_measures[k].name, ctl_field(h, survey_measures[k].name));
        printf(" (recorded %s)\n", ctl_time(ctl_field(h, "surveyed_at"), t, sizeof t));
    }
    redisReply *fu = ctl_cmd(c, "ZSCORE %s" KEY_FOLLOW_UPS " %s", c->prefix, argv[1]);
    if (fu->type == REDIS_REPLY_STRING)
        printf("  follow-up due %s\n", ctl_time(fu->str, t, sizeof t));
    freeReplyObject(fu);
    if (ctl_field(h, "follow_up"))
        printf("  followed up: conversation %s\n", ctl_field(h, "follow_up"));
    if (ctl_field(h, "follow_up_skipped"))
        printf("  no follow-up: %s\n", ctl_field(h, "follow_up_skipped"));
    if (ctl_field(h, "queued_on") && !strcmp(ctl_field(h, "status"), "queued"))
        printf("  waiting in the queue of team %s\n", ctl_field(h, "queued_on"));
    if (ctl_field(h, "category"))
        printf("  category %s, priority %s, tier %s\n", ctl_field(h, "category"), ctl_field(h, "prio"),
               ctl_field(h, "tier"));
    const char *due = ctl_field(h, "due");
    if (due && strtoll(due, NULL, 10) > 0)
        printf("  first response due %s%s%s\n", ctl_time(due, t, sizeof t),
               ctl_field(h, "first_response_at") ? ", answered" : "", ctl_field(h, "breached") ? ", BREACHED" : "");
    printf("  messages\n");
    print_messages(c, argv[1]);
    redisReply *merged = ctl_cmd(c, "SMEMBERS %s" KEY_CONVERSATION_MERGED, c->prefix, argv[1]);
    for (size_t i = 0; i < merged->elements; i++) {
        printf("  merged conversation %s\n", merged->element[i]->str);
        print_messages(c, merged->element[i]->str);
    }
    freeReplyObject(merged);
    freeReplyObject(h);
    return 0;
}
