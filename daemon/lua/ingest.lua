-- Stores one message: deduplicate by id, resolve the sender to a customer, attach to the customer's
-- open conversation or open one. One atomic unit: a crash or a second router sees all of it or none.
-- ARGV: prefix, id, identity key, channel, received_at, message JSON, now (ms), default queue,
--       routing on ("1": a new conversation is marked unrouted until assign.lua routes it),
--       optional: text fingerprint (16 hex digits, "" for none; fold.h), folding window ms, max differing bits
-- Returns {stored (1) or duplicate (0), customer, conversation, opened (1/0), new customer (1/0),
--          the customer's conversation count, its stored tier, its previous owner}
local id, ident, channel, received_at, json, now, queue, routing =
  ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local fingerprint, window, max_bits = ARGV[10] or '', tonumber(ARGV[11] or '0'), tonumber(ARGV[12] or '0')

local function popcount16(x)
  local c = 0
  while x > 0 do c = c + x % 2; x = math.floor(x / 2) end
  return c
end

-- Hamming distance of two 16-hex-digit fingerprints, 16 bits at a time (Lua numbers hold 53 bits).
local function distance(a, b)
  local d = 0
  for i = 1, 16, 4 do
    d = d + popcount16(bit.bxor(tonumber(a:sub(i, i + 3), 16), tonumber(b:sub(i, i + 3), 16)))
  end
  return d
end

-- The earlier message this one is a near-copy of (same customer, within the window), or nil.
local function fold_target(cust)
  if fingerprint == '' or window <= 0 then return nil end
  local rk = k('customer', cust, 'recent')
  redis.call('ZREMRANGEBYSCORE', rk, '-inf', now - window)
  for _, e in ipairs(redis.call('ZRANGE', rk, 0, -1)) do
    local h, orig = e:match('^(%x+)|(.+)$')
    if h and distance(h, fingerprint) <= max_bits then return orig end
  end
  redis.call('ZADD', rk, now, fingerprint .. '|' .. id)
  redis.call('PEXPIRE', rk, window)
  return nil
end
local mk = k('msg', id)
local conv = redis.call('HGET', mk, 'conversation')
if conv then
  redis.call('HINCRBY', k('stats'), 'duplicates', 1)
  local cust = redis.call('HGET', k('identity', redis.call('HGET', mk, 'identity')), 'customer')
  return {0, cust or '', conv, 0, 0, 0, '', ''}
end
local cust, created = ensure_identity(ident, now)
local original = fold_target(cust)
if original then
  -- Folded: stored with the first copy's conversation (even if that one is resolved meanwhile) and routed
  -- no further: the customer asked once, on several channels.
  local fcv = redis.call('HGET', k('msg', original), 'conversation')
  redis.call('HSET', mk, 'json', json, 'identity', ident, 'channel', channel, 'conversation', fcv,
             'received_at', received_at, 'stored_at', now, 'folded_into', original)
  redis.call('RPUSH', k('conversation', fcv, 'messages'), id)
  redis.call('HINCRBY', k('stats'), 'messages', 1)
  redis.call('HINCRBY', k('stats'), 'folded', 1)
  event('folded', 'id', id, 'into', original, 'conversation', fcv, 'channel', channel)
  return {1, cust, fcv, 0, 0, 0, '', '', original}
end
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
