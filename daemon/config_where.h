/* Where a configuration value came from, for errors found after the file was read (policy_compile's
 * cross-checks, config.c's finalize). Its own header so that policy.h can embed it without libyaml. */
#ifndef OMNI_DAEMON_CONFIG_WHERE_H
#define OMNI_DAEMON_CONFIG_WHERE_H

#include <stdbool.h>

typedef struct cfg_where {
    const char *file; /* borrowed: the config's source (router_config_t.source, freed by config_destroy),
                         or a static name ("command line"), so it stays valid as long as the config */
    long line, col;   /* 1-based; line 0: a default, not written in the file */
    bool bad;         /* the walk found an error inside this item: checks after the walk skip what would
                         only echo it (a rule whose `when` lost a key is no catch-all) */
} cfg_where_t;

#endif
