#!/usr/bin/env python3
"""api.reminders_tags — /api/tasks/{id}/reminders and /api/tags
(docs/api.md "Reminders", "Tags")."""

import uuid

import apitest
from apitest import UUID_RE, instants, parse_time

DUE = "2030-05-01T12:00:00Z"


class Reminders(apitest.ApiTestCase):
    def setUp(self):
        self.c = self.new_client()
        self.task = self.create_task(self.c, title="Dentist", due_date=DUE)
        self.path = f"/api/tasks/{self.task['id']}/reminders"

    def add(self, body, status=201):
        r = self.c.post(self.path, body)
        self.assert_status(r, status)
        return r.json

    def test_add_list_delete(self):
        rel = self.add({"offset_minutes": 60})
        self.assertRegex(rel["id"], UUID_RE)
        self.assertEqual(
            instants((rel["offset_minutes"], rel["remind_at"], rel["status"], rel["sent_at"])),
            instants((60, "2030-05-01T11:00:00Z", "pending", None)))
        self.assertNotIn("at", rel)
        parse_time(rel["created_at"])
        absolute = self.add({"at": "2030-04-30T20:00:00+02:00"})
        self.assertEqual(instants((absolute["at"], absolute["remind_at"], absolute["status"])),
                         instants(("2030-04-30T18:00:00Z", "2030-04-30T18:00:00Z", "pending")))
        self.assertNotIn("offset_minutes", absolute)
        zero = self.add({"offset_minutes": 0})
        self.assertEqual(instants(zero["remind_at"]), instants(DUE))

        listed = self.c.get(self.path)
        self.assert_status(listed, 200)
        self.assertEqual(sorted(x["id"] for x in listed.json["items"]),
                         sorted([rel["id"], absolute["id"], zero["id"]]))
        self.assertIn(rel, listed.json["items"])

        task = self.get_task(self.c, self.task["id"])
        self.assertEqual(task["version"], 4, "each reminder added is a change of the task")
        self.assertEqual(instants({r["id"]: r["remind_at"] for r in task["reminders"]}),
                         instants({rel["id"]: "2030-05-01T11:00:00Z",
                                   absolute["id"]: "2030-04-30T18:00:00Z", zero["id"]: DUE}))

        self.assert_status(self.c.delete(f"{self.path}/{rel['id']}"), 204)
        self.assertNotIn(rel["id"], [x["id"] for x in self.c.get(self.path).json["items"]])
        self.assertEqual(self.get_task(self.c, self.task["id"])["version"], 5)
        self.assert_problem(self.c.delete(f"{self.path}/{rel['id']}"), 404, "not-found")
        self.assert_problem(self.c.delete(f"{self.path}/{uuid.uuid4()}"), 404, "not-found")
        self.assert_problem(self.c.delete(f"{self.path}/nope"), 404, "not-found")

    def test_remind_at_follows_the_due_date(self):
        rel = self.add({"offset_minutes": 30})
        r = self.c.patch(f"/api/tasks/{self.task['id']}", {"due_date": "2030-06-01T08:00:00Z"})
        self.assert_status(r, 200)
        self.assertEqual(instants([(x["id"], x["remind_at"]) for x in r.json["reminders"]]),
                         instants([(rel["id"], "2030-06-01T07:30:00Z")]))
        self.assertEqual(instants(self.c.get(self.path).json["items"][0]["remind_at"]),
                         instants("2030-06-01T07:30:00Z"))

    def test_limits_and_invalid_bodies(self):
        for i in range(10):
            self.add({"offset_minutes": i * 5})
        self.assert_problem(self.c.post(self.path, {"offset_minutes": 100}), 400, "validation")
        self.assertEqual(len(self.c.get(self.path).json["items"]), 10)
        other = self.create_task(self.c, due_date=DUE)
        path = f"/api/tasks/{other['id']}/reminders"
        self.assert_status(self.c.post(path, {"offset_minutes": 15}), 201)
        self.assert_problem(self.c.post(path, {"offset_minutes": 15}), 400, "validation")
        self.assert_status(self.c.post(path, {"at": "2030-04-01T00:00:00Z"}), 201)
        self.assert_problem(self.c.post(path, {"at": "2030-04-01T00:00:00.000Z"}), 400,
                            "validation")
        bad = [({"offset_minutes": 10081}, "offset_minutes"),
               ({"offset_minutes": -1}, "offset_minutes"),
               ({"offset_minutes": "5"}, "offset_minutes"),
               ({"at": "later"}, "at"),
               ({}, None),
               ({"offset_minutes": 5, "at": DUE}, None)]
        for body, field in bad:
            with self.subTest(body=body):
                self.assert_problem(self.c.post(path, body), 400, "validation", field)
        self.assert_problem(self.c.post(path, "[]", headers={"Content-Type": "application/json"}),
                            400, "malformed-json")

    def test_relative_reminder_needs_a_due_date(self):
        undated = self.create_task(self.c)
        path = f"/api/tasks/{undated['id']}/reminders"
        self.assert_problem(self.c.post(path, {"offset_minutes": 10}), 400, "validation")
        self.assert_status(self.c.post(path, {"at": "2030-01-01T00:00:00Z"}), 201)

    def test_unknown_task(self):
        path = f"/api/tasks/{uuid.uuid4()}/reminders"
        self.assert_problem(self.c.get(path), 404, "not-found")
        self.assert_problem(self.c.post(path, {"offset_minutes": 5}), 404, "not-found")


