-- Extends this consumer's claim on long-running entries (resets their idle time) so that
-- reclaimers never steal a live job.
-- KEYS[1] stream
-- ARGV: group, consumer, ids...
-- Checks ownership first (atomically): an entry already taken by another consumer is reported,
-- never taken back.
local kept = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept[#kept + 1] = ARGV[i]
  end
end
return kept
