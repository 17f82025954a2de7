#!/usr/bin/env python3
"""Figures of the reminder benchmark (bench/reminder/run.sh); standard library only.

  summary.py settings URL TOKENS HOOKBASE SECRET OUT
      PUT /api/notification-settings for each user of TOKENS ("user token"
      lines): channels [webhook], webhook_url HOOKBASE + user, the
      webhook_secret SECRET; checks the answer (200, webhook_secret_set) and
      GET; writes a JSON line of figures to OUT (exit 1 on any failure).
  summary.py part PART REMINDERS RECV KAFKA DELIVERIES METRICS_BEFORE METRICS_AFTER CPU_BEFORE CPU_AFTER
                  EVENTS BACKENDS BATCH SCHED_THREADS RESULTS
      one part of todo-reminder (burst or steady): REMINDERS the database's
      reminders ("id part remind_at_ms status user fired_ms"), RECV the
      receiver's dump for the part, KAFKA the follower's lines ("kafka_ts_ms
      arrival_us event_id reminder_id"), DELIVERIES the delivery rows
      ("reminder_id delivery_id channel status attempts next_attempt_ms
      last_attempt_ms delivered_ms created_ms error"), the daemon's /metrics
      and the CPU snapshots (summary.py cpu) around the part, EVENTS the
      bench's polls of the consumer's counter ("time_ms handled"), BACKENDS
      pg_stat_activity of the daemon's database at the end ("pid
      backend_start state query"), BATCH the scheduler's batch and
      SCHED_THREADS its threads.
  summary.py cpu DAEMON_PID RECEIVER_PID DB OUT
      a JSON snapshot of the CPU ticks by process (for the parts' figures).
  summary.py blastin PART REMINDERS RECV STEP_MS PATH
      the libcurl baseline's input for a part (stdout): the part's
      reminders in due order, the i-th due at i * STEP_MS, each with the
      body and webhook-id the daemon sent for it (RECV), or a body of the
      same shape when the daemon sent none; path PATH + user.
  summary.py base LABEL BLAST_JSON BLAST_OUT RECV RESULTS
      one baseline run of rbench blast (its summary line, its per-request
      lines, the receiver's dump of it).
  summary.py pgbench LABEL STDOUT N BATCH RESULTS
      a pgbench baseline (the scheduler's: N reminders in transactions of
      BATCH, its -r statement latencies; the consumer's: N checks, BATCH 1)
  summary.py table RESULTS INFO     the final table (also summary.txt, summary.json)
"""
import datetime
import http.client
import json
import os
import re
import sys
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import (append, grab, hist_quantile, load_info, load_raw, percentile, read_tsv,  # noqa: E402
                      table_lines, write_summary)
from benchlib import main as run_command  # noqa: E402


# --- inputs ------------------------------------------------------------------------

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


def histogram(path, name, label_filter=""):
    """(cumulative buckets {le: count}, sum, count) of a histogram, summed
    over the series whose labels contain label_filter."""
    buckets = {}
    for labels, v in metric_values(path, name + "_bucket").items():
        if label_filter not in labels:
            continue
        m = re.search(r'le="([^"]*)"', labels)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets[le] = buckets.get(le, 0.0) + v
    total = sum(v for k, v in metric_values(path, name + "_sum").items() if label_filter in k)
    count = sum(v for k, v in metric_values(path, name + "_count").items() if label_filter in k)
    return buckets, total, count


def counter_delta(before, after, name):
    """{labels: after - before} of a counter family (labels as in the file)."""
    b, a = metric_values(before, name), metric_values(after, name)
    return {k: int(v - b.get(k, 0.0)) for k, v in sorted(a.items()) if v - b.get(k, 0.0)}


def read_reminders(path, part=None):
    """id -> {remind_at_ms, part, status, user, fired_ms} (of PART only when
    given; fired_ms 0: not fired)."""
    out = {}
    for p in read_tsv(path, 6):
        if part is None or p[1] == part:
            out[p[0]] = {"remind_at_ms": int(p[2]), "part": p[1], "status": p[3], "user": p[4],
                         "fired_ms": int(p[5])}
    return out


def read_recv(path):
    """The receiver's dump: a list of dicts (arrival in ms, float)."""
    out = []
    for p in read_tsv(path, 6):
        rec = {"at_ms": int(p[0]) / 1000.0, "path": p[1], "id": p[2], "ts": p[3], "sig": p[4], "body": p[5]}
        try:
            rec["event"] = json.loads(p[5])
        except ValueError:
            rec["event"] = None
        out.append(rec)
    return out


def parse_ts_ms(s):
    try:
        return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp() * 1000.0
    except (TypeError, ValueError):
        return None


def stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return {"n": 0, "p50": None, "p99": None, "max": None, "min": None, "mean": None}
    return {"n": len(vals), "p50": percentile(vals, 50), "p99": percentile(vals, 99), "max": max(vals),
            "min": min(vals), "mean": sum(vals) / len(vals)}


# --- CPU ---------------------------------------------------------------------------

