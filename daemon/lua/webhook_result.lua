-- needs: _mask _inbox _owners _reroute _webhooks
-- What a sender of omni-webhooks learnt from one attempt of delivery id: status is the HTTP status (0: no
-- answer; error then says why: a timeout, a refused connection). 2xx: delivered, the conversation's next
-- delivery becomes due. 410: the partner's endpoint is disabled (webhooks:endpoint:<team> disabled_at,
-- disabled_status), the delivery dead, and the team's deliveries waiting for a retry due at once (the next
-- claims dead-letter them, webhook_claim.lua). Otherwise it failed: attempts + 1, and it comes due again at
-- next_at (the sender's backoff with jitter, or Retry-After), unless that was its max_attempts-th attempt:
-- then it is dead (webhook_dead: re-routed, the next one proceeds).
-- lease: the score webhook_claim.lua gave the delivery in webhooks:due when this attempt was claimed. When
-- the score is another, this attempt's lease ran out before its outcome came and another sender has claimed
-- the delivery since: a failure is counted but neither re-schedules it nor dead-letters it (the holder of the
-- lease does, with its own attempt's outcome), so that two attempts of one delivery are never in flight at
-- once. A 2xx or a 410 counts as always: the partner has spoken.
-- A delivery no longer pending (delivered or dead before this outcome came) is left as it is: "settled".
-- A delivered delivery's hash expires after keep_ms (its conversation no longer needs it in order).
-- Returns what this outcome made of it ("pending", "delivered", "dead", "settled", or "gone") and its attempts.
-- @args prefix:str id:str now:int status:int error:str next_at:int max_attempts:int keep_ms:int lease:int
-- @reply state:str attempts:int rerouted:int
local id, now, status = A.id, A.now, A.status
local wk = K.webhook(id)
local w = redis.call('HMGET', wk, 'team', 'conversation', 'state', 'attempts')
if not w[1] then return { 'gone', 0, 0 } end
local attempts = tonumber(w[4] or '0')
if w[3] ~= 'pending' then return { 'settled', attempts, 0 } end
local team, cv = w[1], w[2]
local ek = K.webhooks_endpoint(team)
attempts = attempts + 1
redis.call('HSET', wk, 'attempts', attempts, 'last_status', status, 'last_error', A.error, 'last_attempt_at', now)
if status >= 200 and status < 300 then
  redis.call('HSET', wk, 'state', 'delivered', 'delivered_at', now)
  redis.call('HDEL', wk, 'next_at')
  redis.call('ZREM', K.webhooks_due(), id)
  redis.call('HINCRBY', ek, 'delivered', '1')
  webhook_next(team, cv, id, now)
  redis.call('PEXPIRE', wk, A.keep_ms)
  return { 'delivered', attempts, 0 }
end
redis.call('HINCRBY', ek, 'failed', '1')
if status == 410 then
  redis.call('HSET', ek, 'disabled_at', now, 'disabled_status', 410)
  local rr = webhook_dead(id, team, cv, now, 'endpoint disabled (410)')
  -- The team's deliveries waiting for a retry are due now, so that the next claims dead-letter them and
  -- re-route their work at once, not when their backoff (or Retry-After: up to 1 h) ends. Those leased (an
  -- attempt in flight: scored past their next_at) are left to their outcome.
  local due = K.webhooks_due()
  local later = redis.call('ZRANGEBYSCORE', due, '(' .. now, '+inf', 'WITHSCORES')
  for i = 1, #later, 2 do
    local f = redis.call('HMGET', K.webhook(later[i]), 'team', 'state', 'next_at')
    if f[1] == team and f[2] == 'pending' and tonumber(f[3]) == tonumber(later[i + 1]) then
      redis.call('ZADD', due, now, later[i])
      redis.call('HSET', K.webhook(later[i]), 'next_at', now)
    end
  end
  return { 'dead', attempts, rr and 1 or 0 }
end
local held = redis.call('ZSCORE', K.webhooks_due(), id)
if held and tonumber(held) ~= A.lease then return { 'pending', attempts, 0 } end -- another sender's lease
if attempts >= A.max_attempts then
  local why = (A.error ~= '' and A.error or ('HTTP ' .. status)) .. ' after ' .. attempts ..
              (attempts == 1 and ' attempt' or ' attempts')
  local rr = webhook_dead(id, team, cv, now, why)
  return { 'dead', attempts, rr and 1 or 0 }
end
-- disabled meanwhile (another delivery's 410): due now, to be dead-lettered at the next claim
local next_at = redis.call('HEXISTS', ek, 'disabled_at') == 1 and now or A.next_at
redis.call('HSET', wk, 'next_at', next_at)
redis.call('ZADD', K.webhooks_due(), next_at, id)
return { 'pending', attempts, 0 }
