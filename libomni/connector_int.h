/* Internal to the connector runtime: the runtime's state, shared by connector.c (life cycle and loop)
 * and connector_api.c (what the callbacks call). */
#ifndef OMNI_CONNECTOR_INT_H
#define OMNI_CONNECTOR_INT_H

#include <stdbool.h>
#include <stdint.h>
#include "connector_config.h"
#include "omni/connector.h"

struct omni_connector {
    const omni_connector_def_t *def;
    conn_config_t *cfg;
    omni_client_t *client;
    omni_limits_t limits;
    void *user;
    int sigfd, watch_fd;
    enum { PHASE_NEW, PHASE_OPEN, PHASE_FAILED } phase;
    bool ready, stopping, dirty, spool_full;
    bool pending;        /* the last poll() returned OMNI_POLL_PENDING: its answer is not in yet */
    int stop_status;
    int64_t next_poll;   /* monotonic ms */
    int backoff_ms;      /* pause after source errors; 0 while the source works */
    int64_t wd_every_ms, next_wd, next_status;
    char status[256], sent_status[512];
    omni_connector_stats_t st;
    struct omni_metrics_server *metrics; /* NULL without metrics_listen */
    size_t check_errors; /* errors def->check reported (omni_connector_check_error), printed as they came */
};

#endif
