#!/usr/bin/env python3
"""api.sync — todo-sync, black box, against docs/sync.md: every change of a
user's tasks (made through todo-api) and every in-app notification (from
todo-reminder) reaches all of that user's WebSocket sessions and nobody
else's, in sequence order; a reconnect with `since` (query or sync_request)
gets exactly the missed changes, then `synced`, then the live ones; a
`since` ahead of the user or older than the retained log gets `resync`;
bad tokens are refused with close code 4401; a client that stops reading is
cut off (1008) without disturbing the user's other sessions; operations
endpoints and SIGTERM (1001 to every session, exit 0).

The WebSocket clients are the `websockets` library (Debian package
python3-websockets, for /usr/bin/python3): when the python3 running this
file does not have it, the file runs itself again with /usr/bin/python3.
Each test is a coroutine run with asyncio.run; every session has a reader
task recording each message with its arrival time, and the blocking
HTTP calls to todo-api run in threads (asyncio.to_thread) so that arrival
times are real.

Each class has its own database, todo-api and todo-sync (and, for the
in-app notifications, todo-reminder); the consumer groups of the daemons
are positioned at the end of the shared topics before they start
(apitest.kafka_groups_to_end).  Every user of a test is new.
TE_SYNC_TEST_LATENCY_S (default 1.0) is the limit for a change to reach the
sessions, measured from just before the API request."""

import os
import sys

try:
    import websockets
    import websockets.exceptions
except ImportError:
    SYSTEM_PYTHON = "/usr/bin/python3"
    if (os.environ.get("TE_SYNC_TEST_REEXEC") != "1" and os.access(SYSTEM_PYTHON, os.X_OK)
            and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)):
        os.environ["TE_SYNC_TEST_REEXEC"] = "1"
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__), *sys.argv[1:]])
    raise SystemExit(f"test_sync.py: no websockets library for {sys.executable} or "
                     f"{SYSTEM_PYTHON} (Debian package python3-websockets)")

import asyncio
import datetime as dt
import functools
import json
import random
import signal
import socket
import subprocess
import time
import uuid

import apitest
from apitest import RFC3339_RE, claims, hs256_token, instants, log, metric_value

WS_PATH = "/api/ws/tasks"
LATENCY_LIMIT = float(os.environ.get("TE_SYNC_TEST_LATENCY_S", "1.0"))
QUIET = 1.0  # seconds of waiting to show that nothing (more) arrives
TEST_TIMEOUT = 120
CHANGE_TYPES = ("task.created", "task.updated", "task.completed", "task.deleted")
# The task fields compared between a message's data.task and the API's view.
TASK_KEYS = ("id", "user_id", "title", "description", "priority", "status", "tags",
             "due_date", "version", "completed_at")
LATENCIES = []  # (test, seconds) of every live change measured


def async_test(fn):
    """A test method that runs the coroutine fn(self) with asyncio.run
    (at most TEST_TIMEOUT s); the sessions it opened are closed afterwards."""
    @functools.wraps(fn)
    def wrapper(self):
        async def main():
            self.sessions = []
            try:
                await asyncio.wait_for(fn(self), TEST_TIMEOUT)
            finally:
                await asyncio.gather(*(s.close() for s in self.sessions),
                                     return_exceptions=True)
        asyncio.run(main())
    return wrapper


async def call(fn, *args, **kw):
    """fn(*args, **kw) in a thread (blocking HTTP without stalling the readers)."""
    return await asyncio.to_thread(fn, *args, **kw)


def close_of(ws, exc=None):
    """(code, reason) of a closed connection: the close frame received
    (1006, "" when none came)."""
    rcvd = exc.rcvd if exc is not None else ws.close_rcvd
    return (rcvd.code, rcvd.reason) if rcvd is not None else (1006, "")


def seqs(msgs):
    return [m.get("seq") for m in msgs]


def is_change(m):
    return m.get("type") in CHANGE_TYPES


def task_view(task):
    return instants({k: task.get(k) for k in TASK_KEYS}) if isinstance(task, dict) else task


def short(msgs, n=30):
    """A compact text of messages for assertion texts."""
    out = []
    for m in msgs[:n]:
        d = m.get("data") if isinstance(m.get("data"), dict) else {}
        out.append({k: v for k, v in (("type", m.get("type")), ("seq", m.get("seq")),
                                      ("task_id", d.get("task_id")),
                                      ("reminder_id", d.get("reminder_id")),
                                      ("reason", m.get("reason")), ("error", m.get("error")))
                    if v is not None})
    return json.dumps(out) + (f" … ({len(msgs)} in all)" if len(msgs) > n else "")


def big_text(n=2000):
    """n random CJK characters (the description limit is in characters: 3 bytes
    each in UTF-8, more when escaped), so that a change message is large."""
    return "".join(chr(c) for c in random.choices(range(0x4E00, 0x9FA0), k=n))


def wait_exit(proc, timeout):
    """proc's exit status, or None when it is still running after timeout."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


class RawCloser:
    """A bare websockets connection in a test's session list (closed at the end)."""

    def __init__(self, ws):
        self.ws = ws

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except Exception:  # noqa: BLE001
            pass


