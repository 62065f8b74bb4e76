-- Shared by every script: scripts/embed-lua puts the files whose names start with "_" in front of each.
-- Every script is called with ARGV[1] = the key prefix (redis.key_prefix) and never touches another key
-- family, so several routers and omnictl can share one Redis. Keys are documented in docs/redis.md.
local P = ARGV[1]
local function k(...) return P .. table.concat({...}, ':') end

local function event(kind, ...)
  redis.call('XADD', k('events'), 'MAXLEN', '~', 100000, '*', 'type', kind, ...)
end

-- The customer an identity belongs to, creating both on first sight. Returns customer id, created?
local function ensure_identity(ident, now)
  local c = redis.call('HGET', k('identity', ident), 'customer')
  if c then return c, false end
  c = tostring(redis.call('INCR', k('seq', 'customer')))
  -- "home" never changes: it is the customer this identity falls back to when every link is undone
  redis.call('HSET', k('identity', ident), 'customer', c, 'home', c, 'first_seen', now)
  redis.call('HSET', k('customer', c), 'created_at', now, 'first_identity', ident)
  redis.call('SADD', k('customer', c, 'identities'), ident)
  return c, true
end

local function open_conversation(cust, ident, channel, queue, now)
  local cv = tostring(redis.call('INCR', k('seq', 'conversation')))
  redis.call('HSET', k('conversation', cv), 'customer', cust, 'status', 'open', 'opened_at', now,
             'first_identity', ident, 'channel', channel, 'queue', queue)
  redis.call('HSET', k('customer', cust), 'open_conversation', cv)
  redis.call('SADD', k('customer', cust, 'conversations'), cv)
  redis.call('ZADD', k('queue', queue), now, cv)
  return cv
end
