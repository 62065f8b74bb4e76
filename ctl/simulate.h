/* omnictl simulate's state, shared by simulate.c (the replay) and simulate_report.c (input and report). */
#ifndef OMNI_CTL_SIMULATE_H
#define OMNI_CTL_SIMULATE_H

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "config.h"
#include "omni/identity.h"
#include "omni/message.h"
#include "scripts.h"

typedef struct sim_msg {
    omni_msg_t *msg; /* owned */
    char *json;      /* owned: the line as read */
    char identity[OMNI_IDENTITY_MAX];
    int64_t t;       /* received_at, the simulated arrival time */
    size_t line;
} sim_msg_t;

/* What the modelled people do, at a time (docs/routing.md "Simulate"): an owner's first response and its
 * resolution (only while the assignment that scheduled them holds), or an agent's presence from the input. */
enum sim_event_kind { SIM_RESPOND, SIM_RESOLVE, SIM_PRESENCE };
typedef struct sim_event {
    int64_t t;
    enum sim_event_kind kind;
    char conv[24];       /* respond, resolve */
    char owner[80];      /* respond, resolve: the owner it was assigned to */
    long long assignment; /* respond, resolve: the conversation's assignments count then */
    char agent[72];      /* presence */
    char status[12];     /* presence: available, away or offline */
} sim_event_t;

typedef struct sim_counter {
    char **names;
    long *counts;
    size_t n;
} sim_counter_t;

typedef struct sim {
    router_config_t *cfg; /* owned */
    const policy_t *p;
    int64_t clock;         /* the simulated time: the last instant stepped to */
    int64_t handle_ms;     /* --handle-time; 0: each team's handle_time */
    char *dir, *sock;      /* the scratch server's */
    pid_t redis_pid;
    redisContext *rc;
    sim_msg_t *msgs;
    size_t n_msgs, n_presence, invalid; /* invalid: bad input lines, messages or presence changes */
    int64_t until;                       /* the simulated clock's last instant (sim_report says it) */
    int64_t answer_ms;     /* --answer-after: the owner's first response comes this long after assignment */
    FILE *trace;           /* --trace: one JSON line per decision; NULL: none */
    sim_event_t *ev;       /* what the people do, to come, by time (file order for equal times) */
    size_t n_ev, cap_ev;
    sim_counter_t owners, teams, queue_peaks;
    int64_t *delays; /* first-response delays, ms */
    size_t n_delays, cap_delays;
    long conversations, folded, duplicates, resolved;
} sim_t;

int ctl_simulate(int argc, char **argv);
/* Reads and validates the JSON lines, messages and presence changes (bad lines reported as FILE:LINE: reason
 * and skipped), sorted by time. */
int sim_load(sim_t *s, const char *path);
/* Adds e (copied) to the events to come, after those of the same time. */
void sim_schedule(sim_t *s, const sim_event_t *e);
/* Runs a script on the scratch server with argv as its "@args" line declares them (argv[0], the prefix,
 * filled in here); exits on a scratch-server failure. The caller frees the reply. */
redisReply *sim_run(sim_t *s, int script, int argc, const char **argv);
/* Writes the newest decision recorded on conv as one --trace line (nothing without --trace). */
void sim_trace(sim_t *s, const char *conv);
void sim_count(sim_counter_t *c, const char *name, long add);
/* Keeps the larger of the stored and the given value. */
void sim_peak(sim_counter_t *c, const char *name, long value);
void sim_delay(sim_t *s, int64_t ms);
void sim_measure_queues(sim_t *s);
void sim_report(sim_t *s, FILE *out);
void sim_free(sim_t *s);
/* A command on the scratch server (printf-like, as redisCommand); exits on a connection error: the
 * scratch server holds nothing worth saving. The caller frees the reply. */
redisReply *sim_cmd(sim_t *s, const char *fmt, ...);

#endif
