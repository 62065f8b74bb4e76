-- Gauges for the router's /metrics, read every few seconds (daemon/metrics.c): per team what it holds, how
-- many it was given in all, its queue depth per priority level and when its longest-waiting item was
-- queued (ms; a queue of more than 100,000 is not scanned for it: -1), and the counters of `stats`.
-- Replies name/value pairs: "load|TEAM", "assigned|TEAM", "depth|TEAM|LEVEL", "oldest|TEAM", "stats|FIELD".
-- @args prefix:str ...teams:str
-- @reply each name:str value:str
local out = {}
local function put(name, v) out[#out + 1] = name; out[#out + 1] = tostring(v or 0) end
for _, team in ipairs(A.teams) do
  local h = redis.call('HMGET', K.team(team), 'load', 'assigned')
  put('load|' .. team, h[1])
  put('assigned|' .. team, h[2])
  for p = 1, 4 do put('depth|' .. team .. '|' .. p, redis.call('ZCARD', K.team_queue(team, p))) end
  local oldest = -1
  local info = K.team_queue_info(team)
  if redis.call('HLEN', info) <= 100000 then
    for _, v in ipairs(redis.call('HVALS', info)) do
      local at = tonumber(v:match('^(%S+)'))
      if at and (oldest < 0 or at < oldest) then oldest = at end
    end
  end
  put('oldest|' .. team, oldest)
end
local st = redis.call('HGETALL', K.stats())
for i = 1, #st - 1, 2 do put('stats|' .. st[i], st[i + 1]) end
return out
