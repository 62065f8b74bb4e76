-- One routing decision on a plan from plan.c, as assign.lua makes it for each plan it is sent and ingest.lua
-- for a new customer's first conversation (the scripts that use it also need _mask _inbox _owners _plan
-- _resolved, in that order, before it). The plan carries the conversation's version as the router read it: if
-- another router changed the conversation since, nothing is done ("stale"), so two routers never assign it twice.
-- One plan's decision: its reply record { outcome, detail } (assign.lua's @reply). script: whose error
-- a bad plan is; days: {team: "YYYY-MM-DD"} for quotas; default_queue: where work no rule queues waits.
-- conv: nil, or the conversation the plan is for when the router could not know it yet (ingest.lua routes a
-- new customer's first conversation in the call that opens it: the plan then came with conv "").
-- opened: nil, or the fields of a conversation opened in this call whose hash is not written yet
-- (open_conversation's defer): they are written with the decision's own, one write instead of two. The
-- caller writes them itself when this returns 'stale' or 'gone' or fails: nothing was written then.
local function decide_plan(script, plan_json, days, default_queue, conv, opened)
  local ok, plan = pcall(cjson.decode, plan_json)
  if not ok then error({ err = 'ERR ' .. script .. ': a plan is not JSON: ' .. plan_json:sub(1, 40) }) end
  if conv then plan.conv = conv end
  check_plan(script, plan)
  -- what is kept for the drains that serve waiting work later: the plan as decided, conversation included
  if conv then plan_json = nil end
  local cv, now = plan.conv, plan.now
  local ck = K.conversation(cv)
  -- Everything this decision reads of the conversation, in one call (this runs for every routed message).
  local st
  if opened then -- what the read would find: opened, never decided (by name, not by open_conversation's order)
    opened_unlisted[cv] = true
    local f = {}
    for i = 1, #opened, 2 do f[opened[i]] = opened[i + 1] end
    st = { f.status }
    st[3], st[14] = f.queue, f.channel
  else
    st = redis.call('HMGET', ck, 'status', 'version', 'queue', 'owner', 'prio', 'breached', 'due', 'escalate_at',
                    'reroute', 'reroute_at', 'transfer_to', 'escalated', 'first_response_at', 'channel', 'assignments',
                    'transferred_to')
  end
  if not st[1] then redis.call('ZREM', K.unrouted(), cv); return { 'gone', 'missing' } end
  if st[1] == 'merged' or st[1] == 'resolved' then
    redis.call('ZREM', K.unrouted(), cv)
    return { 'gone', st[1] }
  end
  if (st[2] or '0') ~= plan.version then return { 'stale', st[2] or '0' } end
  -- Not work (a rule with record: true, docs/routing.md): stored resolved at once, in the customer's history, with
  -- its decision; nobody is offered it and nothing waits. Unless more than its first message joined it before this
  -- decision: then it is work after all, routed by the plan's rule like any other.
  if plan.record then
    local n = redis.call('LLEN', K.conversation_messages(cv))
    if n <= 1 then
      if opened then redis.call('HSET', ck, unpack(opened)) end
      local who = 'policy:' .. plan.record
      plan.rule = plan.record
      release(cv, plan.reason, now)
      mark_resolved(cv, { customer = redis.call('HGET', ck, 'customer'), queue = st[3], owner = st[4] }, who, now)
      redis.call('HSET', ck, 'category', plan.category, 'prio', plan.prio, 'tier', plan.tier, 'rule', plan.rule)
      redis.call('HINCRBY', K.stats(), 'recorded', '1')
      decided(plan, {}, now, 'recorded', { resolved_by = who }, {}, 'rule', plan.rule)
      return { 'recorded', plan.rule }
    end
    plan.trace.not_recorded = n -- for explain
  end
  -- An offer nobody accepted in time: its agent is never offered this conversation again (docs/delivery.md).
  local owner = st[4]
  if plan.reason == 'offer expired' and st[1] == 'offered' and owner then
    redis.call('SADD', K.conversation_declined(cv), owner)
    local agent = owner:match('^agent:(.+)$')
    if agent then redis.call('HINCRBY', K.agent(agent), 'offers_expired', '1') end
    redis.call('HINCRBY', K.stats(), 'offers_expired', '1')
  end
  -- A re-routing asked for from outside the router (reroute() in _owners.lua) is answered by this decision.
  if st[9] or st[10] or st[11] then redis.call('HDEL', ck, 'reroute', 'transfer_to', 'reroute_at') end
  -- The team a transfer gave it to (plan.transfer): kept while that team holds it or it waits in that team's
  -- queue, so that due.lua hands its later moves out for that team again (docs/routing.md, Offers); a plan made
  -- otherwise (the team left the policy, a conversation reopened and routed as new) ends it.
  if st[16] and not plan.transfer then redis.call('HDEL', ck, 'transferred_to') end
  -- The trigger this decision acts on is spent here, when the decision commits (due.lua only leased it).
  local escalated = st[12]
  if plan.reason == 'escalation' and not escalated then
    escalated = '1'
    redis.call('HSET', ck, 'escalated', 1)
    redis.call('HINCRBY', K.stats(), 'sla_escalated', '1')
  end
  -- A new plan never makes work less urgent than escalation and breach made it.
  if st[6] then plan.prio = 1
  elseif plan.reason ~= 'new' and tonumber(st[5]) and tonumber(st[5]) < plan.prio then plan.prio = tonumber(st[5]) end
  if st[3] then redis.call('ZREM', K.queue(st[3]), cv) end -- off the arrival queue: routing owns it now
  -- What the decision sets of the conversation, written by the commit in its own one write (set: a list of
  -- fields and values); the SLA clock starts once, when it is first routed.
  local set = { 'version', itoa(tonumber(st[2] or '0') + 1), 'category', plan.category, 'prio', itoa(plan.prio),
                'tier', plan.tier }
  if opened then -- its status is the decision's
    for i = 1, #opened, 2 do
      if opened[i] ~= 'status' then set[#set + 1], set[#set + 2] = opened[i], opened[i + 1] end
    end
  end
  if plan.rule then set[#set + 1], set[#set + 2] = 'rule', plan.rule end
  if plan.transfer and plan.transfer ~= st[16] then set[#set + 1], set[#set + 2] = 'transferred_to', plan.transfer end
  if not st[7] then set[#set + 1], set[#set + 2] = 'due', itoa(plan.due) end
  if not st[8] then set[#set + 1], set[#set + 2] = 'escalate_at', itoa(plan.escalate_at) end
  plan.due = tonumber(st[7]) or plan.due
  -- what commit_assign needs to know and would otherwise read again (its schedule() and the inbox event).
  -- fresh: no decision was ever made on it (open, no version yet), so nothing to release, nobody declined it, no
  -- plan or timer fields (a conversation an unlink reopened has a version: it is not fresh).
  local known = { fresh = st[1] == 'open' and not owner and not st[2], channel = st[14], escalate_at = tonumber(st[8]) or plan.escalate_at,
                  escalated = escalated, breached = st[6], first_response_at = st[13], set = set,
                  assignments = tonumber(st[15] or '0') }
  -- A re-plan (a calendar opened or closed) only renews the plan of work already waiting: which of the waiting
  -- work is served first is the drain's to decide, in the serving order, not the order re-plans come in.
  if plan.reason == 'replan' then
    redis.call('INCR', K.drain_epoch())
    return commit_queue(plan, {}, now, default_queue, plan_json or cjson.encode(plan), set, known.fresh)
  end
  -- An escalation or a timeout frees its owner's capacity (docs/routing.md): an agent the plan still lets take
  -- it (in the next target too, or back on the rule's queue team past its last target, nobody left out) may
  -- keep it. A timeout to a next target leaves her out of the plan, so there she cannot.
  local holder = (plan.reason == 'escalation' or plan.reason == 'timeout') and (st[1] == 'assigned' or st[1] == 'offered')
                 and owner and owner:match('^agent:(.+)$') or nil
  local t, owner, tried, day = find_owner(plan, days, false, nil, known.fresh, holder)
  if not owner then
    -- Every target a team that declined it (a partner that rejected it): nobody will ever take it, which
    -- plan.c cannot know (declines are here, not in the policy). Flagged as any other unservable work.
    local declined = #tried > 0 and not plan.unservable
    for _, x in ipairs(tried) do declined = declined and x.skipped == 'declined this conversation' end
    if declined then plan.unservable, plan_json = 'every target declined this conversation', nil end
    return commit_queue(plan, tried, now, default_queue, plan_json or cjson.encode(plan), set, known.fresh)
  end
  local r = commit_assign(plan, t, owner, tried, day, now, known)
  if plan.reason == 'escalation' then inbox(owner, 'work.escalated', cv, { prio = plan.prio }, now) end
  return r
end

