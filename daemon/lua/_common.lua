-- Shared by every script: scripts/embed-lua puts the files whose names start with "_" in front of each.
-- Every script is called with ARGV[1] = the key prefix (redis.key_prefix) and never touches another key
-- family, so several routers and omnictl can share one Redis. Keys are documented in docs/redis.md.
local P = ARGV[1]

-- A script's arguments, decoded by its declaration: scripts/embed-lua turns the script's "-- @args" line into
-- `local A = {...}` built with these, by name: "int" as a number (its digits kept as A.NAME_text: passing a
-- number to redis.call formats it again, which costs more than the call's own work on a short path), "json"
-- decoded (the text kept as A.NAME_json), "bool" from "1" or "0", a last "...name" takes the rest as a list.
-- A missing, extra or malformed argument is an error reply naming the script and the argument: nothing is
-- written.
local function arg_bad(script, why) error({ err = 'ERR ' .. script .. ': ' .. why }) end
local function arg_count(script, n, names)
  local i, missing = 0, nil
  for name in names:gmatch('%S+') do i = i + 1; if i == #ARGV + 1 then missing = name end end
  arg_bad(script, #ARGV .. ' arguments, expected ' .. n .. (missing and ' (' .. missing .. ' missing)' or ''))
end
local function arg_int(script, name, v)
  if not v:find('^%-?%d+$') then arg_bad(script, 'argument ' .. name .. ' is not an integer: ' .. v:sub(1, 40)) end
  return tonumber(v)
end
local function arg_bool(script, name, v)
  if v ~= '0' and v ~= '1' then arg_bad(script, 'argument ' .. name .. ' is not 0 or 1: ' .. v:sub(1, 40)) end
  return v == '1'
end
local function arg_json(script, name, v)
  local ok, doc = pcall(cjson.decode, v)
  if not ok then arg_bad(script, 'argument ' .. name .. ' is not JSON: ' .. v:sub(1, 40)) end
  return doc
end

-- An integer as the text redis.call is given: a number argument would be formatted by Redis with "%.17g", a
-- floating-point conversion several times the cost of this one, paid for each of the dozen or so numbers a
-- routing decision writes.
local function itoa(n) return string.format('%d', n) end

-- A call that stores or routes many messages at once (ingest.lua, assign.lua) runs them in a batch: the ids it
-- gives new customers and conversations come from one read of each sequence, and the counters it adds to are
-- summed, each written once when the batch ends (one SET or HINCRBY in the AOF a call, not an INCR or HINCRBY a
-- message: ~80 bytes and two commands a routed message, docs/benchmarks.md). Outside a batch both are written
-- at once. The batch is written even when the call fails: an id a write used before the error is never given
-- again.
local batch = nil -- { seq = {kind: last id given}, counts = {key: {field: n}}, order = {key...} }
local function next_id(kind)
  if not batch then return tostring(redis.call('INCR', K.seq(kind))) end
  local n = (batch.seq[kind] or tonumber(redis.call('GET', K.seq(kind)) or '0')) + 1
  batch.seq[kind] = n
  return itoa(n)
end
-- n: an integer (a number)
local function add_count(key, field, n)
  if not batch then redis.call('HINCRBY', key, field, itoa(n)); return end
  local c = batch.counts[key]
  if not c then c = {}; batch.counts[key] = c; batch.order[#batch.order + 1] = key end
  c[field] = (c[field] or 0) + n
end
-- Raises again an error pcall caught. Redis hands pcall a redis.call error (and an error_reply table) as its
-- text, "READONLY You can't write...": raised as text, Redis would answer "ERR READONLY ...", and callers that
-- act on the code (the router's demotion check: READONLY, OOM...) would not see it. Raised as {err = text}, the
-- reply starts with the code as it was.
local function reraise(e)
  if type(e) == 'string' then error({ err = e }, 0) end
  error(e, 0)
end

-- Runs fn() in a batch; its result, or its error raised again once the batch is written (when Redis takes the
-- writes: a replica or a full Redis refuses them as it refused the call's, and its first error is the answer).
local function batched(fn)
  batch = { seq = {}, counts = {}, order = {} }
  local ok, r = pcall(fn)
  local b = batch
  batch = nil
  local function flush()
    for kind, n in pairs(b.seq) do redis.call('SET', K.seq(kind), itoa(n)) end
    for _, key in ipairs(b.order) do
      for field, n in pairs(b.counts[key]) do redis.call('HINCRBY', key, field, itoa(n)) end
    end
  end
  if ok then flush(); return r end
  pcall(flush)
  reraise(r)
end

-- An SLA instant (due, escalate_at: ms, a number or its digits) as a view or an event shows it: nil, so left
-- out, when there is none (plan.c writes -1 when no SLA target applies).
local function sla_at(v) v = tonumber(v); return v and v > 0 and v or nil end

-- Appends an entry to a capped stream. Trimmed once per call, before the call's first entry to it, not by each
-- XADD: an XADD's MAXLEN goes to the AOF with every entry (as MAXLEN = <length>), while an XTRIM that removes
-- nothing (nearly always: ~ trims whole nodes of 100) is not written at all. The stream can pass its cap by
-- what one call adds, until the next call to it trims.
local stream_trimmed = {}
local function stream_add(key, cap, ...)
  if not stream_trimmed[key] then
    stream_trimmed[key] = true
    redis.call('XTRIM', key, 'MAXLEN', '~', cap)
  end
  return redis.call('XADD', key, '*', ...)
end

local function event(kind, ...)
  stream_add(K.events(), '100000', 'type', kind, ...)
end

-- The customer an identity belongs to, creating both on first sight. Returns customer id, created?, and (with
-- defer) the new customer's hash fields, unwritten: the caller opens its first conversation at once and writes
-- them with it (open_conversation's customer_fields), one write instead of two. now: ms, a number or its digits.
local function ensure_identity(ident, now, defer)
  local c = redis.call('HGET', K.identity(ident), 'customer')
  if c then return c, false end
  c = next_id('customer')
  -- "home" never changes: it is the customer this identity falls back to when every link is undone
  redis.call('HSET', K.identity(ident), 'customer', c, 'home', c, 'first_seen', now)
  local fields = { 'created_at', now, 'first_identity', ident }
  if not defer then redis.call('HSET', K.customer(c), unpack(fields)) end
  redis.call('SADD', K.customer_identities(c), ident)
  return c, true, fields
end

-- queue: the arrival queue it waits on, or nil when a router routes it (omni:unrouted holds it then: being on
-- both would cost two writes more per message). customer_fields: nil, or more fields of the customer's hash
-- to write with its open_conversation. defer: the conversation's own hash is not written here; its fields
-- are returned (else nil) for the caller to write (ingest.lua writes them with the decision it makes in the
-- same call).
local function open_conversation(cust, ident, channel, queue, now, customer_fields, defer)
  local cv = next_id('conversation')
  local fields = nil
  if defer then
    fields = { 'customer', cust, 'status', 'open', 'opened_at', now, 'first_identity', ident, 'channel', channel }
    if queue then fields[#fields + 1], fields[#fields + 2] = 'queue', queue end
  elseif queue then -- the literal calls, not a table unpacked: this runs for every message that opens one
    redis.call('HSET', K.conversation(cv), 'customer', cust, 'status', 'open', 'opened_at', now,
               'first_identity', ident, 'channel', channel, 'queue', queue)
  else
    redis.call('HSET', K.conversation(cv), 'customer', cust, 'status', 'open', 'opened_at', now,
               'first_identity', ident, 'channel', channel)
  end
  local cf = customer_fields or {}
  cf[#cf + 1], cf[#cf + 2] = 'open_conversation', cv
  redis.call('HSET', K.customer(cust), unpack(cf))
  redis.call('SADD', K.customer_conversations(cust), cv)
  if queue then redis.call('ZADD', K.queue(queue), now, cv) end
  return cv, fields
end
