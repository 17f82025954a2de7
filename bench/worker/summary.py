#!/usr/bin/env python3
"""Figures of the worker benchmark (bench/worker/run.sh); standard library only.

  summary.py tag LABEL RESULTS < JSONLINE
      appends the JSON line (a wbench consume-* result) to RESULTS as LABEL.
  summary.py worker LABEL ACTIVITY T_SPAWN T_SEEN CPU_TICKS CLK_TCK M0 M1
                    OUTBOX_LEFT DRAIN_S OUTBOX_AFTER METRICS EVENTS RESULTS
      one todo-worker round of part (a): ACTIVITY is "count|first|last"
      (epoch seconds of the first and last activity row's recorded_at);
      T_SPAWN the wall-clock time the process was started; M0/M1 the
      machine's "busy total" CPU ticks at start and end.
  summary.py pgbench LABEL STDOUT RESULTS      one pgbench round
  summary.py recur SUMMARY SAMPLES WORKERLOG RECORDS METRICS_BEFORE METRICS_AFTER RESULTS
      part (b): the poller's figures, the worker's commit time of each next
      occurrence (its log line after the commit), when each completion
      event reached Kafka (RECORDS: wbench records), and the worker's own
      histogram te_worker_next_occurrence_seconds between two snapshots.
  summary.py brief RESULTS LABEL              one line about one measurement
  summary.py table RESULTS INFO               the final table (also summary.txt, summary.json)
"""
import datetime
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import (append, grab, hist_quantile, load_info, load_raw, median,  # noqa: E402
                      percentile, pgbench_tps, split_round, table_lines, write_summary)
from benchlib import main as run_command  # noqa: E402


def metric_values(path, name):
    """{labels-string: value} of one metric family in a Prometheus text file."""
    out = {}
    pat = re.compile(r"^" + re.escape(name) + r"(\{[^}]*\})? (\S+)$")
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = pat.match(line.strip())
                if m:
                    out[m.group(1) or ""] = float(m.group(2))
    except OSError:
        pass
    return out


def histogram(path, name):
    buckets, total, count = {}, 0.0, 0.0
    for labels, v in metric_values(path, name + "_bucket").items():
        m = re.search(r'le="([^"]*)"', labels)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets[le] = buckets.get(le, 0.0) + v
    total = sum(metric_values(path, name + "_sum").values())
    count = sum(metric_values(path, name + "_count").values())
    return buckets, total, count


# --- commands -------------------------------------------------------------------

def cmd_tag(label, results):
    rec = None
    for line in sys.stdin:
        if line.strip().startswith("{"):
            rec = json.loads(line)
    if rec is None:
        sys.exit("summary.py tag: no JSON line on stdin")
    rec["label"] = label
    append(results, rec)


def cmd_worker(label, activity, t_spawn, t_seen, cpu_ticks, clk_tck, m0, m1, outbox_left, drain_s,
               outbox_after, metrics, events, results):
    parts = open(activity, encoding="utf-8").read().strip().split("|")
    count = int(parts[0]) if parts and parts[0] else 0
    first = float(parts[1]) if len(parts) > 1 and parts[1] else None
    last = float(parts[2]) if len(parts) > 2 and parts[2] else None
    t_spawn, t_seen = float(t_spawn), float(t_seen)
    b0, tot0 = (float(x) for x in m0.split())
    b1, tot1 = (float(x) for x in m1.split())
    cpu_s = float(cpu_ticks) / float(clk_tck)
    ev = metric_values(metrics, "te_worker_events_total")
    by_result = {}
    for labels, v in ev.items():
        m = re.search(r'result="([^"]*)"', labels)
        if m:
            by_result[m.group(1)] = by_result.get(m.group(1), 0) + int(v)
    cons = {k: int(sum(metric_values(metrics, "te_consumer_" + k + "_total").values()))
            for k in ("received", "handled", "retries", "dead_lettered", "poison")}
    rec = {
        "label": label, "kind": "todo-worker", "records": count, "expected": int(events),
        "t_start": t_spawn, "t_first": first, "t_last": last,
        "steady_rate": round((count - 1) / (last - first), 1) if first and last and last > first else None,
        "e2e_rate": round(count / (last - t_spawn), 1) if last and last > t_spawn else None,
        "startup_s": round(first - t_spawn, 3) if first else None,
        "cpu_s": round(cpu_s, 3),
        "cpu_us_per_event": round(cpu_s / count * 1e6, 1) if count else None,
        "machine_busy_pct": round(100.0 * (b1 - b0) / (tot1 - tot0), 1) if tot1 > tot0 else None,
        "outbox_left_at_end": outbox_left, "outbox_drain_s": int(drain_s),
        "outbox_after_drain": outbox_after,
        "events_by_result": by_result, "consumer": cons,
        "published": int(sum(metric_values(metrics, "te_outbox_published_total").values())),
        "seen_after_s": round(t_seen - t_spawn, 2),
    }
    append(results, rec)


