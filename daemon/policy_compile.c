/* policy_compile: what can only be checked once the whole policy is read (names that must exist,
 * duplicates, the routing catch-all), and what is built once for every message to use (calendars,
 * skills, regexes, references between sections). Each error names FILE:LINE:COL of the entry at fault
 * (cfg_error_key). config.c's finalize calls it, even after the walk found errors, so that every error
 * comes out in one pass; the value-by-value checks happened earlier, in the walk. */
#include "policy.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config_schema.h"
#include "omni/util.h"

enum { MAX_CLASS_SKILLS = sizeof(((classification_t *)0)->skills) / sizeof(skill_t) };

/* Names may be NULL in a policy that failed its walk (a required name missing): such items match nothing. */
const calendar_cfg_t *policy_calendar(const policy_t *p, const char *name)
{
    for (size_t i = 0; name && i < p->n_calendars; i++)
        if (p->calendars[i].name && strcmp(p->calendars[i].name, name) == 0)
            return &p->calendars[i];
    return NULL;
}

const team_t *policy_team(const policy_t *p, const char *name)
{
    for (size_t i = 0; name && i < p->n_teams; i++)
        if (p->teams[i].name && strcmp(p->teams[i].name, name) == 0)
            return &p->teams[i];
    return NULL;
}

bool policy_has_category(const policy_t *p, const char *name)
{
    if (p->default_category && strcmp(p->default_category, name) == 0)
        return true;
    for (size_t i = 0; i < p->n_classify; i++)
        if (p->classify[i].category && strcmp(p->classify[i].category, name) == 0)
            return true;
    return false;
}

bool policy_speaks(char *const *langs, size_t n, const char *lang)
{
    if (!lang || !*lang || n == 0)
        return true;
    size_t primary = strcspn(lang, "-_");
    for (size_t i = 0; i < n; i++) {
        /* "pt" covers every Portuguese tag; "pt-BR" covers pt-BR and the tags that begin with it and a "-" */
        size_t len = strlen(langs[i]);
        if (len >= primary && strncasecmp(langs[i], lang, len) == 0 &&
            (lang[len] == '\0' || lang[len] == '-' || lang[len] == '_'))
            return true;
    }
    return false;
}

int policy_skill_level(const skill_t *skills, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(skills[i].name, name) == 0)
            return skills[i].level;
    return 0;
}

/* "unknown team \"x\"" with the closest name when it looks like a typo. names: count entries, each a
 * char * at name_off in elements of size bytes. */
static void unknown(config_errors_t *errs, const cfg_where_t *w, const char *key, const char *what,
                    const char *name, const void *arr, size_t count, size_t size, size_t name_off)
{
    const char **names = omni_calloc(count + 1, sizeof *names);
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if ((names[n] = *(char *const *)((const char *)arr + i * size + name_off)) != NULL)
            n++;
    const char *sugg = cfg_suggest(name, names, n);
    if (sugg)
        cfg_error_key(errs, w, key, "unknown %s \"%s\" (did you mean %s?)", what, name, sugg);
    else if (count == 0)
        cfg_error_key(errs, w, key, "unknown %s \"%s\" (no %ss are defined)", what, name, what);
    else
        cfg_error_key(errs, w, key, "unknown %s \"%s\"", what, name);
    free(names);
}

#define UNKNOWN_TEAM(w, key, nm) \
    unknown(errs, w, key, "team", nm, p->teams, p->n_teams, sizeof(team_t), offsetof(team_t, name))

typedef struct named {
    const char *name;
    size_t i;
} named_t;

static int by_name(const void *a, const void *b)
{
    const named_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->i < y->i ? -1 : x->i > y->i;
}

/* For each of n elements, the index of the first one with the same name (a char * at name_off; its own index
 * when no earlier element has it, or it has none). Sorting finds them in O(n log n): comparing each element
 * with every earlier one took 20 s for the 100000 agents the reference allows. Caller frees. */
