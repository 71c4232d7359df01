-- Renews the scheduler leader lock only if this instance still holds it.
-- KEYS[1] leader lock
-- ARGV: instance id, lease ms
-- Atomic compare-and-extend, so a stale leader can never extend a lock another instance took.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
