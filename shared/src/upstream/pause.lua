-- Pauses one upstream (or one scope of it) for every worker: KEYS[1] holds why, for ARGV[1] ms,
-- unless a longer pause is already in force.
-- KEYS[1] the pause key of one upstream scope (single key: legal anywhere on a Cluster)
-- ARGV: pause_ms, reason
-- Returns the pause in force, in ms.
-- Atomic so two workers reporting different waits at the same moment keep the longer one (a
-- read, then a write, from two clients could shorten a pause another worker just set).
local current = redis.call('PTTL', KEYS[1])
local want = tonumber(ARGV[1])
if current >= want then
  return current
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', want)
return want
