-- Follow-ups (docs/routing.md "Follow-ups"): resolve.lua puts a conversation a person resolved in
-- omni:followups, due follow_up.after later; due.lua takes what fell due and, through open_follow_up, makes
-- each one new work: a conversation for the same customer on the same channel holding one message the router
-- writes, handed out as "new" so it is routed like any new conversation (the previous owner preference, the
-- classification of what the customer first wrote, which the message quotes). None is opened, and the old
-- conversation says why (`follow_up_skipped`), when the customer has an open conversation (somebody is
-- talking to them already), or one opened after it (whose own follow-up is the one that counts), or when the
-- conversation is no longer a resolved one in Redis.

-- RFC 3339 (UTC, seconds) of ms since the epoch: the days-to-civil conversion of H. Hinnant's "date"
-- algorithms, as Redis's Lua has no os.date.
local function rfc3339(ms)
  local s = math.floor(ms / 1000)
  local z = math.floor(s / 86400) + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  local t = s % 86400
  return string.format('%04d-%02d-%02dT%02d:%02d:%02dZ', y, m, d, math.floor(t / 3600), math.floor(t % 3600 / 60),
                       t % 60)
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
  local cu = cust and redis.call('HMGET', K.customer(cust), 'open_conversation', 'last_conversation') or {}
  if cu[1] then return skip('open conversation ' .. cu[1]) end
  if cu[2] and tonumber(cu[2]) and tonumber(cu[2]) > tonumber(cv) then return skip('later conversation ' .. cu[2]) end
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
