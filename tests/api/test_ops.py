#!/usr/bin/env python3
"""api.ops — /healthz, /readyz, /metrics, /openapi.json, the JSON log,
`todo-api version|migrate`, and shutdown on SIGTERM/SIGINT
(docs/api.md "Running it", "Operations")."""

import http.client
import json
import re
import signal
import subprocess
import threading
import time
import uuid

import apitest
from apitest import API_BIN, UUID_RE, metric_value, parse_metrics

# Every route of docs/api.md.
ROUTES = {
    ("GET", "/api/tasks"), ("POST", "/api/tasks"),
    ("GET", "/api/tasks/{id}"), ("PUT", "/api/tasks/{id}"), ("PATCH", "/api/tasks/{id}"),
    ("DELETE", "/api/tasks/{id}"),
    ("POST", "/api/tasks/{id}/complete"), ("POST", "/api/tasks/{id}/uncomplete"),
    ("PATCH", "/api/tasks/{id}/toggle"),
    ("GET", "/api/tasks/{id}/reminders"), ("POST", "/api/tasks/{id}/reminders"),
    ("DELETE", "/api/tasks/{id}/reminders/{reminder_id}"),
    ("GET", "/api/tags"), ("POST", "/api/tags"), ("DELETE", "/api/tags/{name}"),
    ("GET", "/api/notification-settings"), ("PUT", "/api/notification-settings"),
    ("GET", "/api/activity"), ("GET", "/api/sync"),
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.json"),
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
NAMED_METRICS = ["te_http_request_duration_seconds_bucket", "te_http_requests_in_flight",
                 "te_outbox_backlog", "te_outbox_published_total",
                 "te_kafka_delivery_seconds_bucket", "te_kafka_delivery_errors_total",
                 "te_redis_up", "te_pg_up", "te_rate_limited_total"]


def template(path):
    return re.sub(r"\{[^}]*\}", "{}", path)


class Operations(apitest.ApiTestCase):
    def test_healthz_and_readyz(self):
        h = self.daemon.request("GET", "/healthz")
        self.assert_status(h, 200)
        self.assertEqual(h.json, {"status": "ok"})
        r = self.daemon.request("GET", "/readyz")
        self.assert_status(r, 200)
        self.assertIsInstance(r.json.get("status"), str, r)
        self.assertEqual(set(r.json.get("checks", {})), {"postgres", "kafka", "redis"}, r)

    def test_metrics(self):
        c = self.new_client()
        tasks = [self.create_task(c) for _ in range(2)]
        for t in tasks:
            self.assert_status(c.get(f"/api/tasks/{t['id']}"), 200)
        self.assert_status(c.get(f"/api/tasks/{uuid.uuid4()}"), 404)
        self.assert_status(c.get(f"/no-such-route/{uuid.uuid4()}"), 404)
        r = self.daemon.request("GET", "/metrics")
        self.assert_status(r, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/plain"), r)
        text = r.data.decode()
        samples = parse_metrics(text)
        self.assertIn("# TYPE te_http_request_duration_seconds histogram", text)
        route = {"route": "/api/tasks/{id}", "method": "GET"}
        self.assertGreaterEqual(metric_value(samples, "te_http_request_duration_seconds_bucket",
                                             status="200", le="+Inf", **route) or 0, 2, text)
        self.assertGreaterEqual(metric_value(samples, "te_http_request_duration_seconds_count",
                                             status="200", **route) or 0, 2)
        self.assertIsNotNone(metric_value(samples, "te_http_request_duration_seconds_sum",
                                          status="200", **route))
        self.assertEqual(metric_value(samples, "te_http_request_duration_seconds_count",
                                      status="404", **route), 1)
        self.assertIsNone(re.search(UUID_RE.pattern[1:-1], text), "a raw id in /metrics")
        for name in NAMED_METRICS:
            self.assertIsNotNone(metric_value(samples, name), f"no {name}")
        self.assertEqual((metric_value(samples, "te_redis_up"), metric_value(samples, "te_pg_up")),
                         (1, 1))

    def test_outbox_metrics(self):
        before = metric_value(self.daemon.metrics(), "te_outbox_published_total")
        c = self.new_client()
        for _ in range(3):
            self.create_task(c)
        # 3 changes x (task.events + sync.events)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            m = self.daemon.metrics()
            if metric_value(m, "te_outbox_published_total") >= before + 6 and \
                    metric_value(m, "te_outbox_backlog") == 0:
                break
            time.sleep(0.2)
        self.assertGreaterEqual(metric_value(m, "te_outbox_published_total"), before + 6)
        self.assertEqual(metric_value(m, "te_outbox_backlog"), 0)
        self.assertGreaterEqual(metric_value(m, "te_kafka_delivery_seconds_count"), 6)

    def test_openapi(self):
        r = self.daemon.request("GET", "/openapi.json")
        self.assert_status(r, 200)
        doc = json.loads(r.data)
        self.assertTrue(str(doc.get("openapi", "")).startswith("3.1"), doc.get("openapi"))
        self.assertIn("info", doc)
        described = {(m.upper(), template(p)) for p, item in doc.get("paths", {}).items()
                     for m in item if m in HTTP_METHODS}
        expected = {(m, template(p)) for m, p in ROUTES}
        self.assertEqual(sorted(described - expected), [], "described but not documented")
        self.assertEqual(sorted(expected - described), [], "documented but not described")

    def test_every_route_answers(self):
        c = self.new_client()
        t = self.create_task(c, due_date="2030-01-01T00:00:00Z")
        task = f"/api/tasks/{t['id']}"
        covered = set()

        def call(method, path, body=None):
            r = c.request(method, path, body)
            with self.subTest(method=method, path=path):
                self.assertTrue(200 <= r.status < 300, r)
            covered.update((m, p) for m, p in ROUTES if m == method and
                           re.fullmatch(re.sub(r"\{[^}]*\}", "[^/]+", p), path))
            return r

        for method, path, body in [
                ("GET", "/api/tasks", None), ("POST", "/api/tasks", {"title": "x"}),
                ("GET", task, None), ("PUT", task, {"title": "y", "due_date": t["due_date"]}),
                ("PATCH", task, {"title": "z"}), ("POST", task + "/complete", None),
                ("POST", task + "/uncomplete", None), ("PATCH", task + "/toggle", None),
                ("GET", task + "/reminders", None), ("GET", "/api/tags", None),
                ("POST", "/api/tags", {"name": "ops"}), ("GET", "/api/activity", None),
                ("GET", "/api/sync", None), ("GET", "/api/notification-settings", None),
                ("PUT", "/api/notification-settings", {"channels": ["in_app"]}),
                ("GET", "/healthz", None), ("GET", "/readyz", None),
                ("GET", "/metrics", None), ("GET", "/openapi.json", None)]:
            call(method, path, body)
        reminder = call("POST", task + "/reminders", {"offset_minutes": 10}).json or {}
        call("DELETE", f"{task}/reminders/{reminder.get('id')}")
        call("DELETE", "/api/tags/ops")
        call("DELETE", task)
        self.assertEqual(covered, ROUTES, "the calls above cover every route")

    def test_keep_alive_connection_survives_errors(self):
        """Requests on one connection (http.client reconnects when the server
        closes it): answers to requests refused before their body was read
        must not leave the rest of that body to be parsed as a request."""
        c = self.new_client()
        auth = {"Authorization": f"Bearer {c.token}"}
        json_ct = {**auth, "Content-Type": "application/json"}
        steps = [("POST", "/api/tasks", b'{"title":"a"}', json_ct, 201),
                 ("POST", "/api/tasks", b'{"title":"b"}', {**auth, "Content-Type": "text/plain"},
                  415),
                 ("POST", "/api/tasks", b'{"title":"c"}', {"Content-Type": "application/json"},
                  401),
                 ("POST", "/api/tasks", b'{"title":', json_ct, 400),
                 ("POST", "/api/tasks", b"x" * 70000, json_ct, 413),
                 ("GET", "/api/tasks", None, auth, 200)]
        conn = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=10)
        try:
            for method, path, body, headers, status in steps:
                with self.subTest(method=method, expected=status):
                    conn.request(method, path, body=body, headers=headers)
                    r = conn.getresponse()
                    data = r.read()
                    self.assertEqual(r.status, status, data[:300])
            self.assertEqual(json.loads(data)["total"], 1, "exactly one task was created")
        finally:
            conn.close()

    def test_json_log(self):
        c = self.new_client()
        t = self.create_task(c)
        self.assert_status(c.get(f"/api/tasks/{t['id']}"), 200)
        text = self.daemon.log_text(max_lines=10**9)
        lines = [line for line in text.splitlines() if line.strip()]
        records = self.daemon.log_records()
        self.assertEqual(len(records), len(lines), "every log line is a JSON object")
        for rec in records:
            self.assertTrue({"ts", "level", "service", "msg"} <= set(rec), rec)
        mine = [r for r in records
                if r.get("route") == "/api/tasks/{id}" and r.get("user") == c.user]
        self.assertTrue(mine, "a request line with the route template and the user")
        self.assertTrue({"method", "status", "duration_ms", "trace_id"} <= set(mine[0]), mine[0])
        self.assertNotIn(self.daemon.secret, text, "the JWT secret is never logged")
        self.assertNotIn(c.token, text, "tokens are never logged")


class Lifecycle(apitest.ApiTestCase):
    def test_version(self):
        r = subprocess.run([API_BIN, "version"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"\d+\.\d+\.\d+")

    def test_migrate_then_serve_without_migrating(self):
        db = self.new_database("migrate")
        env = dict(self.daemon.env, TE_PG_URL=db.url)
        for attempt in (1, 2):
            r = subprocess.run([API_BIN, "migrate"], env=env, capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, f"migrate #{attempt}: {r.stdout}{r.stderr}")
        d = self.start_daemon({"TE_MIGRATE": "0"}, "premigrated", db)
        self.create_task(d.client("u-" + uuid.uuid4().hex))

    def test_an_edited_applied_migration_is_refused(self):
        db = self.new_database("edited")
        env = dict(self.daemon.env, TE_PG_URL=db.url)
        r = subprocess.run([API_BIN, "migrate"], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        # what the database recorded no longer matches the shipped file
        db.sql("UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 1")
        r = subprocess.run([API_BIN, "migrate"], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("never edit an applied migration", r.stderr)

    def test_sigint_exits_0(self):
        d = self.start_daemon(label="sigint")
        self.create_task(d.client("u-" + uuid.uuid4().hex))
        self.stop_daemon(d, signal.SIGINT)

    def test_sigterm_under_load(self):
        d = self.start_daemon(label="load")
        c = d.client("u-" + uuid.uuid4().hex)
        statuses, stop = [], threading.Event()

        def hammer():
            while not stop.is_set():
                try:
                    statuses.append(c.post("/api/tasks", {"title": "load"}).status)
                except OSError:
                    return  # the listener is closed

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        self.stop_daemon(d)
        stop.set()
        for t in threads:
            t.join(10)
        self.assertTrue(statuses, "requests were served before the shutdown")
        self.assertEqual(set(statuses), {201}, "in-flight requests finished normally")


if __name__ == "__main__":
    apitest.main()
