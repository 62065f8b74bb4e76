-- needs: _mask _inbox _owners _reroute _webhooks
-- What a sender of omni-webhooks learnt from one attempt of delivery id: status is the HTTP status (0: no
-- answer; error then says why: a timeout, a refused connection). 2xx: delivered, the conversation's next
-- delivery becomes due. 410: the partner's endpoint is disabled (webhooks:endpoint:<team> disabled_at,
-- disabled_status) and the delivery dead. Otherwise it failed: attempts + 1, and it comes due again at
-- next_at (the sender's backoff with jitter, or Retry-After), unless that was its max_attempts-th attempt:
-- then it is dead (webhook_dead: re-routed, the next one proceeds).
-- A delivery no longer pending (another sender's result after a lease ran out) is left as it is.
-- A delivered delivery's hash expires after keep_ms (its conversation no longer needs it in order).
-- Returns its state ("pending", "delivered", "dead", or "gone") and its attempts.
-- @args prefix:str id:str now:int status:int error:str next_at:int max_attempts:int keep_ms:int
-- @reply state:str attempts:int rerouted:int
local id, now, status = A.id, A.now, A.status
local wk = K.webhook(id)
local w = redis.call('HMGET', wk, 'team', 'conversation', 'state', 'attempts')
if not w[1] then return { 'gone', 0, 0 } end
local attempts = tonumber(w[4] or '0')
if w[3] ~= 'pending' then return { w[3], attempts, 0 } end
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
  return { 'dead', attempts, rr and 1 or 0 }
end
if attempts >= A.max_attempts then
  local why = (A.error ~= '' and A.error or ('HTTP ' .. status)) .. ' after ' .. attempts .. ' attempts'
  local rr = webhook_dead(id, team, cv, now, why)
  return { 'dead', attempts, rr and 1 or 0 }
end
redis.call('HSET', wk, 'next_at', A.next_at)
redis.call('ZADD', K.webhooks_due(), A.next_at, id)
return { 'pending', attempts, 0 }
