#!/usr/bin/env python3
"""api.dapr — the daemons' Dapr mode (TE_TRANSPORT=dapr, docs/dapr.md).

Two halves:

1. Against a fake sidecar (daprlib.FakeSidecar; always run): the daemons'
   side of every exchange exactly as the Dapr HTTP API reference (v1.0)
   describes it, checked strictly — the publish request (path, the only
   query parameter metadata.partitionKey = the user id, Content-Type
   application/cloudevents+json, a catalogue-valid structured CloudEvent;
   204 = the outbox row is gone, 500 = kept and sent again), /dapr/subscribe
   of each daemon, the delivery routes (SUCCESS / RETRY, dead-letter records
   published through the sidecar, 404 for a route not subscribed), the
   secrets API, the state API (begin / finish / abort of Idempotency-Key
   records with ETags, fail open), the SMTP output binding, the cron
   binding's route, dapr-api-token on every call, the start-up wait for the
   sidecar.

2. Against a real daprd (standalone mode, built by scripts/daprd; skipped
   with the reason when it cannot be had, unless TE_DAPRD_REQUIRED=1): the
   four daemons, each behind its own daprd with the components of
   infrastructure/dapr/local (rendered for the local Kafka, Redis, an
   aiosmtpd server and a local-file secret store),
   infrastructure/dapr/resiliency.yaml and configuration.yaml — a task
   created through todo-api reaches todo-worker (activity row) and
   todo-sync (WebSocket) through Kafka; the Kafka record's key is the user
   id; Idempotency-Key records live in Redis under Dapr's key prefix;
   secrets come from the secret store; a reminder email goes through the
   SMTP binding; the cron binding calls /reminder-scheduler.

Environment: as apitest (TE_BUILD_DIR, TE_PG_URL, ...), plus TE_DAPRD (a
daprd binary), TE_DAPRD_BUILD=0 (do not build one), TE_DAPRD_REQUIRED=1
(fail instead of skipping the real-daprd half)."""

import base64
import concurrent.futures
import email.header
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import tempfile
import time
import unittest
import urllib.parse
import uuid

import apitest
import daprlib
from apitest import (TRACEPARENT_RE, event_data, http_request, log, validate_event,
                     wait_until)

CE = daprlib.CE_CONTENT_TYPE
TASK = "com.todo.task."
DLQ_TYPE = "com.todo.notification.dlq"
SETTINGS = "/api/notification-settings"


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def sql_count(db, statement):
    return int(db.sql(statement).strip() or 0)


def dapr_env(fake, **extra):
    """A daemon's environment for Dapr mode against fake (no Kafka, no Redis)."""
    env = {"TE_TRANSPORT": "dapr", "TE_DAPR_HTTP": fake.url, "TE_DAPR_API_TOKEN": fake.token,
           "TE_DAPR_WAIT_S": "10", "TE_KAFKA_BROKERS": None, "TE_REDIS_URL": None}
    env.update(extra)
    return env


