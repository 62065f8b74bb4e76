/* Warnings about a policy that loaded: routing rules that can be given work none of their targets can ever
 * take, because of the skills classification asks for or the language the work is in. Only what the policy
 * decides on its own is looked at (who is on which team with which skills and languages); presence,
 * calendars and load change while the router runs and are the decision trace's business. The config still
 * starts: such work waits in the rule's queue, which may be what the operator meant (docs/routing.md). */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "omni/util.h"

/* The categories work can have when classification rule c matched: those its `when` requires, else the one
 * it sets, else any (n 0). Over-approximates nothing it can rule out: an earlier rule's category is not
 * counted, since it would have to match the same message (not decidable here). */
static char *const *rule_categories(const classify_rule_t *c, size_t *n)
{
    if (c->when.n_category) {
        *n = c->when.n_category;
        return c->when.category;
    }
    *n = c->category ? 1 : 0;
    return c->category ? (char *const *)&c->category : NULL;
}

static bool listed(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static bool cond_only_categories(const cond_t *w)
{
    return w->n_category && !w->n_channel && !w->n_priority && !w->n_tier && !w->n_language && !w->n_text &&
           !w->n_subject && !w->n_sender && !w->open_in && !w->closed_in && !w->local_time && !w->n_weekdays &&
           !w->n_any && !w->n_not;
}

/* True when work of these categories (n 0: any) can reach routing rule ri: the rule takes one of them, and
 * no earlier rule whose only condition is a category list takes them all first. */
static bool reaches(const policy_t *p, size_t ri, char *const *cats, size_t n)
{
    const cond_t *w = &p->routes[ri].when;
    if (w->n_category && n) {
        bool some = false;
        for (size_t i = 0; i < n && !some; i++)
            some = listed(w->category, w->n_category, cats[i]);
        if (!some)
            return false;
    }
    for (size_t e = 0; n && e < ri; e++) {
        const cond_t *ew = &p->routes[e].when;
        if (!cond_only_categories(ew))
            continue;
        bool all = true;
        for (size_t i = 0; i < n && all; i++)
            all = listed(ew->category, ew->n_category, cats[i]);
        if (all)
            return false;
    }
    return true;
}

/* Each team's agents, found once for all the rules: scanning every agent for every target of every rule and
 * skill took 25 s for 100000 agents and 1024 rules (at start, at each reload and for -t). */
typedef struct members {
    const agent_t **agent;
    size_t n;
} members_t;

typedef struct team_index {
    const char *name;
    size_t i;
} team_index_t;

static int by_team_name(const void *a, const void *b)
{
    return strcmp(((const team_index_t *)a)->name, ((const team_index_t *)b)->name);
}

/* members[i] holds the agents of p->teams[i], in the order of the file. Free with members_free. */
static members_t *members_new(const policy_t *p)
{
    members_t *m = omni_calloc(p->n_teams + 1, sizeof *m);
    team_index_t *ix = omni_calloc(p->n_teams + 1, sizeof *ix);
    size_t n = 0;
    for (size_t i = 0; i < p->n_teams; i++)
        if (p->teams[i].name)
            ix[n++] = (team_index_t){ p->teams[i].name, i };
    qsort(ix, n, sizeof *ix, by_team_name);
    for (int pass = 0; pass < 2; pass++) { /* count, then fill */
        for (size_t i = 0; i < p->n_agents; i++) {
            for (size_t j = 0; j < p->agents[i].n_teams; j++) {
                team_index_t key = { p->agents[i].teams[j], 0 };
                const team_index_t *hit = bsearch(&key, ix, n, sizeof *ix, by_team_name);
                if (hit == NULL)
                    continue;
                members_t *tm = &m[hit->i];
                if (pass == 1)
                    tm->agent[tm->n] = &p->agents[i];
                tm->n++;
            }
        }
        for (size_t t = 0; pass == 0 && t < p->n_teams; t++) {
            m[t].agent = omni_calloc(m[t].n + 1, sizeof *m[t].agent);
            m[t].n = 0;
        }
    }
    free(ix);
    return m;
}

static void members_free(members_t *m, size_t n_teams)
{
    for (size_t t = 0; t < n_teams; t++)
        free(m[t].agent);
    free(m);
}

/* Why team t can never take work of these categories (n 0: any) needing skill s, or NULL when it can:
 * written into buf. */
static const char *no_skill(const policy_t *p, const members_t *members, const team_t *t, char *const *cats,
                            size_t n, const skill_t *s, char *buf, size_t bufsz)
{
    const members_t *tm = &members[t - p->teams];
    if (t->kind == TEAM_OUTSOURCED && n) {
        bool covered = false;
        for (size_t i = 0; i < n && !covered; i++)
            covered = listed(t->contract.categories, t->contract.n_categories, cats[i]);
        if (!covered) {
            snprintf(buf, bufsz, "%s's contract does not cover %s", t->name, n == 1 ? cats[0] : "these categories");
            return buf;
        }
    }
    size_t agents = tm->n;
    if (agents == 0 && t->kind == TEAM_OUTSOURCED) { /* the partner itself owns the work (plan.c) */
        if (policy_skill_level(t->skill, t->n_skill, s->name) >= s->level)
            return NULL;
        snprintf(buf, bufsz, "%s, a partner without agents, does not list %s:%d or more in its skills", t->name,
                 s->name, s->level);
        return buf;
    }
    for (size_t i = 0; i < tm->n; i++)
        if (policy_skill_level(tm->agent[i]->skill, tm->agent[i]->n_skill, s->name) >= s->level)
            return NULL;
    if (agents == 0)
        snprintf(buf, bufsz, "%s has no agents", t->name);
    else
        snprintf(buf, bufsz, "no agent of %s has %s:%d or more", t->name, s->name, s->level);
    return buf;
}

/* Why team t can never take work in language lang, or NULL when it can: written into buf. */
static const char *no_language(const policy_t *p, const members_t *members, const team_t *t, const char *lang,
                               char *buf, size_t bufsz)
{
    const members_t *tm = &members[t - p->teams];
    const contract_t *c = &t->contract;
    bool partner = t->kind == TEAM_OUTSOURCED;
    char *const *langs = partner && c->n_languages ? c->languages : t->languages;
    size_t n = partner && c->n_languages ? c->n_languages : t->n_languages;
    if (!policy_speaks(langs, n, lang)) {
        snprintf(buf, bufsz, "%s%s does not cover %s", t->name, partner && c->n_languages ? "'s contract" : "", lang);
        return buf;
    }
    if (partner && c->n_languages && !policy_speaks(t->languages, t->n_languages, lang)) { /* as plan.c: both */
        snprintf(buf, bufsz, "%s does not cover %s", t->name, lang);
        return buf;
    }
    size_t agents = tm->n;
    if (agents == 0 && partner)
        return NULL;
    for (size_t i = 0; i < tm->n; i++)
        if (policy_speaks(tm->agent[i]->languages, tm->agent[i]->n_languages, lang))
            return NULL;
    if (agents == 0)
        snprintf(buf, bufsz, "%s has no agents", t->name);
    else
        snprintf(buf, bufsz, "no agent of %s speaks %s", t->name, lang);
    return buf;
}

/* A growing "; "-separated list of reasons. */
typedef struct why {
    char *s;
} why_t;

static void why_add(why_t *w, const char *reason)
{
    char *s = w->s ? omni_asprintf("%s; %s", w->s, reason) : omni_strdup(reason);
    free(w->s);
    w->s = s;
}

/* Appends the warning msg (taken: freed here) about routing rule ri, located at the rule. */
static void warn(config_errors_t *warns, const route_rule_t *r, size_t ri, char *msg)
{
    char *line = r->where.line > 0
                     ? omni_asprintf("%s:%ld:%ld: warning: routing.rules[%zu]: %s", r->where.file, r->where.line,
                                     r->where.col, ri, msg)
                     : omni_asprintf("%s: warning: routing.rules[%zu]: %s", r->where.file ? r->where.file : "policy",
                                     ri, msg);
    free(msg);
    warns->lines = omni_realloc(warns->lines, (warns->n + 1) * sizeof *warns->lines);
    warns->lines[warns->n++] = line;
}

/* "category technical", "categories basic, faq" or "any category", into buf. */
static const char *cats_shown(char *const *cats, size_t n, char *buf, size_t bufsz)
{
    if (n == 0)
        return "any category";
    size_t o = (size_t)snprintf(buf, bufsz, "categor%s ", n == 1 ? "y" : "ies");
    for (size_t i = 0; i < n && o < bufsz; i++)
        o += (size_t)snprintf(buf + o, bufsz - o, "%s%s", i ? ", " : "", cats[i]);
    return buf;
}

/* Warns when no target of r can take work in lang; source says where the language comes from. */
static void check_language(const policy_t *p, const members_t *m, const route_rule_t *r, size_t ri, const char *lang,
                           const char *source, config_errors_t *warns)
{
    why_t why = { NULL };
    char buf[256];
    for (size_t j = 0; j < r->n_targets; j++) {
        const char *no = r->targets[j].t ? no_language(p, m, r->targets[j].t, lang, buf, sizeof buf) : NULL;
        if (no == NULL) {
            free(why.s);
            return;
        }
        why_add(&why, no);
    }
    warn(warns, r, ri, omni_asprintf("rule %s takes work in language %s (%s), but none of its targets can ever "
                                     "take it: %s", r->name, lang, source, why.s ? why.s : "it has no targets"));
    free(why.s);
}

static void check_route(const policy_t *p, const members_t *m, size_t ri, config_errors_t *warns)
{
    const route_rule_t *r = &p->routes[ri];
    char buf[256], cats_buf[256];
    /* skills already warned about for this rule, so two classification rules asking the same say it once */
    const skill_t **done = omni_calloc(1, sizeof *done);
    size_t n_done = 0;
    for (size_t ci = 0; ci < p->n_classify; ci++) {
        const classify_rule_t *c = &p->classify[ci];
        size_t n_cats;
        char *const *cats = rule_categories(c, &n_cats);
        if (!reaches(p, ri, cats, n_cats))
            continue;
        for (size_t k = 0; k < c->n_skill; k++) {
            const skill_t *s = &c->skill[k];
            bool seen = false;
            for (size_t d = 0; d < n_done && !seen; d++)
                seen = strcmp(done[d]->name, s->name) == 0 && done[d]->level == s->level;
            if (seen)
                continue;
            why_t why = { NULL };
            bool served = false;
            for (size_t j = 0; j < r->n_targets && !served; j++) {
                const char *no = r->targets[j].t ? no_skill(p, m, r->targets[j].t, cats, n_cats, s, buf, sizeof buf) : NULL;
                if (no == NULL)
                    served = true;
                else
                    why_add(&why, no);
            }
            if (!served) {
                warn(warns, r, ri, omni_asprintf("rule %s can be given work that classification rule %s asks skill "
                                                 "%s:%d for (%s), but none of its targets can ever take it: %s",
                                                 r->name, c->name, s->name, s->level,
                                                 cats_shown(cats, n_cats, cats_buf, sizeof cats_buf),
                                                 why.s ? why.s : "it has no targets"));
                done = omni_realloc(done, (n_done + 1) * sizeof *done);
                done[n_done++] = s;
            }
            free(why.s);
        }
    }
    free(done);
    for (size_t i = 0; i < r->when.n_language; i++)
        check_language(p, m, r, ri, r->when.language[i], "its when", warns);
    if (r->when.n_language)
        return; /* the rule pins the language itself: classification's can only be narrower */
    for (size_t ci = 0; ci < p->n_classify; ci++) {
        const classify_rule_t *c = &p->classify[ci];
        size_t n_cats;
        char *const *cats = rule_categories(c, &n_cats);
        if (!c->when.n_language || !reaches(p, ri, cats, n_cats))
            continue;
        char *source = omni_asprintf("classification rule %s's when, %s", c->name,
                                     cats_shown(cats, n_cats, cats_buf, sizeof cats_buf));
        for (size_t i = 0; i < c->when.n_language; i++)
            check_language(p, m, r, ri, c->when.language[i], source, warns);
        free(source);
    }
}

void policy_warnings(const policy_t *p, config_errors_t *warns)
{
    members_t *m = members_new(p);
    for (size_t ri = 0; ri < p->n_routes; ri++)
        if (!p->routes[ri].record) /* gives work to nobody, on purpose */
            check_route(p, m, ri, warns);
    members_free(m, p->n_teams);
}
