-- A worker's clean stop: it leaves the consumers zset when nothing of it is pending; otherwise
-- (a hand-back failed) its expiry is set to 0 so a peer reclaims what is left at once.
-- KEYS[1] consumers zset   KEYS[2] the consumer's owned-stream set
-- ARGV: consumer
-- Atomic: the owned set cannot change between the check and the decision.
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
return 1
