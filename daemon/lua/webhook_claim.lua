-- needs: _mask _inbox _owners _reroute _webhooks
-- A sender of omni-webhooks leases deliveries that are due: each is re-scored lease_ms ahead in
-- webhooks:due (claim() in _owners.lua, the router's own lease), not removed, so a sender killed while it
-- sends leaves the delivery to come due again for any sender. webhook_result.lua re-scores or removes it.
-- Only deliveries of the teams this sender is configured for (teams) are taken; others are left for the
-- senders that know them. A delivery of an endpoint disabled by a 410 is not sent: it is dead at once
-- (webhook_dead: its conversation re-routed when the partner still holds it, the next one proceeds).
-- The due set is read page by page until limit are taken: deliveries of other senders' teams are passed
-- over, not counted, so a backlog of another team (its sender down, or at its own concurrency limit) never
-- starves this sender's teams. At most SCAN_MAX are looked at, and at most one page dead-lettered at
-- claim, per call: that bounds the script's time (the rest is for the next call). SCAN_MAX is small because
-- this runs every webhooks.poll on the Redis every router shares: 2,000 looks cost a few ms; a backlog of
-- other teams' longer than that (a sender down for long, a team dropped from every sender's config) holds
-- this sender's teams up again until it shrinks (docs/webhooks.md, Limits).
-- Returns one record per delivery to send now.
-- @args prefix:str now:int limit:int lease_ms:int ...teams:str
-- @reply each id:str team:str conversation:str body:str attempts:int
local SCAN_MAX = 2000
local now, limit = A.now, A.limit
local mine = {}
for _, t in ipairs(A.teams) do mine[t] = true end
local out, n = {}, 0
local page = math.max(limit * 4 + 16, 256)
-- offset: due deliveries passed over so far (other teams'). Those taken or removed leave the range
-- [-inf, now], so the next page starts at offset; a conversation's next delivery made due by a dead
-- letter (score now) may land before it and waits for the next call.
local offset, looked, dead = 0, 0, 0
while n < limit and looked < SCAN_MAX and dead < page do
  local ids = redis.call('ZRANGEBYSCORE', K.webhooks_due(), '-inf', now, 'LIMIT', offset, page)
  for _, id in ipairs(ids) do
    if n >= limit or dead >= page then break end
    looked = looked + 1
    local wk = K.webhook(id)
    local team, state = unpack(redis.call('HMGET', wk, 'team', 'state')) -- not the body of others' ones
    if not team or state ~= 'pending' then
      redis.call('ZREM', K.webhooks_due(), id) -- delivered or dead already: nothing to lease
    elseif not mine[team] then
      offset = offset + 1
    else
      local w = redis.call('HMGET', wk, 'conversation', 'body', 'attempts')
      if redis.call('HEXISTS', K.webhooks_endpoint(team), 'disabled_at') == 1 then
        webhook_dead(id, team, w[1], now, 'endpoint disabled (410)')
        dead = dead + 1
      else
        claim(K.webhooks_due(), id, now + A.lease_ms)
        for _, v in ipairs({ id, team, w[1], w[2], tonumber(w[3] or '0') }) do out[#out + 1] = v end
        n = n + 1
      end
    end
  end
  if #ids < page then break end
end
return out
