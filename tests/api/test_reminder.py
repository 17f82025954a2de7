#!/usr/bin/env python3
"""api.reminder — todo-reminder, black box, against docs/reminder.md: a
reminder arrives on time, once, on every channel of the user's notification
settings (in-app = com.todo.notification.send on Kafka, a Standard Webhooks
signed POST to a receiver in this test, an email through a real local SMTP
server); completing / deleting / moving the task cancels or moves it; a
daemon stopped across the due time delivers it late (or marks it missed)
after its restart; two replicas deliver each reminder once; a webhook that
always fails gets exactly 3 attempts and one dead-letter record; a
redelivered reminder.due changes nothing; the notification settings API of
todo-api; the daemon's operations endpoints.

Each class has its own database, todo-api and todo-reminder (one consumer
group per class).  Kafka topics are shared and may be long: the tails of
reminder.due, notification.send and notification.dlq and the daemon's group
are positioned at the end of the topics (committed offsets) before anything
is produced (apitest.end_tails).  Times measured: webhook arrival (when its
headers are read) against the reminder's remind_at as todo-api returns it;
PostgreSQL and this test share the host clock.  Every user of a test is new,
with its own webhook path /hook/<user id>."""

import base64
import concurrent.futures
import datetime as dt
import email.header
import json
import os
import re
import secrets
import time
import uuid

import apitest
from apitest import (SERVER_TIME_RE, UUID_RE, event_data, instants, log, metric_value,
                     parse_metrics, parse_time, publish_event, rfc3339, validate_event)

# A reminder's webhook must arrive no earlier than remind_at and at most this
# much later (docs/reminder.md: "on time").
LATENESS_LIMIT = float(os.environ.get("TE_REMINDER_TEST_LATENESS_S", "1.5"))
DUE = 2.0  # seconds from the task's creation to its reminder
TOPICS = ("reminder.due", "notification.send", "notification.dlq")
DUE_TYPE = "com.todo.reminder.due"
SEND_TYPE = "com.todo.notification.send"
DLQ_TYPE = "com.todo.notification.dlq"
SETTINGS = "/api/notification-settings"
LATENESSES = []  # (test, seconds) of every on-time webhook measured


wait_until = apitest.wait_until


def new_secret(n=32):
    """A Standard Webhooks secret: whsec_ + base64 of n random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(n)).decode()


def address(n):
    """An email address of exactly n bytes (n > 75), labels of at most 60."""
    need = n - 64 - 1 - len(".test")
    domain = ""
    while need - len(domain) > 61:
        domain += "b" * 60 + "."
    return "a" * 64 + "@" + domain + "c" * (need - len(domain)) + ".test"


def epoch(s):
    return parse_time(s).timestamp()


def at_time(t):
    """Unix time t as RFC 3339 UTC with milliseconds."""
    return rfc3339(dt.datetime.fromtimestamp(t, dt.timezone.utc))


def sleep_until(t):
    left = t - time.time()
    if left > 0:
        time.sleep(left)


def body_json(req):
    try:
        return json.loads(req["body"])
    except ValueError:
        return None


def reminder_id_of(req):
    """data.reminder_id of a webhook request's body (None if not JSON)."""
    ev = body_json(req)
    return event_data(ev).get("reminder_id") if isinstance(ev, dict) else None


def same_event(a, b):
    """The members that make two copies of one CloudEvent the same event."""
    keys = ("id", "type", "source", "subject", "specversion", "data")
    return ({k: instants(a.get(k)) for k in keys} == {k: instants(b.get(k)) for k in keys})


class User:
    """A test user: its API client, its webhook path and secret, its email."""

    def __init__(self, client, path, secret, email, settings):
        self.c = client
        self.id = client.user
        self.path = path
        self.secret = secret
        self.email = email
        self.settings = settings


