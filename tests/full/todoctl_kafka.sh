#!/usr/bin/env bash
# full.todoctl_kafka — todoctl's Kafka commands against the real broker
# (TE_KAFKA_BROKERS, from scripts/services):
#   topics ensure   twice: created/exists lines, then all "exists", exit 0;
#                   an unreachable broker: exit 2
#   event publish   structured from a file, binary from stdin, same key ->
#                   same partition, consecutive offsets; invalid event: exit 1
#                   and nothing sent; no key: exit 2; missing topic: exit 2
#   event tail      one JSON line per record, the event in structured form
#                   whichever mode it arrived in, byte for byte the published
#                   event; a record that is not a CloudEvent (written by
#                   Kafka's own console producer, same key -> same partition:
#                   the partitioners agree) shows "error"; --count; --timeout
#                   (exit 1 when short); --group commits (a second run with
#                   the same group gets nothing old); missing topic: exit 2
# A scratch topic is created and deleted with Kafka's TopicCommand
# (TE_KAFKA_LIBS).  Usage (ctest): bash todoctl_kafka.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=${1:?usage: todoctl_kafka.sh BUILD_DIR SOURCE_DIR}
SRC=${2:?usage: todoctl_kafka.sh BUILD_DIR SOURCE_DIR}
TODOCTL=${TODOCTL:-$BUILD/bin/todoctl}
: "${TE_KAFKA_BROKERS:?not set: run scripts/services start and eval \"\$(scripts/services env)\"}"
[ -x "$TODOCTL" ] || { echo "no $TODOCTL" >&2; exit 1; }
TMP=$(mktemp -d)

failures=0
checks=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
run() { # run CMD... : stdout/stderr to $TMP/out, $TMP/err, exit status in $rc
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    checks=$((checks + 1))
}
show() {
    sed 's/^/    stdout: /' "$TMP/out" >&2
    sed 's/^/    stderr: /' "$TMP/err" >&2
}
expect_rc() { # expect_rc RC DESCRIPTION
    if [ "$rc" != "$1" ]; then
        fail "$2: exit $rc, expected $1"
        show
        return 1
    fi
}
expect_out() { # expect_out FIXED-STRING DESCRIPTION
    checks=$((checks + 1))
    grep -qF -- "$1" "$TMP/out" || { fail "$2: stdout lacks: $1"; show; }
}
expect_err() {
    checks=$((checks + 1))
    grep -qF -- "$1" "$TMP/err" || { fail "$2: stderr lacks: $1"; show; }
}