def go_json(obj):
    """JSON as Go's encoding/json writes a map (what daprd re-encodes):
    keys sorted, no spaces, <, > and & escaped."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def as_delivered(event, topic, pubsub="kafka-pubsub"):
    """The body daprd POSTs to the app for a published structured CloudEvent
    (components-contrib pubsub.FromCloudEvent: time kept or added; traceid,
    traceparent added when there is no traceid; tracestate added, maybe
    empty; topic and pubsubname set)."""
    ev = dict(event)
    ev.setdefault("time", apitest.from_now())
    tp = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    if "traceid" not in ev:
        ev["traceid"] = tp
        ev["traceparent"] = tp
    ev.setdefault("tracestate", "")
    ev["topic"] = topic
    ev["pubsubname"] = pubsub
    return go_json(ev).encode()


def deliver(port, topic, body, route=None, pubsub="kafka-pubsub", key=None):
    """POST a delivery as daprd does: Content-Type application/cloudevents+json,
    the Kafka record's metadata as headers (components-contrib kafka
    GetEventMetadata: __key, __topic, __partition, __offset, __timestamp,
    the record's headers — partitionKey, as the daemons publish — and
    pubsubName; runtime/subscription/publish.go WithCustomHTTPMetadata)."""
    headers = {"Content-Type": CE, "pubsubName": pubsub, "__topic": topic,
               "__partition": "0", "__offset": str(int(time.time() * 1000) % 100000),
               "__timestamp": str(int(time.time() * 1000)),
               "traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"}
    if key is not None:
        headers.update({"__key": key, "partitionKey": key})
    return http_request(port, "POST", route or f"/dapr/events/{topic}", body, headers)


def status_of(resp):
    """The delivery answer: "SUCCESS" / "RETRY" / "DROP" for 200 + JSON, else the status."""
    if resp.status == 200 and isinstance(resp.json, dict):
        return resp.json.get("status")
    return resp.status


class FakeCase(apitest.ApiTestCase):
    """todo-api in Dapr mode against a fake sidecar (cls.fake), its JWT
    secret read from the secret store (todoevents/jwt-secret), API token
    auth on.  Every test ends with no request the fake found malformed."""

    api_env = {}

    @classmethod
    def setUpClass(cls):
        cls.fake = daprlib.FakeSidecar(token="tok-" + uuid.uuid4().hex)
        cls.addClassCleanup(cls.fake.close)
        cls.jwt = "jwt-" + secrets.token_hex(16)
        cls.fake.secrets["secretstore"]["todoevents"] = {"jwt-secret": cls.jwt,
                                                         "unrelated": "u-" + uuid.uuid4().hex}
        cls.daemon_env = dapr_env(cls.fake, TE_JWT_SECRET=None,
                                  TE_JWT_SECRET_SECRET="todoevents/jwt-secret", **cls.api_env)
        super().setUpClass()
        cls.daemon.secret = cls.jwt

    def tearDown(self):
        with self.fake.cond:
            problems, self.fake.problems[:] = list(self.fake.problems), []
        self.assertEqual(problems, [], "requests the Dapr API reference does not allow")

    def publishes(self, user, topic="task.events", accepted=None):
        """The fake's publish requests for user on topic (accepted: only
        those answered 204 / only the others)."""
        return [r for r in self.fake.published(topic) if r.get("key") == user
                and (accepted is None or (r["status"] == 204) == accepted)]

    def outbox_count(self, user):
        return sql_count(self.daemon.db, f"SELECT count(*) FROM outbox WHERE key = {sql_str(user)}")


# ==== 1. the daemons' side, against a fake sidecar ===================================


class ApiPublish(FakeCase):
    """todo-api: start-up (sidecar wait, secret), /dapr/subscribe, the outbox
    relay's publish requests."""

    def test_a_startup_requests(self):
        first = self.fake.received()[:3]
        self.assertTrue(first and first[0]["path"] == "/v1.0/healthz/outbound",
                        f"the daemon asks GET /v1.0/healthz/outbound first: "
                        f"{[(r['method'], r['target']) for r in first]}")
        sec = self.fake.received(lambda r: r["path"].startswith("/v1.0/secrets/"))
        self.assertEqual([(r["method"], r["path"]) for r in sec][:1],
                         [("GET", "/v1.0/secrets/secretstore/todoevents")], sec)
        c = self.new_client()
        self.assert_status(c.get("/api/tasks"), 200)  # the token signed with the stored secret
        bad = self.daemon.client(c.user, token=apitest.hs256_token("other", apitest.claims(c.user)))
        self.assert_status(bad.get("/api/tasks"), 401)

    def test_b_subscribe_is_empty(self):
        r = self.daemon.request("GET", "/dapr/subscribe")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.header("Content-Type") or "").split(";")[0], "application/json", r)
        self.assertEqual(r.json, [], r)

    def test_c_publish(self):
        c = self.new_client()
        t = self.create_task(c, title="dapr publish")
        got = self.fake.wait(lambda r: r.get("key") == c.user and r.get("topic") == "task.events",
                             what=f"the task.created publish of {c.user}")
        req = got[0]
        self.assertEqual(req["method"], "POST")
        self.assertEqual(req["path"], "/v1.0/publish/kafka-pubsub/task.events")
        self.assertEqual(req["query"], {"metadata.partitionKey": [c.user]}, req["target"])
        self.assertEqual(req["headers"].get("content-type"), CE)
        ev = req["json"]
        rc, out = validate_event(ev)
        self.assertEqual(rc, 0, f"todoctl event validate: {out}\n{ev}")
        self.assertEqual(ev["type"], TASK + "created")
        self.assertEqual(ev["partitionkey"], c.user)
        self.assertEqual(event_data(ev).get("task_id") or event_data(ev).get("id") or
                         (event_data(ev).get("task") or {}).get("id"), t["id"], ev)
        # sync.events too, same key; then the outbox is empty for the user.
        self.fake.wait(lambda r: r.get("key") == c.user and r.get("topic") == "sync.events",
                       what="the sync.events publish")
        wait_until(lambda: self.outbox_count(c.user) == 0, 10,
                   "the outbox rows of the published events deleted (204)")
        ids = [r["json"]["id"] for r in self.publishes(c.user)]
        self.assertEqual(len(ids), len(set(ids)), f"an accepted event sent twice: {ids}")

    def test_c2_publish_carries_the_trace(self):
        """The publish request carries the event's traceparent as its W3C
        traceparent header: daprd otherwise replaces the event's traceparent
        with a new trace of its own (RealDaprContract.test_e shows both)."""
        c = self.new_client()
        trace = secrets.token_hex(16)
        self.assert_status(c.post("/api/tasks", {"title": "traced"}, headers={
            "traceparent": f"00-{trace}-{secrets.token_hex(8)}-01"}), 201)
        req = self.fake.wait(lambda r: r.get("key") == c.user and r.get("topic") == "task.events",
                             what="the publish")[0]
        self.assertEqual(TRACEPARENT_RE.match(req["json"]["traceparent"]).group(1), trace)
        self.assertEqual(req["headers"].get("traceparent"), req["json"]["traceparent"],
                         "traceparent header of the publish request")

    def test_d_publish_refused_is_retried(self):
        c = self.new_client()
        refuse = {"on": True}
        with self.fake.cond:
            previous = self.fake.publish_status
            self.fake.publish_status = (lambda r: 500 if refuse["on"] and r.get("key") == c.user
                                        else previous(r))
        try:
            t1 = self.create_task(c, title="refused 1")
            t2 = self.create_task(c, title="refused 2")
            self.fake.wait(lambda r: r.get("key") == c.user and r.get("topic") == "task.events",
                           n=2, what="two refused publishes", timeout=20)
            time.sleep(1.5)
            self.assertGreater(self.outbox_count(c.user), 0, "rows kept while the sidecar says 500")
            self.assertEqual(self.publishes(c.user, accepted=True), [])
            refused = self.publishes(c.user, accepted=False)
            with self.fake.cond:
                refuse["on"] = False
            wait_until(lambda: self.outbox_count(c.user) == 0, 30,
                       "the outbox emptied once the sidecar answers 204")
        finally:
            with self.fake.cond:
                self.fake.publish_status = previous
        ok = self.publishes(c.user, accepted=True)
        created = [r["json"] for r in ok if r["json"]["type"] == TASK + "created"]
        self.assertEqual([event_data(e).get("task_id") or (event_data(e).get("task") or {}).get("id")
                          for e in created], [t1["id"], t2["id"]], "per-user order kept")
        first_refused = refused[0]["json"]["id"]
        self.assertEqual(ok[0]["json"]["id"], first_refused,
                         "the refused event is the one sent again first")

    def test_e_idempotency_key_state(self):
        c = self.new_client()
        key = "idem-" + uuid.uuid4().hex
        state_key = f"te:idem:{c.user}:{hashlib.sha256(key.encode()).hexdigest()}"
        state_path = f"/v1.0/state/statestore/{state_key}"
        before = len(self.fake.received())
        r1 = c.post("/api/tasks", {"title": "idempotent"}, headers={"Idempotency-Key": key})
        self.assert_status(r1, 201)
        reqs = [r for r in self.fake.received()[before:] if r["path"].startswith("/v1.0/state")]
        shape = [(r["method"], r["path"]) for r in reqs]
        self.assertTrue(shape[:2] == [("GET", state_path), ("POST", "/v1.0/state/statestore")],
                        f"begin = GET the key, then POST the marker: {shape}")
        self.assertEqual(reqs[0]["status"], 204)
        marker = reqs[1]["json"]
        self.assertIsInstance(marker, list)
        self.assertEqual(len(marker), 1, marker)
        m = marker[0]
        self.assertEqual(m["key"], state_key)
        self.assertEqual(m["value"].get("st"), "p", m)
        self.assertRegex(m["value"].get("fp") or "", r"^[0-9a-f]{64}$", m)
        self.assertIn(m.get("etag"), (None, ""), "a new record: no ETag")
        self.assertEqual(m.get("options", {}).get("concurrency"), "first-write", m)
        self.assertEqual(m.get("metadata"), {"ttlInSeconds": "60"}, m)
        saves = [r for r in reqs if r["method"] == "POST"]
        self.assertGreaterEqual(len(saves), 2, f"finish stores the response: {shape}")
        done = saves[-1]["json"][0]
        self.assertEqual(saves[-1]["status"], 204, "the fake accepted the stored response")
        self.assertEqual(done["key"], state_key)
        v = done["value"]
        self.assertEqual((v.get("st"), v.get("fp"), v.get("status")), ("d", m["value"]["fp"], 201), v)
        self.assertEqual(base64.b64decode(v.get("body") or ""), r1.data, "body base64")
        self.assertEqual(v.get("loc"), r1.header("Location"), v)
        ttl = done.get("metadata", {}).get("ttlInSeconds")
        self.assertRegex(ttl or "", r"^[1-9][0-9]*$", done)
        self.assertGreater(int(ttl), 60, "the stored response lives TE_IDEMPOTENCY_TTL")
        # The replay comes from the state store.
        r2 = c.post("/api/tasks", {"title": "idempotent"}, headers={"Idempotency-Key": key})
        self.assertEqual((r2.status, r2.data), (r1.status, r1.data), r2)
        self.assertEqual(r2.header("Idempotent-Replayed"), "true", r2)
        self.assertEqual(r2.header("Location"), r1.header("Location"))
        created = [r for r in self.publishes(c.user) if r["json"]["type"] == TASK + "created"]
        wait_until(lambda: len(self.publishes(c.user)) >= 1, 10, "the publish")
        time.sleep(0.5)
        created = [r for r in self.publishes(c.user) if r["json"]["type"] == TASK + "created"]
        self.assertEqual(len(created), 1, "one task for two requests with one key")
        # Same key, another body: 422.
        r3 = c.post("/api/tasks", {"title": "something else"}, headers={"Idempotency-Key": key})
        self.assert_problem(r3, 422, "idempotency-key-reused")
        # A marker of a request in progress (same fingerprint): 409 + Retry-After.
        with self.fake.cond:
            self.fake.state[("statestore", state_key)]["value"] = {"st": "p", "fp": m["value"]["fp"]}
        r4 = c.post("/api/tasks", {"title": "idempotent"}, headers={"Idempotency-Key": key})
        self.assert_problem(r4, 409, "conflict")
        self.assertEqual(r4.header("Retry-After"), "1")

    def test_f_idempotency_abort(self):
        c = self.new_client()
        key = "abort-" + uuid.uuid4().hex
        state_key = f"te:idem:{c.user}:{hashlib.sha256(key.encode()).hexdigest()}"
        before = len(self.fake.received())
        r = c.post("/api/tasks", {"title": ""}, headers={"Idempotency-Key": key})
        self.assertEqual(r.status, 400, r)
        reqs = [x for x in self.fake.received()[before:] if x["path"].startswith("/v1.0/state")]
        dels = [x for x in reqs if x["method"] == "DELETE"]
        self.assertEqual([x["path"] for x in dels], [f"/v1.0/state/statestore/{state_key}"],
                         [(x["method"], x["path"]) for x in reqs])
        marker_etag = next(x for x in reqs if x["method"] == "GET" and x["status"] == 200) \
            if any(x["method"] == "GET" and x["status"] == 200 for x in reqs) else None
        self.assertTrue(dels[0]["headers"].get("if-match"), "abort sends If-Match = the marker's ETag")
        self.assertEqual(dels[0]["status"], 204, "the If-Match matched the marker's ETag")
        if marker_etag is not None:
            self.assertEqual(dels[0]["headers"]["if-match"], marker_etag["headers"].get("etag")
                             or dels[0]["headers"]["if-match"])
        self.assertNotIn(("statestore", state_key), self.fake.state, "the marker is gone")
        # The key is free again.
        self.assert_status(c.post("/api/tasks", {"title": "now valid"},
                                  headers={"Idempotency-Key": key}), 201)

    def test_g_state_store_down_fails_open(self):
        c = self.new_client()
        key = "down-" + uuid.uuid4().hex
        with self.fake.cond:
            self.fake.state_status = 500
        try:
            r1 = c.post("/api/tasks", {"title": "open"}, headers={"Idempotency-Key": key})
            r2 = c.post("/api/tasks", {"title": "open"}, headers={"Idempotency-Key": key})
        finally:
            with self.fake.cond:
                self.fake.state_status = None
        self.assertEqual((r1.status, r2.status), (201, 201), (r1, r2))
        self.assertNotEqual(r1.json["id"], r2.json["id"], "the key is not enforced (fail open)")
        self.assertIsNone(r2.header("Idempotent-Replayed"))

    def test_h_api_token_everywhere(self):
        # FakeSidecar answers 401 and notes a problem for any request without
        # the token: tearDown checks none came; here every recorded request has it.
        reqs = self.fake.received()
        self.assertTrue(reqs)
        self.assertEqual({r["headers"].get("dapr-api-token") for r in reqs}, {self.fake.token})


