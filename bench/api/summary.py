#!/usr/bin/env python3
"""Figures of the API benchmark (bench/api/run.sh); standard library only.

  summary.py pgbench LABEL STDOUT LOGPREFIX RATE RESULTS
      reads one pgbench run (its output and its -l transaction logs) and
      appends one JSON line, with the same keys as the wrk scripts write,
      to RESULTS.
  summary.py table RESULTS INFO
      prints the final table (and writes it beside RESULTS as summary.txt,
      summary.json).
  summary.py wrk LABEL WRKJSON SAMPLES RESULTS
      one wrk run: its figures (WRKJSON, written by common.lua's done()) and
      the latency of each measured request (the SAMPLES.* files) as one
      JSON line appended to RESULTS.
  summary.py server LABEL BEFORE AFTER ROUTE METHOD RESULTS
      the latency todo-api measured itself (te_http_request_duration_seconds
      in two /metrics snapshots: the requests between them), quantiles
      interpolated in the buckets as Prometheus' histogram_quantile does;
      appended to RESULTS as LABEL with "_srv" after the measurement name.
  summary.py brief RESULTS LABEL     one line about one measurement
  summary.py rps RESULTS LABEL       its throughput, an integer
  summary.py totals FILE             the "total" of each JSON list answer in FILE

Latency of a pgbench run is taken from the per-transaction log.  With
--rate, pgbench logs each transaction's time from its scheduled start, so
the time it waited for a free client (the schedule lag) is included, as a
request to the API waits for a free worker thread; without --rate, it is
the time from the transaction's start.
"""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import (append, grab, hist_quantile, load_info, load_raw, median,  # noqa: E402
                      percentile, pgbench_tps, split_round, table_lines, write_summary)
from benchlib import main as run_command  # noqa: E402


def latency_fields(lat):
    lat = sorted(lat)
    if not lat:
        return {k: None for k in ("lat_mean_ms", "lat_p50_ms", "lat_p90_ms", "lat_p99_ms",
                                  "lat_p999_ms", "lat_max_ms")}
    return {
        "lat_mean_ms": round(sum(lat) / len(lat), 3),
        "lat_p50_ms": round(percentile(lat, 50), 3),
        "lat_p90_ms": round(percentile(lat, 90), 3),
        "lat_p99_ms": round(percentile(lat, 99), 3),
        "lat_p999_ms": round(percentile(lat, 99.9), 3),
        "lat_max_ms": round(lat[-1], 3),
    }


