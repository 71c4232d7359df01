-- Acknowledges a batch of finished jobs of one consumer (composed after forget.lua:
-- `forget_if_done`).
-- KEYS[1] the consumer's owned-stream set
-- ARGV: group, consumer, now_ms, job count, then per job: status key, result ('' for none),
--       then per stream: stream, entry count, entry ids...
-- Atomic: a job is marked succeeded in the same step its entry leaves the pending list, and the
-- owned set stays exact.
local group, me, now, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local a = 5
for _ = 1, n do
  if ARGV[a + 1] ~= '' then
    redis.call('HSET', ARGV[a], 'state', 'succeeded', 'updated', now, 'result', ARGV[a + 1])
  else
    redis.call('HSET', ARGV[a], 'state', 'succeeded', 'updated', now)
  end
  redis.call('HINCRBY', ARGV[a], 'completions', 1)
  a = a + 2
end
local acked = 0
while a <= #ARGV do
  local stream, count = ARGV[a], tonumber(ARGV[a + 1])
  acked = acked + redis.call('XACK', stream, group, unpack(ARGV, a + 2, a + 1 + count))
  forget_if_done({stream, KEYS[1]}, {group, me})
  a = a + 2 + count
end
return acked
