/* A satisfaction survey's scores (docs/routing.md "Surveys"): the measures and their ranges, declared once for
 * omni-api (POST /v1/conversations/{id}/survey) and omnictl (conversation survey), which check a score before
 * survey.lua records it (the script checks again: it is the boundary Redis keeps). */
#ifndef OMNI_DAEMON_SURVEY_H
#define OMNI_DAEMON_SURVEY_H

#include <stddef.h>

enum { SURVEY_CSAT, SURVEY_CES, SURVEY_NPS, SURVEY_MEASURES };
/* each measure's name: as the API's body, omnictl's --NAME, the conversation's field and the report name it */
#define SURVEY_CSAT_NAME "csat"
#define SURVEY_CES_NAME "ces"
#define SURVEY_NPS_NAME "nps"

typedef struct survey_measure {
    const char *name; /* SURVEY_*_NAME */
    int min, max;
} survey_measure_t;
extern const survey_measure_t survey_measures[SURVEY_MEASURES];

/* A score as text (omnictl's argument): 1 or 2 digits within the measure's range. Returns it, or -1. */
int survey_score(int measure, const char *text);

#endif
