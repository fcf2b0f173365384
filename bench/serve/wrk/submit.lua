-- wrk script of bench/serve's (1w): POST /v1/jobs, one delayed no-op job per request, the same
-- body every time (a static body: wrk builds the request once, so the client costs as little as
-- it can). At the end, prints one JSON line (prefixed "WRK ") with what wrk counted.
wrk.method = "POST"
wrk.path = "/v1/jobs"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"job":"noop","params":{"n":0},"delay_ms":3600000}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,'
      .. '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99)))
end
