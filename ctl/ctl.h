/* omnictl's shared state: a blocking Redis connection (a command-line tool may wait) and the router's
 * configuration, read from the same file the router uses so both agree on Redis and the key prefix. */
#ifndef OMNI_CTL_H
#define OMNI_CTL_H

#include <hiredis/hiredis.h>
#include "config.h"
#include "scripts.h"

typedef struct ctl {
    router_config_t *cfg;
    redisContext *redis;
    const char *prefix;
} ctl_t;

/* Runs a command built like printf for hiredis, with the key prefix available as %s first argument is
 * up to the caller. Exits with a message on a connection error; returns the reply (caller frees). */
redisReply *ctl_cmd(ctl_t *c, const char *fmt, ...);
redisReply *ctl_cmd_argv(ctl_t *c, int argc, const char **argv);
/* Runs an embedded script by name with ARGV = prefix + args. Returns the reply (caller frees). */
/* Runs a script (scripts.h) with argv as its "@args" line declares them; argv[0], the key prefix, is filled
 * in here. Exits when Redis fails or the reply does not match the script's declaration. */
redisReply *ctl_script(ctl_t *c, int script, int argc, const char **argv);
/* Formats a ms-since-epoch string as RFC 3339 into buf; "-" when absent. */
const char *ctl_time(const char *ms, char *buf, size_t bufsz);
/* Normalizes a person's identity argument ("ann@example.com", "phone:+1 415...") or exits 2 saying why. */
void ctl_identity(ctl_t *c, const char *arg, char *out, size_t outsz);
/* An agent of the configuration's policy, or exits 2 naming the file: omnictl never writes state for a name
 * no router knows. */
void ctl_policy_agent(ctl_t *c, const char *id);
/* A partner (outsourced) team of the policy, or exits 2 saying why. */
void ctl_policy_partner(ctl_t *c, const char *team);
/* "90", "500ms", "30s", "15m", "2h", "1d" -> milliseconds; -1 when unreadable. */
long long ctl_duration(const char *text);
/* Who does it, for records: by when given, else the login behind sudo, else the user (borrowed). */
const char *ctl_actor(const char *by);
/* Exits 2, naming option, when value is not UTF-8 text without control characters. */
void ctl_check_text(const char *option, const char *value);
/* The routers' time (ms) as omnictl sees it: the wall clock plus the test clock's offset stored in Redis. */
int64_t ctl_now(ctl_t *c);
/* Field value of an HGETALL reply, or NULL. Borrowed from the reply. */
const char *ctl_field(const redisReply *hash, const char *field);

int ctl_customer(ctl_t *c, int argc, char **argv);
int ctl_conversation(ctl_t *c, int argc, char **argv);
int ctl_status(ctl_t *c);
int ctl_agent(ctl_t *c, int argc, char **argv);
int ctl_queue(ctl_t *c, int argc, char **argv);
int ctl_explain(ctl_t *c, const char *message_id);
int ctl_clock(ctl_t *c, int argc, char **argv);
int ctl_report(ctl_t *c, int argc, char **argv);
/* what: "respond" or "resolve"; by may be NULL (the login). */
int ctl_conversation_act(ctl_t *c, const char *what, const char *conv, const char *by);
/* conversation survey: argv[0] the conversation, then --csat/--ces/--nps/--by pairs. Returns the exit code. */
int ctl_conversation_survey(ctl_t *c, int argc, char **argv);
int ctl_watch(ctl_t *c);
/* omnictl reload (ctl/reload.c): SIGHUP to this machine's routers, then their answers; the exit status, or -1
 * for wrong arguments. */
int ctl_reload(ctl_t *c, int argc, char **argv);
/* 1: the router NAME (HOST:PID) runs on this machine; 0: it was of this machine and has stopped (its entry in
 * Redis outlives it by its TTL); -1: of another machine (reload.c). */
int ctl_router_here(const char *name, long pid);
/* omnictl webhooks enable TEAM: a partner endpoint disabled by a 410 is sent to again. */
int ctl_webhooks(ctl_t *c, int argc, char **argv);
/* omnictl token create SUBJECT | list | revoke ID (argv after "token"). Returns the exit status. */
int ctl_token(ctl_t *c, int argc, char **argv);
/* omnictl keygen NAME (argv[0] is "keygen"); needs no config. Returns the exit status. */
int ctl_keygen(int argc, char **argv);

#endif
