-- Takes over entries another consumer left idle (crashed worker) and reports their delivery counts.
-- KEYS[1] stream
-- ARGV: group, consumer, min_idle_ms, cursor, count
-- Returns {next_cursor, {{id, fields, deliveries}...}, {deleted ids}}. One script so the delivery
-- count read belongs to the same claim.
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {}
for i, entry in ipairs(r[2]) do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
  local deliveries = 1
  if p[1] then deliveries = p[1][4] end
  out[i] = {entry[1], entry[2], deliveries}
end
return {r[1], out, r[3] or {}}
