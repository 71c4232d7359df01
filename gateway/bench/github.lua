-- wrk script: signed GitHub `workflow_run` webhooks. The body is fixed, so one precomputed
-- signature covers every request (GitHub signs only the body); each request carries a unique
-- X-GitHub-Delivery (thread id + counter), so every accepted request is a new job.
local counter = 0
thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
  body = f:read("*a")
  f:close()
  signature = os.getenv("BENCH_SIGNATURE")
  run_id = os.getenv("BENCH_RUN_ID") or "run"
end

function request()
  counter = counter + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "workflow_run",
    ["X-GitHub-Delivery"] = string.format("%s-%d-%d", run_id, thread_id, counter),
    ["X-Hub-Signature-256"] = signature,
  }
  return wrk.format("POST", nil, headers, body)
end
