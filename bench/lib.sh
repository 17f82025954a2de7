# Shell helpers shared by the benchmarks' run.sh scripts (bench/api/run.sh,
# bench/worker/run.sh). Source it (after `set -euo pipefail` and setting
# BENCH_DIR); do not run it. It sources scripts/lib.sh (log, die, TE_ROOT)
# and changes to TE_ROOT.
#
# What the helpers use, set by the sourcing script before calling them:
#   BIN   directory of the built programs (todo-api, todoctl, ...)
#   OUT   directory of the raw outputs (emptied by bench_outputs)
#   KEEP  1: bench_drop_dbs keeps the databases
# shellcheck shell=bash
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$TE_ROOT" || exit

# bench_need_tools NAME TOOL... — dies unless every TOOL is on PATH
# (NAME: the `./scripts/bench NAME` that installs them).
bench_need_tools() {
  local name=$1 tool
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool not found (./scripts/bench $name installs it)"
  done
}

# bench_need_bins FILE... — dies unless every FILE is an executable.
bench_need_bins() {
  local b
  for b in "$@"; do [ -x "$b" ] || die "$b missing: build first"; done
}

# bench_services — PostgreSQL's client programs (PGBENCH, PSQL) and the
# running services' environment (TE_PG_URL, TE_KAFKA_BROKERS, TE_REDIS_URL,
# exported); ADMIN_URL: the services' database URL, BASE_URL: it without
# the database name.
bench_services() {
  PG_BINDIR=${TE_PG_BIN:-$(dirname "$(printf '%s\n' /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -1)")}
  PGBENCH=$PG_BINDIR/pgbench
  PSQL=$PG_BINDIR/psql
  [ -x "$PGBENCH" ] || die "pgbench not found under /usr/lib/postgresql (scripts/services start installs postgresql)"
  scripts/services status >/dev/null || die "the services are not running: scripts/services start"
  eval "$(scripts/services env)"
  export TE_KAFKA_BROKERS TE_REDIS_URL
  ADMIN_URL=$TE_PG_URL
  BASE_URL=${TE_PG_URL%/*}
}

# bench_outputs — an empty OUT with an empty RESULTS (results.jsonl: the
# summary's JSON lines) and INFO (info.txt: `info KEY VALUE` lines); T0:
# the start time (SECONDS).
bench_outputs() {
  rm -rf "$OUT"
  mkdir -p "$OUT"
  RESULTS=$OUT/results.jsonl
  INFO=$OUT/info.txt
  : >"$RESULTS"
  : >"$INFO"
  T0=$SECONDS
}
info() { printf '%s=%s\n' "$1" "$2" >>"$INFO"; }
sql() { PGOPTIONS='-c client_min_messages=warning' "$PSQL" "$1" -X -q -A -t -v ON_ERROR_STOP=1 -c "$2"; }

# bench_info_machine — the machine and the build (BUILD_TYPE) into INFO.
bench_info_machine() {
  local cache=$BIN/../CMakeCache.txt sanitize
  BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache" 2>/dev/null || true)
  sanitize=$(sed -n 's/^TE_SANITIZE[A-Z_]*:[A-Z]*=//p' "$cache" 2>/dev/null | head -1 || true)
  info cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  info cores "$(nproc)"
  info mem "$(awk '/MemTotal/ {printf "%.0f GB RAM", $2 / 1048576}' /proc/meminfo)"
  info build_type "${BUILD_TYPE:-?}${sanitize:+ (sanitizers: $sanitize)}"
}

# bench_info_start — Kafka and the load average into INFO, and a warning
# when the build is not an optimised one (after bench_info_machine).
bench_info_start() {
  info kafka "$TE_KAFKA_BROKERS"
  info loadavg_before "$(cut -d' ' -f1-3 /proc/loadavg)"
  case ${BUILD_TYPE:-} in
    Debug | "") log "warning: build/ is a '${BUILD_TYPE:-unknown}' build; figures are not representative" ;;
  esac
}

# bench_finish NAME — the load average and the time taken into INFO, then
# the final table (BENCH_DIR/summary.py table).
bench_finish() {
  info loadavg_after "$(cut -d' ' -f1-3 /proc/loadavg)"
  info total_seconds "$((SECONDS - T0))"
  python3 "$BENCH_DIR/summary.py" table "$RESULTS" "$INFO"
  log "$1: done in $((SECONDS - T0)) s"
}

# bench_fresh_db DB — DB dropped (if there) and created empty.
bench_fresh_db() {
  sql "$ADMIN_URL" "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
  sql "$ADMIN_URL" "CREATE DATABASE $1"
}

# bench_migrated_db DB — DB fresh, with todo-api's migrations applied
# (their output appended to OUT/migrate.log).
bench_migrated_db() {
  bench_fresh_db "$1"
  TE_PG_URL=$BASE_URL/$1 "$BIN"/todo-api migrate 2>>"$OUT/migrate.log" || die "migration of $1 failed"
}

# bench_drop_dbs DB... — drops them, unless KEEP=1.
bench_drop_dbs() {
  [ "$KEEP" = 1 ] && return 0
  local db
  for db in "$@"; do sql "$ADMIN_URL" "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true; done
}

# bench_topics — the project's Kafka topics exist (todoctl topics ensure).
bench_topics() {
  "$BIN"/todoctl topics ensure >"$OUT/topics.log" 2>&1 || die "todoctl topics ensure failed (see $OUT/topics.log)"
}

# bench_secret — a fresh random TE_JWT_SECRET (exported), for todoctl's
# tokens and the todo-api started afterwards.
bench_secret() {
  TE_JWT_SECRET=$(od -An -tx1 -N48 /dev/urandom | tr -d ' \n')
  export TE_JWT_SECRET
}

# bench_port_free HOST:PORT VAR — dies when something listens there (VAR:
# the setting to change).
bench_port_free() {
  if timeout 1 bash -c "exec 3<>/dev/tcp/${1%:*}/${1##*:}" 2>/dev/null; then
    die "$1 is in use; set $2"
  fi
}

# bench_stop_pid PID — SIGTERM, up to 15 s to exit, then SIGKILL; reaped.
# An empty PID is a no-op.
bench_stop_pid() {
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || true
  local i
  for ((i = 0; i < 150; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# bench_start_api DB_URL RELAY(0|1) LISTEN LOG — todo-api in the background
# (API_PID), its output appended to LOG, the real configuration except: the
# per-user rate limit is raised so that the Redis round trip still happens
# but nothing is refused (a bench user asks hundreds of times a second),
# migrations off (the bench applies them). Dies unless /readyz answers
# within 30 s.
API_PID=""
bench_start_api() {
  env -u TE_JWT_SECRET_FILE -u TE_JWT_PUBLIC_KEY_FILE -u TE_JWT_ISSUER -u TE_JWT_AUDIENCE \
    TE_PG_URL="$1" TE_OUTBOX_RELAY="$2" TE_API_LISTEN="$3" TE_MIGRATE=0 \
    TE_RATE_LIMIT=1000000 TE_RATE_BURST=1000000 TE_LOG_LEVEL=info \
    "$BIN"/todo-api serve >>"$4" 2>&1 </dev/null &
  API_PID=$!
  local i
  for ((i = 0; i < 150; i++)); do
    curl -sf -o /dev/null "http://$3/readyz" && return 0
    kill -0 "$API_PID" 2>/dev/null || { tail -20 "$4" >&2; die "todo-api exited during start"; }
    sleep 0.2
  done
  tail -20 "$4" >&2
  die "todo-api not ready on http://$3 after 30 s"
}
stop_api() { bench_stop_pid "$API_PID"; API_PID=""; }
