#!/usr/bin/env bash
# todoctl recur: listing occurrences (exact output across DST changes),
# --after/--count, anchors (--completed), and the errors for bad rules,
# times, zones, counts and missing options.
#   bash recur.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=${1:?build dir}
TODOCTL=$BUILD/bin/todoctl
. "$(dirname "$0")/lib.sh"
expect_out() { # description, then the expected stdout lines
    local what=$1
    shift
    printf '%s\n' "$@" >"$TMP/want"
    if ! cmp -s "$TMP/want" "$TMP/out"; then
        fail "$what: unexpected output"
        diff "$TMP/want" "$TMP/out" | sed 's/^/    /' >&2
    fi
}
expect_err() { # description, expected stderr substring; stdout must be empty
    if ! grep -qF -- "$2" "$TMP/err"; then
        fail "$1: stderr lacks '$2'"
        show
    fi
    [ -s "$TMP/out" ] && fail "$1: unexpected stdout"
    return 0
}

# ---- listing ---------------------------------------------------------------
# Daily 02:30 in Berlin across the 2026-03-29 spring-forward: the wall clock
# is kept, the missing 02:30 becomes 03:30 CEST on that day only.
run "$TODOCTL" recur --rule FREQ=DAILY --start 2026-03-27T02:30:00+01:00 --tz Europe/Berlin --count 5
expect_rc 0 "daily over spring-forward" &&
    expect_out "daily over spring-forward" \
        2026-03-27T02:30:00+01:00 2026-03-28T02:30:00+01:00 2026-03-29T03:30:00+02:00 \
        2026-03-30T02:30:00+02:00 2026-03-31T02:30:00+02:00

# --start is an instant: 08:00Z is 09:00 in Berlin; fall-back keeps 09:00.
run "$TODOCTL" recur --rule "RRULE:FREQ=WEEKLY;BYDAY=SU" --start 2026-10-18T07:00:00Z --tz Europe/Berlin --count 3
expect_rc 0 "weekly over fall-back" &&
    expect_out "weekly over fall-back" \
        2026-10-18T09:00:00+02:00 2026-10-25T09:00:00+01:00 2026-11-01T09:00:00+01:00

# Default count is 10; the RFC's "every other week" in New York.
run "$TODOCTL" recur --rule "FREQ=WEEKLY;INTERVAL=2;WKST=SU" --start 1997-09-02T09:00:00-04:00 --tz America/New_York
expect_rc 0 "default count" &&
    expect_out "default count" \
        1997-09-02T09:00:00-04:00 1997-09-16T09:00:00-04:00 1997-09-30T09:00:00-04:00 \
        1997-10-14T09:00:00-04:00 1997-10-28T09:00:00-05:00 1997-11-11T09:00:00-05:00 \
        1997-11-25T09:00:00-05:00 1997-12-09T09:00:00-05:00 1997-12-23T09:00:00-05:00 \
        1998-01-06T09:00:00-05:00

# --after: strictly after that instant (an occurrence itself is excluded).
run "$TODOCTL" recur --rule "FREQ=MONTHLY;BYMONTHDAY=-1" --start 2024-01-31T09:00:00+01:00 \
    --tz Europe/Berlin --after 2024-02-29T08:00:00Z --count 3
expect_rc 0 "--after" &&
    expect_out "--after" 2024-03-31T09:00:00+02:00 2024-04-30T09:00:00+02:00 2024-05-31T09:00:00+02:00

# The libical DAILY negative-BYMONTHDAY workaround, with --option=value.
run "$TODOCTL" recur --rule=FREQ=DAILY\;BYMONTHDAY=-1 --start=2026-02-01T09:00:00+01:00 \
    --tz=Europe/Berlin --after=2026-02-01T09:00:00+01:00 --count=2
expect_rc 0 "daily last day" &&
    expect_out "daily last day" 2026-02-28T09:00:00+01:00 2026-03-31T09:00:00+02:00

# A series shorter than --count prints what exists and succeeds.
run "$TODOCTL" recur --rule "FREQ=DAILY;COUNT=3" --start 2026-01-01T09:00:00+01:00 --tz Europe/Berlin --count 10
expect_rc 0 "short series" &&
    expect_out "short series" 2026-01-01T09:00:00+01:00 2026-01-02T09:00:00+01:00 2026-01-03T09:00:00+01:00
run "$TODOCTL" recur --rule "FREQ=DAILY;UNTIL=20260102T000000Z" --start 2026-01-01T09:00:00+01:00 \
    --tz Europe/Berlin --after 2026-01-05T00:00:00Z
expect_rc 0 "ended series" && [ -s "$TMP/out" ] && fail "ended series: output not empty"

# UTC zones print "Z", other zones their offset (+00:00 for London in winter).
run "$TODOCTL" recur --rule FREQ=DAILY --start 2026-01-01T09:00:00Z --tz UTC --count 2
expect_rc 0 "utc" && expect_out "utc" 2026-01-01T09:00:00Z 2026-01-02T09:00:00Z
run "$TODOCTL" recur --rule FREQ=DAILY --start 2026-01-01T09:00:00Z --tz Europe/London --count 1
expect_rc 0 "london" && expect_out "london" 2026-01-01T09:00:00+00:00

