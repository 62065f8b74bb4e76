"""omnirouted as a service: systemd notification, watchdog, the embedded Redis supervised."""
import os
import signal
import socket
import subprocess

from harness import BIN, ROOT, Peer, Router, free_port, message, wait_for


def test_ready_and_watchdog_reach_systemd(tmp_path, redis_server):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    r = Router(str(tmp_path), redis_server.address)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
    env.pop("WATCHDOG_PID", None)  # unset: the watchdog is meant for whoever reads WATCHDOG_USEC
    log = open(r.log_path, "ab")
    r.log_offset = os.path.getsize(r.log_path)
    r._log = log
    r.proc = subprocess.Popen([os.path.join(BIN, "omnirouted"), "--config", r.config], stdout=log,
                              stderr=subprocess.STDOUT, env=env)
    try:
        got = []
        def heard(word):
            while not any(word in g for g in got):
                got.append(sock.recv(4096).decode())
            return True
        assert heard("READY=1")
        assert "ready: ingest on" in r.log()  # READY only once ingest is bound and Redis answers
        assert heard("WATCHDOG=1")
        n = sum(g.count("WATCHDOG=1") for g in got)
        got.clear()
        heard("WATCHDOG=1")  # keeps coming from the loop
        assert n >= 1
        r.proc.send_signal(signal.SIGTERM)
        assert heard("STOPPING=1")
        assert r.proc.wait(timeout=20) == 0
    finally:
        r.kill()
        sock.close()


def test_start_up_waiting_for_redis_says_so_to_systemd(tmp_path):
    """No READY=1 while Redis does not answer (the unit waits, TimeoutStartSec=infinity), but STATUS= says why."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    r = Router(str(tmp_path), f"unix:{tmp_path}/nobody.sock")
    log = open(r.log_path, "ab")
    r._log = log
    r.proc = subprocess.Popen([os.path.join(BIN, "omnirouted"), "--config", r.config], stdout=log,
                              stderr=subprocess.STDOUT, env=dict(os.environ, NOTIFY_SOCKET=path))
    try:
        got = sock.recv(4096).decode()
        assert "STATUS=waiting for redis at unix:" in got and "READY=1" not in got, got
        r.proc.send_signal(signal.SIGTERM)
        assert r.proc.wait(timeout=20) == 0
    finally:
        r.kill()
        sock.close()


def test_embedded_redis_that_dies_is_restarted(tmp_path):
    r = Router(str(tmp_path), None).start()
    try:
        p = Peer(r.endpoint)
        p.submit(message("e:1"))
        assert p.recv() == ["OMNI/1", "ACK", "e:1"]
        pidfile = os.path.join(r.state, "redis", "redis.pid")
        pid = int(open(pidfile).read())
        os.kill(pid, signal.SIGKILL)
        r.wait_log(r"embedded redis: killed by signal 9")
        r.wait_log(r"redis is back", 20)
        assert int(open(pidfile).read()) != pid

        def acked():
            p.submit(message("e:2"))
            reply = p.recv()
            return reply == ["OMNI/1", "ACK", "e:2"]
        wait_for(acked, 20, "ACKs after the embedded redis restarted")
        out = r.ctl("conversation", "show", "1").stdout
        assert "e:1" in out and "e:2" in out  # e:1 survived in the append-only file
        p.close()
    finally:
        r.stop()


def test_bad_config_never_starts(tmp_path):
    conf = tmp_path / "bad.yaml"
    conf.write_text("router:\n  ingest: [\"udp://nowhere\"]\n")
    r = subprocess.run([os.path.join(BIN, "omnirouted"), "--config", str(conf)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 1
    assert f"{conf}:2:" in r.stderr and "not started" in r.stderr


def test_ingest_endpoint_in_use_is_a_clear_error(tmp_path, redis_server):
    ep = f"tcp://127.0.0.1:{free_port()}"
    a = Router(str(tmp_path), redis_server.address, name="a", endpoint=ep, router_extra={"insecure_tcp": True}).start()
    try:
        b = Router(str(tmp_path), redis_server.address, name="b", endpoint=ep, router_extra={"insecure_tcp": True})
        r = subprocess.run([os.path.join(BIN, "omnirouted"), "--config", b.config], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 1
        # it exits 1 for it: logged at fatal (docs/logging.md), not error
        assert f"fatal: ingest: cannot bind {ep}: Address already in use" in r.stderr, r.stderr
    finally:
        a.stop()


def test_a_metrics_port_in_use_is_fatal(tmp_path, redis_server):
    """router.metrics_listen on a port another process holds: the router exits 1, and says so at fatal."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    port = held.getsockname()[1]
    try:
        b = Router(str(tmp_path), redis_server.address, router_extra={"metrics_listen": f"127.0.0.1:{port}"})
        r = subprocess.run([os.path.join(BIN, "omnirouted"), "--config", b.config], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 1
        assert "fatal: router.metrics_listen: " in r.stderr, r.stderr
    finally:
        held.close()


def test_external_redis_over_tcp_with_a_password(tmp_path):
    port = free_port()
    d = tmp_path / "tcp-redis"
    d.mkdir()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "s3cret",
                               "--dir", str(d), "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                              stdout=subprocess.DEVNULL)
    try:
        import redis
        client = redis.Redis(host="127.0.0.1", port=port, password="s3cret", decode_responses=True)
        wait_for(lambda: _pings(client), 10, "redis-server on tcp")
        r = Router(str(tmp_path), f"tcp://127.0.0.1:{port}")
        with_password(r.config, "s3cret", "  database: 3\n")
        r.start()
        p = Peer(r.endpoint)
        p.submit(message("tcp:1"))
        assert p.recv() == ["OMNI/1", "ACK", "tcp:1"]
        client3 = redis.Redis(host="127.0.0.1", port=port, password="s3cret", db=3, decode_responses=True)
        assert client3.exists("omni:msg:tcp:1") and not client.exists("omni:msg:tcp:1")
        p.close()
        r.stop()
        bad = Router(str(tmp_path / "bad"), f"tcp://127.0.0.1:{port}")
        with_password(bad.config, "wrong")
        try:
            bad.start(wait_ready=False)
            bad.wait_log(r"setup failed: (WRONGPASS|ERR invalid password)")
        finally:
            bad.kill()
    finally:
        server.terminate()
        server.wait(timeout=10)


def with_password(path, password, more=""):
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("redis:\n", f"redis:\n  password: \"{password}\"\n{more}"))


