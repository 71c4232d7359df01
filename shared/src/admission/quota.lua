-- Transform quota: check and consume `n` transformations against the tenant's daily and monthly
-- limits in one step.
--
-- KEYS[1]  day counter   ({tenant}:quota:{tenant}:transform:day:YYYYMMDD)
-- KEYS[2]  month counter ({tenant}:quota:{tenant}:transform:month:YYYYMM)
-- ARGV[1]  n, how many transformations this request creates (>= 1)
-- ARGV[2]  daily limit, -1 for unlimited
-- ARGV[3]  monthly limit, -1 for unlimited
-- ARGV[4]  TTL of the day counter in seconds (until the day ends, plus slack)
-- ARGV[5]  TTL of the month counter in seconds
--
-- Returns {admitted (1|0), refused_by (0 none, 1 day, 2 month), day_used, month_used}
-- (the counters after the call).
--
-- Why atomic: the read, the comparison against both limits and the two increments must happen as
-- one step, or concurrent gateways would each see room for "one more" and together overshoot the
-- quota (200 concurrent requests against 100 remaining must admit exactly 100). Both keys share
-- the `{tenant}` hash tag, so the script is legal on Redis Cluster.
local n = tonumber(ARGV[1])
local day_limit = tonumber(ARGV[2])
local month_limit = tonumber(ARGV[3])
local day_used = tonumber(redis.call('GET', KEYS[1]) or '0')
local month_used = tonumber(redis.call('GET', KEYS[2]) or '0')

if day_limit >= 0 and day_used + n > day_limit then
  return {0, 1, day_used, month_used}
end
if month_limit >= 0 and month_used + n > month_limit then
  return {0, 2, day_used, month_used}
end

day_used = redis.call('INCRBY', KEYS[1], n)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
month_used = redis.call('INCRBY', KEYS[2], n)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
return {1, 0, day_used, month_used}