class ReminderCase(apitest.ApiTestCase):
    """todo-api and `replicas` todo-reminder processes (reminder_env) on one
    database, a webhook receiver, tails of TOPICS from their end; with_smtp:
    an SMTP server too (TE_SMTP_URL / TE_SMTP_FROM)."""

    reminder_env = {}
    replicas = 1
    with_smtp = False
    SMTP_FROM = "reminders@example.test"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hooks = apitest.WebhookReceiver()
        cls.addClassCleanup(cls.hooks.close)
        env = dict(cls.reminder_env)
        if cls.with_smtp:
            cls.smtp = apitest.SmtpServer()
            cls.addClassCleanup(cls.smtp.close)
            env.update(TE_SMTP_URL=cls.smtp.url, TE_SMTP_FROM=cls.SMTP_FROM)
        cls.group = f"todo-reminder-test-{uuid.uuid4().hex[:12]}"
        cls.tails.update(apitest.end_tails(TOPICS, extra_groups=[cls.group]))
        cls.reminder_settings = env
        cls.reminders_running = [
            cls.start_reminder(env, label=f"{cls.__name__}-reminder{i}", group=cls.group,
                               positioned=True)
            for i in range(cls.replicas)]
        cls.reminder = cls.reminders_running[0]

    def setUp(self):
        self.stale_at_start = self.stale_count()

    def stale_count(self):
        """te_reminder_events_total{result="stale"} of the running daemons
        (None when one does not answer)."""
        try:
            return sum(metric_value(d.metrics(), "te_reminder_events_total", result="stale") or 0
                       for d in self.reminders_running if d.proc and d.proc.poll() is None)
        except (OSError, AssertionError, ValueError):
            return None

    def foreign_note(self):
        """For a timing failure: how many stale reminder.due events (other
        databases' reminders: a benchmark or another test producing to the
        shared topic) the daemon went through meanwhile."""
        now = self.stale_count()
        if now is None or self.stale_at_start is None:
            return ""
        n = now - self.stale_at_start
        return (f" [the daemon handled {n:.0f} stale reminder.due events during this test"
                f"{' — other databases’ reminders on the shared topic (a benchmark running?)' if n > 20 else ''}]")

    # -- users, tasks, reminders

    def user(self, channels=("in_app", "webhook"), secret="new", email=None):
        """A new user whose settings are PUT: channels, the webhook URL
        /hook/<user> of the receiver when channels has webhook, secret
        ("new": a random one sent; None: none sent, the generated one is
        taken from the response), email."""
        c = self.new_client()
        path = f"/hook/{c.user}"
        body = {"channels": list(channels)}
        if "webhook" in channels:
            body["webhook_url"] = self.hooks.url(path)
        if secret == "new":
            secret = new_secret() if "webhook" in channels else None
        if secret:
            body["webhook_secret"] = secret
        if email:
            body["email"] = email
        r = c.put(SETTINGS, body)
        self.assertEqual(r.status, 200, f"PUT {SETTINGS} {body}: {r}")
        if secret is None and "webhook" in channels:
            secret = r.json.get("webhook_secret")
            self.assertRegex(secret or "", r"^whsec_",
                             f"no generated webhook_secret in the PUT response: {r}")
        return User(c, path, secret, email, r.json)

    def add_task(self, u, at=None, **fields):
        """A task of u with one absolute reminder at Unix time at (unless
        fields has reminders); returns (task, its first reminder)."""
        fields.setdefault("title", "remind-" + uuid.uuid4().hex[:10])
        if at is not None:
            fields.setdefault("reminders", [{"at": at_time(at)}])
        t = self.create_task(u.c, **fields)
        self.assertTrue(t.get("reminders"), f"no reminders in the created task: {t}")
        return t, t["reminders"][0]

    def reminders(self, u, task_id):
        r = u.c.get(f"/api/tasks/{task_id}/reminders")
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def reminder_state(self, u, task_id, rid):
        got = [x for x in self.reminders(u, task_id) if x.get("id") == rid]
        self.assertEqual(len(got), 1, f"reminder {rid} in GET /api/tasks/{task_id}/reminders")
        return got[0]

    def wait_status(self, u, task_id, rid, status, timeout=8):
        """The reminder (as GET /api/tasks/{id}/reminders shows it) once its
        status is status; AssertionError with the last state seen."""
        deadline = time.monotonic() + timeout
        while True:
            x = self.reminder_state(u, task_id, rid)
            if x.get("status") == status:
                return x
            if time.monotonic() >= deadline:
                raise AssertionError(f"reminder {rid} (task {task_id}): status {status!r} "
                                     f"expected within {timeout}s; GET shows {x}")
            time.sleep(0.1)

    def deliveries(self, x):
        """The reminder's deliveries by channel (each channel once)."""
        ds = x.get("deliveries")
        self.assertIsInstance(ds, list, f"deliveries of {x}")
        by = {}
        for d in ds:
            self.assertNotIn(d.get("channel"), by, f"two deliveries on one channel: {ds}")
            by[d.get("channel")] = d
        return by

    # -- what arrived

    def hook_requests(self, u, rid=None):
        return [r for r in self.hooks.received(u.path) if rid is None or reminder_id_of(r) == rid]

    def wait_hook(self, u, rid, n=1, timeout=DUE + 10):
        try:
            return self.hooks.wait(lambda rs: len([r for r in rs if reminder_id_of(r) == rid])
                                   >= n, u.path, timeout, f"{n} webhook request(s) of reminder "
                                   f"{rid}")
        except AssertionError as e:
            raise AssertionError(f"{e}{self.foreign_note()}") from None

    def sends(self, u, rid):
        """notification.send events of u (key = user) for reminder rid."""
        return [r for r in self.tails["notification.send"].of(u.id)
                if "event" in r and event_data(r["event"]).get("reminder_id") == rid]

    def due_events(self, rid, key=None):
        """reminder.due records for reminder rid (of key, or any key)."""
        tail = self.tails["reminder.due"]
        recs = tail.of(key) if key is not None else tail.records()
        return [r for r in recs if "event" in r and event_data(r["event"]).get("reminder_id") == rid]

    def dlq_records(self, rid):
        """notification.dlq records (any key) for reminder rid."""
        out = []
        for r in self.tails["notification.dlq"].records():
            data = event_data(r.get("event") or {})
            orig = data.get("original_event")
            if data.get("reminder_id") == rid or \
                    isinstance(orig, dict) and event_data(orig).get("reminder_id") == rid:
                out.append(r)
        return out

    def check_webhook(self, u, req):
        """A Standard Webhooks request as docs/reminder.md says; returns its
        body (the reminder.due CloudEvent)."""
        h = req["headers"]
        self.assertEqual(req["method"], "POST", req["headers"])
        ctype = (h.get("content-type") or "").split(";")[0].strip().lower()
        self.assertEqual(ctype, "application/cloudevents+json", h)
        msg_id, ts, sig = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
        self.assertRegex(msg_id or "", UUID_RE, f"webhook-id (the delivery id): {h}")
        self.assertRegex(ts or "", r"^\d+$", f"webhook-timestamp (Unix seconds): {h}")
        self.assertLessEqual(abs(int(ts) - req["t"]), 5,
                             f"webhook-timestamp {ts} is not the attempt's time ({req['t']:.0f})")
        want = apitest.standard_webhook_signature(u.secret, msg_id, ts, req["body"])
        given = (sig or "").split()
        self.assertTrue(any(s.startswith("v1,") for s in given),
                        f"webhook-signature has no v1 signature: {sig!r}")
        self.assertIn(want, given, "webhook-signature does not verify with HMAC-SHA256 of "
                      f"'id.timestamp.body' under the user's secret: got {sig!r}, want {want!r}")
        ev = body_json(req)
        self.assertIsInstance(ev, dict, f"webhook body is not a JSON object: {req['body'][:300]!r}")
        self.assertEqual(ev.get("specversion"), "1.0", ev)
        self.assertEqual(ev.get("type"), DUE_TYPE, ev)
        self.assertIsInstance(ev.get("id"), str, ev)
        self.assertTrue(ev["id"], ev)
        rc, out = validate_event(ev)
        self.assertEqual(rc, 0, f"todoctl event validate of the webhook body: {out}")
        return ev

    def assert_on_time(self, req, remind_at, what=""):
        lateness = req["t"] - epoch(remind_at)
        LATENESSES.append((self.id().split(".")[-1] + what, lateness))
        self.assertGreaterEqual(lateness, 0, f"webhook arrived {-lateness:.3f}s BEFORE remind_at "
                                f"{remind_at}{what}")
        if lateness > LATENESS_LIMIT:
            self.fail(f"webhook arrived {lateness:.3f}s after remind_at {remind_at}{what} "
                      f"(limit {LATENESS_LIMIT}s){self.foreign_note()}")
        return lateness

    def metrics_of(self, daemons=None):
        """The metric samples of the class's reminder daemons, concatenated."""
        out = []
        for d in daemons or self.reminders_running:
            out += d.metrics()
        return out