# ---- anchors (--completed) -------------------------------------------------
# schedule: completed 3 days late → the next one after the completion.
run "$TODOCTL" recur --rule FREQ=DAILY --start 2026-03-27T09:00:00+01:00 --tz Europe/Berlin \
    --completed 2026-03-30T12:00:00+02:00
expect_rc 0 "schedule late" && expect_out "schedule late" 2026-03-31T09:00:00+02:00
# completion: re-anchored on the completion date at 09:00, every 3 days.
run "$TODOCTL" recur --rule "FREQ=DAILY;INTERVAL=3" --start 2026-01-01T09:00:00+01:00 --tz Europe/Berlin \
    --anchor completion --due 2026-01-04T09:00:00+01:00 --completed 2026-01-10T15:00:00+01:00 --so-far 2
expect_rc 0 "completion" && expect_out "completion" 2026-01-13T09:00:00+01:00
# completion with COUNT reached: nothing printed, a note, exit 0.
run "$TODOCTL" recur --rule "FREQ=DAILY;COUNT=2" --start 2026-01-01T09:00:00+01:00 --tz Europe/Berlin \
    --anchor completion --completed 2026-01-02T10:00:00+01:00 --so-far 2
expect_rc 0 "completion ended" && expect_err "completion ended" "the series has ended"

# ---- errors: one clear line, exit 2 ----------------------------------------
check_error() { # description, expected stderr text, then the arguments
    local what=$1 msg=$2
    shift 2
    run "$TODOCTL" recur "$@"
    expect_rc 2 "$what" || return
    expect_err "$what" "$msg"
    local lines
    lines=$(wc -l <"$TMP/err")
    [ "$lines" -eq 1 ] || fail "$what: $lines stderr lines, expected 1"
}
B=(--start 2026-01-01T09:00:00+01:00 --tz Europe/Berlin)
check_error "bad rule" "todoctl: invalid --rule: BYMONTHDAY is not allowed with FREQ=WEEKLY" \
    --rule "FREQ=WEEKLY;BYMONTHDAY=1" "${B[@]}"
check_error "unknown part" "todoctl: invalid --rule: unknown rule part 'FOO'" --rule "FREQ=DAILY;FOO=1" "${B[@]}"
check_error "no FREQ" "todoctl: invalid --rule: FREQ is required" --rule "COUNT=3" "${B[@]}"
check_error "COUNT+UNTIL" "todoctl: invalid --rule: COUNT and UNTIL must not both be given" \
    --rule "FREQ=DAILY;COUNT=3;UNTIL=20260201T000000Z" "${B[@]}"
check_error "bad start" "todoctl: invalid --start:" --rule FREQ=DAILY --start 2026-01-01 --tz Europe/Berlin
check_error "start without offset" "todoctl: invalid --start:" --rule FREQ=DAILY --start 2026-01-01T09:00:00 --tz UTC
check_error "bad zone" "todoctl: invalid --tz: unknown time zone 'Mars/Olympus'" \
    --rule FREQ=DAILY --start 2026-01-01T09:00:00Z --tz Mars/Olympus
check_error "bad after" "todoctl: invalid --after:" --rule FREQ=DAILY "${B[@]}" --after yesterday
check_error "count 0" "todoctl: invalid --count: '0' is not an integer between 1 and 10000" \
    --rule FREQ=DAILY "${B[@]}" --count 0
check_error "count text" "todoctl: invalid --count: 'ten'" --rule FREQ=DAILY "${B[@]}" --count ten
check_error "count huge" "todoctl: invalid --count:" --rule FREQ=DAILY "${B[@]}" --count 99999999999
check_error "bad anchor" "todoctl: invalid --anchor: 'due'" --rule FREQ=DAILY "${B[@]}" --anchor due
check_error "until before start" "todoctl: invalid --rule: UNTIL (" \
    --rule "FREQ=DAILY;UNTIL=20251201T000000Z" "${B[@]}"

# Missing required options / unknown options: usage on stderr, exit 2.
for args in "--start 2026-01-01T09:00:00Z --tz UTC" "--rule FREQ=DAILY --tz UTC" \
    "--rule FREQ=DAILY --start 2026-01-01T09:00:00Z" ""; do
    # shellcheck disable=SC2086
    run "$TODOCTL" recur $args
    expect_rc 2 "missing option ($args)" || continue
    grep -q "usage: todoctl recur" "$TMP/err" || fail "missing option ($args): no usage on stderr"
    [ -s "$TMP/out" ] && fail "missing option ($args): stdout not empty"
done
run "$TODOCTL" recur --rule FREQ=DAILY "${B[@]}" --bogus 1
expect_rc 2 "unknown option" && expect_err "unknown option" "unknown option '--bogus'"
run "$TODOCTL" recur --rule FREQ=DAILY "${B[@]}" --count
expect_rc 2 "option without value" && expect_err "option without value" "--count needs a value"
run "$TODOCTL" recur --help
expect_rc 0 "--help" && grep -q "usage: todoctl recur" "$TMP/out" || fail "--help: no usage on stdout"

echo "recur.sh: $((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
