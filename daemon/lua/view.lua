-- needs: _mask _inbox _owners
-- One conversation as the caller may see it (docs/delivery.md): id, status, channel, team, owner, category,
-- prio, due, offer_expires_at, first_response_at, follow_up_of, survey and its last 100 messages (with those of the conversations merged into it) (id, channel, from, text, subject, attachments, at),
-- masked when the team holding it masks and the caller is not an operator. "" when there is no such
-- conversation or the caller may not see it (the same answer: a caller learns nothing of others' work), an
-- agent's offer past its offer_expires_at included (no longer theirs, as for every verb: offer_lapsed).
-- @args prefix:str caller:str conversation:str
-- @reply one view:str
local f = redis.call('HMGET', K.conversation(A.conversation), 'owner', 'team', 'status', 'offer_expires_at')
if not may_see('view', A.caller, f[1], f[2]) then return '' end
-- the routers' clock (Redis's time plus the test clock's offset), read only for an open offer
if f[3] == 'offered' then
  if offer_lapsed(A.caller, f[3], f[4], routers_now()) then return '' end
end
return conversation_view(A.conversation, A.caller:sub(1, 9) ~= 'operator:') or ''
