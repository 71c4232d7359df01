-- Puts a dead-lettered job back in its lane stream with a fresh attempt budget (composed after
-- ready.lua: `mark_ready`).
-- KEYS[1] dead-letter stream   KEYS[2] lane stream   KEYS[3] status hash
-- ARGV: dead entry id, envelope (attempt reset), tenant, now_ms, status_ttl_s, job_id,
--       queue key prefix, lane, group
-- Atomic: the job is in exactly one of the two streams, and indexed as ready.
local removed = redis.call('XDEL', KEYS[1], ARGV[1])
if removed == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2], 'i', ARGV[6])
mark_ready({}, {ARGV[7], ARGV[8], ARGV[3], ARGV[9]})
redis.call('HSET', KEYS[3], 'state', 'queued', 'attempt', 1, 'error', '', 'updated', ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[5])
return 1
