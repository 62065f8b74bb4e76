-- The inbox (docs/delivery.md): one stream per recipient, written in the same script as the change it tells
-- of, so an event exists exactly when its change does. needs _mask in front of it.

-- recipient: an owner, "agent:ID" or "team:NAME"; kind: "work.offered", ...; data: the event's fields (a
-- table; this function adds conversation and at). A `message` in it comes from message_view() for the
-- team the recipient holds the work for, which masked it.
local function inbox(recipient, kind, cv, data, now)
  data.conversation, data.at = cv, now
  stream_add(K.inbox(recipient), '10000', 'type', kind, 'conversation', cv, 'data', encode_view(data))
end
