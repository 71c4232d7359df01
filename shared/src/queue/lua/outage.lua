-- Gives every consumer back the time nobody could renew (Redis unreachable, or every worker
-- stalled): when the last liveness renewal of anyone is older than half the claim-idle time,
-- every expiry moves forward by the gap, so a live worker is not presumed dead because Redis
-- was down. Composed as `forgive_gap` into live.lua and claim.lua (whichever runs first).
-- KEYS[1] consumers zset   KEYS[2] liveness tick (last renewal, server ms)
-- ARGV: now_ms, claim_idle_ms
-- Returns 1 when it moved the expiries.
local now = tonumber(ARGV[1])
local tick = tonumber(redis.call('GET', KEYS[2]) or ARGV[1])
redis.call('SET', KEYS[2], now)
local gap = now - tick
if gap <= tonumber(ARGV[2]) / 2 then
  return 0
end
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #all, 2 do
  redis.call('ZADD', KEYS[1], tonumber(all[i + 1]) + gap, all[i])
end
return 1
