/* omni-api's HTTP server: libmicrohttpd, one thread per connection (api.h says why). */
#ifndef OMNI_API_SERVER_H
#define OMNI_API_SERVER_H

#include "api_config.h"

typedef struct api_server api_server_t;

/* Starts listening on cfg->api.listen (cfg borrowed: it must outlive the server). Returns the server, or
 * NULL after logging why. */
api_server_t *api_server_start(const api_config_t *cfg);
/* The port it listens on (the one picked, for port 0). */
int api_server_port(const api_server_t *s);
/* Connections open now. */
int api_server_connections(const api_server_t *s);
/* Ends every event stream, finishes the requests in flight, closes; *s becomes NULL. */
void api_server_stop(api_server_t **s);

#endif
