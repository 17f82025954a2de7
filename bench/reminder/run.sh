#!/usr/bin/env bash
# The reminder benchmark, run by `./scripts/bench reminder` (docs/bench-reminder.md).
#
# todo-reminder (build/bin/todo-reminder: scheduler, which fires due
# reminders and creates their delivery rows in one transaction per batch;
# outbox relay; reminder.due consumer, which only checks that the rows
# exist; the delivery dispatcher and its sender threads; Kafka up) delivers
# webhooks to a C receiver (bench/reminder/rbench.c, libmicrohttpd) that
# records when each arrives; lateness = arrival - remind_at.  Two parts on
# one daemon:
#   (a) burst:  N reminders (N = 10 000, 100 users) all due at the same
#       whole second;
#   (b) steady: RATE reminders/s (100/s) for SECONDS (20 s).
# Baselines measured in the same run, with the daemon stopped:
#   - the delivery floor: a plain libcurl client (rbench blast, as many
#     threads as the daemon has sender threads, kept-alive connections)
#     POSTing the same bodies, signed the same way, to the same receiver,
#     each not before its due time: all at one instant for (a), paced at
#     RATE/s for (b); lateness and throughput the same way;
#   - the scheduler floor: pgbench running the scheduler's firing
#     transaction (bench/reminder/claim.sql: the claim, FOR UPDATE SKIP
#     LOCKED, batches of TE_REMINDER_BATCH; the reminder.due outbox rows;
#     the delivery rows as intake.c's CREATE_SQL inserts them;
#     te_reminders_settle; COMMIT) on a database holding the same rows;
#   - the consumer's duplicate check (bench/reminder/intake.sql), one event
#     after the other on one connection, for the N firings pgbench made.
# The daemon's own te_reminder_lateness_seconds histogram, its counters,
# where the time goes (remind_at -> fired -> delivery row created -> attempt
# started -> arrival), the scheduler's batches and the CPU by process (and
# by PostgreSQL backend) are shown below the table.
# Needs the services running (scripts/bench starts them) and build/.
# Raw outputs: .run/bench/reminder/.  Takes about a minute with the defaults.
#
# Settings (environment):
#   TE_BENCH_REMINDER_BURST          reminders of (a), all due at one second    10000
#   TE_BENCH_REMINDER_USERS          users they are spread over                 100
#   TE_BENCH_REMINDER_RATE           reminders per second in (b)                100
#   TE_BENCH_REMINDER_SECONDS        seconds of (b)                             20
#   TE_BENCH_REMINDER_LEAD           seconds from inserting (a) to its due time 5
#   TE_BENCH_REMINDER_TIMEOUT        seconds after the last due time to wait
#                                    for the deliveries of a part               100
#   TE_BENCH_REMINDER_THREADS        todo-reminder's TE_NOTIFY_THREADS          4
#   TE_BENCH_REMINDER_BATCH          todo-reminder's TE_REMINDER_BATCH (and the
#                                    pgbench baseline's batch)                  1000
#   TE_BENCH_REMINDER_SCHED_THREADS  todo-reminder's TE_REMINDER_SCHEDULER_THREADS
#                                    (and the pgbench baseline's connections)   2
#   TE_BENCH_REMINDER_BLAST_THREADS  the libcurl baseline's threads             = THREADS
#   TE_BENCH_REMINDER_LISTEN         todo-reminder's /metrics address           127.0.0.1:18491
#   TE_BENCH_REMINDER_RECEIVER       the webhook receiver's address             127.0.0.1:18492
#   TE_BENCH_REMINDER_API_LISTEN     todo-api's address (settings)              127.0.0.1:18493
#   TE_BENCH_REMINDER_KEEP           1: keep the bench databases afterwards     0
#   TE_BENCH_REMINDER_BIN            directory of todo-reminder, todo-api,
#                                    todoctl                                    build/bin
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/../lib.sh"