def cmd_pgbench(label, stdout, results):
    text = open(stdout, encoding="utf-8", errors="replace").read()
    rec = {"label": label, "kind": "pgbench", "steady_rate": pgbench_tps(text),
           "records": grab(text, r"^number of transactions actually processed: (\d+)", int),
           "failed": grab(text, r"^number of failed transactions: (\d+)", int) or 0,
           "lat_avg_ms": grab(text, r"^latency average = ([0-9.]+) ms")}
    append(results, rec)


def parse_ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def cmd_recur(summary, samples, worker_log, records, before, after, results):
    summ = {}
    with open(summary, encoding="utf-8") as f:
        for line in f:
            if line.strip().startswith("{"):
                summ = json.loads(line)
    commits = {}
    pat = re.compile(r"next occurrence created for task ([0-9a-f-]{36})")
    with open(worker_log, encoding="utf-8", errors="replace") as f:
        for line in f:
            if "next occurrence created" not in line:
                continue
            try:
                o = json.loads(line)
            except ValueError:
                continue
            m = pat.search(o.get("msg", ""))
            if m:
                commits[m.group(1)] = parse_ts(o["ts"])
    kafka_at = {}  # task id of a completion -> its record's timestamp (s)
    try:
        with open(records, encoding="utf-8") as f:
            for line in f:
                p = line.split()
                if len(p) == 7 and p[5] == "com.todo.task.completed":
                    kafka_at.setdefault(p[6], int(p[0]) / 1000.0)
    except OSError:
        pass
    relay_ms, consume_ms = [], []
    commit_ms, gap_ms, n = [], [], 0
    with open(samples, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            s = json.loads(line)
            n += 1
            c = commits.get(s["task_id"])
            k = kafka_at.get(s["task_id"])
            if k is not None:
                relay_ms.append((k - s["t_resp_wall"]) * 1000.0)
                if c is not None:
                    consume_ms.append((c - k) * 1000.0)
            if c is None:
                continue
            commit_ms.append((c - s["t_resp_wall"]) * 1000.0)
            if s.get("visible_wall"):
                gap_ms.append((s["visible_wall"] - c) * 1000.0)
    b0, s0, c0 = histogram(before, "te_worker_next_occurrence_seconds")
    b1, s1, c1 = histogram(after, "te_worker_next_occurrence_seconds")
    d = {k: v - b0.get(k, 0.0) for k, v in b1.items()}
    dc = c1 - c0
    rec = dict(summ)
    rec.update({
        "label": "recur", "kind": "recur",
        "commit_logged": len(commit_ms),
        "commit_p50_ms": percentile(commit_ms, 50), "commit_p99_ms": percentile(commit_ms, 99),
        "commit_max_ms": max(commit_ms) if commit_ms else None,
        "kafka_seen": len(relay_ms),
        "relay_p50_ms": percentile(relay_ms, 50), "relay_p99_ms": percentile(relay_ms, 99),
        "relay_max_ms": max(relay_ms) if relay_ms else None,
        "relay_over_40ms": sum(1 for v in relay_ms if v > 40),
        "consume_p50_ms": percentile(consume_ms, 50), "consume_p99_ms": percentile(consume_ms, 99),
        "consume_max_ms": max(consume_ms) if consume_ms else None,
        "visible_after_commit_p50_ms": percentile(gap_ms, 50),
        "visible_after_commit_p99_ms": percentile(gap_ms, 99),
        "hist_count": int(dc),
        "hist_mean_ms": (s1 - s0) / dc * 1000.0 if dc > 0 else None,
        "hist_p50_ms": (hist_quantile(0.5, d) or 0) * 1000.0 if dc > 0 else None,
        "hist_p99_ms": (hist_quantile(0.99, d) or 0) * 1000.0 if dc > 0 else None,
        "hist_buckets": {("+Inf" if k == float("inf") else f"{k:g}"): int(v) for k, v in sorted(d.items())},
    })
    append(results, rec)


def cmd_brief(results, label):
    rec = load_raw(results).get(label)
    if rec is None:
        print(f"    {label}: no result")
        return
    extra = ""
    if rec.get("kind") == "todo-worker":
        extra = (f", from start {rec.get('e2e_rate')}/s, start-up {rec.get('startup_s')} s, "
                 f"CPU {rec.get('cpu_us_per_event')} us/event, machine busy {rec.get('machine_busy_pct')} %, "
                 f"outbox left {rec.get('outbox_left_at_end')}, results {rec.get('events_by_result')}")
    elif rec.get("kind") == "pgbench":
        extra = f", failed {rec.get('failed')}, latency avg {rec.get('lat_avg_ms')} ms"
    else:
        extra = f", from start {rec.get('e2e_rate')}/s"
    print(f"    {label}: {rec.get('records')} records, {rec.get('steady_rate')}/s (first to last){extra}")


def ms(v):
    if v is None:
        return "n/a"
    if v >= 1000:
        return f"{v / 1000:.2f} s"
    return f"{v:.1f} ms" if v >= 10 else f"{v:.2f} ms"


def rate(v, unit="ev/s"):
    return "n/a" if v is None else f"{v:,.0f} {unit}".replace(",", " ")


def cmd_table(results_path, info_path):
    raw = load_raw(results_path)
    info = load_info(info_path)
    groups = {}
    for label, rec in raw.items():
        base, rnd = split_round(label)
        if rnd:
            groups.setdefault(base, []).append(rec)

    def med(base, key):
        return median([r.get(key) for r in groups.get(base, []) if isinstance(r.get(key), (int, float))])

    def rounds(base, key):
        return "/".join("n/a" if r.get(key) is None else f"{r[key]:.0f}" for r in groups.get(base, []))

    rows = []
    w, raw_r, lib_r, pg_r = (med("worker", "steady_rate"), med("raw", "steady_rate"),
                             med("lib", "steady_rate"), med("pgbench", "steady_rate"))

    def ratio(a, b):
        return f"{a / b * 100:.1f} %" if a and b else "n/a"

    n = info.get("events", "?")
    rows.append([f"(a) activity ingestion, {n} task.created events, events/s (first to last record): "
                 "vs a bare librdkafka consumer",
                 rate(w), rate(raw_r, "msg/s"), ratio(w, raw_r), "", ""])
    rows.append(["  vs the library's consumer (te_consumer) with a no-op handler", rate(w),
                 rate(lib_r, "msg/s"), ratio(w, lib_r), "", ""])
    rows.append(["  vs the worker's SQL alone, 1 connection (pgbench)", rate(w),
                 rate(pg_r, "tps"), ratio(w, pg_r), "", ""])
    we, re_ = med("worker", "e2e_rate"), med("raw", "e2e_rate")
    rows.append(["  counted from process start (migrations, group join, first fetch)", rate(we),
                 rate(re_, "msg/s"), ratio(we, re_), "", ""])
    rows.append(["  time per event", f"{1e6 / w:.0f} us" if w else "n/a",
                 f"{1e6 / raw_r:.2f} us" if raw_r else "n/a", "", "", ""])
    wc = med("worker", "cpu_us_per_event")
    rc = med("raw", "cpu_s")
    rn = med("raw", "records")
    rows.append(["  process CPU per event (todo-worker: its relay included)",
                 f"{wc:.0f} us" if wc is not None else "n/a",
                 f"{rc / rn * 1e6:.2f} us" if rc is not None and rn else "n/a", "", "", ""])
    rec = raw.get("recur", {})
    k = info.get("tasks", "?")
    rt = info.get("rate", "?")
    p99 = rec.get("vis_p99_ms")
    mx = rec.get("vis_max_ms")
    rows.append([f"(b) completion -> next occurrence visible (GET /api/tasks), {k} at {rt}/s: p50",
                 ms(rec.get("vis_p50_ms")), "", "", "", ""])
    rows.append(["  p99", ms(p99), "", "", "< 200 ms",
                 "n/a" if p99 is None else ("yes" if p99 < 200 else "NO")])
    rows.append(["  max", ms(mx), "", "", "< 5 s (seed)",
                 "n/a" if mx is None else ("yes" if mx < 5000 and not rec.get("not_visible_after_30s") else "NO")])
    rows.append(["  completion response -> next occurrence committed (worker log), p50 / p99",
                 f"{ms(rec.get('commit_p50_ms'))} / {ms(rec.get('commit_p99_ms'))}", "", "", "", ""])
    rows.append(["    of which response -> completion event in Kafka (outbox relay; < 0: before the answer), p50 / p99",
                 f"{ms(rec.get('relay_p50_ms'))} / {ms(rec.get('relay_p99_ms'))}", "", "", "", ""])
    rows.append(["    of which Kafka -> next occurrence committed (consumer, worker), p50 / p99",
                 f"{ms(rec.get('consume_p50_ms'))} / {ms(rec.get('consume_p99_ms'))}", "", "", "", ""])
    rows.append(["  worker histogram te_worker_next_occurrence_seconds (event time -> commit), p50 / p99",
                 f"~{ms(rec.get('hist_p50_ms'))} / ~{ms(rec.get('hist_p99_ms'))}", "", "", "", ""])
    rows.append(["  POST /api/tasks/{id}/complete (client side), p50 / p99",
                 f"{ms(rec.get('complete_p50_ms'))} / {ms(rec.get('complete_p99_ms'))}", "", "", "", ""])

    headers = ["metric", "todo-worker", "baseline", "worker/baseline", "target", "met"]
    prod = json.loads(info.get("produce", "{}") or "{}")
    lines = ["Worker benchmark: todo-worker vs bare consumers of the same records, and the worker's SQL "
             "through pgbench (baselines), same run",
             f"machine: {info.get('cpu', '?')}, {info.get('cores', '?')} cores, {info.get('mem', '?')}; "
             f"build {info.get('build_type', '?')}; Kafka {info.get('kafka', '?')}",
             f"(a) {n} com.todo.task.created events ({info.get('event_bytes', '?')} B, "
             f"{info.get('users', '?')} users = keys) produced to task.events at "
             f"{rate(prod.get('rate'), 'msg/s')} after its end offsets were recorded; every consumer in a "
             "new group committed at those offsets;",
             f"    records in that range: {info.get('range_records', '?')} (from other producers: "
             f"{info.get('foreign_records', '?')}); todo-worker on a fresh database each round (migrated at "
             f"start), relay {'off' if info.get('relay') == '0' else 'on'}; each figure: median of "
             f"{info.get('rounds', '?')} rounds (raw, library, worker, pgbench {info.get('pg_seconds', '?')} s "
             "alternating)",
             f"(b) todo-api (relay on) + the last round's todo-worker on one database; {k} users with one "
             f"recurring task each (FREQ=DAILY, UTC), completed one at a time at {rt}/s; visible = the "
             f"user's GET /api/tasks?status=pending answers the next occurrence (polled every "
             f"{info.get('poll_ms', '?')} ms, time of the answer)",
             ""]
    lines.extend(table_lines(headers, rows))
    lines.append("")
    # Health and per-round figures.
    problems = []
    foreign = []
    for r in groups.get("worker", []):
        # retry and failed are errors.  ignored (not com.todo.task.*) and
        # duplicate (an event id seen before) come from other producers'
        # records after the range (the API tests publish such on purpose):
        # each of the range's events has its own id, and the activity row
        # count above checks those.
        by = r.get("events_by_result") or {}
        bad = {k2: v for k2, v in by.items() if k2 in ("retry", "failed") and v}
        if r.get("records") != r.get("expected"):
            problems.append(f"{r['label']}: {r.get('records')} of {r.get('expected')} activity rows")
        if bad:
            problems.append(f"{r['label']}: events {bad}")
        c = r.get("consumer") or {}
        if c.get("retries"):
            problems.append(f"{r['label']}: {c.get('retries')} handler retries")
        # Records after the range (other producers, while the round ran) are
        # handled too; invalid ones among them are dead-lettered.
        extra = (c.get("received") or 0) - int(r.get("expected") or 0)
        foreign.append(f"{r['label']} {extra} (poison {c.get('poison')}, dead-lettered "
                       f"{c.get('dead_lettered')}, ignored {by.get('ignored', 0)}, "
                       f"duplicate {by.get('duplicate', 0)})")
    for r in groups.get("pgbench", []):
        if r.get("failed"):
            problems.append(f"{r['label']}: {r['failed']} failed transactions")
    if rec:
        for key, text in (("complete_errors", "complete calls not 200"),
                          ("not_visible_after_30s", "next occurrences not visible after 30 s"),
                          ("wrong_next", "next occurrences with wrong series/occurrence/due"),
                          ("poll_errors", "poll errors")):
            if rec.get(key):
                problems.append(f"(b): {rec[key]} {text}")
        if rec.get("commit_logged", 0) < rec.get("visible", 0):
            problems.append(f"(b): only {rec.get('commit_logged')} worker log lines for "
                            f"{rec.get('visible')} next occurrences")
    lines.append("errors: " + ("; ".join(problems) if problems else
                               "none (every activity row, no retries, no failed transactions, "
                               "every next occurrence right)"))
    if foreign:
        lines.append("records after the range (other producers, during the round) the worker handled too: "
                     + ", ".join(foreign))
    lines.append("events/s of each round (first to last record): " + ", ".join(
        f"{b} {rounds(b, 'steady_rate')}" for b in ("worker", "raw", "lib", "pgbench") if b in groups))
    lines.append("todo-worker per round: start-up (s, process start to the first activity row) " +
                 rounds_f(groups, "worker", "startup_s", 2) + "; machine CPU busy during the round (%) " +
                 rounds_f(groups, "worker", "machine_busy_pct", 0) + "; activity events left in the outbox "
                 "when the last row was written " + "/".join(str(r.get("outbox_left_at_end"))
                                                          for r in groups.get("worker", [])) +
                 ", seconds until the relay had published them " +
                 "/".join(str(r.get("outbox_drain_s")) for r in groups.get("worker", [])))
    if rec:
        lines.append(f"(b) poller: {rec.get('polls')} polls ({rec.get('polls_per_task')} per completion); "
                     f"completion rate {rec.get('rate_actual')}/s; next occurrence visible after the "
                     f"worker's commit log line: p50 {ms(rec.get('visible_after_commit_p50_ms'))}, p99 "
                     f"{ms(rec.get('visible_after_commit_p99_ms'))} (the poll's resolution)")
        lines.append(f"(b) completion events seen in Kafka: {rec.get('kafka_seen')} of {rec.get('completed')}; "
                     f"response -> in Kafka max {ms(rec.get('relay_max_ms'))} ({rec.get('relay_over_40ms')} "
                     f"over 40 ms); Kafka -> committed max {ms(rec.get('consume_max_ms'))} (the record "
                     "timestamps are the relay producer's clock, ms: the split is good to ~1 ms)")
        hb = rec.get("hist_buckets") or {}
        lines.append(f"(b) te_worker_next_occurrence_seconds over the completions: count {rec.get('hist_count')}, "
                     f"mean {ms(rec.get('hist_mean_ms'))}, cumulative buckets (s): " +
                     " ".join(f"{k2}:{v}" for k2, v in hb.items()))
    notes = (("others_settle", "(a) wait for the other consumers of task.events to read the range"),
             ("relay", "(a) todo-worker's outbox relay (TE_OUTBOX_RELAY)"),
             ("unpublished_activity_events_dropped", "(a) activity events left unpublished (relay off) and deleted before (b)"),
             ("rec_created_recorded_seconds", "(b) seconds until the creations were in the activity log"),
             ("rec_next_in_db", "(b) next occurrences in the database"),
             ("relay_active", "(b) outbox relay active (te_outbox_relay_active)"),
             ("log_warn_error", "daemon log lines at warn/error level"),
             ("kafka_outage", "WARNING: Kafka was unreachable during the run (figures disturbed)"),
             ("loadavg_before", "load average before the run"),
             ("loadavg_after", "load average after the run"),
             ("total_seconds", "benchmark time (s)"))
    write_summary(results_path, lines, info, raw, headers, rows, notes)


def rounds_f(groups, base, key, digits):
    return "/".join("n/a" if r.get(key) is None else f"{r[key]:.{digits}f}" for r in groups.get(base, []))


def main(argv):
    return run_command(argv, __doc__, {
        "tag": (2, cmd_tag), "worker": (14, cmd_worker), "pgbench": (3, cmd_pgbench),
        "recur": (7, cmd_recur), "brief": (2, cmd_brief), "table": (2, cmd_table)})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