class Delivery(ReminderCase):
    """One todo-reminder with webhook back-off 200 ms and an SMTP server."""

    reminder_env = {"TE_NOTIFY_BACKOFF_MS": "200"}
    with_smtp = True

    def test_a_webhook_and_in_app(self):
        """(1) On time on the webhook (signed) and as notification.send; the
        reminder shows sent, sent_at and its deliveries."""
        u = self.user(("in_app", "webhook"))
        title = "Call the plumber " + uuid.uuid4().hex[:6]
        due_date = at_time(time.time() + 3600)
        t, rem = self.add_task(u, at=time.time() + DUE, title=title, due_date=due_date)
        rid, remind_at = rem["id"], rem["remind_at"]
        self.assertEqual(rem.get("status"), "pending", rem)
        req = self.wait_hook(u, rid)[0]
        lateness = self.assert_on_time(req, remind_at)
        log(f"webhook {lateness * 1000:.0f} ms after remind_at")
        ev = self.check_webhook(u, req)
        data = event_data(ev)
        self.assertEqual({k: data.get(k) for k in ("reminder_id", "task_id", "user_id", "title")},
                         {"reminder_id": rid, "task_id": t["id"], "user_id": u.id, "title": title},
                         ev)
        self.assertEqual(instants(data.get("remind_at")), instants(remind_at), ev)
        self.assertEqual(instants(data.get("due_date")), instants(due_date), ev)
        self.assertEqual(sorted(data.get("channels") or []), ["in_app", "webhook"], ev)
        self.assertIs(data.get("late"), False, ev)

        # The same event on reminder.due (key and partitionkey = user id, id = the firing id).
        recs = self.tails["reminder.due"].wait_for(
            u.id, lambda e: event_data(e).get("reminder_id") == rid, timeout=10,
            what=f"reminder.due of {rid}")
        due = recs[-1]
        self.assertEqual(due["key"], u.id)
        self.assertEqual(due["event"].get("partitionkey"), u.id, due["event"])
        self.assertTrue(same_event(due["event"], ev),
                        f"the webhook body is not the reminder.due event:\n{ev}\n{due['event']}")

        # In-app: com.todo.notification.send on notification.send, key = user id.
        recs = self.tails["notification.send"].wait_for(
            u.id, lambda e: e.get("type") == SEND_TYPE and event_data(e).get("reminder_id") == rid,
            timeout=10, what=f"notification.send of {rid}")
        send = recs[-1]
        self.assertEqual(send["key"], u.id)
        rc, out = validate_event(send["event"])
        self.assertEqual(rc, 0, f"todoctl event validate: {out}")
        sd = event_data(send["event"])
        self.assertRegex(sd.get("notification_id", ""), UUID_RE, sd)
        self.assertEqual({k: sd.get(k) for k in ("user_id", "task_id", "reminder_id", "kind")},
                         {"user_id": u.id, "task_id": t["id"], "reminder_id": rid,
                          "kind": "reminder"}, sd)
        self.assertIsInstance(sd.get("title"), str, sd)
        self.assertIsInstance(sd.get("body"), str, sd)
        self.assertRegex(sd.get("created_at", ""), apitest.RFC3339_RE, sd)
        self.assertNotEqual(sd["notification_id"], req["headers"]["webhook-id"],
                            "one delivery id per channel")
        base = epoch(remind_at)
        log(f"after remind_at: reminder.due time +{(epoch(due['event']['time']) - base) * 1000:.0f}"
            f" ms, notification.send created_at +{(epoch(sd['created_at']) - base) * 1000:.0f} ms, "
            f"webhook +{(req['t'] - base) * 1000:.0f} ms (reminder.due partition "
            f"{due['partition']} offset {due['offset']})")

        # GET /api/tasks/{id}/reminders: sent, sent_at, one delivery per channel.
        x = self.wait_status(u, t["id"], rid, "sent")
        self.assertRegex(x.get("sent_at") or "", SERVER_TIME_RE, x)
        sent_at = epoch(x["sent_at"])
        self.assertGreaterEqual(sent_at, epoch(remind_at) - 0.001, x)
        self.assertLessEqual(sent_at, req["t"] + 0.5, f"sent_at after the webhook arrived: {x}")
        by = self.deliveries(x)
        self.assertEqual(sorted(by), ["in_app", "webhook"], x)
        for ch, d in by.items():
            with self.subTest(channel=ch):
                self.assertEqual(d.get("status"), "sent", d)
                self.assertIn(d.get("error"), (None, ""), d)
                self.assertRegex(d.get("delivered_at") or "", SERVER_TIME_RE, d)
                self.assertGreaterEqual(epoch(d["delivered_at"]), epoch(remind_at) - 0.001, d)
        self.assertEqual(by["webhook"].get("attempts"), 1, by["webhook"])
        self.assertEqual([r.get("status") for r in self.get_task(u.c, t["id"])["reminders"]],
                         ["sent"], "the task's reminders")
        # Once: nothing more a second later.
        time.sleep(1.0)
        self.assertEqual(len(self.hook_requests(u)), 1, "webhook requests")
        self.assertEqual(len(self.sends(u, rid)), 1, "notification.send events")
        self.assertEqual(len(self.due_events(rid)), 1, "reminder.due events")

    def test_b_complete_or_delete_cancels(self):
        """(2) Completed before the due time → cancelled, nothing sent;
        task deleted, or the reminder deleted → nothing sent; completed and
        uncompleted → sent on time."""
        u = self.user(("in_app", "webhook"))
        at = time.time() + DUE
        done, r_done = self.add_task(u, at=at, title="completed-" + uuid.uuid4().hex[:6])
        gone, r_gone = self.add_task(u, at=at, title="deleted-" + uuid.uuid4().hex[:6])
        again, r_again = self.add_task(u, at=at, title="uncompleted-" + uuid.uuid4().hex[:6])
        kept, r_dropped = self.add_task(u, at=at, title="reminder-deleted-" + uuid.uuid4().hex[:6])
        self.assert_status(u.c.post(f"/api/tasks/{done['id']}/complete"), 200)
        self.assert_status(u.c.delete(f"/api/tasks/{gone['id']}"), 204)
        self.assert_status(u.c.post(f"/api/tasks/{again['id']}/complete"), 200)
        self.assert_status(u.c.post(f"/api/tasks/{again['id']}/uncomplete"), 200)
        self.assert_status(u.c.delete(f"/api/tasks/{kept['id']}/reminders/{r_dropped['id']}"), 204)
        self.assertLess(time.time(), at, "the test was too slow: the due time passed before "
                        "the tasks were completed / deleted")
        self.assertEqual(self.reminders(u, kept["id"]), [], "a deleted reminder is gone")
        self.assertEqual(self.reminder_state(u, done["id"], r_done["id"]).get("status"),
                         "cancelled", "a completed task's pending reminder")
        self.assertEqual(self.reminder_state(u, again["id"], r_again["id"]).get("status"),
                         "pending", "uncompleting re-arms a cancelled reminder still in the "
                         "future")
        self.assert_status(u.c.get(f"/api/tasks/{gone['id']}/reminders"), 404)

        req = self.wait_hook(u, r_again["id"])[0]
        self.assert_on_time(req, r_again["remind_at"], " (uncompleted task)")
        self.check_webhook(u, req)
        sleep_until(at + LATENESS_LIMIT + 1.0)
        got = sorted({reminder_id_of(r) for r in self.hook_requests(u)} - {r_again["id"]})
        self.assertEqual(got, [], f"webhook requests for a completed ({r_done['id']}) or "
                                  f"deleted ({r_gone['id']}) task's reminder, or a deleted "
                                  f"reminder ({r_dropped['id']})")
        for name, rid in (("completed", r_done["id"]), ("deleted", r_gone["id"]),
                          ("reminder-deleted", r_dropped["id"])):
            with self.subTest(task=name):
                self.assertEqual(self.sends(u, rid), [], f"notification.send for the {name} "
                                                         "task's reminder")
                self.assertEqual(self.due_events(rid, u.id), [],
                                 f"reminder.due fired for the {name} task's reminder")
        x = self.reminder_state(u, done["id"], r_done["id"])
        self.assertEqual((x.get("status"), x.get("sent_at")), ("cancelled", None), x)
        self.assertEqual(len(self.hook_requests(u, r_again["id"])), 1)
        self.wait_status(u, again["id"], r_again["id"], "sent")

    def test_c_due_date_change_reschedules(self):
        """(3) PATCH due_date later moves a relative reminder: nothing at the
        old time, on time at the new; a sent one moved to the future is
        pending again and fires again."""
        u = self.user(("webhook",))
        old_at = time.time() + DUE + 0.5
        due = old_at + 60  # offset_minutes 1
        t, rem = self.add_task(u, due_date=at_time(due), reminders=[{"offset_minutes": 1}])
        rid = rem["id"]
        self.assertAlmostEqual(epoch(rem["remind_at"]), epoch(at_time(old_at)), delta=0.002,
                               msg=f"remind_at = due_date - 1 min: {rem}")
        new_due = at_time(due + 3)
        r = u.c.patch(f"/api/tasks/{t['id']}", {"due_date": new_due})
        self.assert_status(r, 200)
        self.assertLess(time.time(), old_at, "the test was too slow: the old time passed "
                        "before the PATCH")
        moved = [x for x in r.json["reminders"] if x["id"] == rid]
        self.assertEqual(len(moved), 1, r.json["reminders"])
        new_at = moved[0]["remind_at"]
        self.assertAlmostEqual(epoch(new_at), epoch(new_due) - 60, delta=0.002, msg=moved)
        self.assertEqual(moved[0].get("status"), "pending", moved)

        req = self.wait_hook(u, rid, timeout=DUE + 3 + 10)[0]
        self.assertGreaterEqual(req["t"], epoch(new_at),
                                f"the webhook arrived at the old time ({rem['remind_at']}) "
                                f"rather than the new one ({new_at})")
        self.assert_on_time(req, new_at, " (moved)")
        first = self.check_webhook(u, req)
        self.assertEqual(instants(event_data(first).get("remind_at")), instants(new_at), first)
        self.assertEqual(instants(event_data(first).get("due_date")), instants(new_due), first)
        self.wait_status(u, t["id"], rid, "sent")
        self.assertEqual(len(self.hook_requests(u)), 1, "one webhook request")

        # Sent, then moved into the future again: pending, and fires at the new time.
        again_due = at_time(time.time() + DUE + 60)
        r = u.c.patch(f"/api/tasks/{t['id']}", {"due_date": again_due})
        self.assert_status(r, 200)
        again_at = [x for x in r.json["reminders"] if x["id"] == rid][0]["remind_at"]
        self.assertEqual(self.reminder_state(u, t["id"], rid).get("status"), "pending",
                         "a sent reminder moved to the future is pending again")
        reqs = self.wait_hook(u, rid, n=2, timeout=DUE + 10)
        self.assert_on_time(reqs[1], again_at, " (moved again after sent)")
        second = self.check_webhook(u, reqs[1])
        self.assertNotEqual(second["id"], first["id"], "a new firing has a new event id")
        self.assertNotEqual(reqs[1]["headers"]["webhook-id"], reqs[0]["headers"]["webhook-id"],
                            "a new firing has a new delivery id")
        self.wait_status(u, t["id"], rid, "sent")

    def test_d_failing_webhook_dead_letters(self):
        """(6) A webhook answering 500: exactly 3 attempts (same webhook-id,
        back-off 200 ms then 400 ms), one com.todo.notification.dlq record,
        the reminder failed."""
        u = self.user(("webhook",))
        self.hooks.set_status(u.path, 500)
        t, rem = self.add_task(u, at=time.time() + 1.5)
        rid = rem["id"]
        reqs = self.wait_hook(u, rid, n=3, timeout=15)
        self.assert_on_time(reqs[0], rem["remind_at"], " (first attempt)")
        time.sleep(2.0)  # well past a 4th attempt's time (200 ms × 2^2 after the 3rd)
        reqs = self.hook_requests(u)
        self.assertEqual(len(reqs), 3, f"attempts at a webhook answering 500 (TE_NOTIFY_MAX_"
                         f"ATTEMPTS = 3): {[(round(r['t'] - reqs[0]['t'], 3)) for r in reqs]}")
        ids = [r["headers"].get("webhook-id") for r in reqs]
        self.assertEqual(len(set(ids)), 1, f"webhook-id differs between attempts: {ids}")
        bodies = [self.check_webhook(u, r) for r in reqs]
        self.assertTrue(all(same_event(b, bodies[0]) for b in bodies),
                        "the body differs between attempts")
        gaps = [reqs[i + 1]["t"] - reqs[i]["t"] for i in range(2)]
        log(f"attempt gaps: {[round(g, 3) for g in gaps]} s (back-off 200 ms, 400 ms)")
        self.assertGreaterEqual(gaps[0], 0.2 * 0.95, f"back-off before attempt 2: {gaps}")
        self.assertGreaterEqual(gaps[1], 0.4 * 0.95, f"back-off before attempt 3: {gaps}")

        dlq = self.tails["notification.dlq"]
        dlq.wait_records(lambda rs: self.dlq_records(rid), timeout=10,
                         what=f"a notification.dlq record of reminder {rid}")
        time.sleep(1.0)
        recs = self.dlq_records(rid)
        self.assertEqual(len(recs), 1, f"notification.dlq records of {rid}: "
                         f"{[r.get('event') for r in recs]}")
        ev = recs[0]["event"]
        self.assertEqual(ev.get("type"), DLQ_TYPE, ev)
        rc, out = validate_event(ev)
        self.assertEqual(rc, 0, f"todoctl event validate: {out}")
        d = event_data(ev)
        self.assertEqual(d.get("original_topic"), "reminder.due", d)
        self.assertIsInstance(d.get("original_event"), dict, d)
        self.assertTrue(same_event(d["original_event"], bodies[0]),
                        f"original_event is not the reminder.due CloudEvent:\n{d['original_event']}"
                        f"\n{bodies[0]}")
        due = self.due_events(rid, u.id)
        self.assertEqual(len(due), 1, "reminder.due events")
        self.assertTrue(same_event(d["original_event"], due[0]["event"]))
        self.assertIsInstance(d.get("error"), str, d)
        self.assertTrue(d["error"].strip(), d)
        self.assertEqual(d.get("attempt_count"), 3, d)
        self.assertRegex(d.get("last_attempt_at") or "", apitest.RFC3339_RE, d)
        self.assertLessEqual(abs(epoch(d["last_attempt_at"]) - reqs[2]["t"]), 2.0,
                             f"last_attempt_at is not the 3rd attempt's time: {d}")
        self.assertEqual(d.get("channel"), "webhook", d)
        self.assertEqual(d.get("delivery_id"), ids[0], "delivery_id = the webhook-id")
        self.assertEqual(d.get("reminder_id"), rid, d)
        log(f"dead-letter error: {d['error']}; key {recs[0].get('key')!r}")

        x = self.wait_status(u, t["id"], rid, "failed")
        self.assertIsNone(x.get("sent_at"), x)
        w = self.deliveries(x).get("webhook") or {}
        self.assertEqual((w.get("status"), w.get("attempts")), ("failed", 3), x)
        self.assertIsInstance(w.get("error"), str, x)
        self.assertTrue(w["error"].strip(), x)
        self.assertIsNone(w.get("delivered_at"), x)
        samples = self.metrics_of()
        self.assertGreaterEqual(metric_value(samples, "te_notification_dead_lettered_total",
                                             channel="webhook") or 0, 1)
        self.assertGreaterEqual(metric_value(samples, "te_notification_attempts_total",
                                             channel="webhook", result="error") or 0, 3)

    def test_e_email(self):
        """(7) An email through SMTP: To, From, the RFC 2047 Subject with a
        non-ASCII title, Message-ID <delivery-id@todoevents>, UTF-8 text."""
        addr = f"rcpt-{uuid.uuid4().hex[:10]}@example.test"
        u = self.user(("email",), email=addr)
        self.assertEqual(u.settings.get("email"), addr, u.settings)
        title = f"Zahnärztin – Überweisung mitnehmen ☕ {uuid.uuid4().hex[:6]}"
        t, rem = self.add_task(u, at=time.time() + 1.5, title=title)
        rid = rem["id"]

        def mine():
            return [m for m in self.smtp.messages() if addr in (m.get("To") or "")]
        try:
            msgs = wait_until(mine, 12, f"an email to {addr} at the SMTP server", interval=0.1)
        except AssertionError as e:
            log(f"aiosmtpd log:\n{self.smtp.log_text()[-2000:]}")
            raise AssertionError(f"{e}; the reminder: {self.reminder_state(u, t['id'], rid)}"
                                 f"{self.foreign_note()}") from None
        arrived = time.time()
        log(f"email seen {arrived - epoch(rem['remind_at']):.2f}s after remind_at")
        m = msgs[0]
        self.assertIn(addr, m.get("To"), m.get("To"))
        self.assertIn(self.SMTP_FROM, m.get("From") or "", m.get("From"))
        raw_subject = m.get("Subject") or ""
        self.assertTrue(raw_subject.isascii() and "=?" in raw_subject,
                        f"Subject with a non-ASCII title is not RFC 2047 encoded: {raw_subject!r}")
        subject = str(email.header.make_header(email.header.decode_header(raw_subject)))
        subject = re.sub(r"\s+", " ", subject)
        self.assertEqual(subject, "Reminder: " + title, raw_subject)
        self.assertRegex(m.get("Message-ID") or "",
                         r"^<[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
                         r"@todoevents>$")
        self.assertEqual(m.get_content_type(), "text/plain", m.get("Content-Type"))
        self.assertEqual((m.get_content_charset() or "").lower(), "utf-8", m.get("Content-Type"))
        payload = m.get_payload(decode=True)
        payload.decode("utf-8")  # valid UTF-8
        x = self.wait_status(u, t["id"], rid, "sent")
        self.assertRegex(x.get("sent_at") or "", SERVER_TIME_RE, x)
        e = self.deliveries(x)
        self.assertEqual(sorted(e), ["email"], x)
        self.assertEqual((e["email"].get("status"), e["email"].get("attempts")), ("sent", 1), x)
        time.sleep(1.0)
        self.assertEqual(len(mine()), 1, "emails to the address")
        self.assertEqual(self.sends(u, rid), [], "no in-app notification (channels: email)")

    def test_f_redelivered_event(self):
        """(9) The same reminder.due produced again (twice) → no second
        delivery on any channel.  The user's secret is the one the server
        generated (returned once by the PUT)."""
        u = self.user(("in_app", "webhook"), secret=None)
        t, rem = self.add_task(u, at=time.time() + 1.5)
        rid = rem["id"]
        req = self.wait_hook(u, rid)[0]
        self.check_webhook(u, req)  # signed with the generated secret
        before = self.wait_status(u, t["id"], rid, "sent")
        self.tails["notification.send"].wait_for(
            u.id, lambda e: event_data(e).get("reminder_id") == rid, timeout=10,
            what=f"notification.send of {rid}")
        rec = self.tails["reminder.due"].wait_for(
            u.id, lambda e: event_data(e).get("reminder_id") == rid, timeout=10,
            what=f"reminder.due of {rid}")[-1]
        samples = self.metrics_of()
        seen_before = sum(metric_value(samples, "te_reminder_events_total", result=k) or 0
                          for k in ("stale", "duplicate"))
        for _ in range(2):
            out = publish_event(rec["event"], "reminder.due", key=u.id)
            m = re.search(r"partition=(\d+)", out)
            self.assertTrue(m and int(m.group(1)) == rec["partition"],
                            f"the copy went to another partition than the original: {out}")
        counted = None
        try:
            wait_until(lambda: sum(metric_value(self.metrics_of(), "te_reminder_events_total",
                                                result=k) or 0 for k in ("stale", "duplicate"))
                       >= seen_before + 2, 10, "", interval=0.2)
            counted = True
        except AssertionError:
            counted = False
        time.sleep(1.0)
        self.assertEqual(len(self.hook_requests(u)), 1, "webhook requests after 2 redeliveries")
        self.assertEqual(len(self.sends(u, rid)), 1, "notification.send after 2 redeliveries")
        after = self.reminder_state(u, t["id"], rid)
        self.assertEqual(after, before, "the reminder changed after a redelivered reminder.due")
        self.assertTrue(counted, 'te_reminder_events_total{result="stale"|"duplicate"} did not '
                        "count the 2 redelivered reminder.due events within 10 s")

    def test_z_operations(self):
        """(10) /healthz, /readyz, /metrics after the tests above; the Dapr
        cron binding route."""
        r = self.reminder
        for path in ("/healthz", "/readyz"):
            resp = r.request("GET", path)
            self.assertEqual(resp.status, 200, f"{path}: {resp}")
        resp = r.request("GET", "/metrics")
        self.assertEqual(resp.status, 200, resp)
        self.assertTrue((resp.header("Content-Type") or "").startswith("text/plain"), resp)
        text = resp.data.decode()
        samples = parse_metrics(text)
        names = {n for n, _, _ in samples}
        for name in ("te_reminder_lateness_seconds_count", "te_notification_attempts_total",
                     "te_notification_dead_lettered_total", "te_reminders_fired_total",
                     "te_reminder_events_total"):
            with self.subTest(metric=name):
                self.assertIn(name, names, f"{name} missing from /metrics")
        self.assertRegex(text, r"(?m)^# TYPE te_reminder_lateness_seconds histogram$")
        lat = [(lab, v) for n, lab, v in samples if n == "te_reminder_lateness_seconds_count"]
        self.assertTrue(all("channel" in lab for lab, _ in lat), lat)
        self.assertGreaterEqual(metric_value(samples, "te_reminder_lateness_seconds_count",
                                             channel="webhook") or 0, 1, lat)
        for lab, v in [(lab, v) for n, lab, v in samples if n == "te_notification_attempts_total"]:
            self.assertIn(lab.get("result"), {"ok", "error"}, lab)
            self.assertIn(lab.get("channel"), {"webhook", "email", "in_app"}, lab)
        for name, labels, what in (
                ("te_notification_attempts_total", {"channel": "webhook", "result": "ok"},
                 "the webhooks delivered by test_a-f"),
                ("te_notification_attempts_total", {"channel": "email", "result": "ok"},
                 "the email of test_e"),
                ("te_notification_dead_lettered_total", {}, "the dead letter of test_d"),
                ("te_reminders_fired_total", {"result": "due"}, "the reminders fired")):
            with self.subTest(metric=name, **labels):
                self.assertGreaterEqual(metric_value(samples, name, **labels) or 0, 1,
                                        f"{name}{labels} after {what}")
        for method, body in (("OPTIONS", None), ("POST", None), ("POST", b"{}")):
            headers = {"Content-Type": "application/json"} if body else {}
            resp = r.request(method, "/reminder-scheduler", body=body, headers=headers)
            with self.subTest(method=method, body=body):
                self.assertEqual(resp.status, 200, f"{method} /reminder-scheduler: {resp}")


