-- needs: _mask _inbox _owners
-- What a router writes at start and at each reload from its policy. Agents named in the policy get the
-- presence the policy starts them with, unless they already have one in Redis (presence is live state: what
-- an agent or omnictl set last wins over the file). Each agent's capacities and rosters are the policy's, and
-- the ready index (docs/redis.md: which agents of a team can take work of a channel now, in the team's serving
-- order) is rebuilt from them in this one call, so no decision ever sees half of it. Each team's masking
-- (`mask_contact` in its hash: 1 for a partner whose contract masks) is the policy's, for the scripts that
-- write what partners see (_mask.lua). The installation's pseudonym salt is set once, by the first router
-- (salt: random, made by the caller). follow_up_after_ms: the policy's follow_up.after, kept in omni:settings for
-- resolve.lua, which omni-api and omnictl run too and which do not read the policy; 0: no follow-ups.
-- teams: {team: masks?}; agents: id, presence, caps ("email=5 sms=3"), rosters ("core:0:ll", see reindex()),
-- four arguments an agent. Returns how many presences were set.
-- @args prefix:str salt:str teams:json follow_up_after_ms:int ...agents:str
-- @reply one set:int
local n, list = 0, A.agents
if #list % 4 ~= 0 then return redis.error_reply('ERR seed: agents come in fours (id presence caps rosters)') end
-- The index of the policy before this one goes entirely, and agents it no longer names leave every roster.
for _, key in ipairs(redis.call('SMEMBERS', K.ready_keys())) do redis.call('DEL', key) end
redis.call('DEL', K.ready_keys())
local named = {}
for i = 1, #list, 4 do named[list[i]] = true end
for _, id in ipairs(redis.call('SMEMBERS', K.roster())) do
  if not named[id] then redis.call('HDEL', K.agent(id), 'caps', 'rosters'); redis.call('SREM', K.roster(), id) end
end
-- Work waiting in the queue of a team the policy no longer has would wait there for good (no drain serves it,
-- and a plan that never expires is never made again): its plan is made to expire now, so the next due scan
-- hands it to a router for a new plan by this policy's rules (a "replan"), like a calendar that closed.
local seeded = {}
for _, team in ipairs(redis.call('SMEMBERS', K.teams())) do seeded[team] = true end
for team in pairs(seeded) do
  if A.teams[team] == nil then
    for level = 1, 4 do
      for _, cv in ipairs(redis.call('ZRANGE', K.team_queue(team, level), 0, -1)) do
        redis.call('HSET', K.conversation(cv), 'valid_until', 1)
        redis.call('ZADD', K.timers(), 1, cv)
      end
    end
    redis.call('SREM', K.teams(), team)
  end
end
for team, mask in pairs(A.teams) do
  if not seeded[team] then redis.call('SADD', K.teams(), team) end
  redis.call('HSET', K.team(team), 'mask_contact', mask and 1 or 0)
  redis.call('HDEL', K.team(team), 'load') -- kept by routers before 2026-12-02: a team's load is SCARD of what it holds
  redis.call('DEL', K.team_available(team))
end
local rosters = {} -- team -> its agents in policy order (the live reasons explain reads, pick_agent())
for i = 1, #list, 4 do
  local id = list[i]
  for team, pos in list[i + 3]:gmatch('(%S+):(%d+):%a+') do
    rosters[team] = rosters[team] or {}
    rosters[team][tonumber(pos) + 1] = id
  end
  n = n + redis.call('HSETNX', K.agent(id), 'presence', list[i + 1])
  redis.call('HSET', K.agent(id), 'caps', list[i + 2], 'rosters', list[i + 3])
  redis.call('SADD', K.roster(), id)
  reindex(id, true)
end
for team in pairs(A.teams) do redis.call('HSET', K.team(team), 'roster', table.concat(rosters[team] or {}, ' ')) end
redis.call('SET', K.mask_salt(), A.salt, 'NX')
redis.call('HSET', K.settings(), 'follow_up_after_ms', A.follow_up_after_ms)
redis.call('INCR', K.drain_epoch()) -- capacities may have grown: the next drains look at their queues again
return n
