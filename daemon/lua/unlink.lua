-- needs: _mask _inbox _owners _regroup
-- Undoes a link (omnictl customer unlink): the two identities are two customers again unless other
-- links still join them. Conversations and messages go back with the identities they came from.
-- @args prefix:str a:str b:str who:str now:int
-- @reply customer_a:str customer_b:str moved:int
local a, b, who, now = A.a, A.b, A.who, A.now
local lk = link_key(a, b)
if redis.call('EXISTS', lk) == 0 then
  return redis.error_reply('ERR ' .. a .. ' and ' .. b .. ' are not linked to each other')
end
redis.call('SREM', K.links(a), b)
redis.call('SREM', K.links(b), a)
redis.call('DEL', lk)
local moved = regroup({ a, b }, now)
local ca, cb = customer_of(a), customer_of(b)
redis.call('HINCRBY', K.stats(), 'unlinked', '1')
event('unlink', 'a', a, 'b', b, 'by', who, 'customer_a', ca, 'customer_b', cb)
return {ca, cb, moved}
