-- A record written and fsynced to the archive: its conversation leaves Redis (docs/archive.md). Only while the
-- claim is still this router's (archive_claim.lua): one taken over meanwhile is left to the router that took it,
-- which finds this record in the file and does not write it again. What is deleted: the conversation's hash,
-- messages (each message's hash, when it still belongs to it), decisions, declined and merged sets, and the same
-- of every conversation merged into it; its id leaves its customer's conversations, counted in the customer's
-- archived_conversations instead. What is written: seen:<id> for each message deleted, for what is left of
-- dedup_ms (retention.dedup) since it was stored, so that its id stays a duplicate that long (until now its hash
-- was the proof; ingest.lua checks both), none for a message older than that; and archived:<n> (the file it
-- went to) for tombstone_ms (0: not kept). done: pairs of conversation and archive file, the file "" for a
-- conversation not written, whose claim is released. Replies: one record per conversation of done, and one
-- ("archived") before it for each conversation that was merged into an archived one.
-- @args prefix:str router:str now:int tombstone_ms:int dedup_ms:int ...done:str
-- @reply each conversation:str outcome:str
local out = {}

local function forget(cv, file)
  for _, id in ipairs(redis.call('LRANGE', K.conversation_messages(cv), 0, -1)) do
    local m = redis.call('HMGET', K.msg(id), 'conversation', 'stored_at')
    if m[1] == cv then
      redis.call('DEL', K.msg(id))
      -- the router's clock on both ends, like stored_at: the window is the same with a test clock moved on
      local left = A.dedup_ms - (A.now - (tonumber(m[2]) or 0))
      if left > 0 then redis.call('SET', K.seen(id), cv, 'PX', itoa(left)) end
    end
  end
  -- the customer keeps the count (its tier depends on it, docs/routing.md), not the id: memory stays bounded
  local cust = redis.call('HGET', K.conversation(cv), 'customer')
  if cust and redis.call('SREM', K.customer_conversations(cust), cv) == 1 then
    redis.call('HINCRBY', K.customer(cust), 'archived_conversations', '1')
  end
  redis.call('DEL', K.conversation(cv), K.conversation_messages(cv), K.conversation_decisions(cv),
             K.conversation_declined(cv), K.conversation_merged(cv))
  redis.call('ZREM', K.timers(), cv)
  redis.call('ZREM', K.unrouted(), cv)
  if A.tombstone_ms > 0 then redis.call('SET', K.archived(cv), file, 'PX', A.tombstone_ms) end
end

for i = 1, #A.done - 1, 2 do
  local cv, file = A.done[i], A.done[i + 1]
  local ck = K.conversation(cv)
  local f = redis.call('HMGET', ck, 'archive_claim', 'status')
  if f[1] ~= A.router or f[2] ~= 'resolved' then
    out[#out + 1] = cv
    out[#out + 1] = f[2] and 'taken over' or 'gone'
  elseif file == '' then
    -- not written (the archive failed, or the claim grew too old to write): due again at once, for any router;
    -- archive_tried stays, for the next claim to look in each file it names first
    redis.call('HDEL', ck, 'archive_claim')
    redis.call('ZADD', K.archive_due(), tonumber(redis.call('HGET', ck, 'resolved_at') or '0'), cv)
    out[#out + 1] = cv
    out[#out + 1] = 'released'
  else
    -- a conversation merged into it is archived inside its record: counted and told as archived too, so that
    -- stats, events and the customers' archived_conversations agree
    local merged = redis.call('SMEMBERS', K.conversation_merged(cv))
    for _, m in ipairs(merged) do
      forget(m, file)
      event('archived', 'conversation', m, 'file', file, 'router', A.router, 'inside', cv)
      out[#out + 1] = m
      out[#out + 1] = 'archived'
    end
    forget(cv, file)
    redis.call('ZREM', K.archive_due(), cv)
    redis.call('HINCRBY', K.stats(), 'archived', itoa(1 + #merged))
    event('archived', 'conversation', cv, 'file', file, 'router', A.router)
    out[#out + 1] = cv
    out[#out + 1] = 'archived'
  end
end
return out