class Tags(apitest.ApiTestCase):
    def setUp(self):
        self.c = self.new_client()

    def tags(self):
        r = self.c.get("/api/tags")
        self.assert_status(r, 200)
        return [(x["name"], x["task_count"]) for x in r.json["items"]]

    def test_create_and_conflict(self):
        r = self.c.post("/api/tags", {"name": "home"})
        self.assert_status(r, 201)
        self.assertEqual(r.json, {"name": "home", "task_count": 0})
        for name in ("home", "HOME", "Home"):
            with self.subTest(name=name):
                self.assert_problem(self.c.post("/api/tags", {"name": name}), 409, "conflict")
        for body in ({"name": ""}, {"name": "x" * 51}, {"name": 5}, {}, {"name": "a\u0001"}):
            with self.subTest(body=body):
                self.assert_problem(self.c.post("/api/tags", body), 400, "validation", "name")
        self.assertEqual(self.tags(), [("home", 0)])

    def test_list_counts_created_and_used_tags(self):
        self.c.post("/api/tags", {"name": "errands"})
        self.c.post("/api/tags", {"name": "home"})
        self.create_task(self.c, tags=["home", "work"])
        self.create_task(self.c, tags=["work"])
        self.create_task(self.c, tags=["zzz"])
        self.assertEqual(self.tags(), [("errands", 0), ("home", 1), ("work", 2), ("zzz", 1)])
        self.assert_problem(self.c.post("/api/tags", {"name": "WORK"}), 409, "conflict")

    def test_delete_takes_the_tag_off_every_task(self):
        a = self.create_task(self.c, tags=["home", "work"])
        b = self.create_task(self.c, tags=["work"])
        keep = self.create_task(self.c, tags=["home"])
        self.assert_status(self.c.delete("/api/tags/work"), 204)
        got_a, got_b, got_keep = (self.get_task(self.c, t["id"]) for t in (a, b, keep))
        self.assertEqual((got_a["tags"], got_a["version"]), (["home"], 2))
        self.assertEqual((got_b["tags"], got_b["version"]), ([], 2))
        self.assertEqual(got_keep, keep, "a task without the tag is untouched")
        self.assertEqual(self.tags(), [("home", 2)])
        self.assertEqual(self.c.get("/api/tasks?tags=work").json["total"], 0)
        self.assert_problem(self.c.delete("/api/tags/work"), 404, "not-found")
        self.assert_problem(self.c.delete("/api/tags/never-seen"), 404, "not-found")

    def test_names_with_spaces_and_created_only(self):
        self.assert_status(self.c.post("/api/tags", {"name": "two words"}), 201)
        t = self.create_task(self.c, tags=["two words"])
        self.assertEqual(self.tags(), [("two words", 1)])
        self.assert_status(self.c.delete("/api/tags/two%20words"), 204)
        self.assertEqual(self.get_task(self.c, t["id"])["tags"], [])
        self.assertEqual(self.tags(), [])

    def test_every_created_tag_can_be_deleted(self):
        for name, path in (("a/b", "a%2Fb"), ("c/d", "c/d"), ("50%", "50%25"), ("x?y", "x%3Fy"),
                           ("café", "caf%C3%A9")):
            with self.subTest(name=name, path=path):
                self.assert_status(self.c.post("/api/tags", {"name": name}), 201)
                t = self.create_task(self.c, tags=[name, "other"])
                self.assert_status(self.c.delete(f"/api/tags/{path}"), 204)
                self.assertEqual(self.get_task(self.c, t["id"])["tags"], ["other"])
        self.assertEqual(self.tags(), [("other", 5)])


if __name__ == "__main__":
    apitest.main()
