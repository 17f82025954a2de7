"""Dapr helpers for tests/api/test_dapr.py (Python standard library only).

- FakeSidecar: a Dapr sidecar's HTTP API (v1.0 routes, as the Dapr API
  reference describes them) in http.server, recording every request the
  daemon makes and checking its shape strictly; a small state store with
  ETags and first-write concurrency, a secret store, output bindings and
  pub/sub whose answers a test can change.
- Daprd: a real daprd in standalone mode (scripts/daprd builds it) with
  the components of infrastructure/dapr/local rendered for the local
  services, infrastructure/dapr/resiliency.yaml and
  infrastructure/dapr/configuration.yaml.
- redis_command: a tiny RESP client (to look at the state store's keys).
- sarama_partition: the partition Dapr's Kafka component (sarama's default
  hash partitioner, FNV-1a) gives a key.
"""

import functools
import hashlib
import json
import os
import re
import shutil
import socket
import string
import subprocess
import tempfile
import time
import urllib.parse

import apitest
from apitest import SOURCE_DIR, free_port, http_request, log, terminate, wait_ready

DAPR_DIR = os.path.join(SOURCE_DIR, "infrastructure", "dapr")
LOCAL_COMPONENTS = os.path.join(DAPR_DIR, "local")
CONFIGURATION = os.path.join(DAPR_DIR, "configuration.yaml")
RESILIENCY = os.path.join(DAPR_DIR, "resiliency.yaml")
SCRIPT = os.path.join(SOURCE_DIR, "scripts", "daprd")

CE_CONTENT_TYPE = "application/cloudevents+json"


# ---- the real daprd --------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def daprd_binary():
    """(path, None) of a daprd to run, or (None, why not).

    TE_DAPRD names one; else scripts/daprd --path finds the one built into
    the cache; else, unless TE_DAPRD_BUILD=0, scripts/daprd builds it (several
    minutes the first time: better done before the tests, as scripts/test
    does)."""
    given = os.environ.get("TE_DAPRD")
    if given:
        if os.access(given, os.X_OK):
            return given, None
        return None, f"TE_DAPRD={given} is not an executable"
    r = subprocess.run([SCRIPT, "--path"], capture_output=True, text=True)
    path = r.stdout.strip()
    if r.returncode == 0 and os.access(path, os.X_OK):
        return path, None
    if os.environ.get("TE_DAPRD_BUILD", "1") == "0":
        return None, f"no daprd at {path} and TE_DAPRD_BUILD=0 (run scripts/daprd)"
    log("building daprd with scripts/daprd (several minutes the first time) ...")
    t0 = time.monotonic()
    r = subprocess.run([SCRIPT], capture_output=True, text=True)
    path = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    if r.returncode == 0 and os.access(path, os.X_OK):
        log(f"daprd built in {time.monotonic() - t0:.0f} s: {path}")
        return path, None
    return None, f"scripts/daprd failed ({r.returncode}):\n{r.stderr[-3000:]}"


def render_resources(directory, values):
    """Writes infrastructure/dapr/local/*.yaml with values substituted
    (string.Template: a missing value is an error) and resiliency.yaml into
    directory; returns directory."""
    os.makedirs(directory, exist_ok=True)
    for name in sorted(os.listdir(LOCAL_COMPONENTS)):
        if not name.endswith(".yaml"):
            continue
        with open(os.path.join(LOCAL_COMPONENTS, name), encoding="utf-8") as f:
            text = string.Template(f.read()).substitute(values)
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(text)
    shutil.copy(RESILIENCY, os.path.join(directory, "resiliency.yaml"))
    return directory


