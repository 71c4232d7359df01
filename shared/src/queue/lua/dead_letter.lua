-- Moves a claimed entry to the dead-letter stream with its reason (composed after forget.lua:
-- `forget_if_done`).
-- KEYS[1] stream   KEYS[2] dead-letter stream   KEYS[3] the consumer's owned-stream set
-- KEYS[4] status hash (optional: absent when no job id could be read from the entry)
-- ARGV: group, entry_id, job_id, tenant, kind, lane, attempts, reason, envelope, now_ms, consumer
-- Atomic so the job is never lost between the two streams (no ack without the dead letter), and
-- its status says `dead` from the same moment.
redis.call('XADD', KEYS[2], '*', 'job_id', ARGV[3], 'tenant', ARGV[4], 'kind', ARGV[5],
  'lane', ARGV[6], 'attempts', ARGV[7], 'reason', ARGV[8], 'e', ARGV[9], 'source', KEYS[1],
  'source_id', ARGV[2], 'at', ARGV[10])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
forget_if_done({KEYS[1], KEYS[3]}, {ARGV[1], ARGV[11]})
if KEYS[4] and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HSET', KEYS[4], 'state', 'dead', 'error', ARGV[8], 'attempt', ARGV[7],
    'updated', ARGV[10])
end
return 1
