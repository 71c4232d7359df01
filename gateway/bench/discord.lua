-- wrk script: signed Discord `/usage` interactions. Ed25519 is not available in wrk's Lua, so
-- `bench_requests discord` pre-signs N distinct interactions (one per line:
-- signature TAB timestamp TAB body); thread k of n sends lines k, k+n, k+2n, ... once each
-- and then wraps around (a wrapped request is a duplicate interaction id: answered, not stored).
local lines = {}
local next_line = 1
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(os.getenv("BENCH_THREADS") or "1")
  local i = 0
  for line in io.lines(os.getenv("BENCH_DISCORD_FILE")) do
    if i % n == thread_id then
      local sig, ts, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
      table.insert(lines, wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["X-Signature-Ed25519"] = sig,
        ["X-Signature-Timestamp"] = ts,
      }, body))
    end
    i = i + 1
  end
end

function request()
  local r = lines[next_line]
  next_line = next_line + 1
  if next_line > #lines then
    next_line = 1
  end
  return r
end
