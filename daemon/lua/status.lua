-- Publishes one router's liveness and counters for omnictl status; the key expires if the router dies.
-- Also adds the messages it stored since its last call to stats.messages (ingest.lua leaves that out of
-- the per-message path).
-- stored: messages stored since the last call; fields: field/value pairs.
-- @args prefix:str router:str ttl_s:int stored:int ...fields:str
-- @reply one ok:int
local key = K.router(A.router)
if A.stored > 0 then redis.call('HINCRBY', K.stats(), 'messages', A.stored) end
redis.call('HSET', key, unpack(A.fields))
redis.call('EXPIRE', key, A.ttl_s)
return 1
