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
local before = tonumber(redis.call('GET', K.seq('conversation')) or '0')
local moved = regroup({ a, b }, now)
-- A conversation regroup opened for messages going back to a side with none open is opened like any other:
-- its event tells whoever follows the stream (ids are handed out in order, so those above "before" are new).
for cv = before + 1, tonumber(redis.call('GET', K.seq('conversation')) or '0') do
  local c = redis.call('HMGET', K.conversation(cv), 'customer', 'channel')
  event('opened', 'conversation', tostring(cv), 'customer', c[1], 'channel', c[2])
end
local ca, cb = customer_of(a), customer_of(b)
redis.call('HINCRBY', K.stats(), 'unlinked', '1')
event('unlink', 'a', a, 'b', b, 'by', who, 'customer_a', ca, 'customer_b', cb)
return {ca, cb, moved}
