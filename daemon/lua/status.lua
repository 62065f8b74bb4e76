-- Publishes one router's liveness and counters for omnictl status; the key expires if the router dies.
-- The router is also listed in the sorted set `routers`, scored by when its entry expires (ms, Redis's
-- clock), so omnictl status reads the live routers from there instead of scanning keys; entries past
-- their expiry are removed here.
-- Also adds the messages it stored since its last call to stats.messages (ingest.lua leaves that out of
-- the per-message path).
-- ARGV: prefix, router name, ttl (s), messages stored since the last call, then field/value pairs
local key = k('router', ARGV[2])
if tonumber(ARGV[4]) > 0 then redis.call('HINCRBY', k('stats'), 'messages', ARGV[4]) end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', key, unpack(fields))
redis.call('EXPIRE', key, tonumber(ARGV[3]))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', k('routers'), '-inf', '(' .. now)
redis.call('ZADD', k('routers'), now + tonumber(ARGV[3]) * 1000, ARGV[2])
return 1
