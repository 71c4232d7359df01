-- After a batch of acknowledgements (sent just before, as plain pipelined commands: each job's
-- status, then one XACK per stream): drops from the consumer's owned set the streams where
-- nothing of it is pending any more (composed after forget.lua: `forget_if_done`).
-- KEYS[1] the consumer's owned-stream set
-- ARGV: group, consumer, then the streams acknowledged
-- Atomic per stream: the pending check and the removal are one step.
for a = 3, #ARGV do
  forget_if_done({ARGV[a], KEYS[1]}, {ARGV[1], ARGV[2]})
end
return 1