def proc_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            p = f.read().rsplit(")", 1)[1].split()
        return int(p[11]) + int(p[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def cmd_cpu(daemon_pid, recv_pid, db, out_path):
    """A JSON snapshot of CPU ticks per process, by component: the daemon,
    the receiver, the PostgreSQL backends of db, the other PostgreSQL
    processes, Kafka, Redis, the other todo-* daemons on the machine; and
    the machine's busy / total ticks."""
    procs = {"daemon": {daemon_pid: proc_ticks(daemon_pid)}, "receiver": {recv_pid: proc_ticks(recv_pid)},
             "pg_ours": {}, "pg_other": {}, "kafka": {}, "redis": {}, "todo_other": {}}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid in (daemon_pid, recv_pid):
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        kind = None
        if cmd.startswith("postgres: "):
            kind = "pg_ours" if f" {db} " in cmd else "pg_other"
        elif "kafka.Kafka" in cmd:
            kind = "kafka"
        elif cmd.startswith("redis-server"):
            kind = "redis"
        elif re.search(r"(^|/)todo-(api|worker|reminder|sync)( |$)", cmd.split(" ")[0] + " "):
            kind = "todo_other"
        if kind:
            procs[kind][pid] = proc_ticks(pid)
    snap = {"procs": procs}
    with open("/proc/stat", encoding="utf-8") as f:
        for line in f:
            if line.startswith("cpu "):
                v = [int(x) for x in line.split()[1:]]
                snap["machine_busy"] = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
                snap["machine_total"] = sum(v[:8])
    snap["clk_tck"] = os.sysconf("SC_CLK_TCK")
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(snap, f)


CPU_KINDS = ("daemon", "receiver", "pg_ours", "pg_other", "kafka", "redis", "todo_other")


def cpu_delta(before, after):
    """CPU seconds per component between two cmd_cpu snapshots: the
    processes alive at the second (those started in between count whole;
    those that ended in between are missing, and so in "rest")."""
    try:
        with open(before, encoding="utf-8") as f:
            b = json.load(f)
        with open(after, encoding="utf-8") as f:
            a = json.load(f)
    except (OSError, ValueError):
        return {}
    t = float(a.get("clk_tck") or 100)
    d = {}
    for k in CPU_KINDS:
        pa, pb = a["procs"].get(k, {}), b["procs"].get(k, {})
        d[k] = sum(v - pb.get(pid, 0) for pid, v in pa.items()) / t
    d["pg_ours_procs"] = len(a["procs"].get("pg_ours", {}))
    d["machine_busy"] = (a["machine_busy"] - b["machine_busy"]) / t
    d["machine_total"] = (a["machine_total"] - b["machine_total"]) / t
    d["rest"] = d["machine_busy"] - sum(d[k] for k in CPU_KINDS)
    d["wall"] = d["machine_total"] / (os.cpu_count() or 1)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in d.items()}


# --- settings ----------------------------------------------------------------------

def cmd_settings(url, tokens_path, hookbase, secret, out_path):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    ok, problems = 0, []
    with open(tokens_path, encoding="utf-8") as f:
        users = [line.split() for line in f if len(line.split()) == 2]
    for user, tok in users:
        body = json.dumps({"channels": ["webhook"], "webhook_url": hookbase + user, "webhook_secret": secret})
        hdr = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
        c.request("PUT", "/api/notification-settings", body=body, headers=hdr)
        r = c.getresponse()
        raw = r.read()
        try:
            got = json.loads(raw) if raw else {}
        except ValueError:
            got = {"raw": raw[:200].decode("utf-8", "replace")}
        if r.status != 200 or got.get("channels") != ["webhook"] or not got.get("webhook_secret_set") \
                or got.get("webhook_url") != hookbase + user:
            problems.append(f"{user}: PUT {r.status} {json.dumps(got)[:200]}")
            continue
        ok += 1
    # one GET, to see the settings as the API shows them
    sample = None
    if users:
        c.request("GET", "/api/notification-settings", headers={"Authorization": "Bearer " + users[0][1]})
        r = c.getresponse()
        raw = r.read()
        sample = {"status": r.status, "body": raw.decode("utf-8", "replace")[:300]}
        if r.status != 200 or b'"webhook_secret_set":true' not in raw.replace(b" ", b""):
            problems.append(f"GET {r.status} {raw[:200]!r}")
    rec = {"users": len(users), "ok": ok, "problems": problems[:5], "get_sample": sample}
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")
    if problems or not users:
        sys.stderr.write("summary.py settings: " + "; ".join(problems[:5]) + "\n")
        sys.exit(1)


# --- todo-reminder's parts ---------------------------------------------------------

def scheduler_batches(rem, dl, batch):
    """The scheduler's firing transactions of a burst (every reminder due at
    the same time, so that each transaction claims a full batch): the
    reminders sorted by fired_at, cut every `batch` — with one scheduler
    thread exactly its transactions, one after the other; with several, a
    slice may mix two transactions that claimed at the same time.
    Per slice, ms after the due time: first / last fired_at (the claim
    statement), first / last created_at of its delivery rows (intake.c's
    CREATE_SQL, in the same transaction), first / last attempt started
    (last_attempt_at: the dispatcher's claims) and first / last delivered_at.
    None unless the part looks like a burst."""
    if len(rem) < 2 * batch or len({x["remind_at_ms"] for x in rem.values()}) != 1:
        return None
    due = next(iter(rem.values()))["remind_at_ms"]
    rows = []
    for rid, x in rem.items():
        d = (dl.get(rid) or [None])[0]
        if not x["fired_ms"] or d is None:
            return None
        rows.append((x["fired_ms"], d["created_ms"], d["last_ms"], d["delivered_ms"]))
    rows.sort()
    out = []
    for i in range(0, len(rows), batch):
        b = rows[i:i + batch]
        col = lambda k: [r[k] - due for r in b if r[k]]  # noqa: E731
        f, c, a, dv = col(0), col(1), col(2), col(3)
        out.append({"n": len(b), "fired": [min(f), max(f)], "created": [min(c), max(c)],
                    "attempt": [min(a), max(a)] if a else None, "delivered": [min(dv), max(dv)] if dv else None})
    return out


def backend_cpu(before, after, backends_path):
    """CPU seconds of each of the daemon's PostgreSQL backends between two
    cmd_cpu snapshots, with what pg_stat_activity showed at the end (its
    state and last query: which of the daemon's connections it is),
    busiest first."""
    try:
        with open(before, encoding="utf-8") as f:
            b = json.load(f)
        with open(after, encoding="utf-8") as f:
            a = json.load(f)
    except (OSError, ValueError):
        return []
    t = float(a.get("clk_tck") or 100)
    what = {p[0]: (p[2], p[3]) for p in read_tsv(backends_path, 4)}
    pb = b["procs"].get("pg_ours", {})
    out = []
    for pid, v in a["procs"].get("pg_ours", {}).items():
        state, query = what.get(pid, ("?", "?"))
        out.append({"pid": pid, "cpu_s": round((v - pb.get(pid, 0)) / t, 2), "state": state, "query": query})
    return sorted(out, key=lambda x: -x["cpu_s"])


def backend_role(query):
    """Which of todo-reminder's connections ran this last query."""
    q = query.lower()
    if "min(remind_at)" in q or "with due as" in q:
        return "scheduler"
    if "min(case when status" in q or "with c as (select fire_id" in q or q.startswith("listen te_deliveries"):
        return "dispatcher"
    if "select 1 from reminder_deliveries" in q:
        return "consumer"
    if "outbox" in q:
        return "outbox relay"
    if q.startswith("commit") or "json_to_recordset" in q or "te_reminders_settle" in q:
        return "sender (or scheduler)"
    if q.startswith("select 1"):
        return "pool (/readyz)"
    return "?"


def cmd_part(part, reminders_path, recv_path, kafka_path, deliveries_path, before, after, cpu_before, cpu_after,
             events_path, backends_path, batch, sched_threads, results):
    rem = read_reminders(reminders_path, part)
    recv = read_recv(recv_path)
    first = {}      # reminder id -> first arrival record
    dup = foreign = bad_sig = wrong_path = wrong_body = no_event = 0
    skew = []       # webhook-timestamp - arrival (s)
    for r in recv:
        ev = r["event"]
        rid = ((ev or {}).get("data") or {}).get("reminder_id") if isinstance(ev, dict) else None
        if rid is None:
            no_event += 1
            continue
        if rid not in rem:
            foreign += 1
            continue
        if r["sig"] != "ok":
            bad_sig += 1
        try:
            skew.append(int(r["ts"]) - r["at_ms"] / 1000.0)
        except ValueError:
            pass
        if rid in first:
            dup += 1
            continue
        first[rid] = r
        x = rem[rid]
        if r["path"] != "/hook/" + x["user"]:
            wrong_path += 1
        d = ev.get("data") or {}
        due_ms = parse_ts_ms(d.get("remind_at"))
        if ev.get("type") != "com.todo.reminder.due" or d.get("user_id") != x["user"] \
                or due_ms is None or abs(due_ms - x["remind_at_ms"]) > 1:
            wrong_body += 1
    late = [r["at_ms"] - rem[rid]["remind_at_ms"] for rid, r in first.items()]
    arrivals = sorted(r["at_ms"] for r in first.values())
    dues = sorted(x["remind_at_ms"] for x in rem.values())
    n = len(first)
    # when each reminder.due reached Kafka
    kafka = {}
    for p in read_tsv(kafka_path, 4):
        if p[3] in rem:
            kafka.setdefault(p[3], int(p[0]))
    # the delivery rows (webhook) of the part's reminders
    dl = {}
    for p in read_tsv(deliveries_path, 9):
        if p[0] in rem and p[2] == "webhook":
            dl.setdefault(p[0], []).append({"status": p[3], "attempts": int(p[4]), "next_ms": int(p[5]),
                                            "last_ms": int(p[6]), "delivered_ms": int(p[7]),
                                            "created_ms": int(p[8]), "error": p[9] if len(p) > 9 else ""})
    st_sched, st_relay, st_create, st_queue, st_http, st_book = [], [], [], [], [], []
    statuses, attempts_gt1, errors = {}, 0, {}
    for rid, rows in dl.items():
        for row in rows:
            statuses[row["status"]] = statuses.get(row["status"], 0) + 1
            if row["attempts"] > 1:
                attempts_gt1 += 1
            if row["error"]:
                errors[row["error"][:120]] = errors.get(row["error"][:120], 0) + 1
    for rid in rem:
        k, fired = kafka.get(rid), rem[rid]["fired_ms"]
        if fired:
            st_sched.append(fired - rem[rid]["remind_at_ms"])
            if k is not None:
                st_relay.append(k - fired)
        rows = dl.get(rid) or []
        row = rows[0] if len(rows) == 1 else None
        if row and row["attempts"] == 1 and row["last_ms"]:
            if fired:
                st_create.append(row["created_ms"] - fired)
            st_queue.append(row["last_ms"] - row["created_ms"])
            if rid in first:
                st_http.append(first[rid]["at_ms"] - row["last_ms"])
                if row["delivered_ms"]:
                    st_book.append(row["delivered_ms"] - first[rid]["at_ms"])
    created = sorted(r["created_ms"] for rows in dl.values() for r in rows)
    fired = sorted(x["fired_ms"] for x in rem.values() if x["fired_ms"])
    rem_status = {}
    for x in rem.values():
        rem_status[x["status"]] = rem_status.get(x["status"], 0) + 1
    b0, s0, c0 = histogram(before, "te_reminder_lateness_seconds", 'channel="webhook"')
    b1, s1, c1 = histogram(after, "te_reminder_lateness_seconds", 'channel="webhook"')
    hd = {k: v - b0.get(k, 0.0) for k, v in b1.items()}
    hc = c1 - c0
    kts = sorted(kafka.values())
    # the consumer: when the part's reminder.due events had all been handled
    # (the bench's /metrics polls: "time_ms handled_since_the_part_began")
    handled_all_ms = None
    for p in read_tsv(events_path, 1):
        try:
            t, h = (int(x) for x in p[0].split())
        except ValueError:
            continue
        if h >= len(rem) > 0:
            handled_all_ms = t
            break
    batches = scheduler_batches(rem, dl, int(batch))
    sched_threads = int(sched_threads)
    rec = {
        "label": part, "kind": "todo-reminder", "expected": len(rem), "delivered": n,
        "missing": len(rem) - n, "duplicates": dup, "foreign": foreign, "no_event": no_event,
        "bad_signature": bad_sig, "wrong_path": wrong_path, "wrong_body": wrong_body,
        "timestamp_skew_s": stats(skew),
        "lateness_ms": stats(late),
        "first_due_ms": dues[0] if dues else None, "last_due_ms": dues[-1] if dues else None,
        "first_arrival_ms": arrivals[0] if arrivals else None,
        "last_arrival_ms": arrivals[-1] if arrivals else None,
        "rate_first_last": round((n - 1) / ((arrivals[-1] - arrivals[0]) / 1000.0), 1)
        if n > 1 and arrivals[-1] > arrivals[0] else None,
        "rate_from_due": round(n / ((arrivals[-1] - dues[0]) / 1000.0), 1)
        if n and dues and arrivals[-1] > dues[0] else None,
        "last_after_due_ms": arrivals[-1] - dues[0] if n and dues else None,
        "created_rate": round((len(created) - 1) / ((created[-1] - created[0]) / 1000.0), 1)
        if len(created) > 1 and created[-1] > created[0] else None,
        "created_all_after_due_ms": created[-1] - dues[0] if created and dues and len(created) == len(rem) else None,
        "created_last_after_due_ms": created[-1] - dues[0] if created and dues else None,
        "consumer_all_after_due_ms": handled_all_ms - dues[0] if handled_all_ms and dues else None,
        "consumer_polls": sum(1 for _ in read_tsv(events_path, 1)),
        "batches": batches, "sched_threads": sched_threads,
        "fired_all_after_due_ms": fired[-1] - dues[0] if fired and dues and len(fired) == len(rem) else None,
        "fired_last_after_due_ms": fired[-1] - dues[0] if fired and dues else None,
        "kafka_seen": len(kafka),
        "kafka_all_after_due_ms": kts[-1] - dues[0] if kts and dues and len(kafka) == len(rem) else None,
        "kafka_last_after_due_ms": kts[-1] - dues[0] if kts and dues else None,
        "kafka_first_after_due_ms": kts[0] - dues[0] if kts and dues else None,
        "stage_sched_ms": stats(st_sched), "stage_relay_ms": stats(st_relay), "stage_create_ms": stats(st_create),
        "stage_queue_ms": stats(st_queue), "stage_http_ms": stats(st_http),
        "stage_book_ms": stats(st_book),
        "delivery_rows": sum(len(v) for v in dl.values()), "delivery_status": statuses,
        "attempts_gt1": attempts_gt1, "delivery_errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:3]),
        "reminder_status": rem_status,
        "hist_count": int(hc), "hist_mean_ms": (s1 - s0) / hc * 1000.0 if hc > 0 else None,
        "hist_p50_ms": (hist_quantile(0.5, hd) or 0) * 1000.0 if hc > 0 else None,
        "hist_p99_ms": (hist_quantile(0.99, hd) or 0) * 1000.0 if hc > 0 else None,
        "hist_buckets": {("+Inf" if k == float("inf") else f"{k:g}"): int(v) for k, v in sorted(hd.items())},
        "fired": counter_delta(before, after, "te_reminders_fired_total"),
        "attempts": counter_delta(before, after, "te_notification_attempts_total"),
        "events": counter_delta(before, after, "te_reminder_events_total"),
        "dead_lettered": counter_delta(before, after, "te_notification_dead_lettered_total"),
        "cpu_s": cpu_delta(cpu_before, cpu_after),
        "backends": backend_cpu(cpu_before, cpu_after, backends_path),
    }
    append(results, rec)
    print(f"    {part}: {n} of {len(rem)} delivered, lateness p50 {ms(rec['lateness_ms']['p50'])} "
          f"p99 {ms(rec['lateness_ms']['p99'])} max {ms(rec['lateness_ms']['max'])}", file=sys.stderr)


# --- the libcurl baseline --------------------------------------------------------------

def synthetic_body(rid, x, sample):
    """A reminder.due CloudEvent for reminder rid, shaped as sample (one the
    daemon sent) when there is one."""
    due = datetime.datetime.fromtimestamp(x["remind_at_ms"] / 1000.0, datetime.timezone.utc)
    ts = due.strftime("%Y-%m-%dT%H:%M:%S.") + f"{due.microsecond // 1000:03d}Z"
    ev = json.loads(json.dumps(sample)) if sample else {
        "specversion": "1.0", "type": "com.todo.reminder.due", "source": "/todo-reminder",
        "datacontenttype": "application/json",
        "data": {"task_id": str(uuid.uuid4()), "title": "Bench burst reminder 1", "due_date": ts,
                 "channels": ["webhook"], "late": False}}
    ev["id"] = str(uuid.uuid4())
    ev["partitionkey"] = x["user"]
    ev.setdefault("data", {})
    ev["data"].update({"reminder_id": rid, "user_id": x["user"], "remind_at": ts})
    return json.dumps(ev, separators=(",", ":"))


def cmd_blastin(part, reminders_path, recv_path, step_ms, path):
    rem = read_reminders(reminders_path, part)
    sent = {}
    sample = None
    for r in read_recv(recv_path):
        ev = r["event"]
        rid = ((ev or {}).get("data") or {}).get("reminder_id") if isinstance(ev, dict) else None
        if rid in rem and rid not in sent:
            sent[rid] = (r["id"], r["body"])
            sample = sample or ev
    order = sorted(rem, key=lambda k: (rem[k]["remind_at_ms"], k))
    step = int(step_ms)
    for i, rid in enumerate(order):
        wid, body = sent.get(rid) or (str(uuid.uuid4()), synthetic_body(rid, rem[rid], sample))
        sys.stdout.write(f"{i * step}\t{wid}\t{path}{rem[rid]['user']}\t{body}\n")


def cmd_base(label, blast_json, blast_out, recv_path, results):
    summ = {}
    with open(blast_json, encoding="utf-8") as f:
        for line in f:
            if line.strip().startswith("{"):
                summ = json.loads(line)
    due, client = {}, []
    bad_status = 0
    for p in read_tsv(blast_out, 5):
        due[p[0]] = int(p[1])
        client.append((int(p[3]) - int(p[2])) / 1000.0)
        if not 200 <= int(p[4]) < 300:
            bad_status += 1
    first, dup, bad_sig = {}, 0, 0
    for r in read_recv(recv_path):
        if r["id"] not in due:
            continue
        if r["sig"] != "ok":
            bad_sig += 1
        if r["id"] in first:
            dup += 1
            continue
        first[r["id"]] = r["at_ms"]
    late = [at - due[w] for w, at in first.items()]
    arrivals = sorted(first.values())
    n = len(first)
    d0 = min(due.values()) if due else None
    rec = dict(summ)
    rec.update({
        "label": label, "kind": "libcurl", "expected": len(due), "delivered": n, "missing": len(due) - n,
        "duplicates": dup, "bad_signature": bad_sig, "bad_status": bad_status,
        "lateness_ms": stats(late), "client_ms": stats(client),
        "rate_first_last": round((n - 1) / ((arrivals[-1] - arrivals[0]) / 1000.0), 1)
        if n > 1 and arrivals[-1] > arrivals[0] else None,
        "rate_from_due": round(n / ((arrivals[-1] - d0) / 1000.0), 1) if n and arrivals[-1] > d0 else None,
        "last_after_due_ms": arrivals[-1] - d0 if n else None,
    })
    append(results, rec)
    print(f"    {label}: {n} of {len(due)} delivered, lateness p50 {ms(rec['lateness_ms']['p50'])} "
          f"p99 {ms(rec['lateness_ms']['p99'])} max {ms(rec['lateness_ms']['max'])}", file=sys.stderr)


# --- the scheduler baseline ----------------------------------------------------------------

def cmd_pgbench(label, stdout, n, batch, results):
    text = open(stdout, encoding="utf-8", errors="replace").read()
    tx = grab(text, r"^number of transactions actually processed: (\d+)", int)
    lat = grab(text, r"^latency average = ([0-9.]+) ms")
    tps = grab(text, r"^tps = ([0-9.]+)")
    rec = {"label": label, "kind": "pgbench", "transactions": tx, "batch": int(batch), "reminders": int(n),
           "clients": grab(text, r"^number of clients: (\d+)", int),
           "failed": grab(text, r"^number of failed transactions: (\d+)", int) or 0,
           # the run's time: transactions / tps (= latency x transactions on one connection)
           "lat_avg_ms": lat, "total_ms": tx / tps * 1000.0 if tps and tx else None}
    rec["claimed_per_s"] = round(int(n) / (rec["total_ms"] / 1000.0), 1) if rec["total_ms"] else None
    # pgbench -r: the average latency of each command (a pipeline's
    # statements count at its \endpipeline)
    stmts, in_pipeline = {}, False
    for m in re.finditer(r"^\s+([0-9.]+)\s+\d+\s+(\S.*)$", text.split("statement latencies", 1)[-1]
                         if "statement latencies" in text else "", re.M):
        cmd, v = m.group(2), float(m.group(1))
        if cmd.startswith("\\startpipeline"):
            in_pipeline = True
        key = ("pipeline" if in_pipeline else "begin" if cmd.startswith("BEGIN")
               else "claim" if cmd.startswith("WITH claimed") else None)
        if cmd.startswith("\\endpipeline"):
            in_pipeline = False
        if key:
            stmts[key] = round(stmts.get(key, 0.0) + v, 3)
    rec["statements_ms"] = stmts
    append(results, rec)
    print(f"    {label}: {tx} transactions of {batch}, {ms(rec['total_ms'])} in all, "
          f"{rate(rec['claimed_per_s'])}", file=sys.stderr)


# --- the table --------------------------------------------------------------------------------

def ms(v):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v / 1000:.2f} s"
    return f"{v:.1f} ms" if abs(v) >= 10 else f"{v:.2f} ms"


