-- wrk script: GET BENCH_PATH (a /api/tasks query) with the JWT in
-- BENCH_TOKEN on every request.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local path = assert(os.getenv("BENCH_PATH"), "BENCH_PATH")
local auth = "Bearer " .. assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN")
local healthz = wrk.format("GET", "/healthz")

function request()
  if bench_opening() then return healthz end
  return wrk.format("GET", path, { ["Authorization"] = auth, ["traceparent"] = bench_traceparent() })
end