class Session:
    """One open WebSocket session and its reader task: `received` holds
    (time.monotonic() at arrival, message) for every frame in order (a
    frame that is not a JSON object text frame is recorded as
    {"_bad_frame": …}); `closed` is (code, reason) once it has ended."""

    def __init__(self, ws, name):
        self.ws = ws
        self.name = name
        self.received = []
        self.closed = None
        self.cond = asyncio.Condition()
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        exc = None
        try:
            async for frame in self.ws:
                t = time.monotonic()
                try:
                    m = json.loads(frame) if isinstance(frame, str) else None
                except ValueError:
                    m = None
                if not isinstance(m, dict):
                    m = {"_bad_frame": frame if isinstance(frame, str) else repr(frame)[:200]}
                async with self.cond:
                    self.received.append((t, m))
                    self.cond.notify_all()
        except websockets.exceptions.ConnectionClosed as e:
            exc = e
        finally:
            async with self.cond:
                self.closed = close_of(self.ws, exc)
                self.cond.notify_all()

    @property
    def msgs(self):
        return [m for _, m in self.received]

    def changes(self):
        return [m for m in self.msgs if is_change(m)]

    def of_type(self, kind):
        return [m for m in self.msgs if m.get("type") == kind]

    async def wait(self, until, timeout=10, what="messages"):
        """Waits until until(msgs) is true (returns msgs); fails when the
        time is up or the session closes first."""
        deadline = time.monotonic() + timeout
        async with self.cond:
            while True:
                msgs = self.msgs
                if until(msgs):
                    return msgs
                left = deadline - time.monotonic()
                if left <= 0 or self.closed is not None:
                    end = (f"the session was closed {self.closed}" if self.closed is not None
                           else f"timed out after {timeout}s")
                    raise AssertionError(f"session {self.name}: {end} waiting for {what}; "
                                         f"received: {short(msgs)}")
                try:
                    await asyncio.wait_for(self.cond.wait(), left)
                except asyncio.TimeoutError:
                    pass

    async def wait_seq(self, seq, timeout=10):
        """The change message with sequence seq (once it has arrived) and its arrival time."""
        await self.wait(lambda ms: any(is_change(m) and m.get("seq") == seq for m in ms),
                        timeout, f"the change with seq {seq}")
        return next((t, m) for t, m in self.received if is_change(m) and m.get("seq") == seq)

    async def wait_closed(self, timeout=10):
        """(code, reason) once the session has ended."""
        deadline = time.monotonic() + timeout
        async with self.cond:
            while self.closed is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"session {self.name}: not closed within {timeout}s; "
                                         f"received: {short(self.msgs)}")
                try:
                    await asyncio.wait_for(self.cond.wait(), left)
                except asyncio.TimeoutError:
                    pass
            return self.closed

    async def send(self, obj):
        await self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except Exception:  # noqa: BLE001 - closing whatever state it is in
            pass
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)


