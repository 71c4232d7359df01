-- Sliding-window log rate limiter shared by every worker: at most ARGV[1] grants in any window
-- of ARGV[2] ms.
-- KEYS[1] sorted set of grant times (one per tenant and upstream service)
-- ARGV: limit, window_ms, unique member
-- Returns 0 when granted, else the ms until the oldest grant leaves the window.
-- Atomic so concurrent workers can never grant more than the limit. Uses the server clock so
-- every worker agrees on time.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return wait
