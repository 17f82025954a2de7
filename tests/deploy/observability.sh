#!/usr/bin/env bash
# tests/deploy/observability.sh BUILD_DIR SOURCE_DIR
#
# Checks the Grafana dashboard (infrastructure/grafana/todoevents-dashboard.json)
# and the Prometheus rules (infrastructure/prometheus/alerts.yaml) against
# the metrics the daemons really register:
#   - the registry is read from the C sources under daemons/ and
#     libtodoevents/: every td_counter/td_gauge/td_histogram("te_...", help,
#     LABELS, ...) with its label names (the LABELS array of the same file),
#     and the name tables registered through a variable name (daemon.c's
#     consumer counters);
#   - every PromQL expression (panel targets, template queries, alert exprs)
#     uses only registered names: counters and gauges as they are,
#     histograms only as <name>_bucket/_sum/_count; every label it matches,
#     groups by or prints in a legend is one of the metric's labels or a
#     target label Prometheus adds (job, instance, namespace, pod, ...);
#     parentheses and braces balance;
#   - the dashboard: schemaVersion 39, the ${DS_PROMETHEUS} data source on
#     every panel and target (a datasource variable of that name), the
#     required panels by title (with the metric each must show), unique
#     panel ids, a gridPos on every panel, within 24 columns, no overlaps;
#   - the alerts: `groups:` with named rules, each with expr, for,
#     labels.severity and annotations.summary/description, unique names, the
#     required alerts present; `promtool check rules` too when promtool is
#     installed (it is not needed).
# BUILD_DIR is unused (the check reads only sources); it is taken for the
# same calling convention as the other deploy checks.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2; exit 2; }
src=$(cd "$2" && pwd)

python3 -c 'import yaml' 2>/dev/null || {
  echo "FAIL: PyYAML is missing (Debian: apt-get install python3-yaml)" >&2
  exit 1
}

if command -v promtool >/dev/null 2>&1; then
  promtool check rules "$src/infrastructure/prometheus/alerts.yaml"
else
  echo "skip: promtool not installed (the rules are checked below without it)"
fi

# deploycheck.py (ok, fail, check, finish) from this script's folder.
here=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" python3 - "$src" <<'PY'
import json, os, re, sys
import yaml

from deploycheck import check, fail, finish, ok

src = sys.argv[1]


# --- the registry, from the sources --------------------------------------------
STR = r'"(?:[^"\\]|\\.)*"'
REG = re.compile(r"\btd_(counter|gauge|histogram)\(\s*\"(te_[a-z0-9_]+)\"\s*,\s*" + STR + r"(?:\s*" + STR + r")*\s*,\s*([A-Za-z_]\w*)")
INDIRECT = re.compile(r"\btd_(counter|gauge|histogram)\(\s*[A-Za-z_][\w\.\[\]\->]*\.name\b")
TABLE = re.compile(r"\{\s*\"(te_[a-z0-9_]+)\"\s*,\s*" + STR)

metrics = {}  # name -> (kind, labels)


def register(name, kind, labels, where):
    old = metrics.get(name)
    if old and old[0] != kind:
        fail("%s is registered as %s and as %s (%s)" % (name, old[0], kind, where))
    metrics[name] = (kind, sorted(set(labels) | set(old[1] if old else [])))


for top in ("daemons", "libtodoevents"):
    for dirpath, _, files in os.walk(os.path.join(src, top)):
        for fn in files:
            if not fn.endswith(".c"):
                continue
            path = os.path.join(dirpath, fn)
            text = open(path, errors="replace").read()
            rel = os.path.relpath(path, src)
            for kind, name, lbl in REG.findall(text):
                labels = []
                if lbl != "NULL":
                    m = re.search(r"\b" + re.escape(lbl) + r"\[\]\s*=\s*\{([^}]*)\}", text)
                    if not m:
                        fail("%s: label array %s of %s not found" % (rel, lbl, name))
                    else:
                        labels = re.findall(r"\"([^\"]+)\"", m.group(1))
                register(name, kind, labels, rel)
            kinds = set(INDIRECT.findall(text))
            if len(kinds) > 1:
                fail("%s: metrics of several kinds registered through names from a table" % rel)
            elif kinds:
                kind = next(iter(kinds))
                for name in TABLE.findall(text):
                    register(name, kind, [], rel)

