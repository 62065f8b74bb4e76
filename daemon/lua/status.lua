-- Publishes one router's liveness and counters for omnictl status; the key expires if the router dies.
-- Also adds the messages it stored since its last call to stats.messages (ingest.lua leaves that out of
-- the per-message path).
-- ARGV: prefix, router name, ttl (s), messages stored since the last call, then field/value pairs
local key = k('router', ARGV[2])
if tonumber(ARGV[4]) > 0 then redis.call('HINCRBY', k('stats'), 'messages', ARGV[4]) end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', key, unpack(fields))
redis.call('EXPIRE', key, tonumber(ARGV[3]))
return 1