class Daprd:
    """One daprd (standalone mode, no placement, no mTLS) for app app_id on
    app_port, its components from resources; HTTP API on http_port, its log
    kept in a file.  start() waits for GET /v1.0/healthz/outbound = 204
    (components ready: what the daemons wait for too)."""

    def __init__(self, binary, app_id, app_port, resources, config=CONFIGURATION, label=""):
        self.binary = binary
        self.app_id = app_id
        self.app_port = app_port
        self.resources = resources
        self.config = config
        self.label = label or app_id
        self.proc = None
        self.logfile = tempfile.NamedTemporaryFile(prefix=f"daprd-{app_id}-", suffix=".log",
                                                   delete=False)

    def _args(self):
        return [self.binary, "--mode", "standalone", "--app-id", self.app_id,
                "--app-port", str(self.app_port), "--app-protocol", "http",
                "--app-channel-address", "127.0.0.1",
                "--dapr-listen-addresses", "127.0.0.1",
                "--dapr-http-port", str(self.http_port), "--dapr-grpc-port", str(self.grpc_port),
                "--dapr-internal-grpc-port", str(self.internal_port),
                "--metrics-port", str(self.metrics_port), "--enable-metrics=true",
                "--resources-path", self.resources, "--config", self.config,
                "--placement-host-address", "", "--enable-mtls=false",
                "--log-level", os.environ.get("TE_DAPRD_LOG_LEVEL", "info"),
                "--dapr-graceful-shutdown-seconds", "2"]

    def start(self, timeout=60):
        for _ in range(3):
            self.http_port, self.grpc_port = free_port(), free_port()
            self.internal_port, self.metrics_port = free_port(), free_port()
            mark = self.log_size()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("DAPR_", "TE_"))}
            self.proc = subprocess.Popen(self._args(), stdin=subprocess.DEVNULL,
                                         stdout=self.logfile, stderr=subprocess.STDOUT, env=env)
            if self._wait(timeout):
                return self
            text = self.log_text(mark)
            self.stop()
            if "address already in use" not in text:
                raise RuntimeError(f"daprd {self.label} did not get ready in {timeout}s "
                                   f"(exit {self.proc.returncode}); its log:\n{text[-6000:]}")
        raise RuntimeError(f"daprd {self.label}: no free ports after 3 tries")

    def _wait(self, timeout):
        return wait_ready(self.proc, timeout, lambda: http_request(
            self.http_port, "GET", "/v1.0/healthz/outbound", timeout=2).status == 204)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def healthy(self):
        """GET /v1.0/healthz = 204: the sidecar is fully up (app channel too)."""
        try:
            return http_request(self.http_port, "GET", "/v1.0/healthz", timeout=2).status == 204
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None):
        return http_request(self.http_port, method, path, body, headers)

    def metrics(self):
        """The sidecar's Prometheus samples (name, labels, value)."""
        r = http_request(self.metrics_port, "GET", "/metrics")
        lines = [ln for ln in r.data.decode().splitlines()
                 if ln and not ln.startswith("#")]
        return apitest.parse_metrics("\n".join(re.sub(r"\s+#.*$", "", ln) for ln in lines))

    def stop(self):
        if self.proc:
            terminate(self.proc, 15)

    def log_size(self):
        return os.path.getsize(self.logfile.name)

    def log_text(self, start=0):
        with open(self.logfile.name, "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace")

    def close(self):
        self.stop()
        self.logfile.close()
        os.unlink(self.logfile.name)


# ---- a fake sidecar --------------------------------------------------------------


