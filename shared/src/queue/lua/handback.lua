-- Returns a claimed but unstarted or unfinished entry to its stream, so another worker starts it
-- at once (composed after forget.lua and ready.lua: `forget_if_done`, `mark_ready`).
-- KEYS[1] stream   KEYS[2] status hash   KEYS[3] the consumer's owned-stream set
-- ARGV: group, entry_id, envelope, now_ms, job_id, consumer, queue key prefix, lane, tenant
-- Atomic: the re-added copy, its ready index and the ack of the old entry happen together.
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 0 then return 0 end
forget_if_done({KEYS[1], KEYS[3]}, {ARGV[1], ARGV[6]})
redis.call('XADD', KEYS[1], '*', 'e', ARGV[3], 'i', ARGV[5])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'state', 'queued', 'updated', ARGV[4])
end
mark_ready({}, {ARGV[7], ARGV[8], ARGV[9], ARGV[1]})
return 1