hist = sorted(n for n, (k, _) in metrics.items() if k == "histogram")
check(len(metrics) >= 10 and hist,
      "the daemons register %d metric families (%d histograms)" % (len(metrics), len(hist)))

TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service", "endpoint", "node"}


def strip_strings(expr):
    return re.sub(r"\"(?:[^\"\\]|\\.)*\"", '""', expr)


def metric_names(expr):
    return re.findall(r"(?<![\w:$])(te_[a-zA-Z0-9_:]+)", strip_strings(expr))


def resolve(name):
    """(base, kind, labels, suffix) or an error text."""
    if name in metrics:
        kind, labels = metrics[name]
        if kind == "histogram":
            return "%s is a histogram: use %s_bucket, _sum or _count" % (name, name)
        return (name, kind, labels, "")
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and name[: -len(suf)] in metrics:
            base = name[: -len(suf)]
            kind, labels = metrics[base]
            if kind != "histogram":
                return "%s: %s is a %s, it has no %s series" % (name, base, kind, suf)
            return (base, kind, labels, suf)
    return "%s is not a metric the daemons register" % name


def check_expr(where, expr, legend=None):
    bad = 0
    s = strip_strings(expr)
    for o, c in ("()", "{}", "[]"):
        if s.count(o) != s.count(c):
            fail("%s: unbalanced %s%s in: %s" % (where, o, c, expr))
            bad += 1
    labels_all = set(TARGET_LABELS)
    for name in metric_names(expr):
        r = resolve(name)
        if isinstance(r, str):
            fail("%s: %s" % (where, r))
            bad += 1
            continue
        base, kind, labels, suf = r
        own = set(labels) | TARGET_LABELS | ({"le"} if suf == "_bucket" else set())
        labels_all |= own
        # matchers of this selector
        for m in re.finditer(r"(?<![\w:])" + re.escape(name) + r"\s*\{([^}]*)\}", s):
            for lab in re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", m.group(1)):
                if lab not in own:
                    fail("%s: %s has no label %r (labels: %s)" % (where, base, lab, ", ".join(labels) or "none"))
                    bad += 1
    if metric_names(expr):
        for m in re.finditer(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", s):
            for lab in [x.strip() for x in m.group(2).split(",") if x.strip()]:
                if lab not in labels_all:
                    fail("%s: %s (%s) names label %r that none of its metrics has" % (where, m.group(1), m.group(2), lab))
                    bad += 1
        for lab in re.findall(r"\{\{\s*([a-zA-Z_]\w*)\s*\}\}", legend or ""):
            if lab not in labels_all:
                fail("%s: legend {{%s}} is not a label of the result" % (where, lab))
                bad += 1
    return bad


def load(path, parse):
    """parse(the open file path), or {} when it does not parse (a failure)."""
    try:
        with open(path) as f:
            return parse(f)
    except Exception as e:  # noqa: BLE001
        fail("%s does not parse: %s" % (path, e))
        return {}


def required_present(required, found, absent, text_of):
    """(name, item, needles, missing) for each name of required (name ->
    needles) that found has, missing the needles text_of(item) lacks; a
    failure, absent % name, for each it has not."""
    for name, needles in required.items():
        item = found.get(name)
        if not item:
            fail(absent % name)
            continue
        text = text_of(item)
        yield name, item, needles, [n for n in needles if n not in text]


# --- the dashboard ------------------------------------------------------------------
dash = load(os.path.join(src, "infrastructure/grafana/todoevents-dashboard.json"), json.load)
check(dash.get("schemaVersion") == 39, "dashboard schemaVersion 39 (%s)" % dash.get("schemaVersion"))
tvars = (dash.get("templating") or {}).get("list") or []
ds_var = [v for v in tvars if v.get("name") == "DS_PROMETHEUS" and v.get("type") == "datasource"
          and v.get("query") == "prometheus"]
ds_input = [i for i in dash.get("__inputs", []) if i.get("name") == "DS_PROMETHEUS"]
check(ds_var or ds_input, "dashboard has the DS_PROMETHEUS data source (variable or __inputs)")

all_panels = []


def walk(ps):
    for p in ps:
        all_panels.append(p)
        walk(p.get("panels") or [])


walk(dash.get("panels") or [])
check(len(all_panels) > 0, "dashboard has %d panels (rows included)" % len(all_panels))

ids = [p.get("id") for p in all_panels]
dups = sorted({i for i in ids if ids.count(i) > 1 and i is not None})
check(all(isinstance(i, int) for i in ids) and not dups,
      "every panel has a unique integer id%s" % (" (duplicates: %s)" % dups if dups else ""))

grid_bad, rects = [], []
for p in all_panels:
    g = p.get("gridPos")
    if not isinstance(g, dict) or not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")):
        grid_bad.append(p.get("title"))
        continue
    if g["w"] < 1 or g["h"] < 1 or g["x"] < 0 or g["y"] < 0 or g["x"] + g["w"] > 24:
        grid_bad.append(p.get("title"))
        continue
    rects.append((p.get("title"), g))
check(not grid_bad, "every panel has a gridPos (h, w, x, y) within 24 columns%s"
      % (" (not: %s)" % ", ".join(map(str, grid_bad)) if grid_bad else ""))
overlaps = []
for i in range(len(rects)):
    for j in range(i + 1, len(rects)):
        (ta, a), (tb, b) = rects[i], rects[j]
        if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]:
            overlaps.append("%s / %s" % (ta, tb))
