-- The test clock's offset (see daemon/clock.h). ARGV: prefix. Returns the offset in ms, "0" when unset.
return redis.call('GET', k('clock', 'offset')) or '0'
