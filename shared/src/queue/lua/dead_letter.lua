-- Moves a claimed entry to the dead-letter stream with its reason.
-- KEYS[1] stream   KEYS[2] dead-letter stream   KEYS[3] status hash (optional)
-- ARGV: group, entry_id, job_id, tenant, kind, lane, attempts, reason, envelope, now_ms
-- Atomic so the job is never lost between the two streams (no ack without the dead letter).
redis.call('XADD', KEYS[2], '*', 'job_id', ARGV[3], 'tenant', ARGV[4], 'kind', ARGV[5],
  'lane', ARGV[6], 'attempts', ARGV[7], 'reason', ARGV[8], 'e', ARGV[9], 'source', KEYS[1],
  'source_id', ARGV[2], 'at', ARGV[10])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if KEYS[3] then
  redis.call('HSET', KEYS[3], 'state', 'dead', 'error', ARGV[8], 'attempt', ARGV[7],
    'updated', ARGV[10])
end
return 1
