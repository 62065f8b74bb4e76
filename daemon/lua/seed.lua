-- Gives agents named in the policy the presence the policy starts them with, unless they already have
-- one in Redis (presence is live state: what an agent or omnictl set last wins over the file).
-- ARGV: prefix, then agent id / presence pairs   Returns how many were set.
local n = 0
for i = 2, #ARGV - 1, 2 do
  n = n + redis.call('HSETNX', k('agent', ARGV[i]), 'presence', ARGV[i + 1])
end
return n
