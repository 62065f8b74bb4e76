-- needs: _mask _inbox _owners _resolved _time _report
-- Resolves a conversation: its owner's capacity is freed (the next drain fills it), the customer's next
-- message opens a new conversation, and the owner is remembered for the customer's next one. With follow_up.after
-- set (the routers keep it in omni:settings), its follow-up is scheduled then (omni:followups; due.lua opens it),
-- unless the conversation is a follow-up itself: one follow-up, not a chain of them. Counted in the SLA report
-- (_report.lua) under its team (waiting work: the team whose queue it waits in) and channel: resolved, and
-- first_contact when it had one assignment in all.
-- caller: who asks, as respond.lua's; who: the name recorded. outcome: "resolved", "not found" (no such
-- conversation, or the caller may not see it) or "closed" (resolved or merged already); owner: the
-- previous owner or "".
-- @args prefix:str caller:str conversation:str who:str now:int
-- @reply outcome:str owner:str assignments:int
local cv, who, now = A.conversation, A.who, A.now
local ck = K.conversation(cv)
local f = redis.call('HMGET', ck, 'status', 'owner', 'customer', 'queue', 'assignments', 'team', 'offer_expires_at',
                     'follow_up_of', 'channel', 'queued_on')
if not f[1] or not may_see('resolve', A.caller, f[2], f[6]) or offer_lapsed(A.caller, f[1], f[7], now) then
  return { 'not found', '', 0 }
end
if f[1] == 'resolved' or f[1] == 'merged' then return { 'closed', f[2] or '', tonumber(f[5] or '0') } end
if f[2] then inbox(f[2], 'work.resolved', cv, { by = who }, now) end
local team = f[6] or f[10] or nil -- read before release() removes them
release(cv)
mark_resolved(cv, { customer = f[3], queue = f[4], owner = f[2], team = team }, who, now)
redis.call('HINCRBY', K.stats(), 'resolved', '1')
local after = not f[8] and tonumber(redis.call('HGET', K.settings(), 'follow_up_after_ms') or '0') or 0
if after > 0 then redis.call('ZADD', K.follow_ups(), now + after, cv) end
local first = tonumber(f[5] or '0') == 1
if first then redis.call('HINCRBY', K.stats(), 'first_contact_resolved', '1') end
if first then
  report(now, team, f[9] or nil, 'resolved', 1, 'first_contact', 1)
  agent_report(f[2] or nil, 'resolved', 1, 'first_contact', 1)
else
  report(now, team, f[9] or nil, 'resolved', 1)
  agent_report(f[2] or nil, 'resolved', 1)
end
event('resolved', 'conversation', cv, 'by', who, 'owner', f[2] or '')
return { 'resolved', f[2] or '', tonumber(f[5] or '0') }
