/* A survey's measures (survey.h). */
#include "survey.h"

#include <string.h>

const survey_measure_t survey_measures[SURVEY_MEASURES] = {
    [SURVEY_CSAT] = { SURVEY_CSAT_NAME, 1, 5 },  /* customer satisfaction: 1 (very unsatisfied) .. 5 (very satisfied) */
    [SURVEY_CES] = { SURVEY_CES_NAME, 1, 7 },    /* customer effort: 1 (very difficult) .. 7 (very easy) */
    [SURVEY_NPS] = { SURVEY_NPS_NAME, 0, 10 },   /* net promoter: how likely to recommend, 0 .. 10 */
};

int survey_score(int measure, const char *text)
{
    size_t n = strlen(text);
    if (n == 0 || n > 2 || strspn(text, "0123456789") != n)
        return -1;
    int v = n == 1 ? text[0] - '0' : (text[0] - '0') * 10 + text[1] - '0';
    if ((n == 2 && text[0] == '0') || v < survey_measures[measure].min || v > survey_measures[measure].max)
        return -1;
    return v;
}
