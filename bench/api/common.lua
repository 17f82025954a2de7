-- Shared by the wrk scripts of the API benchmark (bench/api/run.sh).
--
-- * Latency of each request, measured here: every measured request carries
--   a W3C traceparent whose trace id numbers it; todo-api answers with the
--   same trace id, so response() finds the request's send time.  One line
--   "<milliseconds> <status>" per response goes to BENCH_SAMPLES.<tag>
--   (line-buffered; bench/api/summary.py reads them).  Requests without
--   such a trace id (the opening /healthz below) are not counted.
-- * Optional pacing: BENCH_RATE (requests/s, all threads together),
--   BENCH_THREADS (= wrk -t) and BENCH_CONNS (= wrk -c) turn wrk's closed
--   loop into Poisson arrivals at that mean rate.
-- * done(): wrk's own figures as one JSON line, appended to BENCH_OUT.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
  int clock_gettime(int clk, bench_timespec_t *ts);
]]
local ts = ffi.new("bench_timespec_t")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local rate = tonumber(os.getenv("BENCH_RATE") or "0") or 0
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1") or 1
local nconns = tonumber(os.getenv("BENCH_CONNS") or "0") or 0
local samples_path = os.getenv("BENCH_SAMPLES")
if samples_path == "" then samples_path = nil end

-- A tag per thread (its Lua state's address and the time), the first 8
-- hex digits of its trace ids.
local entropy = tonumber(string.match(tostring({}), "0x(%x+)") or "1", 16) or 1
math.randomseed((os.time() + entropy) % 2147483647)
local tag = string.format("%08x", math.random(1, 0x7fffffff))

local sent, seq, sf = {}, 0, nil

-- bench_traceparent(): the traceparent header of the next measured request.
function bench_traceparent()
  seq = seq + 1
  local id = tag .. string.format("%024x", seq)
  sent[id] = now_ms()
  return "00-" .. id .. "-00f067aa0ba902b7-01"
end

function response(status, headers, body)
  local tp = headers["traceparent"] or headers["Traceparent"]
  if not tp then return end
  local id = string.sub(tp, 4, 35)
  local t0 = sent[id]
  if not t0 then return end
  sent[id] = nil
  if samples_path and not sf then
    sf = assert(io.open(samples_path .. "." .. tag, "a"))
    sf:setvbuf("line")
  end
  if sf then sf:write(string.format("%.3f %d\n", now_ms() - t0, status)) end
end

local started = 0
-- bench_opening(): true for the first request of each connection of a
-- paced run.  wrk sends those all at once when it connects; the scripts
-- make them an unmeasured GET /healthz so that this burst does not land on
-- the measured route.
function bench_opening()
  if rate <= 0 or started >= nconns then return false end
  started = started + 1
  return true
end

if rate > 0 then
  -- Arrivals at the given mean rate, Poisson (exponential gaps, as
  -- pgbench --rate): every finished request claims the next arrival time
  -- of this thread's schedule and waits for it.  The rate holds as long as
  -- the server keeps up, whatever the number of connections; when a
  -- request is late, the next one leaves at once.
  local interval = 1000.0 * nthreads / rate
  local next_slot = nil
  function delay()
    local t = now_ms()
    if next_slot == nil or next_slot < t - 1000 then next_slot = t end
    next_slot = next_slot - interval * math.log(1.0 - math.random())
    local d = next_slot - t
    if d < 0 then return 0 end
    return d
  end
end

local function q(s) return '"' .. tostring(s) .. '"' end

function bench_done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  local fields = {
    q("label") .. ":" .. q(os.getenv("BENCH_LABEL") or "wrk"),
    q("requests") .. ":" .. summary.requests,
    q("seconds") .. ":" .. string.format("%.3f", secs),
    q("rps") .. ":" .. string.format("%.1f", summary.requests / secs),
    q("target_rate") .. ":" .. rate,
    q("errors_connect") .. ":" .. e.connect,
    q("errors_read") .. ":" .. e.read,
    q("errors_write") .. ":" .. e.write,
    q("errors_timeout") .. ":" .. e.timeout,
    q("non_2xx_3xx") .. ":" .. e.status,
    -- wrk's own latency figures (every request, the opening ones included)
    q("wrk_p50_ms") .. ":" .. string.format("%.3f", latency:percentile(50) / 1000),
    q("wrk_p99_ms") .. ":" .. string.format("%.3f", latency:percentile(99) / 1000),
    q("wrk_max_ms") .. ":" .. string.format("%.3f", latency.max / 1000),
  }
  local line = "{" .. table.concat(fields, ",") .. "}"
  local out = os.getenv("BENCH_OUT")
  if out and out ~= "" then
    local f = assert(io.open(out, "a"))
    f:write(line, "\n")
    f:close()
  end
  io.write(line, "\n")
end

function done(summary, latency, requests) bench_done(summary, latency, requests) end
