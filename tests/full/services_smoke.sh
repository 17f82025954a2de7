#!/usr/bin/env bash
# full.services_smoke — the throwaway services that scripts/services starts
# really answer at the addresses that `scripts/services env` exports:
#   PostgreSQL: `select 1` over TCP with the role's password (TE_PG_URL)
#   Redis:      PING (TE_REDIS_URL)
#   Kafka:      create, list, produce one record, consume it in a consumer
#               group, delete the topic (TE_KAFKA_BROKERS), with Kafka's own
#               command-line classes from the cached jars (TE_KAFKA_LIBS).
# Usage (ctest): bash services_smoke.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
SRC=${2:?usage: services_smoke.sh BUILD_DIR SOURCE_DIR}
: "${TE_PG_URL:?not set: run eval \"\$(scripts/services env)\" first}"
: "${TE_REDIS_URL:?not set: run eval \"\$(scripts/services env)\" first}"
: "${TE_KAFKA_BROKERS:?not set: run eval \"\$(scripts/services env)\" first}"

t0=$SECONDS
fails=0
check() { # check NAME COMMAND...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}

# --- PostgreSQL ---
pg_select() { [ "$(psql "$TE_PG_URL" -XqAtc 'select 1' 2>&1)" = 1 ]; }
check "postgres: select 1 via TE_PG_URL" pg_select

# --- Redis ---
redis_ping() { [ "$(redis-cli -u "$TE_REDIS_URL" ping 2>&1)" = PONG ]; }
check "redis: PING via TE_REDIS_URL" redis_ping

# --- Kafka ---
libs=${TE_KAFKA_LIBS:-}
[ -n "$libs" ] || libs=$(bash "$SRC/scripts/services" kafka-libs)
ls "$libs"/kafka-tools-*.jar >/dev/null 2>&1 || { echo "FAIL kafka: no Kafka jars in $libs"; exit 1; }
kjava() {
  java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData -Xmx256m \
    "-Dlog4j2.configurationFile=$SRC/infrastructure/kafka/tools-log4j2.properties" \
    -cp "$libs/*" "$@"
}
topics() { kjava org.apache.kafka.tools.TopicCommand --bootstrap-server "$TE_KAFKA_BROKERS" "$@"; }

topic=te-smoke-$$-$RANDOM
created=0
cleanup() { if [ "$created" = 1 ]; then topics --delete --topic "$topic" >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT

create() { topics --create --topic "$topic" --partitions 1 --replication-factor 1 >/dev/null && created=1; }
check "kafka: create topic $topic" create
listed() { topics --list | grep -qx "$topic"; }
check "kafka: topic listed" listed

record="smoke-key:hello from $topic"
produce() {
  printf '%s\n' "$record" | kjava org.apache.kafka.tools.ConsoleProducer \
    --bootstrap-server "$TE_KAFKA_BROKERS" --topic "$topic" \
    --property parse.key=true --property key.separator=: --producer-property acks=all
}
check "kafka: produce one record (acks=all)" produce
consume() {
  local out
  out=$(kjava org.apache.kafka.tools.consumer.ConsoleConsumer \
    --bootstrap-server "$TE_KAFKA_BROKERS" --topic "$topic" --group "$topic-group" \
    --from-beginning --max-messages 1 --timeout-ms 30000 \
    --property print.key=true --property key.separator=: 2>/dev/null)
  [ "$out" = "$record" ] || { echo "  consumed: '$out', expected: '$record'"; return 1; }
}
check "kafka: consume it back in a consumer group" consume

delete() {
  topics --delete --topic "$topic" >/dev/null || return 1
  created=0
  local _
  for _ in 1 2 3 4 5; do
    topics --list | grep -qx "$topic" || return 0
    sleep 1
  done
  return 1
}
check "kafka: delete topic" delete

echo "services_smoke: $((5 + 2 - fails)) of 7 checks passed in $((SECONDS - t0))s"
[ "$fails" = 0 ]