def rate(v):
    return "n/a" if v is None else f"{v:,.0f}/s".replace(",", " ")


def times(a, b):
    """a / b as a factor (latencies: how many times the baseline's)."""
    if a is None or b is None or b <= 0:
        return "n/a"
    r = a / b
    return f"{r:,.0f}x".replace(",", " ") if r >= 100 else f"{r:.1f}x"


def pct(a, b):
    return f"{a / b * 100:.1f} %" if a and b else "n/a"


def trio(s):
    return f"{ms(s.get('p50'))} / {ms(s.get('p99'))} / {ms(s.get('max'))}" if s and s.get("n") else "n/a"


def cmd_table(results_path, info_path):
    raw = load_raw(results_path)
    info = load_info(info_path)
    rows = []
    burst, steady = raw.get("burst", {}), raw.get("steady", {})
    bb, bs = raw.get("base-burst", {}), raw.get("base-steady", {})
    pg = raw.get("pgbench", {})
    n, users = info.get("burst", "?"), info.get("users", "?")

    def lat_rows(title, d, b):
        dl, bl = d.get("lateness_ms") or {}, b.get("lateness_ms") or {}
        p99 = dl.get("p99")
        met = "n/a" if p99 is None else ("yes" if p99 < 1000 and not d.get("missing") else "NO")
        rows.append([title + ": lateness (arrival - remind_at) p50", ms(dl.get("p50")), ms(bl.get("p50")),
                     times(dl.get("p50"), bl.get("p50")), "", ""])
        rows.append(["  p99", ms(p99), ms(bl.get("p99")), times(p99, bl.get("p99")), "< 1 s", met])
        rows.append(["  max", ms(dl.get("max")), ms(bl.get("max")), times(dl.get("max"), bl.get("max")), "", ""])

    lat_rows(f"(a) burst: {n} reminders due at one second ({users} users)", burst, bb)
    rows.append(["  deliveries/s, first to last arrival", rate(burst.get("rate_first_last")),
                 rate(bb.get("rate_first_last")), pct(burst.get("rate_first_last"), bb.get("rate_first_last")),
                 "", ""])
    rows.append(["  deliveries/s from the due time to the last arrival", rate(burst.get("rate_from_due")),
                 rate(bb.get("rate_from_due")), pct(burst.get("rate_from_due"), bb.get("rate_from_due")), "", ""])
    pgc = raw.get("pgbench-consumer", {})
    rows.append([f"  scheduler: all {n} fired with their delivery rows (the last created_at; pgbench: its "
                 f"transactions, batches of {info.get('batch', '?')}), after the due time",
                 ms(burst.get("created_all_after_due_ms") if burst.get("created_all_after_due_ms") is not None
                    else burst.get("created_last_after_due_ms")),
                 ms(pg.get("total_ms")),
                 times(burst.get("created_all_after_due_ms"), pg.get("total_ms")), "", ""])
    rows.append(["  scheduler: delivery rows created/s (first to last created_at; pgbench: its transactions)",
                 rate(burst.get("created_rate")), rate(pg.get("claimed_per_s")),
                 pct(burst.get("created_rate"), pg.get("claimed_per_s")), "", ""])
    rows.append([f"  all {n} reminder.due in Kafka (outbox relay; off the delivery path), after the due time",
                 ms(burst.get("kafka_all_after_due_ms") if burst.get("kafka_all_after_due_ms") is not None
                    else burst.get("kafka_last_after_due_ms")), "", "", "", ""])
    rows.append([f"  consumer: all {n} reminder.due handled (duplicate check; off the delivery path), after the "
                 f"due time; pgbench: {n} checks, 1 connection",
                 ms(burst.get("consumer_all_after_due_ms")), ms(pgc.get("total_ms")), "", "", ""])
    rows.append(["  te_reminder_lateness_seconds{channel=webhook} (histogram) p50 / p99",
                 f"~{ms(burst.get('hist_p50_ms'))} / ~{ms(burst.get('hist_p99_ms'))}", "", "", "", ""])
    lat_rows(f"(b) steady: {info.get('rate', '?')} reminders/s for {info.get('steady_seconds', '?')} s "
             f"({info.get('steady', '?')})", steady, bs)
    rows.append(["  deliveries/s from the first due time to the last arrival", rate(steady.get("rate_from_due")),
                 rate(bs.get("rate_from_due")), pct(steady.get("rate_from_due"), bs.get("rate_from_due")), "", ""])
    rows.append(["  te_reminder_lateness_seconds{channel=webhook} (histogram) p50 / p99",
                 f"~{ms(steady.get('hist_p50_ms'))} / ~{ms(steady.get('hist_p99_ms'))}", "", "", "", ""])

    headers = ["metric", "todo-reminder", "baseline", "reminder/baseline", "target", "met"]
    lines = ["Reminder benchmark: todo-reminder's webhook lateness vs a plain libcurl client POSTing the same "
             "signed bodies to the same receiver, and the scheduler's and the consumer's SQL through pgbench "
             "(baselines), same run",
             f"machine: {info.get('cpu', '?')}, {info.get('cores', '?')} cores, {info.get('mem', '?')}; "
             f"build {info.get('build_type', '?')}; Kafka {info.get('kafka', '?')}",
             f"todo-reminder: TE_NOTIFY_THREADS={info.get('threads', '?')}, TE_REMINDER_BATCH="
             f"{info.get('batch', '?')}, TE_REMINDER_SCHEDULER_THREADS={info.get('sched_threads', '?')}, "
             "own consumer group, fresh database; receiver: libmicrohttpd "
             "(epoll, 2 threads), 204 to every POST, arrival = body complete (CLOCK_REALTIME)",
             f"baselines: rbench blast, libcurl, {info.get('blast_threads', '?')} threads with kept-alive "
             "connections, each body POSTed (and signed) not before its due time — (a) all at one whole second, "
             f"(b) paced at {info.get('rate', '?')}/s; pgbench: the scheduler's firing transaction "
             f"(claim + reminder.due outbox rows + delivery rows [+ settle]; bench/reminder/claim.sql) on "
             f"{info.get('sched_threads', '?')} connection(s), the consumer's duplicate check per event "
             "(bench/reminder/intake.sql) on one",
             ""]
    lines.extend(table_lines(headers, rows))
    lines.append("")
    problems = []
    for label, d in (("(a)", burst), ("(b)", steady), ("baseline (a)", bb), ("baseline (b)", bs)):
        if not d:
            problems.append(f"{label}: no result")
            continue
        for key, text in (("missing", "not delivered"), ("duplicates", "delivered twice or more"),
                          ("bad_signature", "with a bad signature"), ("wrong_path", "to the wrong user's URL"),
                          ("wrong_body", "with a body not matching the reminder"),
                          ("bad_status", "answered other than 2xx"), ("attempts_gt1", "needed more than one attempt")):
            if d.get(key):
                problems.append(f"{label}: {d[key]} {text}")
        if d.get("delivery_errors"):
            problems.append(f"{label}: delivery errors {d['delivery_errors']}")
    for label, d in (("pgbench", pg), ("pgbench (consumer)", pgc)):
        if d.get("failed"):
            problems.append(f"{label}: {d['failed']} failed transactions")
    lines.append("errors: " + ("; ".join(problems) if problems else
                               "none (every webhook once, signatures valid, every body the reminder's)"))
    for label, d in (("(a)", burst), ("(b)", steady)):
        if not d:
            continue
        lines.append(f"{label} where the time goes (p50 / p99 / max): remind_at -> fired (the scheduler's claim, "
                     f"fired_at) {trio(d.get('stage_sched_ms'))}; fired -> delivery row created (same transaction: "
                     f"events built, CREATE_SQL with the outbox insert; created_at) {trio(d.get('stage_create_ms'))}; row "
                     f"created -> attempt started (settle + commit, the dispatcher's claim, a free sender; "
                     f"last_attempt_at) {trio(d.get('stage_queue_ms'))}; attempt started -> arrival (the HTTP "
                     f"request, a batch of up to 256 per sender) {trio(d.get('stage_http_ms'))}; arrival -> delivered_at "
                     f"recorded {trio(d.get('stage_book_ms'))}; off the path: fired -> reminder.due in Kafka "
                     f"(outbox relay) {trio(d.get('stage_relay_ms'))}")
        bt = d.get("batches")
        if bt:
            span = lambda k: [b[k][1] - b[k][0] for b in bt if b.get(k)]  # noqa: E731
            gap = lambda a, z: [b[z][0] - b[a][1] for b in bt if b.get(a) and b.get(z)]  # noqa: E731
            nxt = [bt[i + 1]["fired"][0] - bt[i]["created"][1] for i in range(len(bt) - 1)]
            med = lambda v: ms(percentile(v, 50)) if v else "n/a"  # noqa: E731
            mx = lambda v: ms(max(v)) if v else "n/a"  # noqa: E731
            one = d.get("sched_threads") == 1
            lines.append(f"{label} the burst by firing order, {len(bt)} slices of {bt[0]['n']} (= the scheduler's "
                         "transactions" + ("" if one else f" when they did not overlap; {d.get('sched_threads')} "
                                           "scheduler threads") + "), median / max: claim (fired_at first -> last) "
                         f"{med(span('fired'))} / {mx(span('fired'))}; claim's last fired_at -> first "
                         f"delivery row (rows back, events built in C, outbox insert, CREATE_SQL's input) "
                         f"{med(gap('fired', 'created'))} / {mx(gap('fired', 'created'))}; delivery rows (created_at "
                         f"first -> last) {med(span('created'))} / {mx(span('created'))}; " +
                         (f"last row -> next transaction's first fired_at (settle, COMMIT, BEGIN, the next claim's "
                          f"scan) {med(nxt)} / {mx(nxt)}; " if one else "") +
                         f"last row -> its first attempt started {med(gap('created', 'attempt'))} / "
                         f"{mx(gap('created', 'attempt'))}; its attempts (first -> last started) "
                         f"{med(span('attempt'))} / {mx(span('attempt'))}")
            lines.append(f"{label} per slice, ms after the due time (fired_at first-last / created_at first-last "
                         "/ attempts started first-last / delivered_at first-last): " + "; ".join(
                             f"{i}: " + " / ".join(f"{b[k][0]}-{b[k][1]}" if b.get(k) else "n/a"
                                                   for k in ("fired", "created", "attempt", "delivered"))
                             for i, b in enumerate(bt)))
        first = d["first_arrival_ms"] - d["first_due_ms"] if d.get("first_arrival_ms") else None
        lines.append(f"{label} first reminder.due in Kafka {ms(d.get('kafka_first_after_due_ms'))} after the due "
                     f"time, last {ms(d.get('kafka_last_after_due_ms'))} ({d.get('kafka_seen')} of "
                     f"{d.get('expected')} seen); first webhook {ms(first)}, last "
                     f"{ms(d.get('last_after_due_ms'))} after the (first) due time; mean lateness "
                     f"{ms((d.get('lateness_ms') or {}).get('mean'))}")
        lines.append(f"{label} reminders {d.get('reminder_status')}; webhook delivery rows {d.get('delivery_rows')} "
                     f"{d.get('delivery_status')}; counters: fired {d.get('fired')}, attempts {d.get('attempts')}, "
                     f"events {d.get('events')}, dead-lettered {d.get('dead_lettered') or 0}; webhooks of other "
                     f"parts received meanwhile {d.get('foreign')}")
        hb = d.get("hist_buckets") or {}
        lines.append(f"{label} te_reminder_lateness_seconds{{channel=webhook}}: count {d.get('hist_count')}, mean "
                     f"{ms(d.get('hist_mean_ms'))}, cumulative buckets (s): " +
                     " ".join(f"{k}:{v}" for k, v in hb.items()))
        c = d.get("cpu_s") or {}
        if c.get("machine_total"):
            nd = d.get("delivered") or 0
            xa = info.get(("burst" if label == "(a)" else "steady") + "_xacts")
            per = (lambda v: f" ({v / nd * 1e6:,.0f} us/reminder)".replace(",", " ") if nd else "")
            lines.append(f"{label} CPU seconds from just before the due time to the end of the part ({c['wall']:.1f} s "
                         f"wall, machine "
                         f"{100.0 * c['machine_busy'] / c['machine_total']:.0f} % busy): todo-reminder "
                         f"{c['daemon']:.2f}{per(c['daemon'])}, its PostgreSQL backends ({c.get('pg_ours_procs')}) "
                         f"{c['pg_ours']:.2f}{per(c['pg_ours'])}, other PostgreSQL {c['pg_other']:.2f}, Kafka "
                         f"{c['kafka']:.2f}, receiver {c['receiver']:.2f}, Redis {c['redis']:.2f}, other todo-* "
                         f"daemons {c.get('todo_other', 0):.2f}, the rest "
                         f"{c['rest']:.2f}" + (f"; ~{int(xa) / nd:.1f} PostgreSQL transactions per reminder "
                                                f"({xa})" if xa and nd else ""))
        be = d.get("backends") or []
        if be:
            lines.append(f"{label} its PostgreSQL backends by CPU seconds (role by the last query): " + "; ".join(
                f"{x['cpu_s']:.2f} {backend_role(x['query'])}" for x in be if x["cpu_s"] > 0 or len(be) < 16))
        if d.get("consumer_all_after_due_ms") is not None or d.get("consumer_polls"):
            lines.append(f"{label} consumer: all {d.get('expected')} reminder.due handled "
                         f"{ms(d.get('consumer_all_after_due_ms'))} after the (first) due time (the last in Kafka "
                         f"{ms(d.get('kafka_last_after_due_ms'))}; /metrics polled every ~0.1 s)")
        sk = d.get("timestamp_skew_s") or {}
        if sk.get("n"):
            lines.append(f"{label} webhook-timestamp - arrival (s): min {sk['min']:.2f}, max {sk['max']:.2f}")
    for label, d in (("baseline (a)", bb), ("baseline (b)", bs)):
        if d:
            lines.append(f"{label}: {d.get('delivered')} of {d.get('expected')} arrived; client request time "
                         f"p50 / p99 / max {trio(d.get('client_ms'))}; client CPU {d.get('cpu_s')} s")
    if pg:
        lines.append(f"pgbench (scheduler): {pg.get('transactions')} transactions of up to {pg.get('batch')} "
                     f"reminders on {pg.get('clients')} connection(s), {ms(pg.get('total_ms'))} in all, latency "
                     f"average {ms(pg.get('lat_avg_ms'))}, {rate(pg.get('claimed_per_s'))} reminders fired")
    if pg.get("statements_ms"):
        st = pg["statements_ms"]
        lines.append(f"pgbench (scheduler), {pg.get('clients')} connection(s), average per transaction: BEGIN "
                     f"{ms(st.get('begin'))}, the claim with "
                     f"the events built server-side {ms(st.get('claim'))}, the pipeline (outbox insert, CREATE_SQL, "
                     f"settle when in-app, COMMIT) {ms(st.get('pipeline'))}")
    if pgc:
        lines.append(f"pgbench (consumer's duplicate check): {pgc.get('transactions')} events, latency average "
                     f"{ms(pgc.get('lat_avg_ms'))}, {rate(pgc.get('claimed_per_s'))}")
    notes = (("ready_seconds", "todo-reminder start -> /readyz (s)"),
             ("settings", "notification settings (PUT /api/notification-settings)"),
             ("outbox_after_settings", "outbox rows after the settings"),
             ("burst_insert_ms", "(a) insert of the reminders (ms)"),
             ("steady_insert_ms", "(b) insert of the reminders (ms)"),
             ("receiver_daemon", "receiver after the daemon's parts (requests, TCP connections, its CPU)"),
             ("receiver", "receiver at the end"),
             ("pgbench_claimed", "pgbench (scheduler): reminders fired"),
             ("daemon_stop", "todo-reminder SIGTERM -> exit"),
             ("log_warn_error", "todo-reminder log lines at warn/error level"),
             ("log_warn_error_first", "first of them"),
             ("loadavg_before", "load average before the run"),
             ("loadavg_after", "load average after the run"),
             ("total_seconds", "benchmark time (s)"))
    write_summary(results_path, lines, info, raw, headers, rows, notes)


def main(argv):
    return run_command(argv, __doc__, {
        "settings": (5, cmd_settings), "part": (14, cmd_part), "cpu": (4, cmd_cpu), "blastin": (5, cmd_blastin),
        "base": (5, cmd_base), "pgbench": (5, cmd_pgbench), "table": (2, cmd_table)})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
