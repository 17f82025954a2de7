#!/usr/bin/env bash
# The sync benchmark, run by `./scripts/bench sync` (docs/bench-sync.md).
#
# todo-sync (build/bin/todo-sync, its real configuration, its own consumer
# group, a fresh database) pushes every task change made through todo-api
# (its own instance: relay on, the same fresh database) to WebSocket
# sessions held by a C client (bench/sync/sbench.c: one libwebsockets
# context on libev, every session in one process).  The same process
# generates the changes (libcurl, POST /api/tasks and PATCH /api/tasks/{id}
# alternately per user, paced) and records when each API request left and
# when its answer was in; each change message received is matched to its
# request by (task id, task version).  Latency = receipt - the API's answer
# received (the commit is inside the request: this leaves out at most the
# answer's trip back).  In order:
#   memory: todo-sync's RSS with 0, USERS x SESSIONS (1000) and
#           USERS_LARGE x SESSIONS (10 000) idle sessions (hello received,
#           no traffic yet), per session; then IDLE s with the 10 000 open
#           and no changes (todo-sync's CPU: keep-alive pings every 20 s);
#           then with the extra sessions closed again (is it returned?);
#   probe:  RATE changes/s for 3 + PROBE s with the 1000 sessions; when
#           todo-api does not answer 95 % of it with everything running,
#           up to two more steps at 80 % of what the last one got answered
#           find the highest steady rate (answers >= 97 %, the schedule's
#           p99 lag < 50 ms); the parts run at it;
#   (a) small: USERS x SESSIONS sessions (1000), that rate over the USERS
#           users for WARMUP + SECONDS s, the last SECONDS measured: the
#           receipt latency of every message (each change reaches SESSIONS
#           sessions), the achieved rate;
#   (b) large: the extra sessions reopened (10 000), the same rate over
#           USERS_LARGE users (the same messages per second in all; each
#           session gets a tenth of (a)'s).
# Baselines in the same run, the same changes: a te_consumer (the library's
# consumer, as todo-sync's: the same topics and settings, a group of its
# own) in the client process records when each sync.events record reaches
# its handler — Kafka's own delivery, the outbox relay included — so
# todo-sync / baseline is what the daemon adds; todo-api's own request time
# (the commit).  For memory and idle CPU: the client's (the same library
# holding the other end of every connection).
# Below the table: where the time goes (answer -> record in Kafka -> the
# baseline's handler -> the WebSocket client), todo-sync's
# te_sync_fanout_seconds, the CPU by process, by thread (todo-sync's
# service / consumer / catch-up threads, librdkafka; time on a CPU and
# waiting for one) and by PostgreSQL backend role over each measured
# window, the connection ramps, anomalies (sequence gaps, closes).
# Needs the services running (scripts/bench starts them) and build/.
# Raw outputs: .run/bench/sync/.  Takes about 3 minutes with the defaults.
#
# Settings (environment):
#   TE_BENCH_SYNC_USERS        users of (a)                                  100
#   TE_BENCH_SYNC_SESSIONS     WebSocket sessions per user                   10
#   TE_BENCH_SYNC_USERS_LARGE  users of (b) and of the large idle count;
#                              0: no (b)                                     1000
#   TE_BENCH_SYNC_RATE         changes per second through todo-api           1000
#   TE_BENCH_SYNC_SECONDS      measured seconds of (a) and (b)               30
#   TE_BENCH_SYNC_WARMUP       seconds of load before the measured ones      5
#   TE_BENCH_SYNC_INFLIGHT     API requests in flight at most                64
#   TE_BENCH_SYNC_PROBE        measured seconds of each probe step; 0: none  8
#   TE_BENCH_SYNC_IDLE         seconds from the 10 000 open to closing them
#                              (the idle CPU window); 0: none                25
#   TE_BENCH_SYNC_LISTEN       todo-sync's address                           127.0.0.1:18494
#   TE_BENCH_SYNC_API_LISTEN   todo-api's address                            127.0.0.1:18495
#   TE_BENCH_SYNC_KEEP         1: keep the bench database afterwards         0
#   TE_BENCH_SYNC_BIN          directory of todo-sync, todo-api, todoctl     build/bin
#   TE_BENCH_SYNC_CFLAGS       extra flags for sbench (e.g. -fsanitize=address -g)
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/../lib.sh"

