-- Takes a free lease (single-flight locks, Discord post markers).
-- KEYS[1] lease key
-- ARGV: holder token, lease ms
-- Returns {1, '', 0} when the caller took it, else {0, current value, PTTL in ms} (PTTL -1: the
-- value has no expiry). Atomic so the value and time left reported belong to the holder that
-- refused the caller, never to one that came after.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, '', 0}
end
return {0, redis.call('GET', KEYS[1]) or '', redis.call('PTTL', KEYS[1])}
