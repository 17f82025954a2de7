#!/usr/bin/env bash
# The worker benchmark, run by `./scripts/bench worker` (docs/bench-worker.md).
#
# todo-worker (build/bin/todo-worker, outbox relay on, Kafka up) is measured
# beside baselines measured in the same run:
#   (a) activity ingestion: N com.todo.task.created events (produced here,
#       after the end offsets of task.events were recorded) consumed by
#       todo-worker in a new consumer group whose offsets were committed at
#       those end offsets, against a fresh database: events/s until all N
#       activity rows exist, beside a bare librdkafka consumer and the
#       library's consumer with a no-op handler reading the same records
#       (each in its own new group, same start offsets), and beside pgbench
#       sending the worker's statement on one connection;
#   (b) completion -> next occurrence: todo-api on the worker's database, K
#       recurring tasks completed one at a time at a fixed rate; for each
#       the time from the complete call's response until GET /api/tasks
#       shows the next occurrence; and the worker's own histogram.
# Needs the services running (scripts/bench starts them) and build/.
# Raw outputs: .run/bench/worker/.  Takes about 2½ minutes with the defaults.
#
# Settings (environment):
#   TE_BENCH_WORKER_EVENTS       events of (a)                                 50000
#   TE_BENCH_WORKER_USERS        users they are spread over (= Kafka keys)      100
#   TE_BENCH_WORKER_ROUNDS       rounds of (a): raw, library, worker, pgbench   3
#   TE_BENCH_WORKER_PG_SECONDS   seconds per pgbench round                      5
#   TE_BENCH_WORKER_TIMEOUT      seconds a worker round may take at most        120
#   TE_BENCH_WORKER_SETTLE       seconds to wait, after producing, for other
#                                consumer groups of task.events to read them    60
#   TE_BENCH_WORKER_RELAY        todo-worker's TE_OUTBOX_RELAY in (a)           1
#   TE_BENCH_WORKER_TASKS        recurring tasks completed in (b)               200
#   TE_BENCH_WORKER_RATE         completions per second in (b)                  20
#   TE_BENCH_WORKER_POLL_MS      poll interval per pending task in (b)          5
#   TE_BENCH_WORKER_LISTEN       todo-worker's /metrics address                 127.0.0.1:18481
#   TE_BENCH_WORKER_API_LISTEN   todo-api's address in (b)                      127.0.0.1:18482
#   TE_BENCH_WORKER_KEEP         1: keep the bench databases afterwards         0
#   TE_BENCH_WORKER_BIN          directory of todo-worker, todo-api, todoctl    build/bin
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/../lib.sh"

EVENTS=${TE_BENCH_WORKER_EVENTS:-50000}
USERS=${TE_BENCH_WORKER_USERS:-100}
ROUNDS=${TE_BENCH_WORKER_ROUNDS:-3}
PG_SECONDS=${TE_BENCH_WORKER_PG_SECONDS:-5}
TIMEOUT=${TE_BENCH_WORKER_TIMEOUT:-120}
SETTLE=${TE_BENCH_WORKER_SETTLE:-60}
RELAY=${TE_BENCH_WORKER_RELAY:-1}
TASKS=${TE_BENCH_WORKER_TASKS:-200}
RATE=${TE_BENCH_WORKER_RATE:-20}
POLL_MS=${TE_BENCH_WORKER_POLL_MS:-5}
LISTEN=${TE_BENCH_WORKER_LISTEN:-127.0.0.1:18481}
API_LISTEN=${TE_BENCH_WORKER_API_LISTEN:-127.0.0.1:18482}
KEEP=${TE_BENCH_WORKER_KEEP:-0}
BIN=${TE_BENCH_WORKER_BIN:-build/bin}
OUT=$TE_ROOT/.run/bench/worker
TOPIC=task.events
WDB=te_bench_worker            # the worker's database (fresh each round; (b) too)
PGB_DB=te_bench_worker_pgbench # the pgbench baseline's
PREFIX=bench-worker            # users of (a): bench-worker-001 ...
REC_PREFIX=bench-worker-rec    # users of (b): one recurring task each
WURL=http://$LISTEN
AURL=http://$API_LISTEN
RUN_ID=$(date +%s)-$$