class ApiStartup(unittest.TestCase):
    """todo-api's start in Dapr mode: it waits for the sidecar, and stops
    (naming the setting, never a value) when a secret cannot be read."""

    @classmethod
    def setUpClass(cls):
        apitest.services()
        cls.db = apitest.Database("daprstartup")
        cls.addClassCleanup(cls.db.drop)

    def setUp(self):
        self.fake = daprlib.FakeSidecar(token=None)
        self.addCleanup(self.fake.close)
        self.value = "v-" + secrets.token_hex(20)  # HS256 keys: 32 bytes at least
        self.fake.secrets["secretstore"]["todoevents"] = {"jwt-secret": self.value}
        self.fake.secrets["secretstore"]["jwt"] = {"jwt": self.value}

    def daemon(self, **env):
        env = dict({"TE_JWT_SECRET": None, "TE_DAPR_API_TOKEN": None}, **env)
        d = apitest.Daemon("dapr-startup", self.db, dapr_env(self.fake, **env))
        self.addCleanup(d.close)
        self.addCleanup(d.kill)
        return d

    def assert_refuses(self, d, *words):
        with self.assertRaises(RuntimeError) as cm:
            d.start(timeout=15)
        text = str(cm.exception)
        self.assertIn("exited with", text, text[-2000:])
        for w in words:
            self.assertIn(w, text, text[-2000:])
        self.assertNotIn(self.value, text, "a secret value in the log")

    def test_missing_key(self):
        self.assert_refuses(self.daemon(TE_JWT_SECRET_SECRET="todoevents/nope"), "TE_JWT_SECRET")

    def test_missing_secret(self):
        self.assert_refuses(self.daemon(TE_JWT_SECRET_SECRET="nope"), "TE_JWT_SECRET")

    def test_default_key_is_the_secret_name(self):
        d = self.daemon(TE_JWT_SECRET_SECRET="jwt").start()
        d.secret = self.value
        self.assertEqual(d.client("u-" + uuid.uuid4().hex).get("/api/tasks").status, 200)
        d.stop()

    def test_the_variable_wins(self):
        d = self.daemon(TE_JWT_SECRET="direct-" + secrets.token_hex(20),
                        TE_JWT_SECRET_SECRET="todoevents/jwt-secret").start()
        self.assertEqual(self.fake.received(lambda r: r["path"].startswith("/v1.0/secrets")), [],
                         "TE_JWT_SECRET set: the secret store is not asked")
        self.assertEqual(d.client("u-x").get("/api/tasks").status, 200)
        d.stop()

    def test_waits_for_the_sidecar(self):
        self.fake.healthz = 500
        d = self.daemon(TE_JWT_SECRET_SECRET="jwt", TE_DAPR_WAIT_S="20")
        import threading
        t0 = time.monotonic()

        def later():
            time.sleep(1.5)
            with self.fake.cond:
                self.fake.healthz = 204
        threading.Thread(target=later, daemon=True).start()
        d.start(timeout=20)
        self.assertGreater(time.monotonic() - t0, 1.4, "healthy before the sidecar was")
        asked = self.fake.received(lambda r: r["path"] == "/v1.0/healthz/outbound")
        self.assertGreater(len(asked), 1, "polled /v1.0/healthz/outbound")
        first_ok = next(r for r in asked if r["status"] == 204)
        self.assertTrue(all(r["status"] == 500 for r in asked if r["t"] < first_ok["t"]))
        secret_req = self.fake.received(lambda r: r["path"].startswith("/v1.0/secrets"))
        self.assertTrue(secret_req and secret_req[0]["t"] >= first_ok["t"],
                        "secrets read once the sidecar is up")
        d.stop()

    def test_gives_up_without_sidecar(self):
        self.fake.healthz = 503
        d = self.daemon(TE_JWT_SECRET_SECRET="jwt", TE_DAPR_WAIT_S="1")
        t0 = time.monotonic()
        self.assert_refuses(d, "healthz")
        self.assertLess(time.monotonic() - t0, 12)


