/* The Lua scripts in daemon/lua/, embedded at build time by scripts/embed-lua with the contract each declares
 * once in its own file: the "-- @args" line (ARGV by name and type; the Lua side decodes by it) and the
 * "-- @reply" line (checked by lua_reply_check before any caller reads a reply). Each runs atomically in
 * Redis; together they are every change the router makes to durable state. */
#ifndef OMNI_DAEMON_SCRIPTS_H
#define OMNI_DAEMON_SCRIPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <hiredis/hiredis.h>
#include "lua_contract.h" /* generated: enum lua_script_id, NAME_ARG_X, NAME_NARGS, NAME_REPLY_X */

struct omni_lua_script {
    const char *name;  /* file name without .lua: "ingest", "link", "unlink" */
    const char *body;  /* the text Redis runs: preludes, argument decoding, the script */
    int nargs;         /* fixed arguments, the key prefix first */
    bool variadic;     /* a last "...name" argument takes any number more */
    const char *args;  /* the "@args" declaration */
    const char *reply; /* the "@reply" declaration */
};

extern const struct omni_lua_script omni_lua_scripts[LUA_NSCRIPTS];

/* Checks reply (borrowed) against the script's "@reply" declaration: an array of its fields in order (a
 * "?field" may be missing at the end), a flat array of whole records ("each"), or one value ("one");
 * "str" fields are bulk strings, "int" fields integers. An error reply is returned as it is for the caller
 * to read. Returns 0, or -1 with what is wrong in err. */
int lua_reply_check(const struct omni_lua_script *s, const redisReply *reply, char *err, size_t errsz);

/* Parses every reply declaration and computes every script's SHA-1 at once. After it, lua_reply_check and
 * lua_call only read shared state, so several threads may call them at once (omni-api calls it before its
 * threads start); without it they fill their caches on first use, for single-threaded callers. */
void lua_contract_init(void);

/* Runs a script synchronously on rc (omnictl, simulate) with argc arguments by its "@args" line (a wrong
 * count is a bug and panics). Returns the reply, checked as lua_reply_check does (an error reply as it
 * is), for the caller to free; NULL with err when the server failed or the reply does not match. */
redisReply *lua_call(redisContext *rc, int script, int argc, const char **argv, char *err, size_t errsz);

#endif