BURST=${TE_BENCH_REMINDER_BURST:-10000}
USERS=${TE_BENCH_REMINDER_USERS:-100}
RATE=${TE_BENCH_REMINDER_RATE:-100}
STEADY_S=${TE_BENCH_REMINDER_SECONDS:-20}
LEAD=${TE_BENCH_REMINDER_LEAD:-5}
TIMEOUT=${TE_BENCH_REMINDER_TIMEOUT:-100}
THREADS=${TE_BENCH_REMINDER_THREADS:-4}
BATCH=${TE_BENCH_REMINDER_BATCH:-1000}
SCHED_THREADS=${TE_BENCH_REMINDER_SCHED_THREADS:-2}
BLAST_THREADS=${TE_BENCH_REMINDER_BLAST_THREADS:-$THREADS}
LISTEN=${TE_BENCH_REMINDER_LISTEN:-127.0.0.1:18491}
RECEIVER=${TE_BENCH_REMINDER_RECEIVER:-127.0.0.1:18492}
API_LISTEN=${TE_BENCH_REMINDER_API_LISTEN:-127.0.0.1:18493}
KEEP=${TE_BENCH_REMINDER_KEEP:-0}
BIN=${TE_BENCH_REMINDER_BIN:-build/bin}
OUT=$TE_ROOT/.run/bench/reminder
RDB=te_bench_reminder            # the daemon's database
PGB_DB=te_bench_reminder_pgbench # the pgbench baselines'
PREFIX=bench-reminder            # users bench-reminder-001 ...
TOPIC=reminder.due
STEADY=$((RATE * STEADY_S))
RURL=http://$LISTEN
HOOK=http://$RECEIVER
RUN_ID=$(date +%s)-$$

bench_need_tools reminder curl python3 cc pkg-config
bench_need_bins "$BIN/todo-reminder" "$BIN/todo-api" "$BIN/todoctl"
bench_services
R_URL_PG=$BASE_URL/$RDB
PGB_URL_PG=$BASE_URL/$PGB_DB
bench_outputs
now_ms() { echo $(( ${EPOCHREALTIME/[.,]/} / 1000 )); }
SUMMARY=(python3 "$BENCH_DIR/summary.py")

# --- machine and build -------------------------------------------------------
bench_info_machine
info burst "$BURST"
info users "$USERS"
info rate "$RATE"
info steady_seconds "$STEADY_S"
info steady "$STEADY"
info threads "$THREADS"
info batch "$BATCH"
info sched_threads "$SCHED_THREADS"
info blast_threads "$BLAST_THREADS"
info lead "$LEAD"
info timeout "$TIMEOUT"
bench_info_start

# --- the helper (bench/reminder/rbench.c, built here, not by CMake) ------------
RB=$OUT/rbench
# shellcheck disable=SC2046
cc -O2 -std=c11 -Wall -Wextra "$BENCH_DIR/rbench.c" -o "$RB" \
  $(pkg-config --cflags --libs libmicrohttpd libcurl openssl rdkafka json-c) -lpthread \
  2>"$OUT/rbench-build.log" || { cat "$OUT/rbench-build.log" >&2; die "building bench/reminder/rbench.c failed"; }
bench_topics

# --- processes ------------------------------------------------------------------
RECV_PID=""
FOLLOW_PID=""
REM_PID=""
cleanup() {
  bench_stop_pid "$FOLLOW_PID"
  bench_stop_pid "$REM_PID"
  stop_api
  bench_stop_pid "$RECV_PID"
  bench_drop_dbs "$RDB" "$PGB_DB"
}
trap cleanup EXIT
xacts() { sql "$ADMIN_URL" "SELECT xact_commit FROM pg_stat_database WHERE datname = '$RDB'"; }
recv_count() { curl -sf "$HOOK/count?prefix=$1" 2>/dev/null || echo 0; }

# One Standard Webhooks secret for every bench user: the receiver checks
# each signature with it.
SECRET=whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')

bench_port_free "$RECEIVER" TE_BENCH_REMINDER_RECEIVER
"$RB" receive "$RECEIVER" "$SECRET" 2>"$OUT/receiver.log" </dev/null &
RECV_PID=$!
for ((i = 0; i < 50; i++)); do curl -sf -o /dev/null "$HOOK/count" && break; sleep 0.1; done
curl -sf -o /dev/null "$HOOK/count" || { cat "$OUT/receiver.log" >&2; die "the webhook receiver did not start"; }