class Restart(ReminderCase):
    """The daemon stopped (SIGTERM) across a due time and restarted with
    TE_REMINDER_LATE_AFTER_S=1, TE_REMINDER_GRACE_S=6; and an email channel
    without TE_SMTP_URL."""

    reminder_env = {"TE_NOTIFY_BACKOFF_MS": "100"}
    GRACE = 6  # > the late reminder's 2.5 s overdue + the restart, < the missed one's 20 s

    def test_a_email_not_configured(self):
        u = self.user(("email",), email=f"x-{uuid.uuid4().hex[:8]}@example.test")
        t, rem = self.add_task(u, at=time.time() + 1.0)
        x = self.wait_status(u, t["id"], rem["id"], "failed", timeout=10)
        e = self.deliveries(x).get("email") or {}
        self.assertEqual((e.get("status"), e.get("attempts")), ("failed", 3), x)
        self.assertIn("email is not configured", e.get("error") or "", x)
        self.tails["notification.dlq"].wait_records(
            lambda rs: self.dlq_records(rem["id"]), timeout=10,
            what=f"the dead-letter record of {rem['id']}")
        d = event_data(self.dlq_records(rem["id"])[0]["event"])
        self.assertEqual((d.get("channel"), d.get("attempt_count")), ("email", 3), d)

    def test_b_stopped_across_due_time(self):
        """(4) SIGTERM → exit 0; a reminder due while stopped is delivered
        once after the restart, late; one older than the grace window is
        missed, never delivered."""
        u = self.user(("in_app", "webhook"))
        old = self.reminder
        self.stop_daemon(old)  # AssertionError (with the log) unless exit 0 within 10 s
        stopped = time.time()
        late_t, late = self.add_task(u, at=stopped + 1.0, title="late-" + uuid.uuid4().hex[:6])
        missed_t, missed = self.add_task(u, at=stopped - 20, title="missed-" + uuid.uuid4().hex[:6])
        sleep_until(stopped + 3.5)  # late: 2.5 s overdue (> 1 s, < GRACE); missed: 23.5 s
        self.assertEqual(self.hook_requests(u), [], "webhook requests while the daemon was down")
        self.assertEqual(self.reminder_state(u, late_t["id"], late["id"]).get("status"), "pending")
        restarted_at = time.time()
        new = self.start_reminder(dict(self.reminder_settings, TE_REMINDER_LATE_AFTER_S="1",
                                       TE_REMINDER_GRACE_S=str(self.GRACE)),
                                  label="restarted", group=old.group, positioned=True)
        self.reminders_running = [new]
        log(f"restarted todo-reminder ready {time.time() - restarted_at:.2f}s after its start; "
            f"the late reminder was {restarted_at - epoch(late['remind_at']):.2f}s overdue")

        req = self.wait_hook(u, late["id"], timeout=15)[0]
        self.assertGreater(req["t"], restarted_at)
        ev = self.check_webhook(u, req)
        self.assertIs(event_data(ev).get("late"), True, ev)
        x = self.wait_status(u, late_t["id"], late["id"], "late")
        self.assertRegex(x.get("sent_at") or "", SERVER_TIME_RE, x)
        self.assertEqual({ch: d.get("status") for ch, d in self.deliveries(x).items()},
                         {"in_app": "sent", "webhook": "sent"}, x)
        m = self.wait_status(u, missed_t["id"], missed["id"], "missed")
        self.assertIsNone(m.get("sent_at"), m)
        self.tails["notification.send"].wait_for(
            u.id, lambda e: event_data(e).get("reminder_id") == late["id"], timeout=10,
            what="notification.send of the late reminder")
        time.sleep(1.5)
        self.assertEqual([reminder_id_of(r) for r in self.hook_requests(u)], [late["id"]],
                         "webhook requests: the late reminder once, the missed one never")
        self.assertEqual(len(self.sends(u, late["id"])), 1, "notification.send of the late one")
        self.assertEqual(self.sends(u, missed["id"]), [], "notification.send of the missed one")
        self.assertEqual(len(self.due_events(late["id"], u.id)), 1, "reminder.due of the late one")
        self.assertEqual(self.due_events(missed["id"], u.id), [],
                         "reminder.due of the missed one (missed → no event)")
        self.assertEqual(self.reminder_state(u, missed_t["id"], missed["id"]).get("status"),
                         "missed")
        samples = new.metrics()
        self.assertGreaterEqual(metric_value(samples, "te_reminders_fired_total",
                                             result="missed") or 0, 1)
        self.assertGreaterEqual(metric_value(samples, "te_reminders_fired_total",
                                             result="late") or 0, 1)