class FakeSidecar(apitest.RecordingServer):
    """The Dapr sidecar's HTTP API, faked on 127.0.0.1 (a free port), for
    the daemons' side of every exchange of docs/dapr.md.

    Every request is recorded in requests: {"t", "method", "target" (raw
    path and query), "path", "query" ({name: [values]}), "headers" (names
    lower-cased), "body" (bytes), "json" (parsed body or None), "status"}.
    A request the API reference does not define, or one of a defined route
    whose shape is wrong (method, content type, body), is answered as the
    real sidecar would (4xx) and noted in problems — tests assert it stays
    empty.  token: when set, every request must carry dapr-api-token.

    Answers (change them in a test, under cond):
    - GET /v1.0/healthz/outbound, /v1.0/healthz: healthz (204);
    - POST /v1.0/publish/{pubsub}/{topic}: publish_status(req) (default 204);
    - GET /v1.0/secrets/{store}/{name}: secrets[store][name] as 200 JSON,
      else 500 ERR_SECRET_GET (what daprd answers for a missing secret);
    - state (store "statestore" unless stores says otherwise): GET/POST/
      DELETE on an in-memory store with ETags, first-write concurrency and
      If-Match, as the state API reference describes; state_status, when
      set, answers every state request with that status instead;
    - POST /v1.0/bindings/{name}: binding_status(req) (default 204).
    """

    def __init__(self, token=None, pubsubs=("kafka-pubsub",), stores=("statestore",),
                 secret_stores=("secretstore",), bindings=("smtp",)):
        super().__init__()
        self.token = token
        self.pubsubs = set(pubsubs)
        self.stores = set(stores)
        self.secret_stores = set(secret_stores)
        self.bindings = set(bindings)
        self.problems = []
        self.healthz = 204
        self.publish_status = lambda req: 204
        self.binding_status = lambda req: 204
        self.state_status = None
        self.secrets = {s: {} for s in secret_stores}
        self.state = {}  # (store, key) -> {"value", "etag", "ttl", "first_write"}
        self.etag_seq = 0
        fake = self

        class Handler(apitest.QuietHandler):
            def _handle(self):
                body = self._read_body()
                parts = urllib.parse.urlsplit(self.path)
                req = {"t": time.time(), "method": self.command, "target": self.path,
                       "path": urllib.parse.unquote(parts.path),
                       "raw_path": parts.path,
                       "query": urllib.parse.parse_qs(parts.query, keep_blank_values=True),
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "body": body, "json": None}
                try:
                    req["json"] = json.loads(body) if body else None
                except ValueError:
                    pass
                with fake.cond:
                    status, headers, payload = fake._answer(req)
                    req["status"] = status
                    fake.requests.append(req)
                    fake.cond.notify_all()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if payload:
                    self.send_header("Content-Type", headers.get("Content-Type",
                                                                  "application/json"))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _handle

        self._serve(Handler)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    # -- answers (called with cond held)

    def problem(self, req, what):
        self.problems.append(f"{req['method']} {req['target']}: {what}")

    @staticmethod
    def error(status, code, message):
        return status, {}, json.dumps({"errorCode": code, "message": message}).encode()

    def _answer(self, req):
        if self.token is not None and req["headers"].get("dapr-api-token") != self.token:
            self.problem(req, f"dapr-api-token {req['headers'].get('dapr-api-token')!r}")
            return self.error(401, "ERR_UNAUTHORIZED", "invalid api token")
        method, path = req["method"], req["path"]
        if path in ("/v1.0/healthz/outbound", "/v1.0/healthz"):
            if method != "GET":
                self.problem(req, "healthz is GET")
                return self.error(405, "ERR_METHOD", "method not allowed")
            return self.healthz, {}, b""
        m = re.fullmatch(r"/v1\.0/publish/([^/]+)/([^/]+)", req["raw_path"])
        if m:
            return self._publish(req, *map(urllib.parse.unquote, m.groups()))
        m = re.fullmatch(r"/v1\.0/secrets/([^/]+)/([^/]+)", req["raw_path"])
        if m:
            return self._secret(req, *map(urllib.parse.unquote, m.groups()))
        m = re.fullmatch(r"/v1\.0/state/([^/]+)(?:/([^/]+))?", req["raw_path"])
        if m:
            store = urllib.parse.unquote(m.group(1))
            key = urllib.parse.unquote(m.group(2)) if m.group(2) else None
            return self._state(req, store, key)
        m = re.fullmatch(r"/v1\.0/bindings/([^/]+)", req["raw_path"])
        if m:
            return self._binding(req, urllib.parse.unquote(m.group(1)))
        self.problem(req, "not a route of the Dapr API the daemons use")
        return self.error(404, "ERR_NOT_FOUND", "not found")

    def _publish(self, req, pubsub, topic):
        if req["method"] != "POST":
            self.problem(req, "publish is POST")
            return self.error(405, "ERR_METHOD", "method not allowed")
        if pubsub not in self.pubsubs:
            self.problem(req, f"pub/sub {pubsub!r} (have {sorted(self.pubsubs)})")
            return self.error(404, "ERR_PUBSUB_NOT_FOUND", f"pubsub {pubsub} not found")
        ctype = (req["headers"].get("content-type") or "").split(";")[0].strip()
        if ctype != CE_CONTENT_TYPE:
            self.problem(req, f"Content-Type {ctype!r}, expected {CE_CONTENT_TYPE}")
        if not isinstance(req["json"], dict):
            self.problem(req, "body is not a JSON object (a structured CloudEvent)")
        extra = {k for k in req["query"] if k != "metadata.partitionKey"}
        if extra:
            self.problem(req, f"query parameters {sorted(extra)}: only metadata.partitionKey "
                              f"is sent (other metadata become Kafka headers)")
        keys = req["query"].get("metadata.partitionKey") or []
        if len(keys) != 1 or not keys[0]:
            self.problem(req, f"metadata.partitionKey {keys!r}: one non-empty user id expected")
        req["pubsub"], req["topic"] = pubsub, topic
        req["key"] = keys[0] if keys else None
        return self.publish_status(req), {}, b""

    def _secret(self, req, store, name):
        if req["method"] != "GET":
            self.problem(req, "secrets are GET")
            return self.error(405, "ERR_METHOD", "method not allowed")
        if store not in self.secret_stores:
            self.problem(req, f"secret store {store!r}")
            return self.error(401, "ERR_SECRET_STORE_NOT_FOUND", f"secret store {store} not found")
        value = self.secrets.get(store, {}).get(name)
        if value is None:
            return self.error(500, "ERR_SECRET_GET",
                              f"failed getting secret with key {name} from secret store {store}: "
                              f"secret {name} not found")
        return 200, {}, json.dumps(value).encode()

    def _binding(self, req, name):
        if req["method"] not in ("POST", "PUT"):
            self.problem(req, "bindings are POST/PUT")
            return self.error(405, "ERR_METHOD", "method not allowed")
        if name not in self.bindings:
            self.problem(req, f"binding {name!r}")
            return self.error(500, "ERR_INVOKE_OUTPUT_BINDING", f"output binding {name} not found")
        body = req["json"]
        if not isinstance(body, dict) or not isinstance(body.get("operation"), str):
            self.problem(req, "binding body must be {\"operation\", \"data\", \"metadata\"}")
            return self.error(400, "ERR_MALFORMED_REQUEST", "malformed request")
        md = body.get("metadata")
        if md is not None and (not isinstance(md, dict) or
                               not all(isinstance(v, str) for v in md.values())):
            self.problem(req, f"binding metadata must map names to strings: {md!r}")
        return self.binding_status(req), {}, b""

    def _state(self, req, store, key):
        if store not in self.stores:
            self.problem(req, f"state store {store!r}")
            return self.error(400, "ERR_STATE_STORE_NOT_FOUND", f"state store {store} not found")
        if self.state_status is not None:
            return self.error(self.state_status, "ERR_STATE_GET", "state store unavailable")
        now = time.monotonic()
        for k in [k for k, v in self.state.items() if v["ttl"] is not None and v["ttl"] <= now]:
            del self.state[k]
        method = req["method"]
        if key is not None and method == "GET":
            rec = self.state.get((store, key))
            if rec is None:
                return 204, {}, b""
            return 200, {"ETag": rec["etag"]}, json.dumps(rec["value"]).encode()
        if key is not None and method == "DELETE":
            rec = self.state.get((store, key))
            match = req["headers"].get("if-match")
            if rec is not None and match is not None and match != rec["etag"]:
                return self.error(409, "ERR_STATE_DELETE", "possible etag mismatch")
            self.state.pop((store, key), None)
            return 204, {}, b""
        if key is None and method == "POST":
            items = req["json"]
            ctype = (req["headers"].get("content-type") or "").split(";")[0].strip()
            if ctype not in ("application/json", ""):
                self.problem(req, f"Content-Type {ctype!r}")
            if not isinstance(items, list) or not items:
                self.problem(req, "the body must be a JSON array of state items")
                return self.error(400, "ERR_MALFORMED_REQUEST", "malformed request")
            for it in items:
                bad = self._bad_item(it)
                if bad:
                    self.problem(req, bad)
                    return self.error(400, "ERR_MALFORMED_REQUEST", bad)
            for it in items:
                rec = self.state.get((store, it["key"]))
                etag = it.get("etag")
                first = (it.get("options") or {}).get("concurrency") == "first-write"
                if etag:
                    if rec is None or rec["etag"] != etag:
                        return self.error(409, "ERR_STATE_SAVE", "possible etag mismatch")
                elif first and rec is not None:
                    # The reference: first-write with no ETag fails when the
                    # key exists (daprd + Redis answers 500 here, not 409).
                    return self.error(409, "ERR_STATE_SAVE", "possible etag mismatch")
                ttl = (it.get("metadata") or {}).get("ttlInSeconds")
                self.etag_seq += 1
                self.state[(store, it["key"])] = {
                    "value": it.get("value"), "etag": str(self.etag_seq),
                    "ttl": now + int(ttl) if ttl not in (None, "", "-1") else None,
                    "ttl_s": int(ttl) if ttl not in (None, "") else None}
            return 204, {}, b""
        self.problem(req, "not a state API request")
        return self.error(405, "ERR_METHOD", "method not allowed")

    @staticmethod
    def _bad_item(it):
        if not isinstance(it, dict):
            return "a state item must be an object"
        extra = set(it) - {"key", "value", "etag", "metadata", "options"}
        if extra:
            return f"unknown state item fields {sorted(extra)}"
        if not isinstance(it.get("key"), str) or not it["key"] or "||" in it["key"]:
            return f"state key {it.get('key')!r}"
        if "etag" in it and not isinstance(it["etag"], str):
            return "etag must be a string"
        opt = it.get("options") or {}
        if not isinstance(opt, dict) or set(opt) - {"concurrency", "consistency"} or \
                opt.get("concurrency", "last-write") not in ("first-write", "last-write") or \
                opt.get("consistency", "eventual") not in ("eventual", "strong"):
            return f"options {opt!r}"
        md = it.get("metadata") or {}
        if not isinstance(md, dict) or not all(isinstance(v, str) for v in md.values()):
            return f"metadata must map names to strings: {md!r}"
        if "ttlInSeconds" in md and not re.fullmatch(r"-?\d+", md["ttlInSeconds"]):
            return f"ttlInSeconds {md['ttlInSeconds']!r}"
        return None

    # -- looking at what the daemon did

    def received(self, pred=lambda r: True):
        with self.cond:
            return [r for r in self.requests if pred(r)]

    def published(self, topic=None):
        return self.received(lambda r: "topic" in r and (topic is None or r["topic"] == topic))

    def wait(self, pred, timeout=15, what="requests", n=1):
        """The first n requests satisfying pred (waits up to timeout)."""
        def describe(got):
            seen = [f"{r['method']} {r['target']} -> {r['status']}" for r in self.requests[-15:]]
            return f"{what} at the fake sidecar; got {len(got)}; last requests: {seen}"
        return self._wait(pred, lambda got: len(got) >= n, timeout, describe)


