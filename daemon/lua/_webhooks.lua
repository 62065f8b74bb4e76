-- Partner webhook deliveries (docs/delivery.md "Partner webhooks", docs/webhooks.md): what
-- webhook_claim.lua and webhook_result.lua share. Needs _mask _inbox _owners _reroute in front of it.
-- A conversation's undelivered deliveries wait in order in webhooks:order:<team>:<conversation>; only the
-- head is ever in webhooks:due, so a partner sees a conversation's events in the order they happened.

-- The delivery id has left the head of its conversation's list: the next one (if any) becomes due.
local function webhook_next(team, cv, id, now)
  local ok = K.webhooks_order(team, cv)
  if redis.call('LINDEX', ok, 0) == id then redis.call('LPOP', ok) else redis.call('LREM', ok, 1, id) end
  local head = redis.call('LINDEX', ok, 0)
  if head then
    local at = tonumber(redis.call('HGET', K.webhook(head), 'next_at') or now) or now
    redis.call('ZADD', K.webhooks_due(), math.max(at, now), head)
  end
end

-- Gives up on a delivery: kept in webhooks:dead with why, counted on the endpoint, its conversation
-- given back to routing while the partner still holds it (reroute_team_work, _reroute.lua: reason "dead
-- letter", the partner told by a work.revoked), and the conversation's next delivery proceeds.
local function webhook_dead(id, team, cv, now, why)
  redis.call('HSET', K.webhook(id), 'state', 'dead', 'dead_at', now, 'last_error', why)
  redis.call('ZREM', K.webhooks_due(), id)
  redis.call('ZADD', K.webhooks_dead(), now, id)
  redis.call('HINCRBY', K.webhooks_endpoint(team), 'dead', '1')
  local rerouted = reroute_team_work(cv, team, 'dead letter', now)
  if rerouted then redis.call('HSET', K.webhook(id), 'rerouted', 1) end
  webhook_next(team, cv, id, now)
  return rerouted
end
