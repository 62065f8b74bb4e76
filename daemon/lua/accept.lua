-- needs: _mask _inbox _owners
-- Accepts an offer (docs/delivery.md, "Offers"): the conversation is the agent's now (`status: assigned`,
-- `accepted_at`), and its target's timeout starts now. caller: "agent:ID" (the agent offered it), or
-- "partner:TEAM" or "operator:NAME" accepting for an agent of the team or for anyone. outcome: "accepted", "not found" (no such conversation, or the
-- caller may not see it), "not offered" (it is not an open offer: accepted already, expired, moved on).
-- @args prefix:str caller:str conversation:str now:int
-- @reply one outcome:str
local cv, now = A.conversation, A.now
local ck = K.conversation(cv)
local f = redis.call('HMGET', ck, 'status', 'owner', 'team', 'target_timeout', 'offer_expires_at')
if not f[1] or not may_see('accept', A.caller, f[2], f[3]) then return 'not found' end
-- past its expiry the offer is the router's to move on (due.lua), even before a tick saw it
if f[1] ~= 'offered' or now >= tonumber(f[5] or '0') then return 'not offered' end
redis.call('HINCRBY', ck, 'version', '1') -- a move planned on the offer (its expiry) is stale now
redis.call('HSET', ck, 'status', 'assigned', 'accepted_at', now)
redis.call('HDEL', ck, 'offered_at', 'offer_expires_at')
local timeout = tonumber(f[4] or '0')
if timeout > 0 then redis.call('HSET', ck, 'timeout_at', now + timeout) end
schedule(cv, now)
local agent = f[2]:match('^agent:(.+)$')
if agent then redis.call('HINCRBY', K.agent(agent), 'offers_accepted', '1') end
redis.call('HINCRBY', K.stats(), 'offers_accepted', '1')
local c = redis.call('HMGET', ck, 'channel', 'category', 'prio', 'due')
inbox(f[2], 'work.assigned', cv, { team = f[3], channel = c[1], category = c[2], prio = tonumber(c[3]),
                                   due = sla_at(c[4]) }, now)
event('accepted', 'conversation', cv, 'owner', f[2])
return 'accepted'
