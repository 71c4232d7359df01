-- After an entry left a consumer's pending list: drops the stream from the consumer's owned set
-- once nothing of that consumer is pending there. Composed as `forget_if_done` into ack, retry,
-- dead_letter and handback, so the owned set is exact in the same step as the XACK.
-- KEYS[1] stream   KEYS[2] the consumer's owned-stream set
-- ARGV: group, consumer
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  redis.call('SREM', KEYS[2], KEYS[1])
end
