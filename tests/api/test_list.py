#!/usr/bin/env python3
"""api.list — GET /api/tasks: every filter, every sort in both directions,
pagination (docs/api.md "List")."""

import datetime as dt
import math
import uuid

import apitest
from apitest import parse_time, query, rfc3339, utc_now

WORDS = ["Apple", "Banana", "Cherry", "Damson", "Elder", "Fig", "Grape"]
PRIORITIES = ["low", "medium", "high", "urgent"]
TAG_SETS = [[], ["home"], ["work"], ["home", "work"], ["Home", "errands"], ["invoices"]]
RANK = {p: i for i, p in enumerate(PRIORITIES)}
N_PLAIN = 28


def dataset(base):
    """(fields, complete?) of every task, in creation order."""
    out = []
    for i in range(N_PLAIN):
        fields = {"title": f"{WORDS[i % len(WORDS)]} {i:02d}", "priority": PRIORITIES[i % 4],
                  "tags": TAG_SETS[i % len(TAG_SETS)]}
        if i % 5:  # distinct due dates from 10 h ago to 19 h ahead; every 5th has none
            fields["due_date"] = rfc3339(base + dt.timedelta(hours=(i * 7) % 30 - 10))
        if i == 4:
            fields["description"] = "Copy of the INVOICE for March"
        out.append((fields, i % 3 == 0))
    out.append(({"title": "Pay the Invoice", "priority": "urgent"}, False))
    out.append(({"title": "Discount 100% off", "description": "under_score"}, False))
    out.append(({"title": "Banana 01", "priority": "medium"}, False))  # same title as #1
    return out


