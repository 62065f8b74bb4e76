-- Intake for omni-webhooks: reads new entries of one partner's inbox (omni:inbox:team:<team>) with the
-- consumer group `webhooks` and turns each into a delivery (omni:webhook:msg_<entry id>; entry ids are
-- per stream, so two partners' entries written in the same millisecond can share one: the delivery of the
-- partner that comes second is msg_<entry id>.<team>, never lost and never mixed up), appended to its
-- conversation's order list and due at once when it is the list's head; then acknowledges the entry. Read,
-- create and XACK are one atomic step, so an entry is never half taken: no entry is ever left pending in
-- the group, and a sender killed at any moment loses nothing (several senders share the group).
-- The group is created on first use at the stream's start (0): entries written before omni-webhooks first
-- ran are delivered too. data is put in the body as it is (valid JSON, already masked by the router); an
-- entry without type, conversation or data, or whose data is not a JSON object, is dead at once (last_error
-- says why) and its conversation moves on.
-- now_text: now as RFC 3339, the body's "timestamp" (Lua in Redis has no date formatting).
-- Returns how many entries it took.
-- @args prefix:str team:str now:int now_text:str limit:int consumer:str
-- @reply one taken:int
local team, now = A.team, A.now
local stream = K.inbox('team:' .. team)
local made = redis.pcall('XGROUP', 'CREATE', stream, 'webhooks', '0', 'MKSTREAM')
if type(made) == 'table' and made.err and not made.err:find('BUSYGROUP') then return redis.error_reply(made.err) end
local got = redis.call('XREADGROUP', 'GROUP', 'webhooks', A.consumer, 'COUNT', A.limit, 'STREAMS', stream, '>')
local taken = 0
for _, s in ipairs(got or {}) do
  for _, e in ipairs(s[2]) do
    local eid, f = e[1], {}
    for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
    local id = 'msg_' .. eid
    local wk = K.webhook(id)
    local holder = redis.call('HGET', wk, 'team')
    if holder and holder ~= team then -- another partner's delivery has this id: this one is told apart by team
      id = id .. '.' .. team
      wk = K.webhook(id)
      holder = redis.call('HGET', wk, 'team')
    end
    if not holder then -- a stream entry is read once; the check costs nothing and guards it
      local cv = (f.conversation and f.conversation ~= '') and f.conversation or '-'
      local typ = (f.type and f.type ~= '') and f.type or 'unknown'
      local data = f.data or 'null'
      -- an entry breaking the inbox's contract (docs/delivery.md: type, conversation, data the event's JSON
      -- object) is not sent: a partner would get a body that breaks it too
      local why
      if not f.type or f.type == '' then why = 'no type'
      elseif not f.conversation or f.conversation == '' then why = 'no conversation'
      elseif not f.data or f.data == '' then why = 'no data'
      else
        local parsed, v = pcall(cjson.decode, data)
        if not parsed then why = 'data is not JSON'
        elseif type(v) ~= 'table' or not data:find('^%s*{') then why = 'data is not a JSON object' end
      end
      local ok = not why
      local body = '{"type":' .. cjson.encode(typ) .. ',"timestamp":' .. cjson.encode(A.now_text) ..
                   ',"data":' .. (ok and data or 'null') .. '}'
      redis.call('HSET', wk, 'team', team, 'conversation', cv, 'type', typ, 'body', body, 'attempts', 0,
                 'next_at', now, 'state', 'pending', 'created_at', now)
      local ok_key = K.webhooks_order(team, cv)
      if ok then
        if redis.call('RPUSH', ok_key, id) == 1 then redis.call('ZADD', K.webhooks_due(), now, id) end
      else
        redis.call('HSET', wk, 'state', 'dead', 'dead_at', now, 'last_error', 'inbox entry ' .. eid .. ': ' .. why)
        redis.call('ZADD', K.webhooks_dead(), now, id)
        redis.call('HINCRBY', K.webhooks_endpoint(team), 'dead', '1')
      end
    end
    redis.call('XACK', stream, 'webhooks', eid)
    taken = taken + 1
  end
end
return taken
