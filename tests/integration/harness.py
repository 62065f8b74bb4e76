"""Real processes for the integration tests: redis-server, omnirouted, omni-submit, raw OMNI/1 peers.

Every wait is on a condition with a deadline (a socket answers, a log line appears), never a bare sleep.
"""
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import redis
import zmq
from prometheus_client.parser import text_string_to_metric_families

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("OMNI_BUILD", os.path.join(ROOT, "build", "asan"))
BIN = os.path.join(BUILD, "bin")


def wait_for(cond, timeout=10.0, what="condition", interval=0.02):
    """Polls cond() until it returns a true value, which is returned; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DURABLE = ["--appendonly", "yes", "--appendfsync", "always"]


class RedisServer:
    """A private redis-server on a unix socket, append-only with fsync always like production unless
    durability says otherwise (e.g. ["--appendonly", "no"]); port: also on TCP, on 127.0.0.1 and ::1.
    Started again on the same directory it loads what its append-only file holds."""

    def __init__(self, directory, durability=None, port=None, extra=()):
        self.dir = directory
        self.sock = os.path.join(directory, "redis.sock")
        self.durability = DURABLE if durability is None else durability
        self.port = port
        self.extra = list(extra)
        self.proc = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        tcp = ["--port", str(self.port), "--bind", "127.0.0.1", "-::1"] if self.port else ["--port", "0"]
        self.proc = subprocess.Popen(
            ["redis-server", *tcp, "--unixsocket", self.sock, "--unixsocketperm", "700",
             "--dir", self.dir, *self.durability, "--save", "",
             "--logfile", os.path.join(self.dir, "redis.log"), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._pings, 10, "redis-server to answer PING")
        return self

    def _pings(self):
        if self.proc.poll() is not None:
            raise AssertionError("redis-server exited; see " + os.path.join(self.dir, "redis.log"))
        try:
            return self.client().ping()
        except (redis.ConnectionError, FileNotFoundError):
            return False

    def client(self):
        return redis.Redis(unix_socket_path=self.sock, decode_responses=True, socket_timeout=10)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)
        self.proc = None

    @property
    def address(self):
        return "unix:" + self.sock


LIVE_ROUTERS = []  # every Router made; conftest kills those a failed test left running


class Daemon:
    """One of our programs run for a test (a subclass sets program and log_path): its stdout and stderr go to
    log_path; log() is what it wrote since its last start."""
    program = None
    proc = None
    _log = None
    log_offset = 0

    def spawn(self, args, env=None):
        self._log = open(self.log_path, "ab")
        self.log_offset = os.path.getsize(self.log_path)
        self.proc = subprocess.Popen([os.path.join(BIN, self.program), *args], stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env)

    def log(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=15):
        """Waits for a line matching pattern; fails at once, with the log, when the program exits."""
        def seen():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.program} exited {self.proc.returncode}:\n{self.log()}")
            return re.search(pattern, self.log())
        return wait_for(seen, timeout, f"{self.program} log line /{pattern}/")

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        if self._log:
            self._log.close()
            self._log = None

    def stop(self):
        """SIGTERM: it must exit 0 on its own (and, under ASan, leak nothing)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout=20)
            assert rc == 0, f"{self.program} exited {rc}:\n{self.log()}"
        self.kill()


class Router(Daemon):
    """omnirouted with a config written for the test; its stderr goes to a log file the test can read."""
    program = "omnirouted"

    def __init__(self, directory, redis_address=None, extra=None, name="router", endpoint=None, policy=None,
                 env=None, router_extra=None):
        os.makedirs(directory, exist_ok=True)
        LIVE_ROUTERS.append(self)
        self.dir = directory
        self.name = name
        self.state = os.path.join(directory, name + "-state")
        self.endpoint = endpoint or "ipc://" + os.path.join(directory, "ingest.sock")
        self.log_path = os.path.join(directory, name + ".log")
        self.config = os.path.join(directory, name + ".yaml")
        self.prefix = "omni:"
        lines = [
            "router:",
            f"  ingest: [\"{self.endpoint}\"]",
            f"  state_dir: \"{self.state}\"",
            *(["  log_level: debug"] if "log_level" not in (router_extra or {}) else []),
            "  tick_ms: 20",
            *[f"  {k}: {json.dumps(v)}" for k, v in (router_extra or {}).items()],
            "redis:",
            f"  address: \"{redis_address or ''}\"",
            "  timeout_ms: 2000",
            "  reconnect_ms: 20",
            "identity:",
            "  default_country: US",
        ]
        for section, values in (extra or {}).items():
            lines.append(section + ":")
            lines += [f"  {k}: {json.dumps(v)}" for k, v in values.items()]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n" + (policy or ""))
        self.env = dict(os.environ, **(env or {}))

    def start(self, wait_ready=True):
        self.spawn(["--config", self.config], env=self.env)
        if wait_ready:
            self.wait_log(r"ready: ingest on", 20)
        return self

    def ctl(self, *args, check=True):
        r = subprocess.run([os.path.join(BIN, "omnictl"), "-c", self.config, *args],
                           capture_output=True, text=True, timeout=30, env=self.env)  # the test clock's switch
        if check:
            assert r.returncode == 0, f"omnictl {' '.join(args)} -> {r.returncode}\n{r.stdout}{r.stderr}"
        return r


