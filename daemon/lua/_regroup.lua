-- Makes customers and open conversations agree with the identity link graph after a link or an unlink.
-- A customer is a connected component of identities; its id is the smallest "home" customer among them,
-- so undoing every link gives each identity its own first customer back. A customer has one open
-- conversation; conversations joined by a link are marked merged into the oldest, and an unlink gives
-- each conversation back to the side of the identity that opened it, with the messages that arrived on
-- the other side's identities while joined.

local function component(start)
  local seen, list, i = { [start] = true }, { start }, 1
  while i <= #list do
    for _, n in ipairs(redis.call('SMEMBERS', K.links(list[i]))) do
      if not seen[n] then seen[n] = true; list[#list + 1] = n end
    end
    i = i + 1
  end
  return list
end

local function customer_of(ident) return redis.call('HGET', K.identity(ident), 'customer') end

local function regroup(seeds, now)
  local done, touched = {}, {}
  for _, seed in ipairs(seeds) do
    if not done[seed] then
      local members, target = component(seed), nil
      for _, m in ipairs(members) do
        done[m] = true
        local home = tonumber(redis.call('HGET', K.identity(m), 'home'))
        if not target or home < target then target = home end
      end
      target = tostring(target)
      touched[target] = true
      for _, m in ipairs(members) do
        local old = customer_of(m)
        if old ~= target then
          touched[old] = true
          redis.call('HSET', K.identity(m), 'customer', target)
          redis.call('SMOVE', K.customer_identities(old), K.customer_identities(target), m)
        end
      end
    end
  end
  -- Customers left without identities point to where their first identity went; live ones lose that.
  local pool = {}
  for c in pairs(touched) do
    local ck = K.customer(c)
    if redis.call('SCARD', K.customer_identities(c)) == 0 then
      redis.call('HSET', ck, 'merged_into', customer_of(redis.call('HGET', ck, 'first_identity')))
    else
      redis.call('HDEL', ck, 'merged_into')
    end
    local open = redis.call('HGET', ck, 'open_conversation')
    if open then
      pool[#pool + 1] = open
      for _, m in ipairs(redis.call('SMEMBERS', K.conversation_merged(open))) do pool[#pool + 1] = m end
      redis.call('HDEL', ck, 'open_conversation')
    end
  end
  table.sort(pool, function(x, y) return tonumber(x) < tonumber(y) end)
  -- Each conversation goes to the side of the identity that opened it; per side the oldest stays open.
  local heads, side_of = {}, {}
  for _, cv in ipairs(pool) do
    local ck = K.conversation(cv)
    local side = customer_of(redis.call('HGET', ck, 'first_identity'))
    side_of[cv] = side
    local was = redis.call('HGET', ck, 'customer')
    if was ~= side then
      redis.call('SMOVE', K.customer_conversations(was), K.customer_conversations(side), cv)
      redis.call('HSET', ck, 'customer', side)
    end
    redis.call('DEL', K.conversation_merged(cv))
    local queue = redis.call('HGET', ck, 'queue')
    if not heads[side] then
      heads[side] = cv
      -- reopened by an unlink: it is routed again (an owner it kept stays with it)
      local was = redis.call('HGET', ck, 'status')
      if was == 'merged' then
        redis.call('HSET', ck, 'status', 'open')
        redis.call('ZADD', K.unrouted(), now, cv) -- routers pick it up (due.lua) when a policy routes
      end
      redis.call('HDEL', ck, 'merged_into')
      redis.call('HSET', K.customer(side), 'open_conversation', cv)
      if queue then redis.call('ZADD', K.queue(queue), 'NX', redis.call('HGET', ck, 'opened_at'), cv) end
    else
      local prev = redis.call('HMGET', ck, 'status', 'merged_into')
      release(cv, 'merged', now) -- its owner's capacity goes back: the work continues in the open conversation
      -- Whoever holds the open conversation is told of each message the merge brings it (its newest 100, as
      -- the view shows them), as of any new message of its work; not again when it was merged into it already.
      local o = redis.call('HMGET', K.conversation(heads[side]), 'owner', 'team')
      if o[1] and not (prev[1] == 'merged' and prev[2] == heads[side]) then
        for _, id in ipairs(redis.call('LRANGE', K.conversation_messages(cv), -100, -1)) do
          local m = redis.call('HMGET', K.msg(id), 'json', 'stored_at', 'identity')
          if m[1] then inbox(o[1], 'work.message', heads[side], { message = message_view(id, m[1], m[2], o[2], m[3]) }, now) end
        end
      end
      redis.call('HSET', ck, 'status', 'merged', 'merged_into', heads[side])
      redis.call('SADD', K.conversation_merged(heads[side]), cv)
      if queue then redis.call('ZREM', K.queue(queue), cv) end
      redis.call('ZREM', K.unrouted(), cv)
    end
  end
  -- Messages follow the identity they came from.
  local moved = 0
  for _, cv in ipairs(pool) do
    local lk = K.conversation_messages(cv)
    for _, id in ipairs(redis.call('LRANGE', lk, 0, -1)) do
      local mk = K.msg(id)
      local ident = redis.call('HGET', mk, 'identity')
      local side = customer_of(ident)
      if side ~= side_of[cv] then
        if not heads[side] then
          local queue = redis.call('HGET', K.conversation(cv), 'queue')
          heads[side] = open_conversation(side, ident, redis.call('HGET', mk, 'channel'), queue, now)
          side_of[heads[side]] = side
          redis.call('ZADD', K.unrouted(), now, heads[side])
        end
        redis.call('LREM', lk, 1, id)
        redis.call('RPUSH', K.conversation_messages(heads[side]), id)
        redis.call('HSET', mk, 'conversation', heads[side])
        moved = moved + 1
      end
    end
  end
  return moved
end

local function link_key(a, b)
  if a < b then return K.link(a, b) end
  return K.link(b, a)
end
