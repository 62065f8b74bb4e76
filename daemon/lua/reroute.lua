-- needs: _mask _inbox _owners _reroute
-- A team's work comes back to the router without being rejected by a person: omni-webhooks dead-lettered
-- a delivery to the partner (reason "dead letter"). Acts only while the conversation is still that team's
-- (an older delivery must not take away work that moved on); the team is added to `declined` and the router
-- re-routes it at once (`reroute` = reason). outcome: "rerouted" or "not found".
-- @args prefix:str conversation:str team:str reason:str now:int
-- @reply one outcome:str
if A.reason ~= 'dead letter' and A.reason ~= 'rejected' then
  return redis.error_reply('ERR reroute: reason is not "dead letter" or "rejected": ' .. A.reason:sub(1, 40))
end
return reroute_team_work(A.conversation, A.team, A.reason, A.now) and 'rerouted' or 'not found'