class Peer:
    """A raw OMNI/1 DEALER, for speaking the protocol (and breaking it) frame by frame. curve: (server public
    key, own public key, own secret key), Z85 bytes, for a router's tcp endpoint with CURVE."""

    def __init__(self, endpoint, curve=None):
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve:
            self.sock.curve_serverkey, self.sock.curve_publickey, self.sock.curve_secretkey = curve
        self.sock.connect(endpoint)

    def send(self, *frames):
        self.sock.send_multipart([f if isinstance(f, bytes) else f.encode() for f in frames])

    def submit(self, msg):
        body = msg if isinstance(msg, (bytes, str)) else json.dumps(msg)
        self.send("OMNI/1", "MSG", body)

    def recv(self, timeout=10):
        if not self.sock.poll(int(timeout * 1000)):
            raise AssertionError(f"no reply within {timeout}s")
        return [f.decode() for f in self.sock.recv_multipart()]

    def silent(self, timeout=0.5):
        """True when nothing arrives within timeout (used only to show a dropped peer is ignored)."""
        return not self.sock.poll(int(timeout * 1000))

    def close(self):
        self.sock.close(0)


@contextlib.contextmanager
def clocked_router(tmp_path, redis_server, policy, **kw):
    """A router on the test clock (OMNIROUTER_TEST_CLOCK=1) with policy on the test's Redis, its client in .redis,
    the Redis address in .redis_address and a Peer in .peer; kw goes to Router (router_extra...)."""
    r = Router(str(tmp_path), redis_server.address, policy=policy, env={"OMNIROUTER_TEST_CLOCK": "1"}, **kw).start()
    r.redis_address = redis_server.address
    r.redis = redis_server.client()
    r.peer = Peer(r.endpoint)
    try:
        yield r
    finally:
        r.peer.close()
        r.stop()


def send_one(r, id, frm, text, channel="email", **extra):
    """Submits one message through r.peer, checks its ACK, returns its conversation."""
    r.peer.submit(message(id, channel=channel, frm=frm, text=text, **extra))
    assert r.peer.recv() == ["OMNI/1", "ACK", id]
    return r.redis.hget(f"omni:msg:{id}", "conversation")


def stored_count(r, prefix="omni:"):
    """Messages stored, exactly: their keys (the same as stats.messages, which ingest.lua counts as it stores)."""
    return sum(1 for _ in r.scan_iter(match=prefix + "msg:*", count=1000))


def router_now(r):
    """The routers' clock (ms, docs/routing.md "Time"): the wall clock plus the test clock's offset. r: a Router
    whose .redis is set."""
    return int(time.time() * 1000) + int(r.redis.get("omni:clock:offset") or 0)


def seen_by_a_tick(r):
    """Waits until a scan for due work has run at the router's current time, and one more after it, so what the
    first one handed out has been decided: an assertion after this sees what that time caused."""
    scanned = lambda: int(r.redis.get("omni:due:scanned") or 0)  # noqa: E731
    target = router_now(r)
    wait_for(lambda: scanned() >= target, 10, "a due scan at the new time")
    first = scanned()
    wait_for(lambda: scanned() > first, 10, "the next due scan")


def clock_advance(r, span):
    """Moves the test clock (omnictl clock advance) and waits until the routers have acted on the new time."""
    r.ctl("clock", "advance", span)
    seen_by_a_tick(r)


def message(id, channel="email", frm="ann@example.com", text="hello", **extra):
    m = {"id": id, "channel": channel, "from": {"id": frm}, "received_at": "2026-11-22T08:00:00Z",
         "text": text}
    m.update(extra)
    return m


def start_submit(endpoint, spool, messages, timeout=60, quiet=False):
    """Starts omni-submit in the background on a file of messages; returns the Popen (stdout text)."""
    os.makedirs(spool, exist_ok=True)
    path = os.path.join(os.path.dirname(spool), os.path.basename(spool) + "-input.jsonl")
    with open(path, "w") as f:
        f.write("".join(json.dumps(m) + "\n" for m in messages))
    args = [os.path.join(BIN, "omni-submit"), "--endpoint", endpoint, "--spool", spool, "--timeout", str(timeout)]
    if quiet:
        args.append("--quiet")
    return subprocess.Popen(args + [path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def submit(endpoint, spool, messages, timeout=30, check=True, args=()):
    """Runs omni-submit (the real libomni client) over messages; returns (exit code, stdout). args: more options
    (the CURVE keys)."""
    data = "".join(json.dumps(m) + "\n" for m in messages)
    r = subprocess.run([os.path.join(BIN, "omni-submit"), "--endpoint", endpoint, "--spool", spool,
                        "--timeout", str(timeout), *args], input=data, capture_output=True, text=True,
                       timeout=timeout + 30)
    if check:
        assert r.returncode == 0, f"omni-submit -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.returncode, r.stdout + r.stderr


def scrape_when_up(port):
    """None while the program is not listening yet (a readiness check, not a failure)."""
    try:
        return scrape(port)
    except urllib.error.URLError:
        return None


def scrape(port):
    """GET /metrics on 127.0.0.1:port, parsed by prometheus_client (it raises on anything not in the format):
    {(sample name, sorted label pairs): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples = {}
    for fam in text_string_to_metric_families(text):  # raises on anything not in the format
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def http_get(port, path):
    """GET http://127.0.0.1:port/path: (status, body as text), an error status included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
