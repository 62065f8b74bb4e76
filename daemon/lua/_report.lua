-- Uses _time.lua: a script that needs this one names _time before it ("-- needs: ... _time _report").
-- The SLA report (docs/routing.md "SLA reports", omnictl report): per UTC day of the routers' clock, team and
-- channel, what happened to first responses and resolutions, counted by the scripts that make it happen
-- (respond.lua, due.lua, resolve.lua) in the same call, so the report is exact the moment the call returns.
-- One hash a day, omni:report:<YYYY-MM-DD>, field <team>|<channel>|<counter> ("-" for no team); kept
-- REPORT_KEEP_S after its last new field.
local REPORT_KEEP_S = '34560000' -- 400 days: a year's report, and the same weeks of the year before

-- Adds n to counter for the conversation's team and channel (nil: "-") on the UTC day of now (ms). More
-- counter, n pairs may follow. A team's running totals (its hash's report:<counter> fields, never reset) are
-- counted with them, for /metrics (metrics.lua): a scrape reads one hash a team, not a year of days.
local function report(now, team, channel, ...)
  local key, prefix = K.report(utc_day(now)), (team or '-') .. '|' .. (channel or '-') .. '|'
  for i = 1, select('#', ...), 2 do
    local counter, n = select(i, ...)
    -- a new field (its count is what was added): the day's hash lives on from now
    if redis.call('HINCRBY', key, prefix .. counter, n) == n then redis.call('EXPIRE', key, REPORT_KEEP_S) end
    if team then redis.call('HINCRBY', K.team(team), 'report:' .. counter, n) end
  end
end

-- The same counters' running totals for the agent holding the conversation (owner "agent:ID"; a team, or
-- nil: none), in its hash's report:<counter> fields, for /metrics: the agent's own first responses, SLA,
-- resolutions and surveys. counter, n pairs as report's.
local function agent_report(owner, ...)
  if not owner or owner:sub(1, 6) ~= 'agent:' then return end
  local key = K.agent(owner:sub(7))
  for i = 1, select('#', ...), 2 do
    local counter, n = select(i, ...)
    redis.call('HINCRBY', key, 'report:' .. counter, n)
  end
end
