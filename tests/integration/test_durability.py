"""An ACK is a promise: checked against Redis's own durability, kept through SIGTERM and through Redis
being SIGKILLed (external and embedded), and one log line per change of Redis's state."""
import os
import re
import signal
import subprocess
import time

import redis
import zmq

from harness import BIN, Peer, RedisServer, Router, free_port, message, wait_for


class Stream:
    """A raw OMNI/1 peer sending a stream of messages, at most window unanswered, with a ledger of every
    id sent and the answer each got."""

    def __init__(self, endpoint, tag, window=64):
        self.peer = Peer(endpoint)
        self.tag = tag
        self.window = window
        self.sent = []
        self.answer = {}

    def outstanding(self):
        return len(self.sent) - len(self.answer)

    def acked(self):
        return [i for i in self.sent if self.answer.get(i) == "ACK"]

    def busy(self):
        return [i for i in self.sent if self.answer.get(i) == "BUSY"]

    def run(self, until, sending=lambda: True, timeout=60):
        """Sends (while sending()) and reads answers until until() is true; fails after timeout s."""
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"stream: {len(self.sent)} sent, {len(self.answer)} answered"
            while sending() and self.outstanding() < self.window:
                i = f"{self.tag}:{len(self.sent)}"
                self.peer.submit(message(i, frm=f"c{len(self.sent) % 40}@example.com", text=f"message {i}"))
                self.sent.append(i)
            if self.peer.sock.poll(20):
                while True:
                    try:
                        f = [x.decode() for x in self.peer.sock.recv_multipart(zmq.NOBLOCK)]
                    except zmq.Again:
                        break
                    assert f[0] == "OMNI/1" and f[1] in ("ACK", "BUSY"), f
                    assert f[2] not in self.answer, f"{f[2]} answered twice"
                    self.answer[f[2]] = f[1]

    def drain(self, timeout=20):
        """Stops sending and waits until every message sent has its answer."""
        self.run(lambda: self.outstanding() == 0, sending=lambda: False, timeout=timeout)


def lost(client, ids):
    return [i for i in ids if not client.exists("omni:msg:" + i)]


def redis_lines(text):
    """The router's log lines about Redis's state (not the embedded server's supervision, not messages)."""
    return [l for l in text.splitlines() if re.search(r" (info|warn|error): redis[ :]", l)]


def start_router(tmp_path, server, mode=None):
    """A Router on server with redis.durability mode (None: the default, strict), 4 connections."""
    r = Router(str(tmp_path), server.address)
    with open(r.config) as f:
        text = f.read()
    with open(r.config, "w") as f:
        f.write(text.replace("redis:\n", "redis:\n  connections: 4\n" + (f"  durability: {mode}\n" if mode else "")))
    return r


def kill_and_restart_external(tmp_path, durability, mode, check):
    """Streams messages to a router on an external Redis, SIGKILLs Redis under that load, starts it again
    on the same files, streams on until ACKs resume, then calls check(stream, client, log since the kill)."""
    server = RedisServer(str(tmp_path / "redis"), durability=durability).start()
    r = start_router(tmp_path, server, mode).start()
    s = Stream(r.endpoint, "k")
    try:
        s.run(lambda: len(s.acked()) >= 300)
        mark = len(r.log())
        server.stop(signal.SIGKILL)  # under load: messages are in flight when it dies
        s.run(lambda: len(s.busy()) >= 50)  # the router noticed: BUSY, never a false ACK
        s.drain()
        server.start()  # from its append-only file, if it has one
        s.run(lambda: len(s.acked()) >= 400, timeout=30)
        s.drain()
        check(s, server.client(), r.log()[mark:])
    finally:
        s.peer.close()
        r.stop()
        server.stop()


def test_external_redis_sigkilled_under_load_loses_nothing_acked(tmp_path):
    def check(s, client, log):
        assert s.busy()
        assert lost(client, s.acked()) == []
        # one line when it went away, one when it came back: not one per connection, script or retry
        lines = redis_lines(log)
        assert len(lines) == 2, "\n".join(lines)
        assert "redis unreachable at" in lines[0] and "redis is back at" in lines[1]
    kill_and_restart_external(tmp_path, None, "strict", check)


def test_the_same_kill_loses_acked_messages_with_appendonly_no_and_relaxed(tmp_path):
    """The counter-test: the check has teeth. Without an append-only file a killed Redis forgets what it
    had ACKed, which is exactly what redis.durability: strict refuses to ACK on."""
    def check(s, client, log):
        assert len(lost(client, s.acked())) >= 300
        assert "acknowledging anyway (redis.durability: relaxed)" in log
    kill_and_restart_external(tmp_path, ["--appendonly", "no"], "relaxed", check)


def test_embedded_redis_sigkilled_under_load_loses_nothing_acked(tmp_path):
    r = Router(str(tmp_path), None).start()
    s = Stream(r.endpoint, "e")
    try:
        s.run(lambda: len(s.acked()) >= 300)
        pidfile = os.path.join(r.state, "redis", "redis.pid")
        os.kill(int(open(pidfile).read()), signal.SIGKILL)
        r.wait_log(r"embedded redis: killed by signal 9")
        r.wait_log(r"redis is back", 20)  # the router restarted it from its append-only file
        s.run(lambda: len(s.acked()) >= 400, timeout=30)
        s.drain()
        client = redis.Redis(unix_socket_path=os.path.join(r.state, "redis", "redis.sock"), decode_responses=True)
        assert lost(client, s.acked()) == []
    finally:
        s.peer.close()
        r.stop()


