-- Promotes due delayed jobs into their lane streams.
-- KEYS[1] delayed zset   KEYS[2] delayed bodies hash
-- ARGV: queue key prefix (e.g. "{onomancer}:q:"), now_ms, max jobs
-- Stream, tenant-set and status keys are derived from the prefix; they share the queue's hash
-- tag, so they live in the same cluster slot. Atomic so a job is never both delayed and queued.
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
    local stream = p .. 'stream:' .. lane .. ':' .. tenant
    redis.call('XADD', stream, '*', 'e', body)
    redis.call('SADD', p .. 'tenants:' .. lane, tenant)
    local status = p .. 'job:' .. tenant .. ':' .. id
    if redis.call('EXISTS', status) == 1 then
      redis.call('HSET', status, 'state', 'queued', 'updated', ARGV[2])
    end
    moved = moved + 1
  end
end
return moved
