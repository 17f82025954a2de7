#!/usr/bin/env python3
"""api.events — the CloudEvents every change writes to task.events and
sync.events through the outbox (docs/api.md "Events", "Correlation";
docs/cloudevents.md for the shapes)."""

import secrets
import time

import apitest
from apitest import TRACEPARENT_RE, event_data, parse_time, validate_event

TASK = "com.todo.task."
SYNC = "com.todo.sync.task."
CLIENT_FIELDS = {"title", "description", "priority", "status", "tags", "due_date", "timezone",
                 "reminders", "recurrence"}


class Events(apitest.ApiTestCase):
    def setUp(self):
        self.c = self.new_client()

    def events_until(self, topic, task_id, short_type):
        """The user's events on topic up to the <short_type> event of task_id."""
        prefix = TASK if topic == "task.events" else SYNC
        records = self.tail(topic).wait_for(
            self.c.user, lambda e: e.get("type") == prefix + short_type
            and event_data(e).get("task_id") == task_id, what=f"{short_type} of {task_id}")
        for r in records:
            self.check_envelope(r, prefix)
        return [r["event"] for r in records]

    def check_envelope(self, record, prefix):
        ev = record.get("event")
        self.assertIsNotNone(ev, record)
        data = event_data(ev)
        with self.subTest(type=ev.get("type"), id=ev.get("id")):
            self.assertEqual(record["key"], self.c.user)
            self.assertEqual(record.get("mode"), "structured")
            self.assertEqual(ev["specversion"], "1.0")
            self.assertTrue(ev["type"].startswith(prefix), ev)
            self.assertEqual(ev["source"], "/todo-api")
            self.assertEqual(ev["subject"], f"tasks/{data.get('task_id')}")
            self.assertEqual(ev["partitionkey"], self.c.user)
            self.assertEqual(data.get("user_id"), self.c.user)
            self.assertIn(ev.get("datacontenttype", "application/json"), ("application/json",))
            self.assertRegex(ev.get("traceparent", ""), TRACEPARENT_RE)
            parse_time(ev["time"])
            rc, out = validate_event(ev)
            self.assertEqual(rc, 0, f"todoctl event validate: {out}")

    def assert_changes(self, ev, expected):
        """data.changes has exactly the client fields of expected, {old, new} each."""
        changes = event_data(ev).get("changes") or {}
        self.assertEqual({k: changes.get(k) for k in expected}, expected, ev)
        unexpected = (CLIENT_FIELDS & set(changes)) - set(expected)
        self.assertFalse(unexpected, f"unchanged fields in changes: {unexpected}")

    def test_lifecycle(self):
        c = self.c
        t = self.create_task(c, title="e1", priority="low", tags=["a"],
                             due_date="2030-01-01T10:00:00Z")
        path = f"/api/tasks/{t['id']}"
        updated = c.patch(path, {"title": "e2", "priority": "high"}).json
        completed = c.post(path + "/complete").json
        c.post(path + "/complete")  # no change, no event
        c.post(path + "/uncomplete")
        self.assert_status(c.post(path + "/reminders", {"offset_minutes": 15}), 201)
        self.assert_status(c.delete(path), 204)

        evs = self.events_until("task.events", t["id"], "deleted")
        self.assertEqual([e["type"][len(TASK):] for e in evs],
                         ["created", "updated", "completed", "updated", "updated", "deleted"])
        created, upd, comp, uncomp, rem, deleted = (event_data(e) for e in evs)
        self.assertEqual(created["task_id"], t["id"])
        for field in ("id", "title", "priority", "status", "tags"):
            self.assertEqual(created["task"][field], t[field], field)
        self.assertEqual(parse_time(created["task"]["due_date"]), parse_time(t["due_date"]))
        self.assert_changes(evs[1], {"title": {"old": "e1", "new": "e2"},
                                     "priority": {"old": "low", "new": "high"}})
        self.assertEqual(upd["task"]["title"], updated["title"], "task = the state after")
        self.assertEqual(parse_time(comp["completed_at"]), parse_time(completed["completed_at"]))
        self.assertEqual(comp["task"]["status"], "completed")
        self.assert_changes(evs[3], {"status": {"old": "completed", "new": "pending"}})
        self.assertIn("reminders", rem["changes"])
        self.assertEqual([x.get("offset_minutes") for x in rem["task"]["reminders"]], [15])
        parse_time(deleted["deleted_at"])

        syncs = self.events_until("sync.events", t["id"], "deleted")
        feed = c.get("/api/sync").json["changes"]
        self.assertEqual([(event_data(e)["seq"], event_data(e)["op"], e["type"][len(SYNC):])
                          for e in syncs],
                         [(x["seq"], x["op"], x["op"]) for x in feed])
        self.assertEqual([x["op"] for x in feed],
                         ["created", "updated", "completed", "updated", "updated", "deleted"])
        self.assertIsNone(event_data(syncs[-1]).get("task"))
        self.assertEqual(event_data(syncs[1])["task"]["title"], "e2")

    def test_put_that_completes(self):
        t = self.create_task(self.c, title="before")
        r = self.c.put(f"/api/tasks/{t['id']}", {"title": "after", "status": "completed"})
        self.assert_status(r, 200)
        self.assertEqual(r.json["status"], "completed")
        self.assert_status(self.c.delete(f"/api/tasks/{t['id']}"), 204)
        evs = self.events_until("task.events", t["id"], "deleted")
        types = [e["type"][len(TASK):] for e in evs]
        self.assertEqual((types[0], sorted(types[1:3]), types[3:]),
                         ("created", ["completed", "updated"], ["deleted"]))
        upd = next(e for e in evs if e["type"] == TASK + "updated")
        self.assertEqual(event_data(upd)["changes"]["title"], {"old": "before", "new": "after"})
        syncs = self.events_until("sync.events", t["id"], "deleted")
        self.assertEqual([event_data(e)["op"] for e in syncs], ["created", "completed", "deleted"])

    def test_tag_removal(self):
        t = self.create_task(self.c, tags=["x", "y"])
        self.assert_status(self.c.delete("/api/tags/x"), 204)
        self.assert_status(self.c.delete(f"/api/tasks/{t['id']}"), 204)
        evs = self.events_until("task.events", t["id"], "deleted")
        self.assertEqual([e["type"][len(TASK):] for e in evs], ["created", "updated", "deleted"])
        self.assert_changes(evs[1], {"tags": {"old": ["x", "y"], "new": ["y"]}})

    def test_traceparent(self):
        trace, parent = secrets.token_hex(16), secrets.token_hex(8)
        r = self.c.post("/api/tasks", {"title": "traced"},
                        headers={"traceparent": f"00-{trace}-{parent}-01"})
        self.assert_status(r, 201)
        m = TRACEPARENT_RE.match(r.header("traceparent") or "")
        self.assertTrue(m, f"response traceparent: {r.header('traceparent')!r}")
        self.assertEqual(m.group(1), trace, "the trace is continued")
        self.assertNotEqual(m.group(2), parent, "with a new span id")
        task_id = r.json["id"]
        # Without a traceparent: a new trace, which the events carry too.
        r2 = self.c.delete(f"/api/tasks/{task_id}")
        m2 = TRACEPARENT_RE.match(r2.header("traceparent") or "")
        self.assertTrue(m2, f"response traceparent: {r2.header('traceparent')!r}")
        self.assertNotEqual(m2.group(1), trace)
        for topic in ("task.events", "sync.events"):
            with self.subTest(topic=topic):
                evs = self.events_until(topic, task_id, "deleted")
                self.assertEqual([TRACEPARENT_RE.match(e["traceparent"]).group(1) for e in evs],
                                 [trace, m2.group(1)])
        logged = {rec.get("trace_id") for rec in self.daemon.log_records()}
        self.assertIn(trace, logged, "the request's log lines carry its trace id")


class TwoReplicas(apitest.ApiTestCase):
    """Two daemons on one database: one relay publishes, each event once, in
    commit order."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.replica = cls.start_daemon({"TE_JWT_SECRET": cls.daemon.secret}, "replica",
                                       cls.daemon.db)

    def test_events_once_in_commit_order(self):
        user = "u-" + secrets.token_hex(8)
        clients = [self.daemon.client(user), self.replica.client(user)]
        ids = [self.create_task(clients[i % 2], title=f"r{i}")["id"] for i in range(20)]
        records = self.tail("task.events").wait(user, lambda mine: len(mine) >= 20)
        self.assertEqual([event_data(r["event"]).get("task_id") for r in records], ids)
        syncs = self.tail("sync.events").wait(user, lambda mine: len(mine) >= 20)
        self.assertEqual([event_data(r["event"]).get("seq") for r in syncs], list(range(1, 21)))
        time.sleep(1)  # a duplicate, if any, would follow
        self.assertEqual(len(self.tail("task.events").of(user)), 20)


if __name__ == "__main__":
    apitest.main()
