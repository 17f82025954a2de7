#!/usr/bin/env bash
# The REST API benchmark, run by `./scripts/bench api` (docs/bench-api.md).
#
# todo-api (build/bin/todo-api, outbox relay on, Kafka and Redis up) is
# measured with wrk beside a baseline measured in the same run: pgbench
# sending the same SQL the API sends, at the same client concurrency.
#   (a) creates: max throughput (POST /api/tasks over 100 users' tokens)
#       vs pgbench running the API's create transaction (pipelined the
#       same way) on a fresh database;
#   (b) create latency at a fixed rate of half the API's maximum;
#   (c) listing with filters, and a q= search, for a user with 10 000
#       tasks: max throughput, and latency at half of it.
# Needs the services running (scripts/bench starts them) and build/.
# Raw outputs: .run/bench/api/.  Takes about 4 minutes with the defaults.
#
# Settings (environment):
#   TE_BENCH_API_CONNS          client connections (wrk -c, pgbench -c)       16
#   TE_BENCH_API_ROUNDS         rounds per measurement (API, baseline, API...) 3
#   TE_BENCH_API_SECONDS        seconds per create round and side              5
#   TE_BENCH_API_LIST_SECONDS   seconds per list round and side                5
#   TE_BENCH_API_WARMUP         seconds of unrecorded load before each part    3
#   TE_BENCH_API_USERS          users the creates are spread over              100
#   TE_BENCH_API_LIST_TASKS     tasks of the listing user                      10000
#   TE_BENCH_API_LISTEN         where the benchmarked todo-api listens         127.0.0.1:18480
#   TE_BENCH_API_KEEP           1: keep the two bench databases afterwards     0
#   TE_BENCH_API_BIN            directory of todo-api and todoctl              build/bin
#   TE_API_THREADS              passed to todo-api (unset: its default, 4 x CPUs)
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/../lib.sh"

CONNS=${TE_BENCH_API_CONNS:-16}
CREATE_SECONDS=${TE_BENCH_API_SECONDS:-5}
LIST_SECONDS=${TE_BENCH_API_LIST_SECONDS:-5}
ROUNDS=${TE_BENCH_API_ROUNDS:-3}
WARMUP=${TE_BENCH_API_WARMUP:-3}
USERS=${TE_BENCH_API_USERS:-100}
LIST_TASKS=${TE_BENCH_API_LIST_TASKS:-10000}
LISTEN=${TE_BENCH_API_LISTEN:-127.0.0.1:18480}
KEEP=${TE_BENCH_API_KEEP:-0}
BIN=${TE_BENCH_API_BIN:-build/bin}
OUT=$TE_ROOT/.run/bench/api
API_DB=te_bench_api           # the API's database
PGB_DB=te_bench_api_pgbench   # the baseline's database (creates)
LIST_USER=bench-list
URL=http://$LISTEN

bench_need_tools api wrk curl python3
bench_need_bins "$BIN/todo-api" "$BIN/todoctl"
bench_services
API_URL_PG=$BASE_URL/$API_DB
PGB_URL_PG=$BASE_URL/$PGB_DB
bench_outputs

# --- machine and build -------------------------------------------------------
bench_info_machine
info conns "$CONNS"
info rounds "$ROUNDS"
info create_seconds "$CREATE_SECONDS"
info list_seconds "$LIST_SECONDS"
bench_info_start

# --- databases, secret, tokens, topics ---------------------------------------
log "api bench: fresh databases $API_DB (API) and $PGB_DB (pgbench), migrations applied"
bench_migrated_db "$API_DB"
bench_migrated_db "$PGB_DB"

bench_secret
for ((i = 1; i <= USERS; i++)); do
  "$BIN"/todoctl token --user "$(printf 'bench-user-%03d' "$i")" --ttl 3600
done >"$OUT/tokens.txt"
LIST_TOKEN=$("$BIN"/todoctl token --user "$LIST_USER" --ttl 3600)
bench_topics

# --- the daemon ---------------------------------------------------------------
start_api() {  # start_api DB_URL RELAY(0|1) LOG
  bench_port_free "$LISTEN" TE_BENCH_API_LISTEN
  bench_start_api "$1" "$2" "$LISTEN" "$3"
}
trap 'stop_api; bench_drop_dbs "$API_DB" "$PGB_DB"' EXIT