class SyncCase(apitest.ApiTestCase):
    """todo-api and one todo-sync (sync_env) on one database; with_reminder:
    a todo-reminder too.  The daemons' consumer groups are put at the end of
    the shared topics first (one JVM for all)."""

    sync_env = {}
    with_reminder = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        sync_group = f"todo-sync-test-{uuid.uuid4().hex[:12]}"
        groups, topics = [sync_group], list(apitest.Sync.topics)
        if cls.with_reminder:
            reminder_group = f"todo-reminder-test-{uuid.uuid4().hex[:12]}"
            groups.append(reminder_group)
            topics.append("reminder.due")
        positioned = apitest.kafka_groups_to_end(groups, topics)
        cls.sync = cls.start_sync(cls.sync_env, group=sync_group, positioned=True)
        if not positioned:
            time.sleep(1)  # TE_RDKAFKA_AUTO_OFFSET_RESET=latest: let the positions settle
        if cls.with_reminder:
            cls.reminder = cls.start_reminder(group=reminder_group, positioned=True)

    # -- connecting

    async def connect(self, user=None, token=None, since=None, subprotocols=None,
                      query_token=True, path=WS_PATH, name=None, sync=None, **kw):
        """An open Session (the upgrade done; nothing awaited after it).
        token: default a valid one for user; sent in the query unless
        query_token is false (the caller puts it in subprotocols)."""
        sync = sync or self.sync
        if token is None and user is not None:
            token = sync.token(user)
        params = {"token": token if query_token else None, "since": since}
        ws = await websockets.connect(
            sync.ws_url(path, **params), subprotocols=subprotocols, compression=None,
            ping_interval=None, open_timeout=10, close_timeout=5, max_size=2 ** 22, **kw)
        s = Session(ws, name or f"{user}#{len(self.sessions) + 1}")
        self.sessions.append(s)
        return s

    async def hello(self, s, user, seq=None, timeout=10):
        """Checks that the first message of s is the hello of user (with
        sequence seq when given); returns its seq."""
        await s.wait(lambda ms: ms, timeout, "the hello message")
        first = s.msgs[0]
        self.assertEqual(first.get("type"), "hello",
                         f"first message of {s.name} is not hello: {first}")
        self.assertEqual(first.get("user_id"), user, first)
        self.assertIsInstance(first.get("seq"), int, first)
        if seq is not None:
            self.assertEqual(first["seq"], seq, f"hello of {s.name}: seq is not the user's "
                             f"current sequence {seq} (X-Sync-Seq): {first}")
        return first["seq"]

    async def user_session(self, c, name=None, **kw):
        """A session of c's user whose hello has arrived and matches X-Sync-Seq."""
        seq = await call(self.current_seq, c)
        s = await self.connect(c.user, name=name, **kw)
        await self.hello(s, c.user, seq)
        return s

    # -- the API side

    def current_seq(self, c):
        r = c.get("/api/tasks")
        self.assert_status(r, 200)
        value = r.header("X-Sync-Seq")
        self.assertRegex(value or "", r"^\d+$", f"X-Sync-Seq of GET /api/tasks: {r}")
        return int(value)

    def change_log(self, c, since=0):
        """The user's changes after since from GET /api/sync, by seq."""
        out = {}
        while True:
            r = c.get(apitest.query("/api/sync", since=since, limit=1000))
            self.assert_status(r, 200)
            for ch in r.json["changes"]:
                out[ch["seq"]] = ch
            if not r.json.get("has_more"):
                return out
            since = r.json["seq"]

    def patch(self, c, task_id, body):
        r = c.patch(f"/api/tasks/{task_id}", body)
        self.assert_status(r, 200)
        return r.json

    def make_changes(self, c, n, task_id=None):
        """n changes of c's tasks: creates, then title updates of the first."""
        out = []
        for i in range(n):
            if task_id is None or i % 2 == 0:
                t = self.create_task(c, title=f"change {i} " + uuid.uuid4().hex[:6])
                task_id = task_id or t["id"]
                out.append(("task.created", t["id"]))
            else:
                self.patch(c, task_id, {"title": f"renamed {i} " + uuid.uuid4().hex[:6]})
                out.append(("task.updated", task_id))
        return out

    # -- checks

    def check_change(self, m, log_entry=None):
        """A change message as docs/sync.md shows it (and, given the entry
        of GET /api/sync with the same seq, the same change)."""
        self.assertIn(m.get("type"), CHANGE_TYPES, m)
        self.assertIsInstance(m.get("seq"), int, m)
        d = m.get("data")
        self.assertIsInstance(d, dict, m)
        for k in ("task_id", "task", "changes", "at"):
            self.assertIn(k, d, f"data.{k} missing: {m}")
        self.assertRegex(d["task_id"] or "", apitest.UUID_RE, m)
        self.assertRegex(d["at"] or "", RFC3339_RE, m)
        if m["type"] == "task.deleted":
            self.assertIsNone(d["task"], f"task.deleted carries task null: {m}")
        else:
            self.assertIsInstance(d["task"], dict, m)
            self.assertEqual(d["task"].get("id"), d["task_id"], m)
        # "changes field → {old, new} for updates, else null": null for a
        # create or delete; a completion (which updates status and
        # completed_at) may carry them.
        if m["type"] in ("task.created", "task.deleted"):
            self.assertIsNone(d["changes"], f"changes is null except for updates: {m}")
        if m["type"] == "task.updated" or d["changes"] is not None:
            self.assertIsInstance(d["changes"], dict, m)
            for field, ch in d["changes"].items():
                self.assertIsInstance(ch, dict, f"changes.{field}: {m}")
                self.assertEqual(sorted(ch), ["new", "old"], f"changes.{field}: {m}")
        if log_entry is not None:
            self.assertEqual(m["type"], "task." + log_entry.get("op", "?"),
                             f"seq {m['seq']}: message {short([m])} vs GET /api/sync {log_entry}")
            self.assertEqual(d["task_id"], log_entry.get("task_id"), m)
            self.assertEqual(task_view(d["task"]), task_view(log_entry.get("task")),
                             f"seq {m['seq']}: data.task differs from GET /api/sync's task")
            if m["type"] in ("task.updated", "task.completed"):
                self.assertEqual(instants(d["changes"]), instants(log_entry.get("changes")),
                                 f"seq {m['seq']}: data.changes differs from GET /api/sync's")

    def check_contiguous(self, changes, first, last, what):
        """changes carry exactly the sequences first..last, each once, in order."""
        self.assertEqual(seqs(changes), list(range(first, last + 1)),
                         f"{what}: the change sequence numbers must be {first}..{last}, each "
                         f"once, in order: {short(changes, 60)}")

    def note_latency(self, seconds, what):
        LATENCIES.append((self.id().split(".")[-1] + " " + what, seconds))
        self.assertLessEqual(seconds, LATENCY_LIMIT,
                             f"{what} arrived {seconds:.3f}s after the API request started "
                             f"(limit {LATENCY_LIMIT}s)")

    async def quiet(self, *sessions, seconds=QUIET):
        """Waits seconds; returns each session's message count afterwards."""
        await asyncio.sleep(seconds)
        return [len(s.received) for s in sessions]

    def metrics(self, daemon=None):
        return (daemon or self.sync).metrics()

    def metric(self, name, daemon=None, **labels):
        return metric_value(self.metrics(daemon), name, **labels) or 0

    async def wait_connections(self, n, daemon=None, timeout=10):
        """Waits until te_sync_connections is n."""
        await call(apitest.wait_until,
                   lambda: self.metric("te_sync_connections", daemon) == n or None,
                   timeout, f"te_sync_connections == {n} (it is "
                   f"{self.metric('te_sync_connections', daemon)})")

    async def expect_refused(self, what, **connect_args):
        """The upgrade completes, then the server closes at once with 4401
        and a reason starting "unauthorized" (no message before)."""
        s = await self.connect(name=what, **connect_args)
        code, reason = await s.wait_closed(5)
        self.assertTrue(code == 4401 and reason.startswith("unauthorized"),
                        f"{what}: closed with {code} {reason!r}; want 4401 'unauthorized…'")
        self.assertEqual(s.msgs, [], f"{what}: nothing is sent before the close")
        return reason


