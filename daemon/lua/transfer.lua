-- needs: _mask _inbox _owners
-- Moves a conversation to another team (docs/delivery.md): released from its owner, and the router plans it
-- for that team only (`reroute: transfer`, `transfer_to`): one of its agents, else its queue. Waiting work
-- can be transferred too. outcome: "transferred", "not found" (no such conversation, or the caller may not
-- see it: an agent's offer past its expiry included), "no such team" (no router has the team in its policy),
-- "closed" (resolved or merged).
-- note: none, or one: the caller's words for the team (omni-api's `note`), kept in the `transfer` event.
-- @args prefix:str caller:str conversation:str team:str now:int ...note:str
-- @reply one outcome:str
local cv, now = A.conversation, A.now
local ck = K.conversation(cv)
local f = redis.call('HMGET', ck, 'status', 'owner', 'team', 'offer_expires_at')
if not f[1] or not may_see('transfer', A.caller, f[2], f[3]) or offer_lapsed(A.caller, f[1], f[4], now) then
  return 'not found'
end
if f[1] == 'resolved' or f[1] == 'merged' then return 'closed' end
-- every team of a router's policy has its masking written at start (seed.lua)
if redis.call('HEXISTS', K.team(A.team), 'mask_contact') == 0 then return 'no such team' end
if A.note[1] then
  event('transfer', 'conversation', cv, 'by', A.caller, 'to', A.team, 'note', A.note[1])
else
  event('transfer', 'conversation', cv, 'by', A.caller, 'to', A.team)
end
-- An offer past its expiry was not accepted in time, whoever moves it on (an operator, a partner): its agent
-- is declined as when a tick finds it (assign.lua), so the transfer never offers it to her again.
if f[1] == 'offered' and f[2] and f[4] and tonumber(f[4]) <= now then
  redis.call('SADD', K.conversation_declined(cv), f[2])
  local agent = f[2]:match('^agent:(.+)$')
  if agent then redis.call('HINCRBY', K.agent(agent), 'offers_expired', '1') end
  redis.call('HINCRBY', K.stats(), 'offers_expired', '1')
elseif f[1] == 'offered' then
  redis.call('HINCRBY', K.stats(), 'offers_transferred', '1')
end
reroute(cv, 'transfer', A.team, now)
return 'transferred'