class Replicas(ReminderCase):
    """(5) Two replicas in one consumer group on one database; N reminders
    due at the same instant are each delivered once."""

    replicas = 2
    N = 20

    def test_each_delivered_once(self):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            users = list(pool.map(lambda _: self.user(("in_app", "webhook")), range(self.N)))
            at = time.time() + 2.5
            jobs = list(pool.map(lambda u: (u,) + self.add_task(u, at=at), users))
        self.assertLess(time.time(), at, "the test was too slow: the due time passed before "
                        "every task was created")
        rids = {rem["id"]: u for u, _, rem in jobs}

        def arrived(_):
            return {reminder_id_of(r) for r in self.hooks.received()} >= set(rids)
        try:
            self.hooks.wait(arrived, None, 20, f"webhooks of all {self.N} reminders")
        except AssertionError as e:
            raise AssertionError(f"{e}{self.foreign_note()}") from None
        finally:
            time.sleep(2.0)
        reqs = [r for r in self.hooks.received() if reminder_id_of(r) in rids]
        by_rid, by_id = {}, {}
        for r in reqs:
            by_rid.setdefault(reminder_id_of(r), []).append(r)
            by_id.setdefault(r["headers"].get("webhook-id"), []).append(r)
        self.assertEqual({k: len(v) for k, v in by_rid.items() if len(v) != 1}, {},
                         "reminders whose webhook came more than once")
        self.assertEqual({k: len(v) for k, v in by_id.items() if len(v) != 1}, {},
                         "webhook-ids seen more than once")
        self.assertEqual(len(reqs), self.N)
        for r in reqs:
            u = rids[reminder_id_of(r)]
            self.assertEqual(r["path"], u.path)
            self.check_webhook(u, r)
        lateness = sorted(r["t"] - at for r in reqs)
        log(f"{self.N} reminders at one instant on 2 replicas: lateness min "
            f"{lateness[0] * 1000:.0f} ms, max {lateness[-1] * 1000:.0f} ms")
        self.assertGreaterEqual(lateness[0], -0.002, "a webhook before remind_at")

        sends = self.tails["notification.send"].records()
        dues = self.tails["reminder.due"].records()
        for rid, u in rids.items():
            with self.subTest(reminder=rid):
                self.assertEqual(len([r for r in sends if "event" in r and
                                      event_data(r["event"]).get("reminder_id") == rid]), 1,
                                 "notification.send events")
                self.assertEqual(len([r for r in dues if "event" in r and
                                      event_data(r["event"]).get("reminder_id") == rid]), 1,
                                 "reminder.due events (fired once)")
        for u, t, rem in jobs:
            self.wait_status(u, t["id"], rem["id"], "sent", timeout=5)
        for d in self.reminders_running:
            s = d.metrics()
            log(f"{d.label}: fired {metric_value(s, 'te_reminders_fired_total') or 0:.0f}, "
                f"webhook attempts {metric_value(s, 'te_notification_attempts_total', channel='webhook') or 0:.0f}")


