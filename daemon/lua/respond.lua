-- needs: _mask _inbox _owners _time _report
-- Records the first response to a conversation (the agent API will call it; omnictl does now): the SLA
-- is met or was breached, and no escalation or target timeout applies any more.
-- caller: who asks, "agent:ID", "partner:TEAM" or "operator:NAME" (docs/delivery.md: what each may see);
-- who: the name recorded. outcome: "met", "breached", "no sla", "already", "closed" (resolved or merged
-- with no first response recorded: too late to record one, and an archive claim may be reading it) or "not
-- found" (no such conversation, or the caller may not see it: an agent's offer past its expiry included); ms:
-- since the conversation opened; "breached" too when a tick counted the breach already, at the due time itself
-- or by a router whose clock runs ahead of the caller's (counted once, never met as well). Counted in the SLA
-- report (_report.lua) under the conversation's team (waiting work: the team whose queue it waits in, as
-- due.lua counts its breach) and channel: responded, response_ms, and met or breached.
-- @args prefix:str caller:str conversation:str who:str now:int
-- @reply outcome:str ms:int
local cv, who, now = A.conversation, A.who, A.now
local ck = K.conversation(cv)
local f = redis.call('HMGET', ck, 'status', 'first_response_at', 'due', 'opened_at', 'owner', 'team',
                     'offer_expires_at', 'channel', 'queued_on', 'breached')
if not f[1] or not may_see('respond', A.caller, f[5], f[6]) or offer_lapsed(A.caller, f[1], f[7], now) then
  return { 'not found', 0 }
end
-- ms since it opened, never below 0: opened_at is the clock of the router that stored it, now that of the caller
-- (another machine's, perhaps a few ms behind)
if f[2] then return { 'already', math.max(0, tonumber(f[2]) - tonumber(f[4])) } end
if f[1] == 'resolved' or f[1] == 'merged' then return { 'closed', 0 } end
redis.call('HSET', ck, 'first_response_at', now, 'first_response_by', who)
redis.call('HDEL', ck, 'timeout_at')
schedule(cv, now) -- no timeout or escalation any more; a queued plan's expiry stays
local due, outcome, counted = tonumber(f[3] or '-1'), 'no sla', nil
if due and due > 0 then
  outcome = (now <= due and not f[10]) and 'met' or 'breached'
  if outcome == 'met' then
    redis.call('HINCRBY', K.stats(), 'sla_met', '1')
    counted = 'met'
  elseif not f[10] then -- counted here when no tick saw it first
    redis.call('HSET', ck, 'breached', 1)
    redis.call('HINCRBY', K.stats(), 'sla_breached', '1')
    counted = 'breached'
  end
end
local waited, team = math.max(0, now - tonumber(f[4])), f[6] or f[9] or nil
if counted then
  report(now, team, f[8] or nil, 'responded', 1, 'response_ms', waited, counted, 1)
  agent_report(f[5] or nil, 'responded', 1, 'response_ms', waited, counted, 1)
else
  report(now, team, f[8] or nil, 'responded', 1, 'response_ms', waited)
  agent_report(f[5] or nil, 'responded', 1, 'response_ms', waited)
end
event('responded', 'conversation', cv, 'by', who, 'sla', outcome)
return { outcome, waited }
