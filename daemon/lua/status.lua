-- Publishes one router's liveness and counters for omnictl status; the key expires if the router dies.
-- ARGV: prefix, router name, ttl (s), then field/value pairs
local key = k('router', ARGV[2])
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', key, unpack(fields))
redis.call('EXPIRE', key, tonumber(ARGV[3]))
return 1
