-- needs: _mask _inbox _owners
-- The caller's work (docs/delivery.md): {"offered": [...], "owned": [...]}, each conversation as view.lua
-- renders it. An agent: what it is offered and what it holds, without offers past their offer_expires_at (no
-- longer its own, though no router's tick has moved them on yet: offer_lapsed); a partner: what its team holds
-- (the team itself or its agents); an operator holds nothing itself (both empty: it reads conversations one by
-- one).
-- @args prefix:str caller:str
-- @reply one work:str
local kind, who = A.caller:match('^(%a+):(.+)$')
may_see('work', A.caller, nil, nil) -- refuses a caller of another form
local ids = {}
if kind == 'agent' then ids = redis.call('SMEMBERS', K.agent_conversations(who))
elseif kind == 'partner' then ids = redis.call('SMEMBERS', K.team_conversations(who)) end
table.sort(ids, function(a, b) return (tonumber(a) or 0) < (tonumber(b) or 0) end)
local now -- the routers' clock (Redis's time plus the test clock's offset), read once, for the first open offer
local offered, owned = {}, {}
for _, cv in ipairs(ids) do
  local st, expires = unpack(redis.call('HMGET', K.conversation(cv), 'status', 'offer_expires_at'))
  if st == 'offered' and not now then now = routers_now() end
  if not offer_lapsed(A.caller, st, expires, now or 0) then
    local v = conversation_view(cv, true)
    if v and st == 'offered' then offered[#offered + 1] = v elseif v then owned[#owned + 1] = v end
  end
end
return '{"offered":' .. json_array(offered) .. ',"owned":' .. json_array(owned) .. '}'
