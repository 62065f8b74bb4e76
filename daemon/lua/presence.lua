-- needs: _mask _inbox _owners
-- Sets an agent's presence. Going offline starts the grace period after which its conversations are
-- routed again (due.lua); coming back cancels it. Its open offers are re-routed at once (`offer revoked`,
-- docs/delivery.md): nobody is there to accept them. An offer already past its expiry is not hers any more
-- (offer_lapsed): it expired, and the tick that finds it (due.lua) moves it on as `offer expired`, declining her,
-- whatever she did after. Capacity freed by coming back is used by the next drain.
-- presence: "available", "away" or "offline". Returns the previous presence.
-- @args prefix:str agent:str presence:str now:int
-- @reply one was:str
local id, presence, now = A.agent, A.presence, A.now
if presence ~= 'available' and presence ~= 'away' and presence ~= 'offline' then
  return redis.error_reply('ERR presence: not available, away or offline: ' .. presence)
end
local ak = K.agent(id)
local was = redis.call('HGET', ak, 'presence') or 'available'
redis.call('HSET', ak, 'presence', presence)
reindex(id, true)
if presence == 'available' and was ~= 'available' then redis.call('INCR', K.drain_epoch()) end
if presence == 'offline' then
  if was ~= 'offline' then
    redis.call('HSET', ak, 'offline_since', now)
    redis.call('ZADD', K.agents_offline(), now, id)
  end
  for _, cv in ipairs(redis.call('SMEMBERS', K.agent_conversations(id))) do
    local f = redis.call('HMGET', K.conversation(cv), 'status', 'owner', 'offer_expires_at')
    if f[1] == 'offered' and f[2] == 'agent:' .. id and not offer_lapsed(f[2], f[1], f[3], now) then
      reroute(cv, 'offer revoked', nil, now)
    end
  end
else
  redis.call('HDEL', ak, 'offline_since')
  redis.call('ZREM', K.agents_offline(), id)
end
event('presence', 'agent', id, 'presence', presence, 'was', was)
return was
