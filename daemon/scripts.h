/* The Lua scripts in daemon/lua/, embedded at build time by scripts/embed-lua. Each runs atomically in
 * Redis; together they are every change the router makes to durable state. */
#ifndef OMNI_DAEMON_SCRIPTS_H
#define OMNI_DAEMON_SCRIPTS_H

struct omni_lua_script {
    const char *name; /* file name without .lua: "ingest", "link", "unlink" */
    const char *body;
};

/* Terminated by { NULL, NULL }. */
extern const struct omni_lua_script omni_lua_scripts[];

#endif
