-- Transform quota refund: gives back `n` transformations consumed by a request whose job was not
-- stored (the queue failed) or turned out to be a redelivery of an already stored job.
--
-- KEYS[1]  day counter, KEYS[2] month counter (as in quota.lua)
-- ARGV[1]  n
--
-- Returns {day_used, month_used} after the refund.
--
-- Why atomic: both counters must move together and never go below zero, even when a refund races
-- with the day's counter expiring.
local n = tonumber(ARGV[1])
local out = {}
for i = 1, 2 do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used > 0 then
    local take = math.min(used, n)
    used = redis.call('DECRBY', KEYS[i], take)
  end
  out[i] = used
end
return out
