-- Stores a new API token (omnictl token create): only its SHA-256 is kept, under the hash for omni-api's
-- lookup on every request, and by id in the tokens index that `omnictl token list` and `revoke` read.
-- id: the first 12 hex digits of hash. outcome: "created", or "exists" when the hash is already stored
-- (never by chance: 256 random bits; it would mean the same token was stored twice).
-- @args prefix:str hash:str id:str subject:str now:int
-- @reply one outcome:str
local tk = K.token(A.hash)
if redis.call('EXISTS', tk) == 1 then return 'exists' end
redis.call('HSET', tk, 'id', A.id, 'subject', A.subject, 'created_at', A.now)
redis.call('HSET', K.tokens(), A.id,
           cjson.encode({ subject = A.subject, created_at = A.now, hash = A.hash }))
event('token', 'action', 'created', 'id', A.id, 'subject', A.subject)
return 'created'
