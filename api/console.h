/* The web console's files under /console/ (console.c) and the supervisor's overview (overview.c). */
#ifndef OMNI_API_CONSOLE_H
#define OMNI_API_CONSOLE_H

#include <microhttpd.h>

#include "api.h"

/* The Content-Type of a console file by its name's ending; NULL: a type the console does not serve. */
const char *api_console_type(const char *name);
/* The headers every console answer carries (Content-Security-Policy, nosniff, ...). */
void api_console_headers(struct MHD_Response *resp);
/* The file name (checked by api_console_name) of console.directory as a response (caller owns; MHD_destroy_response),
 * or NULL when there is no such regular file of a served type. */
struct MHD_Response *api_console_file(const api_config_t *cfg, const char *name);

/* overview.c: GET /v1/overview for an operator (the answer, or an error, set on req). */
void api_overview(api_req_t *req);

#endif
