#!/usr/bin/env python3
"""api.sync_activity — GET /api/sync (per-user gap-free change sequence) and
GET /api/activity (docs/api.md "Sync", "Activity")."""

import json
import threading
import uuid

import apitest
from apitest import SERVER_TIME_RE, instants, query

ZERO_SUMMARY = {"created": 0, "updated": 0, "completed": 0, "deleted": 0}


class Sync(apitest.ApiTestCase):
    def sync(self, c, **params):
        r = c.get(query("/api/sync", **params))
        self.assert_status(r, 200)
        return r.json

    def make_history(self, c):
        """created t1, created t2, updated t1, completed t2, deleted t1."""
        t1 = self.create_task(c, title="one")
        t2 = self.create_task(c, title="two")
        self.assert_status(c.patch(f"/api/tasks/{t1['id']}", {"title": "uno"}), 200)
        self.assert_status(c.post(f"/api/tasks/{t2['id']}/complete"), 200)
        self.assert_status(c.post(f"/api/tasks/{t2['id']}/complete"), 200)  # no change
        self.assert_status(c.delete(f"/api/tasks/{t1['id']}"), 204)
        return t1, t2

    def test_new_user_has_nothing(self):
        c = self.new_client()
        self.assertEqual(self.sync(c), {"changes": [], "seq": 0, "has_more": False})
        self.assertEqual(c.get("/api/tasks").header("X-Sync-Seq"), "0")

    def test_full_history(self):
        c = self.new_client()
        t1, t2 = self.make_history(c)
        s = self.sync(c, since=0)
        changes = s["changes"]
        self.assertEqual([(x["seq"], x["op"], x["task_id"]) for x in changes],
                         [(1, "created", t1["id"]), (2, "created", t2["id"]),
                          (3, "updated", t1["id"]), (4, "completed", t2["id"]),
                          (5, "deleted", t1["id"])])
        self.assertEqual((s["seq"], s["has_more"]), (5, False))
        self.assertEqual(changes[0]["task"]["title"], "one")
        self.assertEqual(changes[2]["task"]["title"], "uno")
        self.assertEqual(changes[2]["changes"]["title"], {"old": "one", "new": "uno"})
        self.assertEqual(changes[3]["task"]["status"], "completed")
        self.assertIsNone(changes[4]["task"])
        for x in changes:
            self.assertRegex(x["at"], SERVER_TIME_RE)
        self.assertEqual(c.get("/api/tasks").header("X-Sync-Seq"), "5")
        self.assertEqual(self.sync(c), s, "since defaults to 0")

    def test_since_and_limit(self):
        c = self.new_client()
        self.make_history(c)
        self.assertEqual([x["seq"] for x in self.sync(c, since=2)["changes"]], [3, 4, 5])
        self.assertEqual(self.sync(c, since=5), {"changes": [], "seq": 5, "has_more": False})
        seen, since = [], 0
        for expect_more in (True, True, False):
            page = self.sync(c, since=since, limit=2)
            seqs = [x["seq"] for x in page["changes"]]
            self.assertEqual((page["has_more"], page["seq"]), (expect_more, seqs[-1]), page)
            seen += seqs
            since = page["seq"]
        self.assertEqual(seen, [1, 2, 3, 4, 5])
        self.assertFalse(self.sync(c, limit=5)["has_more"], "exactly the rest: no more")
        self.assertTrue(self.sync(c, limit=4)["has_more"])

    def test_since_ahead_of_the_log_is_410(self):
        """A since the user never reached (state from elsewhere): 410 and X-Sync-Seq."""
        c = self.new_client()
        self.create_task(c)
        r = c.get("/api/sync?since=99")
        self.assert_problem(r, 410, "gone")
        self.assertEqual(r.header("X-Sync-Seq"), "1")
        self.assertEqual(self.sync(c, since=1), {"changes": [], "seq": 1, "has_more": False})

    def test_users_have_their_own_sequence(self):
        a, b = self.new_client(), self.new_client()
        self.make_history(a)
        tb = self.create_task(b, title="bee")
        sb = self.sync(b)
        self.assertEqual([(x["seq"], x["task_id"]) for x in sb["changes"]], [(1, tb["id"])])
        self.assertEqual(len(self.sync(a)["changes"]), 5)

    def test_concurrent_writes_get_gap_free_sequence(self):
        c = self.new_client()
        results = []

        def create(i):
            results.append(c.post("/api/tasks", {"title": f"parallel {i}"}).status)

        threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [201] * 16)
        s = self.sync(c)
        self.assertEqual([x["seq"] for x in s["changes"]], list(range(1, 17)))
        self.assertEqual(len({x["task_id"] for x in s["changes"]}), 16)

    def test_bad_parameters(self):
        c = self.new_client()
        for name, value in (("since", "-1"), ("since", "abc"), ("since", "1.5"), ("limit", "0"),
                            ("limit", "1001"), ("limit", "x"), ("cursor", "1")):
            with self.subTest(**{name: value}):
                self.assert_problem(c.get(query("/api/sync", **{name: value})), 400,
                                    "validation", name)
        self.assert_status(c.get("/api/sync?limit=1000"), 200)

    def test_pruned_log_is_410_gone(self):
        """A since older than the retained log: 410 and X-Sync-Seq.  The
        pruning is simulated in the database (the daemon prunes after days)."""
        c = self.new_client()
        self.make_history(c)
        user = c.user.replace("'", "''")
        self.daemon.db.sql(f"DELETE FROM changes WHERE user_id = '{user}' AND seq <= 3; "
                           f"UPDATE user_seq SET pruned_seq = 3 WHERE user_id = '{user}'")
        r = c.get("/api/sync?since=1")
        self.assert_problem(r, 410, "gone")
        self.assertEqual(r.header("X-Sync-Seq"), "5")
        self.assertEqual([x["seq"] for x in self.sync(c, since=3)["changes"]], [4, 5])


