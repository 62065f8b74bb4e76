-- Sets the tier a customer is routed as (omnictl customer tier), over what the policy works out from its
-- history (docs/routing.md, "Customer tiers"); tier "" gives the choice back to the policy. An identity never
-- seen is made a customer here, so a VIP can be named before its first message. Read by the next decision
-- (ingest.lua, due.lua read the customer's `tier`); work already decided keeps its tier until it is routed again.
-- @args prefix:str identity:str tier:str who:str now:int
-- @reply customer:str was:str
local tier = A.tier
if tier ~= '' and tier ~= 'vip' and tier ~= 'repeat' and tier ~= 'new' then
  return redis.error_reply('ERR tier: "' .. tier:sub(1, 40) .. '" is not vip, repeat, new or "" (the policy\'s)')
end
local cust = ensure_identity(A.identity, A.now_text)
local ck = K.customer(cust)
local was = redis.call('HGET', ck, 'tier') or ''
if tier == '' then redis.call('HDEL', ck, 'tier') else redis.call('HSET', ck, 'tier', tier) end
event('tier', 'customer', cust, 'tier', tier, 'was', was, 'by', A.who)
return { cust, was }
