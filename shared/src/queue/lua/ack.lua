-- Acknowledges a batch of finished jobs: status succeeded (with the result), completions + 1,
-- then XACK.
-- KEYS: n status hashes, then their n streams
-- ARGV: group, now_ms, then n entry ids, then n results ('' for none)
-- Atomic per batch, so a job is never acknowledged without its status, nor marked succeeded
-- and left pending.
local n = #KEYS / 2
for i = 1, n do
  local status = KEYS[i]
  local result = ARGV[2 + n + i]
  if result ~= '' then
    redis.call('HSET', status, 'state', 'succeeded', 'updated', ARGV[2], 'result', result)
  else
    redis.call('HSET', status, 'state', 'succeeded', 'updated', ARGV[2])
  end
  redis.call('HINCRBY', status, 'completions', 1)
  redis.call('XACK', KEYS[n + i], ARGV[1], ARGV[2 + i])
end
return n
