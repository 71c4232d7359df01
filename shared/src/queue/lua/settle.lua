-- After a worker read the streams claim.lua planned and started the jobs (sent by its writer,
-- writer.rs, composed after forget.lua: `forget_if_done`): the streams it got entries from join
-- its owned set (so a reclaim finds them), and the tenants whose read came up short are settled. Such a tenant leaves its lane's
-- ready index only when its stream holds no undelivered entry, checked here in the same step,
-- so an enqueue in between keeps it listed; its stream leaves the owned set when nothing of the
-- consumer is pending there. (A worker dying between its read and this call leaves entries
-- pending outside its owned set: the upkeep's orphan pass, upkeep.lua, hands them to the
-- reclaim.)
-- KEYS[1] the consumer's owned-stream set
-- ARGV: queue key prefix, group, consumer, number of streams read, those streams, then per
--       short tenant: lane, tenant
-- Keys derived from the prefix: stream:<lane>:<tenant>, ready:<lane>, readyset:<lane>.
-- Returns how many tenants left the ready index.
local p, group, me, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
for a = 5, 4 + n do
  -- Only while something of this consumer is still pending there: the writer settles a read
  -- after its jobs started, and they may have ended (retried, handed back) on another path.
  if #redis.call('XPENDING', ARGV[a], group, '-', '+', 1, me) > 0 then
    redis.call('SADD', KEYS[1], ARGV[a])
  end
end
local drained = 0
for a = 5 + n, #ARGV, 2 do
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