class Live(SyncCase):
    """One todo-sync with the default settings, and a todo-reminder."""

    with_reminder = True

    @async_test
    async def test_a_hello_carries_the_current_seq(self):
        """(2) The first message is hello with the user's sequence at connect
        time (= X-Sync-Seq of GET /api/tasks)."""
        c = self.new_client()
        s0 = await self.user_session(c, name="new user")
        self.assertEqual(s0.msgs[0]["seq"], 0, "a new user's sequence")
        await call(self.make_changes, c, 3)
        self.assertEqual(await call(self.current_seq, c), 3)
        s1 = await self.user_session(c, name="after 3 changes")
        self.assertEqual(s1.msgs[0]["seq"], 3, s1.msgs[0])
        # The old session got the 3 changes live; the hello was not repeated.
        await s0.wait(lambda ms: len([m for m in ms if is_change(m)]) >= 3, 10, "3 changes")
        self.assertEqual([m.get("type") for m in s0.msgs].count("hello"), 1, short(s0.msgs))

    @async_test
    async def test_b_changes_reach_every_session_of_the_user_only(self):
        """(1) Two sessions of A and one of B: A's create / update / complete
        / delete reach both A sessions within the latency limit, with seqs
        +1 each and the data of the change log; B gets none of them (and A
        none of B's)."""
        a, b = self.new_client(), self.new_client()
        a1 = await self.user_session(a, name="A1")
        a2 = await self.user_session(a, name="A2")
        b1 = await self.user_session(b, name="B1")
        base = a1.msgs[0]["seq"]

        async def timed(kind, fn, *args, **kw):
            t0 = time.monotonic()
            result = await call(fn, *args, **kw)
            seq = base + len(steps) + 1
            steps.append(kind)
            for s in (a1, a2):
                t, m = await s.wait_seq(seq, timeout=10)
                self.assertEqual(m.get("type"), kind, f"{s.name}: seq {seq}: {short([m])}")
                self.note_latency(t - t0, f"{kind} on {s.name}")
            return result

        steps = []
        t = await timed("task.created", self.create_task, a,
                        title="sync me", description="first", priority="low")
        tid = t["id"]
        upd = await timed("task.updated", self.patch, a, tid,
                          {"title": "sync me too", "priority": "high"})
        done = await timed("task.completed", a.post, f"/api/tasks/{tid}/complete")
        self.assert_status(done, 200)
        gone = await timed("task.deleted", a.delete, f"/api/tasks/{tid}")
        self.assert_status(gone, 204)

        # The same four messages on both A sessions, in order, nothing else.
        await self.quiet()
        for s in (a1, a2):
            self.assertEqual([m.get("type") for m in s.msgs], ["hello", *steps], short(s.msgs))
            self.check_contiguous(s.changes(), base + 1, base + 4, s.name)
        self.assertEqual(a1.changes(), a2.changes(), "both A sessions get the same messages")
        log_ = await call(self.change_log, a, base)
        for m in a1.changes():
            self.check_change(m, log_.get(m["seq"]))
            self.assertEqual(m["data"]["task_id"], tid, m)
        created, updated, completed, deleted = a1.changes()
        self.assertEqual(task_view(created["data"]["task"]), task_view(t), "created: data.task")
        self.assertEqual(task_view(updated["data"]["task"]), task_view(upd),
                         "updated: data.task is the state after the change")
        ch = updated["data"]["changes"]
        self.assertEqual(ch.get("title"), {"old": "sync me", "new": "sync me too"}, updated)
        self.assertEqual(ch.get("priority"), {"old": "low", "new": "high"}, updated)
        self.assertEqual(completed["data"]["task"].get("status"), "completed", completed)
        self.assertIsNone(deleted["data"]["task"], deleted)

        # B: its hello only.  Then B's own change reaches B, not A.
        self.assertEqual([m.get("type") for m in b1.msgs], ["hello"],
                         f"B received A's changes: {short(b1.msgs)}")
        b_base = b1.msgs[0]["seq"]
        await call(self.create_task, b, title="B's task")
        await b1.wait_seq(b_base + 1)
        await self.quiet()
        self.assertEqual(len(a1.msgs), 5, f"A1 received B's change: {short(a1.msgs)}")
        self.assertEqual(len(a2.msgs), 5, f"A2 received B's change: {short(a2.msgs)}")
        self.assertEqual(len(b1.msgs), 2, short(b1.msgs))

    async def _catch_up(self, via_query):
        """(4) Disconnect, 5 changes, reconnect from the last seq seen: the
        5 in order then synced, then live changes (also ones made while the
        catch-up runs), each seq once."""
        c = self.new_client()
        s = await self.user_session(c, name="first")
        await call(self.make_changes, c, 2)
        h = s.msgs[0]["seq"]
        await s.wait_seq(h + 2)
        last = s.changes()[-1]["seq"]
        await s.close()

        done = await call(self.make_changes, c, 5, None)
        now = await call(self.current_seq, c)
        self.assertEqual(now, last + 5)
        if via_query:
            r = await self.connect(c.user, since=last, name=f"since={last}")
            await self.hello(r, c.user, now)
        else:
            r = await self.connect(c.user, name="sync_request")
            await self.hello(r, c.user, now)
            await r.send({"type": "sync_request", "since": last})
        # More changes while the catch-up runs: they come live, after it.
        more = asyncio.create_task(call(self.make_changes, c, 3, done[0][1]))
        msgs = await r.wait(lambda ms: any(m.get("type") == "synced" for m in ms), 15,
                            "synced after the catch-up")
        await more
        final = await call(self.current_seq, c)
        self.assertEqual(final, now + 3)
        await r.wait_seq(final, 10)
        # One more live change after all that.
        t0 = time.monotonic()
        await call(self.patch, c, done[0][1], {"priority": "urgent"})
        t, _ = await r.wait_seq(final + 1, 10)
        self.note_latency(t - t0, "a live change after the catch-up")
        await self.quiet(r)

        msgs = r.msgs[1:]
        bad = [m for m in msgs if not is_change(m) and m.get("type") != "synced"]
        self.assertEqual(bad, [], f"unexpected messages: {short(msgs)}")
        synced = [i for i, m in enumerate(msgs) if m.get("type") == "synced"]
        self.assertEqual(len(synced), 1, f"one synced: {short(msgs)}")
        n = msgs[synced[0]].get("seq")
        self.assertIsInstance(n, int, msgs[synced[0]])
        self.assertGreaterEqual(n, last + 5, f"synced {n}: the catch-up ends at the sequence "
                                f"at its start or later: {short(msgs)}")
        before, after = msgs[:synced[0]], msgs[synced[0] + 1:]
        self.check_contiguous(before, last + 1, n, "the catch-up before synced")
        self.check_contiguous(after, n + 1, final + 1, "the live changes after synced")
        log_ = await call(self.change_log, c, last)
        for m in before + after:
            self.check_change(m, log_.get(m["seq"]))

    @async_test
    async def test_c_catch_up_with_since_in_the_query(self):
        await self._catch_up(via_query=True)

    @async_test
    async def test_d_catch_up_with_sync_request(self):
        await self._catch_up(via_query=False)

    @async_test
    async def test_e_catch_up_from_zero(self):
        """since=0 on a user with history: every change from 1, then synced."""
        c = self.new_client()
        await call(self.make_changes, c, 4)
        r = await self.connect(c.user, since=0)
        await self.hello(r, c.user, 4)
        await r.wait(lambda ms: any(m.get("type") == "synced" for m in ms), 15, "synced")
        await self.quiet(r)
        self.assertEqual([m.get("type") for m in r.msgs],
                         ["hello", "task.created", "task.updated", "task.created",
                          "task.updated", "synced"], short(r.msgs))
        self.assertEqual(r.msgs[-1].get("seq"), 4, r.msgs[-1])
        log_ = await call(self.change_log, c)
        for m in r.changes():
            self.check_change(m, log_.get(m["seq"]))

    @async_test
    async def test_f_resync(self):
        """(5) since ahead of the user's sequence, by query and by
        sync_request → resync (the session stays open and can sync); since
        older than the retained log (pruned in the database, as the
        API's own test does) → resync."""
        c = self.new_client()
        await call(self.make_changes, c, 5)
        r = await self.connect(c.user, since=9)
        await self.hello(r, c.user, 5)
        await r.wait(lambda ms: len(ms) >= 2, 10, "resync")
        self.check_resync(r.msgs[1], "since=9 in the query (the user is at 5)")
        await r.send({"type": "sync_request", "since": 7})
        await r.wait(lambda ms: len(ms) >= 3, 10, "resync after sync_request since 7")
        self.check_resync(r.msgs[2], "sync_request since 7 (the user is at 5)")
        await r.send({"type": "sync_request", "since": 5})
        await r.wait(lambda ms: len(ms) >= 4, 10, "synced after sync_request since 5")
        self.assertEqual((r.msgs[3].get("type"), r.msgs[3].get("seq")), ("synced", 5),
                         f"sync_request from the current sequence: {short(r.msgs)}")
        self.assertIsNone(r.closed, "the session stays open after resync")

        user = c.user.replace("'", "''")
        await call(self.daemon.db.sql,
                   f"DELETE FROM changes WHERE user_id = '{user}' AND seq <= 3; "
                   f"UPDATE user_seq SET pruned_seq = 3 WHERE user_id = '{user}'")
        old = await self.connect(c.user, since=1, name="since=1, log pruned to 3")
        await self.hello(old, c.user, 5)
        await old.wait(lambda ms: len(ms) >= 2, 10, "resync")
        self.check_resync(old.msgs[1], "since=1 with the log pruned up to 3")
        ok = await self.connect(c.user, since=3, name="since=3, log pruned to 3")
        await ok.wait(lambda ms: any(m.get("type") == "synced" for m in ms), 10, "synced")
        self.assertEqual([(m.get("type"), m.get("seq")) for m in ok.msgs],
                         [("hello", 5), ("task.updated", 4), ("task.created", 5),
                          ("synced", 5)], short(ok.msgs))
        await self.quiet(r, old, ok, seconds=0.3)
        self.assertEqual((len(r.msgs), len(old.msgs), len(ok.msgs)), (4, 2, 4),
                         f"nothing more: {short(r.msgs)} {short(old.msgs)} {short(ok.msgs)}")

    def check_resync(self, m, what):
        self.assertEqual(m.get("type"), "resync", f"{what}: {m}")
        self.assertIsInstance(m.get("seq"), int, f"{what}: {m}")
        self.assertIsInstance(m.get("reason"), str, f"{what}: {m}")
        self.assertTrue(m["reason"], f"{what}: {m}")

    @async_test
    async def test_g_authentication(self):
        """(6) Invalid signature, expired, missing, malformed token, no sub
        (in the query or the Authorization header) → the upgrade completes,
        then close 4401 'unauthorized…' naming the problem; a valid token in
        `Authorization: Bearer` works; a client offering the subprotocol
        todo.v1 gets it answered.  (docs/sync.md: not in
        Sec-WebSocket-Protocol — libwebsockets limits that header.)"""
        user = "u-" + uuid.uuid4().hex
        other = hs256_token("another-secret-" + uuid.uuid4().hex, claims(user))
        expired = hs256_token(self.sync.secret, claims(user, lifetime=-3600,
                                                       iat=int(time.time()) - 7200))
        reasons = {}
        reasons["bad signature"] = await self.expect_refused("bad signature", token=other)
        reasons["expired"] = await self.expect_refused("expired", token=expired)
        reasons["missing"] = await self.expect_refused("missing")
        reasons["malformed"] = await self.expect_refused("malformed", token="not-a-jwt")
        reasons["no sub"] = await self.expect_refused(
            "no sub", token=hs256_token(self.sync.secret, claims(None)))
        reasons["bad signature (header)"] = await self.expect_refused(
            "bad signature (header)", extra_headers={"Authorization": "Bearer " + other})
        reasons["expired (header)"] = await self.expect_refused(
            "expired (header)", extra_headers={"Authorization": "Bearer " + expired})
        reasons["missing (subprotocol todo.v1 offered)"] = await self.expect_refused(
            "missing (subprotocol todo.v1 offered)", subprotocols=["todo.v1"])
        log("4401 reasons: " + json.dumps(reasons))
        self.assertIn("expired", reasons["expired"], "the reason names the problem")
        self.assertIn("expired", reasons["expired (header)"], "the reason names the problem")
        self.assertIn("missing", reasons["missing"], "the reason names the problem")

        c = self.new_client()
        s = await self.connect(c.user, query_token=False, name="Authorization header",
                               extra_headers={"Authorization": "Bearer " + self.sync.token(c.user)})
        await self.hello(s, c.user, 0)
        p = await self.connect(c.user, name="query token, subprotocol todo.v1",
                               subprotocols=["todo.v1"])
        self.assertEqual(p.ws.subprotocol, "todo.v1", "the server answers todo.v1")
        await self.hello(p, c.user, 0)
        t = await call(self.create_task, c)
        for x in (s, p):
            _, m = await x.wait_seq(1)
            self.assertEqual(m["data"]["task_id"], t["id"], m)

    @async_test
    async def test_h_protocol(self):
        """Another path → closed at once with 4404 'not found: …'; a message
        not understood → error, the connection stays open; a client message
        over 64 KiB → close 1009."""
        c = self.new_client()
        other = await self.connect(c.user, path="/api/ws/other")
        code, reason = await other.wait_closed(5)
        self.assertEqual(code, 4404, f"another path: closed with {code} {reason!r}")
        self.assertTrue(reason.startswith("not found"), reason)
        self.assertEqual(other.msgs, [], "another path: nothing is sent before the close")
        s = await self.user_session(c)
        for bad in ("not json", json.dumps([1, 2]), json.dumps({"type": "bogus"}),
                    json.dumps({"type": "sync_request", "since": "x"})):
            n = len(s.msgs)
            await s.send(bad)
            await s.wait(lambda ms: len(ms) > n, 5, f"an answer to {bad!r}")
            m = s.msgs[n]
            self.assertEqual(m.get("type"), "error", f"answer to {bad!r}: {m}")
            self.assertIsInstance(m.get("error"), str, m)
        await s.send({"type": "sync_request", "since": 0})
        await s.wait(lambda ms: ms[-1].get("type") == "synced", 5, "synced")
        self.assertIsNone(s.closed)
        big = await self.user_session(c, name="big")
        try:
            await big.send(json.dumps({"type": "sync_request", "since": 0, "pad": "x" * 70000}))
        except websockets.exceptions.ConnectionClosed:
            pass  # closed while sending: the code is checked below
        code, reason = await big.wait_closed(5)
        self.assertEqual(code, 1009, f"a 70 kB message: closed with {code} {reason!r}")

    @async_test
    async def test_i_notification_reaches_the_users_sessions(self):
        """(3) A reminder due in 2 s with channels ["in_app"]: a notification
        message (seq null, data = notification.send data) on both sessions
        of A, once each; none on B."""
        a, b = self.new_client(), self.new_client()
        self.assert_status(await call(a.put, "/api/notification-settings",
                                      {"channels": ["in_app"]}), 200)
        a1 = await self.user_session(a, name="A1")
        a2 = await self.user_session(a, name="A2")
        b1 = await self.user_session(b, name="B1")
        at = time.time() + 2
        t = await call(self.create_task, a, title="remind me",
                       reminders=[{"at": apitest.rfc3339(
                           dt.datetime.fromtimestamp(at, dt.timezone.utc))}])
        rid = t["reminders"][0]["id"]

        def has_note(ms):
            return any(m.get("type") == "notification" for m in ms)
        for s in (a1, a2):
            await s.wait(has_note, 15, f"the notification of reminder {rid}")
        got = time.time()
        log(f"notification {got - at:.3f}s after remind_at")
        await self.quiet()
        for s in (a1, a2):
            notes = s.of_type("notification")
            self.assertEqual(len(notes), 1, f"{s.name}: one notification: {short(s.msgs)}")
            m = notes[0]
            self.assertIn("seq", m, m)
            self.assertIsNone(m["seq"], m)
            d = m.get("data")
            self.assertIsInstance(d, dict, m)
            self.assertEqual({k: d.get(k) for k in ("reminder_id", "task_id", "user_id", "kind")},
                             {"reminder_id": rid, "task_id": t["id"], "user_id": a.user,
                              "kind": "reminder"}, m)
            self.assertRegex(d.get("notification_id") or "", apitest.UUID_RE, m)
            self.assertIsInstance(d.get("title"), str, m)
        self.assertEqual(a1.of_type("notification"), a2.of_type("notification"))
        self.assertEqual([m.get("type") for m in b1.msgs], ["hello"],
                         f"B got something of A's: {short(b1.msgs)}")

    @async_test
    async def test_j_operations(self):
        """(8) /healthz, /readyz, /metrics on the WebSocket port:
        te_sync_connections follows the sessions; messages sent by type,
        the fan-out histogram and the dropped counter are exported."""
        self.assert_status(await call(self.sync.request, "GET", "/healthz"), 200)
        self.assert_status(await call(self.sync.request, "GET", "/readyz"), 200)
        await self.wait_connections(0)
        hellos = await call(self.metric, "te_sync_messages_sent_total", type="hello")
        c = self.new_client()
        s1 = await self.user_session(c)
        s2 = await self.user_session(c)
        await self.wait_connections(2)
        await call(self.create_task, c)
        for s in (s1, s2):
            await s.wait_seq(1)
        samples = await call(self.metrics)
        names = {n for n, _, _ in samples}
        self.assertEqual(metric_value(samples, "te_sync_messages_sent_total", type="hello"),
                         hellos + 2, "te_sync_messages_sent_total{type=hello}")
        self.assertGreaterEqual(
            metric_value(samples, "te_sync_messages_sent_total", type="task.created") or 0, 2,
            "te_sync_messages_sent_total{type=task.created}")
        self.assertGreaterEqual(metric_value(samples, "te_sync_fanout_seconds_count") or 0, 2,
                                f"te_sync_fanout_seconds histogram: {sorted(names)}")
        self.assertIn("te_sync_fanout_seconds_bucket", names)
        text = (await call(self.sync.request, "GET", "/metrics")).data.decode()
        self.assertIn("te_sync_dropped_total", text, "te_sync_dropped_total is exported")
        await s2.close()
        await self.wait_connections(1)
        await s1.close()
        await self.wait_connections(0)


