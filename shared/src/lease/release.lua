-- Releases a lease if the caller still holds it (compare-and-delete).
-- KEYS[1] lease key
-- ARGV: holder token
-- Returns 1 when released, 0 when the lease was no longer the caller's. Atomic because "check the
-- token, then delete" must not delete a lease another holder took after the caller's expired.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
