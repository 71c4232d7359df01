-- Promotes due delayed jobs into their lane streams (composed after ready.lua: `mark_ready`).
-- KEYS[1] delayed zset   KEYS[2] delayed bodies hash
-- ARGV: queue key prefix (e.g. "{onomancer}:q:"), now_ms, max jobs, group
-- Stream, ready-index and status keys are derived from the prefix; they share the queue's hash
-- tag, so they live in the same cluster slot. Atomic so a job is never both delayed and queued,
-- nor queued and unindexed.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local p = ARGV[1]
local moved = 0
for _, member in ipairs(due) do
  -- member = lane|tenant|job_id
  local lane, tenant, id = string.match(member, '^([^|]+)|([^|]+)|(.+)$')
  local body = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[2], id)
  if body then
    redis.call('XADD', p .. 'stream:' .. lane .. ':' .. tenant, '*', 'e', body, 'i', id)
    mark_ready({}, {p, lane, tenant, ARGV[4]})
    local status = p .. 'job:' .. tenant .. ':' .. id
    if redis.call('EXISTS', status) == 1 then
      redis.call('HSET', status, 'state', 'queued', 'updated', ARGV[2])
    end
    moved = moved + 1
  end
end
return moved
