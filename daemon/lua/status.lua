-- Publishes one router's liveness and counters for omnictl status; the key expires if the router dies.
-- The router is also listed in the sorted set `routers`, scored by when its entry expires (ms, Redis's
-- clock), so omnictl status reads the live routers from there instead of scanning keys; entries past
-- their expiry are removed here.
-- Also adds the messages it stored since its last call to stats.messages (ingest.lua leaves that out of
-- the per-message path).
-- stored: messages stored since the last call; fields: field/value pairs.
-- @args prefix:str router:str ttl_s:int stored:int ...fields:str
-- @reply one ok:int
local key = K.router(A.router)
if A.stored > 0 then redis.call('HINCRBY', K.stats(), 'messages', A.stored) end
redis.call('HSET', key, unpack(A.fields))
redis.call('EXPIRE', key, A.ttl_s)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', K.routers(), '-inf', '(' .. now)
redis.call('ZADD', K.routers(), now + A.ttl_s * 1000, A.router)
return 1