static size_t *first_same(const void *arr, size_t n, size_t size, size_t name_off)
{
    size_t *first = omni_calloc(n + 1, sizeof *first);
    named_t *v = omni_calloc(n + 1, sizeof *v);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        first[i] = i;
        const char *name = *(char *const *)((const char *)arr + i * size + name_off);
        if (name)
            v[m++] = (named_t){ name, i };
    }
    qsort(v, m, sizeof *v, by_name);
    for (size_t k = 1; k < m; k++) /* sorted by name, then index: each run's first comes first */
        if (strcmp(v[k].name, v[k - 1].name) == 0)
            first[v[k].i] = first[v[k - 1].i];
    free(v);
    return first;
}

/* Reports element i when its name (a char * at name_off) repeats an earlier element's (first: first_same's).
 * Called as each item is compiled, so errors come in file order within a section. */
static void duplicate(config_errors_t *errs, const char *section, const char *field, const char *what,
                      const void *arr, const size_t *first, size_t i, size_t size, size_t name_off, size_t where_off)
{
    size_t j = first[i];
    if (j == i)
        return;
    const char *e = (const char *)arr + i * size, *name = *(char *const *)(e + name_off);
    const char *f = (const char *)arr + j * size;
    char *key = omni_asprintf("%s[%zu].%s", section, i, field), *fkey = omni_asprintf("%s[%zu].%s", section, j, field);
    cfg_where_t at = cfg_where_key(errs, (const cfg_where_t *)(f + where_off), fkey);
    cfg_error_key(errs, (const cfg_where_t *)(e + where_off), key, "%s \"%s\" is defined twice (first at line "
                 "%ld column %ld)", what, name, at.line, at.col);
    free(fkey);
    free(key);
}

