#!/usr/bin/env python3
"""api.tasks — task CRUD, complete/uncomplete/toggle, If-Match, the seed's
request fields and recurrence (docs/api.md "Tasks")."""

import uuid

import apitest
from apitest import UUID_RE, SERVER_TIME_RE, from_now, instants, parse_time, rrule_parts

BERLIN_DUE = "2030-01-31T09:00:00+01:00"  # a Thursday; 08:00 UTC


class TaskCrud(apitest.ApiTestCase):
    def setUp(self):
        self.c = self.new_client()

    def test_create_defaults_and_headers(self):
        r = self.c.post("/api/tasks", {"title": "Pay rent"})
        self.assert_status(r, 201)
        t = r.json
        self.assertRegex(t["id"], UUID_RE)
        self.assertEqual(r.header("Location"), f"/api/tasks/{t['id']}")
        self.assertEqual(r.header("ETag"), '"1"')
        self.assertTrue(r.header("Content-Type").startswith("application/json"), r)
        expected = {"user_id": self.c.user, "title": "Pay rent", "description": None,
                    "priority": "medium", "status": "pending", "tags": [], "due_date": None,
                    "reminders": [], "recurrence": None, "overdue": False, "version": 1,
                    "completed_at": None}
        self.assertEqual({k: t.get(k, "<absent>") for k in expected}, expected)
        self.assertIsNone(t.get("timezone"))
        for field in ("created_at", "updated_at"):
            self.assertRegex(t[field], SERVER_TIME_RE)

    def test_create_all_fields(self):
        t = self.create_task(self.c, title="Trip", description="Pack bags", priority="urgent",
                             tags=["travel", "home"], due_date="2030-06-01T10:30:00+02:00",
                             timezone="Europe/Berlin")
        self.assertEqual((t["description"], t["priority"], sorted(t["tags"]), t["timezone"]),
                         ("Pack bags", "urgent", ["home", "travel"], "Europe/Berlin"))
        self.assertEqual(parse_time(t["due_date"]), parse_time("2030-06-01T08:30:00Z"))

    def test_times_are_written_in_utc_with_milliseconds(self):
        for given, written in (("2030-06-01T10:30:00+02:00", "2030-06-01T08:30:00.000Z"),
                               ("2030-06-01T10:30:00.5-01:00", "2030-06-01T11:30:00.500Z"),
                               ("2030-06-01T10:30:00.123456Z", "2030-06-01T10:30:00.123Z")):
            with self.subTest(due_date=given):
                t = self.create_task(self.c, due_date=given, reminders=[{"at": given}])
                self.assertEqual((t["due_date"], t["reminders"][0]["at"],
                                  t["reminders"][0]["remind_at"]), (written,) * 3)
                done = self.c.post(f"/api/tasks/{t['id']}/complete").json
                for path, value in time_strings(done):
                    self.assertRegex(value, SERVER_TIME_RE, path)

    def test_server_fields_are_ignored(self):
        other = str(uuid.uuid4())
        t = self.create_task(self.c, title="Mine", id=other, user_id="mallory", version=42,
                             overdue=True, created_at="2001-01-01T00:00:00Z")
        self.assertNotEqual(t["id"], other)
        self.assertEqual(t["user_id"], self.c.user)
        self.assertEqual(t["version"], 1)
        self.assertFalse(t["overdue"])
        self.assertGreater(parse_time(t["created_at"]).year, 2001)

    def test_overdue(self):
        past = self.create_task(self.c, due_date=from_now(hours=-2))
        future = self.create_task(self.c, due_date=from_now(hours=2))
        self.assertTrue(past["overdue"])
        self.assertFalse(future["overdue"])
        done = self.c.post(f"/api/tasks/{past['id']}/complete")
        self.assert_status(done, 200)
        self.assertFalse(done.json["overdue"], "a completed task is never overdue")

    def test_get(self):
        created = self.create_task(self.c, title="Read", tags=["books"])
        r = self.c.get(f"/api/tasks/{created['id']}")
        self.assert_status(r, 200)
        self.assertEqual(r.json, created)
        self.assertEqual(r.header("ETag"), '"1"')

    def test_unknown_and_malformed_ids_are_404(self):
        for method, path in (("GET", f"/api/tasks/{uuid.uuid4()}"),
                             ("GET", "/api/tasks/not-a-uuid"),
                             ("POST", f"/api/tasks/{uuid.uuid4()}/complete")):
            with self.subTest(method=method, path=path):
                self.assert_problem(self.c.request(method, path), 404, "not-found")

    def test_put_replaces_and_clears_absent_fields(self):
        t = self.create_task(self.c, title="Old", description="d", priority="high", tags=["a"],
                             due_date=from_now(days=3), timezone="Europe/Paris",
                             reminders=[{"offset_minutes": 10}])
        r = self.c.put(f"/api/tasks/{t['id']}", {"title": "New"})
        self.assert_status(r, 200)
        got = r.json
        self.assertEqual(r.header("ETag"), '"2"')
        self.assertEqual(
            {k: got[k] for k in ("id", "title", "description", "priority", "tags", "due_date",
                                 "reminders", "recurrence", "version", "created_at")},
            {"id": t["id"], "title": "New", "description": None, "priority": "medium",
             "tags": [], "due_date": None, "reminders": [], "recurrence": None, "version": 2,
             "created_at": t["created_at"]})
        self.assertIsNone(got.get("timezone"))
        self.assertEqual(self.get_task(self.c, t["id"]), got)
        self.assert_problem(self.c.put(f"/api/tasks/{t['id']}", {"priority": "low"}), 400,
                            "validation", "title")
        self.assert_problem(self.c.put(f"/api/tasks/{uuid.uuid4()}", {"title": "x"}), 404,
                            "not-found")

    def test_patch_is_a_merge_patch(self):
        t = self.create_task(self.c, title="Draft", description="keep?", priority="low",
                             tags=["x"], due_date=from_now(days=1))
        r = self.c.patch(f"/api/tasks/{t['id']}", {"title": "Final", "description": None},
                         headers={"Content-Type": "application/merge-patch+json"})
        self.assert_status(r, 200)
        self.assertEqual((r.json["title"], r.json["description"]), ("Final", None))
        self.assertEqual((r.json["priority"], r.json["tags"], r.json["due_date"]),
                         ("low", ["x"], t["due_date"]), "members absent from the patch stay")
        self.assertEqual(r.json["version"], 2)
        r = self.c.patch(f"/api/tasks/{t['id']}", {"due_date": None, "priority": "high"})
        self.assert_status(r, 200)
        self.assertEqual((r.json["due_date"], r.json["priority"]), (None, "high"))
        self.assertEqual(self.get_task(self.c, t["id"]), r.json)

    def test_patch_merges_nested_objects(self):
        """RFC 7396: an object in the patch is merged into the member, not swapped in."""
        t = self.create_task(self.c, due_date="2030-03-04T14:00:00Z",
                             recurrence={"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "UTC"})
        r = self.c.patch(f"/api/tasks/{t['id']}", {"recurrence": {"anchor": "completion"}})
        self.assert_status(r, 200)
        rec = r.json["recurrence"]
        self.assertEqual((rrule_parts(rec["rrule"]), rec["timezone"], rec["anchor"]),
                         ({"FREQ": "WEEKLY", "BYDAY": "MO"}, "UTC", "completion"))
        # Naming rrule (or the simple form's type) replaces the recurrence.
        r = self.c.patch(f"/api/tasks/{t['id']}", {"recurrence": {"rrule": "FREQ=DAILY"}})
        self.assert_status(r, 200)
        self.assertEqual((r.json["recurrence"]["rrule"], r.json["recurrence"]["anchor"]),
                         ("FREQ=DAILY", "schedule"))
        r = self.c.patch(f"/api/tasks/{t['id']}", {"recurrence": {"type": "weekly",
                                                                  "days_of_week": [1]}})
        self.assert_status(r, 200)
        self.assertEqual(rrule_parts(r.json["recurrence"]["rrule"]),
                         {"FREQ": "WEEKLY", "BYDAY": "TU"})
        r = self.c.patch(f"/api/tasks/{t['id']}", {"recurrence": None})
        self.assert_status(r, 200)
        self.assertIsNone(r.json["recurrence"])

    def test_every_task_response_carries_its_etag(self):
        t = self.create_task(self.c, due_date=from_now(days=1))
        path = f"/api/tasks/{t['id']}"
        for method, suffix, body in (("PUT", "", {"title": "p", "id": str(uuid.uuid4()),
                                                   "version": 77}),
                                     ("PATCH", "", {"title": "q"}), ("POST", "/complete", None),
                                     ("POST", "/uncomplete", None), ("PATCH", "/toggle", None),
                                     ("GET", "", None)):
            with self.subTest(method=method, path=path + suffix):
                r = self.c.request(method, path + suffix, body)
                self.assert_status(r, 200)
                self.assertEqual((r.json["id"], r.header("ETag")),
                                 (t["id"], f'"{r.json["version"]}"'))
        self.assertEqual(r.json["version"], 6, "server fields in a PUT body are ignored")

    def test_delete(self):
        t = self.create_task(self.c)
        r = self.c.delete(f"/api/tasks/{t['id']}")
        self.assert_status(r, 204)
        self.assertEqual(r.data, b"")
        self.assert_problem(self.c.get(f"/api/tasks/{t['id']}"), 404, "not-found")
        self.assert_problem(self.c.delete(f"/api/tasks/{t['id']}"), 404, "not-found")

    def test_toggle(self):
        t = self.create_task(self.c)
        path = f"/api/tasks/{t['id']}/toggle"
        first = self.c.patch(path)
        self.assert_status(first, 200)
        self.assertEqual(first.json["status"], "completed")
        self.assertRegex(first.json["completed_at"], SERVER_TIME_RE)
        second = self.c.patch(path)
        self.assert_status(second, 200)
        self.assertEqual((second.json["status"], second.json["completed_at"]), ("pending", None))
        self.assertEqual(second.json["version"], 3)


class CompleteAndEvents(apitest.ApiTestCase):
    def test_complete_is_idempotent_and_emits_one_event(self):
        c = self.new_client()
        tail = self.tail("task.events")
        t = self.create_task(c)
        path = f"/api/tasks/{t['id']}"
        first = c.post(path + "/complete")
        self.assert_status(first, 200)
        self.assertEqual(first.json["status"], "completed")
        self.assertRegex(first.json["completed_at"], SERVER_TIME_RE)
        self.assertEqual(first.json["version"], 2)
        again = c.post(path + "/complete")
        self.assert_status(again, 200)
        self.assertEqual(again.json, first.json, "second complete: no change")
        undo = c.post(path + "/uncomplete")
        self.assert_status(undo, 200)
        self.assertEqual((undo.json["status"], undo.json["completed_at"], undo.json["version"]),
                         ("pending", None, 3))
        undo2 = c.post(path + "/uncomplete")
        self.assert_status(undo2, 200)
        self.assertEqual(undo2.json, undo.json, "second uncomplete: no change")
        # Deleting is the last change: once its event is there, all are.
        self.assert_status(c.delete(path), 204)
        records = tail.wait_for(c.user, lambda e: e["type"] == "com.todo.task.deleted")
        types = [r["event"]["type"].rsplit(".", 1)[1] for r in records]
        self.assertEqual(types, ["created", "completed", "updated", "deleted"])


class IfMatch(apitest.ApiTestCase):
    def test_stale_if_match_is_412(self):
        c = self.new_client()
        t = self.create_task(c, title="v1")
        path = f"/api/tasks/{t['id']}"
        r = c.patch(path, {"title": "v2"}, headers={"If-Match": '"1"'})
        self.assert_status(r, 200)
        self.assertEqual(r.header("ETag"), '"2"')
        stale = {"If-Match": '"1"'}
        self.assert_problem(c.patch(path, {"title": "v3"}, headers=stale), 412,
                            "precondition-failed")
        self.assert_problem(c.put(path, {"title": "v3"}, headers=stale), 412,
                            "precondition-failed")
        self.assert_problem(c.delete(path, headers=stale), 412, "precondition-failed")
        self.assertEqual(self.get_task(c, t["id"])["title"], "v2", "nothing changed")
        self.assert_status(c.delete(path, headers={"If-Match": '"2"'}), 204)


class SeedFieldsAndRecurrence(apitest.ApiTestCase):
    def setUp(self):
        self.c = self.new_client()

    def test_reminder_offset_minutes(self):
        t = self.create_task(self.c, due_date="2030-05-01T12:00:00Z", reminder_offset_minutes=30)
        self.assertEqual(len(t["reminders"]), 1, t)
        rem = t["reminders"][0]
        self.assertEqual(
            instants((rem.get("offset_minutes"), rem.get("remind_at"), rem.get("status"))),
            instants((30, "2030-05-01T11:30:00Z", "pending")))
        self.assertRegex(rem.get("id", ""), UUID_RE)

    def test_simple_recurrence_becomes_rrule(self):
        # (simple form, RRULE parts required, parts allowed besides them)
        cases = [
            ({"type": "daily"}, {"FREQ": "DAILY"}, {}),
            ({"type": "daily", "interval": 2}, {"FREQ": "DAILY", "INTERVAL": "2"}, {}),
            ({"type": "weekly", "days_of_week": [0, 2, 4]},
             {"FREQ": "WEEKLY", "BYDAY": "MO,WE,FR"}, {}),
            ({"type": "weekly"}, {"FREQ": "WEEKLY"}, {"BYDAY": "TH"}),  # the due date's day
            ({"type": "monthly", "day_of_month": 31},
             {"FREQ": "MONTHLY", "BYMONTHDAY": "28,29,30,31", "BYSETPOS": "-1"}, {}),
            ({"type": "custom", "interval": 3}, {"FREQ": "DAILY", "INTERVAL": "3"}, {}),
            ({"type": "custom", "days_of_week": [5, 6]}, {"FREQ": "WEEKLY", "BYDAY": "SA,SU"}, {}),
            ({"type": "daily", "end_date": "2030-12-31T12:00:00+01:00"},
             {"FREQ": "DAILY", "UNTIL": "20301231T225959Z"}, {}),
        ]
        for simple, required, allowed in cases:
            with self.subTest(recurrence=simple):
                t = self.create_task(self.c, due_date=BERLIN_DUE, timezone="Europe/Berlin",
                                     recurrence=simple)
                rec = t["recurrence"]
                self.assertIsInstance(rec, dict, t)
                parts = normalize_byday(rrule_parts(rec["rrule"]))
                self.assertEqual({k: parts.get(k) for k in required}, normalize_byday(required),
                                 rec["rrule"])
                extra = {k: v for k, v in parts.items() if k not in required}
                self.assertEqual(extra, {k: v for k, v in allowed.items() if k in extra},
                                 rec["rrule"])
                self.assertEqual((rec.get("timezone"), rec.get("anchor")),
                                 ("Europe/Berlin", "schedule"))

    def test_rrule_with_timezone_and_anchor(self):
        t = self.create_task(self.c, due_date="2030-03-04T14:00:00Z", timezone="Europe/Berlin",
                             recurrence={"rrule": "FREQ=WEEKLY;BYDAY=MO",
                                         "timezone": "America/New_York", "anchor": "completion"})
        rec = t["recurrence"]
        self.assertEqual(rrule_parts(rec["rrule"]), {"FREQ": "WEEKLY", "BYDAY": "MO"})
        self.assertEqual((rec["timezone"], rec["anchor"], rec.get("occurrence")),
                         ("America/New_York", "completion", 1))
        self.assertRegex(rec.get("series_id") or "", UUID_RE)
        # The recurrence survives a GET unchanged.
        self.assertEqual(self.get_task(self.c, t["id"])["recurrence"], rec)

    def test_rrule_defaults(self):
        t = self.create_task(self.c, due_date="2030-03-04T14:00:00Z",
                             recurrence={"rrule": "FREQ=MONTHLY;BYMONTHDAY=4"})
        rec = t["recurrence"]
        self.assertEqual(rrule_parts(rec["rrule"]), {"FREQ": "MONTHLY", "BYMONTHDAY": "4"})
        self.assertEqual(rec["anchor"], "schedule")


def time_strings(value, path="task"):
    """(path, string) of every RFC 3339 string in a JSON value."""
    if isinstance(value, str) and apitest.RFC3339_RE.match(value):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from time_strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from time_strings(v, f"{path}[{i}]")


def normalize_byday(parts):
    """BYDAY compared as a set (MO,WE,FR == WE,MO,FR)."""
    out = dict(parts)
    if out.get("BYDAY"):
        out["BYDAY"] = ",".join(sorted(out["BYDAY"].split(",")))
    return out


if __name__ == "__main__":
    apitest.main()