# --- the create transaction's parameters: one real create ---------------------
# The benchmark's tasks look like bench/api/create.lua's; one is created
# through the API (relay off) to capture what it writes: the task JSON and
# the two CloudEvents, which become pgbench's bind parameters.
TITLE="Prepare the quarterly report 1"
DESCR="Collect the figures from finance, reconcile them with the forecast, update the slides and send the deck to the whole team before the Monday planning meeting (item 1)."
TAGS='["work","reports","q4"]'
DUE=2027-01-01T09:30:00Z
TZNAME=Europe/Berlin
BODY=$(printf '{"title":"%s","description":"%s","priority":"high","tags":%s,"due_date":"%s","timezone":"%s"}' \
  "$TITLE" "$DESCR" "$TAGS" "$DUE" "$TZNAME")
log "api bench: one create through the API to capture the statements' parameters"
start_api "$PGB_URL_PG" 0 "$OUT/todo-api-probe.log"
code=$(curl -s -o "$OUT/probe-task.json" -w '%{http_code}' -X POST "$URL/api/tasks" \
  -H "Authorization: Bearer $(head -1 "$OUT/tokens.txt")" -H 'Content-Type: application/json' -d "$BODY")
stop_api
[ "$code" = 201 ] || die "probe create answered $code: $(cat "$OUT/probe-task.json")"
sql "$PGB_URL_PG" "SELECT payload FROM outbox WHERE topic = 'task.events'" >"$OUT/probe-task-event.json"
sql "$PGB_URL_PG" "SELECT payload FROM outbox WHERE topic = 'sync.events'" >"$OUT/probe-sync-event.json"
sql "$PGB_URL_PG" "TRUNCATE tasks, reminders, changes, outbox, user_seq"
TASKJSON=$(cat "$OUT/probe-task.json")
EVTASK=$(cat "$OUT/probe-task-event.json")
EVSYNC=$(cat "$OUT/probe-sync-event.json")
{ [ -n "$EVTASK" ] && [ -n "$EVSYNC" ]; } || die "the probe create wrote no outbox rows"
info payload_task_bytes "${#EVTASK}"
info payload_sync_bytes "${#EVSYNC}"
NOW=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
CREATE_VARS=(-D "users=$USERS" -D "title=$TITLE" -D "descr=$DESCR" -D "tags=$TAGS" -D "due=$DUE"
  -D "tz=$TZNAME" -D "now=$NOW" -D "empty=[]" -D "status=pending" -D "taskjson=$TASKJSON"
  -D "evtask=$EVTASK" -D "evsync=$EVSYNC")