ACTIVITY_TYPES = ["created", "created", "updated", "completed", "deleted", "created"]


class Activity(apitest.ApiTestCase):
    def activity(self, c, **params):
        r = c.get(query("/api/activity", **params))
        self.assert_status(r, 200)
        return r.json

    def insert_activity(self, user):
        """Rows as todo-worker writes them: one a day, 1 … 6 June 2030 at 10:00 UTC."""
        rows = []
        for day, short in enumerate(ACTIVITY_TYPES, start=1):
            rows.append("('{e}', '{u}', 'com.todo.task.{t}', 'task', '{i}', "
                        "'2030-06-0{d}T10:00:00Z', '{j}')".format(
                            e=uuid.uuid4(), u=user, t=short, i=uuid.uuid4(), d=day,
                            j=json.dumps({"title": f"day {day}"})))
        self.daemon.db.sql("INSERT INTO activity (event_id, user_id, event_type, entity_type, "
                           "entity_id, occurred_at, details) VALUES " + ", ".join(rows))

    def test_new_user(self):
        c = self.new_client()
        self.assertEqual(self.activity(c), {"items": [], "next_cursor": None,
                                            "summary": ZERO_SUMMARY})

    def test_entries_filters_and_summary(self):
        c = self.new_client()
        self.insert_activity(c.user)
        self.insert_activity(self.new_client().user)  # another user's: never shown
        everything = self.activity(c)
        items = everything["items"]
        self.assertEqual(instants([x["occurred_at"] for x in items]),
                         instants([f"2030-06-0{d}T10:00:00Z" for d in range(6, 0, -1)]),
                         "newest first")
        self.assertEqual([x["event_type"] for x in items],
                         [f"com.todo.task.{t}" for t in reversed(ACTIVITY_TYPES)])
        first = items[0]
        self.assertEqual((first["entity_type"], first["details"]), ("task", {"title": "day 6"}))
        self.assertIsNone(everything["next_cursor"])
        self.assertEqual(everything["summary"],
                         {"created": 3, "updated": 1, "completed": 1, "deleted": 1})

        period = self.activity(c, **{"from": "2030-06-02T00:00:00Z", "to": "2030-06-05T00:00:00Z"})
        self.assertEqual([x["occurred_at"][:10] for x in period["items"]],
                         ["2030-06-04", "2030-06-03", "2030-06-02"])
        self.assertEqual(period["summary"],
                         {"created": 1, "updated": 1, "completed": 1, "deleted": 0})
        for event_type in ("com.todo.task.created", "task.created"):
            with self.subTest(event_type=event_type):
                got = self.activity(c, event_type=event_type)["items"]
                self.assertEqual([x["occurred_at"][:10] for x in got],
                                 ["2030-06-06", "2030-06-02", "2030-06-01"])
        for x in items:
            self.assertRegex(x["occurred_at"], SERVER_TIME_RE, "UTC with milliseconds")

    def test_cursor_pagination(self):
        c = self.new_client()
        self.insert_activity(c.user)
        seen, cursor, pages = [], None, 0
        while True:
            page = self.activity(c, limit=4, cursor=cursor)
            self.assertLessEqual(len(page["items"]), 4)
            seen += [x["id"] for x in page["items"]]
            self.assertEqual(page["summary"]["created"], 3, "summary counts the period, not a page")
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None or pages > 5:
                break
        self.assertEqual(pages, 2)
        self.assertEqual(seen, [x["id"] for x in self.activity(c)["items"]])

    def test_bad_parameters(self):
        c = self.new_client()
        for name, value in (("limit", "0"), ("limit", "101"), ("from", "yesterday"),
                            ("to", "2030-13-01T00:00:00Z"), ("cursor", "%%%"), ("since", "1")):
            with self.subTest(**{name: value}):
                self.assert_problem(c.get(query("/api/activity", **{name: value})), 400,
                                    "validation", name)


if __name__ == "__main__":
    apitest.main()
