-- needs: _mask _inbox _owners
-- Resolves a conversation: its owner's capacity is freed (the next drain fills it), the customer's next
-- message opens a new conversation, and the owner is remembered for the customer's next one.
-- caller: who asks, as respond.lua's; who: the name recorded. outcome: "resolved", "not found" (no such
-- conversation, or the caller may not see it) or "closed" (resolved or merged already); owner: the
-- previous owner or "".
-- @args prefix:str caller:str conversation:str who:str now:int
-- @reply outcome:str owner:str assignments:int
local cv, who, now = A.conversation, A.who, A.now
local ck = K.conversation(cv)
local f = redis.call('HMGET', ck, 'status', 'owner', 'customer', 'queue', 'assignments', 'team')
if not f[1] or not may_see('resolve', A.caller, f[2], f[6]) then return { 'not found', '', 0 } end
if f[1] == 'resolved' or f[1] == 'merged' then return { 'closed', f[2] or '', tonumber(f[5] or '0') } end
if f[2] then inbox(f[2], 'work.resolved', cv, { by = who }, now) end
release(cv)
if f[4] then redis.call('ZREM', K.queue(f[4]), cv) end
redis.call('ZREM', K.unrouted(), cv)
redis.call('HINCRBY', ck, 'version', '1')
redis.call('HSET', ck, 'status', 'resolved', 'resolved_at', now, 'resolved_by', who)
-- kept retention.resolved from now, then archived to disk and deleted (archive_claim.lua, docs/archive.md)
redis.call('ZADD', K.archive_due(), now, cv)
local cust = K.customer(f[3])
if redis.call('HGET', cust, 'open_conversation') == cv then redis.call('HDEL', cust, 'open_conversation') end
redis.call('HSET', cust, 'last_conversation', cv)
if f[2] and f[2]:match('^agent:') then redis.call('HSET', cust, 'last_owner', f[2]:sub(7)) end
redis.call('HINCRBY', K.stats(), 'resolved', '1')
if tonumber(f[5] or '0') == 1 then redis.call('HINCRBY', K.stats(), 'first_contact_resolved', '1') end
event('resolved', 'conversation', cv, 'by', who, 'owner', f[2] or '')
return { 'resolved', f[2] or '', tonumber(f[5] or '0') }
