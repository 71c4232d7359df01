-- Enqueues a batch of jobs without idempotency keys (composed after ready.lua: `mark_ready`).
-- KEYS: each job's stream and status hash, in pairs
-- ARGV: queue key prefix, group, status_ttl_s, now_ms, then per job: job_id, envelope, tenant,
--       kind, lane
-- Also each (lane, tenant)'s ready index and wake list (ready.lua, derived from the prefix).
-- Atomic so every entry is indexed the moment it exists: a claim never misses a stored job.
-- Callers keep batches small (one call stays well under a millisecond of Redis time).
local p, group, ttl, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local marked = {}
for j = 0, #KEYS / 2 - 1 do
  local a = 5 + j * 5
  local id, tenant, lane = ARGV[a], ARGV[a + 2], ARGV[a + 4]
  redis.call('XADD', KEYS[2 * j + 1], '*', 'e', ARGV[a + 1], 'i', id)
  redis.call('HSET', KEYS[2 * j + 2], 'state', 'queued', 'attempt', 1, 'tenant', tenant,
    'kind', ARGV[a + 3], 'lane', lane, 'created', now, 'updated', now)
  redis.call('EXPIRE', KEYS[2 * j + 2], ttl)
  local k = lane .. '|' .. tenant
  if not marked[k] then
    marked[k] = true
    mark_ready({}, {p, lane, tenant, group})
  end
end
return #KEYS / 2
