-- needs: _mask _inbox _owners _plan
-- Routes one conversation by a plan from plan.c: the first target that can take it now gets it, else it
-- waits in its rule's queue. Used for new conversations and for moves (escalation, timeout, owner
-- offline). The plan carries the conversation's version as the router read it: if another router
-- changed the conversation since, nothing is done ("stale"), so two routers never assign it twice.
-- days: {team: "YYYY-MM-DD"} for quotas. outcome/detail: assigned/owner (offered/owner: an offer, docs/delivery.md),
-- queued/team, stale/version, gone/status
-- @args prefix:str plan:json default_queue:str days:json
-- @reply outcome:str detail:str
local plan, default_queue, days = A.plan, A.default_queue, A.days
check_plan('assign', plan)
local cv, now = plan.conv, plan.now
local ck = K.conversation(cv)
local st = redis.call('HMGET', ck, 'status', 'version', 'queue')
if not st[1] then return redis.error_reply('ERR no conversation ' .. cv) end
if st[1] == 'merged' or st[1] == 'resolved' then
  redis.call('ZREM', K.unrouted(), cv)
  return { 'gone', st[1] }
end
if (st[2] or '0') ~= plan.version then return { 'stale', st[2] or '0' } end
redis.call('HINCRBY', ck, 'version', 1)
-- An offer nobody accepted in time: its agent is never offered this conversation again (docs/delivery.md).
local owner = redis.call('HGET', ck, 'owner')
if plan.reason == 'offer expired' and st[1] == 'offered' and owner then
  redis.call('SADD', K.conversation_declined(cv), owner)
  local agent = owner:match('^agent:(.+)$')
  if agent then redis.call('HINCRBY', K.agent(agent), 'offers_expired', 1) end
  redis.call('HINCRBY', K.stats(), 'offers_expired', 1)
end
-- A re-routing asked for from outside the router (reroute() in _owners.lua) is answered by this decision.
redis.call('HDEL', ck, 'reroute', 'transfer_to', 'reroute_at')
-- The trigger this decision acts on is spent here, when the decision commits (due.lua only leased it).
if plan.reason == 'escalation' and redis.call('HSETNX', ck, 'escalated', 1) == 1 then
  redis.call('HINCRBY', K.stats(), 'sla_escalated', 1)
end
-- A new plan never makes work less urgent than escalation and breach made it.
local kept = redis.call('HMGET', ck, 'prio', 'breached')
if kept[2] then plan.prio = 1
elseif plan.reason ~= 'new' and tonumber(kept[1]) and tonumber(kept[1]) < plan.prio then plan.prio = tonumber(kept[1]) end
if st[3] then redis.call('ZREM', K.queue(st[3]), cv) end -- off the arrival queue: routing owns it now
redis.call('HSET', ck, 'category', plan.category, 'prio', plan.prio, 'tier', plan.tier)
if plan.rule then redis.call('HSET', ck, 'rule', plan.rule) end
-- the SLA clock starts once, when the conversation is first routed
redis.call('HSETNX', ck, 'due', plan.due)
redis.call('HSETNX', ck, 'escalate_at', plan.escalate_at)
plan.due = tonumber(redis.call('HGET', ck, 'due'))
-- A re-plan (a calendar opened or closed) only renews the plan of work already waiting: which of the waiting
-- work is served first is the drain's to decide, in the serving order, not the order re-plans come in.
if plan.reason == 'replan' then
  redis.call('INCR', K.drain_epoch())
  return commit_queue(plan, {}, now, default_queue, A.plan_json)
end
local t, owner, tried, day = find_owner(plan, days)
if not owner then return commit_queue(plan, tried, now, default_queue, A.plan_json) end
local r = commit_assign(plan, t, owner, tried, day, now)
if plan.reason == 'escalation' then inbox(owner, 'work.escalated', cv, { prio = plan.prio }, now) end
return r
