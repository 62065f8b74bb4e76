-- needs: _mask _inbox _owners _plan
-- Assigns the waiting work of the teams named (team: one name, or several separated by spaces: the router
-- names them all, so work waiting in two queues that one freed place could serve is served in one order) as
-- capacity allows, in the documented serving order (docs/routing.md): effective priority (a waiting item gains
-- one level per aging period), then SLA due time, then arrival.
-- An item nobody can take now stays where it is (no decision recorded) and the next one is tried, so work
-- that cannot be served never hides work behind it that can; targets found full are remembered for the
-- rest of the call, which keeps a long queue cheap to scan. An item whose plan expired (a calendar opened
-- or closed since it was made) is left to its re-plan (due.lua): a drain never assigns by a stale plan.
-- scan: items looked at per priority level; aging_ms: 0 for none; days: as assign.lua's; force: drain even
-- when no capacity was freed since this team's last drain (a day's quota starts, a periodic check).
-- Returns the conversations it assigned.
-- @args prefix:str team:str now:int scan:int aging_ms:int days:json force:bool
-- @reply each conversation:str
local now, max, aging, days = A.now, A.scan, A.aging_ms, A.days
local epoch = redis.call('GET', K.drain_epoch()) or '0'

local items, full = {}, {}
for team in A.team:gmatch('%S+') do
  -- Nothing freed since this team's last drain (no resolution, move or agent back): nothing new can be taken.
  if A.force or redis.call('HGET', K.team(team), 'drained') ~= epoch then
    redis.call('HSET', K.team(team), 'drained', epoch)
    for p = 1, 4 do
      local r = redis.call('ZRANGE', K.team_queue(team, p), 0, max - 1, 'WITHSCORES')
      local ids = {}
      for i = 1, #r, 2 do ids[#ids + 1] = r[i] end
      local info = #ids > 0 and redis.call('HMGET', K.team_queue_info(team), unpack(ids)) or {}
      for j, cv in ipairs(ids) do
        -- "queued_at valid_until key key ...", or nothing for an item queued by an older version
        local queued_at, valid, needs = (info[j] or ''):match('^(%S+) (%S+) ?(.*)$')
        queued_at, valid = tonumber(queued_at) or now, tonumber(valid) or -1
        if not (valid > 0 and now >= valid) then
          local eff = p
          if aging > 0 then eff = math.max(1, p - math.floor((now - queued_at) / aging)) end
          items[#items + 1] = { cv = cv, eff = eff, score = tonumber(r[2 * j]), at = queued_at,
                                n = tonumber(cv) or 0, needs = info[j] and needs }
        end
      end
    end
  end
end
table.sort(items, function(a, b)
  if a.eff ~= b.eff then return a.eff < b.eff end
  if a.score ~= b.score then return a.score < b.score end
  if a.at ~= b.at then return a.at < b.at end
  return a.n < b.n
end)
-- True when every target the item's plan names is known to be full in this call.
local function blocked(needs)
  if not needs then return false end
  for key in needs:gmatch('%S+') do if not full[key] then return false end end
  return true
end

local assigned = {}
batched(function() -- the teams' counters written once (_common.lua)
  for _, it in ipairs(items) do
    local cv = it.cv
    local raw = not blocked(it.needs) and redis.call('HGET', K.conversation(cv), 'plan')
    if raw then
      local plan = cjson.decode(raw)
      check_plan('drain', plan)
      plan.now, plan.reason = now, 'capacity freed'
      -- the conversation's own due time and priority: a breach or an escalation since the plan was made made it
      -- more urgent, never less (its decision records the priority it is served at)
      local due, prio = unpack(redis.call('HMGET', K.conversation(cv), 'due', 'prio'))
      plan.due = tonumber(due or '-1')
      if tonumber(prio) and tonumber(prio) < plan.prio then plan.prio = tonumber(prio) end
      local t, owner, tried, day = find_owner(plan, days, true, full)
      if owner then
        redis.call('HINCRBY', K.conversation(cv), 'version', '1')
        commit_assign(plan, t, owner, tried, day, now)
        assigned[#assigned + 1] = cv
      end
    end
  end
end)
return assigned
