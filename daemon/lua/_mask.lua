-- What a partner may see of a customer (docs/delivery.md, "Masking"): the one implementation, used for the
-- inbox (_inbox.lua) and for the API's reads (view.lua, work.lua). A team masks when the router wrote
-- `mask_contact` 1 into its hash (seed.lua, at start); texts are never changed, only identities.

-- The installation's salt for pseudonyms, made once. A router writes a random one at start (seed.lua);
-- this fallback only serves a store no router has started on yet.
local function mask_salt()
  local salt = redis.call('GET', K.mask_salt())
  if salt then return salt end
  local t = redis.call('TIME')
  salt = redis.sha1hex('omni-salt|' .. t[1] .. '|' .. t[2] .. '|' .. tostring(redis.call('INCR', K.seq('salt'))))
  redis.call('SET', K.mask_salt(), salt, 'NX')
  return redis.call('GET', K.mask_salt())
end

-- Whether team masks, read once a call (a call tells an owner of many messages; only seed.lua writes the
-- flag, and before it reads any).
local mask_memo = {}
local function masks(team)
  if not team then return false end
  local m = mask_memo[team]
  if m == nil then
    m = redis.call('HGET', K.team(team), 'mask_contact') == '1'
    mask_memo[team] = m
  end
  return m
end

