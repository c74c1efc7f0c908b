-- wrk script for bench/webhooks.py: signed GitHub pull_request deliveries, unique ids.
-- env: BENCH_BODY (file), BENCH_SIGNATURE (sha256=...), BENCH_RUN (a prefix for the ids)
local threads = {}
counter = 0
accepted = 0
other = 0

function setup(thread)
  thread:set("tid", tostring(#threads + 1))
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
  wrk.body = f:read("*all")
  f:close()
  wrk.method = "POST"
  wrk.path = "/webhooks/github"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = "pull_request"
  wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
  wrk.headers["X-Hub-Signature-256"] = os.getenv("BENCH_SIGNATURE")
end

function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = os.getenv("BENCH_RUN") .. "-" .. tid .. "-" .. counter
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
