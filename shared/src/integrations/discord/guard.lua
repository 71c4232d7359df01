-- The fleet-wide gate before one Discord call: no call while Discord is paused for every worker
-- (a global 429) or the channel is paused (its bucket is empty), and at most ARGV[1] calls per
-- ARGV[2] ms for the bot and ARGV[3] per ARGV[4] ms per channel, shared by every worker
-- (sliding-window logs, like rate_limit.lua).
-- KEYS[1] global pause   KEYS[2] channel pause   KEYS[3] global log   KEYS[4] channel log
-- ARGV: global_limit, global_window_ms, channel_limit, channel_window_ms, unique member
-- Returns {0, ''} when the call may go (both logs record it), else {wait_ms, why} where why is
-- 'paused: <reason>', 'channel paused: <reason>', 'global' or 'channel'.
-- Atomic so concurrent workers never exceed a limit, and a call refused by one limit takes no
-- slot of the other. All keys share the deployment's hash tag (one Cluster slot). Uses the
-- server clock so every worker agrees on time.
for i, label in ipairs({'paused: ', 'channel paused: '}) do
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl > 0 then
    return {ttl, label .. (redis.call('GET', KEYS[i]) or '')}
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait, why = 0, ''
for i, log in ipairs({KEYS[3], KEYS[4]}) do
  local limit = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
  if redis.call('ZCARD', log) >= limit then
    local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
    local w = tonumber(oldest[2]) + window - now
    if w < 1 then w = 1 end
    if w > wait then
      wait = w
      why = (i == 1) and 'global' or 'channel'
    end
  end
end
if wait > 0 then
  return {wait, why}
end
for i, log in ipairs({KEYS[3], KEYS[4]}) do
  redis.call('ZADD', log, now, ARGV[5])
  redis.call('PEXPIRE', log, tonumber(ARGV[2 * i]))
end
return {0, ''}
