-- After a worker read the streams claim.lua planned (composed after forget.lua:
-- `forget_if_done`): marks the jobs it got running, and settles the tenants whose read came up
-- short. Such a tenant leaves its lane's ready index only when its stream holds no undelivered
-- entry, checked here in the same step, so an enqueue in between keeps it listed; and each
-- such stream leaves the consumer's owned set when nothing of the consumer is pending there.
-- KEYS[1] the consumer's owned-stream set   KEYS[2..] status hashes of the jobs read
-- ARGV: queue key prefix, group, consumer, now_ms, then per short tenant: lane, tenant
-- Keys derived from the prefix: stream:<lane>:<tenant>, ready:<lane>, readyset:<lane>.
-- Returns how many tenants left the ready index.
local p, group, me, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
for i = 2, #KEYS do
  -- Four new fields: there was no status (it expired); do not leave one without a TTL.
  if redis.call('HSET', KEYS[i], 'state', 'running', 'consumer', me, 'updated', now,
      'deliveries', 1) == 4 then
    redis.call('DEL', KEYS[i])
  end
end
local drained = 0
for a = 5, #ARGV, 2 do
  local lane, tenant = ARGV[a], ARGV[a + 1]
  local s = p .. 'stream:' .. lane .. ':' .. tenant
  local last = nil
  local groups = redis.pcall('XINFO', 'GROUPS', s)
  if not groups.err then
    for _, g in ipairs(groups) do
      local name, ld
      for k = 1, #g, 2 do
        if g[k] == 'name' then name = g[k + 1] end
        if g[k] == 'last-delivered-id' then ld = g[k + 1] end
      end
      if name == group then last = ld end
    end
  end
  if not last then
    -- No group (the stream was deleted and re-created): make it, from the start.
    redis.pcall('XGROUP', 'CREATE', s, group, '0', 'MKSTREAM')
    last = '0-0'
  end
  if #redis.call('XRANGE', s, '(' .. last, '+', 'COUNT', 1) == 0 then
    redis.call('SREM', p .. 'readyset:' .. lane, tenant)
    redis.call('LREM', p .. 'ready:' .. lane, -1, tenant)
    drained = drained + 1
  end
  forget_if_done({s, KEYS[1]}, {group, me})
end
return drained
