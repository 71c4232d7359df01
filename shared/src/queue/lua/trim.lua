-- Trims acknowledged entries from the head of a stream, never an unacknowledged one.
-- KEYS[1] stream
-- ARGV: group
-- Safe bound: everything older than the oldest pending entry AND already delivered to the group
-- is acknowledged. Atomic so no delivery or ack interleaves between reading the bound and trimming.
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return 0 end
local last = nil
for _, g in ipairs(groups) do
  local name, ld
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then ld = g[i + 1] end
  end
  if name == ARGV[1] then last = ld end
end
if not last or last == '0-0' then return 0 end
local minid
local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
if summary[1] > 0 then
  minid = summary[2]
else
  -- Nothing pending: keep the last delivered entry itself, drop everything before it.
  minid = last
end
return redis.call('XTRIM', KEYS[1], 'MINID', minid)