check(not overlaps, "no two panels overlap%s" % (" (%s)" % "; ".join(overlaps) if overlaps else ""))

DS_UID = "${DS_PROMETHEUS}"
exprs = 0
bad_ds = []
by_title = {}
for p in all_panels:
    if p.get("type") == "row":
        continue
    by_title[p.get("title")] = p
    if (p.get("datasource") or {}).get("uid") != DS_UID:
        bad_ds.append(p.get("title"))
    targets = p.get("targets") or []
    if not targets:
        fail("panel %r has no query" % p.get("title"))
    for t in targets:
        if (t.get("datasource") or {}).get("uid", DS_UID) != DS_UID:
            bad_ds.append(p.get("title"))
        if not t.get("expr"):
            fail("panel %r: a target without expr" % p.get("title"))
            continue
        exprs += 1
        check_expr("panel %r" % p.get("title"), t["expr"], t.get("legendFormat"))
check(not bad_ds, "every panel and target uses the ${DS_PROMETHEUS} data source%s"
      % (" (not: %s)" % ", ".join(sorted(set(map(str, bad_ds)))) if bad_ds else ""))
for v in tvars:
    q = v.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    if v.get("type") == "query" and q:
        exprs += 1
        check_expr("variable %r" % v.get("name"), re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", q))

REQUIRED_PANELS = {
    "API latency p95": ["histogram_quantile(0.95", "te_http_request_duration_seconds_bucket"],
    "API request rate by route": ["te_http_request_duration_seconds_count", "route"],
    "API 5xx error rate by route": ["te_http_request_duration_seconds_count", "5.."],
    "Kafka consumer lag": ["te_consumer_lag_records"],
    "Kafka consumer delay (time)": ["te_worker_lag_seconds"],
    "Consumer dead-letters and retries": ["te_consumer_dead_lettered_total", "te_consumer_retries_total"],
    "Outbox backlog": ["te_outbox_backlog"],
    "Reminder lateness p50 / p99": ["histogram_quantile(0.50", "histogram_quantile(0.99", "te_reminder_lateness_seconds_bucket"],
    "Reminders fired by result": ["te_reminders_fired_total", "result"],
    "Notification attempts and dead-letters": ["te_notification_attempts_total", "te_notification_dead_lettered_total"],
    "Sync connections": ["te_sync_connections"],
    "Sync messages/s by type": ["te_sync_messages_sent_total"],
    "Sync fan-out p99": ["histogram_quantile(0.99", "te_sync_fanout_seconds_bucket"],
}
for title, p, needles, missing in required_present(
        REQUIRED_PANELS, by_title, "dashboard has no panel %r",
        lambda p: " ".join(t.get("expr", "") for t in p.get("targets") or [])):
    check(not missing, "panel %r shows %s" % (title, ", ".join(needles)) + (" (missing: %s)" % ", ".join(missing) if missing else ""))

# --- the alerts ---------------------------------------------------------------------
rules_doc = load(os.path.join(src, "infrastructure/prometheus/alerts.yaml"), yaml.safe_load)
groups = (rules_doc or {}).get("groups")
check(isinstance(groups, list) and groups, "alerts.yaml has rule groups")
alerts = {}
gnames = []
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
for g in groups or []:
    gnames.append(g.get("name"))
    for r in g.get("rules") or []:
        name = r.get("alert") or r.get("record")
        where = "alert %r" % name
        if not r.get("alert"):
            if r.get("record"):
                exprs += 1
                check_expr("record %r" % name, str(r.get("expr", "")))
            else:
                fail("group %r: a rule with neither alert nor record" % g.get("name"))
            continue
        if name in alerts:
            fail("alert %s is defined twice" % name)
        alerts[name] = r
        problems = []
        if not isinstance(r.get("expr"), str) or not r["expr"].strip():
            problems.append("expr")
        if not isinstance(r.get("for"), str) or not DURATION.match(r["for"]):
            problems.append("for (a duration)")
        if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
            problems.append("labels.severity (critical, warning or info)")
        ann = r.get("annotations") or {}
        for k in ("summary", "description"):
            if not isinstance(ann.get(k), str) or not ann[k].strip():
                problems.append("annotations." + k)
        if problems:
            fail("%s lacks %s" % (where, ", ".join(problems)))
        if isinstance(r.get("expr"), str):
            exprs += 1
            check_expr(where, r["expr"])
check(len(set(gnames)) == len(gnames) and all(gnames), "rule groups have unique names")
check(alerts and all(
    isinstance(r.get("for"), str) and (r.get("labels") or {}).get("severity") and (r.get("annotations") or {}).get("summary")
    for r in alerts.values()), "every alert (%d) has for, labels.severity and annotations.summary" % len(alerts))

REQUIRED_ALERTS = {
    "TodoConsumerLagHigh": ["te_consumer_lag_records"],
    "TodoWorkerBehind": ["te_worker_lag_seconds"],
    "TodoApiHighErrorRate": ["te_http_request_duration_seconds_count", "5..", "0.01"],
    "TodoConsumerDeadLetters": ["te_consumer_dead_lettered_total"],
    "TodoNotificationDeadLetters": ["te_notification_dead_lettered_total"],
    "TodoReminderLatenessHigh": ["histogram_quantile(0.99", "te_reminder_lateness_seconds_bucket", "> 5"],
    "TodoOutboxBacklogGrowing": ["te_outbox_backlog", "deriv("],
    "TodoSyncNoConnections": ["te_sync_connections", "== 0"],
    "TodoDaemonDown": ["up{", "== 0"],
}
for name, r, _, missing in required_present(
        REQUIRED_ALERTS, alerts, "alerts.yaml has no alert %s", lambda r: str(r.get("expr"))):
    check(not missing, "alert %s (for %s, %s)" % (name, r.get("for"), r.get("labels", {}).get("severity"))
          + (" misses %s" % ", ".join(missing) if missing else ""))
for name in ("TodoConsumerLagHigh", "TodoApiHighErrorRate"):
    if name in alerts:
        check(alerts[name].get("for") == "5m", "alert %s fires after 5m (for: %s)" % (name, alerts[name].get("for")))

spath = os.path.join(src, "infrastructure/prometheus/scrape-config.yaml")
if os.path.exists(spath):
    try:
        sc = yaml.safe_load(open(spath))
        jobs = sc.get("scrape_configs") or []
        relabel = [x for j in jobs for x in (j.get("relabel_configs") or [])]
        check(any(x.get("target_label") == "job" and "__meta_kubernetes_pod_label_app_kubernetes_io_component" in (x.get("source_labels") or [])
                  for x in relabel), "scrape-config.yaml names the job after the daemon (app.kubernetes.io/component)")
    except Exception as e:  # noqa: BLE001
        fail("%s does not parse: %s" % (spath, e))

ok("%d PromQL expressions checked against %d registered metrics" % (exprs, len(metrics)))
finish("observability")
PY
