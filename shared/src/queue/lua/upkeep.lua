-- Upkeep of a chunk of streams (composed after trim.lua and ready.lua: `trim`, `mark_ready`):
-- trims acknowledged entries; re-indexes a tenant whose stream holds undelivered entries while it
-- is missing from the ready index (entries written by hand or by an older version); and adopts
-- orphans: a consumer with entries pending in the stream that is not registered as live and has
-- been idle past the claim-idle time (or whose liveness expired) gets the stream in its owned set
-- and a place in the consumers zset, expired, so the normal reclaim takes its entries over.
-- KEYS: the streams
-- ARGV: queue key prefix, group, claim_idle_ms, then per stream: lane, tenant
-- Returns {trimmed, re-indexed, adopted}. Atomic per stream: the figures read are the ones acted on.
local p, group, idle = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local consumers = p .. 'consumers'
local trimmed, reindexed, adopted = 0, 0, 0

local function info(list)
  local m = {}
  for i = 1, #list, 2 do m[list[i]] = list[i + 1] end
  return m
end

for i, s in ipairs(KEYS) do
  local lane, tenant = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  if redis.call('EXISTS', s) == 1 then
    trimmed = trimmed + trim({s}, {group})
    local last = nil
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', s)) do
      local m = info(g)
      if m['name'] == group then last = m['last-delivered-id'] end
    end
    if not last then
      redis.call('XGROUP', 'CREATE', s, group, '0')
      last = '0-0'
    end
    local undelivered = #redis.call('XRANGE', s, '(' .. last, '+', 'COUNT', 1) > 0
    if undelivered and redis.call('SISMEMBER', p .. 'readyset:' .. lane, tenant) == 0 then
      mark_ready({}, {p, lane, tenant, group})
      reindexed = reindexed + 1
    end
    for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', s, group)) do
      local m = info(c)
      if m['pending'] > 0 then
        local score = redis.call('ZSCORE', consumers, m['name'])
        local orphan = (not score and m['idle'] > idle) or (score and tonumber(score) < now)
        if orphan and redis.call('SADD', p .. 'owned:' .. m['name'], s) == 1 then
          redis.call('ZADD', consumers, 'NX', 0, m['name'])
          adopted = adopted + 1
        end
      end
    end
  end
end
return {trimmed, reindexed, adopted}
