/* See api_metrics.h. Counters are fixed arrays (route x status code) behind one mutex: a request takes it once,
 * a scrape once, and nothing is allocated per request. */
#include "api_metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni/metrics.h"
#include "omni/util.h"

#define STATUS_MIN 100
#define STATUS_MAX 599

/* The route label, by api_route_t (request.h): a name per route, not per path, so ids never become labels. */
static const char *const route_names[ROUTE_COUNT] = {
    [ROUTE_NONE] = "none", [ROUTE_HEALTHZ] = "healthz", [ROUTE_ME] = "me", [ROUTE_PRESENCE] = "presence",
    [ROUTE_AGENT_PRESENCE] = "agent_presence", [ROUTE_WORK] = "work", [ROUTE_CONVERSATION] = "conversation",
    [ROUTE_ACCEPT] = "accept", [ROUTE_REJECT] = "reject", [ROUTE_RESPOND] = "respond", [ROUTE_RESOLVE] = "resolve",
    [ROUTE_TRANSFER] = "transfer", [ROUTE_SURVEY] = "survey", [ROUTE_EVENTS] = "events", [ROUTE_OVERVIEW] = "overview", [ROUTE_REPORT] = "report",
    [ROUTE_CONSOLE] = "console", [ROUTE_CONSOLE_ROOT] = "console",
};

static struct {
    pthread_mutex_t lock;
    uint64_t requests[ROUTE_COUNT][STATUS_MAX - STATUS_MIN + 1];
    int64_t streams;
    omni_histogram_t latency;
} stats = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct api_metrics_server {
    omni_metrics_server_t *server;
};

void api_metrics_request(api_route_t route, unsigned status, double seconds)
{
    if ((unsigned)route >= ROUTE_COUNT || status < STATUS_MIN || status > STATUS_MAX)
        return;
    pthread_mutex_lock(&stats.lock);
    stats.requests[route][status - STATUS_MIN]++;
    omni_histogram_observe(&stats.latency, seconds);
    pthread_mutex_unlock(&stats.lock);
}

void api_metrics_stream(int delta)
{
    pthread_mutex_lock(&stats.lock);
    stats.streams += delta;
    pthread_mutex_unlock(&stats.lock);
}

static void render(omni_metrics_t *out, void *data)
{
    (void)data;
    pthread_mutex_lock(&stats.lock);
    omni_metrics_family(out, "omnirouter_api_requests_total", "counter",
                        "Requests answered, by route and HTTP status (a route appears once it was asked for).");
    for (int r = 0; r < ROUTE_COUNT; r++)
        for (int st = 0; st <= STATUS_MAX - STATUS_MIN; st++)
            if (stats.requests[r][st]) {
                char code[16];
                snprintf(code, sizeof code, "%d", st + STATUS_MIN);
                omni_metrics_sample(out, "omnirouter_api_requests_total", (double)stats.requests[r][st], "route",
                                    route_names[r], "status", code, NULL);
            }
    omni_metrics_family(out, "omnirouter_api_event_streams", "gauge", "Event streams (GET /v1/events) open now.");
    omni_metrics_sample(out, "omnirouter_api_event_streams", (double)stats.streams, NULL);
    omni_metrics_histogram(out, "omnirouter_api_request_duration_seconds",
                           "From a request's headers to its answer queued (an event stream: to its start).",
                           &stats.latency);
    pthread_mutex_unlock(&stats.lock);
}

api_metrics_server_t *api_metrics_server_new(const char *listen, char *err, size_t errsz)
{
    api_metrics_server_t *s = omni_calloc(1, sizeof *s);
    s->server = omni_metrics_server_new(listen, render, NULL, err, errsz);
    if (!s->server) {
        free(s);
        return NULL;
    }
    return s;
}

int api_metrics_server_fd(const api_metrics_server_t *s) { return omni_metrics_server_fd(s->server); }
void api_metrics_server_run(api_metrics_server_t *s) { omni_metrics_server_run(s->server); }

void api_metrics_server_destroy(api_metrics_server_t **s)
{
    if (!s || !*s)
        return;
    omni_metrics_server_destroy(&(*s)->server);
    free(*s);
    *s = NULL;
}
