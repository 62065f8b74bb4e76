-- needs: _mask _inbox _owners _time _report _follow_up
-- What needs the router now: conversations whose target timed out or whose SLA escalation point passed,
-- queued conversations whose plan expired (a team's calendar opened or closed: "replan"),
-- conversations stored but never routed (a router died between storing and routing), and conversations
-- of agents offline past the grace period. SLA breaches are counted here directly.
-- Every trigger found is leased, not removed (claim() in _owners.lua): it stays until the decision acting
-- on it commits (assign.lua), and comes due again for any router if that does not happen within the lease.
-- test_clock: record `now` in due:scanned, so a test knows a scan has seen the time it set.
-- Open offers that expired ("offer expired") and conversations whose re-routing was asked for from outside
-- the router (reroute() in _owners.lua: kind is the `reroute` asked for) are handed out the same way.
-- Follow-ups due (omni:followups) are opened here (_follow_up.lua) and handed out as "new", leased like
-- unrouted work.
-- Returns one record per item: kind is "timeout", "escalation", "replan", "new", "owner offline",
-- "offer expired" or a reroute kind ("rejected", "offer revoked", "transfer", "dead letter"); target the
-- index of the owner's target (-1: none); owner the owner, or for a reroute the owner it was taken from;
-- first_message the JSON of the conversation's first message and identity its sender; conversations, tier
-- and last_owner what is stored of the customer; transfer_to the team a transfer goes to, or for any other
-- move (not "new") the team a transfer gave the work to and that still has it (transferred_to), "" otherwise;
-- for waiting work (a re-plan, an escalation of queued work), the move it waits in: queued_from the index of
-- the rule's target it started at ("" for the first), queued_exclude the agent it left out ("" none);
-- rule the routing rule its last decision was made under ("" none): target and queued_from index that rule's
-- targets, so a move under another rule (a time condition, a reload) starts at that rule's first target.
-- @args prefix:str now:int limit:int grace_ms:int unrouted_after_ms:int lease_ms:int test_clock:bool
-- @reply each conversation:str kind:str version:str target:str owner:str first_message:str identity:str conversations:str tier:str last_owner:str transfer_to:str queued_from:str queued_exclude:str rule:str
local now, limit, grace, unrouted_after, lease_ms = A.now, A.limit, A.grace_ms, A.unrouted_after_ms, A.lease_ms
if A.test_clock then redis.call('SET', K.due_scanned(), now) end
local out, seen = {}, {}

local function item(cv, kind, queued)
  if seen[cv] then return end
  seen[cv] = true
  local ck = K.conversation(cv)
  local c = redis.call('HMGET', ck, 'version', 'target', 'owner', 'customer', 'previous_owner', 'transfer_to',
                       'queued_from', 'queued_exclude', 'transferred_to', 'rule')
  if not queued then c[7], c[8] = nil, nil end
  if kind == 'rejected' or kind == 'offer revoked' or kind == 'transfer' or kind == 'dead letter' then c[3] = c[5] end
  if kind ~= 'transfer' then c[6] = kind ~= 'new' and c[9] or nil end
  local first = redis.call('LINDEX', K.conversation_messages(cv), 0)
  local m = first and redis.call('HMGET', K.msg(first), 'json', 'identity') or {}
  local cust = c[4] or ''
  local cu = redis.call('HMGET', K.customer(cust), 'tier', 'last_owner', 'archived_conversations')
  local n = redis.call('SCARD', K.customer_conversations(cust)) + tonumber(cu[3] or '0')
  for _, v in ipairs({ cv, kind, c[1] or '0', c[2] or '-1', c[3] or '', m[1] or '', m[2] or '', tostring(n),
                       cu[1] or '', cu[2] or '', c[6] or '', c[7] or '', c[8] or '', c[10] or '' }) do out[#out + 1] = v end
end

for _, cv in ipairs(redis.call('ZRANGEBYSCORE', K.timers(), '-inf', now, 'LIMIT', 0, limit)) do
  local ck = K.conversation(cv)
  local f = redis.call('HMGET', ck, 'status', 'timeout_at', 'escalate_at', 'due', 'escalated', 'breached',
                       'first_response_at', 'queued_on', 'queued_prio', 'valid_until', 'offer_expires_at', 'reroute')
  local kind = nil
  if f[1] == 'rerouting' then kind = f[12] end
  if f[1] == 'assigned' or f[1] == 'queued' or f[1] == 'offered' then
    local due = tonumber(f[4])
    if due and due > 0 and now >= due and not f[6] and not f[7] then
      redis.call('HSET', ck, 'breached', 1)
      redis.call('HINCRBY', K.stats(), 'sla_breached', '1')
      event('sla_breached', 'conversation', cv)
      -- the SLA report: under the team holding it, or whose queue it waits in
      local tc = redis.call('HMGET', ck, 'team', 'channel', 'owner')
      report(now, tc[1] or f[8] or nil, tc[2] or nil, 'breached', 1)
      agent_report(tc[3] or nil, 'breached', 1)
      if f[8] and f[9] ~= '1' then -- waiting work past its SLA jumps to the most urgent level, and is that urgent
        redis.call('ZREM', K.team_queue(f[8], f[9]), cv)
        redis.call('ZADD', K.team_queue(f[8], 1), due, cv)
        redis.call('HSET', ck, 'queued_prio', 1, 'prio', 1)
      end
    end
    local timeout, esc, valid, expires = tonumber(f[2]), tonumber(f[3]), tonumber(f[10]), tonumber(f[11])
    if f[1] == 'queued' and valid and valid > 0 and now >= valid then kind = 'replan'
    elseif f[1] == 'offered' and expires and now >= expires then kind = 'offer expired'
    elseif f[7] then kind = nil -- answered: no timeout or escalation applies any more
    elseif timeout and now >= timeout then kind = 'timeout'
    elseif esc and esc > 0 and now >= esc and not f[5] then kind = 'escalation' end
  end
  if kind then
    item(cv, kind, f[1] == 'queued')
    claim(K.timers(), cv, now + lease_ms)
  else
    schedule(cv, now)
  end
end

for _, cv in ipairs(redis.call('ZRANGEBYSCORE', K.follow_ups(), '-inf', now, 'LIMIT', 0, limit)) do
  redis.call('ZREM', K.follow_ups(), cv)
  local nv = open_follow_up(cv, now, A.now_text)
  if nv then
    item(nv, 'new')
    claim(K.unrouted(), nv, now - unrouted_after + lease_ms) -- as below: comes due again if not decided
  end
end

for _, cv in ipairs(redis.call('ZRANGEBYSCORE', K.unrouted(), '-inf', now - unrouted_after, 'LIMIT', 0, limit)) do
  item(cv, 'new')
  claim(K.unrouted(), cv, now - unrouted_after + lease_ms) -- scored by when it was put there
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.agents_offline(), '-inf', now - grace, 'LIMIT', 0, limit)) do
  local owned = redis.call('SMEMBERS', K.agent_conversations(id))
  if #owned == 0 then
    redis.call('ZREM', K.agents_offline(), id) -- everything it held has moved on: the trigger is spent
  else
    for _, cv in ipairs(owned) do item(cv, 'owner offline') end
    claim(K.agents_offline(), id, now - grace + lease_ms) -- scored by when it went offline
  end
end
return out
