/* Fuzz target: the router's YAML config, policy included (daemon/config*.c, policy_config.c and
 * policy_compile.c), read from memory with config_load_text. Beyond not crashing: a refused config has
 * at least one error line, each naming the file. */
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "omni/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet++)
        omni_log_set_level(OMNI_LOG_FATAL);
    config_errors_t errs;
    router_config_t *cfg = config_load_text("fuzz.yaml", (const char *)data, size, &errs);
    if (cfg == NULL && errs.n == 0)
        omni_panic("fuzz: config refused without an error");
    for (size_t i = 0; i < errs.n; i++)
        if (strncmp(errs.lines[i], "fuzz.yaml", 9) != 0 && strncmp(errs.lines[i], "default", 7) != 0)
            omni_panic("fuzz: error not naming the file: %s", errs.lines[i]);
    config_errors_free(&errs);
    config_destroy(&cfg);
    return 0;
}
