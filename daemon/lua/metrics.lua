-- Gauges for the router's /metrics, read every few seconds (daemon/metrics.c): per team what it holds, how
-- many it was given in all, its queue depth per priority level and when its longest-waiting item was
-- queued (ms; a queue of more than 100,000 is not scanned for it: -1), and the counters of `stats`.
-- The lowest score among its waiting work (ms; -1: nothing waits): queues are scored by SLA due time, work
-- without one by when it was queued + 1e11 (the reader tells which). Per agent of the policy (the roster seed.lua wrote): what it holds,
-- how many it was given in all, whether it is available.
-- Per team and agent also the SLA report's running totals (_report.lua: its hash's report:<counter> fields).
-- Replies name/value pairs: "load|TEAM", "assigned|TEAM", "depth|TEAM|LEVEL", "oldest|TEAM", "due|TEAM",
-- "team_report|TEAM|COUNTER", "agent_load|ID", "agent_assigned|ID", "agent_available|ID",
-- "agent_report|ID|COUNTER", "stats|FIELD".
-- @args prefix:str ...teams:str
-- @reply each name:str value:str
-- the counters of _report.lua, as the team hash names its totals
local REPORT_FIELDS = {}
for _, c in ipairs({ 'responded', 'response_ms', 'met', 'breached', 'resolved', 'first_contact', 'csat', 'csat_sum',
                     'csat_satisfied', 'ces', 'ces_sum', 'nps', 'nps_promoters', 'nps_detractors' }) do
  REPORT_FIELDS[#REPORT_FIELDS + 1] = 'report:' .. c
end
local out = {}
local function put(name, v) out[#out + 1] = name; out[#out + 1] = tostring(v or 0) end
for _, team in ipairs(A.teams) do
  put('load|' .. team, redis.call('SCARD', K.team_conversations(team)))
  put('assigned|' .. team, redis.call('HGET', K.team(team), 'assigned'))
  local totals = redis.call('HMGET', K.team(team), unpack(REPORT_FIELDS))
  for i, f in ipairs(REPORT_FIELDS) do put('team_report|' .. team .. '|' .. f:sub(8), totals[i]) end
  local due = -1
  for p = 1, 4 do
    put('depth|' .. team .. '|' .. p, redis.call('ZCARD', K.team_queue(team, p)))
    local first = redis.call('ZRANGE', K.team_queue(team, p), 0, 0, 'WITHSCORES')
    local at = tonumber(first[2])
    if at and (due < 0 or at < due) then due = at end
  end
  local oldest = -1
  local info = K.team_queue_info(team)
  if redis.call('HLEN', info) <= 100000 then
    for _, v in ipairs(redis.call('HVALS', info)) do
      local at = tonumber(v:match('^(%S+)'))
      if at and (oldest < 0 or at < oldest) then oldest = at end
    end
  end
  put('oldest|' .. team, oldest)
  put('due|' .. team, due)
end
for _, id in ipairs(redis.call('SMEMBERS', K.roster())) do
  local a = redis.call('HMGET', K.agent(id), 'load', 'assigned', 'presence', unpack(REPORT_FIELDS))
  for i, f in ipairs(REPORT_FIELDS) do put('agent_report|' .. id .. '|' .. f:sub(8), a[3 + i]) end
  put('agent_load|' .. id, a[1])
  put('agent_assigned|' .. id, a[2])
  put('agent_available|' .. id, (a[3] or 'available') == 'available' and 1 or 0)
end
local st = redis.call('HGETALL', K.stats())
for i = 1, #st - 1, 2 do put('stats|' .. st[i], st[i + 1]) end
return out
