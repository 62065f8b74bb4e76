-- Hands this router resolved conversations whose retention is over, to write to the archive (docs/archive.md).
-- archive:due holds each resolved conversation scored by when it was resolved; one older than cutoff (now -
-- retention.resolved) is claimed: the claim (router, file) is written in its hash and its score moved lease_ms
-- ahead, so no other router takes it meanwhile and a dead router's claim comes due again for any.
-- file is the archive file the record will be appended to; offset what this router last saw of its size (the
-- record lands at or after it). archive_tried keeps every file a claim of it named, one line "OFFSET FILE" each
-- (the first offset: files only grow); tried is what it held before this claim ("" when none): the archiver looks
-- in each of those files from its offset for a record already written (a router killed between its fsync and
-- archive_done.lua, or a batch that failed after some of its writes) before it writes one. At most limit
-- conversations, max_messages messages and max_bytes bytes of message JSON (a conversation's own and those merged
-- into it): the first that would pass one of them waits for the next batch, unless it is the first (one
-- conversation always), so a reply stays a bounded size. data: the conversation as cjson of {fields, messages,
-- decisions, merged}.
-- @args prefix:str router:str now:int cutoff:int lease_ms:int limit:int max_messages:int max_bytes:int file:str offset:int
-- @reply each conversation:str tried:str data:str
local out, n, messages, bytes = {}, 0, 0, 0

local function hash(key)
  local h, kv = {}, redis.call('HGETALL', key)
  for i = 1, #kv, 2 do h[kv[i]] = kv[i + 1] end
  return h
end

-- One conversation as stored: its hash, each message's hash with its id, its decisions (JSON text each); size
-- (a table of messages and bytes) counts what its messages add to the batch.
local function dump(cv, size)
  local c = { conversation = cv, fields = hash(K.conversation(cv)), messages = {}, decisions = {} }
  for _, id in ipairs(redis.call('LRANGE', K.conversation_messages(cv), 0, -1)) do
    local m = hash(K.msg(id))
    m.id = id
    size.bytes = size.bytes + #(m.json or '')
    c.messages[#c.messages + 1] = m
  end
  size.messages = size.messages + #c.messages
  c.decisions = redis.call('LRANGE', K.conversation_decisions(cv), 0, -1)
  return c
end

for _, cv in ipairs(redis.call('ZRANGEBYSCORE', K.archive_due(), '-inf', A.cutoff, 'LIMIT', 0, A.limit)) do
  if n >= A.limit then break end
  local ck = K.conversation(cv)
  local f = redis.call('HMGET', ck, 'status', 'archive_tried')
  if f[1] ~= 'resolved' then
    redis.call('ZREM', K.archive_due(), cv) -- archived meanwhile (gone), or not resolved: nothing to archive
  else
    -- read first (nothing written yet): one that does not fit is left as it is, for the next batch
    local size = { messages = 0, bytes = 0 }
    local c = dump(cv, size)
    -- Conversations merged into it go with it: nothing reopens them once it is resolved (_regroup.lua).
    c.merged = {}
    for _, m in ipairs(redis.call('SMEMBERS', K.conversation_merged(cv))) do c.merged[#c.merged + 1] = dump(m, size) end
    if n > 0 and (messages + size.messages > A.max_messages or bytes + size.bytes > A.max_bytes) then break end
    messages, bytes = messages + size.messages, bytes + size.bytes
    local tried, named = f[2] or '', false
    for line in tried:gmatch('[^\n]+') do named = named or line:match('^%d+ (.*)$') == A.file end
    local claim = { archive_claim = A.router, archive_file = A.file, archive_claimed_at = itoa(A.now),
                    archive_tried = named and tried or tried .. A.offset .. ' ' .. A.file .. '\n' }
    redis.call('HSET', ck, 'archive_claim', claim.archive_claim, 'archive_file', claim.archive_file,
               'archive_claimed_at', claim.archive_claimed_at, 'archive_tried', claim.archive_tried)
    redis.call('ZADD', K.archive_due(), A.cutoff + A.lease_ms, cv)
    for k, v in pairs(claim) do c.fields[k] = v end -- the record holds the claim that wrote it
    for _, v in ipairs({ cv, tried, cjson.encode(c) }) do out[#out + 1] = v end
    n = n + 1
  end
end
return out