USERS=${TE_BENCH_SYNC_USERS:-100}
SESSIONS=${TE_BENCH_SYNC_SESSIONS:-10}
USERS_LARGE=${TE_BENCH_SYNC_USERS_LARGE:-1000}
RATE=${TE_BENCH_SYNC_RATE:-1000}
MEASURE_S=${TE_BENCH_SYNC_SECONDS:-30}
WARMUP=${TE_BENCH_SYNC_WARMUP:-5}
INFLIGHT=${TE_BENCH_SYNC_INFLIGHT:-64}
PROBE_S=${TE_BENCH_SYNC_PROBE:-8}
IDLE_S=${TE_BENCH_SYNC_IDLE:-25}
LISTEN=${TE_BENCH_SYNC_LISTEN:-127.0.0.1:18494}
API_LISTEN=${TE_BENCH_SYNC_API_LISTEN:-127.0.0.1:18495}
# shellcheck disable=SC2034 # bench_drop_dbs (bench/lib.sh) reads it
KEEP=${TE_BENCH_SYNC_KEEP:-0}
BIN=${TE_BENCH_SYNC_BIN:-build/bin}
OUT=$TE_ROOT/.run/bench/sync
DB=te_bench_sync
PREFIX=bench-sync # users bench-sync-0001 ...
RUN_ID=$(date +%s)-$$

bench_need_tools sync curl python3 cc pkg-config
bench_need_bins "$BIN/todo-sync" "$BIN/todo-api" "$BIN/todoctl"
LIBDIR=$(cd "$BIN/../lib" && pwd)
[ -e "$LIBDIR/libtodoevents.so" ] || die "$LIBDIR/libtodoevents.so missing: build first"
bench_services
SYNC_PG=$BASE_URL/$DB
bench_outputs
SUMMARY=(python3 "$BENCH_DIR/summary.py")

# Both ends of every session hold a descriptor: the client and todo-sync
# each need one per session (and a few more) under their open-files limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$USERS_LARGE" -gt 0 ] && [ $((USERS_LARGE * SESSIONS + 256)) -gt "$NOFILE" ]; then
  fit=$(((NOFILE - 256) / SESSIONS))
  log "sync bench: ulimit -n is $NOFILE: $((USERS_LARGE * SESSIONS)) sessions do not fit; $fit users in (b)"
  USERS_LARGE=$fit
  [ "$USERS_LARGE" -le "$USERS" ] && USERS_LARGE=0
fi
USERS_ALL=$((USERS_LARGE > USERS ? USERS_LARGE : USERS))

# --- machine and build -------------------------------------------------------
bench_info_machine
info users "$USERS"
info sessions "$SESSIONS"
info users_large "$USERS_LARGE"
info rate "$RATE"
info seconds "$MEASURE_S"
info warmup "$WARMUP"
info inflight "$INFLIGHT"
info probe_seconds "$PROBE_S"
info idle_seconds "$IDLE_S"
info nofile "$NOFILE"
info libwebsockets "$(pkg-config --modversion libwebsockets | sed 's/-$//')"
bench_info_start

# --- the helper (bench/sync/sbench.c, built here, not by CMake) ------------------
SB=$OUT/sbench
# shellcheck disable=SC2046
# shellcheck disable=SC2086
cc -O2 -std=c11 -Wall -Wextra ${TE_BENCH_SYNC_CFLAGS:-} "$BENCH_DIR/sbench.c" -o "$SB" -I"$TE_ROOT/libtodoevents/include" \
  -L"$LIBDIR" -ltodoevents -Wl,-rpath,"$LIBDIR" $(pkg-config --cflags --libs libwebsockets libcurl json-c) \
  -lpthread 2>"$OUT/sbench-build.log" || { cat "$OUT/sbench-build.log" >&2; die "building bench/sync/sbench.c failed"; }
bench_topics

# --- processes ------------------------------------------------------------------
SYNC_PID=""
cleanup() {
  bench_stop_pid "$SYNC_PID"
  stop_api
  bench_drop_dbs "$DB"
}
trap cleanup EXIT

log "sync bench: fresh database $DB, migrations applied; $USERS_ALL users' tokens"
bench_migrated_db "$DB"
bench_secret
export PREFIX BIN
# todoctl mints the tokens, four processes at a time (a few ms each)
seq 1 "$USERS_ALL" | xargs -P 4 -n 50 sh -c '
  for i; do u=$(printf "%s-%04d" "$PREFIX" "$i"); printf "%s %s\n" "$u" "$("$BIN"/todoctl token --user "$u" --ttl 3600)"; done' _ \
  | sort >"$OUT/tokens.txt"
[ "$(wc -l <"$OUT/tokens.txt")" -eq "$USERS_ALL" ] || die "todoctl token failed"

bench_port_free "$API_LISTEN" TE_BENCH_SYNC_API_LISTEN
bench_start_api "$SYNC_PG" 1 "$API_LISTEN" "$OUT/todo-api.log"

