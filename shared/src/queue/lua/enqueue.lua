-- Idempotent enqueue of one job.
-- KEYS[1] idempotency key   KEYS[2] stream   KEYS[3] job status hash
-- ARGV: job_id, envelope, window_s, status_ttl_s, tenant, kind, lane, now_ms
-- Atomic so that two requests with the same key can never both create a job: the check, the
-- stream entry and the status are one step. (The stream's group and the lane's tenant set are
-- made sure of once per process before the first enqueue, not on every call.)
local existing = redis.call('GET', KEYS[1])
if existing then
  return {existing, 0}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
redis.call('HSET', KEYS[3], 'state', 'queued', 'attempt', 1, 'tenant', ARGV[5], 'kind', ARGV[6],
  'lane', ARGV[7], 'created', ARGV[8], 'updated', ARGV[8])
redis.call('EXPIRE', KEYS[3], ARGV[4])
return {ARGV[1], 1}
