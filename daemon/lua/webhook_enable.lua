-- omnictl webhooks enable TEAM: a partner's endpoint disabled by a 410 takes deliveries again (its
-- deliveries dead-lettered meanwhile stay dead; their work was re-routed). Returns 1 when it was disabled.
-- @args prefix:str team:str by:str now:int
-- @reply one was_disabled:int
local ek = K.webhooks_endpoint(A.team)
if redis.call('HEXISTS', ek, 'disabled_at') == 0 then return 0 end
redis.call('HDEL', ek, 'disabled_at', 'disabled_status')
redis.call('HSET', ek, 'enabled_at', A.now, 'enabled_by', A.by)
event('webhooks_enabled', 'team', A.team, 'by', A.by)
return 1
