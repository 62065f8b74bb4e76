-- needs: _owners _regroup
-- Links two identities as one person (omnictl customer link). Identities never seen are created.
-- ARGV: prefix, identity a, identity b, who, now (ms), note
-- Returns {1 linked (0 already linked), customer}
local a, b, who, now, note = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if a == b then return redis.error_reply('ERR an identity cannot be linked to itself') end
ensure_identity(a, now)
ensure_identity(b, now)
local lk = link_key(a, b)
if redis.call('EXISTS', lk) == 1 then return {0, customer_of(a)} end
redis.call('SADD', k('links', a), b)
redis.call('SADD', k('links', b), a)
redis.call('HSET', lk, 'by', who, 'at', now, 'note', note)
regroup({ a }, now)
local cust = customer_of(a)
event('link', 'a', a, 'b', b, 'by', who, 'customer', cust)
return {1, cust}
