-- Stores one message: deduplicate by id, resolve the sender to a customer, attach to the customer's
-- open conversation or open one. One atomic unit: a crash or a second router sees all of it or none.
-- ARGV: prefix, id, identity key, channel, received_at, message JSON, now (ms), default queue,
--       routing on ("1": a new conversation is marked unrouted until assign.lua routes it)
-- Returns {stored (1) or duplicate (0), customer, conversation, opened (1/0), new customer (1/0),
--          the customer's conversation count, its stored tier, its previous owner}
local id, ident, channel, received_at, json, now, queue, routing =
  ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local mk = k('msg', id)
local conv = redis.call('HGET', mk, 'conversation')
if conv then
  redis.call('HINCRBY', k('stats'), 'duplicates', 1)
  local cust = redis.call('HGET', k('identity', redis.call('HGET', mk, 'identity')), 'customer')
  return {0, cust or '', conv, 0, 0, 0, '', ''}
end
local cust, created = ensure_identity(ident, now)
local cv = redis.call('HGET', k('customer', cust), 'open_conversation')
local opened = 0
if not cv then
  cv = open_conversation(cust, ident, channel, queue, now)
  opened = 1
  -- a router that dies before routing it leaves it here; any router's tick picks it up (due.lua)
  if routing == '1' then redis.call('ZADD', k('unrouted'), now, cv) end
end
redis.call('HSET', mk, 'json', json, 'identity', ident, 'channel', channel, 'conversation', cv,
           'received_at', received_at, 'stored_at', now)
redis.call('RPUSH', k('conversation', cv, 'messages'), id)
redis.call('HSET', k('conversation', cv), 'last_message_at', now)
redis.call('HINCRBY', k('stats'), 'messages', 1)
local new_customer = created and 1 or 0
event('message', 'id', id, 'channel', channel, 'identity', ident, 'customer', cust, 'conversation', cv,
      'opened', opened, 'new_customer', new_customer)
local cu = redis.call('HMGET', k('customer', cust), 'tier', 'last_owner')
return {1, cust, cv, opened, new_customer, redis.call('SCARD', k('customer', cust, 'conversations')),
        cu[1] or '', cu[2] or ''}
