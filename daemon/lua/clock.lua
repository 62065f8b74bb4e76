-- The test clock's offset (see daemon/clock.h), in ms, "0" when unset.
-- @args prefix:str
-- @reply one offset:str
return redis.call('GET', K.clock_offset()) or '0'
