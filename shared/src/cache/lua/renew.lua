-- Renews a single-flight lease if the caller still holds it.
-- KEYS[1] = lock key (`{tenant}:lock:transform:{hash}:{persona}`)
-- ARGV[1] = holder token, ARGV[2] = lease in ms
-- Atomic because "check the token, then extend" must not extend a lock another worker took
-- after ours expired. Returns 1 when renewed, 0 when the lock is no longer ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
