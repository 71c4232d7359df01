-- Depth of a chunk of one lane's streams, for the published depth figures and `queue stats`.
-- KEYS: the streams
-- ARGV: group
-- Returns {queued (the group's lag: not yet delivered), pending (delivered, not acknowledged),
-- length (kept until trimmed)}. Read-only; one call per chunk keeps every call short.
local queued, pending, length = 0, 0, 0
for _, s in ipairs(KEYS) do
  if redis.call('EXISTS', s) == 1 then
    length = length + redis.call('XLEN', s)
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', s)) do
      local m = {}
      for i = 1, #g, 2 do m[g[i]] = g[i + 1] end
      if m['name'] == ARGV[1] then
        pending = pending + m['pending']
        if type(m['lag']) == 'number' then queued = queued + m['lag'] end
      end
    end
  end
end
return {queued, pending, length}
