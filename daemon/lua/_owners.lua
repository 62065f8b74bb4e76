-- Owners, capacity, queues: the live half of routing. A plan (built in C by plan.c) lists each target
-- team with the agents that could take the work by skills, language and channel; these functions check
-- presence, load, contract caps, quotas, queue length and predicted wait, and commit one decision. Being
-- inside one script call is what keeps capacity from ever being exceeded, even with several routers.

local function agent_key(id) return K.agent(id) end

-- The ready index (docs/redis.md): per team and channel kind, a sorted set of the team's agents who are
-- available and below their capacity for that kind, scored in the team's serving order, so a decision takes
-- the first candidate instead of reading every agent of the team. Scores: least-loaded, load relative to the
-- kind's capacity (the position in the team's roster, a millionth each, breaks ties as the policy lists them);
-- round-robin, the roster position; longest-idle, when last assigned (x 2048, plus the position). Kept by
-- reindex() wherever an agent's presence or load changes (release, commit_assign, presence.lua) and rebuilt
-- whole by seed.lua. The agent hash holds what it needs: `caps` ("email=5 sms=3") and `rosters`
-- ("core:0:ll tier2:3:rr": team, position, strategy), written by seed.lua from the policy.
-- presence_changed: also keep the team's set of available agents (predicted wait counts them).
-- a: nil, or the agent's fields below as add_load() just wrote them, so that a change of load is one read and
-- one write of the agent's hash; a[6] is then the load of channel kind kind_known (the loads of any other
-- kinds its caps name are read here).
local function reindex(id, presence_changed, a, kind_known)
  local ak = agent_key(id)
  a = a or redis.call('HMGET', ak, 'presence', 'load', 'last_assigned_at', 'rosters', 'caps')
  if not a[4] then return end -- not in the policy: in no roster
  local avail = (a[1] or 'available') == 'available'
  local load, last = tonumber(a[2] or '0'), tonumber(a[3] or '0')
  local kinds, caps, loads, unknown = {}, {}, {}, {}
  for kind, cap in (a[5] or ''):gmatch('(%S+)=(%d+)') do
    kinds[#kinds + 1], caps[#caps + 1] = kind, tonumber(cap)
    if kind == kind_known then loads[#kinds] = a[6] else unknown[#unknown + 1] = #kinds end
  end
  if #unknown > 0 then
    local fields = {}
    for i, j in ipairs(unknown) do fields[i] = 'load:' .. kinds[j] end
    for i, v in ipairs(redis.call('HMGET', ak, unpack(fields))) do loads[unknown[i]] = v end
  end
  for team, pos, strategy in a[4]:gmatch('(%S+):(%d+):(%a+)') do
    pos = tonumber(pos)
    if presence_changed then
      redis.call(avail and 'SADD' or 'SREM', K.team_available(team), id)
    end
    for j, kind in ipairs(kinds) do
      local key, why_key = K.team_ready(team, kind), K.team_unready(team, kind)
      -- every index key is listed, so the next seed finds and drops it whatever its policy
      if presence_changed then redis.call('SADD', K.ready_keys(), key, why_key) end
      local kind_load = tonumber(loads[j] or '0')
      if avail and kind_load < caps[j] then
        local score
        if strategy == 'rr' then score = pos
        elseif strategy == 'li' then score = last * 2048 + math.min(pos, 2047)
        else score = load * 1000 / caps[j] + pos * 1e-6 end
        -- newly in the index: it was in the unready hash (an agent is in exactly one of the two)
        if redis.call('ZADD', key, score, id) == 1 then redis.call('HDEL', why_key, id) end
      else
        -- why it is out, as explain shows it, written where it leaves (one read for a refused target)
        redis.call('ZREM', key, id)
        redis.call('HSET', why_key, id, avail and ('at capacity (' .. kind_load .. '/' .. caps[j] .. ' ' .. kind .. ')')
                   or a[1])
      end
    end
  end
end

-- Adds delta to an agent's load (in all, and of channel kind ch) in one read and one write of its hash; with
-- now, an assignment: also counted in `assigned` and stamped `last_assigned_at`. Returns what reindex() needs
-- (its `a`: the same first five fields, as written, then the kind's load).
local function add_load(id, ch, delta, now)
  local ak = agent_key(id)
  local a = redis.call('HMGET', ak, 'presence', 'load', 'last_assigned_at', 'rosters', 'caps', 'load:' .. ch, 'assigned')
  a[2], a[6] = tonumber(a[2] or '0') + delta, tonumber(a[6] or '0') + delta
  if now then
    a[3] = now
    redis.call('HSET', ak, 'load:' .. ch, itoa(a[6]), 'load', itoa(a[2]), 'assigned', itoa(tonumber(a[7] or '0') + 1),
               'last_assigned_at', itoa(now))
  else
    redis.call('HSET', ak, 'load:' .. ch, itoa(a[6]), 'load', itoa(a[2]))
  end
  return a
end

-- Gives back what an owner held for a conversation (an offer holds capacity as accepted work does). Safe to
-- call when there is no owner. why: nil, or the reason the owner loses the work, told to it (work.revoked).
local function release(cv, why, now)
  local ck = K.conversation(cv)
  local owner, team, ch, channel = unpack(redis.call('HMGET', ck, 'owner', 'team', 'channel_kind', 'channel'))
  ch = ch or channel -- channel_kind is written only where it is not the channel itself (commit_assign)
  if owner and why then inbox(owner, 'work.revoked', cv, { reason = why }, now) end
  if owner then
    local kind, id = owner:match('^(%a+):(.+)$')
    if kind == 'agent' then
      ch = ch or 'other'
      redis.call('SREM', K.agent_conversations(id), cv)
      reindex(id, false, add_load(id, ch, -1), ch)
    end
    if team then redis.call('SREM', K.team_conversations(team), cv) end
    redis.call('INCR', K.drain_epoch()) -- capacity freed: the next drains look at their queues again
    redis.call('HSET', ck, 'previous_owner', owner)
    redis.call('HDEL', ck, 'owner', 'team', 'assigned_at', 'offered_at', 'offer_expires_at', 'accepted_at')
  end
  local qteam, qprio = unpack(redis.call('HMGET', ck, 'queued_on', 'queued_prio'))
  if qteam then
    redis.call('ZREM', K.team_queue(qteam, qprio), cv)
    redis.call('HDEL', K.team_queue_info(qteam), cv)
    redis.call('HDEL', ck, 'queued_on', 'queued_prio')
    redis.call('SREM', K.unservable(), cv)
  end
  redis.call('ZREM', K.timers(), cv)
end

local function queue_length(team)
  local n = 0
  for p = 1, 4 do n = n + redis.call('ZCARD', K.team_queue(team, p)) end
  return n
end

-- Triggers are leases. A trigger that comes due (a timer, an unrouted conversation, an agent offline past
-- its grace) is never removed by the scan that finds it (due.lua): the scan re-scores it so that it comes
-- due again `lease` later, and hands it to a router. Only the decision acting on it removes or re-sets it,
-- in the same script that commits that decision (assign.lua, drain.lua). A router killed in between, or a
-- decision that fails or comes back stale, leaves the trigger to be found again by any router.
local function claim(zset, member, due_again_at) redis.call('ZADD', zset, due_again_at, member) end

-- The next instant something must happen to a conversation: its target's timeout, its escalation, its
-- SLA due time. Kept in one sorted set the cron tick reads (due.lua).
-- f: the fields below when the caller knows them all (commit_assign of a decision), else read here.
local function schedule(cv, now, f)
  local ck = K.conversation(cv)
  f = f or redis.call('HMGET', ck, 'timeout_at', 'escalate_at', 'due', 'escalated', 'breached', 'first_response_at',
                      'status', 'valid_until', 'offer_expires_at', 'reroute_at')
  local next = nil
  local function consider(t) t = tonumber(t); if t and t > 0 and (not next or t < next) then next = t end end
  if f[7] == 'queued' then consider(f[8]) end -- its plan expires: a calendar opens or closes
  if f[7] == 'offered' then consider(f[9]) end -- the offer expires
  if f[7] == 'rerouting' then consider(f[10]) end -- re-routing was asked for (reroute() below)
  if not f[6] then
    consider(f[1])
    if not f[4] then consider(f[2]) end
    if not f[5] then consider(f[3]) end
  end
  if next then redis.call('ZADD', K.timers(), itoa(next), cv) else redis.call('ZREM', K.timers(), cv) end
end

-- The agents a target passed over: skipped[id] = why, and skipped[1..n] the ids in the order they were passed
-- over (the ready index's, then the roster's). For the decision record they are grouped by reason (most share
-- one: a full team is "at capacity (5/5 email)" each), as {{why, id, id...}, ...} in that order: nil for none.
-- omnictl explain and the API still show one line an agent.
local function skip(skipped, id, why)
  if not skipped[id] then skipped[#skipped + 1] = id end
  skipped[id] = why
end
local function by_reason(skipped)
  if #skipped == 0 then return nil end
  local groups, at = {}, {}
  for _, id in ipairs(skipped) do
    local why = skipped[id]
    local g = at[why]
    if not g then g = { why }; at[why] = g; groups[#groups + 1] = g end
    g[#g + 1] = id
  end
  return groups
end

-- Picks one of a target's agents, or nil: the first in the ready index, in the team's serving order, that
-- the plan lets take it (its `agents`, unless `everyone`) and that has not declined it; the customer's
-- previous owner (plan.prefer) first when it is ready. skipped gets the reason agents were passed over.
-- declined: the set of owners who declined this conversation ("agent:ID" = true); the second result is true
-- when one of them was passed over for it (then the target is not full for other work).
-- holder: nil, or the agent holding the work now, on a move that frees her capacity (an escalation): when
-- nobody in the index can take it, she keeps it if this conversation is all that puts her at capacity.
local READY_BATCH = 16 -- candidates read per call: the first is nearly always taken
local LIVE_REASONS = 10 -- agents whose live state a refused target records for explain (roster order)
local function pick_agent(t, plan, skipped, declined, holder)
  local ch, passed = plan.channel, false
  local key = K.team_ready(t.team, ch)
  local only = nil
  if not t.everyone then
    only = {}
    for _, id in ipairs(t.agents) do only[id] = true end
  end
  local function takes(id)
    if only and not only[id] then return false end
    if declined['agent:' .. id] then skip(skipped, id, 'declined this conversation'); passed = true; return false end
    return true
  end
  if plan.prefer and redis.call('ZSCORE', key, plan.prefer) and takes(plan.prefer) then return plan.prefer, passed end
  -- round-robin: the next after the last one chosen (by roster position), then from the start again
  local ranges
  if t.strategy == 'round-robin' then
    local rr = redis.call('HGET', K.team(t.team), 'rr') or '-1'
    ranges = { { '(' .. rr, '+inf' }, { '-inf', rr } }
  else
    ranges = { { '-inf', '+inf' } }
  end
  for _, r in ipairs(ranges) do
    local offset = 0
    while true do
      local ids = redis.call('ZRANGE', key, r[1], r[2], 'BYSCORE', 'LIMIT', offset, READY_BATCH)
      for _, id in ipairs(ids) do
        if id ~= plan.prefer and takes(id) then return id, passed end
      end
      if #ids < READY_BATCH then break end
      offset = offset + READY_BATCH
    end
  end
  -- The agent holding it, in this team too, out of the index only by the load this very move frees
  -- (docs/routing.md, SLA: "the owner's capacity is freed"): she keeps it rather than it waiting.
  if holder and (not only or only[holder]) and not declined['agent:' .. holder] then
    local why = redis.call('HGET', K.team_unready(t.team, ch), holder)
    local load, cap = (why or ''):match('^at capacity %((%d+)/(%d+) ')
    if load and tonumber(load) - 1 < tonumber(cap) then return holder, passed end
  end
  -- Nobody: the live reasons of the first few agents the plan allows, for explain, in one read of the
  -- team's unready hash (reindex() keeps it); an agent in neither has no capacity for the channel at all.
  local ids = {}
  local function list(id)
    if not skipped[id] then ids[#ids + 1] = id end
    return #ids >= LIVE_REASONS
  end
  if only then
    for _, id in ipairs(t.agents) do if list(id) then break end end
  else
    for id in (redis.call('HGET', K.team(t.team), 'roster') or ''):gmatch('%S+') do if list(id) then break end end
  end
  if #ids > 0 then
    local why = redis.call('HMGET', K.team_unready(t.team, ch), unpack(ids))
    for i, id in ipairs(ids) do skip(skipped, id, why[i] or ('no capacity for ' .. ch)) end
  end
  return nil, passed
end

-- What makes a target of a plan able or unable to take work, as a short string: the rule's target (team
-- and index: the same policy entry), the channel, and the agents the plan lists for it. Two plans whose
-- target has the same key meet the same live checks.
local function target_key(t, channel)
  if not t.key then
    t.key = t.team .. '|' .. t.i .. '|' .. channel .. '|' .. (t.everyone and '*' or redis.sha1hex(table.concat(t.agents, ',')))
  end
  return t.key
end

-- The first of the plan's targets that can take the work now: returns target, owner ("agent:ID" or
-- "team:NAME") or nil, and what was tried (for the decision record). Changes nothing.
-- waiting: the work is already waiting (a drain): a target's queue_below and wait_below decide whether new
-- work overflows past it, not whether waiting work is served, so they are not checked.
-- full: nil, or a table the caller keeps across calls in one script: targets found unable to take work
-- (taking capacity only ever makes that truer within one script), so a long queue costs little to scan.
-- Owners who declined the conversation (rejected it, let its offer expire) are never offered it again.
-- fresh: the conversation was never offered to anyone (nobody can have declined it: nothing to read).
-- holder: pick_agent()'s (nil but on an escalation of work an agent holds).
local function find_owner(plan, days, waiting, full, fresh, holder)
  local tried, declined = {}, {}
  if not fresh then
    for _, o in ipairs(redis.call('SMEMBERS', K.conversation_declined(plan.conv))) do declined[o] = true end
  end
  for _, t in ipairs(plan.targets) do
    local why, owner = nil, nil
    local day = (days and days[t.team]) or t.day
    -- Work the team holds already (an offer moving on to its next agent, an escalation back to it) adds nothing
    -- to what it holds at once, and work counted in its quota today is not counted again (commit_assign): for
    -- it, those two contract checks do not apply, and what was found for other work says nothing.
    -- (a fresh conversation was never given to anyone: neither, and nothing to read)
    local held = not fresh and t.max_concurrent > 0 and
                 redis.call('SISMEMBER', K.team_conversations(t.team), plan.conv) == 1
    local counted = not fresh and t.quota > 0 and
                    redis.call('HGET', K.conversation(plan.conv), 'quota:' .. t.team) == day
    local memo = full and not held and not counted and target_key(t, plan.channel)
    if memo and full[memo] then why = full[memo] end
    -- read only what this target's conditions use
    local qlen = (not why and not waiting and (t.queue_below > 0 or (t.wait_below > 0 and not t.team_level)))
                 and queue_length(t.team) or 0
    -- a team's load is what it holds (its conversations set): no counter of its own to keep in step
    local load = (not why and not held and t.max_concurrent > 0) and redis.call('SCARD', K.team_conversations(t.team)) or 0
    if not why and not waiting and t.queue_below > 0 and qlen >= t.queue_below then
      why = 'queue ' .. qlen .. ' >= ' .. t.queue_below
    end
    if not why and not waiting and t.wait_below > 0 and not t.team_level then
      local n = 0
      if t.everyone then n = redis.call('SCARD', K.team_available(t.team))
      elseif #t.agents > 0 then
        for _, m in ipairs(redis.call('SMISMEMBER', K.team_available(t.team), unpack(t.agents))) do n = n + m end
      end
      local wait = math.floor(qlen * t.handle_time / math.max(1, n))
      if wait >= t.wait_below then
        why = 'predicted wait ' .. math.floor(wait / 1000) .. ' s >= ' .. math.floor(t.wait_below / 1000) .. ' s'
      end
    end
    if not why and not held and t.max_concurrent > 0 and load >= t.max_concurrent then
      why = 'contract: ' .. load .. ' of ' .. t.max_concurrent .. ' concurrent'
    end
    if not why and not counted and t.quota > 0 and tonumber(redis.call('GET', K.team_quota(t.team, day)) or '0') >= t.quota then
      why = 'contract: daily quota ' .. t.quota .. ' reached'
    end
    local skipped, passed = {}, false
    if not why then
      if t.team_level then
        if declined['team:' .. t.team] then why, passed = 'declined this conversation', true
        else owner = 'team:' .. t.team end
      else
        local id
        id, passed = pick_agent(t, plan, skipped, declined, holder)
        if id then owner = 'agent:' .. id else why = 'no agent available with capacity' end
      end
    end
    if why and memo and not passed then full[memo] = why end
    tried[#tried + 1] = { team = t.team, target = t.i, skipped = why, agents_why = by_reason(skipped) }
    if owner then return t, owner, tried, day end
  end
  return nil, nil, tried, nil
end

-- Conversations opened in this call and decided at once (_assign.lua's opened): never listed in omni:unrouted,
-- so their decision has nothing to take off it.
local opened_unlisted = {}

-- The common end of every decision: kept for explain (the outcome's own fields in `extra`), timers set
-- again, no longer unrouted, and told to watchers.
-- timers: schedule()'s fields when the caller knows them (nil: read them).
local function decided(plan, tried, now, outcome, extra, timers, ...)
  -- the plan's trace without what the record says already (explain reads an absent planned_at as `at`)
  local trace = {}
  for key, v in pairs(plan.trace) do trace[key] = v end
  if trace.reason == plan.reason then trace.reason = nil end
  if trace.rule == plan.rule then trace.rule = nil end
  if trace.planned_at == now then trace.planned_at = nil end
  -- The trace's targets when they say no more than tried does (each tried, in order, nothing traced but its
  -- team and place: a routed message that overflows to the last target): ~80 bytes a record, which the
  -- readers put back (daemon/decision_record.c).
  local tg = trace.targets
  if type(tg) == 'table' and #tg > 0 and #tg == #tried then
    local same = true
    for i, x in ipairs(tg) do
      local keys = 0
      for _ in pairs(x) do keys = keys + 1 end
      if keys ~= 2 or x.team ~= tried[i].team or x.target ~= tried[i].target then same = false; break end
    end
    if same then trace.targets = nil end
  end
  local d = { at = now, reason = plan.reason, rule = plan.rule, outcome = outcome, tried = tried,
              plan = trace, category = plan.category, prio = plan.prio, tier = plan.tier }
  for key, v in pairs(extra) do d[key] = v end
  redis.call('RPUSH', K.conversation_decisions(plan.conv), cjson.encode(d))
  schedule(plan.conv, now, timers)
  if not opened_unlisted[plan.conv] then redis.call('ZREM', K.unrouted(), plan.conv) end
  event(outcome, 'conversation', plan.conv, 'reason', plan.reason, ...)
end

-- An assignment to an agent is an offer unless its team accepts automatically (docs/delivery.md): the
-- capacity is held while it is open, and the target's timeout starts when it is accepted (accept.lua).
-- known: nil, or what assign.lua read of the conversation (fresh: never routed nor owned, so there is nothing
-- to release nor timer fields to clear; channel; escalate_at, escalated, breached, first_response_at;
-- assignments), so it is not read again, and `set`, the decision's own fields, written in the same HSET.
local function commit_assign(plan, t, owner, tried, day, now, known)
  local cv = plan.conv
  local ck = K.conversation(cv)
  local before, before_status
  if not (known and known.fresh) then
    before, before_status = unpack(redis.call('HMGET', ck, 'owner', 'status'))
    release(cv, before ~= owner and plan.reason or nil, now)
  end
  local id = owner:match('^agent:(.+)$')
  -- Work its owner accepted, decided to that owner again (an escalation to a target the agent is in too), stays
  -- accepted: offering it anew would take back what the agent is working on.
  local offer = id ~= nil and not t.auto_accept and not (before == owner and before_status == 'assigned')
  if id then
    local a = add_load(id, plan.channel, 1, now)
    redis.call('SADD', K.agent_conversations(id), cv)
    -- round-robin goes on after this agent's roster position (its score in the index, before it changes)
    if t.strategy == 'round-robin' then
      local pos = redis.call('ZSCORE', K.team_ready(t.team, plan.channel), id)
      if pos then redis.call('HSET', K.team(t.team), 'rr', pos) end
    end
    reindex(id, false, a, plan.channel)
  end
  add_count(K.team(t.team), 'assigned', 1)
  redis.call('SADD', K.team_conversations(t.team), cv)
  local status = offer and 'offered' or 'assigned'
  local expires = offer and now + t.accept_timeout or nil
  local timeout_at = (not offer and t.timeout > 0) and now + t.timeout or nil
  local set = known and known.set or {}
  -- A daily quota counts conversations given to the team per its local day: each once, however often it moves
  -- inside the team or comes back to it that day (the conversation's quota:<team> says which day counted it).
  if t.quota > 0 and (known and known.fresh or redis.call('HGET', ck, 'quota:' .. t.team) ~= day) then
    local qk = K.team_quota(t.team, day)
    redis.call('INCR', qk)
    redis.call('EXPIRE', qk, 3 * 86400)
    set[#set + 1], set[#set + 2] = 'quota:' .. t.team, day
  end
  local channel = (known and known.channel) or redis.call('HGET', ck, 'channel')
  local now_s = itoa(now)
  for _, v in ipairs({ 'status', status, 'owner', owner, 'team', t.team, 'target', itoa(t.i), 'assigned_at', now_s,
                       'target_timeout', itoa(t.timeout) }) do
    set[#set + 1] = v
  end
  -- Left out when usual (the kind is the channel's own name), since this is written for every assignment; a
  -- conversation decided before loses what it had.
  local gone = {}
  if plan.channel ~= channel then set[#set + 1], set[#set + 2] = 'channel_kind', plan.channel
  else gone[#gone + 1] = 'channel_kind' end
  if known then set[#set + 1], set[#set + 2] = 'assignments', itoa(known.assignments + 1) end
  if offer then
    set[#set + 1], set[#set + 2], set[#set + 3], set[#set + 4] = 'offered_at', now_s, 'offer_expires_at', itoa(expires)
  else
    set[#set + 1], set[#set + 2] = 'accepted_at', now_s
  end
  if timeout_at then set[#set + 1], set[#set + 2] = 'timeout_at', itoa(timeout_at) end
  if not (known and known.fresh) then
    if not timeout_at then gone[#gone + 1] = 'timeout_at' end
    redis.call('HDEL', ck, 'valid_until', 'plan', unpack(gone))
  end
  redis.call('HSET', ck, unpack(set))
  if not known then redis.call('HINCRBY', ck, 'assignments', '1') end
  local data = { team = t.team, channel = channel, category = plan.category, prio = plan.prio, due = sla_at(plan.due) }
  local extra = { owner = owner }
  if offer then
    data.expires_at, extra.offer_expires_at = expires, expires
    inbox(owner, 'work.offered', cv, data, now)
  else
    inbox(owner, 'work.assigned', cv, data, now)
  end
  -- schedule()'s fields, all known here when assign.lua said what it read
  local timers = known and { timeout_at, known.escalate_at, plan.due, known.escalated, known.breached,
                             known.first_response_at, status, nil, expires, nil }
  decided(plan, tried, now, 'assigned', extra, timers, 'owner', owner, 'team', t.team, 'status', status)
  return { status, owner }
end

-- Asks the router for a new decision, from outside it (docs/delivery.md, "Re-routing requested from outside
-- the router"): the owner is released (told why), and due.lua hands the conversation out as an item of
-- kind `why` at once; transfer_to: the only team a transfer may go to (nil otherwise).
local function reroute(cv, why, transfer_to, now)
  local ck = K.conversation(cv)
  release(cv, why, now)
  redis.call('HINCRBY', ck, 'version', '1') -- a decision planned before this one is stale now
  redis.call('HSET', ck, 'status', 'rerouting', 'reroute', why, 'reroute_at', now)
  if transfer_to then redis.call('HSET', ck, 'transfer_to', transfer_to) else redis.call('HDEL', ck, 'transfer_to') end
  redis.call('HDEL', ck, 'timeout_at')
  redis.call('ZREM', K.unrouted(), cv)
  redis.call('ZADD', K.timers(), now, cv)
  event('reroute', 'conversation', cv, 'reason', why, 'to', transfer_to or '')
end

-- An offer past its offer_expires_at is no longer its agent's, though no tick has taken it back yet: the agent
-- may not act on it (respond, resolve) any more than accept it (docs/delivery.md, offers).
local function offer_lapsed(caller, status, expires, now)
  return caller:sub(1, 6) == 'agent:' and status == 'offered' and expires and tonumber(expires) <= now or false
end

-- The routers' clock in ms (Redis's time plus the test clock's offset, omnictl's settable clock), for the
-- scripts that get no now from their caller (view.lua, work.lua).
local function routers_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(redis.call('GET', K.clock_offset()) or '0')
end

-- Who may see a conversation (docs/delivery.md): caller "agent:ID" what it owns or is offered, "partner:TEAM"
-- what its team holds, "operator:NAME" everything. An error reply for a caller of another form.
local function may_see(script, caller, owner, team)
  local kind, who = caller:match('^(%a+):(.+)$')
  if kind == 'operator' then return true end
  if kind == 'agent' then return owner == caller end
  if kind == 'partner' then return team == who end
  error({ err = 'ERR ' .. script .. ': caller is not agent:ID, partner:TEAM or operator:NAME: ' .. caller:sub(1, 60) })
end

-- plan_json: the plan as the router sent it, kept for the drains that serve the work later (only waiting work
-- has one stored: an assignment drops it). set: nil, or fields and values of the decision to write with its own.
-- fresh: no decision was ever made on the conversation (assign.lua's known.fresh): nothing to release.
local function commit_queue(plan, tried, now, default_queue, plan_json, set, fresh)
  local cv = plan.conv
  local ck = K.conversation(cv)
  -- read before release() takes it off the list
  local listed = plan.unservable and not fresh and redis.call('SISMEMBER', K.unservable(), cv) == 1
  if not fresh then release(cv, plan.reason, now) end
  local team = plan.queue or default_queue
  -- No target of its rule can take it at any hour (plan.c says why): listed, and counted once per conversation.
  if plan.unservable then
    redis.call('SADD', K.unservable(), cv)
    if not listed then redis.call('HINCRBY', K.stats(), 'unservable', '1') end
  end
  set = set or {}
  for _, v in ipairs({ 'status', 'queued', 'queued_on', team, 'queued_prio', plan.prio, 'plan', plan_json }) do
    set[#set + 1] = v
  end
  -- The move it waits in (plan.c): where in its rule's targets it started and whom it left out (a timed-out
  -- agent), so that a re-plan or an escalation while it waits goes on with the same move (due.lua).
  local keep = {}
  if plan.from and plan.from > 0 then set[#set + 1], set[#set + 2] = 'queued_from', itoa(plan.from)
  else keep[#keep + 1] = 'queued_from' end
  if plan.exclude then set[#set + 1], set[#set + 2] = 'queued_exclude', plan.exclude
  else keep[#keep + 1] = 'queued_exclude' end
  redis.call('HSET', ck, unpack(set))
  redis.call('HSETNX', ck, 'queued_at', now)
  local queued_at = redis.call('HGET', ck, 'queued_at')
  -- Work without an SLA waits behind work with one, in the order it arrived (first queued, not re-queued by a
  -- re-plan or a move: docs/routing.md's serving order).
  local score = plan.due > 0 and plan.due or tonumber(queued_at) + 1e11
  redis.call('ZADD', K.team_queue(team, plan.prio), score, cv)
  -- What a drain reads of each waiting item, one hash per team so it is one read for many items: when it
  -- was queued (aging), until when its plan holds, and its targets' keys, to pass over the item without
  -- reading its plan when all of them are full (drain.lua).
  local info = { queued_at, plan.valid_until or -1 }
  for _, t in ipairs(plan.targets) do info[#info + 1] = target_key(t, plan.channel) end
  redis.call('HSET', K.team_queue_info(team), cv, table.concat(info, ' '))
  redis.call('HDEL', ck, 'timeout_at', 'target', unpack(keep))
  if plan.valid_until and plan.valid_until > 0 then redis.call('HSET', ck, 'valid_until', plan.valid_until)
  else redis.call('HDEL', ck, 'valid_until') end
  decided(plan, tried, now, 'queued', { queue = team }, nil, 'queue', team, 'prio', plan.prio)
  return { 'queued', team }
end
