-- Returns a claimed but unfinished entry to its stream at shutdown, so another worker starts it at once.
-- KEYS[1] stream   KEYS[2] status hash
-- ARGV: group, entry_id, envelope, now_ms
-- Atomic: the re-added copy and the ack of the old entry happen together.
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 0 then return 0 end
redis.call('XADD', KEYS[1], '*', 'e', ARGV[3])
redis.call('HSET', KEYS[2], 'state', 'queued', 'updated', ARGV[4])
return 1