# The daemon: its real configuration but for the address, the database,
# a named consumer group of its own (from the end of the topics).
bench_port_free "$LISTEN" TE_BENCH_SYNC_LISTEN
sync_env=(TE_PG_URL="$SYNC_PG" TE_SYNC_LISTEN="$LISTEN" TE_SYNC_GROUP="te-bench-sync-$RUN_ID" TE_LOG_LEVEL=info)
# more sessions than its default limit: raised
[ $((USERS_ALL * SESSIONS)) -ge 20000 ] && sync_env+=(TE_SYNC_MAX_SESSIONS=$((USERS_ALL * SESSIONS + 100)))
env -u TE_JWT_SECRET_FILE -u TE_JWT_PUBLIC_KEY_FILE -u TE_JWT_ISSUER -u TE_JWT_AUDIENCE "${sync_env[@]}" \
  "$BIN"/todo-sync serve >>"$OUT/todo-sync.log" 2>&1 </dev/null &
SYNC_PID=$!
t_start=$SECONDS
until curl -sf -o /dev/null "http://$LISTEN/readyz"; do
  kill -0 "$SYNC_PID" 2>/dev/null || { tail -20 "$OUT/todo-sync.log" >&2; die "todo-sync exited during start"; }
  if [ $((SECONDS - t_start)) -ge 60 ]; then
    tail -20 "$OUT/todo-sync.log" >&2
    die "todo-sync not ready after 60 s"
  fi
  sleep 0.2
done
info ready_seconds "$((SECONDS - t_start))"
info sync_settings "${sync_env[*]}"

# --- the run ------------------------------------------------------------------------
# sbench runs the whole scenario; at each mark it runs the hook, which
# snapshots todo-sync's and its own memory, /metrics, the CPU by process
# and by thread (summary.py snap).
export SB_PSQL=$PSQL SB_PGURL=$ADMIN_URL # the hook's pg_stat_activity
log "sync bench: $((USERS * SESSIONS)) sessions, then $((USERS_LARGE * SESSIONS)) idle; (a) $RATE changes/s over" \
  "$USERS users; (b) over $USERS_LARGE users; $WARMUP + $MEASURE_S s each"
"$SB" run "$OUT" ws="$LISTEN" api="$API_LISTEN" tokens="$OUT/tokens.txt" sessions="$SESSIONS" \
  users_small="$USERS" users_large="$USERS_LARGE" rate="$RATE" warmup="$WARMUP" seconds="$MEASURE_S" \
  inflight="$INFLIGHT" probe="$PROBE_S" idle="$IDLE_S" group="te-bench-sync-base-$RUN_ID" \
  hook="python3 $BENCH_DIR/summary.py snap $OUT $SYNC_PID $API_PID $DB http://$LISTEN" \
  >"$OUT/sbench.jsonl" 2>"$OUT/sbench.log" </dev/null || sb_rc=$?
# either daemon gone: say so (with its exit status), whatever sbench said
for d in todo-api:API_PID todo-sync:SYNC_PID; do
  name=${d%%:*} var=${d#*:}
  pid=${!var}
  if ! kill -0 "$pid" 2>/dev/null; then
    rc=0
    wait "$pid" || rc=$?
    printf -v "$var" '%s' ""
    die "$name exited during the run with status $rc (see $OUT/$name.log; dmesg for a crash)"
  fi
done
[ "${sb_rc:-0}" = 0 ] || { tail -20 "$OUT/sbench.log" >&2; die "sbench failed (exit status $sb_rc)"; }

# SIGTERM: the contract says every session gets 1001 and the daemon exits 0
t_stop=$(($(date +%s%N) / 1000000))
kill -TERM "$SYNC_PID" 2>/dev/null || true
for ((i = 0; i < 150; i++)); do kill -0 "$SYNC_PID" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$SYNC_PID" 2>/dev/null || true
rc=0
wait "$SYNC_PID" || rc=$?
SYNC_PID=""
info daemon_stop "$(($(date +%s%N) / 1000000 - t_stop)) ms, exit status $rc"
stop_api
info log_warn_error "$(grep -c -E '"level":"(warn|error)"' "$OUT/todo-sync.log" || true)"
info log_warn_error_first "$(grep -E '"level":"(warn|error)"' "$OUT/todo-sync.log" | head -3 | cut -c1-300 \
  | paste -sd '|' || true)"
info api_log_warn_error "$(grep -c -E '"level":"(warn|error)"' "$OUT/todo-api.log" || true)"

"${SUMMARY[@]}" results "$OUT" "$RESULTS" || die "summary.py results failed"
bench_finish "sync bench"
