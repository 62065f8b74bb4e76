-- needs: _mask _inbox _owners _regroup
-- Links two identities as one person (omnictl customer link). Identities never seen are created.
-- linked: 1, or 0 when they were linked already.
-- @args prefix:str a:str b:str who:str now:int note:str
-- @reply linked:int customer:str
local a, b, who, now, note = A.a, A.b, A.who, A.now, A.note
if a == b then return redis.error_reply('ERR ' .. a .. ': an identity cannot be linked to itself') end
ensure_identity(a, now)
ensure_identity(b, now)
local lk = link_key(a, b)
if redis.call('EXISTS', lk) == 1 then return {0, customer_of(a)} end
redis.call('SADD', K.links(a), b)
redis.call('SADD', K.links(b), a)
redis.call('HSET', lk, 'by', who, 'at', now, 'note', note)
regroup({ a }, now)
local cust = customer_of(a)
redis.call('HINCRBY', K.stats(), 'linked', '1')
event('link', 'a', a, 'b', b, 'by', who, 'customer', cust)
return {1, cust}
