-- What a router writes at start from its policy. Agents named in the policy get the presence the policy starts
-- them with, unless they already have one in Redis (presence is live state: what an agent or omnictl set last
-- wins over the file). Each team's masking (`mask_contact` in its hash: 1 for a partner whose contract masks)
-- is the policy's, for the scripts that write what partners see (_mask.lua). The installation's pseudonym
-- salt is set once, by the first router (salt: random, made by the caller).
-- masks: {team: true|false}; agents: agent id / presence pairs. Returns how many presences were set.
-- @args prefix:str salt:str masks:json ...agents:str
-- @reply one set:int
local n, pairs_ = 0, A.agents
for i = 1, #pairs_ - 1, 2 do
  n = n + redis.call('HSETNX', K.agent(pairs_[i]), 'presence', pairs_[i + 1])
end
for team, mask in pairs(A.masks) do redis.call('HSET', K.team(team), 'mask_contact', mask and 1 or 0) end
redis.call('SET', K.mask_salt(), A.salt, 'NX')
return n
