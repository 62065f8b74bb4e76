-- A conversation becoming resolved: what resolve.lua does when a person resolves work, and assign.lua when
-- a routing rule with `record: true` stores a new conversation as no work (docs/routing.md), written once.
-- f: what the caller read of the conversation: customer, queue (its arrival queue), owner (nil: none; its
-- capacity is the caller's to release first; an agent is kept as resolved_owner, the agent a survey's scores
-- count for), team (nil: none; kept as resolved_team, the team they count for: survey.lua). who: the name
-- recorded as resolved_by.
local function mark_resolved(cv, f, who, now)
  local ck = K.conversation(cv)
  if f.queue then redis.call('ZREM', K.queue(f.queue), cv) end
  redis.call('ZREM', K.unrouted(), cv)
  redis.call('HINCRBY', ck, 'version', '1')
  local set = { 'status', 'resolved', 'resolved_at', now, 'resolved_by', who }
  if f.team then set[#set + 1] = 'resolved_team'; set[#set + 1] = f.team end
  if f.owner and f.owner:sub(1, 6) == 'agent:' then set[#set + 1] = 'resolved_owner'; set[#set + 1] = f.owner end
  redis.call('HSET', ck, unpack(set))
  -- kept retention.resolved from now, then archived to disk and deleted (archive_claim.lua, docs/archive.md)
  redis.call('ZADD', K.archive_due(), now, cv)
  local cust = K.customer(f.customer)
  if redis.call('HGET', cust, 'open_conversation') == cv then redis.call('HDEL', cust, 'open_conversation') end
  redis.call('HSET', cust, 'last_conversation', cv)
  if f.owner and f.owner:match('^agent:') then redis.call('HSET', cust, 'last_owner', f.owner:sub(7)) end
end
