-- needs: _mask _inbox _owners _plan _resolved _assign
-- Routes conversations, each by a plan from plan.c (one JSON document an argument, decided in order, each as
-- its own unit; the router sends the plans it made in one turn of its loop together: a call costs Redis more
-- than a decision's own writes): the first target that can take it now gets it, else it waits in its rule's
-- queue. Used for new conversations (those ingest.lua did not route in the call that opened them) and for
-- moves (escalation, timeout, owner offline); each plan's decision is decide_plan() (_assign.lua).
-- days: {team: "YYYY-MM-DD"} for quotas. outcome/detail: assigned/owner (offered/owner: an offer, docs/delivery.md),
-- queued/team, recorded/rule (a rule with record: true: stored resolved, nobody's work), stale/version, gone/status
-- (gone/missing: no such conversation any more), one record a plan, in order. A plan that is not JSON or not
-- a plan (plan.c's bug) is an error reply: nothing of the call is written after it.
-- @args prefix:str default_queue:str days:json ...plans:str
-- @reply each outcome:str detail:str
local default_queue, days = A.default_queue, A.days

local out = {}
batched(function() -- the teams' counters written once (_common.lua)
  for _, plan_json in ipairs(A.plans) do
    local r = decide_plan('assign', plan_json, days, default_queue)
    out[#out + 1], out[#out + 2] = r[1], r[2]
  end
end)
return out
