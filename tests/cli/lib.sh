# Shared by the tests/cli/*.sh scripts (sourced after TODOCTL is set): a
# scratch directory, the counters and the check helpers.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

failures=0
checks=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
# run CMD... : stdout → $TMP/out, stderr → $TMP/err, exit code → $rc
run() {
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    checks=$((checks + 1))
}
show() {
    sed 's/^/    stdout: /' "$TMP/out" >&2
    sed 's/^/    stderr: /' "$TMP/err" >&2
}
expect_rc() { # expected-rc description
    if [ "$rc" != "$1" ]; then
        fail "$2: exit $rc, expected $1"
        show
        return 1
    fi
    return 0
}

[ -x "$TODOCTL" ] || { echo "no $TODOCTL" >&2; exit 1; }