/* first: first_same() of the section, computed before its loop */
#define DUPLICATE(section, what, arr, first, i, type, name) \
    duplicate(errs, section, #name, what, arr, first, i, sizeof(type), offsetof(type, name), offsetof(type, where))
#define FIRST_SAME(arr, n, type, name) first_same(arr, n, sizeof(type), offsetof(type, name))

/* Parses skill strings into a new array (*out, caller frees with free_skills). A skill named twice is an
 * error: two levels for one skill leave the reader guessing which counts. */
static void compile_skills(char **text, size_t n, skill_t **out, size_t *n_out, const cfg_where_t *w,
                           const char *key, config_errors_t *errs)
{
    char err[256];
    *out = n ? omni_calloc(n, sizeof **out) : NULL;
    *n_out = 0;
    for (size_t i = 0; i < n; i++) {
        skill_t s;
        if (*text[i] == '\0') /* refused in the walk (config_schema.h, CFG_STRLIST) */
            continue;
        char *k = omni_asprintf("%s.skills[%zu]", key, i);
        if (policy_skill_parse(text[i], &s, err, sizeof err) < 0) {
            cfg_error_key(errs, w, k, "%s", err); /* refused in the walk; kept for a hand-made policy */
        } else {
            bool twice = false;
            for (size_t j = 0; j < *n_out && !twice; j++)
                twice = strcmp((*out)[j].name, s.name) == 0;
            if (twice) {
                cfg_error_key(errs, w, k, "skill %s is listed twice", s.name);
                free(s.name);
            } else {
                (*out)[(*n_out)++] = s;
            }
        }
        free(k);
    }
}

static void free_skills(skill_t **s, size_t *n)
{
    for (size_t i = 0; *s && i < *n; i++)
        free((*s)[i].name);
    free(*s);
    *s = NULL;
    *n = 0;
}

static void compile_calendars(policy_t *p, config_errors_t *errs)
{
    char err[256];
    size_t *first = FIRST_SAME(p->calendars, p->n_calendars, calendar_cfg_t, name);
    for (size_t i = 0; i < p->n_calendars; i++) {
        calendar_cfg_t *c = &p->calendars[i];
        DUPLICATE("calendars", "calendar", p->calendars, first, i, calendar_cfg_t, name);
        char *key = omni_asprintf("calendars[%zu].timezone", i);
        if (c->timezone == NULL) /* refused in the walk: its hours cannot be checked without it */
            c->cal = NULL;
        else if ((c->cal = calendar_new(c->timezone, err, sizeof err)) == NULL)
            cfg_error_key(errs, &c->where, key, "%s", err);
        free(key);
        /* Hours and holidays were tried one by one in the walk; a failure here is the same error. */
        for (size_t j = 0; c->cal && j < c->n_hours; j++) {
            if (*c->hours[j] && calendar_parse_hours(c->cal, c->hours[j], err, sizeof err) < 0) {
                key = omni_asprintf("calendars[%zu].hours[%zu]", i, j);
                cfg_error_key(errs, &c->where, key, "%s", err);
                free(key);
            }
        }
        for (size_t j = 0; c->cal && j < c->n_holidays; j++) {
            if (*c->holidays[j] && calendar_add_holiday(c->cal, c->holidays[j], err, sizeof err) < 0) {
                key = omni_asprintf("calendars[%zu].holidays[%zu]", i, j);
                cfg_error_key(errs, &c->where, key, "%s", err);
                free(key);
            }
        }
    }
    free(first);
}

static void compile_teams(policy_t *p, config_errors_t *errs)
{
    size_t *first = FIRST_SAME(p->teams, p->n_teams, team_t, name);
    for (size_t i = 0; i < p->n_teams; i++) {
        team_t *t = &p->teams[i];
        DUPLICATE("teams", "team", p->teams, first, i, team_t, name);
        char *tkey = omni_asprintf("teams[%zu]", i);
        compile_skills(t->skills, t->n_skills, &t->skill, &t->n_skill, &t->where, tkey, errs);
        free(tkey);
        if (t->calendar && (t->cal = policy_calendar(p, t->calendar)) == NULL) {
            char *key = omni_asprintf("teams[%zu].calendar", i);
            unknown(errs, &t->where, key, "calendar", t->calendar, p->calendars, p->n_calendars,
                    sizeof(calendar_cfg_t), offsetof(calendar_cfg_t, name));
            free(key);
        }
        for (size_t j = 0; j < t->contract.n_categories; j++) {
            if (!*t->contract.categories[j] || policy_has_category(p, t->contract.categories[j]))
                continue;
            char *key = omni_asprintf("teams[%zu].contract.categories[%zu]", i, j);
            cfg_error_key(errs, &t->contract.where, key, "no classification rule sets the category \"%s\" (nor is "
                         "it classification.default_category)", t->contract.categories[j]);
            free(key);
        }
    }
    free(first);
}

static void compile_agents(policy_t *p, config_errors_t *errs)
{
    size_t *first = FIRST_SAME(p->agents, p->n_agents, agent_t, id);
    for (size_t i = 0; i < p->n_agents; i++) {
        agent_t *a = &p->agents[i];
        DUPLICATE("agents", "agent", p->agents, first, i, agent_t, id);
        char *key = omni_asprintf("agents[%zu]", i);
        for (size_t j = 0; j < a->n_teams; j++) {
            if (!*a->teams[j] || policy_team(p, a->teams[j]))
                continue;
            char *k = omni_asprintf("%s.teams[%zu]", key, j);
            UNKNOWN_TEAM(&a->where, k, a->teams[j]);
            free(k);
        }
        if (a->n_teams == 0 && !a->where.bad) /* the walk requires teams; kept for a hand-made policy */
            cfg_error_at(errs, &a->where, key, "agent %s is in no team, so no work can reach it", a->id);
        compile_skills(a->skills, a->n_skills, &a->skill, &a->n_skill, &a->where, key, errs);
        free(key);
    }
    free(first);
}

static void compile_classification(policy_t *p, config_errors_t *errs)
{
    const char *seen[MAX_CLASS_SKILLS];
    size_t n_seen = 0;
    size_t *first = FIRST_SAME(p->classify, p->n_classify, classify_rule_t, name);
    for (size_t i = 0; i < p->n_classify; i++) {
        classify_rule_t *r = &p->classify[i];
        DUPLICATE("classification.rules", "rule", p->classify, first, i, classify_rule_t, name);
        char *key = omni_asprintf("classification.rules[%zu]", i), *kw = omni_asprintf("%s.when", key);
        cond_compile(&r->when, p, kw, errs);
        compile_skills(r->skills, r->n_skills, &r->skill, &r->n_skill, &r->where, key, errs);
        /* classification_t holds a fixed number of skills: more distinct ones could be dropped silently. */
        for (size_t j = 0; j < r->n_skill; j++) {
            size_t k = 0;
            while (k < n_seen && strcmp(seen[k], r->skill[j].name) != 0)
                k++;
            if (k < n_seen)
                continue;
            if (n_seen == MAX_CLASS_SKILLS) {
                char *ks = omni_asprintf("%s.skills[%zu]", key, j);
                cfg_error_key(errs, &r->where, ks, "skill %s goes beyond the %d distinct skills classification rules "
                             "may ask for", r->skill[j].name, MAX_CLASS_SKILLS);
                free(ks);
                continue;
            }
            seen[n_seen++] = r->skill[j].name;
        }
        free(kw);
        free(key);
    }
    free(first);
}

static bool cond_empty(const cond_t *c)
{
    return !c->n_channel && !c->n_category && !c->n_priority && !c->n_tier && !c->n_language && !c->n_text &&
           !c->n_subject && !c->n_sender && !c->open_in && !c->closed_in && !c->local_time && !c->n_weekdays &&
           !c->n_any && !c->n_not;
}

/* A rule either routes what it matches (targets, maybe a queue) or records it as no work (record: true,
 * docs/routing.md): both at once, or neither, is a mistake, and so is recording all work (the catch-all). */
static void check_record(const route_rule_t *r, const char *key, bool catch_all, config_errors_t *errs)
{
    char *k = NULL;
    if (r->record && r->n_targets)
        cfg_error_key(errs, &r->where, k = omni_asprintf("%s.targets", key), "rule %s has record: true: what it "
                      "matches is stored resolved and goes to nobody; remove its targets, or remove record", r->name);
    else if (r->record && r->queue)
        cfg_error_key(errs, &r->where, k = omni_asprintf("%s.queue", key), "rule %s has record: true: nothing it "
                      "matches ever waits in a queue; remove queue", r->name);
    else if (r->record && catch_all)
        cfg_error_key(errs, &r->where, k = omni_asprintf("%s.record", key), "rule %s takes all work: the catch-all "
                      "must route it (targets), not record it", r->name);
    else if (!r->record && !r->n_targets)
        cfg_error_at(errs, &r->where, k = omni_asprintf("%s.targets", key), "required key missing (or record: true, "
                     "for a rule whose matches are not work)");
    free(k);
}

static void compile_routes(policy_t *p, config_errors_t *errs)
{
    const route_rule_t *catch_all = NULL;
    bool unsure = false; /* a rule with errors in its `when` may have been meant as the catch-all or not */
    size_t *first = FIRST_SAME(p->routes, p->n_routes, route_rule_t, name);
    for (size_t i = 0; i < p->n_routes; i++) {
        route_rule_t *r = &p->routes[i];
        DUPLICATE("routing.rules", "rule", p->routes, first, i, route_rule_t, name);
        char *key = omni_asprintf("routing.rules[%zu]", i), *k;
        /* A rule after the catch-all can never be used: surely not what the operator meant. A rule with no
         * `when` written is the catch-all even when its entry has other errors (its targets'): an error in one
         * entry hides none in the others. One whose `when` has errors may have been meant either way. */
        bool takes_all = cond_empty(&r->when) && (!r->where.bad || r->when.where.line == 0);
        if (catch_all && !r->where.bad)
            cfg_error_at(errs, &r->where, key, "rule %s is never used: rule %s before it has no `when` and takes "
                         "all work", r->name, catch_all->name);
        else if (!catch_all && takes_all)
            catch_all = r;
        else if (r->where.bad)
            unsure = true;
        k = omni_asprintf("%s.when", key);
        cond_compile(&r->when, p, k, errs);
        free(k);
        if (!r->where.bad)
            check_record(r, key, catch_all == r, errs);
        for (size_t j = 0; j < r->n_targets; j++) {
            route_target_t *t = &r->targets[j];
            if (t->team == NULL) /* missing: reported by the walk */
                continue;
            k = omni_asprintf("%s.targets[%zu].team", key, j);
            if ((t->t = policy_team(p, t->team)) == NULL)
                UNKNOWN_TEAM(&t->where, k, t->team);
            for (size_t m = 0; m < j; m++) {
                if (r->targets[m].team && strcmp(r->targets[m].team, t->team) == 0) {
                    cfg_error_key(errs, &t->where, k, "team %s is already targets[%zu] of this rule; to wait longer "
                                 "for it, raise that target's timeout", t->team, m);
                    break;
                }
            }
            free(k);
        }
        const char *q = r->queue ? r->queue : r->n_targets ? r->targets[0].team : NULL;
        if (q && (r->queue_team = policy_team(p, q)) == NULL && r->queue) {
            k = omni_asprintf("%s.queue", key);
            UNKNOWN_TEAM(&r->where, k, r->queue);
            free(k);
        }
        free(key);
    }
    /* Without any rule, new work joins conversations.default_queue as before. With rules, work that none
     * matches would have no team at all, which the promises forbid: a catch-all is required. */
    if (p->n_routes > 0 && catch_all == NULL && !unsure)
        cfg_error_at(errs, &p->routes[p->n_routes - 1].where, "routing.rules", "no rule takes all work: end the "
                     "list with a rule without `when` (a catch-all), so no conversation is left without a team");
    free(first);
}

static void compile_sla(policy_t *p, config_errors_t *errs)
{
    for (size_t i = 0; i < p->n_sla; i++) {
        sla_target_t *s = &p->sla[i];
        char *key = omni_asprintf("sla.targets[%zu]", i), *k = omni_asprintf("%s.when", key);
        cond_compile(&s->when, p, k, errs);
        free(k);
        if (s->calendar && (s->cal = policy_calendar(p, s->calendar)) == NULL) {
            k = omni_asprintf("%s.calendar", key);
            unknown(errs, &s->where, k, "calendar", s->calendar, p->calendars, p->n_calendars,
                    sizeof(calendar_cfg_t), offsetof(calendar_cfg_t, name));
            free(k);
        }
        free(key);
    }
}

int policy_compile(policy_t *p, config_errors_t *errs)
{
    size_t before = errs->n;
    policy_release(p); /* compiling twice (a hand-made policy, a test) starts afresh */
    compile_calendars(p, errs); /* first: teams, conditions and SLA targets point into them */
    compile_teams(p, errs);
    compile_agents(p, errs);
    compile_classification(p, errs);
    compile_routes(p, errs);
    compile_sla(p, errs);
    return errs->n == before ? 0 : -1;
}

void policy_release(policy_t *p)
{
    for (size_t i = 0; i < p->n_calendars; i++)
        calendar_destroy(&p->calendars[i].cal);
    for (size_t i = 0; i < p->n_teams; i++) {
        p->teams[i].cal = NULL;
        free_skills(&p->teams[i].skill, &p->teams[i].n_skill);
    }
    for (size_t i = 0; i < p->n_agents; i++)
        free_skills(&p->agents[i].skill, &p->agents[i].n_skill);
    for (size_t i = 0; i < p->n_classify; i++) {
        cond_release(&p->classify[i].when);
        free_skills(&p->classify[i].skill, &p->classify[i].n_skill);
    }
    for (size_t i = 0; i < p->n_routes; i++) {
        cond_release(&p->routes[i].when);
        p->routes[i].queue_team = NULL;
        for (size_t j = 0; j < p->routes[i].n_targets; j++)
            p->routes[i].targets[j].t = NULL;
    }
    for (size_t i = 0; i < p->n_sla; i++) {
        cond_release(&p->sla[i].when);
        p->sla[i].cal = NULL;
    }
}
