-- Renews a worker's liveness: its consumer-name lease (compare-and-extend, composed from
-- lease/hold.lua as `lease`) and its expiry in the consumers zset (after outage.lua's `forgive_gap`).
-- KEYS[1] name lease   KEYS[2] consumers zset   KEYS[3] liveness tick
-- ARGV: token, lease_ms, consumer, claim_idle_ms
-- Returns {held, lapsed}: held = 1 while the token holds the name; lapsed = 0 when the consumer
-- was live, 1 when its expiry had passed (peers may have reclaimed its entries), 2 when it was
-- not registered (its first renewal, or peers reclaimed everything and forgot it).
-- Atomic so a consumer that lost its name never registers as live under it.
if lease({KEYS[1]}, {ARGV[1], ARGV[2]}) ~= 1 then
  return {0, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
forgive_gap({KEYS[2], KEYS[3]}, {now, ARGV[4]})
local prev = redis.call('ZSCORE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
if not prev then
  return {1, 2}
end
if tonumber(prev) < now then
  return {1, 1}
end
return {1, 0}
