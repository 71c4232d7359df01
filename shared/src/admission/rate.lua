-- Per-tenant request rate, GCRA (generic cell rate algorithm): one key per tenant and scope holding
-- the "theoretical arrival time" in microseconds. O(1), one key, no sorted sets, so it stays cheap
-- at tens of thousands of requests a second.
--
-- KEYS[1]  the tenant's rate key ({tenant}:ratelimit:gateway:<scope>)
-- ARGV[1]  emission interval in microseconds (period / limit)
-- ARGV[2]  burst tolerance in microseconds (emission interval * (burst - 1))
--
-- Returns {allowed (1|0), retry_after_us, remaining_burst}.
--
-- Why atomic: reading the arrival time and writing the new one must be one step, or two gateways
-- would both admit the last request of a window. The clock is Redis's own (TIME), so gateways with
-- skewed clocks agree.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])

local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, allow_at - now, 0}
end
local new_tat = tat + emission
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0, math.floor((now + tolerance - new_tat) / emission) + 1}
