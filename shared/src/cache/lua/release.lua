-- Releases a single-flight lease if the caller still holds it.
-- KEYS[1] = lock key (`{tenant}:lock:transform:{hash}:{persona}`)
-- ARGV[1] = holder token
-- Atomic because "check the token, then delete" must not delete a lock another worker took
-- after ours expired. Returns 1 when released, 0 when the lock was no longer ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
