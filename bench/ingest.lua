-- ingest.lua - wrk script for POST /e/{key}. BATCH events per request
-- (environment BATCH, default 1), each {"name":"bench/ingest","data":{"i":N}}.
-- Counts non-200 answers so the run fails loudly if any event was refused.
local batch = tonumber(os.getenv("BATCH") or "1")
local body
do
  local parts = {}
  for i = 1, batch do
    parts[i] = string.format('{"name":"bench/ingest","data":{"i":%d,"pad":"0123456789abcdef"}}', i)
  end
  body = batch == 1 and parts[1] or ("[" .. table.concat(parts, ",") .. "]")
end
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

local bad = 0
function response(status, headers, b)
  if status ~= 200 then bad = bad + 1 end
end

function done(summary, latency, requests)
  io.write(string.format('{"requests":%d,"duration_s":%.3f,"batch":%d,"non200":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, batch, summary.errors.status + bad,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