# ---- Kafka's own tools, for the scratch topic and a non-CloudEvent record ----
libs=${TE_KAFKA_LIBS:-}
[ -n "$libs" ] || libs=$(bash "$SRC/scripts/services" kafka-libs)
kjava() {
    java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData -Xmx256m \
        "-Dlog4j2.configurationFile=$SRC/infrastructure/kafka/tools-log4j2.properties" \
        -cp "$libs/*" "$@"
}
topic=te-cli-$$-$RANDOM
created=0
cleanup() {
    if [ "$created" = 1 ]; then
        kjava org.apache.kafka.tools.TopicCommand --bootstrap-server "$TE_KAFKA_BROKERS" \
            --delete --topic "$topic" >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- topics ensure -------------------------------------------------------------
run "$TODOCTL" topics ensure
expect_rc 0 "topics ensure (first)"
for t in task.events reminder.due notification.send notification.dlq activity.log sync.events; do
    checks=$((checks + 1))
    grep -Eq "^$t +(created|exists) " "$TMP/out" || { fail "topics ensure: no line for $t"; show; }
done
run "$TODOCTL" topics ensure --replication 1
expect_rc 0 "topics ensure (second)"
checks=$((checks + 1))
[ "$(grep -c ' exists ' "$TMP/out")" = 6 ] || { fail "topics ensure (second): not 6 x exists"; show; }
expect_out "task.events        exists (partitions=12 replication=1 retention.ms=604800000)" "topics ensure"
run "$TODOCTL" topics ensure --brokers 127.0.0.1:1 --timeout 2 -X te.log.level=0
expect_rc 2 "topics ensure with no broker"
run "$TODOCTL" topics ensure -X no.such.key=1
expect_rc 2 "topics ensure with an unknown -X key"
expect_err "no.such.key" "unknown -X key named"
run "$TODOCTL" topics frobnicate
expect_rc 2 "topics: unknown subcommand"

# ---- a scratch topic -------------------------------------------------------------
if kjava org.apache.kafka.tools.TopicCommand --bootstrap-server "$TE_KAFKA_BROKERS" --create \
    --topic "$topic" --partitions 3 --replication-factor 1 >"$TMP/create" 2>&1; then
    created=1
else
    cat "$TMP/create" >&2
    echo "FAIL: cannot create $topic" >&2
    exit 1
fi

# ---- event publish -------------------------------------------------------------------
# compact, attributes in the library's canonical order: tail prints it back byte for byte
ev1='{"specversion":"1.0","id":"cli-1","source":"/tests/cli","type":"org.example.cli","datacontenttype":"application/json","subject":"s1","time":"2025-03-04T05:06:07.089Z","partitionkey":"user-a","myext":"v1","data":{"n":1,"text":"héllo"}}'
ev2='{"specversion":"1.0","id":"cli-2","source":"/tests/cli","type":"org.example.cli","datacontenttype":"application/json","time":"2025-03-04T05:06:08Z","partitionkey":"user-a","data":{"n":2}}'
printf '%s\n' "$ev1" >"$TMP/ev1.json"

run "$TODOCTL" event publish --topic "$topic" --key user-a "$TMP/ev1.json"
expect_rc 0 "publish structured from a file"
expect_out "delivered topic=$topic partition=" "publish structured"
expect_out " offset=0 key=user-a mode=structured" "publish structured"
part=$(sed -n 's/.* partition=\([0-9]*\) .*/\1/p' "$TMP/out")

printf '%s' "$ev2" >"$TMP/ev2.json"
run "$TODOCTL" event publish --topic "$topic" --mode binary - <"$TMP/ev2.json"
expect_rc 0 "publish binary from stdin (key = partitionkey)"
expect_out "delivered topic=$topic partition=$part offset=1 key=user-a mode=binary" "same key, same partition"

bad='{"specversion":"1.0","id":"","source":"/tests/cli","type":"org.example.cli"}'
printf '%s' "$bad" >"$TMP/bad.json"
run "$TODOCTL" event publish --topic "$topic" --key user-a "$TMP/bad.json"
expect_rc 1 "publish an invalid event"
expect_out "id:" "publish invalid: problem listed"

badtask='{"specversion":"1.0","id":"t-1","source":"/todo-api","type":"com.todo.task.created","partitionkey":"user-a","data":{"task_id":"nope"}}'
printf '%s' "$badtask" >"$TMP/badtask.json"
run "$TODOCTL" event publish --topic "$topic" "$TMP/badtask.json"
expect_rc 1 "publish a catalogue-invalid event"
expect_out "data.task_id" "catalogue problem listed"

nokey='{"specversion":"1.0","id":"cli-3","source":"/tests/cli","type":"org.example.cli"}'
printf '%s' "$nokey" >"$TMP/nokey.json"
run "$TODOCTL" event publish --topic "$topic" "$TMP/nokey.json"
expect_rc 2 "publish without a key"
expect_err "--key is required" "no key"

run "$TODOCTL" event publish --topic "$topic" --key k --mode xml "$TMP/ev1.json"
expect_rc 2 "publish --mode xml"

run "$TODOCTL" event publish --topic "te-cli-no-such-topic-$$" --key k --timeout 5 "$TMP/ev1.json"
expect_rc 2 "publish to a missing topic"
expect_err "does not exist" "missing topic named"

# a record that is not a CloudEvent, from Kafka's console producer (same key)
printf 'user-a\tnot a cloud event\n' | kjava org.apache.kafka.tools.ConsoleProducer \
    --bootstrap-server "$TE_KAFKA_BROKERS" --topic "$topic" --property parse.key=true \
    --producer-property acks=all >/dev/null 2>"$TMP/console.err" || {
    fail "console producer failed"
    cat "$TMP/console.err" >&2
}

# ---- event tail ------------------------------------------------------------------------
group=te-cli-group-$$-$RANDOM
run "$TODOCTL" event tail --topic "$topic" --from-beginning --count 3 --timeout 30 --group "$group"
expect_rc 0 "tail --from-beginning --count 3"
checks=$((checks + 1))
[ "$(wc -l <"$TMP/out")" = 3 ] || { fail "tail: expected 3 lines"; show; }
expect_out "{\"key\":\"user-a\",\"partition\":$part,\"offset\":0,\"mode\":\"structured\",\"event\":$ev1}" "tail: structured record"
expect_out "{\"key\":\"user-a\",\"partition\":$part,\"offset\":1,\"mode\":\"binary\",\"event\":$ev2}" "tail: binary record shown structured"
expect_out "{\"key\":\"user-a\",\"partition\":$part,\"offset\":2,\"error\":\"not a CloudEvent" "tail: non-CloudEvent record (Java's partitioner agrees)"
if command -v jq >/dev/null 2>&1; then
    checks=$((checks + 1))
    jq -e . "$TMP/out" >/dev/null || { fail "tail: output is not JSON lines"; show; }
fi

# the group committed: nothing old comes back
run "$TODOCTL" event tail --topic "$topic" --group "$group" --count 1 --timeout 4
expect_rc 1 "tail again in the same group: nothing new"
expect_err "timed out after 0 of 1" "tail timeout message"
checks=$((checks + 1))
[ ! -s "$TMP/out" ] || { fail "tail: the group got old records again"; show; }

# a new record reaches a running tail (default: only new records)
( sleep 3; "$TODOCTL" event publish --topic "$topic" "$TMP/ev2.json" >/dev/null 2>&1 ) &
pub=$!
run "$TODOCTL" event tail --topic "$topic" --count 1 --timeout 20
wait "$pub"
expect_rc 0 "tail without --from-beginning sees a new record"
expect_out "\"offset\":3,\"mode\":\"structured\",\"event\":$ev2}" "tail: the new record"

run "$TODOCTL" event tail --topic "te-cli-no-such-topic-$$" --timeout 5
expect_rc 2 "tail a missing topic"
expect_err "does not exist" "tail: missing topic named"
run "$TODOCTL" event tail --count 1
expect_rc 2 "tail without --topic"

echo "todoctl_kafka: $checks checks, $failures failure(s)"
[ "$failures" = 0 ]
