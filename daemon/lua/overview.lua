-- The supervisor's overview (omni-api's GET /v1/overview, docs/api.md), beside the gauges metrics.lua reads
-- for the same teams: reads only. query: {"teams": [names], "agents": [ids], "days": {team: local day}} from
-- the router's policy (the day keys of partners with a daily quota, as plan.c names them). Replies one JSON
-- object: per team the waiting work whose SLA falls due within risk_ms ("at_risk") or has passed
-- ("overdue"); per agent its presence and load; per partner with a quota its assignments that day; per
-- channel the messages stored in each of the last 60 minutes, oldest first (omni:volume:<minute>, written by
-- ingest.lua); and the newest routing decision of the last `recent` conversations decided, read where
-- `omnictl explain` reads them (omni:conversation:<n>:decisions), newest first.
-- @args prefix:str now:int risk_ms:int recent:int query:json
-- @reply one overview:str
local now, q = A.now, A.query
local out = { teams = {}, agents = {}, quota = {}, volume = {}, decisions = {} }
for _, team in ipairs(q.teams or {}) do
  local risk, overdue = 0, 0
  for p = 1, 4 do
    local k = K.team_queue(team, p)
    overdue = overdue + redis.call('ZCOUNT', k, '-inf', now)
    risk = risk + redis.call('ZCOUNT', k, '(' .. now, now + A.risk_ms)
  end
  out.teams[team] = { at_risk = risk, overdue = overdue }
end
for _, id in ipairs(q.agents or {}) do
  local h = redis.call('HMGET', K.agent(id), 'presence', 'load', 'offline_since')
  out.agents[id] = { presence = h[1] or 'available', load = tonumber(h[2] or '0'),
                     offline_since = tonumber(h[3] or '0') }
end
for team, day in pairs(q.days or {}) do
  out.quota[team] = tonumber(redis.call('GET', K.team_quota(team, day)) or '0')
end
local first = math.floor(now / 60000) - 59
out.volume_since = first * 60000
for i = 0, 59 do
  local h = redis.call('HGETALL', K.volume(first + i))
  for j = 1, #h - 1, 2 do
    local ch = h[j]
    if not out.volume[ch] then
      out.volume[ch] = {}
      for k = 1, 60 do out.volume[ch][k] = 0 end
    end
    out.volume[ch][i + 1] = tonumber(h[j + 1])
  end
end
-- the decisions: 'assigned' and 'queued' events are written by the same script as the decision they tell of
local seen, n = {}, 0
local entries = redis.call('XREVRANGE', K.events(), '+', '-', 'COUNT', 1000)
for _, e in ipairs(entries) do
  if n >= A.recent then break end
  local f, cv, kind = e[2], nil, nil
  for j = 1, #f - 1, 2 do
    if f[j] == 'type' then kind = f[j + 1] elseif f[j] == 'conversation' then cv = f[j + 1] end
  end
  if cv and (kind == 'assigned' or kind == 'queued') and not seen[cv] then
    seen[cv] = true
    local d = redis.call('LINDEX', K.conversation_decisions(cv), -1)
    if d then
      n = n + 1
      out.decisions[n] = { conversation = cv, decision = d }
    end
  end
end
return cjson.encode(out)
