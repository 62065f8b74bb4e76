/* GET /v1/events: the caller's inbox as Server-Sent Events (docs/delivery.md "The inbox", docs/api.md). */
#ifndef OMNI_API_EVENTS_H
#define OMNI_API_EVENTS_H

#include <microhttpd.h>
#include <stdbool.h>

#include "api.h"

/* Makes the streaming response for req (authenticated; last_event_id: the Last-Event-ID header or NULL).
 * Returns it (the caller queues and destroys it), or NULL with the answer (400, 503) set on req. */
struct MHD_Response *api_events_response(api_req_t *req, const char *last_event_id);

/* Set once at shutdown: every stream ends within one wait (at most a second). */
void api_events_stop(void);

#endif
