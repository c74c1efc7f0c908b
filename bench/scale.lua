-- wrk script for bench/scale.py: signed GitHub pull_request deliveries cycling through prepared
-- bodies (one per installation, so that their jobs are not all in one group), unique ids.
-- env: BENCH_BODIES (a file of lines "<body file> <sha256=signature>"), BENCH_RUN (id prefix)
local threads = {}
counter = 0
accepted = 0
other = 0

function setup(thread)
  thread:set("tid", tostring(#threads + 1))
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  signatures = {}
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    local path, signature = line:match("^(%S+) (%S+)$")
    local f = assert(io.open(path, "rb"))
    table.insert(bodies, f:read("*all"))
    f:close()
    table.insert(signatures, signature)
  end
  wrk.method = "POST"
  wrk.path = "/webhooks/github"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = "pull_request"
  wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
end

function request()
  counter = counter + 1
  local i = (counter % #bodies) + 1
  wrk.headers["X-GitHub-Delivery"] = os.getenv("BENCH_RUN") .. "-" .. tid .. "-" .. counter
  wrk.headers["X-Hub-Signature-256"] = signatures[i]
  wrk.body = bodies[i]
  return wrk.format()
end

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local a, o = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted")
    o = o + t:get("other")
  end
  io.write(string.format("RESULT requests=%d accepted=%d other=%d errors=%d p50=%.3f p99=%.3f max=%.3f\n",
    summary.requests, a, o,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
