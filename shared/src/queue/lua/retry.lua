-- Moves a claimed entry to the delayed set: a retry (attempt already incremented in the new
-- envelope) or a rate-limit deferral (composed after forget.lua: `forget_if_done`).
-- KEYS[1] stream   KEYS[2] delayed zset   KEYS[3] delayed bodies hash   KEYS[4] status hash
-- KEYS[5] the consumer's owned-stream set
-- ARGV: group, entry_id, job_id, new_envelope, due_ms, member, state, attempt, error, now_ms,
--       consumer
-- Atomic so the job is always in exactly one place: pending in the stream, or delayed.
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 0 then
  -- Not pending any more (handed to another consumer and acked, or already moved): nothing to do.
  return 0
end
forget_if_done({KEYS[1], KEYS[5]}, {ARGV[1], ARGV[11]})
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
redis.call('HSET', KEYS[4], 'state', ARGV[7], 'attempt', ARGV[8], 'error', ARGV[9],
  'updated', ARGV[10], 'next_run', ARGV[5])
return 1
