#!/usr/bin/env python3
"""api.validation — every invalid request is a problem naming what is wrong:
task fields, malformed or non-object JSON, content types, body limits,
unknown routes and methods (docs/api.md "Conventions")."""

import json

import apitest

DUE = "2030-05-01T09:00:00Z"

# (request body, field invalid_params must name)
INVALID_TASKS = [
    ({}, "title"),
    ({"title": ""}, "title"),
    ({"title": "   "}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"title": "é" * 201}, "title"),
    ({"title": "bell\u0007"}, "title"),
    ({"title": "two\nlines"}, "title"),
    ({"title": "nul\u0000byte"}, "title"),
    ({"title": "t", "description": "d" * 2001}, "description"),
    ({"title": "t", "description": "nul\u0000byte"}, "description"),
    ({"title": "t", "priority": "critical"}, "priority"),
    ({"title": "t", "status": "done"}, "status"),
    ({"title": "t", "tags": [f"tag{i}" for i in range(21)]}, "tags"),
    ({"title": "t", "tags": ["home", "HOME"]}, "tags"),
    ({"title": "t", "tags": ["x" * 51]}, "tags"),
    ({"title": "t", "tags": [""]}, "tags"),
    ({"title": "t", "tags": ["nul\u0000byte"]}, "tags"),
    ({"title": "t", "due_date": "tomorrow"}, "due_date"),
    ({"title": "t", "due_date": "2030-02-30T10:00:00Z"}, "due_date"),
    ({"title": "t", "due_date": "2030-04-01"}, "due_date"),
    ({"title": "t", "timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"title": "t", "due_date": DUE, "reminders": [{"offset_minutes": i} for i in range(11)]},
     "reminders"),
    ({"title": "t", "due_date": DUE, "reminders": [{"offset_minutes": 10081}]}, "reminders"),
    ({"title": "t", "due_date": DUE, "reminders": [{"offset_minutes": -1}]}, "reminders"),
    ({"title": "t", "due_date": DUE, "reminders": [{"offset_minutes": 5}, {"offset_minutes": 5}]},
     "reminders"),
    ({"title": "t", "reminders": [{"offset_minutes": 5}]}, "reminders"),
    ({"title": "t", "due_date": DUE, "reminders": [{"at": "soon"}]}, "reminders"),
    ({"title": "t", "due_date": DUE, "reminders": [{"at": DUE, "offset_minutes": 1}]},
     "reminders"),
    ({"title": "t", "due_date": DUE, "reminder_offset_minutes": 10081}, "reminder_offset_minutes"),
    ({"title": "t", "reminder_offset_minutes": 10}, "reminders"),
    ({"title": "t", "due_date": DUE, "recurrence": {"rrule": "FREQ=SOMETIMES"}}, "recurrence"),
    ({"title": "t", "due_date": DUE,
      "recurrence": {"rrule": "FREQ=DAILY;COUNT=2;UNTIL=20301231T000000Z"}}, "recurrence"),
    ({"title": "t", "recurrence": {"rrule": "FREQ=DAILY"}}, "recurrence"),
    ({"title": "t", "due_date": DUE, "recurrence": {"rrule": "FREQ=DAILY", "anchor": "whenever"}},
     "recurrence"),
    ({"title": "t", "due_date": DUE, "recurrence": {"rrule": "FREQ=DAILY", "timezone": "Nowhere"}},
     "recurrence"),
    ({"title": "t", "due_date": DUE, "recurrence": {"type": "hourly"}}, "recurrence"),
    ({"title": "t", "due_date": DUE, "recurrence": {"type": "monthly", "day_of_month": 32}},
     "recurrence"),
    ({"title": "t", "due_date": DUE, "recurrence": {"type": "weekly", "days_of_week": [7]}},
     "recurrence"),
    ({"title": "t", "due_date": DUE,
      "recurrence": {"type": "daily", "end_date": "2029-01-01T00:00:00Z"}}, "recurrence"),
    # wrong JSON types
    ({"title": 5}, "title"),
    ({"title": "t", "description": ["a"]}, "description"),
    ({"title": "t", "priority": 1}, "priority"),
    ({"title": "t", "tags": "home"}, "tags"),
    ({"title": "t", "tags": [1]}, "tags"),
    ({"title": "t", "due_date": 1767225600}, "due_date"),
    ({"title": "t", "timezone": 5}, "timezone"),
    ({"title": "t", "reminders": {"offset_minutes": 5}}, "reminders"),
    ({"title": "t", "due_date": DUE, "reminders": [5]}, "reminders"),
    ({"title": "t", "due_date": DUE, "reminder_offset_minutes": "10"}, "reminder_offset_minutes"),
    ({"title": "t", "due_date": DUE, "recurrence": "daily"}, "recurrence"),
    ({"title": "t", "completed": "yes"}, "completed"),
]

# Limits reached exactly: accepted.
VALID_EDGES = [
    {"title": "x" * 200},
    {"title": "é" * 200},
    {"title": "t", "description": "d" * 2000},
    {"title": "t", "tags": [f"t{i}" for i in range(20)]},
    {"title": "t", "tags": ["x" * 50]},
    {"title": "t", "due_date": DUE, "reminders": [{"offset_minutes": i} for i in range(10)]},
    {"title": "t", "due_date": DUE, "reminders": [{"offset_minutes": 10080}]},
]


def sized_body(size):
    """A JSON task object of exactly size bytes (a long description)."""
    head = json.dumps({"title": "t", "description": ""})
    return (head[:-2] + "d" * (size - len(head)) + head[-2:]).encode()