bench_need_tools worker curl python3 cc pkg-config
bench_need_bins "$BIN/todo-worker" "$BIN/todo-api" "$BIN/todoctl"
LIBDIR=$(cd "$BIN/../lib" && pwd)
[ -f "$LIBDIR/libtodoevents.so" ] || die "$LIBDIR/libtodoevents.so missing: build first"
bench_services
W_URL_PG=$BASE_URL/$WDB
PGB_URL_PG=$BASE_URL/$PGB_DB
bench_outputs
now() { date +%s.%N; }
SUMMARY=(python3 "$BENCH_DIR/summary.py")

# --- machine and build -------------------------------------------------------
bench_info_machine
info events "$EVENTS"
info users "$USERS"
info rounds "$ROUNDS"
info pg_seconds "$PG_SECONDS"
info tasks "$TASKS"
info rate "$RATE"
info poll_ms "$POLL_MS"
info relay "$RELAY"
bench_info_start

# --- the Kafka helper (bench/worker/wbench.c, built here, not by CMake) -------
WB=$OUT/wbench
# shellcheck disable=SC2046
cc -O2 -std=c11 -Wall -Wextra -I"$TE_ROOT/libtodoevents/include" $(pkg-config --cflags json-c) \
  "$BENCH_DIR/wbench.c" -o "$WB" -L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -ltodoevents \
  $(pkg-config --libs rdkafka json-c uuid) 2>"$OUT/wbench-build.log" \
  || { cat "$OUT/wbench-build.log" >&2; die "building bench/worker/wbench.c failed"; }
bench_topics

# --- the daemons ----------------------------------------------------------------
WORKER_PID=""
REC_PID=""
start_worker() {  # start_worker GROUP LOG RELAY
  bench_port_free "$LISTEN" TE_BENCH_WORKER_LISTEN
  # The real configuration (relay on, migrations at start), in a new group
  # whose offsets were committed beforehand; earliest is the library's
  # default anyway and only matters for a partition without a commit.
  env TE_PG_URL="$W_URL_PG" TE_WORKER_LISTEN="$LISTEN" TE_WORKER_GROUP="$1" TE_MIGRATE=1 \
    TE_OUTBOX_RELAY="$3" TE_RDKAFKA_AUTO_OFFSET_RESET=earliest TE_LOG_LEVEL=info \
    "$BIN"/todo-worker serve >>"$2" 2>&1 </dev/null &
  WORKER_PID=$!
}
stop_worker() { bench_stop_pid "$WORKER_PID"; WORKER_PID=""; }
trap 'bench_stop_pid "$REC_PID"; stop_api; stop_worker; bench_drop_dbs "$WDB" "$PGB_DB"' EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }  # utime + stime
machine_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }  # busy total

# --- (a) the events --------------------------------------------------------------
log "worker bench (a): $EVENTS com.todo.task.created events for $USERS users into $TOPIC"
"$WB" offsets "$TOPIC" >"$OUT/offsets-before.txt" || die "cannot read the offsets of $TOPIC"
"$WB" produce "$TOPIC" "$EVENTS" "$USERS" "$PREFIX" "$OUT/sample-event.json" >"$OUT/produce.json" \
  || die "producing the events failed"
"$WB" offsets "$TOPIC" >"$OUT/offsets-after.txt" || die "cannot read the offsets of $TOPIC"
# "partition start end": the records every consumer of (a) reads
paste "$OUT/offsets-before.txt" "$OUT/offsets-after.txt" | awk '{print $1, $3, $6}' >"$OUT/range.txt"
range=$(awk '{s += $3 - $2} END {print s}' "$OUT/range.txt")
"$BIN"/todoctl event validate "$OUT/sample-event.json" >"$OUT/sample-event.validate" 2>&1 \
  || die "the produced events are not valid: $(cat "$OUT/sample-event.validate")"
