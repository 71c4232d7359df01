-- Marks (lane, tenant) as having entries ready to deliver: the tenant joins the lane's ready
-- index (once) and the lane's wake list gets a token if it has none, so an idle worker blocked on
-- it claims at once. Composed as `mark_ready` into every script that adds a stream entry
-- (enqueue, enqueue_batch, promote, replay, handback, upkeep).
-- ARGV: queue key prefix, lane, tenant, group. Keys derived from the prefix (same hash tag):
--   tenants:<lane> (set)  readyset:<lane> (set)  ready:<lane> (list)  wake:<lane> (list)
--   stream:<lane>:<tenant> (its group is created with the tenant's first entry)
-- Atomic with the caller's XADD, so an entry is never in a stream whose tenant is not indexed.
local p, lane, tenant = ARGV[1], ARGV[2], ARGV[3]
if redis.call('SADD', p .. 'tenants:' .. lane, tenant) == 1 then
  redis.pcall('XGROUP', 'CREATE', p .. 'stream:' .. lane .. ':' .. tenant, ARGV[4], '0', 'MKSTREAM')
end
if redis.call('SADD', p .. 'readyset:' .. lane, tenant) == 1 then
  redis.call('RPUSH', p .. 'ready:' .. lane, tenant)
end
if redis.call('LLEN', p .. 'wake:' .. lane) == 0 then
  redis.call('RPUSH', p .. 'wake:' .. lane, '1')
end
