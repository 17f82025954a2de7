-- wrk script: POST /api/tasks, one new task per request, the Authorization
-- header rotating over the tokens in BENCH_TOKENS (one JWT a line, one per
-- user).  Tasks carry no reminders (see docs/bench-api.md).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  if line ~= "" then tokens[#tokens + 1] = "Bearer " .. line end
end
assert(#tokens > 0, "no tokens in BENCH_TOKENS")

local PRIO = { "low", "medium", "high", "urgent" }
local TAGS = { '"work","reports","q4"', '"home","errands"', '"work","meetings","team"', '"personal","health"' }
local ZONES = { "Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC" }
local body_fmt = '{"title":"Prepare the quarterly report %d",'
  .. '"description":"Collect the figures from finance, reconcile them with the forecast, update the slides '
  .. 'and send the deck to the whole team before the Monday planning meeting (item %d).",'
  .. '"priority":"%s","tags":[%s],"due_date":"2027-%02d-%02dT%02d:30:00Z","timezone":"%s"}'
local healthz = wrk.format("GET", "/healthz")

local n, i = 0, math.random(#tokens)

function request()
  if bench_opening() then return healthz end
  n = n + 1
  i = i % #tokens + 1
  local body = string.format(body_fmt, n, n, PRIO[n % 4 + 1], TAGS[n % 4 + 1],
    n % 12 + 1, n % 28 + 1, n % 24, ZONES[n % 4 + 1])
  return wrk.format("POST", "/api/tasks", {
    ["Authorization"] = tokens[i],
    ["Content-Type"] = "application/json",
    ["traceparent"] = bench_traceparent(),
  }, body)
end