info produce "$(cat "$OUT/produce.json")"
info range_records "$range"
info foreign_records "$((range - EVENTS))"
info event_bytes "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["avg_bytes"])' "$OUT/produce.json")"
log "worker bench (a): $range records in the range ($((range - EVENTS)) from other producers)"
# Any other running consumer of task.events (another todo-worker of the
# shared services) now has these events to handle too: let it finish
# before the first round, so that it does not compete with the measurement.
t_wait=$SECONDS
while :; do
  "$WB" others "$TOPIC" "$OUT/range.txt" te-bench-worker- >"$OUT/others.txt" 2>&1 || break
  read -r _ lag groups < <(tail -1 "$OUT/others.txt")
  [ "${lag:-0}" = 0 ] && break
  [ $((SECONDS - t_wait)) -ge "$SETTLE" ] && break
  [ $((SECONDS - t_wait)) = 0 ] && log "worker bench (a): waiting for $groups other consumer group(s) of $TOPIC to read the range ($lag records left)"
  sleep 1
done
info others_settle "$((SECONDS - t_wait)) s; other consumer groups of $TOPIC: $(grep -v '^total ' "$OUT/others.txt" | awk '{printf "%s%s (left %s)", sep, $1, $2; sep=", "}')"

new_group() {  # new_group LABEL -> a group committed at the range's start
  local g=te-bench-worker-$1-$RUN_ID
  "$WB" commit "$g" "$TOPIC" "$OUT/offsets-before.txt" || die "cannot commit the start offsets for $g"
  echo "$g"
}

run_baseline() {  # run_baseline raw|lib ROUND
  local g
  g=$(new_group "$1-$2")
  "$WB" "consume-$1" "$g" "$TOPIC" "$OUT/range.txt" >"$OUT/consume-$1.$2.json" 2>"$OUT/consume-$1.$2.log" \
    || die "the $1 consumer did not read the range (see $OUT/consume-$1.$2.log)"
  "${SUMMARY[@]}" tag "$1.$2" "$RESULTS" <"$OUT/consume-$1.$2.json"
  "${SUMMARY[@]}" brief "$RESULTS" "$1.$2" >&2
}

count_ours() { sql "$W_URL_PG" "SELECT count(*) FROM activity WHERE user_id LIKE '$PREFIX-%'" 2>/dev/null || echo 0; }
outbox_rows() { sql "$W_URL_PG" "SELECT count(*) FROM outbox" 2>/dev/null || echo "?"; }

run_worker() {  # run_worker ROUND LAST(0|1)
  local r=$1 last=$2 g n=0 t_spawn s_spawn t_seen wt1 m0 m1 left t_drain
  bench_fresh_db "$WDB"
  g=$(new_group "worker-$r")
  read -r -a m0 <<<"$(machine_ticks)"
  t_spawn=$(now)
  s_spawn=$SECONDS
  # TE_BENCH_WORKER_RELAY=0: this worker publishes nothing; in (b)
  # todo-api's relay publishes then
  start_worker "$g" "$OUT/todo-worker.$r.log" "$RELAY"
  while :; do
    n=$(count_ours)
    [ "${n:-0}" -ge "$EVENTS" ] && break
    kill -0 "$WORKER_PID" 2>/dev/null || { tail -20 "$OUT/todo-worker.$r.log" >&2; die "todo-worker exited"; }
    if [ $((SECONDS - s_spawn)) -ge "$TIMEOUT" ]; then
      log "worker bench (a): round $r gave up after $TIMEOUT s with $n of $EVENTS activity rows"
      break
    fi
    sleep 0.25
  done
  t_seen=$(now)
  wt1=$(cpu_ticks "$WORKER_PID")
  read -r -a m1 <<<"$(machine_ticks)"
  left=$(outbox_rows)
  curl -s "$WURL/metrics" >"$OUT/metrics-worker.$r.txt" || true
  sql "$W_URL_PG" "SELECT count(*), extract(epoch FROM min(recorded_at)), extract(epoch FROM max(recorded_at))
                   FROM activity WHERE user_id LIKE '$PREFIX-%'" >"$OUT/activity.$r.txt"
  # the relay publishing the activity events: how far behind, how long to catch up
  t_drain=$SECONDS
  while [ "$RELAY" = 1 ] && [ "$(outbox_rows)" != 0 ] && [ $((SECONDS - t_drain)) -lt 60 ]; do sleep 0.2; done
  "${SUMMARY[@]}" worker "worker.$r" "$OUT/activity.$r.txt" "$t_spawn" "$t_seen" "$wt1" "$(getconf CLK_TCK)" \
    "${m0[*]}" "${m1[*]}" "$left" "$((SECONDS - t_drain))" "$(outbox_rows)" "$OUT/metrics-worker.$r.txt" \
    "$EVENTS" "$RESULTS"
  "${SUMMARY[@]}" brief "$RESULTS" "worker.$r" >&2
  [ "$last" = 1 ] || stop_worker
}

