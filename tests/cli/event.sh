#!/usr/bin/env bash
# todoctl event: the CloudEvents vectors through `event validate`, exit
# codes, and the other event subcommands.
#   bash event.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=${1:?build dir}
SRC=${2:?source dir}
TODOCTL=$BUILD/bin/todoctl
VEC=$SRC/tests/vectors/cloudevents
SCHEMAS=$SRC/libtodoevents/schemas
. "$(dirname "$0")/lib.sh"

# ---- valid vectors: "valid", exit 0 ------------------------------------------
n_valid=0
for f in "$VEC"/valid/*.json; do
    n_valid=$((n_valid + 1))
    run "$TODOCTL" event validate "$f"
    expect_rc 0 "valid/$(basename "$f")" || continue
    [ "$(cat "$TMP/out")" = "valid" ] || fail "valid/$(basename "$f"): stdout is not 'valid'"
done
[ "$n_valid" -ge 30 ] || fail "only $n_valid valid vectors found"

# ---- invalid vectors: problem lines, exit 1 (malformed-*: exit 2) -----------
n_invalid=0
for f in "$VEC"/invalid/*.json; do
    n_invalid=$((n_invalid + 1))
    name=$(basename "$f" .json)
    run "$TODOCTL" event validate "$f"
    if [[ $name == malformed-* ]]; then
        expect_rc 2 "invalid/$name" || continue
        [ -s "$TMP/out" ] && fail "invalid/$name: printed on stdout"
        grep -q "todoctl: " "$TMP/err" || fail "invalid/$name: no error message on stderr"
        continue
    fi
    expect_rc 1 "invalid/$name" || continue
    [ -s "$TMP/out" ] || fail "invalid/$name: no problem lines"
    grep -qx valid "$TMP/out" && fail "invalid/$name: printed 'valid'"
    # every line is "<attribute>: <reason>"
    if grep -vqE '^[^ ]*: .+' "$TMP/out"; then
        fail "invalid/$name: a line is not '<attribute>: <reason>'"
        cat "$TMP/out" >&2
    fi
    exp="$VEC/invalid/$name.expected"
    [ -f "$exp" ] || { fail "invalid/$name: no $name.expected"; continue; }
    while IFS= read -r line; do
        [ -z "$line" ] && continue
        if [[ $line == *... ]]; then
            prefix=${line%...}
            grep -qF -- "$prefix" "$TMP/out" || fail "invalid/$name: no line starting '$prefix'"
        elif ! grep -qxF -- "$line" "$TMP/out"; then
            fail "invalid/$name: missing line '$line'"
            sed 's/^/    got: /' "$TMP/out" >&2
        fi
    done <"$exp"
done
[ "$n_invalid" -ge 60 ] || fail "only $n_invalid invalid vectors found"

# ---- input handling ---------------------------------------------------------------
run "$TODOCTL" event validate - <"$VEC/valid/minimal.json"
expect_rc 0 "stdin via -" && [ "$(cat "$TMP/out")" = valid ] || fail "stdin via -"
run "$TODOCTL" event validate <"$VEC/valid/minimal.json"
expect_rc 0 "stdin without FILE"
run "$TODOCTL" event validate "$TMP/does-not-exist.json"
expect_rc 2 "missing file" && grep -q "cannot open" "$TMP/err" || fail "missing file message"
run "$TODOCTL" event validate a.json b.json
expect_rc 2 "two inputs"
run "$TODOCTL" event validate --bogus
expect_rc 2 "unknown option"
run "$TODOCTL" event
expect_rc 2 "no subcommand" && grep -q "usage: todoctl event" "$TMP/err" || fail "event usage"
run "$TODOCTL" event bogus
expect_rc 2 "unknown subcommand"
run "$TODOCTL" event help
expect_rc 0 "event help" && grep -q "validate" "$TMP/out" || fail "event help text"

# long attribute names: valid, with a warning on stderr
run "$TODOCTL" event validate "$VEC/valid/extension-name-long.json"
expect_rc 0 "long name" && grep -q "warning: averyveryverylongextensionname" "$TMP/err" ||
    fail "no warning for a long attribute name"

# --spec-only skips the catalogue
run "$TODOCTL" event validate --spec-only "$VEC/invalid/todo-sync-op-mismatch.json"
expect_rc 0 "--spec-only on a catalogue problem"
run "$TODOCTL" event validate --spec-only "$VEC/invalid/missing-id.json"
expect_rc 1 "--spec-only on a spec problem"

# ---- catalogue and schemas ----------------------------------------------------------
run "$TODOCTL" event types
expect_rc 0 "event types" && [ "$(wc -l <"$TMP/out")" -eq 12 ] || fail "event types: 12 lines"
grep -q '^com.todo.reminder.due  *reminder.due ' "$TMP/out" || fail "event types: reminder.due"
run "$TODOCTL" event topics
expect_rc 0 "event topics" && [ "$(wc -l <"$TMP/out")" -eq 6 ] || fail "event topics: 6 lines"
grep -q '^sync.events .*partitions=12 .*retention=1h' "$TMP/out" || fail "event topics: sync.events"

run "$TODOCTL" event schema com.todo.task.updated
expect_rc 0 "event schema TYPE" && cmp -s "$TMP/out" "$SCHEMAS/com.todo.task.updated.json" ||
    fail "event schema com.todo.task.updated differs from the committed file"
run "$TODOCTL" event schema
expect_rc 0 "event schema" && cmp -s "$TMP/out" "$SCHEMAS/cloudevent.json" ||
    fail "event schema (envelope) differs from the committed file"
run "$TODOCTL" event schema com.todo.nope
expect_rc 2 "event schema unknown type"
mkdir "$TMP/schemas"
run "$TODOCTL" event schemas --out "$TMP/schemas"
expect_rc 0 "event schemas --out" && diff -r "$TMP/schemas" "$SCHEMAS" >/dev/null ||
    fail "event schemas --out differs from libtodoevents/schemas (regenerate and commit)"
run "$TODOCTL" event schemas --out "$TMP/no/such/dir"
expect_rc 2 "event schemas into a missing directory"
run "$TODOCTL" event schemas
expect_rc 2 "event schemas without --out"

# ---- event new / event kafka -------------------------------------------------------
DATA='{"task_id":"6e8bc430-9c3a-11d9-9669-0800200c9a66","user_id":"u1","deleted_at":"2026-01-01T00:00:00Z"}'
run "$TODOCTL" event new --type com.todo.task.deleted --source /api --partitionkey u1 \
    --subject 6e8bc430-9c3a-11d9-9669-0800200c9a66 --ext region=eu --data "$DATA"
if expect_rc 0 "event new"; then
    cp "$TMP/out" "$TMP/new.json"
    run "$TODOCTL" event validate "$TMP/new.json"
    expect_rc 0 "event new output validates"
    grep -q '"region":"eu"' "$TMP/new.json" || fail "event new: --ext missing"
    grep -qE '"id":"[0-9a-f-]{36}"' "$TMP/new.json" || fail "event new: no UUID id"
    grep -qE '"time":"[0-9-]{10}T[0-9:]{8}\.[0-9]{3}Z"' "$TMP/new.json" || fail "event new: time"
    run "$TODOCTL" event kafka --mode binary "$TMP/new.json"
    expect_rc 0 "event kafka binary"
    grep -qx "key: u1" "$TMP/out" || fail "event kafka: key"
    grep -qx "header ce_type: com.todo.task.deleted" "$TMP/out" || fail "event kafka: ce_type"
    grep -qx "header ce_region: eu" "$TMP/out" || fail "event kafka: ce_region"
    grep -qx "header content-type: application/json" "$TMP/out" || fail "event kafka: content-type"
    grep -qxF "$DATA" "$TMP/out" || fail "event kafka: value"
    run "$TODOCTL" event kafka --mode structured "$TMP/new.json"
    expect_rc 0 "event kafka structured"
    grep -qx "header content-type: application/cloudevents+json; charset=UTF-8" "$TMP/out" ||
        fail "event kafka structured: content-type"
    [ "$(grep -c '^header ' "$TMP/out")" -eq 1 ] || fail "event kafka structured: one header"
fi
run "$TODOCTL" event new --type com.todo.task.deleted --source /api --data '{"task_id":"x"}'
expect_rc 1 "event new with data the catalogue rejects" &&
    grep -q "data.task_id" "$TMP/err" || fail "event new: catalogue problem not shown"
run "$TODOCTL" event new --type t --source 'not a uri'
expect_rc 2 "event new with a bad source"
run "$TODOCTL" event new --type t
expect_rc 2 "event new without --source"
run "$TODOCTL" event new --type t --source /s --data '{bad'
expect_rc 2 "event new with malformed data"
run "$TODOCTL" event kafka --mode weird "$VEC/valid/minimal.json"
expect_rc 2 "event kafka --mode weird"
run "$TODOCTL" event kafka "$VEC/invalid/missing-id.json"
expect_rc 1 "event kafka on an invalid event"

# ---- optional: an independent JSON Schema validator agrees ------------------------
if command -v python3 >/dev/null && python3 -c 'import jsonschema' 2>/dev/null; then
    run python3 - "$VEC" "$SCHEMAS" <<'EOF'
import glob, json, os, sys
from jsonschema import Draft202012Validator, FormatChecker
vec, schemas = sys.argv[1], sys.argv[2]
load = lambda p: json.load(open(p, encoding="utf-8"))
env = Draft202012Validator(load(os.path.join(schemas, "cloudevent.json")), format_checker=FormatChecker())
bad = 0
# rfc3339-validator (python's date-time checker) rejects lower-case t/z and
# leap seconds, which RFC 3339 (5.6 note, 5.7) and the JSON Schema test suite allow
skip = {"time-lowercase-leap.json"}
for f in sorted(glob.glob(os.path.join(vec, "valid", "*.json"))):
    if os.path.basename(f) in skip:
        continue
    ev = load(f)
    errs = [e.message for e in env.iter_errors(ev)]
    t = ev.get("type", "")
    if t.startswith("com.todo."):
        s = Draft202012Validator(load(os.path.join(schemas, t + ".json")), format_checker=FormatChecker())
        errs += [e.message for e in s.iter_errors(ev.get("data"))]
    if errs:
        bad += 1
        print(os.path.basename(f), errs[:3])
for f in sorted(glob.glob(os.path.join(vec, "invalid", "todo-*.json"))):
    ev = load(f)
    t = ev.get("type", "")
    p = os.path.join(schemas, t + ".json")
    if not os.path.exists(p) or "data" not in ev:
        continue
    s = Draft202012Validator(load(p), format_checker=FormatChecker())
    if s.is_valid(ev["data"]) and os.path.basename(f) != "todo-wrong-datacontenttype.json":
        bad += 1
        print(os.path.basename(f), "data accepted by the schema")
sys.exit(1 if bad else 0)
EOF
    expect_rc 0 "python-jsonschema disagrees with the vectors"
else
    echo "note: python3 jsonschema not available; schema cross-check skipped"
fi

echo "event.sh: $checks commands, $n_valid valid + $n_invalid invalid vectors, $failures failure(s)"
[ "$failures" -eq 0 ]