# --- runners ------------------------------------------------------------------
export BENCH_LUA_DIR=$BENCH_DIR BENCH_TOKENS=$OUT/tokens.txt BENCH_THREADS=1 BENCH_CONNS=$CONNS
run_wrk() {  # run_wrk LABEL SCRIPT SECONDS RATE [PATH]   (LABEL "" = warm-up, not recorded)
  local label=$1 script=$2 secs=$3 rate=$4 path=${5:-}
  local out=/dev/null json="" samples=""
  if [ -n "$label" ]; then
    out=$OUT/wrk-$label.txt json=$OUT/wrk-$label.json samples=$OUT/samples-$label
    curl -s "$URL/metrics" >"$OUT/metrics-$label.before.txt" || true
  fi
  BENCH_LABEL=$label BENCH_RATE=$rate BENCH_PATH=$path BENCH_TOKEN=$LIST_TOKEN BENCH_OUT=$json \
    BENCH_SAMPLES=$samples \
    wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 10s --latency -s "$BENCH_DIR/$script" "$URL" >"$out" 2>&1 \
    || die "wrk failed (${label:-warm-up}); see $out"
  if [ -n "$label" ]; then
    curl -s "$URL/metrics" >"$OUT/metrics-$label.txt" || true
    python3 "$BENCH_DIR/summary.py" wrk "$label" "$json" "$samples" "$RESULTS"
    local method=GET
    [ "$script" = create.lua ] && method=POST
    python3 "$BENCH_DIR/summary.py" server "$label" "$OUT/metrics-$label.before.txt" \
      "$OUT/metrics-$label.txt" /api/tasks "$method" "$RESULTS"
    python3 "$BENCH_DIR/summary.py" brief "$RESULTS" "$label" >&2
  fi
}
run_pgbench() {  # run_pgbench LABEL CLIENTS DBURL SCRIPT SECONDS RATE VARS...   (LABEL "" = warm-up)
  local label=$1 clients=$2 db=$3 script=$4 secs=$5 rate=$6
  shift 6
  local rate_arg=() log_arg=()
  [ "$rate" != 0 ] && rate_arg=(-R "$rate")
  local out=/dev/null
  if [ -n "$label" ]; then
    out=$OUT/pgbench-$label.txt
    log_arg=(-l "--log-prefix=$OUT/pgbench-$label.log")
  fi
  "$PGBENCH" -n -M extended -c "$clients" -j 1 -T "$secs" "${rate_arg[@]}" "${log_arg[@]}" \
    -f "$BENCH_DIR/$script" "$@" "$db" >"$out" 2>&1 || die "pgbench failed (${label:-warm-up}); see $out"
  if [ -n "$label" ]; then
    python3 "$BENCH_DIR/summary.py" pgbench "$label" "$out" "$OUT/pgbench-$label.log" "$rate" "$RESULTS" >/dev/null
    python3 "$BENCH_DIR/summary.py" brief "$RESULTS" "$label" >&2
  fi
}
rps_of() { python3 "$BENCH_DIR/summary.py" rps "$RESULTS" "$1"; }
outbox_rows() { sql "$API_URL_PG" "SELECT count(*) FROM outbox"; }

# --- the API, relay on ----------------------------------------------------------
start_api "$API_URL_PG" 1 "$OUT/todo-api.log"
# Its worker threads = its PostgreSQL connections: the baseline's client
# count at a fixed rate (docs/bench-api.md).
DBCONNS=$(grep -o '"threads":[0-9]*' "$OUT/todo-api.log" | head -1 | cut -d: -f2)
[ -n "$DBCONNS" ] || die "todo-api did not log its thread count"
if [ -n "${TE_API_THREADS:-}" ]; then info threads "$DBCONNS (TE_API_THREADS)"
else info threads "$DBCONNS (default: 4 per CPU)"; fi

# Each measurement runs in ROUNDS rounds, the API's and the baseline's
# alternating, so that a change in the machine's load (other processes)
# hits both sides alike; the table shows the median of the rounds.
pair() {  # pair NAME LUA PATH SQL DBURL SECONDS RATE PG_CLIENTS VARS...
  local name=$1 lua=$2 path=$3 script=$4 db=$5 secs=$6 rate=$7 clients=$8 r
  shift 8
  for ((r = 1; r <= ROUNDS; r++)); do
    run_wrk "${name}_api.$r" "$lua" "$secs" "$rate" "$path"
    if [ "$name" = create_max ]; then backlogs+=("$(outbox_rows)"); fi
    run_pgbench "${name}_pg.$r" "$clients" "$db" "$script" "$secs" "$rate" "$@"
  done
}
backlogs=()

# (a) create throughput
log "api bench (a): creates at full speed, $CONNS connections, $ROUNDS x ${CREATE_SECONDS}s each side"
run_wrk "" create.lua "$WARMUP" 0
run_pgbench "" "$CONNS" "$PGB_URL_PG" create.sql "$WARMUP" 0 "${CREATE_VARS[@]}"
pair create_max create.lua "" create.sql "$PGB_URL_PG" "$CREATE_SECONDS" 0 "$CONNS" "${CREATE_VARS[@]}"
info outbox_backlog_after_create "${backlogs[*]} (after each round)"
t_drain=$SECONDS
while [ "$(outbox_rows)" != 0 ] && [ $((SECONDS - t_drain)) -lt 60 ]; do sleep 0.2; done
info outbox_drain_seconds "$((SECONDS - t_drain)) (left: $(outbox_rows))"