# --- databases and notification settings ------------------------------------------
log "reminder bench: fresh databases $RDB (todo-reminder) and $PGB_DB (pgbench), migrations applied"
bench_migrated_db "$RDB"
bench_migrated_db "$PGB_DB"

# The users' settings go through the API (PUT /api/notification-settings),
# as a user sets them: channels [webhook], the receiver's URL, the secret.
log "reminder bench: notification settings of $USERS users through todo-api (webhook -> $HOOK/hook/<user>)"
bench_secret
for ((i = 1; i <= USERS; i++)); do
  u=$(printf '%s-%03d' "$PREFIX" "$i")
  printf '%s %s\n' "$u" "$("$BIN"/todoctl token --user "$u" --ttl 3600)"
done >"$OUT/tokens.txt"
bench_port_free "$API_LISTEN" TE_BENCH_REMINDER_API_LISTEN
bench_start_api "$R_URL_PG" 0 "$API_LISTEN" "$OUT/todo-api.log"
"${SUMMARY[@]}" settings "http://$API_LISTEN" "$OUT/tokens.txt" "$HOOK/hook/" "$SECRET" "$OUT/settings.json" \
  || die "setting the users' notification settings failed (see $OUT/settings.json, $OUT/todo-api.log)"
stop_api
info settings "$(cat "$OUT/settings.json")"
info outbox_after_settings "$(sql "$R_URL_PG" "SELECT count(*) FROM outbox")"

# Tasks and reminders go in with SQL (one statement per part): through the
# API each would also publish task events to the shared task.events.
# insert_reminders PHASE COUNT FIRST_DUE_MS STEP_MS [DB_URL]
insert_reminders() {
  local url=${5:-$R_URL_PG}
  sql "$url" "
    INSERT INTO user_seq (user_id, seq)
    SELECT '$PREFIX-' || lpad(u::text, 3, '0'), 0 FROM generate_series(1, $USERS) u
    ON CONFLICT (user_id) DO NOTHING;
    WITH t AS (
      INSERT INTO tasks (id, user_id, title, priority, status, due_at, timezone, search, created_at, updated_at)
      SELECT gen_random_uuid(), '$PREFIX-' || lpad(((g - 1) % $USERS + 1)::text, 3, '0'),
             'Bench $1 reminder ' || g, 1, 'pending',
             to_timestamp(($3 + (g - 1) * $4) / 1000.0) + interval '1 hour', 'UTC',
             'Bench $1 reminder ' || g, now(), now()
        FROM generate_series(1, $2) g
      RETURNING id, user_id, due_at)
    INSERT INTO reminders (id, task_id, user_id, at, remind_at)
    SELECT gen_random_uuid(), id, user_id, due_at - interval '1 hour', due_at - interval '1 hour' FROM t"
}
# next whole second at least $1 s from now, epoch ms
whole_second_after() { echo $(( ($(now_ms) + $1 * 1000 + 999) / 1000 * 1000 )); }

# --- the daemon -------------------------------------------------------------------
# The real configuration except: webhooks to 127.0.0.1 allowed, a consumer
# group of its own that starts at the end of reminder.due (earlier records
# are other runs'), migrations off (applied above), delivery threads and
# batch as set.
bench_port_free "$LISTEN" TE_BENCH_REMINDER_LISTEN
env TE_PG_URL="$R_URL_PG" TE_REMINDER_LISTEN="$LISTEN" TE_REMINDER_GROUP="te-bench-reminder-$RUN_ID" \
  TE_MIGRATE=0 TE_WEBHOOK_ALLOW_PRIVATE=1 TE_NOTIFY_THREADS="$THREADS" TE_REMINDER_BATCH="$BATCH" \
  TE_REMINDER_SCHEDULER_THREADS="$SCHED_THREADS" \
  TE_RDKAFKA_AUTO_OFFSET_RESET=latest TE_LOG_LEVEL=info \
  "$BIN"/todo-reminder serve >>"$OUT/todo-reminder.log" 2>&1 </dev/null &
