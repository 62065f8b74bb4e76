-- Follow-ups (docs/routing.md "Follow-ups"): resolve.lua puts a conversation a person resolved in
-- omni:followups, due follow_up.after later; due.lua takes what fell due and, through open_follow_up, makes
-- each one new work: a conversation for the same customer on the same channel holding one message the router
-- writes, handed out as "new" so it is routed like any new conversation (the previous owner preference, the
-- classification of what the customer first wrote, which the message quotes). None is opened, and the old
-- conversation says why (`follow_up_skipped`), when the customer has an open conversation (somebody is
-- talking to them already), or one opened after it (whose own follow-up is the one that counts), or when the
-- conversation is no longer a resolved one in Redis. Uses _time.lua (a script needing this names _time first).

-- The customer's latest conversation opened after cv (ids grow as conversations open), or nil. Conversations
-- stay in the conversations set of the customer that held them when they were resolved: after a link, the
-- ones opened on the other identity are in that identity's home customer's set, and after an unlink some in
-- this set opened on an identity that is another customer now. So the sets of the homes of every identity of
-- the customer are read, and a conversation counts when the identity that opened it belongs to the customer
-- now. A conversation a `record: true` rule stored resolved at once (resolved_by policy:<rule>) is not work
-- and has no follow-up of its own, so it does not stand in for this one: an unanswered mention on an outpost
-- must not cancel the question "did the fix work?". A later one merged into another (a link) counts: the
-- customer wrote after this one.
local function later_conversation(cust, cv)
  local n, found, homes = tonumber(cv), nil, { cust }
  for _, m in ipairs(redis.call('SMEMBERS', K.customer_identities(cust))) do
    local home = redis.call('HGET', K.identity(m), 'home')
    if home and home ~= cust then homes[#homes + 1] = home end
  end
  for _, home in ipairs(homes) do
    for _, x in ipairs(redis.call('SMEMBERS', K.customer_conversations(home))) do
      local id = tonumber(x)
      if id and id > n and (not found or id > tonumber(found)) then
        local h = redis.call('HMGET', K.conversation(x), 'resolved_by', 'first_identity')
        if not (h[1] and h[1]:sub(1, 7) == 'policy:') and h[2] and
           redis.call('HGET', K.identity(h[2]), 'customer') == cust then
          found = x
        end
      end
    end
  end
  return found
end

-- The follow-up of resolved conversation cv, due now (ms: a number, and now_text its digits). Returns the new conversation, or nil
-- when none was opened (then cv's hash, if it is still there, says why).
local function open_follow_up(cv, now, now_text)
  local ck = K.conversation(cv)
  local c = redis.call('HMGET', ck, 'status', 'first_identity', 'channel', 'resolved_at')
  local function skip(reason)
    if c[1] then redis.call('HSET', ck, 'follow_up_skipped', reason) end
    redis.call('HINCRBY', K.stats(), 'follow_ups_skipped', '1')
    event('follow_up_skipped', 'conversation', cv, 'reason', reason)
    return nil
  end
  if c[1] ~= 'resolved' then return skip(c[1] and 'not resolved' or 'gone') end
  -- the customer the identity belongs to now: a link made since may have joined it to another
  local cust = redis.call('HGET', K.identity(c[2]), 'customer')
  local open = cust and redis.call('HGET', K.customer(cust), 'open_conversation')
  if open then return skip('open conversation ' .. open) end
  local later = cust and later_conversation(cust, cv)
  if later then return skip('later conversation ' .. later) end
  local first = redis.call('LINDEX', K.conversation_messages(cv), 0)
  local m = first and redis.call('HMGET', K.msg(first), 'json', 'identity') or {}
  local ok, orig = pcall(cjson.decode, m[1] or '')
  if not cust or not m[2] or not ok or type(orig) ~= 'table' then return skip('gone') end

  local nv = open_conversation(cust, m[2], c[3], nil, now_text)
  -- the id is the router's own; an x- connector that happened to use it first keeps its message
  local id = 'followup:' .. cv
  if redis.call('EXISTS', K.msg(id), K.seen(id)) > 0 then id = id .. ':' .. nv end
  local text = string.format('Follow-up of conversation %s, resolved %s: ask the customer whether it is solved.',
                             cv, rfc3339(tonumber(c[4]) or now))
  if type(orig.text) == 'string' and orig.text ~= '' then text = text .. '\n\nThey wrote:\n' .. orig.text end
  local msg = { id = id, channel = orig.channel, from = orig.from, received_at = rfc3339(now), text = text,
                meta = { follow_up_of = cv } }
  for _, k in ipairs({ 'subject', 'thread', 'to', 'lang' }) do
    if type(orig[k]) == 'string' then msg[k] = orig[k] end
  end
  redis.call('HSET', K.conversation(nv), 'follow_up_of', cv)
  redis.call('RPUSH', K.conversation_messages(nv), id)
  redis.call('HSET', K.msg(id), 'json', cjson.encode(msg), 'identity', m[2], 'channel', c[3], 'conversation', nv,
             'stored_at', now_text)
  redis.call('HSET', ck, 'follow_up', nv)
  redis.call('HINCRBY', K.stats(), 'follow_ups', '1')
  event('opened', 'conversation', nv, 'customer', cust, 'channel', c[3])
  event('follow_up', 'conversation', nv, 'of', cv, 'customer', cust)
  return nv
end
