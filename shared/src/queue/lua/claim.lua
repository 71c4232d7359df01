-- Plans one worker's claim, never beyond what it can start now (composed after outage.lua:
-- `forgive_gap`). Mode 'claim': first the pending entries of one consumer presumed dead (its
-- liveness expired), taken over here; then the tenants to read new entries from, rotated
-- through each lane's ready index, lanes in priority order, a share of the room each. The
-- worker reads those streams itself (XREADGROUP, no script) and settles the ones that came up
-- short (settle.lua). Mode 'own': every entry still pending for this consumer (a restarted
-- worker with the same name), and nothing else. Mode 'plan': the plan of mode 'claim' without
-- the take-over (sent ahead, in the round trip of the previous claim's read).
-- KEYS[1] consumers zset (liveness, scored by expiry)   KEYS[2] this consumer's owned-stream set
-- KEYS[3] liveness tick
-- ARGV: queue key prefix, group, consumer, free slots, room for default+bulk, room for bulk,
--       claim_idle_ms, max tenant visits, mode, then (lane, tenant) pairs of a plan made ahead
--       that is given up (they are put back at the head of their ready index)
-- Keys derived from the prefix (same hash tag, same slot): ready:<lane>, wake:<lane>,
-- stream:<lane>:<tenant>, job:<tenant>:<id>, owned:<dead consumer>.
-- Atomic: a consumer's entries are taken only while its liveness is expired, and marked running
-- with their claim. A planned tenant stays in the ready index (moved to its tail), so a crash
-- between plan and read loses nothing.
-- Returns {more, {{lane, tenant, entry id, envelope, deliveries, job id, marked}...},
-- {lane, tenant, count, ...}}: more = 1 when the visit bound stopped the plan with room left.
local p, group, me = ARGV[1], ARGV[2], ARGV[3]
local free, room_db, room_b = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local idle, max_visits, mode = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local lanes = {'interactive', 'default', 'bulk'}
local lane_index = {interactive = 1, default = 2, bulk = 3}
local taken = {0, 0, 0}
local used = 0
local out = {}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Slots left for lane li: interactive may use any free slot, default+bulk share what the
-- interactive reserve leaves, bulk what both reserves leave.
local function room(li)
  local r = free - used
  if li >= 2 then r = math.min(r, room_db - taken[2] - taken[3]) end
  if li == 3 then r = math.min(r, room_b - taken[3]) end
  return r
end

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

-- Records one claimed entry and marks its job running (when the entry names its job).
local function take(li, tenant, entry, deliveries)
  local id = field(entry[2], 'i')
  local marked = 0
  if id then
    local st = p .. 'job:' .. tenant .. ':' .. id
    -- Four new fields: there was no status (it expired); do not leave one without a TTL.
    if redis.call('HSET', st, 'state', 'running', 'consumer', me, 'updated', now,
        'deliveries', deliveries) == 4 then
      redis.call('DEL', st)
    end
    marked = 1
  end
  taken[li] = taken[li] + 1
  used = used + 1
  out[#out + 1] = {lanes[li], tenant, entry[1], field(entry[2], 'e') or '', deliveries, id or '',
    marked}
end

-- Moves pending entries of consumer `from` to this consumer, within the lanes' room, visiting at
-- most `max_streams` of its streams; forgets `from` once nothing of it is pending anywhere.
local function take_over(from, max_streams)
  local owned = p .. 'owned:' .. from
  local streams = redis.call('SRANDMEMBER', owned, max_streams)
  for _, s in ipairs(streams) do
    local rest = string.sub(s, #p + 8)
    local c = string.find(rest, ':', 1, true)
    local li = c and lane_index[string.sub(rest, 1, c - 1)]
    if not li then
      redis.call('SREM', owned, s)
    else
      local tenant = string.sub(rest, c + 1)
      local r = room(li)
      if r > 0 then
        local pend = redis.call('XPENDING', s, group, '-', '+', r, from)
        for first = 1, #pend, 500 do
          local ids, counts = {}, {}
          for i = first, math.min(first + 499, #pend) do
            ids[#ids + 1] = pend[i][1]
            counts[pend[i][1]] = pend[i][4]
          end
          -- XCLAIM drops entries deleted from the stream (trimmed by an operator) from the
          -- pending list and does not return them.
          for _, entry in ipairs(redis.call('XCLAIM', s, group, me, 0, unpack(ids))) do
            take(li, tenant, entry, counts[entry[1]] + 1)
          end
        end
        if #pend > 0 then
          redis.call('SADD', KEYS[2], s)
        end
      end
      if from ~= me and #redis.call('XPENDING', s, group, '-', '+', 1, from) == 0 then
        redis.call('SREM', owned, s)
        redis.call('XGROUP', 'DELCONSUMER', s, group, from)
      end
    end
  end
  if from ~= me and redis.call('SCARD', owned) == 0 then
    redis.call('ZREM', KEYS[1], from)
  end
end

if mode == 'own' then
  take_over(me, 100000)
  return {0, out, {}}
end

-- A consumer presumed dead (not this one): its liveness expired while others kept renewing.
-- (Mode 'plan' only plans: a worker sends it ahead, beside a read, for its next claim.)
if mode == 'claim' then
  for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 2)) do
    if name ~= me then
      if forgive_gap({KEYS[1], KEYS[3]}, {now, idle}) == 0 then
        take_over(name, 16)
      end
      break
    end
  end
end

-- Tenants of a plan made ahead that did not fit the room: moved to the tail when planned, but
-- never read, so they go back to the head (LREM from the tail finds them near it) and this plan
-- serves them first.
for a = 10, #ARGV, 2 do
  local rl = p .. 'ready:' .. ARGV[a]
  if redis.call('LREM', rl, -1, ARGV[a + 1]) > 0 then
    redis.call('LPUSH', rl, ARGV[a + 1])
  end
end

-- New entries: rotate each lane's ready index, planning a fair share of the room per tenant.
local plan = {}
local visits, more = 0, 0
for li = 1, 3 do
  local lane = lanes[li]
  local rl = p .. 'ready:' .. lane
  local n = redis.call('LLEN', rl)
  local visited = 0
  while visited < n do
    local r = room(li)
    if r <= 0 then break end
    if visits >= max_visits then
      more = 1
      break
    end
    visits, visited = visits + 1, visited + 1
    -- A fair share of the room per ready tenant, but a few entries at least (a visit costs more
    -- than an entry), never more than the room.
    local per = math.min(r, math.max(math.ceil(r / (n - visited + 1)), 4))
    local tenant = redis.call('LMOVE', rl, rl, 'LEFT', 'RIGHT')
    taken[li] = taken[li] + per
    used = used + per
    plan[#plan + 1] = lane
    plan[#plan + 1] = tenant
    plan[#plan + 1] = tostring(per)
  end
end

-- Work left in a lane keeps a token in its wake list, so another idle worker wakes for it.
for li = 1, 3 do
  local lane = lanes[li]
  if redis.call('LLEN', p .. 'ready:' .. lane) > 0 and redis.call('LLEN', p .. 'wake:' .. lane) == 0 then
    redis.call('RPUSH', p .. 'wake:' .. lane, '1')
  end
end
return {more, out, plan}