# The pgbench baseline's database and parameters: one real activity entry
# of the first worker round, its activity.recorded event built by todoctl
# exactly as the worker builds it (same library calls).
prepare_pgbench() {
  bench_migrated_db "$PGB_DB"
  local row
  row=$(sql "$W_URL_PG" "SELECT json_build_object('activity_id', activity_id, 'user_id', user_id,
           'event_id', event_id, 'event_type', event_type, 'entity_type', entity_type,
           'entity_id', entity_id, 'occurred_at', te_ts(occurred_at), 'details', details)
         FROM activity WHERE user_id LIKE '$PREFIX-%' ORDER BY id LIMIT 1")
  [ -n "$row" ] || die "no activity row to take the baseline's parameters from"
  "$BIN"/todoctl event new --type com.todo.activity.recorded --source /todo-worker \
    --partitionkey "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["user_id"])' "$row")" \
    --traceparent "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["traceparent"])' "$OUT/sample-event.json")" \
    --data "$row" >"$OUT/activity-event.json" || die "todoctl event new failed for the activity event"
  PG_VARS=(-D "users=$USERS" -D "occurred=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["occurred_at"])' "$row")"
    -D "details=$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["details"], separators=(",", ":")))' "$row")"
    -D "payload=$(cat "$OUT/activity-event.json")")
  info activity_event_bytes "$(wc -c <"$OUT/activity-event.json")"
}
run_pgbench() {  # run_pgbench ROUND
  sql "$PGB_URL_PG" "TRUNCATE activity, outbox"
  "$PGBENCH" -n -M extended -c 1 -j 1 -T "$PG_SECONDS" -f "$BENCH_DIR/activity.sql" "${PG_VARS[@]}" \
    "$PGB_URL_PG" >"$OUT/pgbench.$1.txt" 2>&1 || die "pgbench failed; see $OUT/pgbench.$1.txt"
  "${SUMMARY[@]}" pgbench "pgbench.$1" "$OUT/pgbench.$1.txt" "$RESULTS"
  "${SUMMARY[@]}" brief "$RESULTS" "pgbench.$1" >&2
}

# Rounds: the sides alternate so that a change in the machine's load hits
# all of them; the table shows the median of the rounds.  The last round's
# worker keeps running for (b).
log "worker bench (a): $ROUNDS rounds of: bare consumer, library consumer, todo-worker (fresh database), pgbench"
for ((r = 1; r <= ROUNDS; r++)); do
  run_baseline raw "$r"
  run_baseline lib "$r"
  run_worker "$r" "$([ "$r" = "$ROUNDS" ] && echo 1 || echo 0)"
  [ "$r" = 1 ] && prepare_pgbench
  run_pgbench "$r"
done

# --- (b) completion -> next occurrence visible -----------------------------------
log "worker bench (b): todo-api on the worker's database, $TASKS recurring tasks completed at $RATE/s"
bench_secret
for ((i = 1; i <= TASKS; i++)); do
  u=$(printf '%s-%03d' "$REC_PREFIX" "$i")
  printf '%s %s\n' "$u" "$("$BIN"/todoctl token --user "$u" --ttl 3600)"
done >"$OUT/tokens.txt"
bench_port_free "$API_LISTEN" TE_BENCH_WORKER_API_LISTEN
if [ "$RELAY" = 0 ]; then
  # todo-api's relay would publish (a)'s activity events now: drop them
  info unpublished_activity_events_dropped "$(sql "$W_URL_PG" "WITH d AS (DELETE FROM outbox WHERE topic = 'activity.log' RETURNING 1) SELECT count(*) FROM d")"
