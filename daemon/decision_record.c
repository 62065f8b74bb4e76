/* The routing decision record's stored form and the one its readers see: decision_record.h. */
#include "decision_record.h"

void decision_record_complete(json_t *d)
{
    json_t *tried = json_object_get(d, "tried"), *plan = json_object_get(d, "plan");
    if (!json_is_array(tried) || !json_array_size(tried) || json_object_get(plan, "targets"))
        return;
    if (!json_is_object(plan)) { /* absent: a record with no trace but the targets */
        plan = json_object();
        json_object_set_new(d, "plan", plan);
    }
    json_t *targets = json_array(), *t;
    size_t i;
    json_array_foreach(tried, i, t)
        json_array_append_new(targets, json_pack("{s:O?, s:O?}", "team", json_object_get(t, "team"), "target",
                                                 json_object_get(t, "target")));
    json_object_set_new(plan, "targets", targets);
}
