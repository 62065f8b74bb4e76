-- Publishes one router's liveness and counters for omnictl status; the key expires if the router dies.
-- The router is also listed in the sorted set `routers`, scored by when its entry expires (ms, Redis's
-- clock), so omnictl status reads the live routers from there instead of scanning keys; entries past
-- their expiry are removed here.
-- fields: field/value pairs. (Totals that must be exact when read, such as stats.messages, are kept by the
-- scripts that change them, not here.)
-- @args prefix:str router:str ttl_s:int ...fields:str
-- @reply one ok:int
local key = K.router(A.router)
redis.call('HSET', key, unpack(A.fields))
redis.call('EXPIRE', key, A.ttl_s)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', K.routers(), '-inf', '(' .. now)
redis.call('ZADD', K.routers(), now + A.ttl_s * 1000, A.router)
return 1