class WorkerRoutes(FakeCase):
    """todo-worker's app side: /dapr/subscribe and POST /dapr/events/task.events
    with the CloudEvents todo-api published (through the same fake)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        port = urllib.parse.urlsplit(cls.daemon.db.url).port
        cls.proxy = apitest.TcpProxy(port)
        cls.addClassCleanup(cls.proxy.down)
        cls.worker = cls.start_worker(dapr_env(cls.fake, TE_PG_URL=cls.proxy.url(cls.daemon.db.url)))

    def published_event(self, c, short_type="created", title=None):
        t = self.create_task(c, title=title or "w-" + uuid.uuid4().hex[:8])
        got = self.fake.wait(lambda r: r.get("key") == c.user and r.get("topic") == "task.events"
                             and r["json"].get("type") == TASK + short_type,
                             what=f"task.{short_type} of {c.user}")
        return t, got[-1]["json"]

    def activity(self, event_id):
        return sql_count(self.daemon.db,
                         f"SELECT count(*) FROM activity WHERE event_id = {sql_str(event_id)}")

    def dlq(self, pred=lambda ev: True):
        return [r for r in self.fake.published("notification.dlq") if pred(r["json"])]

    def test_a_subscribe(self):
        r = self.worker.request("GET", "/dapr/subscribe")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.header("Content-Type") or "").split(";")[0], "application/json", r)
        self.assertEqual(r.json, [{"pubsubname": "kafka-pubsub", "topic": "task.events",
                                   "route": "/dapr/events/task.events"}])

    def test_b_delivery_success_once(self):
        c = self.new_client()
        _, ev = self.published_event(c)
        body = as_delivered(ev, "task.events")
        r = deliver(self.worker.port, "task.events", body, key=c.user)
        self.assertEqual(status_of(r), "SUCCESS", r)
        self.assertEqual(self.activity(ev["id"]), 1, "an activity row for the event")
        r = deliver(self.worker.port, "task.events", body, key=c.user)  # redelivered
        self.assertEqual(status_of(r), "SUCCESS", r)
        self.assertEqual(self.activity(ev["id"]), 1, "still one row after a redelivery")

    def test_c_not_a_cloudevent(self):
        marker = "not a cloudevent " + uuid.uuid4().hex
        r = deliver(self.worker.port, "task.events", json.dumps({"note": marker}))
        self.assertEqual(status_of(r), "SUCCESS", r)
        got = self.fake.wait(lambda x: x.get("topic") == "notification.dlq"
                             and marker in json.dumps(x["json"]), what="the dead-letter publish")
        req = got[0]
        self.assertEqual(req["path"], "/v1.0/publish/kafka-pubsub/notification.dlq")
        ev = req["json"]
        rc, out = validate_event(ev)
        self.assertEqual(rc, 0, f"the dead-letter record is catalogue-valid: {out}")
        self.assertEqual(ev["type"], DLQ_TYPE)
        d = event_data(ev)
        self.assertEqual(d.get("original_topic"), "task.events")
        self.assertIn(marker, d.get("original_event") if isinstance(d.get("original_event"), str)
                      else json.dumps(d.get("original_event")))
        self.assertTrue((d.get("error") or "").strip(), d)
        self.assertIsInstance(d.get("attempt_count"), int)
        self.assertRegex(d.get("last_attempt_at") or "", apitest.RFC3339_RE)

    def test_d_catalogue_invalid_event(self):
        c = self.new_client()
        _, ev = self.published_event(c)
        bad = dict(ev, id=str(uuid.uuid4()), type=TASK + "completed", data={"task_id": "not-a-uuid"})
        r = deliver(self.worker.port, "task.events", as_delivered(bad, "task.events"), key=c.user)
        self.assertEqual(status_of(r), "SUCCESS", r)
        got = self.fake.wait(lambda x: x.get("topic") == "notification.dlq" and
                             (event_data(x["json"]).get("original_event") or {}) != {} and
                             bad["id"] in json.dumps(event_data(x["json"]).get("original_event")),
                             what="the dead-letter record of the invalid event")
        self.assertEqual(got[0]["key"], c.user,
                         "the dead letter keyed by the record's key (the __key header; Kafka "
                         "mode keys it by the record key too)")
        self.assertEqual(self.activity(bad["id"]), 0)

    def test_e_dead_letter_refused_means_retry(self):
        marker = "refused dlq " + uuid.uuid4().hex
        with self.fake.cond:
            previous = self.fake.publish_status
            self.fake.publish_status = lambda x: 500 if x.get("topic") == "notification.dlq" \
                else previous(x)
        try:
            r = deliver(self.worker.port, "task.events", json.dumps({"note": marker}))
            self.assertEqual(status_of(r), "RETRY",
                             f"the dead-letter publish failed: the event must come again: {r}")
        finally:
            with self.fake.cond:
                self.fake.publish_status = previous
        r = deliver(self.worker.port, "task.events", json.dumps({"note": marker}))
        self.assertEqual(status_of(r), "SUCCESS", r)

    def test_f_unknown_route_and_method(self):
        r = deliver(self.worker.port, "reminder.due", b"{}")
        self.assertEqual(r.status, 404, "a route that is not subscribed: 404 (Dapr drops it)")
        r = http_request(self.worker.port, "GET", "/dapr/events/task.events")
        self.assertEqual(r.status, 405, r)

    def test_g_transient_failure_is_retry(self):
        c = self.new_client()
        _, ev = self.published_event(c)
        body = as_delivered(ev, "task.events")
        self.proxy.down()
        try:
            answers = [status_of(deliver(self.worker.port, "task.events", body, key=c.user))
                       for _ in range(2)]
        finally:
            self.proxy.up()
        self.assertEqual(answers, ["RETRY", "RETRY"],
                         "PostgreSQL unreachable: RETRY (Dapr redelivers), not a dead letter")
        self.assertEqual(self.dlq(lambda e: ev["id"] in json.dumps(e)), [])
        r = wait_until(lambda: status_of(deliver(self.worker.port, "task.events", body,
                                                key=c.user)) == "SUCCESS",
                       15, "SUCCESS once PostgreSQL is back", interval=0.5)
        self.assertTrue(r)
        self.assertEqual(self.activity(ev["id"]), 1)

    def test_h_body_too_large(self):
        # Dapr retries every answer but 2xx and 404 (runtime/subscription/
        # publish.go): an oversized delivery must never get a status Dapr
        # resends for ever.  Up to the app's limit (2 MiB: twice Kafka's
        # default largest record) it is handled like any other; its dead
        # letter carries a note instead of an original over 512 KiB, as in
        # Kafka mode.  Beyond the limit it cannot have come from Kafka: DROP.
        big = json.dumps({"specversion": "1.0", "id": str(uuid.uuid4()), "type": TASK + "created",
                          "source": "/x", "data": {"pad": "x" * (1 << 20)}})
        r = deliver(self.worker.port, "task.events", big)
        self.assertEqual(status_of(r), "SUCCESS", f"got {r.status} {r.data[:100]!r}")
        got = self.fake.wait(lambda x: x.get("topic") == "notification.dlq" and
                             "omitted" in json.dumps(x["json"]), what="the large event's dead letter")
        self.assertLess(len(json.dumps(got[0]["json"])), 64 * 1024, "the dead letter stays small")
        huge = json.dumps({"specversion": "1.0", "id": str(uuid.uuid4()), "type": TASK + "created",
                           "source": "/x", "data": {"pad": "x" * (3 << 20)}})
        r = deliver(self.worker.port, "task.events", huge)
        self.assertEqual(status_of(r), "DROP", f"got {r.status} {r.data[:100]!r}")


class ReminderRoutes(FakeCase):
    """todo-reminder's app side: /dapr/subscribe, /reminder-scheduler, and an
    email through the SMTP output binding (the reminder.due it published is
    delivered back to its route, as daprd would)."""

    SMTP_FROM = "reminders@example.test"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reminder = cls.start_reminder(dapr_env(
            cls.fake, TE_SMTP_FROM=cls.SMTP_FROM, TE_NOTIFY_BACKOFF_MS="100",
            TE_NOTIFY_MAX_ATTEMPTS="3"), positioned=True)

    def email_user(self):
        c = self.new_client()
        addr = f"rcpt-{uuid.uuid4().hex[:10]}@example.test"
        r = c.put(SETTINGS, {"channels": ["email"], "email": addr})
        self.assertEqual(r.status, 200, r)
        return c, addr

    def reminder_due(self, c, title):
        """Creates a task of c with a reminder in 1 s; waits for the
        reminder.due the scheduler publishes, delivers it to the reminder's
        route (SUCCESS); returns (task, reminder id, binding requests pred)."""
        at = apitest.rfc3339(apitest.utc_now() + apitest.dt.timedelta(seconds=1))
        t = self.create_task(c, title=title, reminders=[{"at": at}])
        rid = t["reminders"][0]["id"]
        got = self.fake.wait(lambda r: r.get("topic") == "reminder.due" and
                             event_data(r["json"]).get("reminder_id") == rid, timeout=20,
                             what=f"the reminder.due of {rid}")
        req = got[0]
        self.assertEqual(req["key"], c.user)
        r = deliver(self.reminder.port, "reminder.due", as_delivered(req["json"], "reminder.due"),
                    key=c.user)
        self.assertEqual(status_of(r), "SUCCESS", r)
        return t, rid

    def deliveries(self, c, t, rid):
        r = c.get(f"/api/tasks/{t['id']}/reminders")
        x = next(x for x in r.json["items"] if x["id"] == rid)
        return x

    def test_a_subscribe(self):
        r = self.reminder.request("GET", "/dapr/subscribe")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, [{"pubsubname": "kafka-pubsub", "topic": "reminder.due",
                                   "route": "/dapr/events/reminder.due"}])

    def test_b_cron_route(self):
        self.assertEqual(self.reminder.request("OPTIONS", "/reminder-scheduler").status, 200)
        r = self.reminder.request("POST", "/reminder-scheduler", body=b"",
                                  headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.reminder.request("GET", "/reminder-scheduler").status, 405)

    def test_c_email_through_binding(self):
        c, addr = self.email_user()
        title = f"Zahnärztin ☕ {uuid.uuid4().hex[:6]}"
        t, rid = self.reminder_due(c, title)
        got = self.fake.wait(lambda r: r["path"] == "/v1.0/bindings/smtp" and
                             (r["json"].get("metadata") or {}).get("emailTo") == addr,
                             what="the SMTP binding request")
        req = got[0]
        self.assertEqual(req["method"], "POST")
        self.assertEqual((req["headers"].get("content-type") or "").split(";")[0], "application/json")
        b = req["json"]
        self.assertEqual(b.get("operation"), "create", b)
        self.assertIsInstance(b.get("data"), str, b)
        self.assertIn(title, b["data"])
        md = b.get("metadata")
        self.assertEqual(set(md), {"emailTo", "emailFrom", "subject"}, md)
        self.assertEqual(md["emailFrom"], self.SMTP_FROM)
        self.assertEqual(md["subject"], "Reminder: " + title)
        wait_until(lambda: self.deliveries(c, t, rid).get("status") == "sent", 10,
                   "the reminder marked sent after the binding's 204")

    def test_d_email_body_is_html(self):
        # components-contrib bindings/smtp (v1.14) sends the binding's data as
        # the message's text/html part (gomail SetBody("text/html", ...)):
        # plain text must be HTML-escaped, or a title like this one is markup.
        c, addr = self.email_user()
        title = f"Pay <b>rent</b> & co {uuid.uuid4().hex[:6]}"
        self.reminder_due(c, title)
        got = self.fake.wait(lambda r: r["path"] == "/v1.0/bindings/smtp" and
                             (r["json"].get("metadata") or {}).get("emailTo") == addr,
                             what="the SMTP binding request")
        data = got[0]["json"]["data"]
        self.assertNotIn("<b>", data, f"the title reaches an HTML body unescaped: {data!r}")
        text = html.unescape(re.sub(r"<[^>]*>", "", data))
        self.assertIn(title, text, f"the HTML body shows the title: {data!r}")

    def test_e_binding_failure_retried_then_dead_lettered(self):
        c, addr = self.email_user()
        with self.fake.cond:
            previous = self.fake.binding_status
            self.fake.binding_status = lambda r: 500 if (r["json"].get("metadata") or {}) \
                .get("emailTo") == addr else previous(r)
        try:
            t, rid = self.reminder_due(c, "failing mail " + uuid.uuid4().hex[:6])
            self.fake.wait(lambda r: r["path"] == "/v1.0/bindings/smtp" and
                           (r["json"].get("metadata") or {}).get("emailTo") == addr, n=3,
                           what="3 attempts through the binding", timeout=20)
            got = self.fake.wait(lambda r: r.get("topic") == "notification.dlq" and
                                 rid in json.dumps(r["json"]), what="the dead letter", timeout=20)
        finally:
            with self.fake.cond:
                self.fake.binding_status = previous
        d = event_data(got[0]["json"])
        self.assertEqual(d.get("attempt_count"), 3, d)
        self.assertEqual(got[0]["key"], c.user)
        time.sleep(0.5)
        n = len(self.fake.received(lambda r: r["path"] == "/v1.0/bindings/smtp" and
                                   (r["json"].get("metadata") or {}).get("emailTo") == addr))
        self.assertEqual(n, 3, "exactly 3 attempts")


class SyncRoutes(FakeCase):
    """todo-sync's app side on its own port (TE_SYNC_DAPR_LISTEN), with the
    broadcast component (TE_DAPR_PUBSUB=kafka-pubsub-broadcast)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fake.pubsubs.add("kafka-pubsub-broadcast")
        cls.dapr_port = apitest.free_port()
        cls.sync = cls.start_sync(dapr_env(
            cls.fake, TE_DAPR_PUBSUB="kafka-pubsub-broadcast", TE_JWT_SECRET=None,
            TE_JWT_SECRET_SECRET="todoevents/jwt-secret",
            TE_SYNC_DAPR_LISTEN=f"127.0.0.1:{cls.dapr_port}"), secret=cls.jwt, positioned=True,
            ready=False)  # test_d checks /readyz
        cls.sync.secret = cls.jwt

    def test_d_ready_without_kafka(self):
        self.assertTrue(self.sync.wait_ready(10),
                        f"todo-sync in Dapr mode: /readyz 200 (no Kafka consumer to wait for); "
                        f"last: {self.sync.last_readyz}")

    def test_a_subscribe(self):
        r = http_request(self.dapr_port, "GET", "/dapr/subscribe")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(r.json, key=lambda s: s["topic"]), [
            {"pubsubname": "kafka-pubsub-broadcast", "topic": "notification.send",
             "route": "/dapr/events/notification.send"},
            {"pubsubname": "kafka-pubsub-broadcast", "topic": "sync.events",
             "route": "/dapr/events/sync.events"}])

    def test_b_change_reaches_the_session(self):
        c = self.new_client()
        ws = daprlib.WebSocket(self.sync.port, f"/api/ws/tasks?token={self.sync.token(c.user)}")
        self.addCleanup(ws.close)
        hello = ws.recv_json()
        self.assertEqual(hello.get("type"), "hello", hello)
        t = self.create_task(c, title="over dapr")
        got = self.fake.wait(lambda r: r.get("key") == c.user and r.get("topic") == "sync.events",
                             what="the sync.events publish")
        r = deliver(self.dapr_port, "sync.events", as_delivered(got[0]["json"], "sync.events",
                                                                "kafka-pubsub-broadcast"),
                    pubsub="kafka-pubsub-broadcast", key=c.user)
        self.assertEqual(status_of(r), "SUCCESS", r)
        msg = ws.recv_json()
        self.assertEqual((msg.get("type"), (msg.get("data") or {}).get("task_id")),
                         ("task.created", t["id"]), msg)

    def test_c_invalid_is_dead_lettered_through_its_component(self):
        marker = "bad sync " + uuid.uuid4().hex
        r = deliver(self.dapr_port, "sync.events", json.dumps({"x": marker}),
                    pubsub="kafka-pubsub-broadcast")
        self.assertEqual(status_of(r), "SUCCESS", r)
        got = self.fake.wait(lambda x: x.get("topic") == "notification.dlq" and
                             marker in json.dumps(x["json"]), what="the dead letter")
        self.assertEqual(got[0]["pubsub"], "kafka-pubsub-broadcast")
        self.assertEqual(deliver(self.dapr_port, "task.events", b"{}").status, 404)


