-- Idempotent enqueue of one job (composed after ready.lua, which defines `mark_ready`).
-- KEYS[1] idempotency key   KEYS[2] stream   KEYS[3] job status hash
-- ARGV: job_id, envelope, window_s, status_ttl_s, tenant, kind, lane, now_ms, queue key prefix,
--       group
-- Also the lane's ready index and wake list (ready.lua, derived from the prefix).
-- Atomic so that two requests with the same key can never both create a job: the check, the
-- stream entry, the status and the ready index are one step.
local existing = redis.call('GET', KEYS[1])
if existing then
  return {existing, 0}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2], 'i', ARGV[1])
redis.call('HSET', KEYS[3], 'state', 'queued', 'attempt', 1, 'tenant', ARGV[5], 'kind', ARGV[6],
  'lane', ARGV[7], 'created', ARGV[8], 'updated', ARGV[8])
redis.call('EXPIRE', KEYS[3], ARGV[4])
mark_ready({}, {ARGV[9], ARGV[7], ARGV[5], ARGV[10]})
return {ARGV[1], 1}
