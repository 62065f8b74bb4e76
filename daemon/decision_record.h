/* A routing decision record as its readers see it (explain, the overview, the simulator's report, the archive).
 * The scripts store each record as JSON in omni:conversation:<n>:decisions (docs/redis.md); to keep a routed
 * message's writes short, a record leaves out the plan's trace of targets when it would say no more than
 * `tried` does (every target tried, in order, with nothing traced but its team and place). */
#ifndef OMNI_DECISION_RECORD_H
#define OMNI_DECISION_RECORD_H

#include <jansson.h>

/* Puts back, in place, what the stored record d (borrowed; anything but an object is left alone) left out:
 * plan.targets as [{team, target}] from tried. */
void decision_record_complete(json_t *d);

#endif