def test_strict_never_acks_on_a_redis_that_does_not_fsync_every_write(tmp_path):
    server = RedisServer(str(tmp_path / "redis"), durability=["--appendonly", "yes", "--appendfsync", "everysec"])
    server.start()
    r = start_router(tmp_path, server).start(wait_ready=False)
    try:
        r.wait_log(r"error: redis at .* does not fsync every write before answering \(appendonly yes, "
                   r"appendfsync everysec\): answering BUSY, never ACK")
        p = Peer(r.endpoint)
        for i in range(20):
            p.submit(message(f"s:{i}"))
            assert p.recv()[:3] == ["OMNI/1", "BUSY", f"s:{i}"]
        assert not server.client().exists("omni:msg:s:0")
        assert len(re.findall(r"does not fsync", r.log())) == 1  # once per change, not per message
        status = r.ctl("status").stdout
        assert "durability strict: redis says appendonly yes, appendfsync everysec" in status, status
        # Redis restarted right: the router reconnects, sees it, and ACKs
        server.stop()
        server.durability = ["--appendonly", "yes", "--appendfsync", "always"]
        server.start()
        r.wait_log(r"redis is back at .*durability verified: appendonly yes, appendfsync always", 20)

        def acked():
            p.submit(message("s:ok"))
            return p.recv() == ["OMNI/1", "ACK", "s:ok"]
        wait_for(acked, 20, "an ACK once Redis fsyncs every write")
        p.close()
    finally:
        r.stop()
        server.stop()


def test_a_redis_that_hides_config_is_not_verified(tmp_path):
    server = RedisServer(str(tmp_path / "redis"), extra=["--rename-command", "CONFIG", ""]).start()
    r = start_router(tmp_path, server).start(wait_ready=False)
    try:
        r.wait_log(r"does not fsync every write before answering \(unknown: CONFIG GET answered ERR unknown command")
        p = Peer(r.endpoint)
        p.submit(message("h:1"))
        assert p.recv()[:3] == ["OMNI/1", "BUSY", "h:1"]
        p.close()
    finally:
        r.stop()
        server.stop()


def test_relaxed_acks_with_a_warning_shown_by_status(tmp_path):
    server = RedisServer(str(tmp_path / "redis"), durability=["--appendonly", "no"]).start()
    r = start_router(tmp_path, server, "relaxed").start()
    try:
        assert "warn: redis.durability is relaxed" in r.log()
        p = Peer(r.endpoint)
        p.submit(message("x:1"))
        assert p.recv() == ["OMNI/1", "ACK", "x:1"]
        p.close()
        status = wait_for(lambda: (lambda o: o if "routers: 1 alive" in o else None)(r.ctl("status").stdout), 10,
                          "the router in omnictl status")
        assert "durability relaxed: redis says appendonly no, appendfsync" in status, status
        assert "WARNING: relaxed" in status
    finally:
        r.stop()
        server.stop()


def test_sigterm_answers_every_message_and_exits_0(tmp_path, redis_server):
    r = Router(str(tmp_path), redis_server.address).start()
    s = Stream(r.endpoint, "t", window=200)
    try:
        s.run(lambda: len(s.acked()) >= 300)
        r.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        s.run(lambda: s.busy(), timeout=10)  # new messages get BUSY: it stopped taking them
        s.drain(timeout=10)  # and every message sent got its answer
        assert r.proc.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 10
        assert lost(redis_server.client(), s.acked()) == []
        assert "shutting down: new messages get BUSY" in r.log()
    finally:
        s.peer.close()
        r.kill()


def test_redis_host_name_is_resolved_when_the_configuration_is_read(tmp_path):
    port = free_port()
    server = RedisServer(str(tmp_path / "redis"), port=port).start()
    try:
        r = Router(str(tmp_path), f"tcp://localhost:{port}").start()
        p = Peer(r.endpoint)
        p.submit(message("l:1"))
        assert p.recv() == ["OMNI/1", "ACK", "l:1"]
        p.close()
        assert re.search(rf"redis at tcp://(127\.0\.0\.1|\[::1\]):{port}", r.log())  # a number, not the name
        r.stop()
        # omnictl reads the same addresses the router does, IPv6 included
        six = Router(str(tmp_path / "six"), f"tcp://[::1]:{port}")
        assert "routers:" in six.ctl("status").stdout
        bad = tmp_path / "bad.yaml"
        bad.write_text("redis:\n  address: \"tcp://no-such-host.invalid:6379\"\n")
        c = subprocess.run([os.path.join(BIN, "omnirouted"), "--check-config", str(bad)], capture_output=True,
                           text=True, timeout=30)
        assert c.returncode == 1
        assert f"{bad}:2:12: redis.address: cannot resolve the host no-such-host.invalid" in c.stderr, c.stderr
    finally:
        server.stop()


def test_sigterm_with_redis_stalled_answers_busy_within_the_bound(tmp_path, redis_server):
    """Waiting for Redis on shutdown is bounded (3 s): what it never answered gets BUSY, so the connector
    keeps it, and the router still exits 0."""
    r = Router(str(tmp_path), redis_server.address)
    with open(r.config) as f:
        text = f.read()
    with open(r.config, "w") as f:  # Redis's own timeout longer than the shutdown bound
        f.write(text.replace("timeout_ms: 2000", "timeout_ms: 20000"))
    r.start()
    s = Stream(r.endpoint, "z", window=50)
    try:
        s.run(lambda: len(s.acked()) >= 100)
        redis_server.proc.send_signal(signal.SIGSTOP)
        s.run(lambda: s.outstanding() == 50, timeout=10)  # in flight, unanswered
        r.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        s.drain(timeout=10)
        assert r.proc.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 6
        assert len(s.busy()) >= 50
        assert "messages unanswered by redis get BUSY" in r.log()
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
        s.peer.close()
        r.kill()