-- "jane@example.com" -> "j***@example.com"; "+14155550101" -> "+1415*****01"; anything else -> "anon-<16 hex>",
-- the same for one team and identity every time, different between teams.
local function mask_identity(team, id)
  if type(id) ~= 'string' then return id end
  local user, domain = id:match('^([^@]+)@(.+)$')
  if user then return user:sub(1, 1) .. '***@' .. domain end
  local digits = id:match('^%+(%d+)$')
  if digits then
    local keep = #digits > 6 and 4 or 0
    return '+' .. digits:sub(1, keep) .. string.rep('*', #digits - keep - 2) .. digits:sub(-2)
  end
  return 'anon-' .. redis.sha1hex(mask_salt() .. '|' .. team .. '|' .. id):sub(1, 16)
end

-- s with every occurrence of what (at least 3 bytes; shorter says nothing) replaced by with, literally.
local function replace_plain(s, what, with)
  if type(s) ~= 'string' or #what < 3 or type(with) ~= 'string' then return s end
  local out, from = {}, 1
  while true do
    local i, j = s:find(what, from, true)
    if not i then break end
    out[#out + 1] = s:sub(from, i - 1) .. with
    from = j + 1
  end
  out[#out + 1] = s:sub(from)
  return table.concat(out)
end

-- meta and attachments go to their recipients as the connector wrote them. Decoded and encoded again by cjson
-- they would not be: an empty array becomes {}, an integer past 14 digits a float (an attachment's size).
-- So a view holds a hole in their place, and encode_view puts the stored text back there. These find that text: s[i] starts a string (a value), and the
-- index after it is returned; nil when s is not JSON (never: the router validated what it stored).
local function skip_string(s, i)
  local j = i + 1
  while true do
    local k = s:find('["\\]', j)
    if not k then return nil end
    if s:byte(k) == 34 then return k + 1 end
    j = k + 2
  end
end
local function skip_value(s, i)
  local c = s:byte(i)
  if c == 34 then return skip_string(s, i) end
  if c ~= 123 and c ~= 91 then return s:find('[,}%]%s]', i) end -- a number, true, false or null
  local depth, j = 0, i
  while true do
    local k = s:find('[{}%[%]"]', j)
    if not k then return nil end
    local b = s:byte(k)
    if b == 34 then
      j = skip_string(s, k)
      if not j then return nil end
    else
      depth = depth + ((b == 123 or b == 91) and 1 or -1)
      j = k + 1
      if depth == 0 then return j end
    end
  end
end
-- The text of the top-level member name of the JSON object s, or nil.
local function raw_member(s, name)
  local i = s:find('[^ \t\r\n]')
  if not i or s:byte(i) ~= 123 then return nil end
  i = s:find('[^ \t\r\n]', i + 1)
  while i and s:byte(i) == 34 do
    local e = skip_string(s, i)
    if not e then return nil end
    local key = s:sub(i + 1, e - 2)
    i = s:find('[^ \t\r\n]', e)
    if not i or s:byte(i) ~= 58 then return nil end
    i = s:find('[^ \t\r\n]', i + 1)
    local ve = i and skip_value(s, i)
    if not ve then return nil end
    if key == name then return s:sub(i, ve - 1) end
    i = s:find('[^ \t\r\n]', ve)
    if not i or s:byte(i) ~= 44 then return nil end
    i = s:find('[^ \t\r\n]', i + 1)
  end
  return nil
end

-- The holes, and how cjson writes each with its key: nothing else in an encoded view can read so, since every
-- other key of a view is the view's own and a '"' inside a value is escaped.
local META_HOLE = '\1meta\1'
local META_HOLE_JSON = '"meta":"\\u0001meta\\u0001"'
local ATTACHMENTS_HOLE = '\1attachments\1'
local ATTACHMENTS_HOLE_JSON = '"attachments":"\\u0001attachments\\u0001"'
local view_meta, view_attachments = {}, {}        -- view -> the text of its meta, attachments, for encode_view

-- cjson.encode of x, a message view or a table holding one as `message`, its meta and attachments as the
-- connector wrote them.
local function encode_view(x)
  local s = cjson.encode(x)
  local v = x.message or x
  local raw = view_meta[v]
  if raw then s = replace_plain(s, META_HOLE_JSON, '"meta":' .. raw) end
  raw = view_attachments[v]
  if raw then s = replace_plain(s, ATTACHMENTS_HOLE_JSON, '"attachments":' .. raw) end
  return s
end

-- One stored message as a recipient sees it: id, channel, from, text, subject, attachments, meta (the
-- channel's facts, passed through: DESIGN.md), at (ms, when stored). json: the message as stored; team: whose
-- view (masked when that team masks). The sender's display name goes with a masked identity: it identifies
-- the customer as much as the address does; meta is left out of a masked view, since a channel's facts name
-- the customer too (a caller's number as dialled, an X username, a mailbox). identity: the sender's identity
-- as the router normalized it ("phone:+14155550101"), masked rather than the id as the connector wrote it
-- ("+1 (415) 555-0101"), so one customer has one masked form whatever the writing. Encode it with
-- encode_view.
local function message_view(id, json, stored_at, team, identity)
  local m = cjson.decode(json)
  local from = type(m.from) == 'table' and m.from or {}
  local v = { id = id, channel = m.channel, text = m.text or '', subject = m.subject, at = tonumber(stored_at),
              from = { id = from.id, name = from.name } }
  if type(m.attachments) == 'table' and #m.attachments > 0 then
    local raw = raw_member(json, 'attachments')
    if raw then v.attachments, view_attachments[v] = ATTACHMENTS_HOLE, raw else v.attachments = m.attachments end
  end
  if type(m.meta) == 'table' and not masks(team) then
    v.meta = META_HOLE
    view_meta[v] = raw_member(json, 'meta') or cjson.encode(m.meta) -- an escaped key ("m\u0065ta"): as decoded
  end
  if masks(team) then
    local normalized = type(identity) == 'string' and identity:match('^[^:]+:(.+)$')
    v.from = { id = mask_identity(team, normalized or from.id) }
    -- a connector may build the message id from the sender (a Facebook postback without a mid:
    -- "facebook:postback:<PSID>:<time>"): the identity in it is masked the same way, so the id stays stable
    -- and distinct for the partner and names nobody
    for _, raw in ipairs({ normalized or '', type(from.id) == 'string' and from.id or '' }) do
      v.id = replace_plain(v.id, raw, v.from.id)
    end
  end
  return v
end

-- A JSON array of already encoded values: cjson would write an empty Lua table as {}.
local function json_array(items) return '[' .. table.concat(items, ',') .. ']' end

-- A conversation as a caller sees it (view.lua, work.lua): its fields and its last 100 messages, masked for
-- the team it is held for when that team masks (mask: false for an operator). nil when it does not exist.
local function conversation_view(cv, mask)
  local ck = K.conversation(cv)
  local f = redis.call('HMGET', ck, 'status', 'channel', 'team', 'owner', 'category', 'prio', 'due',
                       'offer_expires_at', 'first_response_at', 'follow_up_of', 'surveyed_at', 'csat', 'ces', 'nps')
  if not f[1] then return nil end
  local team = mask and f[3] or nil
  -- its own messages and those of the conversations a link merged into it (the customer wrote on another
  -- channel too: the one who holds it reads both), the newest 100 in the order they were stored
  local found = {}
  local function gather(c)
    for _, id in ipairs(redis.call('LRANGE', K.conversation_messages(c), -100, -1)) do
      local m = redis.call('HMGET', K.msg(id), 'json', 'stored_at', 'identity')
      if m[1] then found[#found + 1] = { id = id, m = m, at = tonumber(m[2]) or 0, n = #found } end
    end
  end
  gather(cv)
  local merged = redis.call('SMEMBERS', K.conversation_merged(cv))
  if #merged > 0 then
    for _, c in ipairs(merged) do gather(c) end
    table.sort(found, function(x, y) if x.at ~= y.at then return x.at < y.at end return x.n < y.n end)
  end
  local msgs = {}
  for i = math.max(1, #found - 99), #found do
    local e = found[i]
    msgs[#msgs + 1] = encode_view(message_view(e.id, e.m[1], e.m[2], team, e.m[3]))
  end
  -- HMGET gives false for an absent field: left out (nil), never encoded as false
  local head = cjson.encode({ id = cv, status = f[1], channel = f[2], team = f[3] or nil, owner = f[4] or nil,
                              category = f[5] or nil,
                              prio = tonumber(f[6]), due = sla_at(f[7]), offer_expires_at = tonumber(f[8]),
                              first_response_at = tonumber(f[9]), follow_up_of = f[10] or nil,
                              survey = f[11] and { at = tonumber(f[11]), csat = tonumber(f[12]), ces = tonumber(f[13]),
                                                   nps = tonumber(f[14]) } or nil })
  return head:sub(1, -2) .. ',"messages":' .. json_array(msgs) .. '}'
end
