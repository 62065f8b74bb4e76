-- needs: _mask _inbox _owners
-- A team's work comes back to the router without being rejected by a person: omni-webhooks dead-lettered
-- a delivery to the partner (reason "dead letter"). Acts only while the conversation is still that team's
-- (an older delivery must not take away work that moved on); the team is added to `declined` and the router
-- re-routes it at once (`reroute` = reason). outcome: "rerouted" or "not found".
-- @args prefix:str conversation:str team:str reason:str now:int
-- @reply one outcome:str
local cv, now = A.conversation, A.now
if A.reason ~= 'dead letter' and A.reason ~= 'rejected' then
  return redis.error_reply('ERR reroute: reason is not "dead letter" or "rejected": ' .. A.reason:sub(1, 40))
end
local ck = K.conversation(cv)
local f = redis.call('HMGET', ck, 'status', 'owner', 'team')
if not f[2] or f[3] ~= A.team or (f[1] ~= 'offered' and f[1] ~= 'assigned') then return 'not found' end
redis.call('SADD', K.conversation_declined(cv), f[2])
reroute(cv, A.reason, nil, now)
return 'rerouted'