# ==== 2. against a real daprd ===========================================================


def need_daprd():
    binary, why = daprlib.daprd_binary()
    if binary:
        return binary
    if os.environ.get("TE_DAPRD_REQUIRED") == "1":
        raise RuntimeError(f"TE_DAPRD_REQUIRED=1 and no daprd: {why}")
    raise unittest.SkipTest(f"no daprd: {why}")


class RealDapr(apitest.ApiTestCase):
    """The four daemons in Dapr mode, each behind a real daprd (standalone)
    with the components of infrastructure/dapr/local, against the local
    Kafka, Redis, an aiosmtpd server and a local-file secret store."""

    SMTP_FROM = "reminders@example.test"

    @classmethod
    def setUpClass(cls):
        cls.binary = need_daprd()
        apitest.services()
        apitest.ensure_topics()
        cls.daemons, cls.tails = [], {}
        cls.addClassCleanup(cls._close_tails)
        svc = apitest.services()
        db = cls.new_database(cls.__name__)
        cls.db = db
        cls.smtp = apitest.SmtpServer()
        cls.addClassCleanup(cls.smtp.close)
        cls.tmp = tempfile.mkdtemp(prefix="te-dapr-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.jwt = "jwt-" + secrets.token_hex(16)
        cls.secrets_file = os.path.join(cls.tmp, "secrets.json")
        with open(cls.secrets_file, "w") as f:
            json.dump({"todoevents": {"jwt-secret": cls.jwt, "pg-url": db.url},
                       "redis-secret": {"redis-password": ""},
                       "smtp-secret": {"user": "todo", "password": "not-sent"}}, f)
        run = uuid.uuid4().hex[:10]
        cls.sync_group = f"todo-sync-test-{run}"
        groups = [f"todo-worker-test-{run}", f"todo-reminder-test-{run}", cls.sync_group]
        cls.tails.update(apitest.end_tails(["task.events", "notification.dlq"], extra_groups=groups))
        redis = urllib.parse.urlsplit(svc["TE_REDIS_URL"])
        cls.redis_url = svc["TE_REDIS_URL"]
        resources = daprlib.render_resources(os.path.join(cls.tmp, "resources"), {
            "KAFKA_BROKERS": svc["TE_KAFKA_BROKERS"],
            "CONSUMER_GROUP": "{appID}-test-" + run, "SYNC_CONSUMER_GROUP": cls.sync_group,
            "REDIS_HOST": f"{redis.hostname}:{redis.port}",
            "REDIS_DB": (redis.path or "/0").strip("/") or "0",
            "CRON_SCHEDULE": "@every 2s", "SMTP_PORT": str(cls.smtp.port),
            "SECRETS_FILE": cls.secrets_file})
        base = {"TE_TRANSPORT": "dapr", "TE_KAFKA_BROKERS": None, "TE_REDIS_URL": None,
                "TE_DAPR_WAIT_S": "60"}
        cls.sidecars = {}
        api = apitest.Daemon("dapr-api", db, dict(base, TE_JWT_SECRET=None,
                                                  TE_JWT_SECRET_SECRET="todoevents/jwt-secret"))
        cls.daemon = cls._behind_daprd(api, "todo-api", resources, api.port)
        cls.daemon.secret = cls.jwt
        worker = apitest.Worker("dapr-worker", db, None, dict(
            base, TE_PG_URL=None, TE_PG_URL_SECRET="todoevents/pg-url"))
        cls.worker = cls._behind_daprd(worker, "todo-worker", resources, worker.port)
        reminder = apitest.Reminder("dapr-reminder", db, None, dict(
            base, TE_SMTP_FROM=cls.SMTP_FROM, TE_NOTIFY_BACKOFF_MS="200"))
        cls.reminder = cls._behind_daprd(reminder, "todo-reminder", resources, reminder.port)
        sync_port = apitest.free_port()
        sync = apitest.Sync("dapr-sync", db, cls.jwt, None, dict(
            base, TE_JWT_SECRET=None, TE_JWT_SECRET_SECRET="todoevents/jwt-secret",
            TE_DAPR_PUBSUB="kafka-pubsub-broadcast", TE_SYNC_DAPR_LISTEN=f"127.0.0.1:{sync_port}"))
        # /readyz of todo-sync waits for Kafka partitions even in Dapr mode
        # (SyncRoutes.test_d_ready_without_kafka): /healthz only here.
        cls.sync = cls._behind_daprd(sync, "todo-sync", resources, sync_port, ready=False)
        cls.sync.secret = cls.jwt
        for name, sc in cls.sidecars.items():
            wait_until(sc.healthy, 60, f"daprd {name}: GET /v1.0/healthz = 204 (app channel up)",
                       interval=0.2)
        time.sleep(3)  # the sidecars' Kafka consumer groups join (positioned at the end)

    @classmethod
    def _behind_daprd(cls, d, app_id, resources, app_port, **start_args):
        """d started behind a new daprd for app_id (the daprd stops after d)."""
        sc = daprlib.Daprd(cls.binary, app_id, app_port, resources)
        cls.addClassCleanup(sc.close)
        sc.start()
        cls.sidecars[app_id] = sc
        d.env["TE_DAPR_HTTP"] = sc.url
        return cls._started(d, **start_args)

    def run(self, result=None):
        marks = {n: s.log_size() for n, s in getattr(self, "sidecars", {}).items()}
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            for n, s in self.sidecars.items():
                log(f"---- daprd {n} log during {self.id()} ----")
                log(s.log_text(marks.get(n, 0))[-4000:])
        return out

    def activity_event(self, task_id, short_type="created"):
        rows = self.db.sql(f"SELECT event_id FROM activity WHERE entity_id = {sql_str(task_id)} "
                           f"AND event_type = {sql_str(TASK + short_type)}").split()
        return rows[0] if rows else None

    def test_a_task_reaches_the_worker(self):
        c = self.new_client()
        r = c.post("/api/tasks", {"title": "via dapr"})
        self.assert_status(r, 201)
        t = r.json
        eid = wait_until(lambda: self.activity_event(t["id"]), 30,
                         "todo-worker's activity row of the task.created (api -> daprd -> Kafka -> "
                         "daprd -> worker)", interval=0.2)
        self.assertRegex(eid, apitest.UUID_RE)
        wait_until(lambda: sql_count(self.db, f"SELECT count(*) FROM outbox WHERE key = "
                                              f"{sql_str(c.user)}") == 0, 10, "the outbox emptied")
        # The Kafka record: key = the user id, the partition of every record of the user.
        recs = self.tails["task.events"].wait(c.user, lambda rs: len(rs) >= 1, timeout=20,
                                              what="the task.events record")
        parts = {x["partition"] for x in self.tails["task.events"].of(c.user)}
        self.assertEqual(len(parts), 1, f"one partition per user: {parts}")
        p = parts.pop()
        fnv = daprlib.sarama_partition(c.user, 12)
        log(f"user {c.user}: partition {p} (sarama FNV-1a: {fnv}; librdkafka murmur2 would "
            f"give {apitest.murmur2_partition(c.user, 12)})")
        self.assertEqual(p, fnv, "Dapr's Kafka component partitions by FNV-1a of the key")
        read = daprlib.kafka_console_read("task.events", p, recs[0]["offset"])
        if read is None:
            self.skipTest("no java / Kafka jars to read the record's headers and value")
        headers, key, value = read
        self.assertEqual(key, c.user, "the record key is the user id (metadata.partitionKey)")
        self.assertEqual(headers, {"partitionKey": c.user},
                         "Dapr adds the publish metadata as headers, nothing else")
        ev = json.loads(value)
        self.assertEqual((ev.get("id"), ev.get("type"), ev.get("partitionkey")),
                         (eid, TASK + "created", c.user), ev)
        self.assertEqual((ev.get("topic"), ev.get("pubsubname")), ("task.events", "kafka-pubsub"))
        rc, out = validate_event(ev)
        self.assertEqual(rc, 0, f"the CloudEvent on Kafka (Dapr's attributes added): {out}")
        if "error" in recs[0]:
            log(f"note: todoctl event tail (Kafka mode) cannot decode Dapr's record: "
                f"{recs[0]['error']} (no content-type header)")

    def test_a2_trace_continues_through_the_sidecar(self):
        """The request's W3C trace reaches the event on Kafka (as in Kafka
        mode, test_events.test_traceparent; configuration.yaml's tracing)."""
        c = self.new_client()
        trace = secrets.token_hex(16)
        r = c.post("/api/tasks", {"title": "traced"},
                   headers={"traceparent": f"00-{trace}-{secrets.token_hex(8)}-01"})
        self.assert_status(r, 201)
        recs = self.tails["task.events"].wait(c.user, lambda rs: len(rs) >= 1, timeout=20,
                                              what="the task.events record")
        read = daprlib.kafka_console_read("task.events", recs[0]["partition"], recs[0]["offset"])
        if read is None:
            self.skipTest("no java / Kafka jars to read the record's value")
        ev = json.loads(read[2])
        m = TRACEPARENT_RE.match(ev.get("traceparent") or "")
        self.assertTrue(m and m.group(1) == trace,
                        f"the request's trace {trace} reaches the event on Kafka (traceparent "
                        f"{ev.get('traceparent')!r}, traceid {ev.get('traceid')!r}): daprd replaces "
                        f"the event's traceparent with its own span's unless the publish request "
                        f"carries the traceparent header (RealDaprContract.test_e)")

    def test_b_idempotency_in_redis(self):
        c = self.new_client()
        key = "idem-" + uuid.uuid4().hex
        rkey = f"todo-api||te:idem:{c.user}:{daprlib.sha256_hex(key)}"
        r1 = c.post("/api/tasks", {"title": "once"}, headers={"Idempotency-Key": key})
        self.assert_status(r1, 201)
        r2 = c.post("/api/tasks", {"title": "once"}, headers={"Idempotency-Key": key})
        self.assertEqual((r2.status, r2.data), (201, r1.data), r2)
        self.assertEqual(r2.header("Idempotent-Replayed"), "true", r2)
        h = daprlib.redis_command(self.redis_url, "HGETALL", rkey)
        rec = dict(zip(h[::2], h[1::2])) if h else {}
        self.assertIn(b"data", rec, f"Redis key {rkey}: {h}")
        value = json.loads(rec[b"data"])
        self.assertEqual((value.get("st"), value.get("status")), ("d", 201), value)
        ttl = daprlib.redis_command(self.redis_url, "TTL", rkey)
        self.assertGreater(ttl, 60, "the stored response expires after TE_IDEMPOTENCY_TTL")
        items = c.get("/api/tasks?q=once").json["items"]
        self.assertEqual(len([t for t in items if t["title"] == "once"]), 1)

    def test_c_idempotency_race_and_abort(self):
        c = self.new_client()
        key = "race-" + uuid.uuid4().hex
        title = "race-" + uuid.uuid4().hex[:6]
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            rs = list(pool.map(lambda _: c.post("/api/tasks", {"title": title},
                                                headers={"Idempotency-Key": key}), range(6)))
        statuses = sorted(r.status for r in rs)
        fresh = [r for r in rs if r.status == 201 and r.header("Idempotent-Replayed") is None]
        self.assertEqual(len(fresh), 1, f"one request runs, the others replay or wait (409): "
                                        f"{[(r.status, r.header('Idempotent-Replayed')) for r in rs]}")
        self.assertTrue(set(statuses) <= {201, 409}, statuses)
        items = c.get(apitest.query("/api/tasks", q=title)).json["items"]
        self.assertEqual(len([t for t in items if t["title"] == title]), 1,
                         "two requests with one key made one task")
        key2 = "abort-" + uuid.uuid4().hex
        rkey2 = f"todo-api||te:idem:{c.user}:{daprlib.sha256_hex(key2)}"
        self.assertEqual(c.post("/api/tasks", {"title": ""},
                                headers={"Idempotency-Key": key2}).status, 400)
        self.assertEqual(daprlib.redis_command(self.redis_url, "EXISTS", rkey2), 0,
                         "the marker deleted (DELETE with If-Match) after a 4xx")
        self.assert_status(c.post("/api/tasks", {"title": "valid"},
                                  headers={"Idempotency-Key": key2}), 201)

    def test_d_secrets_from_the_store(self):
        c = self.new_client()
        self.assert_status(c.get("/api/tasks"), 200)
        other = self.daemon.client(c.user, token=apitest.hs256_token("x", apitest.claims(c.user)))
        self.assert_status(other.get("/api/tasks"), 401)
        self.assertNotIn("TE_PG_URL", {k for k, v in self.worker.env.items() if v})
        self.assertEqual(self.worker.request("GET", "/readyz").status, 200,
                         "todo-worker runs on the PostgreSQL URL read from the secret store")

    def reminder_email(self, title, seconds):
        """A new user with email reminders, a task titled title reminding in
        seconds, and the email it gets: (client, task, message, body)."""
        c = self.new_client()
        addr = f"rcpt-{uuid.uuid4().hex[:10]}@example.test"
        self.assert_status(c.put(SETTINGS, {"channels": ["email"], "email": addr}), 200)
        at = apitest.rfc3339(apitest.utc_now() + apitest.dt.timedelta(seconds=seconds))
        t = self.create_task(c, title=title, reminders=[{"at": at}])
        msgs = wait_until(lambda: [m for m in self.smtp.messages() if addr in (m.get("To") or "")],
                          30, f"an email to {addr} (scheduler -> daprd -> Kafka reminder.due "
                              f"-> daprd -> todo-reminder -> SMTP binding -> aiosmtpd)",
                          interval=0.2)
        m = msgs[0]
        return c, t, m, m.get_payload(decode=True).decode(m.get_content_charset() or "utf-8")

    def test_e_reminder_email_through_the_binding(self):
        title = f"Zahnärztin {uuid.uuid4().hex[:6]}"
        c, t, m, body = self.reminder_email(title, 2)
        self.assertIn(self.SMTP_FROM, m.get("From") or "")
        subject = str(email.header.make_header(email.header.decode_header(m.get("Subject") or "")))
        self.assertEqual(re.sub(r"\s+", " ", subject), "Reminder: " + title)
        self.assertIn(title, html.unescape(body))
        rid = t["reminders"][0]["id"]
        x = wait_until(lambda: next((x for x in c.get(f"/api/tasks/{t['id']}/reminders").json["items"]
                                     if x["id"] == rid and x.get("status") == "sent"), None),
                       10, "the reminder marked sent")
        self.assertTrue(x)

    def test_f_email_text_survives_html(self):
        title = f"Pay <b>rent</b> & co {uuid.uuid4().hex[:6]}"
        _, _, m, body = self.reminder_email(title, 1)
        log(f"SMTP binding email: {m.get_content_type()}: {body!r}")
        if m.get_content_type() == "text/html":
            self.assertNotIn("<b>", body, "a title's markup reaches the HTML body unescaped")
            shown = html.unescape(re.sub(r"<[^>]*>", "", re.sub(r"(?i)<br\s*/?>", "\n", body)))
            self.assertIn(title, shown)
            self.assertIn("\n", shown.strip(), "line breaks survive in the HTML body")
        else:
            self.assertIn(title, body)

    def test_g_cron_binding_calls_the_route(self):
        sc = self.sidecars["todo-reminder"]

        def count(success):
            return sum(v for n, lab, v in sc.metrics()
                       if "input_binding" in n and n.endswith("_count")
                       and lab.get("component") == "reminder-scheduler"
                       and lab.get("success") == success)

        def fired():
            return count("true")
        n0 = fired()
        wait_until(lambda: fired() >= n0 + 2, 15,
                   "two successful cron deliveries to /reminder-scheduler (daprd's "
                   "input binding metric)", interval=0.5)
        failed = count("false")
        self.assertEqual(failed, 0, "the app answered every cron call with 2xx")

    def test_h_sync_session_gets_the_change(self):
        c = self.new_client()
        ws = daprlib.WebSocket(self.sync.port, f"/api/ws/tasks?token={self.sync.token(c.user)}")
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv_json().get("type"), "hello")
        t = self.create_task(c, title="to the session")
        deadline = time.monotonic() + 30
        while True:
            msg = ws.recv_json(timeout=max(1, deadline - time.monotonic()))
            if msg.get("type") == "task.created":
                break
        self.assertEqual((msg.get("data") or {}).get("task_id"), t["id"], msg)


