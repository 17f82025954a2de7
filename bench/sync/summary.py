#!/usr/bin/env python3
"""Figures of the sync benchmark (bench/sync/run.sh); standard library only.

  summary.py snap OUT SYNC_PID API_PID DB SYNC_URL MARK
      sbench's hook, at each mark of its scenario: OUT/snap-MARK.json with
      the memory of todo-sync and of sbench (SBENCH_PID in the environment:
      /proc status and smaps_rollup), the CPU ticks by process (todo-sync,
      todo-api, sbench, the PostgreSQL backends of DB, other PostgreSQL,
      Kafka, Redis, other todo-* daemons) and by thread of todo-sync and
      sbench, the machine's busy/total ticks, /proc/net/sockstat; and
      OUT/metrics-MARK.txt (todo-sync's /metrics).  At the mark "end", also
      OUT/threads-sync.txt: gdb's backtraces of todo-sync's threads (which
      thread is which).
  summary.py results OUT RESULTS
      the figures from OUT's files (sbench.jsonl, snap-*.json, metrics-*.txt,
      connect-*.tsv, gen-*.tsv, ws-*.tsv, changes-*.tsv, kafka-*.tsv) as
      JSON lines appended to RESULTS: memory, ramp-*, part-*.
  summary.py table RESULTS INFO     the final table (also summary.txt, summary.json)
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import (append, hist_quantile, load_info, load_raw, percentile, read_tsv, table_lines,  # noqa: E402
                      write_summary)
from benchlib import main as run_command  # noqa: E402


# --- snapshots -----------------------------------------------------------------------

def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def proc_ticks(path):
    """utime + stime of /proc/PID/stat or /proc/PID/task/TID/stat."""
    try:
        p = read_text(path).rsplit(")", 1)[1].split()
        return int(p[11]) + int(p[12])
    except (IndexError, ValueError):
        return 0


def kb_fields(text, names):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k in names:
            out[k] = int(v.split()[0])
    return out


def memory(pid):
    """VmRSS, RssAnon, VmHWM (status) and Rss, Pss, Anonymous (smaps_rollup), kB."""
    if not pid:
        return {}
    m = kb_fields(read_text(f"/proc/{pid}/status"), ("VmRSS", "RssAnon", "RssFile", "VmHWM", "Threads"))
    m.update(kb_fields(read_text(f"/proc/{pid}/smaps_rollup"), ("Rss", "Pss", "Anonymous")))
    return m


def threads(pid):
    """{tid: [comm, ticks, on-CPU ns, run-queue wait ns]} of a process
    (/proc/.../stat and schedstat)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        sched = (read_text(f"/proc/{pid}/task/{tid}/schedstat").split() + ["0", "0"])[:2]
        out[tid] = [read_text(f"/proc/{pid}/task/{tid}/comm").strip(), proc_ticks(f"/proc/{pid}/task/{tid}/stat"),
                    int(sched[0]), int(sched[1])]
    return out


def backends(db):
    """pg_stat_activity of db: [[pid, state, query]] (psql and the admin URL
    from SB_PSQL / SB_PGURL; [] without them)."""
    psql, url = os.environ.get("SB_PSQL"), os.environ.get("SB_PGURL")
    if not psql or not url:
        return []
    sql = ("COPY (SELECT pid, state, regexp_replace(left(query, 120), '\\s+', ' ', 'g') FROM pg_stat_activity "
           f"WHERE datname = '{db}') TO STDOUT")
    try:
        r = subprocess.run([psql, url, "-X", "-q", "-A", "-t", "-c", sql], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split("\t") for line in r.stdout.splitlines() if line.count("\t") >= 2]


