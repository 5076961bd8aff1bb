-- wrk script: signed workflow_run failure deliveries, each with its own X-GitHub-Delivery.
-- The body and its signature are prepared by scripts/bench-ingest.sh and scripts/bench.sh (same body, so the
-- same signature).
local counter = 0
local body = os.getenv("BENCH_BODY_FILE") and io.open(os.getenv("BENCH_BODY_FILE")):read("*a")
local signature = os.getenv("BENCH_SIGNATURE")
local prefix = os.getenv("BENCH_PREFIX") or "bench"

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "workflow_run"
wrk.headers["X-Hub-Signature-256"] = signature

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

local n = 0
function request()
  n = n + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("%s-%d-%d", prefix, tid or 0, n)
  return wrk.format()
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx/3xx: %d, errors: connect %d read %d write %d timeout %d\n",
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("p%d: %.2f ms\n", p, latency:percentile(p) / 1000))
  end
  -- One machine-readable line for scripts/bench.sh.
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("BENCH requests=%d rps=%.1f p50=%.3f p90=%.3f p99=%.3f non2xx=%d errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, summary.errors.status, errors))
end
