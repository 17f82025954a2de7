"""Shared harness for the black-box tests of todo-api (the contract: docs/api.md).

Python 3.11 standard library only.  Each test module is one program (one
ctest test): its test classes derive from ApiTestCase, which gives every
class its own PostgreSQL database and its own todo-api process on a free
port, and checks that the daemon exits 0 on SIGTERM at the end (the suite
also runs the AddressSanitizer build, where a leak makes the exit status
non-zero).

Environment: TE_BUILD_DIR (default <checkout>/build), TE_SOURCE_DIR, and
TE_PG_URL / TE_REDIS_URL / TE_KAFKA_BROKERS (when unset, the services are
started with scripts/services and their settings read from it).
"""

import base64
import datetime as dt
import functools
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("TE_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("TE_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
API_BIN = os.path.join(BUILD_DIR, "bin", "todo-api")
WORKER_BIN = os.path.join(BUILD_DIR, "bin", "todo-worker")
REMINDER_BIN = os.path.join(BUILD_DIR, "bin", "todo-reminder")
SYNC_BIN = os.path.join(BUILD_DIR, "bin", "todo-sync")
TODOCTL = os.path.join(BUILD_DIR, "bin", "todoctl")
SERVICES = os.path.join(SOURCE_DIR, "scripts", "services")

PROBLEM_PREFIX = "urn:todoevents:problem:"
SERVICE_KEYS = ("TE_PG_URL", "TE_REDIS_URL", "TE_KAFKA_BROKERS")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# What the server writes: UTC with milliseconds.
SERVER_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def wait_until(fn, timeout, what, interval=0.05):
    """fn()'s first true value, polled until timeout (AssertionError naming
    what, with fn's last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                 f"last seen: {value!r}"[:3000])
        time.sleep(interval)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---- services ------------------------------------------------------------------


def services_command(*args, keep=False, check=True):
    """scripts/services ARGS (keep: TE_SERVICES_KEEP=1, a stop keeps the data)."""
    env = dict(os.environ, TE_SERVICES_KEEP="1") if keep else None
    return subprocess.run([SERVICES, *args], env=env, check=check, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@functools.lru_cache(maxsize=None)
def services():
    """{TE_PG_URL, TE_REDIS_URL, TE_KAFKA_BROKERS}: from the environment when
    all are set, else from scripts/services (started first when down)."""
    if all(os.environ.get(k) for k in SERVICE_KEYS):
        return {k: os.environ[k] for k in SERVICE_KEYS}
    if services_command("status", check=False).returncode != 0:
        out = services_command("start", check=False)
        if out.returncode != 0:
            raise RuntimeError("scripts/services start failed:\n" + out.stdout)
    found = {}
    for line in services_command("env").stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export":
            name, _, value = words[1].partition("=")
            found[name] = value
    return {k: found[k] for k in SERVICE_KEYS}


@functools.lru_cache(maxsize=None)
def ensure_topics():
    """Creates the catalogue's topics once per process (auto-create is off)."""
    brokers = services()["TE_KAFKA_BROKERS"]
    for attempt in range(3):
        r = subprocess.run([TODOCTL, "topics", "ensure", "--brokers", brokers],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return
        time.sleep(1 + attempt)
    raise RuntimeError(f"todoctl topics ensure failed ({r.returncode}):\n{r.stdout}{r.stderr}")


def psql(url, sql):
    """Runs SQL with psql; returns stdout (unaligned, tuples only)."""
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"psql failed: {sql}\n{r.stderr}")
    return r.stdout


class Database:
    """A scratch PostgreSQL database, dropped by drop()."""

    def __init__(self, label):
        self.admin_url = services()["TE_PG_URL"]
        slug = re.sub(r"[^a-z0-9]", "", label.lower())[:30]
        self.name = f"te_api_{slug}_{uuid.uuid4().hex[:8]}"
        psql(self.admin_url, f'CREATE DATABASE "{self.name}"')
        parts = urllib.parse.urlsplit(self.admin_url)
        self.url = urllib.parse.urlunsplit(parts._replace(path="/" + self.name))

    def sql(self, statement):
        return psql(self.url, statement)

    def drop(self):
        # FORCE cannot end an autovacuum worker that happens to be in the
        # database (it has no role): that error passes in a moment.
        for attempt in range(20):
            try:
                psql(self.admin_url, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
                return
            except RuntimeError:
                if attempt == 19:
                    raise
                time.sleep(0.5)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TcpProxy:
    """A TCP forwarder on a free loopback port to target (host, port), to
    take one client's PostgreSQL away without touching the shared server:
    down() refuses new connections and cuts the open ones, up() listens
    again on the same port."""

    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.lock = threading.Lock()
        self.conns = set()
        self.listener = None
        self.up()

    def up(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.listener is not listener:  # went down meanwhile
                    client.close()
                    upstream.close()
                    continue
                self.conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a, b):
        """a -> b until either ends; then both are shut down and a (read only
        here) closed."""
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self.lock:
            self.conns.discard(a)
        a.close()

    def down(self):
        with self.lock:
            listener, self.listener = self.listener, None
            conns = list(self.conns)
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
            except OSError:
                pass
            listener.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def url(self, url):
        """url (a postgresql:// URI) with host and port replaced by the proxy's."""
        parts = urllib.parse.urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{self.port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


# ---- HTTP ----------------------------------------------------------------------


class Response:
    """status, headers (case-insensitive), data (raw bytes), json (parsed
    when the body is JSON, else None); body = json if parsed else data."""

    def __init__(self, status, headers, data):
        self.status = status
        self.headers = headers
        self.data = data
        self.json = None
        if data and "json" in (headers.get("Content-Type") or ""):
            try:
                self.json = json.loads(data)
            except ValueError:
                pass

    @property
    def body(self):
        return self.json if self.json is not None else self.data

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        text = self.data[:800].decode("utf-8", "replace")
        return f"<HTTP {self.status} {self.headers.get('Content-Type')} {text}>"


def http_request(port, method, path, body=None, headers=None, timeout=30):
    """One request on a fresh connection.  body: bytes/str sent as is, any
    other value as JSON (Content-Type application/json unless given)."""
    headers = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        try:
            conn.request(method, path, body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413) before reading everything
        r = conn.getresponse()
        return Response(r.status, r.headers, r.read())
    finally:
        conn.close()


def query(path, **params):
    """path?params (None values left out)."""
    params = {k: v for k, v in params.items() if v is not None}
    return path + ("?" + urllib.parse.urlencode(params) if params else "")


class Client:
    """HTTP client for one user of one daemon (token may be None)."""

    def __init__(self, port, user=None, token=None):
        self.port = port
        self.user = user
        self.token = token

    def request(self, method, path, body=None, headers=None, **kw):
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        h.update(headers or {})
        return http_request(self.port, method, path, body, h, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


# ---- tokens --------------------------------------------------------------------


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(sub, lifetime=600, **extra):
    """Standard claims: sub (None = left out), iat, exp = now + lifetime;
    extra claims added, an extra claim given as None removed."""
    now = int(time.time())
    c = {"sub": sub, "iat": now, "exp": now + lifetime}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def jwt_encode(header, payload, sign):
    """header.payload.signature; sign(bytes) -> signature bytes."""
    head = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = b64url(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def hmac_signer(secret, digest=hashlib.sha256):
    key = secret.encode() if isinstance(secret, str) else secret
    return lambda data: hmac.new(key, data, digest).digest()


def hs256_token(secret, payload):
    return jwt_encode({"alg": "HS256", "typ": "JWT"}, payload, hmac_signer(secret))


def der_ecdsa_to_raw(der, size=32):
    """ECDSA signature: DER SEQUENCE{INTEGER r, INTEGER s} -> r||s (JOSE)."""
    if der[0] != 0x30:
        raise ValueError("not a DER sequence")
    pos = 3 if der[1] & 0x80 else 2
    raw = b""
    for _ in range(2):
        if der[pos] != 0x02:
            raise ValueError("not a DER integer")
        n = der[pos + 1]
        value = der[pos + 2:pos + 2 + n].lstrip(b"\0")
        raw += value.rjust(size, b"\0")
        pos += 2 + n
    return raw


class OpenSSLKey:
    """A key pair made by the openssl CLI: kind "RSA" (RS256) or "EC" (ES256, P-256)."""

    def __init__(self, kind, directory):
        self.kind = kind
        self.alg = {"RSA": "RS256", "EC": "ES256"}[kind]
        self.private = os.path.join(directory, f"{kind.lower()}-{uuid.uuid4().hex[:6]}.key")
        self.public = self.private[:-4] + ".pub.pem"
        opt = "rsa_keygen_bits:2048" if kind == "RSA" else "ec_paramgen_curve:P-256"
        subprocess.run(["openssl", "genpkey", "-algorithm", kind, "-pkeyopt", opt,
                        "-out", self.private], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", self.private, "-pubout", "-out", self.public],
                       check=True, capture_output=True)

    def public_pem(self):
        with open(self.public, "rb") as f:
            return f.read()

    def sign(self, data):
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.private],
                             input=data, check=True, capture_output=True).stdout
        return der_ecdsa_to_raw(sig) if self.kind == "EC" else sig

    def token(self, payload, alg=None):
        return jwt_encode({"alg": alg or self.alg, "typ": "JWT"}, payload, self.sign)


# ---- the daemon ----------------------------------------------------------------


def wait_ready(proc, timeout, probe):
    """True once probe() is (polled every 0.1 s; an OSError counts as not
    yet), False when proc exits or timeout passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if probe():
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def terminate(proc, timeout):
    """SIGTERM to proc if it runs, SIGKILL when it has not exited within timeout."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Daemon:
    """One todo-api process: its own port and database, stderr kept in a file.
    env overrides the defaults; an override of None unsets the variable."""

    program = "todo-api"
    listen_var = "TE_API_LISTEN"

    @property
    def binary(self):
        return API_BIN

    def __init__(self, label, db, env=None):
        self.secret = "s-" + uuid.uuid4().hex
        svc = services()
        self._configure(label, db, env, {
            "TE_KAFKA_BROKERS": svc["TE_KAFKA_BROKERS"],
            "TE_REDIS_URL": svc["TE_REDIS_URL"],
            "TE_JWT_SECRET": self.secret,
            "TE_LOG_LEVEL": "debug",
            "TE_RATE_LIMIT": "10000",
            "TE_RATE_BURST": "10000",
            "TE_API_THREADS": "4",
        })
        self.secret = self.env.get("TE_JWT_SECRET")

    def _configure(self, label, db, env, defaults):
        """label, db, a free port and self.env: the caller's environment
        without TE_*, then the listen address (listen_var), TE_PG_URL = db's
        and defaults, then env's overrides (None unsets); the log file."""
        self.label = label
        self.db = db
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TE_")}
        self.env.update({self.listen_var: f"127.0.0.1:{self.port}", "TE_PG_URL": db.url})
        self.env.update(defaults)
        for k, v in (env or {}).items():
            if v is None:
                self.env.pop(k, None)
            else:
                self.env[k] = str(v)
        self.logfile = tempfile.NamedTemporaryFile(prefix=f"{self.program}-{label}-", suffix=".log",
                                                   delete=False)
        self.proc = None
        self.ready = False

    def start(self, timeout=20):
        """Starts the daemon and waits for /healthz; another port is tried
        when the free port picked was taken in the meantime."""
        return self._launch(timeout)

    def _launch(self, timeout):
        """Starts the program and waits for /healthz 200 (self.ready from
        then on: class cleanup checks its exit); another port is tried when
        the free port picked was taken in the meantime."""
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError(f"no executable {self.binary} (set TE_BUILD_DIR)")
        status = None
        for _ in range(3):
            mark = self.log_size()
            self.proc = subprocess.Popen([self.binary], env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=self.logfile, stderr=subprocess.STDOUT)
            if self._wait_healthy(timeout):
                self.ready = True
                return self
            status = self.proc.poll()
            self.kill()
            if "Address already in use" not in self.log_text(mark):
                break
            self.port = free_port()
            self.env[self.listen_var] = f"127.0.0.1:{self.port}"
        state = f"exited with {status}" if status is not None \
            else f"no 200 from /healthz within {timeout}s"
        raise RuntimeError(f"{self.program} ({self.label}) {state}; its log:\n{self.log_text()}")

    def _wait_healthy(self, timeout):
        def healthy():
            return http_request(self.port, "GET", "/healthz", timeout=2).status == 200
        return wait_ready(self.proc, timeout, healthy) and self.proc.poll() is None

    def client(self, user=None, token=None):
        """Client for user (token: an HS256 one minted for user by default)."""
        if token is None and user is not None and self.secret:
            token = hs256_token(self.secret, claims(user))
        return Client(self.port, user, token)

    def request(self, method, path, **kw):
        return http_request(self.port, method, path, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Sends sig and returns the exit status, or None when it did not
        exit within timeout (it is then killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_size(self):
        return os.path.getsize(self.logfile.name)

    def log_text(self, start=0, max_lines=300):
        with open(self.logfile.name, "rb") as f:
            f.seek(start)
            lines = f.read().decode("utf-8", "replace").splitlines()
        cut = lines[-max_lines:]
        head = [f"[... {len(lines) - len(cut)} earlier lines]"] if len(cut) < len(lines) else []
        return "\n".join(head + cut)

    def log_records(self):
        """The log lines that are JSON objects."""
        out = []
        for line in self.log_text(max_lines=10**9).splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def metrics(self):
        r = self.request("GET", "/metrics")
        if r.status != 200:
            raise AssertionError(f"/metrics: {r}")
        return parse_metrics(r.data.decode())

    def close(self):
        os.unlink(self.logfile.name)


class Worker(Daemon):
    """One todo-worker process (docs/api.md's database, its own consumer
    group): the listen address on a free port, TE_PG_URL = the database of
    the todo-api it serves.  Its consumer starts at the end of task.events
    (TE_RDKAFKA_AUTO_OFFSET_RESET=latest: the topic is shared and holds old
    records), so start() waits for /readyz (partitions assigned) before a
    test produces anything."""

    program = "todo-worker"
    listen_var = "TE_WORKER_LISTEN"
    group_var = "TE_WORKER_GROUP"
    offset_reset = "latest"
    extra_env = {}

    @property
    def binary(self):
        return WORKER_BIN

    def __init__(self, label, db, group=None, env=None):
        self.secret = None
        self.group = group or f"{self.program}-test-{uuid.uuid4().hex[:12]}"
        svc = services()
        self._configure(label, db, env, {
            "TE_KAFKA_BROKERS": svc["TE_KAFKA_BROKERS"],
            self.group_var: self.group,
            "TE_RDKAFKA_AUTO_OFFSET_RESET": self.offset_reset,
            "TE_LOG_LEVEL": "debug",
            **self.extra_env,
        })
        self.group = self.env.get(self.group_var, self.group)

    def start(self, timeout=30, ready=True):
        """Starts the daemon and waits for /healthz, then (ready) for /readyz
        200; another port is tried when the one picked was taken."""
        self._launch(timeout)
        if not ready or self.wait_ready(timeout):
            return self
        raise RuntimeError(f"{self.program} ({self.label}): no 200 from /readyz within "
                           f"{timeout}s (last: {self.last_readyz}); its log:\n"
                           f"{self.log_text()}")

    last_readyz = None

    def wait_ready(self, timeout=30):
        """True once /readyz answers 200 (within timeout, while running)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                r = http_request(self.port, "GET", "/readyz", timeout=2)
                self.last_readyz = r
                if r.status == 200:
                    return True
            except OSError as e:
                self.last_readyz = e
            time.sleep(0.1)
        return False

    def kill_hard(self):
        """SIGKILL (a crash): no exit status to check afterwards."""
        self.ready = False
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


class Reminder(Worker):
    """One todo-reminder process (docs/reminder.md) on the database of the
    todo-api it serves, consumer group group (TE_REMINDER_GROUP; default a
    new one).  Webhooks to loopback are allowed (TE_WEBHOOK_ALLOW_PRIVATE=1).
    The consumer of reminder.due starts at the group's committed offsets;
    a new group should be positioned at the end of the topic first
    (kafka_groups_to_end: ApiTestCase.start_reminder does it), else it reads
    the shared topic from the beginning (TE_RDKAFKA_AUTO_OFFSET_RESET=
    earliest: correct, other databases' reminders are stale, but slow when
    the topic is long).  start() waits for /readyz."""

    program = "todo-reminder"
    listen_var = "TE_REMINDER_LISTEN"
    group_var = "TE_REMINDER_GROUP"
    offset_reset = "earliest"
    extra_env = {"TE_WEBHOOK_ALLOW_PRIVATE": "1"}

    @property
    def binary(self):
        return REMINDER_BIN


class Sync(Worker):
    """One todo-sync process (docs/sync.md) on the database of the todo-api
    whose users it serves, with the same JWT secret (TE_JWT_SECRET = secret
    unless env sets it), consumer group group (TE_SYNC_GROUP; default a new
    one).  Its consumer of the shared topics (`topics`) should start at
    their end: a new group positioned there first (kafka_groups_to_end:
    ApiTestCase.start_sync does it), else TE_RDKAFKA_AUTO_OFFSET_RESET=latest.
    start() waits for /readyz.  ws_url() is the WebSocket URL, on the same
    port as /healthz, /readyz and /metrics."""

    program = "todo-sync"
    listen_var = "TE_SYNC_LISTEN"
    group_var = "TE_SYNC_GROUP"
    offset_reset = "latest"
    topics = ("sync.events", "notification.send")

    @property
    def binary(self):
        return SYNC_BIN

    def __init__(self, label, db, secret, group=None, env=None):
        env = dict(env or {})
        env.setdefault("TE_JWT_SECRET", secret)
        super().__init__(label, db, group, env)
        self.secret = self.env.get("TE_JWT_SECRET")

    def token(self, user, **claim_args):
        """An HS256 token for user signed with this daemon's secret."""
        return hs256_token(self.secret, claims(user, **claim_args))

    def ws_url(self, path="/api/ws/tasks", **params):
        """ws://127.0.0.1:<port><path>?<params> (None values left out)."""
        return f"ws://127.0.0.1:{self.port}" + query(path, **params)


METRIC_LINE_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$')
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_metrics(text):
    """Prometheus text format -> list of (name, {labels}, float value).
    Raises ValueError on a line that does not parse."""
    samples = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = METRIC_LINE_RE.match(line)
        if not m:
            raise ValueError(f"not a Prometheus sample line: {line!r}")
        labels = {}
        rest = m.group(2) or ""
        pos = 0
        while pos < len(rest):
            lm = LABEL_RE.match(rest, pos)
            if not lm:
                raise ValueError(f"bad labels in: {line!r}")
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def metric_value(samples, name, **labels):
    """Sum of the samples called name whose labels include labels; None if none."""
    values = [v for n, lab, v in samples
              if n == name and all(lab.get(k) == w for k, w in labels.items())]
    return sum(values) if values else None


# ---- Kafka ---------------------------------------------------------------------


class EventTail:
    """Follows a topic from the beginning with `todoctl event tail` (one
    JSON line per record) in the background; tests pick their own user's
    records by key."""

    def __init__(self, topic, from_beginning=True, group=None):
        """group: the consumer group to join (default: a new one); a group
        with committed offsets (kafka_groups_to_end) resumes there."""
        self.topic = topic
        self.by_key = {}  # record key -> its records, in topic order
        self.cond = threading.Condition()
        env = dict(os.environ, TE_KAFKA_BROKERS=services()["TE_KAFKA_BROKERS"])
        self.errfile = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [TODOCTL, "event", "tail", "--topic", topic,
             *(["--from-beginning"] if from_beginning else []),
             "--group", group or f"api-test-{uuid.uuid4().hex}"],
            env=env, stdout=subprocess.PIPE, stderr=self.errfile, stdin=subprocess.DEVNULL,
            text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        # Only the key is decoded here (the topic may hold many other
        # records); a record is parsed when its key's records are asked for.
        decoder = json.JSONDecoder()
        for line in self.proc.stdout:
            try:
                key = decoder.raw_decode(line, len('{"key":'))[0]
            except ValueError:
                key = None
            with self.cond:
                self._note(line)
                self.by_key.setdefault(key, []).append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def _note(self, line):
        """Called with each record's line, under self.cond (for subclasses)."""

    def _records(self, key):
        """The records of key (called with cond held); parses new lines."""
        lines = self.by_key.get(key, [])
        for i, line in enumerate(lines):
            if isinstance(line, str):
                try:
                    lines[i] = json.loads(line)
                except ValueError:
                    lines[i] = {"key": key, "error": f"not JSON: {line!r}"}
        return list(lines)

    def of(self, key):
        with self.cond:
            return self._records(key)

    def records(self):
        """Every record seen so far, whatever its key (parsed)."""
        with self.cond:
            return [r for key in list(self.by_key) for r in self._records(key)]

    def wait_records(self, until, timeout=30, what="records"):
        """Waits until until(every record seen) is true; returns them."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                mine = [r for key in list(self.by_key) for r in self._records(key)]
                if until(mine):
                    return mine
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    break
                self.cond.wait(min(left, 0.5))
        self.errfile.seek(0)
        raise AssertionError(
            f"{self.topic}: timed out after {timeout}s waiting for {what}; got {len(mine)} "
            f"records\ntail stderr: {self.errfile.read().decode(errors='replace')[-2000:]}")

    def wait(self, key, until, timeout=30, what="events"):
        """Waits until until(records of key) is true; returns those records."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                mine = self._records(key)
                if until(mine):
                    return mine
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    break
                self.cond.wait(min(left, 0.5))
        self.errfile.seek(0)
        raise AssertionError(
            f"{self.topic}: timed out after {timeout}s waiting for {what} of key {key}; got "
            f"{len(mine)}: {json.dumps([event_summary(r) for r in mine])}\n"
            f"tail stderr: {self.errfile.read().decode(errors='replace')[-2000:]}")

    def wait_for(self, key, pred, timeout=30, what="an event"):
        """Waits for a record of key whose event satisfies pred; returns the
        records of key up to and including it."""
        def found(mine):
            return any("event" in r and pred(r["event"]) for r in mine)
        mine = self.wait(key, found, timeout, what)
        end = next(i for i, r in enumerate(mine) if "event" in r and pred(r["event"]))
        return mine[:end + 1]

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(2)


class LiveTail(EventTail):
    """An EventTail from the end of the topic (a new group starting at
    'latest'), for topics too long to read from the beginning.  Records
    produced before it is positioned on a partition are not seen; once it
    has seen a record on a partition (`partitions`), it sees every later one
    there: produce something on each partition and wait for seen() first."""

    PARTITION_RE = re.compile(r'"partition":(\d+)')

    def __init__(self, topic):
        self.partitions = set()
        super().__init__(topic, from_beginning=False)

    def _note(self, line):
        m = self.PARTITION_RE.search(line)
        if m:
            self.partitions.add(int(m.group(1)))

    def seen(self, partition):
        with self.cond:
            return partition in self.partitions


def event_data(event):
    """The event's data object ({} when there is none)."""
    data = event.get("data")
    return data if isinstance(data, dict) else {}


def event_summary(record):
    ev = record.get("event") or {}
    return {"type": ev.get("type"), "subject": ev.get("subject"), "error": record.get("error")}


def validate_event(event):
    """(exit status, output) of `todoctl event validate -`."""
    r = subprocess.run([TODOCTL, "event", "validate", "-"], input=json.dumps(event),
                       capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


@functools.lru_cache(maxsize=None)
def kafka_libs():
    """The directory of the Kafka jars (TE_KAFKA_LIBS, else scripts/services
    kafka-libs), or None when there is none or no java."""
    import shutil
    if not shutil.which("java"):
        return None
    libs = os.environ.get("TE_KAFKA_LIBS")
    if not libs:
        r = services_command("kafka-libs", check=False)
        lines = r.stdout.strip().splitlines()
        libs = lines[-1].strip() if r.returncode == 0 and lines else None
    return libs if libs and os.path.isdir(libs) else None


def kafka_tool(libs, main_class):
    """The start of a command line running main_class, one of Kafka's tools
    (from the jars in libs, kafka_libs()), against the tests' broker: a JVM
    quick to start, with the tools' log4j2 configuration."""
    log4j = os.path.join(SOURCE_DIR, "infrastructure", "kafka", "tools-log4j2.properties")
    return ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:-UsePerfData",
            f"-Dlog4j2.configurationFile={log4j}", "-cp", os.path.join(libs, "*"), main_class,
            "--bootstrap-server", services()["TE_KAFKA_BROKERS"]]


def murmur2(data):
    """Kafka's murmur2 (the Java client's and librdkafka's murmur2_random
    partitioner, which the project's producers use)."""
    m, length = 0x5bd1e995, len(data)
    h = (0x9747b28c ^ length) & 0xffffffff
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xffffffff
        k ^= k >> 24
        k = (k * m) & 0xffffffff
        h = ((h * m) & 0xffffffff) ^ k
    rem, idx = length % 4, length & ~3
    if rem == 3:
        h ^= data[idx + 2] << 16
    if rem >= 2:
        h ^= data[idx + 1] << 8
    if rem >= 1:
        h ^= data[idx]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h


def murmur2_partition(key, partitions):
    """The partition of partitions that the project's producers (librdkafka's
    murmur2_random) give key."""
    return (murmur2(key.encode()) & 0x7fffffff) % partitions


def kafka_console_produce(topic, records, timeout=60):
    """Writes raw records to topic with Kafka's ConsoleProducer (any bytes a
    CloudEvents-aware client would refuse to send).  records: (headers dict,
    key, value) triples, text without tabs or newlines.  Raises
    unittest.SkipTest when the Kafka jars or java are missing."""
    libs = kafka_libs()
    if libs is None:
        raise unittest.SkipTest("no java / Kafka jars for the console producer")
    lines = []
    for headers, key, value in records:
        h = ",".join(f"{k}:{v}" for k, v in (headers or {}).items()) or "x-test:1"
        for part in (h, key, value):
            if "\t" in part or "\n" in part:
                raise ValueError(f"no tab or newline allowed: {part!r}")
        lines.append(f"{h}\t{key}\t{value}")
    cmd = kafka_tool(libs, "org.apache.kafka.tools.ConsoleProducer") + [
        "--topic", topic, "--producer-property", "acks=all",
        "--property", "parse.key=true", "--property", "parse.headers=true"]
    r = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"ConsoleProducer failed ({r.returncode}):\n{r.stdout}{r.stderr}")


def publish_event(event, topic, key=None, mode=None):
    """`todoctl event publish` of one event (a dict); returns its output line
    ('delivered topic=... partition=N offset=M ...')."""
    cmd = [TODOCTL, "event", "publish", "--topic", topic]
    if key is not None:
        cmd += ["--key", key]
    if mode:
        cmd += ["--mode", mode]
    env = dict(os.environ, TE_KAFKA_BROKERS=services()["TE_KAFKA_BROKERS"])
    r = subprocess.run(cmd + ["-"], input=json.dumps(event), capture_output=True, text=True,
                       env=env, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"todoctl event publish failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout.strip()


def kafka_groups_to_end(groups, topics, timeout=60):
    """Commits, for each consumer group in groups (new or without active
    members), the current end offsets of topics (Kafka's ConsumerGroupCommand
    --reset-offsets --to-latest, one JVM for all): a consumer joining such a
    group later starts exactly there, sees every record produced after this
    call and none of the older ones, with no wait for its positioning.
    Returns False (nothing done) when there is no java / Kafka jars."""
    libs = kafka_libs()
    if libs is None:
        return False
    cmd = kafka_tool(libs, "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand") + [
        "--reset-offsets", "--to-latest", "--execute"]
    for g in groups:
        cmd += ["--group", g]
    for t in topics:
        cmd += ["--topic", t]
    for attempt in range(3):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode == 0 and "NEW-OFFSET" in r.stdout:
            return True
        time.sleep(1 + attempt)
    raise RuntimeError(f"ConsumerGroupCommand --reset-offsets failed ({r.returncode}):\n"
                       f"{r.stdout}{r.stderr}")


def end_tails(topics, extra_groups=()):
    """{topic: EventTail} following each topic from its current end: each
    tail's group (and every group of extra_groups, e.g. a todo-reminder's) is
    positioned with kafka_groups_to_end first, so no record produced after
    this call is missed.  Without java the tails read from the beginning."""
    groups = {t: f"api-test-{uuid.uuid4().hex}" for t in topics}
    positioned = kafka_groups_to_end(list(groups.values()) + list(extra_groups), topics)
    return {t: EventTail(t, from_beginning=not positioned, group=g) for t, g in groups.items()}


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """The request handler the tests' HTTP servers derive theirs from:
    HTTP/1.1 (keep-alive), no request log, _read_body() for a body sent
    with a Content-Length or chunked."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


class RecordingServer:
    """The base of the tests' recording HTTP servers: its handler (a
    QuietHandler) appends each request to requests under cond (a
    threading.Condition) and notifies it; _serve(handler) starts a threaded
    server on 127.0.0.1 (a free port, self.port) in a daemon thread."""

    def __init__(self):
        self.cond = threading.Condition()
        self.requests = []

    def _serve(self, handler):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _wait(self, pred, done, timeout, describe):
        """The requests satisfying pred once done(them) is true (waits up
        to timeout); else an AssertionError "timed out after {timeout}s
        waiting for " + describe(them)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [r for r in self.requests if pred(r)]
                if done(got):
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {describe(got)}")
                self.cond.wait(min(left, 0.5))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class WebhookReceiver(RecordingServer):
    """A threaded HTTP server on 127.0.0.1 (a free port) that records every
    request: {"t" (time.time() when the headers were read), "method",
    "path", "headers" (names lower-cased), "body" (bytes), "status" (the
    answer)}.  It answers 204, or the status set for a path (set_status)."""

    def __init__(self):
        super().__init__()
        receiver = self
        self.statuses = {}

        class Handler(QuietHandler):
            def _handle(self):
                t = time.time()
                body = self._read_body()
                with receiver.cond:
                    status = receiver.statuses.get(self.path, 204)
                    receiver.requests.append({
                        "t": t, "method": self.command, "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body, "status": status})
                    receiver.cond.notify_all()
                payload = b"" if status == 204 else f"status {status}\n".encode()
                self.send_response(status)
                if status != 204:
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = do_GET = _handle

        self._serve(Handler)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def set_status(self, path, status):
        with self.cond:
            self.statuses[path] = status

    def received(self, path=None):
        """The requests so far (to path, or all)."""
        with self.cond:
            return [r for r in self.requests if path is None or r["path"] == path]

    def wait(self, until, path=None, timeout=10, what="webhook requests"):
        """Waits until until(requests to path) is true; returns them."""
        return self._wait(
            lambda r: path is None or r["path"] == path, until, timeout,
            lambda got: f"{what} at {path or 'any path'}; got {len(got)}: "
                        f"{[(r['path'], r['headers'].get('webhook-id')) for r in got]}")


def standard_webhook_signature(secret, msg_id, timestamp, body):
    """'v1,' + base64(HMAC-SHA256(key, id.timestamp.body)), key = the base64
    after 'whsec_' (Standard Webhooks 1.0)."""
    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


AIOSMTPD = os.environ.get("TE_AIOSMTPD") or "/usr/bin/aiosmtpd"


class SmtpServer:
    """A real SMTP server on 127.0.0.1 (a free port): the aiosmtpd CLI of
    Debian's python3-aiosmtpd (run with the system python, whatever python3
    runs the tests) storing each message in a Maildir.  Raises
    unittest.SkipTest when it is not installed."""

    def __init__(self):
        if not os.access(AIOSMTPD, os.X_OK):
            raise unittest.SkipTest(f"no {AIOSMTPD} (Debian package python3-aiosmtpd)")
        self.dir = tempfile.mkdtemp(prefix="te-smtp-")
        self.maildir = os.path.join(self.dir, "Maildir")
        self.logfile = open(os.path.join(self.dir, "aiosmtpd.log"), "w+b")
        for _ in range(3):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [AIOSMTPD, "-n", "-l", f"127.0.0.1:{self.port}",
                 "-c", "aiosmtpd.handlers.Mailbox", self.maildir],
                stdin=subprocess.DEVNULL, stdout=self.logfile, stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")})
            if self._wait_banner(15):
                return
            self.stop()
        self.logfile.seek(0)
        raise RuntimeError(f"aiosmtpd did not answer on 127.0.0.1:{self.port}:\n"
                           f"{self.logfile.read().decode(errors='replace')[-2000:]}")

    def _wait_banner(self, timeout):
        def banner():
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return True
            return False
        return wait_ready(self.proc, timeout, banner)

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def messages(self):
        """The messages received so far (email.message.Message, raw headers)."""
        import email
        import mailbox
        if not os.path.isdir(os.path.join(self.maildir, "new")):
            return []
        box = mailbox.Maildir(self.maildir, factory=None, create=False)
        out = []
        for key in box.keys():
            try:
                with box.get_file(key) as f:
                    out.append(email.message_from_bytes(f.read()))
            except (KeyError, FileNotFoundError):
                pass
        return out

    def log_text(self):
        self.logfile.seek(0)
        return self.logfile.read().decode(errors="replace")

    def stop(self):
        terminate(self.proc, 5)

    def close(self):
        import shutil
        self.stop()
        self.logfile.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- time ----------------------------------------------------------------------


def utc_now():
    return dt.datetime.now(dt.timezone.utc)


def rfc3339(t):
    """UTC RFC 3339 with milliseconds, as the server writes it."""
    t = t.astimezone(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def from_now(**delta):
    """rfc3339(now + timedelta(**delta)) on a whole second."""
    return rfc3339((utc_now() + dt.timedelta(**delta)).replace(microsecond=0))


def parse_time(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


RFC3339_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def instants(value):
    """value with every RFC 3339 string (in lists, tuples, dicts) turned into
    a datetime: compares instants, whatever the format (test_tasks checks
    the format once)."""
    if isinstance(value, str) and RFC3339_RE.match(value):
        return parse_time(value)
    if isinstance(value, (list, tuple)):
        return type(value)(instants(v) for v in value)
    if isinstance(value, dict):
        return {k: instants(v) for k, v in value.items()}
    return value


# ---- the test case base ----------------------------------------------------------


class ApiTestCase(unittest.TestCase):
    """Each class gets a database and a daemon (daemon_env = its overrides);
    start_daemon() makes more.  At class end every daemon gets SIGTERM and
    must exit 0 within 10 s."""

    daemon_env = {}
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        services()
        ensure_topics()
        cls.daemons = []
        cls.tails = {}
        cls.addClassCleanup(cls._close_tails)
        cls.daemon = cls.start_daemon(cls.daemon_env)

    @classmethod
    def start_daemon(cls, env=None, label=None, db=None):
        """A started daemon on db (default: a new database)."""
        label = label or cls.__name__
        if db is None:
            db = cls.new_database(label)
        return cls._started(Daemon(label, db, env))

    @classmethod
    def start_worker(cls, env=None, label=None, db=None, group=None, ready=True):
        """A started todo-worker on db (default: the class daemon's
        database), in consumer group group (default: a new one); waits for
        /readyz 200 unless ready is false.  Stopped at class end like the
        daemons (SIGTERM, exit 0 within 10 s)."""
        w = Worker(label or cls.__name__ + "-worker", db or cls.daemon.db, group, env)
        return cls._started(w, ready=ready)

    @classmethod
    def start_reminder(cls, env=None, label=None, db=None, group=None, ready=True,
                       positioned=False):
        """A started todo-reminder on db (default: the class daemon's
        database) in consumer group group (default: a new one), positioned
        at the end of reminder.due first unless positioned (the caller did
        it, e.g. with end_tails(..., extra_groups=[group])); waits for
        /readyz 200 unless ready is false.  Stopped at class end like the
        daemons (SIGTERM, exit 0 within 10 s)."""
        group = group or f"todo-reminder-test-{uuid.uuid4().hex[:12]}"
        if not positioned:
            kafka_groups_to_end([group], ["reminder.due"])
        r = Reminder(label or cls.__name__ + "-reminder", db or cls.daemon.db, group, env)
        return cls._started(r, ready=ready)

    @classmethod
    def start_sync(cls, env=None, label=None, db=None, group=None, ready=True,
                   positioned=False, secret=None):
        """A started todo-sync on db (default: the class daemon's database)
        with secret (default: the class daemon's JWT secret), in consumer
        group group (default: a new one), positioned at the end of its topics
        first unless positioned (the caller did it); waits for /readyz 200
        unless ready is false.  Stopped at class end like the daemons
        (SIGTERM, exit 0 within 10 s)."""
        group = group or f"todo-sync-test-{uuid.uuid4().hex[:12]}"
        if not positioned:
            kafka_groups_to_end([group], list(Sync.topics))
        s = Sync(label or cls.__name__ + "-sync", db or cls.daemon.db,
                 secret or cls.daemon.secret, group, env)
        return cls._started(s, ready=ready)

    @classmethod
    def _started(cls, d, **start_args):
        """d (a Daemon or Worker) started, stopped at class end (stop_daemon)."""
        cls.addClassCleanup(cls.stop_daemon, d)
        cls.daemons.append(d)
        return d.start(**start_args)

    @classmethod
    def new_database(cls, label):
        db = Database(label)
        cls.addClassCleanup(db.drop)
        return db

    @classmethod
    def stop_daemon(cls, d, sig=signal.SIGTERM):
        """Stops d; raises AssertionError (with its log) unless it exits 0 in 10 s."""
        if not d.ready:
            return
        d.ready = False
        rc = d.stop(sig)
        if rc != 0:
            what = "did not exit within 10 s" if rc is None else f"exited with status {rc}"
            raise AssertionError(f"{d.program} ({d.label}) {what} after {sig.name}; its log:\n"
                                 f"{d.log_text()}")
        d.close()

    @classmethod
    def tail(cls, topic):
        """The class's background tail of topic (started on first use)."""
        if topic not in cls.tails:
            cls.tails[topic] = EventTail(topic)
        return cls.tails[topic]

    @classmethod
    def _close_tails(cls):
        for t in cls.tails.values():
            t.close()

    def run(self, result=None):
        marks = [(d, d.log_size()) for d in self.daemons if d.proc and d.proc.poll() is None]
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            for d, mark in marks:
                if os.path.exists(d.logfile.name):
                    log(f"---- {d.program} ({d.label}) log during {self.id()} ----")
                    log(d.log_text(mark, max_lines=150))
        return out

    # -- users and tasks

    def new_client(self, daemon=None):
        """A client for a new, unique user of daemon (default: the class's)."""
        return (daemon or self.daemon).client("u-" + uuid.uuid4().hex)

    def create_task(self, client, **fields):
        fields.setdefault("title", "Task " + uuid.uuid4().hex[:6])
        r = client.post("/api/tasks", fields)
        self.assertEqual(r.status, 201, r)
        return r.json

    def get_task(self, client, task_id):
        r = client.get(f"/api/tasks/{task_id}")
        self.assertEqual(r.status, 200, r)
        return r.json

    # -- assertions

    def assert_status(self, resp, status):
        self.assertEqual(resp.status, status, resp)

    def assert_problem(self, resp, status, type_slug, field=None):
        """resp is an RFC 7807 problem with this status and type; field (a
        name or a list of names) must be named in invalid_params (an entry
        'tags[3]' or 'recurrence.type' names 'tags' / 'recurrence')."""
        self.assertEqual(resp.status, status, resp)
        ctype = (resp.header("Content-Type") or "").split(";")[0].strip()
        self.assertEqual(ctype, "application/problem+json", resp)
        p = resp.json
        self.assertIsInstance(p, dict, resp)
        self.assertEqual(p.get("type"), PROBLEM_PREFIX + type_slug, resp)
        self.assertIsInstance(p.get("title"), str, resp)
        self.assertTrue(p.get("title"), resp)
        self.assertEqual(p.get("status"), status, resp)
        for name in [field] if isinstance(field, str) else field or []:
            names = [e.get("name", "") for e in p.get("invalid_params") or []]
            self.assertTrue(any(names_field(n, name) for n in names),
                            f"invalid_params does not name {name!r}: {resp}")
        return p


def names_field(name, field):
    return name == field or name.startswith(field + "[") or name.startswith(field + ".")


def rrule_parts(rule):
    """'FREQ=DAILY;INTERVAL=2' -> {'FREQ': 'DAILY', 'INTERVAL': '2'}."""
    rule = rule[6:] if rule.upper().startswith("RRULE:") else rule
    return dict(p.split("=", 1) for p in rule.split(";") if p)


def main():
    unittest.main(verbosity=2)
