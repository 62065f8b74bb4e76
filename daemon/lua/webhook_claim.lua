-- needs: _mask _inbox _owners _reroute _webhooks
-- A sender of omni-webhooks leases deliveries that are due: each is re-scored lease_ms ahead in
-- webhooks:due (claim() in _owners.lua, the router's own lease), not removed, so a sender killed while it
-- sends leaves the delivery to come due again for any sender. webhook_result.lua re-scores or removes it.
-- Only deliveries of the teams this sender is configured for (teams) are taken; others are left for the
-- senders that know them. A delivery of an endpoint disabled by a 410 is not sent: it is dead at once
-- (webhook_dead: its conversation re-routed when the partner still holds it, the next one proceeds).
-- Returns one record per delivery to send now.
-- @args prefix:str now:int limit:int lease_ms:int ...teams:str
-- @reply each id:str team:str conversation:str body:str attempts:int
local now, limit = A.now, A.limit
local mine = {}
for _, t in ipairs(A.teams) do mine[t] = true end
local out, n = {}, 0
-- A few more than limit: deliveries of other senders' teams are passed over, not counted.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.webhooks_due(), '-inf', now, 'LIMIT', 0, limit * 4 + 16)) do
  if n >= limit then break end
  local w = redis.call('HMGET', K.webhook(id), 'team', 'conversation', 'body', 'attempts', 'state')
  if not w[1] or w[5] ~= 'pending' then
    redis.call('ZREM', K.webhooks_due(), id) -- delivered or dead already: nothing to lease
  elseif mine[w[1]] then
    if redis.call('HEXISTS', K.webhooks_endpoint(w[1]), 'disabled_at') == 1 then
      webhook_dead(id, w[1], w[2], now, 'endpoint disabled (410)')
    else
      claim(K.webhooks_due(), id, now + A.lease_ms)
      for _, v in ipairs({ id, w[1], w[2], w[3], tonumber(w[4] or '0') }) do out[#out + 1] = v end
      n = n + 1
    end
  end
end
return out