def cmd_snap(out, sync_pid, api_pid, db, url, mark):
    t = time.time()
    sb_pid = os.environ.get("SBENCH_PID", "")
    own = {"sync": sync_pid, "api": api_pid, "sbench": sb_pid}
    procs = {k: {} for k in ("sync", "api", "sbench", "pg_ours", "pg_other", "kafka", "redis", "todo_other")}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        kind = next((k for k, v in own.items() if v == pid), None)
        if not kind:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if cmd.startswith("postgres: "):
                kind = "pg_ours" if f" {db} " in cmd else "pg_other"
            elif "kafka.Kafka" in cmd:
                kind = "kafka"
            elif cmd.startswith("redis-server"):
                kind = "redis"
            elif re.search(r"(^|/)todo-(api|worker|reminder|sync)( |$)", cmd.split(" ")[0] + " "):
                kind = "todo_other"
        if kind:
            procs[kind][pid] = proc_ticks(f"/proc/{pid}/stat")
    snap = {"mark": mark, "time": t, "procs": procs, "clk_tck": os.sysconf("SC_CLK_TCK"),
            "mem_sync": memory(sync_pid), "mem_sbench": memory(sb_pid),
            "threads_sync": threads(sync_pid), "threads_sbench": threads(sb_pid) if sb_pid else {}}
    for line in read_text("/proc/stat").splitlines():
        if line.startswith("cpu "):
            v = [int(x) for x in line.split()[1:]]
            snap["machine_busy"] = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
            snap["machine_total"] = sum(v[:8])
    snap["sockstat"] = read_text("/proc/net/sockstat")
    if mark.endswith("-end"):
        snap["backends"] = backends(db)
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
            metrics = r.read().decode("utf-8", "replace")
    except OSError as e:
        metrics = f"# unavailable: {e}\n"
    with open(os.path.join(out, f"metrics-{mark}.txt"), "w", encoding="utf-8") as f:
        f.write(metrics)
    with open(os.path.join(out, f"snap-{mark}.json"), "w", encoding="utf-8") as f:
        json.dump(snap, f)
    if mark == "end":
        # which thread is which: gdb's backtraces (the process stops for a moment; nothing is measured now)
        try:
            r = subprocess.run(["gdb", "-q", "-batch", "-p", sync_pid, "-ex", "thread apply all bt 30"],
                               capture_output=True, text=True, timeout=60)
            bt = r.stdout
        except (OSError, subprocess.SubprocessError) as e:
            bt = f"gdb unavailable: {e}\n"
        with open(os.path.join(out, "threads-sync.txt"), "w", encoding="utf-8") as f:
            f.write(bt)


# --- inputs ----------------------------------------------------------------------------

