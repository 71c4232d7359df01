-- Claims up to ARGV[3] new entries from each of a lane's tenant streams and marks their jobs
-- running, in one round trip.
-- KEYS: the lane's tenant streams (all under the queue's hash tag)
-- ARGV: group, consumer, count per stream, queue key prefix, now_ms
-- Entries carry `j` (job id); the status hash is <prefix>job:<tenant>:<id>, the tenant being the
-- stream name's last part. Atomic so a claimed job is never reported queued.
local args = {'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS'}
for i = 1, #KEYS do args[#args + 1] = KEYS[i] end
for i = 1, #KEYS do args[#args + 1] = '>' end
local r = redis.call('XREADGROUP', unpack(args))
if not r then return {} end
for _, stream in ipairs(r) do
  local tenant = string.match(stream[1], ':([^:]+)$')
  for _, entry in ipairs(stream[2]) do
    local f = entry[2]
    for i = 1, #f, 2 do
      if f[i] == 'j' then
        redis.call('HSET', ARGV[4] .. 'job:' .. tenant .. ':' .. f[i + 1], 'state', 'running',
          'consumer', ARGV[2], 'updated', ARGV[5])
        break
      end
    end
  end
end
return r