# (b) create latency at half the API's maximum
half=$(( $(rps_of create_max_api) / 2 ))
[ "$half" -ge 1 ] || half=1
log "api bench (b): creates at a fixed $half/s (half the API's maximum), $ROUNDS x ${CREATE_SECONDS}s each side"
pair create_half create.lua "" create.sql "$PGB_URL_PG" "$CREATE_SECONDS" "$half" "$DBCONNS" "${CREATE_VARS[@]}"
info tasks_created "$(sql "$API_URL_PG" "SELECT count(*) FROM tasks")"

# (c) listing for a user with LIST_TASKS tasks
log "api bench (c): $LIST_TASKS tasks for $LIST_USER; lists at full speed and at half of it"
t_drain=$SECONDS
while [ "$(outbox_rows)" != 0 ] && [ $((SECONDS - t_drain)) -lt 60 ]; do sleep 0.2; done
"$PSQL" "$API_URL_PG" -X -q -v ON_ERROR_STOP=1 -v "user=$LIST_USER" -v "n=$LIST_TASKS" \
  -f "$BENCH_DIR/seed.sql" >"$OUT/seed.log" 2>&1 || die "seeding failed (see $OUT/seed.log)"
LIST_PATH='/api/tasks?status=pending&priority=high,urgent&tags=work&sort=due_date&page_size=20'
SEARCH_PATH='/api/tasks?q=invoice&sort=due_date&page_size=20'
for p in "$LIST_PATH" "$SEARCH_PATH"; do
  curl -s -H "Authorization: Bearer $LIST_TOKEN" "$URL$p" >>"$OUT/list-sample.json"
  echo >>"$OUT/list-sample.json"
done
info list_matches "$(python3 "$BENCH_DIR/summary.py" totals "$OUT/list-sample.json")"
LIST_VARS=(-D "user=$LIST_USER" -D "status=pending" -D 'prios={2,3}' -D 'tags={"work"}'
  -D lim=20 -D off=0)
SEARCH_VARS=(-D "user=$LIST_USER" -D 'pat=%invoice%' -D lim=20 -D off=0)
for kind in list search; do
  if [ $kind = list ]; then path=$LIST_PATH script=list.sql vars=("${LIST_VARS[@]}")
  else path=$SEARCH_PATH script=search.sql vars=("${SEARCH_VARS[@]}"); fi
  log "api bench (c): $path"
  run_wrk "" list.lua "$WARMUP" 0 "$path"
  pair "${kind}_max" list.lua "$path" "$script" "$API_URL_PG" "$LIST_SECONDS" 0 "$CONNS" "${vars[@]}"
  half=$(( $(rps_of "${kind}_max_api") / 2 ))
  [ "$half" -ge 1 ] || half=1
  pair "${kind}_half" list.lua "$path" "$script" "$API_URL_PG" "$LIST_SECONDS" "$half" "$DBCONNS" "${vars[@]}"
done

# --- what the daemon says about it ---------------------------------------------
curl -s "$URL/metrics" >"$OUT/metrics-final.txt" || true
info http_status_counts "$(sed -n 's/^te_http_request_duration_seconds_count{route="\([^"]*\)",method="\([^"]*\)",status="\([^"]*\)"} \(.*\)/\2 \1 \3: \4/p' "$OUT/metrics-final.txt" | paste -sd ';' | sed 's/;/; /g')"
info kafka_published "$(sed -n 's/^te_outbox_published_total //p' "$OUT/metrics-final.txt") (delivery errors: $(sed -n 's/^te_kafka_delivery_errors_total //p' "$OUT/metrics-final.txt"))"
stop_api
info log_warn_error "$(grep -c -E '"level":"(warn|error)"' "$OUT/todo-api.log" || true)"
if grep -q -e '"msg":"kafka unreachable' -e '_ALL_BROKERS_DOWN' "$OUT/todo-api.log"; then
  info kafka_outage "$(grep -e '"msg":"kafka unreachable' -e '_ALL_BROKERS_DOWN' -e '"msg":"kafka reachable' "$OUT/todo-api.log" \
    | sed -n 's/.*"ts":"\([^"]*\)".*"msg":"\([^"]*\)".*/\1 \2/p' | cut -c1-90 | paste -sd ';' | sed 's/;/; /g')"
fi
bench_finish "api bench"
