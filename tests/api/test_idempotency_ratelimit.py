#!/usr/bin/env python3
"""api.idempotency_ratelimit — Idempotency-Key replays, the per-user rate
limit, and both without Redis (docs/api.md "Idempotency", "Rate limit")."""

import threading
import time
import uuid

import apitest
from apitest import event_data, metric_value


def key_header(key=None):
    return {"Idempotency-Key": key or "k-" + uuid.uuid4().hex}


class Idempotency(apitest.ApiTestCase):
    def setUp(self):
        self.c = self.new_client()

    def test_post_replayed(self):
        tail = self.tail("task.events")
        h = key_header()
        first = self.c.post("/api/tasks", {"title": "once"}, headers=h)
        self.assert_status(first, 201)
        self.assertNotEqual(first.header("Idempotent-Replayed"), "true")
        again = self.c.post("/api/tasks", {"title": "once"}, headers=h)
        self.assert_status(again, 201)
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        self.assertEqual(again.json, first.json)
        self.assertEqual((again.header("Location"), again.header("ETag")),
                         (first.header("Location"), first.header("ETag")))
        self.assertEqual(self.c.get("/api/tasks").json["total"], 1)
        # A later change's event proves every earlier event is on the topic.
        last = self.create_task(self.c, title="sentinel")
        records = tail.wait_for(self.c.user, lambda e: event_data(e).get("task_id") == last["id"])
        created = [r["event"]["data"]["task_id"] for r in records
                   if r["event"]["type"] == "com.todo.task.created"]
        self.assertEqual(created, [first.json["id"], last["id"]])

    def test_same_key_different_request_is_422(self):
        h = key_header()
        t = self.c.post("/api/tasks", {"title": "a"}, headers=h)
        self.assert_status(t, 201)
        self.assert_problem(self.c.post("/api/tasks", {"title": "b"}, headers=h), 422,
                            "idempotency-key-reused")
        self.assert_problem(self.c.patch(f"/api/tasks/{t.json['id']}", {"title": "a"}, headers=h),
                            422, "idempotency-key-reused")
        self.assertEqual(self.get_task(self.c, t.json["id"])["version"], 1)

    def test_keys_are_per_user(self):
        h = key_header("shared-key-" + uuid.uuid4().hex)
        mine = self.c.post("/api/tasks", {"title": "same"}, headers=h)
        theirs = self.new_client().post("/api/tasks", {"title": "same"}, headers=h)
        self.assert_status(theirs, 201)
        self.assertNotEqual(theirs.header("Idempotent-Replayed"), "true")
        self.assertNotEqual(theirs.json["id"], mine.json["id"])

    def test_patch_and_delete_replayed(self):
        t = self.create_task(self.c, title="v1")
        path = f"/api/tasks/{t['id']}"
        h = key_header()
        p1 = self.c.patch(path, {"title": "v2"}, headers=h)
        p2 = self.c.patch(path, {"title": "v2"}, headers=h)
        self.assertEqual((p1.status, p2.status, p2.header("Idempotent-Replayed")),
                         (200, 200, "true"))
        self.assertEqual(p2.json, p1.json)
        self.assertEqual(self.get_task(self.c, t["id"])["version"], 2, "changed once")
        h = key_header()
        d1 = self.c.delete(path, headers=h)
        d2 = self.c.delete(path, headers=h)
        self.assertEqual((d1.status, d2.status, d2.header("Idempotent-Replayed")),
                         (204, 204, "true"))

    def test_only_successes_are_stored(self):
        h = key_header()
        self.assert_problem(self.c.post("/api/tasks", {"title": ""}, headers=h), 400, "validation")
        ok = self.c.post("/api/tasks", {"title": "fixed"}, headers=h)
        self.assert_status(ok, 201)
        self.assertNotEqual(ok.header("Idempotent-Replayed"), "true")
        self.assertEqual(self.c.post("/api/tasks", {"title": "fixed"}, headers=h)
                         .header("Idempotent-Replayed"), "true")

    def test_concurrent_retries_create_once(self):
        h = key_header()
        results = []

        def post():
            results.append(self.c.post("/api/tasks", {"title": "racing"}, headers=h))

        threads = [threading.Thread(target=post) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        created = [r for r in results if r.status == 201]
        for r in results:
            if r.status != 201:
                self.assert_problem(r, 409, "conflict")
        self.assertTrue(created, results)
        self.assertEqual(len({r.json["id"] for r in created}), 1, "one task, replayed")
        self.assertEqual(self.c.get("/api/tasks").json["total"], 1)

    def test_key_format(self):
        self.assert_status(self.c.post("/api/tasks", {"title": "t"}, headers=key_header("k" * 255)),
                           201)
        for key in ("k" * 256, "", "caf\u00e9".encode().decode("latin-1")):
            with self.subTest(length=len(key)):
                r = self.c.post("/api/tasks", {"title": "t"}, headers={"Idempotency-Key": key})
                self.assert_problem(r, 400, "validation")


class RateLimit(apitest.ApiTestCase):
    daemon_env = {"TE_RATE_LIMIT": "2", "TE_RATE_BURST": "3"}

    def test_over_the_limit_is_429(self):
        a, b = self.new_client(), self.new_client()
        statuses = [a.get("/api/tasks").status for _ in range(3)]
        self.assertEqual(statuses, [200, 200, 200], "the burst")
        r = a.get("/api/tasks")
        self.assert_problem(r, 429, "rate-limited")
        retry = r.header("Retry-After")
        self.assertRegex(retry or "", r"^\d+$")
        self.assertGreaterEqual(int(retry), 1)
        self.assert_status(b.get("/api/tasks"), 200)  # another user is not affected
        self.assertGreaterEqual(metric_value(self.daemon.metrics(), "te_rate_limited_total"), 1)
        time.sleep(int(retry))
        self.assert_status(a.get("/api/tasks"), 200)


class RedisDown(apitest.ApiTestCase):
    daemon_env = {"TE_REDIS_URL": "redis://127.0.0.1:1", "TE_RATE_LIMIT": "1",
                  "TE_RATE_BURST": "1"}

    def test_requests_succeed_without_redis(self):
        c = self.new_client()
        h = key_header()
        ids = []
        for _ in range(2):
            r = c.post("/api/tasks", {"title": "no redis"}, headers=h)
            self.assert_status(r, 201)
            self.assertNotEqual(r.header("Idempotent-Replayed"), "true")
            ids.append(r.json["id"])
        self.assertNotEqual(ids[0], ids[1], "the key is ignored without Redis")
        statuses = [c.get("/api/tasks").status for _ in range(5)]
        self.assertEqual(statuses, [200] * 5, "not rate limited without Redis")
        self.assertEqual(metric_value(self.daemon.metrics(), "te_redis_up"), 0)
        self.assert_status(self.daemon.request("GET", "/readyz"), 200)


if __name__ == "__main__":
    apitest.main()