# ---- Redis, Kafka ------------------------------------------------------------------


def redis_command(url, *args, timeout=5):
    """One command to the Redis server of url (redis://host:port/db); the
    decoded reply (bytes, int, list, None; an error raises RuntimeError)."""
    parts = urllib.parse.urlsplit(url)
    db = (parts.path or "/0").strip("/") or "0"
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379),
                                  timeout=timeout) as s:
        f = s.makefile("rb")

        def send(*a):
            out = f"*{len(a)}\r\n".encode()
            for x in a:
                x = x if isinstance(x, bytes) else str(x).encode()
                out += f"${len(x)}\r\n".encode() + x + b"\r\n"
            s.sendall(out)

        def read():
            line = f.readline()
            kind, rest = line[:1], line[1:].rstrip(b"\r\n")
            if kind == b"+":
                return rest
            if kind == b"-":
                raise RuntimeError(rest.decode())
            if kind == b":":
                return int(rest)
            if kind == b"$":
                n = int(rest)
                if n < 0:
                    return None
                data = f.read(n + 2)
                return data[:-2]
            if kind == b"*":
                n = int(rest)
                return None if n < 0 else [read() for _ in range(n)]
            raise RuntimeError(f"unexpected RESP reply {line!r}")
        if parts.password:
            send("AUTH", urllib.parse.unquote(parts.password))
            read()
        if db != "0":
            send("SELECT", db)
            read()
        send(*args)
        return read()


