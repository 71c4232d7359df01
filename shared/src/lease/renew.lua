-- Renews a lease if the caller still holds it (compare-and-pexpire).
-- KEYS[1] lease key
-- ARGV: holder token, lease ms
-- Returns 1 when renewed, 0 when the lease is no longer the caller's. Atomic because "check the
-- token, then extend" must not extend a lease another holder took after the caller's expired.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