class ListTasks(apitest.ApiTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.c = cls.daemon.client("u-list-" + uuid.uuid4().hex)
        # Whole second, half an hour from now: no due date is near "now".
        cls.base = (utc_now() + dt.timedelta(minutes=30)).replace(microsecond=0)
        for fields, complete in dataset(cls.base):
            r = cls.c.post("/api/tasks", fields)
            if r.status != 201:
                raise AssertionError(f"create {fields}: {r}")
            if complete and cls.c.post(f"/api/tasks/{r.json['id']}/complete").status != 200:
                raise AssertionError("complete failed")
        cls.tasks = {}
        for task_id in cls.fetch_ids_all():
            cls.tasks[task_id] = cls.c.get(f"/api/tasks/{task_id}").json

    @classmethod
    def fetch_ids_all(cls):
        r = cls.c.get("/api/tasks?page_size=100")
        if r.status != 200:
            raise AssertionError(f"list: {r}")
        return [t["id"] for t in r.json["items"]]

    def listing(self, **params):
        r = self.c.get(query("/api/tasks", **params))
        self.assert_status(r, 200)
        return r.json

    def items(self, **params):
        return self.listing(page_size=100, **params)["items"]

    def ids(self, **params):
        return [t["id"] for t in self.items(**params)]

    def expect(self, pred):
        return {i for i, t in self.tasks.items() if pred(t)}

    # ------------------------------------------------------------------ tests

    def test_all_tasks_listed(self):
        self.assertEqual(len(self.tasks), len(dataset(self.base)))

    def test_defaults(self):
        page = self.listing()
        total = len(self.tasks)
        self.assertEqual((page["page"], page["page_size"], page["total"], page["total_pages"]),
                         (1, 20, total, math.ceil(total / 20)))
        self.assertEqual([t["id"] for t in page["items"]], self.ids(sort="due_date")[:20],
                         "the default sort is due_date")
        for item in page["items"]:
            self.assertEqual(item, self.tasks[item["id"]], "list items are whole tasks")

    def test_filters(self):
        due = sorted(parse_time(t["due_date"]) for t in self.tasks.values() if t["due_date"])
        lo, hi = due[3], due[10]
        cases = [
            ({"q": "invoice"}, lambda t: any("invoice" in s.lower() for s in searchable(t))),
            ({"q": "%"}, lambda t: "%" in t["title"]),
            ({"q": "_"}, lambda t: any("_" in s for s in searchable(t))),
            ({"q": "APPLE"}, lambda t: "apple" in t["title"].lower()),
            ({"status": "completed"}, lambda t: t["status"] == "completed"),
            ({"status": "pending"}, lambda t: t["status"] == "pending"),
            ({"priority": "high"}, lambda t: t["priority"] == "high"),
            ({"priority": "low,urgent"}, lambda t: t["priority"] in ("low", "urgent")),
            ({"tags": "home"}, lambda t: has_tags(t, "home")),
            ({"tags": "HOME,work"}, lambda t: has_tags(t, "home", "work")),
            ({"tags": "errands,home"}, lambda t: has_tags(t, "home", "errands")),
            ({"due_from": rfc3339(lo)}, lambda t: due_in(t, lo, None)),
            ({"due_to": rfc3339(hi)}, lambda t: due_in(t, None, hi)),
            ({"due_from": rfc3339(lo), "due_to": rfc3339(hi)}, lambda t: due_in(t, lo, hi)),
            ({"overdue": "true"}, lambda t: t["overdue"]),
            ({"overdue": "false"}, lambda t: not t["overdue"]),
            ({"status": "pending", "priority": "medium,high", "tags": "work"},
             lambda t: t["status"] == "pending" and t["priority"] in ("medium", "high")
             and has_tags(t, "work")),
        ]
        for params, pred in cases:
            with self.subTest(**params):
                expected = self.expect(pred)
                self.assertTrue(0 < len(expected) < len(self.tasks), "the data exercise it")
                got = self.ids(**params)
                self.assertEqual(len(got), len(set(got)), "an item listed twice")
                self.assertEqual(set(got), expected)
                self.assertEqual(self.listing(**params)["total"], len(expected))
        # The data exercise each filter both ways.
        self.assertTrue(self.expect(lambda t: t["overdue"]) and
                        self.expect(lambda t: t["status"] == "completed" and t["due_date"] and
                                    parse_time(t["due_date"]) < utc_now()))
        self.assertEqual(len(self.expect(lambda t: due_in(t, lo, hi))), 7)

    def test_sorts(self):
        keys = {
            "due_date": lambda t: parse_time(t["due_date"]) if t["due_date"] else None,
            "priority": lambda t: RANK[t["priority"]],
            "created_at": lambda t: parse_time(t["created_at"]),
            "title": lambda t: t["title"].casefold(),
        }
        for name, key in keys.items():
            for desc in (False, True):
                with self.subTest(sort=name, desc=desc):
                    items = self.items(sort=("-" if desc else "") + name)
                    self.assertEqual({t["id"] for t in items}, set(self.tasks))
                    self.check_order(items, key, desc)

    def check_order(self, items, key, desc):
        values = [key(t) for t in items]
        present = [v for v in values if v is not None]
        self.assertEqual(values[:len(present)], present, "tasks without a value come last")
        self.assertEqual(present, sorted(present, reverse=desc))
        # Ties: by created_at then id (ascending for an ascending sort).
        for v in set(present):
            tie = [created_then_id(t) for t in items if key(t) == v]
            if desc:
                self.assertIn(tie, (sorted(tie), sorted(tie, reverse=True)), f"tie at {v}")
            else:
                self.assertEqual(tie, sorted(tie), f"tie at {v}")
        undated = [created_then_id(t) for t in items if key(t) is None]
        self.assertIn(undated, (sorted(undated), sorted(undated, reverse=True)))

    def test_priority_desc_is_urgent_first(self):
        items = self.items(sort="-priority")
        self.assertEqual(items[0]["priority"], "urgent")
        self.assertEqual(items[-1]["priority"], "low")

    def test_pages_are_stable_and_complete(self):
        total = len(self.tasks)
        for sort in ("due_date", "-priority", "title", "-created_at"):
            with self.subTest(sort=sort):
                whole = self.ids(sort=sort)
                seen = []
                pages = math.ceil(total / 7)
                for n in range(1, pages + 1):
                    page = self.listing(sort=sort, page=n, page_size=7)
                    self.assertEqual((page["page"], page["page_size"], page["total"],
                                      page["total_pages"]), (n, 7, total, pages))
                    self.assertEqual(len(page["items"]), min(7, total - 7 * (n - 1)))
                    seen += [t["id"] for t in page["items"]]
                self.assertEqual(seen, whole)
                self.assertEqual(sorted(seen), sorted(self.tasks))

    def test_page_size_bounds(self):
        self.assertEqual(len(self.listing(page_size=100)["items"]), len(self.tasks))
        self.assertEqual(len(self.listing(page_size=1)["items"]), 1)
        self.assert_problem(self.c.get("/api/tasks?page_size=101"), 400, "validation",
                            "page_size")

    def test_bad_parameters(self):
        bad = [("page", "0"), ("page", "-1"), ("page", "two"), ("page_size", "0"),
               ("page_size", "1000"), ("page_size", "x"), ("status", "done"),
               ("priority", "critical"), ("priority", "low,critical"), ("sort", "colour"),
               ("sort", "-colour"), ("due_from", "yesterday"), ("due_to", "2026-13-01T00:00:00Z"),
               ("overdue", "maybe"), ("colour", "red"), ("page_sizes", "5")]
        for name, value in bad:
            with self.subTest(**{name: value}):
                self.assert_problem(self.c.get(query("/api/tasks", **{name: value})), 400,
                                    "validation", name)


def created_then_id(t):
    return parse_time(t["created_at"]), t["id"]


def searchable(t):
    return [t["title"], t["description"] or ""] + t["tags"]


def has_tags(t, *wanted):
    mine = {tag.lower() for tag in t["tags"]}
    return all(w.lower() in mine for w in wanted)


def due_in(t, lo, hi):
    if not t["due_date"]:
        return False
    d = parse_time(t["due_date"])
    return (lo is None or lo <= d) and (hi is None or d < hi)


if __name__ == "__main__":
    apitest.main()
