-- needs: _owners
-- What needs the router now: conversations whose target timed out or whose SLA escalation point passed,
-- queued conversations whose plan expired (a team's calendar opened or closed: "replan"),
-- conversations stored but never routed (a router died between storing and routing), and conversations
-- of agents offline past the grace period. SLA breaches are counted here directly.
-- Every trigger found is leased, not removed (claim() in _owners.lua): it stays until the decision acting
-- on it commits (assign.lua), and comes due again for any router if that does not happen within the lease.
-- test_clock: record `now` in due:scanned, so a test knows a scan has seen the time it set.
-- Returns one record per item: kind is "timeout", "escalation", "replan", "new" or "owner offline";
-- target the index of the owner's target (-1: none); first_message the JSON of the conversation's first
-- message and identity its sender; conversations, tier and last_owner what is stored of the customer.
-- @args prefix:str now:int limit:int grace_ms:int unrouted_after_ms:int lease_ms:int test_clock:bool
-- @reply each conversation:str kind:str version:str target:str owner:str first_message:str identity:str conversations:str tier:str last_owner:str
local now, limit, grace, unrouted_after, lease_ms = A.now, A.limit, A.grace_ms, A.unrouted_after_ms, A.lease_ms
if A.test_clock then redis.call('SET', K.due_scanned(), now) end
local out, seen = {}, {}

local function item(cv, kind)
  if seen[cv] then return end
  seen[cv] = true
  local ck = K.conversation(cv)
  local c = redis.call('HMGET', ck, 'version', 'target', 'owner', 'customer')
  local first = redis.call('LINDEX', K.conversation_messages(cv), 0)
  local m = first and redis.call('HMGET', K.msg(first), 'json', 'identity') or {}
  local cust = c[4] or ''
  local cu = redis.call('HMGET', K.customer(cust), 'tier', 'last_owner')
  local n = redis.call('SCARD', K.customer_conversations(cust))
  for _, v in ipairs({ cv, kind, c[1] or '0', c[2] or '-1', c[3] or '', m[1] or '', m[2] or '', tostring(n),
                       cu[1] or '', cu[2] or '' }) do out[#out + 1] = v end
end

for _, cv in ipairs(redis.call('ZRANGEBYSCORE', K.timers(), '-inf', now, 'LIMIT', 0, limit)) do
  local ck = K.conversation(cv)
  local f = redis.call('HMGET', ck, 'status', 'timeout_at', 'escalate_at', 'due', 'escalated', 'breached',
                       'first_response_at', 'queued_on', 'queued_prio', 'valid_until')
  local kind = nil
  if f[1] == 'assigned' or f[1] == 'queued' then
    local due = tonumber(f[4])
    if due and due > 0 and now >= due and not f[6] and not f[7] then
      redis.call('HSET', ck, 'breached', 1)
      redis.call('HINCRBY', K.stats(), 'sla_breached', 1)
      event('sla_breached', 'conversation', cv)
      if f[8] and f[9] ~= '1' then -- waiting work past its SLA jumps to the most urgent level
        redis.call('ZREM', K.team_queue(f[8], f[9]), cv)
        redis.call('ZADD', K.team_queue(f[8], 1), due, cv)
        redis.call('HSET', ck, 'queued_prio', 1)
      end
    end
    local timeout, esc, valid = tonumber(f[2]), tonumber(f[3]), tonumber(f[10])
    if f[1] == 'queued' and valid and valid > 0 and now >= valid then kind = 'replan'
    elseif f[7] then kind = nil -- answered: no timeout or escalation applies any more
    elseif timeout and now >= timeout then kind = 'timeout'
    elseif esc and esc > 0 and now >= esc and not f[5] then kind = 'escalation' end
  end
  if kind then
    item(cv, kind)
    claim(K.timers(), cv, now + lease_ms)
  else
    schedule(cv, now)
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