REM_PID=$!
t_start=$SECONDS
until curl -sf -o /dev/null "$RURL/readyz"; do
  kill -0 "$REM_PID" 2>/dev/null || { tail -20 "$OUT/todo-reminder.log" >&2; die "todo-reminder exited during start"; }
  if [ $((SECONDS - t_start)) -ge 60 ]; then
    tail -20 "$OUT/todo-reminder.log" >&2
    die "todo-reminder not ready after 60 s"
  fi
  sleep 0.2
done
info ready_seconds "$((SECONDS - t_start))"

# Beside it, a plain reader of reminder.due notes when each event reached
# Kafka (the record's CreateTime, set by the relay's producer).
"$RB" follow "$TOPIC" "$PREFIX-" >"$OUT/kafka.tsv" 2>"$OUT/follow.log" </dev/null &
FOLLOW_PID=$!
for ((i = 0; i < 100; i++)); do grep -q '^ready' "$OUT/follow.log" && break; sleep 0.1; done
grep -q '^ready' "$OUT/follow.log" || { cat "$OUT/follow.log" >&2; die "the Kafka follower did not start"; }

# handled_events FILE: the reminder.due events the consumer has handled
# as the bench's are (te_reminder_events_total, results duplicate and ok;
# other producers' events are stale here), from a /metrics text.
handled_events() { awk '/^te_reminder_events_total\{result="(duplicate|ok)"\}/ {s += $2} END {print s + 0}' "$@"; }

# run_part PART COUNT LEAD_S STEP_MS: inserts the part's reminders, the
# first due at the first whole second LEAD_S or more ahead; takes the CPU
# snapshot and the transaction count just before that due time (the insert
# and the lead are not part of the figures); waits for their webhooks and
# for the consumer to have handled their reminder.due events (at most
# TIMEOUT s after the last due time), polling /metrics every 0.1 s for the
# consumer (events-PART.tsv); then saves what the receiver got, /metrics,
# the CPU used and the daemon's PostgreSQL backends (pg_stat_activity: the
# last query of each, to tell them apart).
run_part() {
  local part=$1 n=$2 lead=$3 step=$4 due last_due got=0 ev0 ev=0 x0 t_ins wait_ms
  curl -s "$RURL/metrics" >"$OUT/metrics-$part.before.txt" || true
  ev0=$(handled_events "$OUT/metrics-$part.before.txt")
  t_ins=$(now_ms)
  due=$(whole_second_after "$lead")
  last_due=$((due + (n - 1) * step))
  insert_reminders "$part" "$n" "$due" "$step"
  info "${part}_insert_ms" "$(($(now_ms) - t_ins)) (the first due $((due - t_ins)) ms after the insert began)"
  wait_ms=$((due - 400 - $(now_ms)))
  [ "$wait_ms" -gt 0 ] && sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))"
  "${SUMMARY[@]}" cpu "$REM_PID" "$RECV_PID" "$RDB" "$OUT/cpu-$part.before.json"
  x0=$(xacts)
  info "${part}_cpu_snapshot_before_due_ms" "$((due - $(now_ms)))"
  log "reminder bench ($part): $n reminders due from $(date -u -d "@$((due / 1000))" +%T) every $step ms;" \
    "waiting for the webhooks"
  : >"$OUT/events-$part.tsv"
  while :; do
    got=$(recv_count /hook/)
    ev=$(curl -s "$RURL/metrics" 2>/dev/null | handled_events)
    echo "$(now_ms) $((ev - ev0))" >>"$OUT/events-$part.tsv"
    [ "$got" -ge "$n" ] && [ $((ev - ev0)) -ge "$n" ] && break
    kill -0 "$REM_PID" 2>/dev/null || { tail -20 "$OUT/todo-reminder.log" >&2; die "todo-reminder exited"; }
    if [ "$(now_ms)" -gt $((last_due + TIMEOUT * 1000)) ]; then
      log "reminder bench ($part): gave up $TIMEOUT s after the last due time with $got of $n webhooks," \
        "$((ev - ev0)) of $n reminder.due handled"
      break
    fi
    sleep 0.1
  done
  sleep 0.5  # duplicates, if any, and the last bookkeeping
  "${SUMMARY[@]}" cpu "$REM_PID" "$RECV_PID" "$RDB" "$OUT/cpu-$part.json"
  sql "$ADMIN_URL" "COPY (SELECT pid, backend_start, state, regexp_replace(left(query, 100), '\s+', ' ', 'g')
                          FROM pg_stat_activity WHERE datname = '$RDB') TO STDOUT" >"$OUT/backends-$part.tsv" || true
  curl -s "$RURL/metrics" >"$OUT/metrics-$part.txt" || true
  curl -sf "$HOOK/dump?prefix=/hook/" >"$OUT/recv-$part.tsv" || die "cannot read the receiver's records"
  # committed transactions in the daemon's database (pg_stat_database;
  # backends report them at most once a second, so roughly)
  info "${part}_xacts" "$(($(xacts) - x0))"
  log "reminder bench ($part): $(wc -l <"$OUT/recv-$part.tsv") webhooks received"
}