def cmd_wrk(label, wrkjson, samples, results):
    rec = {}
    with open(wrkjson, encoding="utf-8") as f:
        for line in f:
            if line.strip().startswith("{"):
                rec = json.loads(line)
    rec["label"] = label
    lat, statuses = [], {}
    for path in sorted(glob.glob(samples + ".*")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    lat.append(float(parts[0]))
                    statuses[parts[1]] = statuses.get(parts[1], 0) + 1
    rec.update(latency_fields(lat))
    rec["measured"] = len(lat)
    rec["statuses"] = statuses
    rec["non_2xx"] = sum(n for s, n in statuses.items() if not s.startswith("2"))
    append(results, rec)


def cmd_pgbench(label, stdout, logprefix, rate, results):
    text = open(stdout, encoding="utf-8", errors="replace").read()
    tps = pgbench_tps(text)
    processed = grab(text, r"^number of transactions actually processed: (\d+)", int, 0)
    failed = grab(text, r"^number of failed transactions: (\d+)", int, 0)
    duration = grab(text, r"^duration: (\d+) s", float, 0.0)
    lat = []
    rate = float(rate or 0)
    for path in sorted(glob.glob(logprefix + ".*")):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                # client_id transaction_no time script_no time_epoch time_us [schedule_lag]
                if len(parts) < 6 or parts[2] in ("failed", "skipped", "serialization", "deadlock"):
                    continue
                lat.append(float(parts[2]) / 1000.0)
    rec = {
        "label": label,
        "requests": processed,
        "seconds": duration,
        "rps": round(tps, 1) if tps is not None else None,
        "target_rate": rate,
        "failed": failed,
        "measured": len(lat),
    }
    rec.update(latency_fields(lat))
    append(results, rec)
    print(json.dumps(rec))


def histogram(path, route, method):
    buckets = {}
    pat = re.compile(r'^te_http_request_duration_seconds_bucket\{route="([^"]*)",method="([^"]*)",'
                     r'status="[^"]*",le="([^"]*)"\} (\S+)')
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = pat.match(line)
                if m and m.group(1) == route and m.group(2) == method:
                    le = float("inf") if m.group(3) == "+Inf" else float(m.group(3))
                    buckets[le] = buckets.get(le, 0.0) + float(m.group(4))
    except OSError:
        pass
    return buckets


def cmd_server(label, before, after, route, method, results):
    a, b = histogram(before, route, method), histogram(after, route, method)
    d = {k: v - a.get(k, 0.0) for k, v in b.items()}
    name, rnd = split_round(label)
    rec = {"label": f"{name}_srv" + (f".{rnd}" if rnd else ""),
           "requests": int(d.get(float("inf"), 0))}
    for key, q in (("lat_p50_ms", 0.5), ("lat_p90_ms", 0.9), ("lat_p99_ms", 0.99)):
        v = hist_quantile(q, d)
        rec[key] = round(v * 1000.0, 3) if v is not None else None
    append(results, rec)


def load_results(path):
    """Measurements by name: the rounds "name.1", "name.2"... merged, each
    figure the median of the rounds (error counts summed)."""
    groups = {}
    for label, rec in load_raw(path).items():
        base = split_round(label)[0]
        groups.setdefault(base, []).append(rec)
    out = {}
    for base, recs in groups.items():
        merged = {"label": base, "rounds": len(recs),
                  "rps_rounds": [r.get("rps") for r in recs]}
        keys = set().union(*(r.keys() for r in recs)) - {"label"}
        for k in keys:
            vals = [r[k] for r in recs if isinstance(r.get(k), (int, float))]
            if not vals:
                continue
            if k.startswith("errors_") or k in ("non_2xx_3xx", "non_2xx", "failed", "requests",
                                                 "measured"):
                merged[k] = sum(vals)
            elif k == "lat_max_ms":
                merged[k] = max(vals)
            else:
                merged[k] = median(vals)
        out[base] = merged
    return out


def ms(v):
    if v is None:
        return "n/a"
    return f"{v:.1f} ms" if v >= 10 else f"{v:.2f} ms"


def cmd_table(results_path, info_path):
    r = load_results(results_path)
    info = load_info(info_path)
    rows = []  # metric, api, baseline, ratio, target, met

    def get(label, key):
        rec = r.get(label)
        return None if rec is None else rec.get(key)

    def thr(name, api, base, unit_api, unit_base, target_pct=None):
        a, b = get(api, "rps"), get(base, "rps")
        ratio = (a / b) if a and b else None
        met = ""
        target = ""
        if target_pct is not None:
            target = f">= {target_pct} % of baseline"
            met = "n/a" if ratio is None else ("yes" if ratio * 100 >= target_pct else "NO")
        rows.append([name,
                     f"{a:.0f} {unit_api}" if a is not None else "n/a",
                     f"{b:.0f} {unit_base}" if b is not None else "n/a",
                     f"{ratio * 100:.0f} %" if ratio is not None else "n/a", target, met])

    def latency(name, api, base, key, target_ms=None):
        a, b = get(api, key), get(base, key)
        ratio = (a / b) if a is not None and b else None
        met = ""
        target = ""
        if target_ms is not None:
            target = f"< {target_ms} ms"
            met = "n/a" if a is None else ("yes" if a < target_ms else "NO")
        rows.append([name, ms(a), ms(b), f"{ratio:.1f}x" if ratio is not None else "n/a", target, met])

    def rate_of(label):
        v = get(label, "target_rate")
        return f"{float(v):.0f}/s" if v else "?"

    conns = info.get("conns", "?")
    for key, title, p99_target, thr_target in (
        ("create", "create (POST /api/tasks)", 10, 60),
        ("list", "list, filters (status+priority+tags, sort=due_date)", 20, None),
        ("search", "list, q=invoice search", 20, None),
    ):
        thr(f"{title}: max throughput, {conns} conns", f"{key}_max_api", f"{key}_max_pg",
            "req/s", "tps", thr_target)
        latency(f"  p50 at max throughput", f"{key}_max_api", f"{key}_max_pg", "lat_p50_ms")
        latency(f"  p99 at max throughput", f"{key}_max_api", f"{key}_max_pg", "lat_p99_ms")
        half = rate_of(f"{key}_half_api")
        latency(f"  p50 at half load ({half})", f"{key}_half_api", f"{key}_half_pg", "lat_p50_ms")
        latency(f"  p99 at half load ({half})", f"{key}_half_api", f"{key}_half_pg", "lat_p99_ms",
                p99_target)
        srv = get(f"{key}_half_api_srv", "lat_p99_ms")
        if srv is not None:
            rows.append([f"    of which inside todo-api (its histogram, p99)", "~" + ms(srv), "",
                         "", "", ""])

    headers = ["metric", "API", "baseline", "API/baseline", "target", "met"]
    lines = []
    lines.append("API benchmark: todo-api vs the same SQL through pgbench (baseline), same run")
    threads = info.get("threads", "?")
    lines.append(f"machine: {info.get('cpu', '?')}, {info.get('cores', '?')} cores, "
                 f"{info.get('mem', '?')}; build {info.get('build_type', '?')}; "
                 f"todo-api worker threads = PostgreSQL connections: {threads}")
    lines.append(f"clients: wrk -t1 -c{conns} (a fixed rate: Poisson arrivals); pgbench -j1 "
                 f"-M extended, -c{conns} at full speed, -c{threads.split()[0]} (the API's "
                 "connections) at a fixed rate, latency from the scheduled start")
    lines.append(f"each figure: median of {info.get('rounds', '?')} rounds, API and baseline "
                 f"alternating, {info.get('create_seconds', '?')} s (creates) / "
                 f"{info.get('list_seconds', '?')} s (lists) per round and side")
    lines.append(f"outbox relay on, Kafka "
                 f"{info.get('kafka', '?')}, Redis rate-limit path on (limit raised), access log "
                 "on; events of a create: task.events "
                 f"{info.get('payload_task_bytes', '?')} B + sync.events "
                 f"{info.get('payload_sync_bytes', '?')} B")
    lines.append("")
    lines.extend(table_lines(headers, rows))
    lines.append("")
    # Health of the runs.
    problems = []
    for label, rec in sorted(r.items()):
        errs = {k: v for k, v in rec.items()
                if k.startswith("errors_") or k in ("non_2xx_3xx", "non_2xx", "failed")}
        bad = {k: v for k, v in errs.items() if v}
        if bad:
            problems.append(f"{label}: " + ", ".join(f"{k}={v}" for k, v in bad.items()))
    lines.append("errors: " + ("; ".join(problems) if problems else
                               "none (no socket errors, no non-2xx answers, no failed transactions)"))
    spread = []
    for base in sorted(r):
        rr = [x for x in r[base].get("rps_rounds", []) if x is not None]
        if len(rr) > 1:
            spread.append(f"{base} {'/'.join(f'{x:.0f}' for x in rr)}")
    if spread:
        lines.append("throughput of each round (the noise of this machine): " + ", ".join(spread))
    notes = (("http_status_counts", "API answers by status (from /metrics)"),
             ("outbox_backlog_after_create", "outbox rows waiting right after the create run"),
             ("outbox_drain_seconds", "seconds until the relay had published them all"),
             ("kafka_published", "events the relay published to Kafka"),
             ("log_warn_error", "todo-api log lines at warn/error level"),
             ("kafka_outage", "WARNING: Kafka was unreachable during the run (figures disturbed)"),
             ("tasks_created", "tasks in the API's database after the create runs"),
             ("list_matches", "matches of the list / the search among the user's tasks"),
             ("loadavg_before", "load average before the run"),
             ("loadavg_after", "load average after the run"),
             ("total_seconds", "benchmark time (s)"))
    write_summary(results_path, lines, info, r, headers, rows, notes)


def cmd_brief(results, label):
    rec = load_raw(results).get(label)
    if rec is None:
        print(f"    {label}: no result")
        return
    errs = sum(v for k, v in rec.items()
               if (k.startswith("errors_") or k in ("non_2xx_3xx", "non_2xx", "failed"))
               and isinstance(v, (int, float)))
    unit = "tps" if "_pg" in label else "req/s"
    print(f"    {label}: {rec['rps']} {unit}, p50 {rec['lat_p50_ms']} ms, "
          f"p99 {rec['lat_p99_ms']} ms, errors {errs}")


def cmd_rps(results, label):
    rec = load_results(results).get(label)
    print(int(float(rec["rps"])) if rec and rec.get("rps") else 0)


def cmd_totals(path):
    totals = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    totals.append(str(json.loads(line).get("total", "?")))
                except ValueError:
                    totals.append("?")
    print(" and ".join(totals))


def main(argv):
    return run_command(argv, __doc__, {
        "pgbench": (5, cmd_pgbench), "wrk": (4, cmd_wrk), "server": (6, cmd_server),
        "brief": (2, cmd_brief), "rps": (2, cmd_rps), "totals": (1, cmd_totals),
        "table": (2, cmd_table)})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
