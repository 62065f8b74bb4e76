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
        assert f"cannot bind {ep}: Address already in use" in r.stderr, r.stderr
    finally:
        a.stop()


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