log "reminder bench (a): $BURST reminders due at one whole second, $LEAD s ahead"
run_part burst "$BURST" "$LEAD" 0
log "reminder bench (b): $RATE reminders/s for $STEADY_S s"
run_part steady "$STEADY" 2 $((1000 / RATE))
curl -sf "$HOOK/stats" >"$OUT/receiver-daemon.json" || true

bench_stop_pid "$FOLLOW_PID"
FOLLOW_PID=""
# SIGTERM: the contract says exit 0 (a SIGKILL after 15 s otherwise)
t_stop=$(now_ms)
kill -TERM "$REM_PID" 2>/dev/null || true
for ((i = 0; i < 150; i++)); do kill -0 "$REM_PID" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$REM_PID" 2>/dev/null || true
rc=0
wait "$REM_PID" || rc=$?
REM_PID=""
info daemon_stop "$(($(now_ms) - t_stop)) ms, exit status $rc"

# What the database says about every bench reminder and delivery.
ms() { echo "coalesce((extract(epoch FROM $1) * 1000)::bigint, 0)"; }
sql "$R_URL_PG" "COPY (SELECT r.id, split_part(t.title, ' ', 2), $(ms r.remind_at), r.status, r.user_id,
                             $(ms r.fired_at)
                        FROM reminders r JOIN tasks t ON t.id = r.task_id) TO STDOUT" >"$OUT/reminders.tsv"
sql "$R_URL_PG" "COPY (SELECT reminder_id, delivery_id, channel, status, attempts, $(ms next_attempt_at),
                             $(ms last_attempt_at), $(ms delivered_at), $(ms created_at),
                             coalesce(replace(replace(error, E'\t', ' '), E'\n', ' '), '')
                        FROM reminder_deliveries) TO STDOUT" >"$OUT/deliveries.tsv"
for part in burst steady; do
  "${SUMMARY[@]}" part "$part" "$OUT/reminders.tsv" "$OUT/recv-$part.tsv" "$OUT/kafka.tsv" "$OUT/deliveries.tsv" \
    "$OUT/metrics-$part.before.txt" "$OUT/metrics-$part.txt" "$OUT/cpu-$part.before.json" "$OUT/cpu-$part.json" \
    "$OUT/events-$part.tsv" "$OUT/backends-$part.tsv" "$BATCH" "$SCHED_THREADS" "$RESULTS"
done

# --- baselines ------------------------------------------------------------------------
# The libcurl client: the same bodies, each due at (a) one instant, (b) RATE/s.
blast() {  # blast PART STEP_MS
  "${SUMMARY[@]}" blastin "$1" "$OUT/reminders.tsv" "$OUT/recv-$1.tsv" "$2" "/base/$1/" >"$OUT/blast-$1.in"
  "$RB" blast "$HOOK" "$OUT/blast-$1.in" "$BLAST_THREADS" "$SECRET" 0 "$OUT/blast-$1.out" >"$OUT/blast-$1.json" \
    || die "the libcurl baseline failed for $1"
  sleep 0.2
  curl -sf "$HOOK/dump?prefix=/base/$1/" >"$OUT/recv-base-$1.tsv" || die "cannot read the receiver's records"
  "${SUMMARY[@]}" base "base-$1" "$OUT/blast-$1.json" "$OUT/blast-$1.out" "$OUT/recv-base-$1.tsv" "$RESULTS"
}
log "reminder bench: baseline (a), a libcurl client with $BLAST_THREADS threads POSTing the $BURST bodies at once"
blast burst 0
log "reminder bench: baseline (b), the same client pacing $STEADY bodies at $RATE/s"
blast steady $((1000 / RATE))
curl -sf "$HOOK/stats" >"$OUT/receiver.json" || true
info receiver "$(cat "$OUT/receiver.json")"
info receiver_daemon "$(cat "$OUT/receiver-daemon.json" 2>/dev/null)"

