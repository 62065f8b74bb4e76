-- Revokes an API token by id (omnictl token revoke): its hash key goes, so the next request carrying it is
-- refused (omni-api caches nothing). outcome: "revoked", or "unknown" when no token has that id.
-- subject: whose token it was ("" when unknown).
-- @args prefix:str id:str now:int
-- @reply outcome:str subject:str
local raw = redis.call('HGET', K.tokens(), A.id)
if not raw then return { 'unknown', '' } end
local t = cjson.decode(raw)
redis.call('DEL', K.token(t.hash))
redis.call('HDEL', K.tokens(), A.id)
event('token', 'action', 'revoked', 'id', A.id, 'subject', t.subject, 'at', A.now)
return { 'revoked', t.subject }
