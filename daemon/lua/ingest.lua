-- needs: _mask _inbox _owners _plan _resolved _assign
-- Stores messages, each as one unit: deduplicate by id, resolve the sender to a customer, fold a near-copy
-- of a recent message in the customer's open conversation, attach to that conversation or open one. A crash
-- or a second router sees all of a message or none of it. Several messages go in one call (the router sends
-- those of one read that share a Redis connection): the call's own cost, which is more than a message's
-- writes, is paid once for all of them (docs/benchmarks.md). This runs for every message, so it makes as few
-- calls as it can: the common path is 2 writes and a few reads a message (3 when somebody
-- holds its conversation), and the counters once a call.
-- routing: a new conversation is marked unrouted until a decision routes it. messages: six arguments each,
-- id, identity, channel, message (its JSON), fingerprint (the text's, 16 hex digits, "" for none; fold.h),
-- plan: "" or the plan plan.c made for the message's conversation if its sender is a new customer (conv "":
-- not known yet). When the sender was in fact a customer made by this message, that conversation (its first;
-- no tier, no previous owner: what the plan assumed) is decided here, as assign.lua would (decide_plan,
-- _assign.lua, with days), in the same call and the same durable write: no second call, no second wait for
-- the disk. Otherwise the plan is not used and the router plans from this reply, as for any other.
-- Replies, one record per message in order: stored 1 (0: a duplicate), opened 1 when the message opened the
-- conversation, and then the customer's conversation count, stored tier and previous owner; folded_into:
-- the id of the message it is a copy of when it was folded, else ""; outcome and detail: the decision made
-- here on its plan (assign.lua's record), else "" and "".
-- An id is a duplicate while its message is in Redis (its hash, written last), or after its conversation was
-- archived while its seen:<id> marker lasts (archive_done.lua writes it for what is left of retention.dedup).
-- A stored message needs no marker of its own: one write less for every message (docs/archive.md).
-- days: {team: "YYYY-MM-DD"} for the quotas of the decisions made here ("{}" when no message has a plan).
-- @args prefix:str now:int queue:str routing:bool fold_window_ms:int fold_max_bits:int days:json ...messages:str
-- @reply each stored:int customer:str conversation:str opened:int new_customer:int conversations:int tier:str last_owner:str folded_into:str outcome:str detail:str
local now, queue, routing, window, max_bits = A.now, A.queue, A.routing, A.fold_window_ms, A.fold_max_bits
local now_text = A.now_text -- what is written (a number given to redis.call is formatted again, at a cost)
local list = A.messages
if #list % 6 ~= 0 then
  return redis.error_reply('ERR ingest: messages come in sixes (id identity channel message fingerprint plan)')
end

-- Bits set in a 32-bit value, by halves, nibbles and bytes (no loop: this runs for every message).
local band, rshift = bit.band, bit.rshift
local function popcount32(x)
  x = x - band(rshift(x, 1), 0x55555555)
  x = band(x, 0x33333333) + band(rshift(x, 2), 0x33333333)
  x = band(x + rshift(x, 4), 0x0F0F0F0F)
  x = x + rshift(x, 8) -- no multiply: Lua's bit library converts only smaller products exactly
  return band(x + rshift(x, 16), 0x3F)
end

-- Hamming distance of two 16-hex-digit fingerprints, 32 bits at a time (Lua numbers hold 53 bits).
local function distance(a, b)
  return popcount32(bit.bxor(tonumber(a:sub(1, 8), 16), tonumber(b:sub(1, 8), 16))) +
         popcount32(bit.bxor(tonumber(a:sub(9, 16), 16), tonumber(b:sub(9, 16), 16)))
end

local stored, volume = 0, {} -- counted once for the call: messages stored; per channel

-- One message; returns its reply record.
local function store(id, ident, channel, json, fingerprint, plan)
  local mk = K.msg(id)
  -- An id is known while its message is in Redis (not archived yet) or its marker lasts (archived within
  -- retention.dedup): one EXISTS for both on the common path, a new id; the conversation is read only for a resend
  local conv = redis.call('EXISTS', K.seen(id), mk) > 0 and
               (redis.call('HGET', mk, 'conversation') or redis.call('GET', K.seen(id)))
  if conv then
    redis.call('HINCRBY', K.stats(), 'duplicates', '1')
    return { 0, '', conv, 0, 0, 0, '', '', '', '', '' }
  end
  local cust, created, customer_fields = ensure_identity(ident, now_text, true)
  local ck = K.customer(cust)
  -- a customer made just now has no conversation yet: nothing to read (the common case of a first contact)
  local cv = not created and redis.call('HGET', ck, 'open_conversation') or nil

  -- The message's hash is the deduplication, so it is written last: Redis does not roll a script back,
  -- and an error between two writes must never leave a message "already stored" in no conversation. A
  -- resend after such an error finds the id already at the end of the list and does not add it twice.
  -- last: the id at the end of the conversation's list, when the caller has read it already; fresh: the
  -- conversation was opened by this message, so its list is empty and there is no resend to spot
  local function attach(conv, fresh, last, ...)
    local lk = K.conversation_messages(conv)
    if fresh then last = false elseif last == nil then last = redis.call('LINDEX', lk, -1) end
    if last ~= id then redis.call('RPUSH', lk, id) end
    redis.call('HSET', mk, 'json', json, 'identity', ident, 'channel', channel, 'conversation', conv,
               'stored_at', now_text, ...)
    stored = stored + 1
    volume[channel] = (volume[channel] or 0) + 1
  end

  -- Folding: compared with the newest message of the customer's open conversation, whose fingerprint is in
  -- its own hash. Each copy of a burst or a cross-post matches the one before it, so the newest is enough.
  -- Reads only: a write here would cost more than they do on this path. Only an open conversation folds:
  -- one resolved meanwhile has nobody on it, so a late copy opens new work like any other message.
  local last -- the newest id of the open conversation, when read here (attach then needs no second read)
  if fingerprint ~= '' and window > 0 and cv then
    last = redis.call('LINDEX', K.conversation_messages(cv), -1)
    local m = last and last ~= id and redis.call('HMGET', K.msg(last), 'fp', 'stored_at', 'folded_into')
    if m and m[1] and tonumber(m[2]) >= now - window and distance(m[1], fingerprint) <= max_bits then
      -- Stored with the first copy's conversation and routed no further: the customer asked once, on
      -- several channels.
      local original = m[3] or last
      attach(cv, false, last, 'folded_into', original, 'fp', fingerprint)
      redis.call('HINCRBY', K.stats(), 'folded', '1')
      event('folded', 'id', id, 'into', original, 'conversation', cv)
      return { 1, cust, cv, 0, 0, 0, '', '', original, '', '' }
    end
  end

  local opened, fields = 0, nil
  -- A new customer's first conversation that came with a plan is decided below, in this call: its hash is
  -- written once, with the decision, and it is listed unrouted only when no decision was made.
  local deciding = created and plan ~= '' and routing
  if not cv then
    cv, fields = open_conversation(cust, ident, channel, not routing and queue or nil, now_text,
                                   created and customer_fields or nil, deciding)
    opened = 1
    -- a router that dies before routing it leaves it here; any router's tick picks it up (due.lua)
    if routing and not deciding then redis.call('ZADD', K.unrouted(), now_text, cv) end
  end
  if fingerprint ~= '' then attach(cv, opened == 1, last, 'fp', fingerprint) else attach(cv, opened == 1, last) end
  -- no event per message: the stream carries what happens to conversations (opened, assigned, queued, ...)
  if opened == 1 then event('opened', 'conversation', cv, 'customer', cust, 'channel', channel) end
  local new_customer = created and 1 or 0
  if opened == 0 then
    -- Its owner (or the agent offered it) is told of each new message of its work (docs/delivery.md, the
    -- inbox): one read more on this path, and the decoding only when somebody holds the conversation.
    local o = redis.call('HMGET', K.conversation(cv), 'owner', 'team')
    if o[1] then inbox(o[1], 'work.message', cv, { message = message_view(id, json, now, o[2], ident) }, now) end
    return { 1, cust, cv, 0, new_customer, 0, '', '', '', '', '' }
  end
  if created then -- its first conversation, no tier, no owner yet: what a plan sent with the message assumed
    if deciding then
      local ok, r = pcall(decide_plan, 'ingest', plan, A.days, queue, cv, fields)
      if not ok or r[1] == 'stale' or r[1] == 'gone' then
        -- No decision: the conversation is stored as any other opened one and waits unrouted for a router;
        -- an error still fails the call, after that.
        local ck = K.conversation(cv)
        if redis.call('EXISTS', ck) == 0 then redis.call('HSET', ck, unpack(fields)) end
        redis.call('ZADD', K.unrouted(), now_text, cv)
        if not ok then reraise(r) end
      end
      return { 1, cust, cv, 1, 1, 1, '', '', '', r[1], r[2] }
    end
    return { 1, cust, cv, 1, 1, 1, '', '', '', '', '' }
  end
  local cu = redis.call('HMGET', ck, 'tier', 'last_owner', 'archived_conversations')
  return { 1, cust, cv, 1, new_customer, redis.call('SCARD', K.customer_conversations(cust)) + tonumber(cu[3] or '0'),
           cu[1] or '', cu[2] or '', '', '', '' }
end

local out = {}
batched(function() -- new customers' and conversations' ids, the teams' counters: written once (_common.lua)
  for i = 1, #list, 6 do
    for _, v in ipairs(store(list[i], list[i + 1], list[i + 2], list[i + 3], list[i + 4], list[i + 5])) do
      out[#out + 1] = v
    end
  end
end)
-- counted here, in the same call that stores them, so omnictl status is exact the moment the ACKs leave
if stored > 0 then redis.call('HINCRBY', K.stats(), 'messages', stored) end
-- per channel and minute, for the console's last hour (docs/redis.md, omni:volume); the first messages of a
-- channel in a minute also set the hash's expiry
local vk = K.volume(math.floor(now / 60000))
for channel, n in pairs(volume) do
  if redis.call('HINCRBY', vk, channel, n) == n then redis.call('EXPIRE', vk, '7200') end
end
return out