def _pings(client):
    try:
        return client.ping()
    except Exception:
        return False


def test_every_sample_configuration_checks(tmp_path):
    """The commented samples in conf/ are what operators start from: each must be accepted as it is."""
    conf = os.path.join(ROOT, "conf")
    for program, name in (("omnirouted", "omnirouter.yaml"), ("omni-email", "omni-email.yaml"),
                          ("omni-phonelog", "omni-phonelog.yaml")):
        flag = ["--check-config", os.path.join(conf, name)] if program == "omnirouted" else \
            ["--check-config", "--config", os.path.join(conf, name), "-D", f"spool_dir={tmp_path / program}"]
        r = subprocess.run([os.path.join(BIN, program), *flag], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"{program} {name}: {r.stdout}{r.stderr}"


def test_allowed_keys_errors_name_the_entry_and_check_config_agrees_with_start(tmp_path):
    """A CURVE allowed key that cannot be read is an error at its own list entry (router.curve.allowed_keys[N],
    its line and column), found by --check-config exactly as start-up finds it: a directory's *.pub files too."""
    keys = tmp_path / "keys"
    keys.mkdir()
    subprocess.run([os.path.join(BIN, "omnictl"), "keygen", "router"], cwd=keys, check=True, capture_output=True)
    conns = tmp_path / "conns"
    conns.mkdir()
    (conns / "broken.pub").write_text("not a key\n")
    conf = tmp_path / "curve.yaml"
    conf.write_text(f"router:\n  ingest: [\"tcp://127.0.0.1:{free_port()}\"]\n  state_dir: \"{tmp_path}/state\"\n"
                    f"  curve:\n    secret_key_file: keys/router.key\n    allowed_keys: [nosuch.pub, conns]\n"
                    "redis:\n  address: \"unix:/nonexistent/redis.sock\"\n")
    want = [f"{conf}:6:20: router.curve.allowed_keys[0]: cannot read {tmp_path}/nosuch.pub: No such file or directory",
            f"{conf}:6:32: router.curve.allowed_keys[1]: {tmp_path}/conns/broken.pub does not hold a CURVE key (40 Z85 "
            "characters, as omnictl keygen writes)",
            "omnirouted: 2 configuration errors; not started"]
    for mode in ("--check-config", "--config"):
        r = subprocess.run([os.path.join(BIN, "omnirouted"), mode, str(conf)], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 1 and r.stderr.splitlines() == want, (mode, r.stderr)


def test_an_embedded_redis_that_cannot_be_run_is_a_config_error(tmp_path):
    """redis.server that cannot be run, with the embedded Redis: --check-config and start-up both refuse it at its
    place (the router used to start, fail to run it and try again forever)."""
    conf = tmp_path / "r.yaml"
    conf.write_text(f"router:\n  state_dir: \"{tmp_path}/state\"\nredis:\n  server: {tmp_path}/no-redis-server\n")
    want = [f"{conf}:4:11: redis.server: cannot run {tmp_path}/no-redis-server: not an executable file; the "
            "embedded Redis (no redis.address, no redis.sentinels) needs it: install redis-server, or name Redis in "
            "redis.address",
            "omnirouted: 1 configuration error; not started"]
    for mode in ("--check-config", "--config"):
        r = subprocess.run([os.path.join(BIN, "omnirouted"), mode, str(conf)], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 1 and r.stderr.splitlines() == want, (mode, r.stderr)
    # with redis.address the binary is never run: no error
    r = subprocess.run([os.path.join(BIN, "omnirouted"), "--check-config", str(conf), "-D",
                        "redis.address=unix:/run/redis.sock"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr


def test_a_config_refused_at_start_under_systemd_is_logged_at_error(tmp_path):
    """Under systemd (stderr is the journal stream) a configuration refused at start-up is logged, each error at
    priority err and the outcome at crit, not plain lines journald would file at info; here journald's socket is
    missing, so the lines carry their <N> prefix (docs/logging.md)."""
    if os.path.exists("/run/systemd/journal/socket"):
        import pytest
        pytest.skip("journald listens here: the entries would go to it")
    conf = tmp_path / "bad.yaml"
    conf.write_text("router:\n  tick_ms: 0\n")
    log = tmp_path / "stderr"
    with open(log, "w") as err:
        st = os.fstat(err.fileno())
        rc = subprocess.run([os.path.join(BIN, "omnirouted"), "--config", str(conf)], stderr=err, timeout=20,
                            env=dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")).returncode
    assert rc == 1
    assert log.read_text().splitlines() == [f"<3>error: {conf}:2:12: router.tick_ms: 0 is below the minimum 1",
                                            "<2>fatal: 1 configuration error; not started"]


def test_a_second_router_on_the_same_ipc_endpoint_or_embedded_redis_is_refused(tmp_path, redis_server):
    """A second omnirouted started with a running one's ipc ingest socket used to unlink it and bind its own,
    cutting the first off from its connectors for good; with its embedded Redis, it stopped that Redis as if
    stale. It is refused instead, and the running one keeps working."""
    a = Router(str(tmp_path / "ipc"), redis_server.address, name="a").start()
    try:
        b = Router(str(tmp_path / "ipc"), redis_server.address, name="b")  # same endpoint, its own state_dir
        assert b.endpoint == a.endpoint
        r = subprocess.run([os.path.join(BIN, "omnirouted"), "--config", b.config], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 1, r.stderr
        assert f"fatal: ingest: cannot bind {a.endpoint}: Address already in use" in r.stderr, r.stderr
        p = Peer(a.endpoint)
        p.submit(message("second:1", channel="email", frm="s@example.com", text="still here"))
        assert p.recv() == ["OMNI/1", "ACK", "second:1"]
        p.close()
    finally:
        a.stop()

    e = Router(str(tmp_path / "embedded"), None, name="e").start()
    try:
        pidfile = os.path.join(e.state, "redis", "redis.pid")
        redis_pid = int(open(pidfile).read())
        other = tmp_path / "other.yaml"  # the same state_dir, another ingest socket
        other.write_text(open(e.config).read().replace(e.endpoint, "ipc://" + str(tmp_path / "other.sock")))
        r = subprocess.run([os.path.join(BIN, "omnirouted"), "--config", str(other)], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 1, r.stderr
        assert (f"fatal: router.state_dir {e.state}: its embedded Redis (pid {redis_pid}) is supervised by a running "
                f"omnirouted (pid {e.proc.pid})") in r.stderr, r.stderr
        os.kill(redis_pid, 0)  # untouched
        assert "exited" not in e.log(), e.log()
        p = Peer(e.endpoint)
        p.submit(message("second:2", channel="email", frm="s@example.com", text="still here"))
        assert p.recv() == ["OMNI/1", "ACK", "second:2"]
        p.close()
    finally:
        e.stop()
