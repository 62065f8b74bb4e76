-- Gives agents named in the policy the presence the policy starts them with, unless they already have
-- one in Redis (presence is live state: what an agent or omnictl set last wins over the file).
-- agents: agent id / presence pairs. Returns how many were set.
-- @args prefix:str ...agents:str
-- @reply one set:int
local n, pairs_ = 0, A.agents
for i = 1, #pairs_ - 1, 2 do
  n = n + redis.call('HSETNX', K.agent(pairs_[i]), 'presence', pairs_[i + 1])
end
return n
