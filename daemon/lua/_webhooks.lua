-- Partner webhook deliveries (docs/delivery.md "Partner webhooks", docs/webhooks.md): what
-- webhook_claim.lua and webhook_result.lua share. Needs _owners (release) in front of it.
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

-- A dead letter gives the work back to routing when the partner still holds it (the conversation's
-- `team` is this partner and it is not resolved): the owner is released, the conversation marked for
-- re-routing (docs/delivery.md "Re-routing requested from outside the router") and put in timers at `now`
-- so a router's tick decides again with the policy. The partner is told (work.revoked, reason dead letter).
-- Returns true when it re-routed.
local function webhook_reroute(team, cv, now)
  local ck = K.conversation(cv)
  local c = redis.call('HMGET', ck, 'status', 'team')
  if c[2] ~= team or c[1] == 'resolved' or c[1] == 'merged' or c[1] == 'rerouting' then return false end
  release(cv)
  redis.call('HSET', ck, 'status', 'rerouting', 'reroute', 'dead letter')
  redis.call('HDEL', ck, 'transfer_to')
  redis.call('ZADD', K.timers(), now, cv)
  event('rerouting', 'conversation', cv, 'reason', 'dead letter', 'team', team)
  redis.call('XADD', K.inbox_team(team), 'MAXLEN', '~', 10000, '*', 'type', 'work.revoked', 'conversation', cv,
             'data', cjson.encode({ conversation = cv, at = now, reason = 'dead letter' }))
  return true
end

-- Gives up on a delivery: kept in webhooks:dead with why, counted on the endpoint, its conversation
-- re-routed by the rule above, and the conversation's next delivery proceeds.
local function webhook_dead(id, team, cv, now, why)
  redis.call('HSET', K.webhook(id), 'state', 'dead', 'dead_at', now, 'last_error', why)
  redis.call('ZREM', K.webhooks_due(), id)
  redis.call('ZADD', K.webhooks_dead(), now, id)
  redis.call('HINCRBY', K.webhooks_endpoint(team), 'dead', 1)
  local rerouted = webhook_reroute(team, cv, now)
  if rerouted then redis.call('HSET', K.webhook(id), 'rerouted', 1) end
  webhook_next(team, cv, id, now)
  return rerouted
end
