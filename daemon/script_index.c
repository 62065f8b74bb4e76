/* The one lookup of an embedded script by name, for the router's store, omnictl and simulate. */
#include <string.h>

#include "omni/log.h"
#include "scripts.h"

size_t omni_lua_script_index(const char *name)
{
    for (size_t i = 0; i < omni_lua_script_count; i++)
        if (strcmp(omni_lua_scripts[i].name, name) == 0)
            return i;
    omni_panic("no embedded Lua script named %s (daemon/lua/%s.lua)", name, name);
}