fi
# As bench/api/run.sh starts it: relay on, the per-user rate limit raised
# (the poller asks for the same user's list every few ms).
bench_start_api "$W_URL_PG" 1 "$API_LISTEN" "$OUT/todo-api.log"
python3 "$BENCH_DIR/recur.py" create "$AURL" "$OUT/tokens.txt" "$TASKS" "$OUT/rec-tasks.jsonl" >"$OUT/rec-create.json" \
  || die "creating the recurring tasks failed"
# Let the worker record the creations first, so that the completions do
# not queue behind them.
t_wait=$SECONDS
rec_act() { sql "$W_URL_PG" "SELECT count(*) FROM activity WHERE user_id LIKE '$REC_PREFIX-%'"; }
while [ "$(rec_act)" -lt "$TASKS" ] && [ $((SECONDS - t_wait)) -lt 60 ]; do sleep 0.2; done
info rec_created_recorded_seconds "$((SECONDS - t_wait)) ($(rec_act) of $TASKS creations in the activity log)"
curl -s "$WURL/metrics" >"$OUT/metrics-worker-b.before.txt" || true
curl -s "$AURL/metrics" >"$OUT/metrics-api-b.before.txt" || true
# Beside it, a plain reader of task.events notes when each completion
# event reached Kafka (the record's timestamp, set when the relay handed it
# to its producer): the delay splits into API -> relay -> Kafka and
# Kafka -> worker -> commit.
"$WB" offsets "$TOPIC" >"$OUT/offsets-b.txt" || die "cannot read the offsets of $TOPIC"
"$WB" records "$TOPIC" "$OUT/offsets-b.txt" "$REC_PREFIX-" "$(( TASKS / RATE + 45 ))" >"$OUT/rec-records.txt" \
  2>"$OUT/rec-records.log" &
REC_PID=$!
python3 "$BENCH_DIR/recur.py" complete "$AURL" "$OUT/tokens.txt" "$OUT/rec-tasks.jsonl" "$RATE" "$POLL_MS" \
  "$OUT/rec-samples.jsonl" >"$OUT/rec-complete.json" || die "the completion run failed"
# The worker logs each next occurrence after its commit; wait for the last.
t_wait=$SECONDS
logged() { grep -c '"msg":"next occurrence created for task' "$OUT/todo-worker.$ROUNDS.log" || true; }
while [ "$(logged)" -lt "$TASKS" ] && [ $((SECONDS - t_wait)) -lt 10 ]; do sleep 0.2; done
curl -s "$WURL/metrics" >"$OUT/metrics-worker-b.txt" || true
curl -s "$AURL/metrics" >"$OUT/metrics-api-b.txt" || true
bench_stop_pid "$REC_PID"
"${SUMMARY[@]}" recur "$OUT/rec-complete.json" "$OUT/rec-samples.jsonl" "$OUT/todo-worker.$ROUNDS.log" \
  "$OUT/rec-records.txt" "$OUT/metrics-worker-b.before.txt" "$OUT/metrics-worker-b.txt" "$RESULTS"
info rec_next_in_db "$(sql "$W_URL_PG" "SELECT count(*) FROM tasks WHERE user_id LIKE '$REC_PREFIX-%' AND occurrence = 2 AND status = 'pending'") of $TASKS"
info relay_active "worker $(sed -n 's/^te_outbox_relay_active //p' "$OUT/metrics-worker-b.txt"), api $(sed -n 's/^te_outbox_relay_active //p' "$OUT/metrics-api-b.txt")"
stop_api
stop_worker

# --- what the daemons say ----------------------------------------------------------
info log_warn_error "$(cat "$OUT"/todo-worker.*.log "$OUT/todo-api.log" | grep -c -E '"level":"(warn|error)"' || true)"
if cat "$OUT"/todo-worker.*.log "$OUT/todo-api.log" | grep -q -e '"msg":"kafka unreachable' -e '_ALL_BROKERS_DOWN'; then
  info kafka_outage "$(cat "$OUT"/todo-worker.*.log "$OUT/todo-api.log" | grep -e '"msg":"kafka unreachable' -e '_ALL_BROKERS_DOWN' \
    | sed -n 's/.*"ts":"\([^"]*\)".*"msg":"\([^"]*\)".*/\1 \2/p' | cut -c1-90 | head -5 | paste -sd ';' | sed 's/;/; /g')"
fi
bench_finish "worker bench"
