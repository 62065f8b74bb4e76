-- Sets an agent's presence. Going offline starts the grace period after which its conversations are
-- routed again (due.lua); coming back cancels it. Capacity freed by coming back is used by the next drain.
-- ARGV: prefix, agent, presence ("available", "away", "offline"), now   Returns the previous presence.
local id, presence, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local ak = k('agent', id)
local was = redis.call('HGET', ak, 'presence') or 'available'
redis.call('HSET', ak, 'presence', presence)
if presence == 'offline' then
  if was ~= 'offline' then
    redis.call('HSET', ak, 'offline_since', now)
    redis.call('ZADD', k('agents', 'offline'), now, id)
  end
else
  redis.call('HDEL', ak, 'offline_since')
  redis.call('ZREM', k('agents', 'offline'), id)
end
event('presence', 'agent', id, 'presence', presence, 'was', was)
return was
