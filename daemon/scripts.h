/* The Lua scripts in daemon/lua/, embedded at build time by scripts/embed-lua. Each runs atomically in
 * Redis; together they are every change the router makes to durable state. */
#ifndef OMNI_DAEMON_SCRIPTS_H
#define OMNI_DAEMON_SCRIPTS_H

#include <stddef.h>

/* The most scripts there may be: tables of script hashes are sized by it. The generated table asserts
 * at compile time that daemon/lua/ holds no more (raise it there if it fails). */
#define OMNI_LUA_SCRIPTS_MAX 32

struct omni_lua_script {
    const char *name; /* file name without .lua: "ingest", "link", "unlink" */
    const char *body;
};

/* omni_lua_script_count entries, then { NULL, NULL }. */
extern const struct omni_lua_script omni_lua_scripts[];
extern const size_t omni_lua_script_count;

/* The index of the script named name in omni_lua_scripts; a name that is not there is a programming
 * error (the names are fixed at build time): it panics naming it. */
size_t omni_lua_script_index(const char *name);

#endif
