-- needs: _mask _inbox _owners
-- The owner gives work back (docs/delivery.md): an agent rejecting an offer (or work it accepted), a partner
-- team rejecting what it was assigned, an operator for either. The owner is added to the conversation's
-- `declined` set, never to be offered it again; the router re-routes it at once (`reroute: rejected`).
-- reason: free text, kept in the event. outcome: "rejected", "not found" (no such conversation, or the
-- caller may not see it: an agent's offer past its expiry included), "not owned" (nobody holds it: waiting,
-- re-routing, closed).
-- @args prefix:str caller:str conversation:str reason:str now:int
-- @reply one outcome:str
local cv, now = A.conversation, A.now
local ck = K.conversation(cv)
local f = redis.call('HMGET', ck, 'status', 'owner', 'team', 'offer_expires_at')
if not f[1] or not may_see('reject', A.caller, f[2], f[3]) or offer_lapsed(A.caller, f[1], f[4], now) then
  return 'not found'
end
if not f[2] or (f[1] ~= 'offered' and f[1] ~= 'assigned') then return 'not owned' end
redis.call('SADD', K.conversation_declined(cv), f[2])
local agent = f[2]:match('^agent:(.+)$')
if agent and f[1] == 'offered' then redis.call('HINCRBY', K.agent(agent), 'offers_rejected', '1') end
if f[1] == 'offered' then redis.call('HINCRBY', K.stats(), 'offers_rejected', '1') end
event('rejected', 'conversation', cv, 'owner', f[2], 'by', A.caller, 'why', A.reason)
reroute(cv, 'rejected', nil, now)
return 'rejected'