def load_snap(out, mark):
    try:
        with open(os.path.join(out, f"snap-{mark}.json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def metric_values(text, name):
    out = {}
    pat = re.compile(r"^" + re.escape(name) + r"(\{[^}]*\})? (\S+)$")
    for line in text.splitlines():
        m = pat.match(line.strip())
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


def hist_delta(before, after, name):
    """(cumulative buckets {le: count}, sum, count) of a histogram between two /metrics texts."""
    def read(text):
        b = {}
        for labels, v in metric_values(text, name + "_bucket").items():
            m = re.search(r'le="([^"]*)"', labels)
            if m:
                b[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = v
        return (b, sum(metric_values(text, name + "_sum").values()),
                sum(metric_values(text, name + "_count").values()))
    bb, bs, bc = read(before)
    ab, as_, ac = read(after)
    return {k: v - bb.get(k, 0.0) for k, v in ab.items()}, as_ - bs, ac - bc


def counter_delta(before, after, name):
    b, a = metric_values(before, name), metric_values(after, name)
    return {k: int(v - b.get(k, 0.0)) for k, v in sorted(a.items()) if v - b.get(k, 0.0)}


def stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return {"n": 0, "p50": None, "p99": None, "max": None, "min": None, "mean": None}
    vals.sort()
    return {"n": len(vals), "p50": percentile(vals, 50), "p99": percentile(vals, 99), "p999": percentile(vals, 99.9),
            "max": vals[-1], "min": vals[0], "mean": sum(vals) / len(vals)}


# --- CPU -------------------------------------------------------------------------------

CPU_KINDS = ("sync", "api", "pg_ours", "pg_other", "kafka", "redis", "sbench", "todo_other")


def sync_thread_roles(bt_text):
    """{tid: role} from gdb's backtraces of todo-sync."""
    roles = {}
    for block in re.split(r"\n(?=Thread \d+ )", bt_text):
        m = re.search(r"\(LWP (\d+)\)", block)
        if not m:
            continue
        tid = m.group(1)
        if "server_run" in block or "lws_service" in block:
            roles[tid] = "service thread (libwebsockets: sessions, fan-out, writes)"
        elif "consumer_main" in block or "te_consumer_run" in block:
            roles[tid] = "consumer thread (te_consumer: events -> messages)"
        elif "catchup_main" in block:
            roles[tid] = "catch-up thread (PostgreSQL reads)"
        elif re.search(r"\bmain \(", block) or "sigwait" in block:
            roles[tid] = "main"
    return roles


def cpu_delta(b, a, roles):
    """CPU seconds by component between two snapshots (processes alive at
    the second; those that ended in between are in "rest"), and by thread
    of todo-sync and sbench."""
    t = float(a.get("clk_tck") or 100)
    d = {}
    for k in CPU_KINDS:
        pa, pb = a["procs"].get(k, {}), b["procs"].get(k, {})
        d[k] = sum(v - pb.get(pid, 0) for pid, v in pa.items()) / t
    d["pg_ours_procs"] = len(a["procs"].get("pg_ours", {}))
    d["machine_busy"] = (a["machine_busy"] - b["machine_busy"]) / t
    d["machine_total"] = (a["machine_total"] - b["machine_total"]) / t
    d["rest"] = d["machine_busy"] - sum(d[k] for k in CPU_KINDS)
    d["wall"] = a["time"] - b["time"]

    def by_thread(key, label):
        """{name: [CPU s, run-queue wait s]}"""
        out = {}
        tb = b.get(key) or {}
        for tid, v in (a.get(key) or {}).items():
            comm, ticks = v[0], v[1]
            w = (tb.get(tid) or [None, 0, 0, 0])
            name = label(tid, comm)
            cur = out.setdefault(name, [0.0, 0.0])
            cur[0] += (ticks - w[1]) / t
            if len(v) >= 4 and len(w) >= 4:
                cur[1] += (v[3] - w[3]) / 1e9
        return {k: [round(x, 2) for x in v] for k, v in sorted(out.items(), key=lambda x: -x[1][0])}

    d["sync_threads"] = by_thread("threads_sync", lambda tid, comm: "librdkafka (rdk:*)" if comm.startswith("rdk:")
                                  else roles.get(tid, f"other ({comm})"))
    d["sbench_threads"] = by_thread("threads_sbench", lambda tid, comm: "librdkafka (rdk:*)"
                                    if comm.startswith("rdk:") else comm)
    # the PostgreSQL backends of the bench database, by role (their last query at the end)
    pb = b["procs"].get("pg_ours", {})
    roles = {}
    for pid, state, query in (a.get("backends") or []):
        r = backend_role(query)
        cur = roles.setdefault(r, [0, 0.0])
        cur[0] += 1
        cur[1] += (a["procs"].get("pg_ours", {}).get(pid, 0) - pb.get(pid, 0)) / t
    d["pg_roles"] = {k: [v[0], round(v[1], 2)] for k, v in sorted(roles.items(), key=lambda x: -x[1][1])}
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in d.items()}


def backend_role(query):
    """Which connection of the bench's database ran this last query."""
    q = query.lower()
    if "outbox" in q or q.startswith("listen") or "pg_try_advisory_lock" in q:
        return "todo-api outbox relay"
    if "pruned_seq" in q or "from changes" in q:
        return "todo-sync catch-up"
    if q.startswith("select 1"):
        return "idle pool / health (SELECT 1)"
    return "todo-api request workers"


# --- results -----------------------------------------------------------------------------

def mem_result(out, sb):
    snaps = {m: load_snap(out, m) for m in ("start", "idle-small", "idle-large", "closed", "end")}
    s0 = snaps["start"]
    if not s0:
        return None
    n_small = (sb.get("ramp-small") or {}).get("ready")
    n_large = (sb.get("ramp-large") or {}).get("ready")
    rec = {"label": "memory", "n_small": n_small, "n_large": (n_small or 0) + (n_large or 0) if n_large else None}
    for m, s in snaps.items():
        if s:
            rec[f"sync_{m}"] = s.get("mem_sync")
            rec[f"sbench_{m}"] = s.get("mem_sbench")
            rec[f"sockstat_{m}"] = s.get("sockstat")

    def per(who, mark, n, field="VmRSS"):
        a, b = (snaps.get(mark) or {}).get(f"mem_{who}") or {}, s0.get(f"mem_{who}") or {}
        if not n or field not in a or field not in b:
            return None
        return (a[field] - b[field]) / n  # kB per session

    for who in ("sync", "sbench"):
        rec[f"{who}_per_small_kb"] = per(who, "idle-small", n_small)
        rec[f"{who}_per_large_kb"] = per(who, "idle-large", rec["n_large"])
        rec[f"{who}_anon_per_small_kb"] = per(who, "idle-small", n_small, "RssAnon")
        rec[f"{who}_anon_per_large_kb"] = per(who, "idle-large", rec["n_large"], "RssAnon")
    # the kernel's TCP memory (pages; both ends of every connection are on this machine)
    def tcp_pages(s):
        m = re.search(r"^TCP:.* mem (\d+)", (s or {}).get("sockstat", ""), re.M)
        return int(m.group(1)) if m else None
    a, b = tcp_pages(snaps.get("idle-large") or snaps.get("idle-small")), tcp_pages(s0)
    n = rec["n_large"] or n_small
    if a is not None and b is not None and n:
        rec["kernel_tcp_kb_per_connection_end"] = (a - b) * 4096 / 1024 / (2 * n)
    return rec


def ramp_result(out, name, sb):
    r = sb.get(f"ramp-{name}")
    if not r:
        return None
    rows = read_tsv(os.path.join(out, f"connect-{name}.tsv"), 6)
    est = [(int(p[3]) - int(p[2])) / 1000.0 for p in rows if int(p[3]) > 0]
    hello = [(int(p[4]) - int(p[2])) / 1000.0 for p in rows if int(p[4]) > 0]
    first = min((int(p[2]) for p in rows), default=0)
    last = max((int(p[4]) for p in rows if int(p[4]) > 0), default=0)
    return {"label": f"ramp-{name}", "sessions": r["sessions"], "ready": r["ready"], "seconds": r["seconds"],
            "client_loop": r.get("client_loop"),
            "per_s": r["ready"] / ((last - first) / 1e6) if last > first else None,
            "connect_ms": stats(est), "hello_ms": stats(hello)}


def part_result(out, part, sb, roles):
    meta = sb.get(f"part-{part}")
    if not meta:
        return None
    w0, w1 = meta["window_start_us"], meta["window_end_us"]
    sessions_per_user = None
    # the generator's requests
    gen = read_tsv(os.path.join(out, f"gen-{part}.tsv"), 8)
    req = {}          # (user, task, version) -> (sent, done)
    in_window = []    # ok requests sent in the window
    api_ms, lag_ms, bad = [], [], {}
    for p in gen:
        user, op, task, ver, sched, sent, done, status = p[0], p[1], p[2], int(p[3]), int(p[4]), int(p[5]), \
            int(p[6]), int(p[7])
        ok = 200 <= status < 300
        if not ok:
            bad[str(status)] = bad.get(str(status), 0) + 1
            continue
        req[(user, task, ver)] = (sent, done)
        if w0 <= sent < w1:
            in_window.append((user, task, ver))
            api_ms.append((done - sent) / 1000.0)
            lag_ms.append((sent - sched) / 1000.0)
    win = set(in_window)
    # (user, seq) -> (task, version): from the first WebSocket copy and from the baseline
    change = {}
    at_us = {}
    for p in read_tsv(os.path.join(out, f"changes-{part}.tsv"), 6):
        change[(p[0], p[1])] = (p[3], int(p[4]))
        at_us[(p[0], p[1])] = int(p[5])
    kafka = {}  # (user, task, version) -> (recv_us, ts_ms)
    mismatch = 0
    for p in read_tsv(os.path.join(out, f"kafka-{part}.tsv"), 6):
        key = (p[0], p[2], int(p[3]))
        if (p[0], p[1]) in change and change[(p[0], p[1])] != (p[2], int(p[3])):
            mismatch += 1
        change.setdefault((p[0], p[1]), (p[2], int(p[3])))
        if key not in kafka:
            kafka[key] = (int(p[4]), int(p[5]))
    # every WebSocket message of a change made in the window
    lat, lat_upper, lat_at, added = [], [], [], []
    first_recv, last_recv, got = {}, {}, {}
    unmatched = 0
    sessions = set()
    for p in read_tsv(os.path.join(out, f"ws-{part}.tsv"), 4):
        us = (p[1], p[2])
        c = change.get(us)
        if not c:
            unmatched += 1
            continue
        key = (p[1], c[0], c[1])
        if key not in win:
            continue
        sent, done = req[key]
        t = int(p[3])
        sessions.add(p[0])
        lat.append((t - done) / 1000.0)
        lat_upper.append((t - sent) / 1000.0)
        if at_us.get(us):
            lat_at.append((t - at_us[us]) / 1000.0)
        if key in kafka:
            added.append((t - kafka[key][0]) / 1000.0)
        got[key] = got.get(key, 0) + 1
        first_recv[key] = min(first_recv.get(key, t), t)
        last_recv[key] = max(last_recv.get(key, 0), t)
    n_users = meta["users"]
    sessions_per_user = meta["sessions"] // n_users if n_users else None
    expected = len(in_window) * (sessions_per_user or 0)
    received = sum(got.values())
    fanout_done = [(last_recv[k] - req[k][1]) / 1000.0 for k in last_recv]
    fanout_spread = [(last_recv[k] - first_recv[k]) / 1000.0 for k in last_recv]
    # the baseline: the same changes through Kafka to a te_consumer
    base, relay, kafka_hop = [], [], []
    for k in in_window:
        if k in kafka:
            recv, ts_ms = kafka[k]
            sent, done = req[k]
            base.append((recv - done) / 1000.0)
            if ts_ms > 0:
                relay.append(ts_ms - done / 1000.0)
                kafka_hop.append(recv / 1000.0 - ts_ms)
    sync_after_base = [(first_recv[k] - kafka[k][0]) / 1000.0 for k in first_recv if k in kafka]
    rec = {"label": f"part-{part}", "users": n_users, "sessions": meta["sessions"], "rate": meta["rate"],
           "seconds": meta["seconds"], "warmup": meta["warmup"], "requests": meta["requests"],
           "requests_failed": bad, "changes_in_window": len(in_window),
           "achieved_rate": len(in_window) / ((w1 - w0) / 1e6), "api_ms": stats(api_ms), "lag_ms": stats(lag_ms),
           "latency_ms": stats(lat), "latency_upper_ms": stats(lat_upper), "latency_at_ms": stats(lat_at),
           "baseline_ms": stats(base), "added_ms": stats(added), "sync_after_base_ms": stats(sync_after_base),
           "relay_ms": stats(relay), "kafka_hop_ms": stats(kafka_hop), "fanout_done_ms": stats(fanout_done),
           "fanout_spread_ms": stats(fanout_spread), "expected": expected, "received": received,
           "changes_reached": len(got), "changes_all_sessions": sum(1 for v in got.values()
                                                                     if v >= (sessions_per_user or 0)),
           "changes_over": sum(1 for v in got.values() if v > (sessions_per_user or 0)),
           "baseline_seen": sum(1 for k in in_window if k in kafka), "unmatched": unmatched,
           "mismatch": mismatch, "receiving_sessions": len(sessions),
           "anomalies": {k: meta.get(k) for k in ("conn_errors", "unexpected_closes", "seq_gaps", "seq_dups",
                                                  "other_msgs", "parse_errors", "close_codes", "first_error")},
           "sbench_cpu_threads": meta.get("cpu_threads")}
    # todo-sync's own view over the window, and the CPU
    mb = read_text(os.path.join(out, f"metrics-{part}-start.txt"))
    ma = read_text(os.path.join(out, f"metrics-{part}-end.txt"))
    if mb and ma:
        buckets, hsum, hcount = hist_delta(mb, ma, "te_sync_fanout_seconds")
        if hcount:
            rec["fanout_hist"] = {"count": int(hcount), "mean_ms": hsum / hcount * 1000,
                                  "p50_ms": (hist_quantile(0.5, buckets) or 0) * 1000,
                                  "p99_ms": (hist_quantile(0.99, buckets) or 0) * 1000,
                                  "buckets": {("+Inf" if k == float("inf") else f"{k:g}"): int(v)
                                              for k, v in sorted(buckets.items())}}
        rec["sent"] = counter_delta(mb, ma, "te_sync_messages_sent_total")
        rec["dropped"] = counter_delta(mb, ma, "te_sync_dropped_total")
        rec["catchups"] = counter_delta(mb, ma, "te_sync_catchup_total")
    sb_, sa = load_snap(out, f"{part}-start"), load_snap(out, f"{part}-end")
    if sb_ and sa:
        rec["cpu_s"] = cpu_delta(sb_, sa, roles)
        rec["sync_rss_kb"] = [(sb_.get("mem_sync") or {}).get("VmRSS"), (sa.get("mem_sync") or {}).get("VmRSS")]
    return rec


def idle_result(out, roles, n):
    """todo-sync's (and the client's) CPU with n sessions open and no traffic."""
    b, a = load_snap(out, "idle-large"), load_snap(out, "idle-large-end")
    if not b or not a:
        return None
    return {"label": "idle", "sessions": n, "cpu_s": cpu_delta(b, a, roles)}


def cmd_results(out, results):
    sb = load_raw(os.path.join(out, "sbench.jsonl"), missing_ok=True)
    roles = sync_thread_roles(read_text(os.path.join(out, "threads-sync.txt")))
    m = mem_result(out, sb)
    if m:
        append(results, m)
    i = idle_result(out, roles, (m or {}).get("n_large"))
    if i:
        append(results, i)
    if sb.get("probe"):
        pr = dict(sb["probe"])
        pm = sb.get("part-probe1") or {}
        pr["requests"] = pm.get("requests")
        pr["seconds"] = pm.get("seconds")
        pr["sessions"] = pm.get("sessions")
        append(results, pr)
    for name in ("small", "large", "reopen"):
        r = ramp_result(out, name, sb)
        if r:
            append(results, r)
    for part in ("small", "large"):
        r = part_result(out, part, sb, roles)
        if r:
            append(results, r)


# --- the table ---------------------------------------------------------------------------

def ms(v):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v / 1000:.2f} s"
    if abs(v) >= 10:
        return f"{v:.1f} ms"
    return f"{v:.2f} ms"


def kb(v):
    if v is None:
        return "n/a"
    return f"{0.0 if abs(v) < 0.05 else v:.1f} KB"


def times(a, b):
    if a is None or b is None or b <= 0:
        return ""
    return f"{a / b:.1f}x"


def pct(a, b):
    if a is None or not b:
        return ""
    return f"{100.0 * a / b:.1f} %"


def trio(s):
    s = s or {}
    return f"{ms(s.get('p50'))} / {ms(s.get('p99'))} / {ms(s.get('max'))}"


def thread_text(th):
    return ", ".join(f"{k} {v[0]:.2f} ({v[1]:.2f})" for k, v in th.items() if v[0] >= 0.01 or v[1] >= 0.01)


def cmd_table(results_path, info_path):
    raw = load_raw(results_path)
    info = load_info(info_path)
    mem = raw.get("memory", {})
    rows = []

    def part_rows(title, d):
        if not d:
            rows.append([title + ": no result", "", "", "", "", ""])
            return
        lt, bl = d.get("latency_ms") or {}, d.get("baseline_ms") or {}
        rows.append([f"{title}: {d['users']} users x {d['sessions'] // max(d['users'], 1)} sessions = "
                     f"{d['sessions']} clients, {d['rate']} changes/s", "", "", "", "", ""])
        rows.append(["  changes/s committed (measured window; answers 2xx)", f"{d['achieved_rate']:,.0f}/s"
                     .replace(",", " "), f"{d['rate']}/s paced", pct(d["achieved_rate"], d["rate"]), "", ""])
        p99 = lt.get("p99")
        met = "" if p99 is None else ("yes" if p99 < 50 else "NO")
        rows.append(["  API commit -> client receipt p50 (baseline: -> te_consumer handler)", ms(lt.get("p50")),
                     ms(bl.get("p50")), times(lt.get("p50"), bl.get("p50")), "", ""])
        rows.append(["  p99", ms(p99), ms(bl.get("p99")), times(p99, bl.get("p99")), "< 50 ms", met])
        rows.append(["  max", ms(lt.get("max")), ms(bl.get("max")), times(lt.get("max"), bl.get("max")), "", ""])
        ad = d.get("added_ms") or {}
        rows.append(["  todo-sync's share: client receipt - baseline receipt, p50 / p99",
                     f"{ms(ad.get('p50'))} / {ms(ad.get('p99'))}", "", "", "", ""])
        fd = d.get("fanout_done_ms") or {}
        rows.append(["  commit -> the user's last session has it, p50 / p99", f"{ms(fd.get('p50'))} / "
                     f"{ms(fd.get('p99'))}", "", "", "", ""])
        api = d.get("api_ms") or {}
        rows.append(["  todo-api request -> answer (the commit inside), p50 / p99", f"{ms(api.get('p50'))} / "
                     f"{ms(api.get('p99'))}", "", "", "", ""])
        rows.append(["  messages received / expected", f"{d['received']:,}".replace(",", " "),
                     f"{d['expected']:,}".replace(",", " "), pct(d["received"], d["expected"]), "", ""])

    pr = raw.get("probe")
    if pr:
        for i, st in enumerate(pr.get("steps") or []):
            rows.append([f"probe {i + 1}: todo-api answers/s, {st['rate']}/s paced ({pr.get('seconds')} s, "
                         f"{pr.get('sessions')} clients; schedule lag p99 {ms(st['lag_p99_ms'])})",
                         f"{st['answered_per_s']:,.0f}/s".replace(",", " "), f"{st['rate']}/s",
                         pct(st["answered_per_s"], st["rate"]), "", ""])
    part_rows("(a)", raw.get("part-small"))
    if int(info.get("users_large") or 0):
        part_rows("(b)", raw.get("part-large"))
    if mem:
        for key, n in (("small", mem.get("n_small")), ("large", mem.get("n_large"))):
            v, c = mem.get(f"sync_per_{key}_kb"), mem.get(f"sbench_per_{key}_kb")
            if n is None:
                continue
            met = "" if v is None else ("yes" if v < 16 else "NO")
            rows.append([f"memory per idle session, {n} sessions (RSS delta / n; baseline: the client's)",
                         kb(v), kb(c), times(v, c), "< 16 KB", met])

    idle = raw.get("idle")
    if idle and idle.get("cpu_s", {}).get("wall"):
        c = idle["cpu_s"]
        rows.append([f"todo-sync CPU with {idle['sessions']} idle sessions, % of a core over {c['wall']:.0f} s (keep-alive "
                     "pings; baseline: the client's)", f"{100 * c['sync'] / c['wall']:.1f} %",
                     f"{100 * c['sbench'] / c['wall']:.1f} %", times(c["sync"], c["sbench"]), "", ""])

    headers = ["metric", "todo-sync", "baseline", "sync/baseline", "target", "met"]
    a = raw.get("part-small") or {}
    client_loop = (raw.get("ramp-small") or {}).get("client_loop", "?")
    if pr and pr["rate"] != pr["asked"]:
        first = (pr.get("steps") or [{}])[0].get("answered_per_s") or 0
        rate_note = (f"todo-api could not take {pr['asked']} changes/s here ({first:.0f}/s answered in the probe), "
                     f"so (a) and (b) run at {pr['rate']}/s, the highest steady rate the probe found"
                     + ("" if pr.get("steady") else " (not verified steady: 80 % of its last step)"))
    elif pr:
        rate_note = f"todo-api took the {pr['asked']} changes/s asked (probe)"
    else:
        rate_note = "no probe"
    lines = ["Sync benchmark: todo-sync, API commit -> WebSocket client receipt, vs the same change events read "
             "by a te_consumer in the client process (Kafka's own delivery, outbox relay included), same run",
             f"machine: {info.get('cpu', '?')}, {info.get('cores', '?')} cores, {info.get('mem', '?')}; build "
             f"{info.get('build_type', '?')}; Kafka {info.get('kafka', '?')}; libwebsockets "
             f"{info.get('libwebsockets', '?')}",
             "todo-sync: its defaults, own consumer group, fresh database; todo-api: relay on, own database; "
             "client: bench/sync/sbench.c (one libwebsockets context, every session on one thread, event loop "
             f"{client_loop}; libcurl load, creates and PATCHes alternating per user, paced, "
             f"{info.get('inflight', '?')} in flight at most)",
             f"latency = receipt - the API's answer received, per message (each change reaches every session of "
             f"its user); the last {info.get('seconds', '?')} s of {info.get('warmup', '?')} + "
             f"{info.get('seconds', '?')} s of load; {rate_note}",
             ""]
    lines.extend(table_lines(headers, rows))
    lines.append("")
    problems = []
    for label, d in (("(a)", raw.get("part-small")), ("(b)", raw.get("part-large"))):
        if not d:
            continue
        if d.get("expected") and d.get("received", 0) < d["expected"]:
            problems.append(f"{label}: {d['expected'] - d['received']} messages missing "
                            f"({d['changes_in_window'] - d['changes_all_sessions']} changes not at every session)")
        if d.get("changes_over"):
            problems.append(f"{label}: {d['changes_over']} changes received more than once by a session")
        if d.get("requests_failed"):
            problems.append(f"{label}: API answers {d['requests_failed']}")
        if d.get("baseline_seen", 0) < d.get("changes_in_window", 0):
            problems.append(f"{label}: the baseline consumer saw {d['baseline_seen']} of "
                            f"{d['changes_in_window']} changes")
        if d.get("mismatch"):
            problems.append(f"{label}: {d['mismatch']} changes whose (task, version) differ between todo-sync and Kafka")
        if d.get("dropped"):
            problems.append(f"{label}: te_sync_dropped_total {d['dropped']}")
    an = (raw.get("part-large") or raw.get("part-small") or {}).get("anomalies") or {}
    for k, text in (("conn_errors", "connection errors"), ("unexpected_closes", "sessions closed by the server"),
                    ("seq_gaps", "sequence gaps"), ("seq_dups", "repeated sequence numbers"),
                    ("other_msgs", "unexpected messages"), ("parse_errors", "unparsable messages")):
        if an.get(k):
            problems.append(f"{an[k]} {text} (whole run)")
    if an.get("close_codes"):
        problems.append(f"close codes {an['close_codes']}")
    if an.get("first_error"):
        problems.append(f"first: {an['first_error']}")
    lines.append("errors: " + ("; ".join(problems) if problems else
                               "none (every change at every session of its user, once, in sequence order)"))

    for label, d in (("(a)", raw.get("part-small")), ("(b)", raw.get("part-large"))):
        if not d:
            continue
        lines.append(f"{label} where the time goes (p50 / p99 / max): API answer -> record in Kafka (relay: NOTIFY, "
                     f"claim, produce; the record's CreateTime, 1 ms) {trio(d.get('relay_ms'))}; -> the baseline's "
                     f"handler {trio(d.get('kafka_hop_ms'))}; baseline handler -> the first of the user's sessions "
                     f"(todo-sync's consumer, mailbox, service thread, write, the client) "
                     f"{trio(d.get('sync_after_base_ms'))}; first -> last session of the user "
                     f"{trio(d.get('fanout_spread_ms'))}")
        lu, la = d.get("latency_upper_ms") or {}, d.get("latency_at_ms") or {}
        lines.append(f"{label} bounds: receipt - request sent (the commit is between sent and answered) p50 / p99 "
                     f"{ms(lu.get('p50'))} / {ms(lu.get('p99'))}; receipt - data.at (the API's request time, ms) "
                     f"p50 / p99 {ms(la.get('p50'))} / {ms(la.get('p99'))}; p99.9 "
                     f"{ms((d.get('latency_ms') or {}).get('p999'))}")
        fh = d.get("fanout_hist")
        if fh:
            lines.append(f"{label} te_sync_fanout_seconds (data.at -> written to the socket) over the window: "
                         f"{fh['count']} writes, ~p50 {ms(fh['p50_ms'])}, ~p99 {ms(fh['p99_ms'])}, mean "
                         f"{ms(fh['mean_ms'])}; buckets (s): " + " ".join(f"{k}:{v}" for k, v in fh["buckets"].items()))
        lines.append(f"{label} load: {d['requests']} requests ({d['changes_in_window']} in the window), schedule "
                     f"lag p99 {ms((d.get('lag_ms') or {}).get('p99'))}; {d['receiving_sessions']} sessions "
                     f"received; sent by todo-sync {d.get('sent')}; catch-ups {d.get('catchups') or '{}'}")
        c = d.get("cpu_s") or {}
        if c.get("machine_total"):
            n = d["changes_in_window"] or 1
            msgs = d["received"] or 1
            lines.append(f"{label} CPU seconds over the {c['wall']:.1f} s window (machine "
                         f"{100.0 * c['machine_busy'] / c['machine_total']:.0f} % busy of "
                         f"{c['machine_total'] / c['wall']:.1f} cores): todo-sync {c['sync']:.2f} "
                         f"({c['sync'] / n * 1e6:.0f} us/change, {c['sync'] / msgs * 1e6:.1f} us/message), todo-api "
                         f"{c['api']:.2f}, its PostgreSQL backends ({c.get('pg_ours_procs')}) {c['pg_ours']:.2f}, "
                         f"other PostgreSQL {c['pg_other']:.2f}, Kafka {c['kafka']:.2f}, Redis {c['redis']:.2f}, "
                         f"sbench {c['sbench']:.2f}, other todo-* daemons {c['todo_other']:.2f}, the rest "
                         f"{c['rest']:.2f}")
            lines.append(f"{label} todo-sync by thread, CPU s (waiting for a CPU, s): " + thread_text(c["sync_threads"]))
            lines.append(f"{label} sbench by thread, CPU s (waiting for a CPU, s): " + thread_text(c["sbench_threads"]))
            if c.get("pg_roles"):
                lines.append(f"{label} the bench database's PostgreSQL backends by role (their last query), CPU s: " +
                             ", ".join(f"{k} ({v[0]}) {v[1]:.2f}" for k, v in c["pg_roles"].items()))
        if d.get("sync_rss_kb"):
            lines.append(f"{label} todo-sync RSS at the window's start / end: {d['sync_rss_kb'][0]} / "
                         f"{d['sync_rss_kb'][1]} kB")
    if idle and idle.get("cpu_s", {}).get("wall"):
        c = idle["cpu_s"]
        lines.append(f"idle: {idle['sessions']} sessions open, no changes, {c['wall']:.1f} s: todo-sync "
                     f"{c['sync']:.2f} CPU s, by thread (waiting for a CPU): {thread_text(c['sync_threads'])}; the client "
                     f"{c['sbench']:.2f} ({thread_text(c['sbench_threads'])})")
    if mem:
        def rss(who, m):
            return ((mem.get(f"{who}_{m}") or {}).get("VmRSS"))
        lines.append("memory: todo-sync VmRSS (kB) with 0 / {} / {} idle sessions / after closing the extra ones / at "
                     "the end: {} / {} / {} / {} / {}".format(mem.get("n_small"), mem.get("n_large"),
                                                              *(rss("sync", m) for m in ("start", "idle-small",
                                                                                          "idle-large", "closed", "end"))))
        lines.append("memory: per idle session RssAnon only (heap): todo-sync {} / {}; client {} / {}; kernel TCP "
                     "memory per connection end (not in any RSS) {}".format(
                         kb(mem.get("sync_anon_per_small_kb")), kb(mem.get("sync_anon_per_large_kb")),
                         kb(mem.get("sbench_anon_per_small_kb")), kb(mem.get("sbench_anon_per_large_kb")),
                         kb(mem.get("kernel_tcp_kb_per_connection_end"))))
    for name, text in (("small", "open"), ("large", "open the extra"), ("reopen", "reopen the extra")):
        r = raw.get(f"ramp-{name}")
        if r:
            rate = f"{r['per_s']:,.0f}/s".replace(",", " ") if r.get("per_s") else "n/a"
            lines.append(f"ramp ({text}): {r['ready']} of {r['sessions']} sessions ready (hello) in "
                         f"{r['seconds']:.1f} s, {rate}; connect -> established p50 / p99 "
                         f"{ms(r['connect_ms']['p50'])} / {ms(r['connect_ms']['p99'])}; connect -> hello p50 / p99 "
                         f"{ms(r['hello_ms']['p50'])} / {ms(r['hello_ms']['p99'])} (at most 256 handshakes at once)")
    notes = (("ready_seconds", "todo-sync start -> /readyz (s)"),
             ("sync_settings", "todo-sync settings"),
             ("nofile", "open-files limit (ulimit -n)"),
             ("daemon_stop", "todo-sync SIGTERM -> exit"),
             ("log_warn_error", "todo-sync log lines at warn/error level"),
             ("log_warn_error_first", "first of them"),
             ("api_log_warn_error", "todo-api log lines at warn/error level"),
             ("loadavg_before", "load average before the run"),
             ("loadavg_after", "load average after the run"),
             ("total_seconds", "benchmark time (s)"))
    write_summary(results_path, lines, info, raw, headers, rows, notes)


def main(argv):
    return run_command(argv, __doc__, {"snap": (6, cmd_snap), "results": (2, cmd_results), "table": (2, cmd_table)})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