def fnv1a32(data):
    h = 0x811c9dc5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xffffffff
    return h


def sarama_partition(key, partitions):
    """sarama's NewHashPartitioner (Dapr's Kafka component): FNV-1a 32 of
    the key as int32, Go's remainder, then its absolute value."""
    h = fnv1a32(key.encode())
    if h >= 1 << 31:
        h -= 1 << 32
    r = abs(h) % partitions  # Go: sign of the dividend, then abs
    return r


def kafka_console_read(topic, partition, offset, timeout=60):
    """(headers dict, key, value) of one record with Kafka's ConsoleConsumer
    (whatever its encoding), or None without java / the Kafka jars."""
    libs = apitest.kafka_libs()
    if libs is None:
        return None
    sep = "\u241e"  # never in our records
    cmd = apitest.kafka_tool(libs, "org.apache.kafka.tools.consumer.ConsoleConsumer") + [
        "--topic", topic,
        "--partition", str(partition), "--offset", str(offset), "--max-messages", "1",
        "--timeout-ms", str(timeout * 1000),
        "--property", "print.key=true", "--property", "print.headers=true",
        "--property", f"key.separator={sep}", "--property", f"headers.separator=,",
        "--property", "null.literal=NULL"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30)
    line = next((ln for ln in r.stdout.splitlines() if sep in ln), None)
    if line is None:
        raise RuntimeError(f"ConsoleConsumer read nothing at {topic}/{partition}@{offset} "
                           f"({r.returncode}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    head, key, value = line.split(sep, 2)
    headers = {}
    if head not in ("NO_HEADERS", ""):
        for h in head.split(","):
            k, _, v = h.partition(":")
            headers[k] = v
    return headers, key, value


def sha256_hex(s):
    return hashlib.sha256(s.encode()).hexdigest()


# ---- a minimal WebSocket client (RFC 6455), for todo-sync ---------------------------


class WebSocket:
    """A blocking text-frame WebSocket client: enough to read todo-sync's
    JSON messages (tests/api/test_sync.py has the full-featured ones)."""

    def __init__(self, port, path, timeout=10):
        import base64
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the WebSocket handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"WebSocket upgrade refused: {head[:200]!r}")

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv_json(self, timeout=10):
        """The next text message, parsed (pings answered, a close raises)."""
        self.sock.settimeout(timeout)
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7f
            if n == 126:
                n = int.from_bytes(self._read(2), "big")
            elif n == 127:
                n = int.from_bytes(self._read(8), "big")
            payload = self._read(n)
            opcode = b0 & 0x0f
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                raise ConnectionError(f"closed by the server: {code} {payload[2:].decode(errors='replace')}")
            if opcode in (0x1, 0x0):
                message += payload
                if b0 & 0x80:
                    return json.loads(message)

    def close(self):
        try:
            self._send(0x8, (1000).to_bytes(2, "big"))
        except OSError:
            pass
        self.sock.close()
