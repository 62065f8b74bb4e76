-- Stores one message: deduplicate by id, resolve the sender to a customer, fold a near-copy of a recent
-- message, attach to the customer's open conversation or open one. One atomic unit: a crash or a second
-- router sees all of it or none. This runs for every message, so it makes as few calls as it can
-- (docs/benchmarks.md): the common path is 7 of them.
-- ARGV: prefix, id, identity key, channel, received_at (kept in the JSON), message JSON, now (ms),
--       default queue, routing on ("1": a new conversation is marked unrouted until assign.lua routes it),
--       optional: text fingerprint (16 hex digits, "" for none; fold.h), folding window ms, max differing bits
-- Returns {stored (1) or duplicate (0), customer, conversation, opened (1/0), new customer (1/0),
--          and when opened: the customer's conversation count, its stored tier, its previous owner;
--          when folded, a 9th element: the id of the message it is a copy of}
local id, ident, channel, json, now, queue, routing =
  ARGV[2], ARGV[3], ARGV[4], ARGV[6], tonumber(ARGV[7]), ARGV[8], ARGV[9]
local fingerprint, window, max_bits = ARGV[10] or '', tonumber(ARGV[11] or '0'), tonumber(ARGV[12] or '0')
local RECENT_MAX = 8 -- fingerprints kept per customer: a burst or a cross-post is a handful of copies

local mk = k('msg', id)
local conv = redis.call('HGET', mk, 'conversation')
if conv then
  redis.call('HINCRBY', k('stats'), 'duplicates', 1)
  return {0, '', conv, 0, 0, 0, '', ''}
end

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

local cust, created = ensure_identity(ident, now)
local ck = k('customer', cust)
local c = redis.call('HMGET', ck, 'open_conversation', 'recent')

-- Folding: the customer's recent fingerprints live in one field, "ms\tfingerprint\tid" entries joined by
-- "\n" (ids hold no control characters), newest last, only those inside the window kept.
if fingerprint ~= '' and window > 0 then
  local original, recent = nil, {}
  for e in string.gmatch(c[2] or '', '[^\n]+') do
    local ts, h, orig = e:match('^(%d+)\t(%x+)\t(.+)$')
    if ts and tonumber(ts) >= now - window then
      if not original and distance(h, fingerprint) <= max_bits then original = orig end
      recent[#recent + 1] = e
    end
  end
  if original then
    -- Stored with the first copy's conversation (even if that one is resolved meanwhile) and routed no
    -- further: the customer asked once, on several channels.
    local fcv = redis.call('HGET', k('msg', original), 'conversation')
    redis.call('HSET', mk, 'json', json, 'identity', ident, 'channel', channel, 'conversation', fcv,
               'stored_at', now, 'folded_into', original)
    redis.call('RPUSH', k('conversation', fcv, 'messages'), id)
    redis.call('HINCRBY', k('stats'), 'messages', 1)
    redis.call('HINCRBY', k('stats'), 'folded', 1)
    event('folded', 'id', id, 'into', original, 'conversation', fcv)
    return {1, cust, fcv, 0, 0, 0, '', '', original}
  end
  recent[#recent + 1] = now .. '\t' .. fingerprint .. '\t' .. id
  if #recent > RECENT_MAX then table.remove(recent, 1) end
  redis.call('HSET', ck, 'recent', table.concat(recent, '\n'))
end

local cv, opened = c[1], 0
if not cv then
  cv = open_conversation(cust, ident, channel, queue, now)
  opened = 1
  -- a router that dies before routing it leaves it here; any router's tick picks it up (due.lua)
  if routing == '1' then redis.call('ZADD', k('unrouted'), now, cv) end
end
redis.call('HSET', mk, 'json', json, 'identity', ident, 'channel', channel, 'conversation', cv, 'stored_at', now)
redis.call('RPUSH', k('conversation', cv, 'messages'), id)
redis.call('HINCRBY', k('stats'), 'messages', 1)
event('message', 'id', id, 'conversation', cv)
local new_customer = created and 1 or 0
if opened == 0 then return {1, cust, cv, 0, new_customer, 0, '', ''} end
local cu = redis.call('HMGET', ck, 'tier', 'last_owner')
return {1, cust, cv, 1, new_customer, redis.call('SCARD', k('customer', cust, 'conversations')),
        cu[1] or '', cu[2] or ''}
