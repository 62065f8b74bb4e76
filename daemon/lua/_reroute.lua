-- Work a team holds, given back to routing from outside the router without a person deciding it: a
-- rejection through the API (reroute.lua) or a delivery omni-webhooks dead-lettered (webhook_result.lua,
-- webhook_claim.lua). One function, so both give work back the same way. Needs _mask _inbox _owners.
-- Acts only while the conversation is still that team's (an older delivery must not take away work that
-- moved on): the owner is added to `declined` and the router re-routes it at once (`reroute` = why; the
-- owner is told: work.revoked). Returns true when it re-routed.
local function reroute_team_work(cv, team, why, now)
  local f = redis.call('HMGET', K.conversation(cv), 'status', 'owner', 'team')
  if not f[2] or f[3] ~= team or (f[1] ~= 'offered' and f[1] ~= 'assigned') then return false end
  redis.call('SADD', K.conversation_declined(cv), f[2])
  reroute(cv, why, nil, now)
  return true
end