class Limits(SyncCase):
    """A todo-sync with a small send queue and at most 4 sessions."""

    MAX_QUEUE, MAX_QUEUE_BYTES, MAX_SESSIONS = 256, 2097152, 4
    sync_env = {"TE_SYNC_MAX_QUEUE": str(MAX_QUEUE),
                "TE_SYNC_MAX_QUEUE_BYTES": str(MAX_QUEUE_BYTES),
                "TE_SYNC_MAX_SESSIONS": str(MAX_SESSIONS)}

    def dropped_by_reason(self):
        """te_sync_dropped_total by its reason label."""
        return {lab.get("reason"): v for n, lab, v in self.metrics()
                if n == "te_sync_dropped_total"}

    async def slow_session(self, user):
        """A session that stops reading after the handshake: a socket with
        a tiny receive buffer, the library's queue of 1 message and a small
        read limit, and nobody calling recv (the library stops reading the
        socket once its queue and buffer are full)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.sync.port))
        ws = await websockets.connect(
            self.sync.ws_url(WS_PATH, token=self.sync.token(user)), sock=sock,
            compression=None, ping_interval=None, open_timeout=10, close_timeout=5,
            max_queue=1, read_limit=2048)
        self.sessions.append(RawCloser(ws))
        return ws

    @async_test
    async def test_c_far_behind_gets_resync_not_a_close(self):
        """A reconnect more changes behind than half the send queue (the
        catch-up limit follows TE_SYNC_MAX_QUEUE) gets resync and stays
        open — queuing the whole catch-up would close it (1008) on every
        reconnect; one just within the limit is caught up."""
        c = self.new_client()
        n = self.MAX_QUEUE // 2 + 2
        await call(self.make_changes, c, n)
        r = await self.connect(c.user, since=0)
        await self.hello(r, c.user, n)
        await r.wait(lambda ms: len(ms) >= 2, 15, "resync")
        self.assertEqual(r.msgs[1].get("type"), "resync", short(r.msgs))
        await self.quiet(r)
        self.assertIsNone(r.closed, f"the session stays open: {r.closed}")
        near = await self.connect(c.user, since=n - self.MAX_QUEUE // 2)
        await self.hello(near, c.user, n)
        await near.wait(lambda ms: any(m.get("type") == "synced" for m in ms), 20, "synced")
        self.assertEqual(len(near.changes()), self.MAX_QUEUE // 2, short(near.msgs))
        self.assertIsNone(near.closed)

    @async_test
    async def test_a_slow_reader_is_cut_off(self):
        """(7) A session that does not read while large changes stream in
        is closed with 1008 'send queue limit exceeded' (counted in
        te_sync_dropped_total); the other session of the user gets every
        change, on time."""
        c = self.new_client()
        await self.wait_connections(0)
        fast = await self.user_session(c, name="fast")
        base = fast.msgs[0]["seq"]
        slow = await self.slow_session(c.user)
        await call(apitest.wait_until, lambda: self.metric("te_sync_connections") == 2, 10,
                   "te_sync_connections == 2")
        dropped0 = await call(self.metric, "te_sync_dropped_total")
        by_reason0 = await call(self.dropped_by_reason)
        tasks = [await call(self.create_task, c, title=f"big {i}") for i in range(4)]
        n, cut_at = 0, None
        t_start = time.monotonic()
        while n < 1500:
            body = {"description": big_text()}
            await call(self.patch, c, tasks[n % 4]["id"], body)
            n += 1
            if n % 10 == 0 and await call(self.metric, "te_sync_dropped_total") > dropped0:
                cut_at = n
                break
        self.assertIsNotNone(cut_at, f"no drop counted in te_sync_dropped_total after {n} "
                             f"changes of ~18 kB to a session that does not read")
        # Ten more changes after the cut; the fast session gets all of them too.
        for i in range(10):
            await call(self.patch, c, tasks[i % 4]["id"], {"title": f"after {i}"})
        t_last = time.monotonic()
        final = await call(self.current_seq, c)
        t, _ = await fast.wait_seq(final, 10)
        log(f"slow reader cut off after {cut_at} changes ({time.monotonic() - t_start:.1f}s); "
            f"the fast session had the last change {t - t_last:.3f}s after its request ended")
        self.assertLessEqual(t - t_last, LATENCY_LIMIT, "the other session is not delayed")
        await self.quiet(fast, seconds=0.3)
        self.check_contiguous(fast.changes(), base + 1, final, "the fast session")
        self.assertEqual(len(fast.msgs), 1 + final - base, short(fast.msgs))

        # The slow client now reads what was written to it: changes in
        # order without gaps, then the close frame 1008.
        got, exc = [], None
        try:
            while True:
                got.append(json.loads(await asyncio.wait_for(slow.recv(), 15)))
        except websockets.exceptions.ConnectionClosed as e:
            exc = e
        except asyncio.TimeoutError:
            self.fail(f"the slow session was not closed: nothing more within 15 s after "
                      f"{len(got)} messages: {short(got)}")
        code, reason = close_of(slow, exc)
        log(f"slow session: {len(got)} messages before the close {code} {reason!r}")
        self.assertEqual((code, reason), (1008, "send queue limit exceeded"),
                         f"the slow session's close ({len(got)} messages before it)")
        self.assertEqual(got[0].get("type"), "hello", short(got))
        changes = [m for m in got if is_change(m)]
        if changes:
            self.check_contiguous(changes, got[0]["seq"] + 1, changes[-1]["seq"],
                                  "what the slow session got before its close (after its hello)")
        self.assertLess(len(changes), final - base, "the slow session did not get everything")
        by_reason = await call(self.dropped_by_reason)
        delta = {k: v - by_reason0.get(k, 0) for k, v in by_reason.items()
                 if v != by_reason0.get(k, 0)}
        log(f"te_sync_dropped_total increase by reason: {delta}")
        self.assertEqual(sum(delta.values()), 1,
                         f"te_sync_dropped_total counts the one cut-off: {delta}")
        await self.wait_connections(1)

    @async_test
    async def test_b_max_sessions(self):
        """TE_SYNC_MAX_SESSIONS: a session beyond it is closed at once with
        1013 'try again later: …'; one closes, the next is accepted."""
        await self.wait_connections(0)
        c = self.new_client()
        held = [await self.user_session(c) for _ in range(self.MAX_SESSIONS)]
        extra = await self.connect(c.user, name="one too many")
        code, reason = await extra.wait_closed(5)
        self.assertEqual(code, 1013, f"one too many: closed with {code} {reason!r}")
        self.assertTrue(reason.startswith("try again later"), reason)
        self.assertEqual(extra.msgs, [], "one too many: nothing is sent before the close")
        await held[0].close()
        await self.wait_connections(self.MAX_SESSIONS - 1)
        await self.user_session(c, name="after one closed")

    @async_test
    async def test_z_sigterm(self):
        """(8) SIGTERM: every open session gets 1001 'server shutting down'
        and the daemon exits 0 (this class's daemon: the last test)."""
        await self.wait_connections(0)
        a, b = self.new_client(), self.new_client()
        sessions = [await self.user_session(a), await self.user_session(a),
                    await self.user_session(b)]
        d = self.sync
        d.ready = False  # the exit is checked here, not again at class end
        d.proc.send_signal(signal.SIGTERM)
        closes = []
        for s in sessions:
            try:
                closes.append(await s.wait_closed(10))
            except AssertionError as e:
                closes.append(str(e)[:200])
        rc = await call(wait_exit, d.proc, 10)
        if rc is None:
            d.kill()
        self.assertEqual(closes, [(1001, "server shutting down")] * 3,
                         "the close of each open session after SIGTERM")
        self.assertEqual(rc, 0, f"todo-sync exit status after SIGTERM (None: still running "
                         f"after 10 s); its log:\n{d.log_text(max_lines=60)}")
        d.close()


def tearDownModule():
    if LATENCIES:
        log("change latency (API request start → message): " +
            ", ".join(f"{name} {v * 1000:.0f} ms" for name, v in LATENCIES))


if __name__ == "__main__":
    apitest.main()