# The scheduler's SQL alone: its firing transaction (claim, reminder.due
# outbox rows, delivery rows, settle) for the N due reminders, in batches.
log "reminder bench: baseline, pgbench firing $BURST due reminders with their delivery rows in batches of $BATCH" \
  "on $SCHED_THREADS connections"
insert_reminders burst "$BURST" "$(( $(now_ms) - 1000 ))" 0 "$PGB_URL_PG"
# the same settings as the daemon's users (the claim reads their channels)
sql "$PGB_URL_PG" "INSERT INTO notification_settings (user_id, channels, webhook_url, webhook_secret, updated_at)
                   SELECT '$PREFIX-' || lpad(u::text, 3, '0'), '{webhook}',
                          '$HOOK/hook/$PREFIX-' || lpad(u::text, 3, '0'), '$SECRET', now()
                     FROM generate_series(1, $USERS) u"
sql "$PGB_URL_PG" "VACUUM ANALYZE reminders, tasks"
# SCHED_THREADS connections, as many transactions in all as the scheduler's
# (SKIP LOCKED splits the reminders between them as between its threads)
"$PGBENCH" -n -r -M extended -c "$SCHED_THREADS" -j "$SCHED_THREADS" \
  -t $(( ((BURST + BATCH - 1) / BATCH + SCHED_THREADS - 1) / SCHED_THREADS )) -D batch="$BATCH" \
  -f "$BENCH_DIR/claim.sql" "$PGB_URL_PG" >"$OUT/pgbench.txt" 2>&1 || die "pgbench failed; see $OUT/pgbench.txt"
info pgbench_claimed "$(sql "$PGB_URL_PG" "SELECT count(*) FILTER (WHERE fire_id IS NOT NULL) || ' of ' || count(*)
                                              || '; reminder.due outbox rows '
                                              || (SELECT count(*) FROM outbox WHERE topic = 'reminder.due')
                                              || '; delivery rows ' || (SELECT count(*) FROM reminder_deliveries)
                                         FROM reminders")"
"${SUMMARY[@]}" pgbench pgbench "$OUT/pgbench.txt" "$BURST" "$BATCH" "$RESULTS"

# The consumer's SQL alone: its duplicate check for each of those firings,
# one after the other on one connection.
log "reminder bench: baseline, pgbench running the consumer's duplicate check for $BURST reminder.due events"
sql "$PGB_URL_PG" "CREATE TABLE bench_fired AS
                     SELECT row_number() OVER (ORDER BY fire_id) AS n, fire_id FROM reminder_deliveries;
                   CREATE UNIQUE INDEX ON bench_fired (n)"
sql "$PGB_URL_PG" "VACUUM ANALYZE bench_fired, reminder_deliveries"
"$PGBENCH" -n -M extended -c 1 -j 1 -t "$BURST" -D k=0 -f "$BENCH_DIR/intake.sql" "$PGB_URL_PG" \
  >"$OUT/pgbench-consumer.txt" 2>&1 || die "pgbench failed; see $OUT/pgbench-consumer.txt"
"${SUMMARY[@]}" pgbench pgbench-consumer "$OUT/pgbench-consumer.txt" "$BURST" 1 "$RESULTS"

# --- what the daemon says ----------------------------------------------------------------
info log_warn_error "$(grep -c -E '"level":"(warn|error)"' "$OUT/todo-reminder.log" || true)"
info log_warn_error_first "$(grep -E '"level":"(warn|error)"' "$OUT/todo-reminder.log" | head -3 | cut -c1-300 \
  | paste -sd '|' || true)"
bench_finish "reminder bench"
