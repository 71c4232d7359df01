-- Takes or renews a lease (scheduler leadership, a worker's consumer name).
-- KEYS[1] lease key
-- ARGV: holder token, lease ms
-- Returns 1 while the caller holds the lease. Atomic compare-and-extend, so a holder that lost the
-- lease can never extend one another instance took.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