class Settings(apitest.ApiTestCase):
    """(8) GET/PUT /api/notification-settings (todo-api only)."""

    def put(self, c, body):
        return c.put(SETTINGS, body)

    def assert_no_secret(self, resp, secret):
        self.assertNotIn(secret[len("whsec_"):], resp.data.decode(),
                         f"the secret appears in the response: {resp}")

    def test_defaults(self):
        c = self.new_client()
        r = c.get(SETTINGS)
        self.assert_status(r, 200)
        self.assertEqual(r.json, {"channels": ["in_app"], "webhook_url": None, "email": None,
                                  "webhook_secret_set": False, "updated_at": None})

    def test_put_get_and_users_separate(self):
        a, b = self.new_client(), self.new_client()
        secret = new_secret(32)
        body = {"channels": ["in_app", "webhook", "email"],
                "webhook_url": "https://hooks.example.test/a?x=1",
                "email": "alice@example.test", "webhook_secret": secret}
        r = self.put(a, body)
        self.assert_status(r, 200)
        self.assert_no_secret(r, secret)
        self.assertNotIn("webhook_secret", r.json, "a secret the user sent is not returned")
        got = a.get(SETTINGS)
        self.assert_status(got, 200)
        self.assert_no_secret(got, secret)
        self.assertNotIn("webhook_secret", got.json)
        for resp in (r, got):
            j = resp.json
            self.assertEqual(sorted(j["channels"]), ["email", "in_app", "webhook"], j)
            self.assertEqual((j["webhook_url"], j["email"], j["webhook_secret_set"]),
                             (body["webhook_url"], body["email"], True), j)
            self.assertRegex(j.get("updated_at") or "", SERVER_TIME_RE, j)
        # Another user's settings are their own.
        other = b.get(SETTINGS)
        self.assert_status(other, 200)
        self.assertEqual(other.json["channels"], ["in_app"], other)
        self.assertEqual((other.json["webhook_url"], other.json["webhook_secret_set"]),
                         (None, False), other)
        self.assert_status(self.put(b, {"channels": ["email"], "email": "bob@example.test"}), 200)
        self.assertEqual(a.get(SETTINGS).json["email"], "alice@example.test")
        self.assertEqual(b.get(SETTINGS).json["email"], "bob@example.test")
        # PUT replaces: omitted webhook_url / email are cleared; the secret is kept.
        r = self.put(a, {"channels": ["in_app"]})
        self.assert_status(r, 200)
        self.assertEqual((r.json["channels"], r.json["webhook_url"], r.json["email"],
                          r.json["webhook_secret_set"]), (["in_app"], None, None, True), r)
        self.assertNotIn("webhook_secret", r.json)
        self.assertEqual(a.get(SETTINGS).json, r.json)
        # No token → 401.
        self.assert_problem(apitest.http_request(self.daemon.port, "GET", SETTINGS), 401,
                            "unauthorized")

    def test_generated_secret_returned_once(self):
        c = self.new_client()
        url = "https://hooks.example.test/gen"
        r = self.put(c, {"channels": ["webhook"], "webhook_url": url})
        self.assert_status(r, 200)
        secret = r.json.get("webhook_secret")
        self.assertRegex(secret or "", r"^whsec_[A-Za-z0-9+/]+={0,2}$", r)
        n = len(base64.b64decode(secret[len("whsec_"):], validate=True))
        self.assertTrue(24 <= n <= 64, f"generated secret of {n} bytes")
        self.assertIs(r.json.get("webhook_secret_set"), True, r)
        got = c.get(SETTINGS)
        self.assertNotIn("webhook_secret", got.json)
        self.assert_no_secret(got, secret)
        self.assertIs(got.json["webhook_secret_set"], True)
        # Again without a secret: the current one is kept, not returned again.
        r2 = self.put(c, {"channels": ["webhook", "in_app"], "webhook_url": url + "2"})
        self.assert_status(r2, 200)
        self.assertNotIn("webhook_secret", r2.json, "the secret is returned once")
        self.assert_no_secret(r2, secret)
        self.assertIs(r2.json["webhook_secret_set"], True)
        # A fresh user without a webhook_url: no secret generated.
        d = self.new_client()
        r3 = self.put(d, {"channels": ["in_app"]})
        self.assert_status(r3, 200)
        self.assertNotIn("webhook_secret", r3.json)
        self.assertIs(r3.json["webhook_secret_set"], False, r3)

    def test_validation(self):
        c = self.new_client()
        hook = "https://hooks.example.test/x"
        cases = [
            ({}, "channels"),
            ({"channels": []}, "channels"),
            ({"channels": "in_app"}, "channels"),
            ({"channels": ["sms"]}, "channels"),
            ({"channels": ["in_app", "in_app"]}, "channels"),
            ({"channels": ["in_app", "webhook", "email", "in_app"], "webhook_url": hook,
              "email": "a@example.test"}, "channels"),
            ({"channels": [1]}, "channels"),
            ({"channels": ["webhook"]}, "webhook_url"),
            ({"channels": ["webhook"], "webhook_url": "ftp://example.test/x"}, "webhook_url"),
            ({"channels": ["webhook"], "webhook_url": "javascript:alert(1)"}, "webhook_url"),
            ({"channels": ["webhook"], "webhook_url": "/relative/path"}, "webhook_url"),
            ({"channels": ["webhook"], "webhook_url": "not a url"}, "webhook_url"),
            ({"channels": ["webhook"], "webhook_url": "https://x.example.test/" + "a" * 2040},
             "webhook_url"),
            ({"channels": ["webhook"], "webhook_url": 42}, "webhook_url"),
            ({"channels": ["email"]}, "email"),
            ({"channels": ["email"], "email": "no-at-sign.example.test"}, "email"),
            ({"channels": ["email"], "email": "a b@example.test"}, "email"),
            ({"channels": ["email"], "email": "ab@exa\u0001mple.test"}, "email"),
            ({"channels": ["email"], "email": "@example.test"}, "email"),
            ({"channels": ["email"], "email": "a@"}, "email"),
            ({"channels": ["email"], "email": address(255)}, "email"),
            ({"channels": ["webhook"], "webhook_url": hook, "webhook_secret": "abc"},
             "webhook_secret"),
            ({"channels": ["webhook"], "webhook_url": hook,
              "webhook_secret": base64.b64encode(secrets.token_bytes(32)).decode()},
             "webhook_secret"),
            ({"channels": ["webhook"], "webhook_url": hook, "webhook_secret": new_secret(16)},
             "webhook_secret"),
            ({"channels": ["webhook"], "webhook_url": hook, "webhook_secret": new_secret(65)},
             "webhook_secret"),
            ({"channels": ["webhook"], "webhook_url": hook, "webhook_secret": "whsec_!!not*base64"},
             "webhook_secret"),
        ]
        for body, field in cases:
            with self.subTest(body=json.dumps(body)[:120], field=field):
                self.assert_problem(self.put(c, body), 400, "validation", field)
        # Nothing of that was stored.
        self.assertEqual(c.get(SETTINGS).json["updated_at"], None)
        # The edges that are valid.
        for body in ({"channels": ["webhook"], "webhook_url": "http://127.0.0.1:9/x",
                      "webhook_secret": new_secret(24)},
                     {"channels": ["webhook"], "webhook_url": hook,
                      "webhook_secret": new_secret(64)},
                     {"channels": ["email", "webhook", "in_app"], "webhook_url": hook,
                      "email": address(254)},
                     {"channels": ["webhook"],
                      "webhook_url": "https://x.example.test/" + "a" * (2048 - 23)}):
            with self.subTest(valid=json.dumps(body)[:120]):
                self.assert_status(self.put(c, body), 200)


def tearDownModule():
    if LATENESSES:
        log("webhook lateness after remind_at: " +
            ", ".join(f"{name} {v * 1000:.0f} ms" for name, v in LATENESSES))


if __name__ == "__main__":
    apitest.main()