class FakeApp(apitest.RecordingServer):
    """An app behind a real daprd, in http.server: answers /dapr/subscribe
    with subscriptions, each delivery with answers[route] (a list consumed
    in order, then {"status": "SUCCESS"}), and records every request."""

    def __init__(self, subscriptions):
        super().__init__()
        app = self
        self.subscriptions = subscriptions
        self.answers = {}

        class Handler(apitest.QuietHandler):
            def _handle(self):
                body = self._read_body()
                req = {"t": time.time(), "method": self.command, "path": self.path,
                       "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                with app.cond:
                    if self.path == "/dapr/subscribe":
                        status, payload = 200, json.dumps(app.subscriptions).encode()
                    else:
                        queue = app.answers.get(self.path) or []
                        status, payload = queue.pop(0) if queue else \
                            (200, b'{"status":"SUCCESS"}')
                    req["status"] = status
                    app.requests.append(req)
                    app.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_OPTIONS = do_PUT = _handle

        self._serve(Handler)

    def wait(self, pred, n=1, timeout=30, what="requests"):
        return self._wait(pred, lambda got: len(got) >= n, timeout,
                          lambda got: f"{n} {what}; got {len(got)}: "
                                      f"{[(r['method'], r['path']) for r in self.requests[-10:]]}")


class RealDaprContract(unittest.TestCase):
    """What the fake sidecar assumes, checked against the real daprd with a
    Python app behind it (app id todo-api, the components of
    infrastructure/dapr/local): the delivery of a published structured
    CloudEvent (body and headers), SUCCESS / RETRY / 404 / 413, the state
    API's answers for the idempotency protocol on Redis, the secrets API,
    the API allowlist of configuration.yaml, the components' scopes."""

    @classmethod
    def setUpClass(cls):
        cls.binary = need_daprd()
        svc = apitest.services()
        apitest.ensure_topics()
        cls.tmp = tempfile.mkdtemp(prefix="te-dapr-contract-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.topic = "task.events"
        cls.route = "/dapr/events/task.events"
        cls.app = FakeApp([{"pubsubname": "kafka-pubsub", "topic": cls.topic, "route": cls.route}])
        cls.addClassCleanup(cls.app.close)
        cls.secrets_file = os.path.join(cls.tmp, "secrets.json")
        cls.secret_value = "s-" + secrets.token_hex(8)
        with open(cls.secrets_file, "w") as f:
            json.dump({"todoevents": {"jwt-secret": cls.secret_value},
                       "redis-secret": {"redis-password": ""},
                       "smtp-secret": {"user": "u", "password": "p"}}, f)
        group = f"todo-api-contract-{uuid.uuid4().hex[:10]}"
        apitest.kafka_groups_to_end([group], [cls.topic])
        redis = urllib.parse.urlsplit(svc["TE_REDIS_URL"])
        cls.redis_url = svc["TE_REDIS_URL"]
        resources = daprlib.render_resources(os.path.join(cls.tmp, "resources"), {
            "KAFKA_BROKERS": svc["TE_KAFKA_BROKERS"], "CONSUMER_GROUP": group,
            "SYNC_CONSUMER_GROUP": group + "-sync",
            "REDIS_HOST": f"{redis.hostname}:{redis.port}",
            "REDIS_DB": (redis.path or "/0").strip("/") or "0",
            "CRON_SCHEDULE": "@every 1h", "SMTP_PORT": "25", "SECRETS_FILE": cls.secrets_file})
        cls.sidecar = daprlib.Daprd(cls.binary, "todo-api", cls.app.port, resources)
        cls.addClassCleanup(cls.sidecar.close)
        cls.sidecar.start()
        wait_until(cls.sidecar.healthy, 60, "daprd healthy", interval=0.2)
        cls.app.wait(lambda r: r["path"] == "/dapr/subscribe", what="GET /dapr/subscribe")
        time.sleep(3)  # the consumer group joins (positioned at the end)

    def run(self, result=None):
        mark = self.sidecar.log_size() if hasattr(self, "sidecar") else 0
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            log(f"---- daprd log during {self.id()} ----\n{self.sidecar.log_text(mark)[-6000:]}")
        return out

    def publish(self, ev, key):
        r = self.sidecar.request("POST", f"/v1.0/publish/kafka-pubsub/{self.topic}?"
                                 + urllib.parse.urlencode({"metadata.partitionKey": key}),
                                 json.dumps(ev), {"Content-Type": CE})
        self.assertEqual(r.status, 204, r)

    def event(self, key):
        return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/contract",
                "type": "org.example.contract", "time": apitest.from_now(),
                "datacontenttype": "application/json", "partitionkey": key,
                "data": {"note": "a <b> & c", "n": 12345678901234567890}}

    def deliveries(self, ev_id):
        return [r for r in self.app.requests if r["path"] == self.route and
                json.loads(r["body"]).get("id") == ev_id]

    def test_a_delivery_as_the_fake_sends_it(self):
        key = "u-" + uuid.uuid4().hex
        ev = self.event(key)
        self.publish(ev, key)
        got = self.app.wait(lambda r: r["path"] == self.route and
                            json.loads(r["body"]).get("id") == ev["id"], what="the delivery")[0]
        self.assertEqual(got["method"], "POST")
        self.assertEqual(got["headers"].get("content-type"), CE)
        body = json.loads(got["body"])
        want = json.loads(as_delivered(ev, self.topic))
        self.assertEqual(sorted(body), sorted(want), "the attributes daprd adds")
        for k in want:
            if k not in ("traceid", "traceparent", "tracestate"):
                self.assertEqual(body[k], want[k], k)
        self.assertRegex(body["traceparent"], TRACEPARENT_RE)
        log(f"delivery headers from daprd: {sorted(got['headers'])}")
        h = got["headers"]
        self.assertEqual((h.get("__key"), h.get("__topic"), h.get("partitionkey"),
                          h.get("pubsubname")), (key, self.topic, key, "kafka-pubsub"), h)
        for k in ("__partition", "__offset", "__timestamp"):
            self.assertRegex(h.get(k) or "", r"^\d+$", k)
        self.assertEqual(got["body"], as_delivered_like(body),
                         "daprd re-encodes the event as Go's encoding/json does")

    def test_b_answers(self):
        """RETRY and 413 are redelivered (resiliency: up to 3 retries), 404
        and SUCCESS are not."""
        for answer, redelivered in ((b'{"status":"RETRY"}', True), (None, True),
                                    (b'{"status":"SUCCESS"}', False), (404, False)):
            with self.subTest(answer=answer):
                key = "u-" + uuid.uuid4().hex
                ev = self.event(key)
                status, payload = (200, answer) if isinstance(answer, bytes) else \
                    (413, b"{}") if answer is None else (answer, b"{}")
                with self.app.cond:
                    self.app.answers[self.route] = [(status, payload)]
                try:
                    self.publish(ev, key)
                    mine = (lambda r: r["path"] == self.route and
                            json.loads(r["body"]).get("id") == ev["id"])
                    if redelivered:
                        got = self.app.wait(mine, n=2, timeout=15,
                                            what=f"a redelivery after {status} {payload!r}")
                        log(f"{status} {payload!r}: delivered again after "
                            f"{got[1]['t'] - got[0]['t']:.2f} s")
                    else:
                        self.app.wait(mine, what="a delivery")
                        time.sleep(3)
                finally:
                    with self.app.cond:
                        self.app.answers[self.route] = []
                if not redelivered:
                    self.assertEqual(len(self.deliveries(ev["id"])), 1,
                                     f"{status} {payload!r}: delivered once")

    def test_c_state_api_on_redis(self):
        """The answers td_dapr_idem_* rely on, from daprd + state.redis."""
        store = "/v1.0/state/statestore"
        k = "te:idem:contract:" + uuid.uuid4().hex
        rkey = "todo-api||" + k
        r = self.sidecar.request("GET", f"{store}/{k}")
        self.assertEqual(r.status, 204, "a missing key: 204")
        item = {"key": k, "value": {"st": "p", "fp": "f"}, "options": {"concurrency": "first-write"},
                "metadata": {"ttlInSeconds": "60"}}
        self.assertEqual(self.sidecar.request("POST", store, [item]).status, 204)
        # the value as JSON (daprd may re-encode it: member order is not kept)
        self.assertEqual(json.loads(daprlib.redis_command(self.redis_url, "HGET", rkey, "data")),
                         {"st": "p", "fp": "f"})
        ttl = daprlib.redis_command(self.redis_url, "TTL", rkey)
        self.assertTrue(0 < ttl <= 60, ttl)
        again = self.sidecar.request("POST", store, [item])
        log(f"first-write insert of an existing key without ETag: {again.status} {again.data!r}")
        self.assertIn(again.status, (409, 500), "refused (daprd+Redis: 500, not 409)")
        r = self.sidecar.request("GET", f"{store}/{k}")
        self.assertEqual(r.status, 200)
        etag = r.header("ETag")
        self.assertTrue(etag, r)
        done = {"key": k, "value": {"st": "d"}, "options": {"concurrency": "first-write"},
                "metadata": {"ttlInSeconds": "3600"}}
        plain = self.sidecar.request("POST", store, [done])
        log(f"finish without ETag after a first-write marker: {plain.status} {plain.data!r}")
        self.assertNotEqual(plain.status, 204, "refused without the ETag")
        self.assertEqual(self.sidecar.request("POST", store, [dict(done, etag=etag)]).status, 204,
                         "finish with the marker's ETag")
        self.assertGreater(daprlib.redis_command(self.redis_url, "TTL", rkey), 60)
        stale = self.sidecar.request("DELETE", f"{store}/{k}", headers={"If-Match": etag})
        self.assertEqual(stale.status, 409, f"DELETE with a stale ETag: {stale}")
        etag2 = self.sidecar.request("GET", f"{store}/{k}").header("ETag")
        self.assertEqual(self.sidecar.request("DELETE", f"{store}/{k}",
                                              headers={"If-Match": etag2}).status, 204)
        self.assertEqual(daprlib.redis_command(self.redis_url, "EXISTS", rkey), 0)

    def test_d_secrets_and_allowlist(self):
        r = self.sidecar.request("GET", "/v1.0/secrets/secretstore/todoevents")
        self.assertEqual((r.status, r.json), (200, {"jwt-secret": self.secret_value}), r)
        r = self.sidecar.request("GET", "/v1.0/secrets/secretstore/nope")
        self.assertEqual(r.status, 500, f"a missing secret: {r}")
        self.assertNotIn(self.secret_value.encode(), r.data)
        r = self.sidecar.request("GET", "/v1.0/metadata")
        self.assertIn(r.status, (403, 404), f"configuration.yaml's API allowlist denies the "
                                            f"rest (daprd does not even route it): {r}")
        r = self.sidecar.request("POST", "/v1.0/bindings/smtp",
                                 {"operation": "create", "data": "x", "metadata": {}})
        self.assertNotIn(r.status, (200, 204), f"smtp is scoped to todo-reminder: {r}")


    def test_e_traceparent_header_keeps_the_trace(self):
        """Publishing with the event's traceparent also as the HTTP header
        makes daprd's traceparent a child of that trace (without it, daprd
        writes a new trace into the event: test RealDapr.test_a2)."""
        for with_header in (False, True):
            with self.subTest(header=with_header):
                key = "u-" + uuid.uuid4().hex
                trace = secrets.token_hex(16)
                ev = dict(self.event(key), traceparent=f"00-{trace}-{secrets.token_hex(8)}-01")
                headers = {"Content-Type": CE}
                if with_header:
                    headers["traceparent"] = ev["traceparent"]
                r = self.sidecar.request("POST", f"/v1.0/publish/kafka-pubsub/{self.topic}?"
                                         + urllib.parse.urlencode({"metadata.partitionKey": key}),
                                         json.dumps(ev), headers)
                self.assertEqual(r.status, 204, r)
                got = self.app.wait(lambda q: q["path"] == self.route and
                                    json.loads(q["body"]).get("id") == ev["id"], what="delivery")
                body = json.loads(got[0]["body"])
                same = TRACEPARENT_RE.match(body["traceparent"]).group(1) == trace
                log(f"publish {'with' if with_header else 'without'} a traceparent header: event "
                    f"traceparent {ev['traceparent']} -> {body['traceparent']}")
                self.assertEqual(same, with_header)


def as_delivered_like(body):
    """body (a parsed delivery) encoded as Go's encoding/json would."""
    return go_json(body).encode()


if __name__ == "__main__":
    apitest.main()
