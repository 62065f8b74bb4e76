-- needs: _owners
-- Assigns queued work of one team's queue as capacity allows: the most urgent first, where a waiting
-- item gains one priority level per aging period, then the earliest SLA due time. An item nobody can
-- take now stays where it is (no decision recorded) and the next one is tried.
-- ARGV: prefix, team, now, max items looked at, aging period ms (0: none), days JSON
-- Returns the conversations it assigned.
local team, now, max, aging = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local days = cjson.decode(ARGV[6])
local items = {}
for p = 1, 4 do
  local r = redis.call('ZRANGE', k('queue', team, 'p' .. p), 0, max - 1, 'WITHSCORES')
  for i = 1, #r, 2 do
    local cv = r[i]
    local queued_at = tonumber(redis.call('HGET', k('conversation', cv), 'queued_at') or now)
    local eff = p
    if aging > 0 then eff = math.max(1, p - math.floor((now - queued_at) / aging)) end
    items[#items + 1] = { cv = cv, eff = eff, score = tonumber(r[i + 1]) }
  end
end
table.sort(items, function(a, b)
  if a.eff ~= b.eff then return a.eff < b.eff end
  return a.score < b.score
end)
local assigned = {}
for i = 1, math.min(#items, max) do
  local cv = items[i].cv
  local raw = redis.call('HGET', k('conversation', cv), 'plan')
  if raw then
    local plan = cjson.decode(raw)
    plan.now, plan.reason = now, 'capacity freed'
    plan.due = tonumber(redis.call('HGET', k('conversation', cv), 'due') or '-1')
    local t, owner, tried, day = find_owner(plan, days)
    if owner then
      redis.call('HINCRBY', k('conversation', cv), 'version', 1)
      commit_assign(plan, t, owner, tried, day, now)
      assigned[#assigned + 1] = cv
    end
  end
end
return assigned
