#!/usr/bin/env python3
"""Part (b) of the worker benchmark (bench/worker/run.sh): completion of a
recurring task -> its next occurrence visible through todo-api.
Standard library only.

  recur.py create URL TOKENS K TASKS
      user i (line i of TOKENS: "user token") creates one recurring task
      (FREQ=DAILY, UTC, due tomorrow 09:00Z) through POST /api/tasks;
      one JSON line per task to TASKS.
  recur.py complete URL TOKENS TASKS RATE POLL_MS SAMPLES
      completes the tasks one at a time, evenly spaced at RATE per second
      (POST /api/tasks/{id}/complete), and measures for each the time from
      the complete call's response to the next occurrence being visible:
      GET /api/tasks?status=pending&page_size=1 for the task's user (who
      has no other task) answering total 1, the item being occurrence 2 of
      the same series, due one day later.  Poller threads poll every
      pending task every POLL_MS at most, each over its own keep-alive
      connection.  One JSON line per task to SAMPLES; a summary line on
      stdout.

Times: time.monotonic() for the latencies; time.time() (wall clock,
epoch seconds) stored beside them so that run.sh can line them up with
the worker's log.
"""
import datetime
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import main as run_command  # noqa: E402
from benchlib import percentile  # noqa: E402


def conn_for(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=10)


class Client:
    def __init__(self, url):
        self.url = url
        self.c = conn_for(url)

    def call(self, method, path, token, body=None):
        headers = {"Authorization": "Bearer " + token}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.c.request(method, path, body=data, headers=headers)
                r = self.c.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (http.client.HTTPException, OSError):
                self.c.close()
                self.c = conn_for(self.url)
                if attempt == 2:
                    raise
        return None, None


def read_tokens(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                out.append((parts[0], parts[1]))
    return out


def cmd_create(url, tokens_path, k, tasks_path):
    tokens = read_tokens(tokens_path)[: int(k)]
    due = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).strftime(
        "%Y-%m-%dT09:00:00.000Z")
    cl = Client(url)
    n = 0
    with open(tasks_path, "w", encoding="utf-8") as out:
        for i, (user, tok) in enumerate(tokens):
            body = {"title": f"Water the plants {i + 1}", "priority": "medium", "tags": ["home"],
                    "due_date": due, "timezone": "UTC",
                    "recurrence": {"rrule": "FREQ=DAILY", "timezone": "UTC"}}
            st, task = cl.call("POST", "/api/tasks", tok, body)
            if st != 201:
                sys.exit(f"recur.py: create for {user} answered {st}: {task}")
            rec = task.get("recurrence") or {}
            out.write(json.dumps({"user": user, "task_id": task["id"], "series_id": rec.get("series_id"),
                                  "due": task.get("due_date"), "occurrence": rec.get("occurrence")}) + "\n")
            n += 1
    print(json.dumps({"created": n, "due": due}))


