-- wrk script (bench.bench_service.wrk_load): requests the paths of a file (one per line) in turn, each
-- thread from its own offset, with a Bearer token; prints one line "WRKJSON {...}" with the percentiles (ms).
local counter = 0
local threads = {}
function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end
function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  token = args[2]
  i = (id * 7919) % #paths
  statuses = {}
end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], {["Authorization"] = "Bearer " .. token})
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local s = {}
  for _, t in ipairs(threads) do
    local st = t:get("statuses")
    for k, v in pairs(st) do s[k] = (s[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(s) do parts[#parts + 1] = string.format('"%d": %d', k, v) end
  io.write(string.format('WRKJSON {"n": %d, "seconds": %.3f, "bytes": %d, "p50": %.3f, "p95": %.3f, "p99": %.3f, "max": %.3f, "errors": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration / 1e6, summary.bytes, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout, table.concat(parts, ", ")))
end
