"""What the deploy checks' Python shares (images.sh, observability.sh and
dapr_components.py): one "ok:" or "FAIL:" line a check, the failures
collected, and the verdict at the end.  The scripts in images.sh and
observability.sh put tests/deploy on sys.path to import it."""

import sys

failures = []


def ok(msg):
    print("ok:   " + msg)


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def check(cond, msg):
    """ok(msg) when cond holds, else fail(msg); returns bool(cond)."""
    (ok if cond else fail)(msg)
    return bool(cond)


def finish(name):
    """Exits 1 after "N check(s) failed" when a check failed, else prints
    "NAME: all checks passed"."""
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("%s: all checks passed" % name)