class FieldValidation(apitest.ApiTestCase):
    def setUp(self):
        self.c = self.new_client()

    def test_invalid_task_fields(self):
        for body, field in INVALID_TASKS:
            with self.subTest(body=json.dumps(body)[:120]):
                p = self.assert_problem(self.c.post("/api/tasks", body), 400, "validation", field)
                self.assertTrue(p.get("detail"), p)
        self.assertEqual(self.c.get("/api/tasks").json["total"], 0, "nothing was created")

    def test_limits_reached_exactly_are_accepted(self):
        for body in VALID_EDGES:
            with self.subTest(body=json.dumps(body)[:80]):
                self.assert_status(self.c.post("/api/tasks", body), 201)

    def test_every_problem_is_named(self):
        r = self.c.post("/api/tasks", {"priority": "critical", "tags": "home", "due_date": "x"})
        self.assert_problem(r, 400, "validation", ["title", "priority", "tags", "due_date"])

    def test_problem_document(self):
        trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        r = self.c.post("/api/tasks", {"title": " "},
                        headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
        p = self.assert_problem(r, 400, "validation", "title")
        self.assertEqual(p.get("instance"), "/api/tasks", p)
        self.assertEqual(p.get("trace_id"), trace, p)
        self.assertIn("title", p.get("detail", ""), p)
        reasons = [e.get("reason") for e in p["invalid_params"] if e.get("name") == "title"]
        self.assertTrue(reasons and all(reasons), p)

    def test_updates_are_validated(self):
        t = self.create_task(self.c, title="Keep me")
        path = f"/api/tasks/{t['id']}"
        self.assert_problem(self.c.patch(path, {"title": ""}), 400, "validation", "title")
        self.assert_problem(self.c.patch(path, {"priority": 3}), 400, "validation", "priority")
        self.assert_problem(self.c.patch(path, {"reminders": [{"offset_minutes": 5}]}), 400,
                            "validation", "reminders")
        self.assert_problem(self.c.put(path, {"title": "ok", "due_date": "x"}), 400,
                            "validation", "due_date")
        self.assertEqual(self.get_task(self.c, t["id"]), t, "a refused update changes nothing")

    def test_malformed_and_non_object_json(self):
        t = self.create_task(self.c)
        for raw in ['{"title": ', '{"title": "a",}', "not json", "", "{'title': 'a'}",
                    '{"title": "a"} x', "[1]", '"title"', "null", "42", "true"]:
            for method, path in (("POST", "/api/tasks"), ("PATCH", f"/api/tasks/{t['id']}")):
                with self.subTest(method=method, body=raw):
                    r = self.c.request(method, path, raw,
                                       headers={"Content-Type": "application/json"})
                    self.assert_problem(r, 400, "malformed-json")

    def test_content_types(self):
        body = json.dumps({"title": "typed"})
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
            with self.subTest(content_type=ctype):
                r = self.c.post("/api/tasks", body, headers={"Content-Type": ctype})
                self.assert_problem(r, 415, "unsupported-media-type")
        r = self.c.post("/api/tasks", body,
                        headers={"Content-Type": "application/json; charset=utf-8"})
        self.assert_status(r, 201)
        r = self.c.patch(f"/api/tasks/{r.json['id']}", body, headers={"Content-Type": "text/plain"})
        self.assert_problem(r, 415, "unsupported-media-type")

    def test_default_body_limit(self):
        over = self.c.post("/api/tasks", sized_body(65537),
                           headers={"Content-Type": "application/json"})
        self.assert_problem(over, 413, "payload-too-large")
        at = self.c.post("/api/tasks", sized_body(65536),
                         headers={"Content-Type": "application/json"})
        self.assert_problem(at, 400, "validation", "description")  # read, then validated

    def test_unknown_routes(self):
        t = self.create_task(self.c)
        for path in ("/api/nope", "/api/tasks/x/y/z", f"/api/tasks/{t['id']}/nope", "/nope",
                     "/api", "/api/tagsx"):
            with self.subTest(path=path):
                self.assert_problem(self.c.get(path), 404, "not-found")

    def test_wrong_methods(self):
        t = self.create_task(self.c)
        cases = [("DELETE", "/api/tasks", {"GET", "POST"}),
                 ("PUT", "/api/tags", {"GET", "POST"}),
                 ("GET", f"/api/tasks/{t['id']}/complete", {"POST"}),
                 ("POST", f"/api/tasks/{t['id']}", {"GET", "PUT", "PATCH", "DELETE"}),
                 ("POST", f"/api/tasks/{t['id']}/toggle", {"PATCH"}),
                 ("POST", "/api/sync", {"GET"}),
                 ("POST", "/healthz", {"GET"})]
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                r = self.c.request(method, path)
                self.assert_problem(r, 405, "method-not-allowed")
                allow = {m.strip().upper() for m in (r.header("Allow") or "").split(",")}
                self.assertTrue(allowed <= allow, f"Allow: {r.header('Allow')}")
                self.assertNotIn(method, allow)


class SmallBodyLimit(apitest.ApiTestCase):
    daemon_env = {"TE_API_MAX_BODY": "1024"}

    def test_configured_limit(self):
        c = self.new_client()
        headers = {"Content-Type": "application/json"}
        self.assert_status(c.post("/api/tasks", sized_body(1024), headers=headers), 201)
        self.assert_problem(c.post("/api/tasks", sized_body(1025), headers=headers), 413,
                            "payload-too-large")
        t = self.create_task(c)
        self.assert_problem(c.put(f"/api/tasks/{t['id']}", sized_body(4096), headers=headers),
                            413, "payload-too-large")


if __name__ == "__main__":
    apitest.main()