def cmd_complete(url, tokens_path, tasks_path, rate, poll_ms, samples_path):
    tokens = dict(read_tokens(tokens_path))
    tasks = []
    with open(tasks_path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                tasks.append(json.loads(line))
    rate = float(rate)
    poll_s = float(poll_ms) / 1000.0
    pollers = 4
    lock = threading.Lock()
    pending = [dict() for _ in range(pollers)]  # per poller: index -> sample
    done = []
    finished = threading.Event()
    stats = {"polls": 0, "poll_errors": 0, "wrong": 0}

    def poller(j):
        cl = Client(url)
        while True:
            with lock:
                items = list(pending[j].items())
            if not items:
                if finished.is_set():
                    return
                time.sleep(0.002)
                continue
            now = time.monotonic()
            next_at = min(s.get("last_poll", 0.0) + poll_s for _, s in items)
            if next_at > now:
                time.sleep(next_at - now)
                continue
            for idx, s in items:
                if now - s.get("last_poll", 0.0) < poll_s:
                    continue
                tok = tokens[s["user"]]
                t_send = time.monotonic()
                s["last_poll"] = t_send
                try:
                    st, body = cl.call("GET", "/api/tasks?status=pending&page_size=1", tok)
                except (http.client.HTTPException, OSError):
                    st, body = None, None
                t_recv = time.monotonic()
                with lock:
                    stats["polls"] += 1
                    s["polls"] += 1
                if st != 200:
                    with lock:
                        stats["poll_errors"] += 1
                    continue
                if body.get("total", 0) >= 1:
                    item = body["items"][0]
                    rec = item.get("recurrence") or {}
                    ok = (rec.get("series_id") == s["series_id"] and rec.get("occurrence") == 2
                          and item.get("due_date") == s["next_due"])
                    s["visible_ms"] = (t_recv - s["t_resp"]) * 1000.0
                    s["visible_lo_ms"] = (t_send - s["t_resp"]) * 1000.0
                    s["visible_wall"] = s["t_resp_wall"] + (t_recv - s["t_resp"])
                    s["next_id"] = item.get("id")
                    s["next_ok"] = ok
                    if not ok:
                        with lock:
                            stats["wrong"] += 1
                    with lock:
                        del pending[j][idx]
                        done.append(s)

    threads = [threading.Thread(target=poller, args=(j,), daemon=True) for j in range(pollers)]
    for t in threads:
        t.start()
    cl = Client(url)
    errors = 0
    t0 = time.monotonic() + 0.2
    for i, task in enumerate(tasks):
        at = t0 + i / rate
        d = at - time.monotonic()
        if d > 0:
            time.sleep(d)
        due = datetime.datetime.strptime(task["due"], "%Y-%m-%dT%H:%M:%S.%fZ")
        next_due = (due + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        tok = tokens[task["user"]]
        t_req = time.monotonic()
        t_req_wall = time.time()
        st, body = cl.call("POST", f"/api/tasks/{task['task_id']}/complete", tok)
        t_resp = time.monotonic()
        if st != 200 or (body or {}).get("status") != "completed":
            errors += 1
            continue
        s = {"i": i, "user": task["user"], "task_id": task["task_id"], "series_id": task["series_id"],
             "next_due": next_due, "t_req_wall": t_req_wall, "t_resp": t_resp,
             "t_resp_wall": t_req_wall + (t_resp - t_req), "complete_ms": (t_resp - t_req) * 1000.0,
             "late_ms": (t_req - at) * 1000.0, "polls": 0}
        with lock:
            pending[i % pollers][i] = s
    t_last_complete = time.monotonic()
    # wait for the stragglers: at most 30 s after the last completion
    while time.monotonic() - t_last_complete < 30:
        with lock:
            left = sum(len(p) for p in pending)
        if not left:
            break
        time.sleep(0.01)
    finished.set()
    with lock:
        timed_out = [s for p in pending for s in p.values()]
        for p in pending:
            p.clear()
    for t in threads:
        t.join(timeout=5)
    with open(samples_path, "w", encoding="utf-8") as out:
        for s in sorted(done + timed_out, key=lambda x: x["i"]):
            s = {k: v for k, v in s.items() if k not in ("t_resp", "last_poll")}
            out.write(json.dumps(s) + "\n")
    vis = [s["visible_ms"] for s in done]
    comp = [s["complete_ms"] for s in done + timed_out]
    span = (t_last_complete - t0) if tasks else 0
    summary = {
        "completed": len(done) + len(timed_out), "complete_errors": errors, "visible": len(done),
        "not_visible_after_30s": len(timed_out), "wrong_next": stats["wrong"],
        "polls": stats["polls"], "poll_errors": stats["poll_errors"],
        "rate_target": rate, "rate_actual": round((len(tasks) - 1) / span, 2) if span > 0 else None,
        "vis_p50_ms": percentile(vis, 50), "vis_p90_ms": percentile(vis, 90),
        "vis_p99_ms": percentile(vis, 99), "vis_max_ms": max(vis) if vis else None,
        "vis_mean_ms": sum(vis) / len(vis) if vis else None,
        "complete_p50_ms": percentile(comp, 50), "complete_p99_ms": percentile(comp, 99),
        "polls_per_task": round(stats["polls"] / len(done), 1) if done else None,
    }
    print(json.dumps(summary))


def main(argv):
    return run_command(argv, __doc__, {"create": (4, cmd_create), "complete": (6, cmd_complete)})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
