"""Redis Sentinel: a primary, a replica and three sentinels on loopback. Under load the replica falls behind (it
is stopped and its link cut), then the primary is killed; the sentinels promote the replica and the router
follows them. With redis.wait_replicas: 1 the router stops ACKing while no replica confirms, so every ACKed
message is on the new primary, stored once and routed. With wait_replicas: 0 the test reports how many ACKed
messages the failover lost (asynchronous replication: here, more than zero, as docs/redis.md says).
omni-api and omni-webhooks follow the same failover: 503 during the gap, then the new primary."""
import hashlib
import os
import re
import signal
import subprocess
import time

import redis

from api_client import OmniApi
from fault_load import LoadClient
from harness import BIN, Router, RedisServer, free_port, wait_for
from test_webhooks import SECRET, Webhooks, event, partner_owns, states
from webhook_receiver import Receiver

MASTER = "omnimaster"
POLICY = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: core, kind: in-house, calendar: always}
agents:
  - {id: alice, teams: [core], capacity: {email: 50, sms: 50, twitter: 50}}
routing:
  rules:
    - {name: all, targets: [{team: core}], queue: core}
"""


class Sentinel:
    def __init__(self, directory, port, primary_port, extra="", head="", host="127.0.0.1"):
        self.dir, self.port = directory, port
        os.makedirs(directory, exist_ok=True)
        self.conf = os.path.join(directory, "sentinel.conf")
        with open(self.conf, "w") as f:
            f.write(f"port {port}\nbind 127.0.0.1\ndir {directory}\nlogfile {directory}/sentinel.log\n" + head +
                    f"sentinel monitor {MASTER} {host} {primary_port} 2\n"
                    f"sentinel down-after-milliseconds {MASTER} 1000\n"
                    f"sentinel failover-timeout {MASTER} 4000\n" + extra)
        self.proc = subprocess.Popen(["redis-server", self.conf, "--sentinel"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        c = redis.Redis(port=port, decode_responses=True, socket_timeout=5)
        wait_for(lambda: self._primary(c), 20, f"sentinel {port} to know the primary")
        self.client = c

    @staticmethod
    def _primary(c):
        try:
            return c.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
        except redis.ConnectionError:
            return None

    def primary_port(self):
        return int(self._primary(self.client)[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class PasswordRedis(RedisServer):
    """A RedisServer with requirepass (and masterauth, for a replica or a demoted primary)."""
    def __init__(self, directory, password, **kw):
        kw["extra"] = ["--requirepass", password, "--masterauth", password, *kw.get("extra", ())]
        super().__init__(directory, **kw)
        self.password = password

    def client(self):
        return redis.Redis(unix_socket_path=self.sock, decode_responses=True, socket_timeout=10,
                           password=self.password)


def cluster(tmp_path, password=None, sentinel_extra=""):
    p_port, r_port = free_port(), free_port()

    def server(name, port, extra=()):
        if password:
            return PasswordRedis(str(tmp_path / name), password, port=port, extra=extra)
        return RedisServer(str(tmp_path / name), port=port, extra=extra)
    primary = server("primary", p_port).start()
    replica = server("replica", r_port, ["--replicaof", "127.0.0.1", str(p_port)]).start()
    wait_for(lambda: replica.client().info("replication").get("master_link_status") == "up", 30,
             "the replica in sync (its link up, not only connected)")
    sentinels = [Sentinel(str(tmp_path / f"s{i}"), free_port(), p_port, sentinel_extra) for i in range(3)]
    return primary, replica, sentinels


def sentinel_router(tmp_path, sentinels, wait_replicas, extra_redis="", router_extra=None, wait_ready=True,
                    master=MASTER, ports=None):
    r = Router(str(tmp_path / "router"), None, policy=POLICY, router_extra=router_extra)
    text = open(r.config).read()
    ports = ports or [s.port for s in sentinels]
    redis_section = ("redis:\n  sentinels: [" + ", ".join(f"127.0.0.1:{p}" for p in ports) + "]\n"
                     f"  master_name: {master}\n  wait_replicas: {wait_replicas}\n  wait_timeout_ms: 500\n"
                     "  timeout_ms: 2000\n  reconnect_ms: 20\n" + extra_redis)
    head, rest = text.split("redis:\n", 1)
    rest = rest.split("identity:\n", 1)[1]
    with open(r.config, "w") as f:
        f.write(head + redis_section + "identity:\n" + rest)
    return r.start(wait_ready=wait_ready)


def log_lines(daemon, level, pattern=""):
    """The lines of daemon's log at level (warn, info...) matching pattern."""
    return [l for l in daemon.log().splitlines() if f": {level}: " in l and re.search(pattern, l)]


def failover_under_load(tmp_path, wait_replicas, check):
    """Runs the failover, then check(acked ids, a client of the new primary) while everything still runs."""
    primary, replica, sentinels = cluster(tmp_path)
    r = sentinel_router(tmp_path, sentinels, wait_replicas)
    load = LoadClient(r.endpoint, 0, seed=7, rate=150, customers=40, drain_s=60)
    try:
        load.start()
        wait_for(lambda: len(load.acked) >= 200, 30, "messages ACKed before the failover")
        # The replica falls behind: stopped, its link cut. What the primary takes from now on is on no replica.
        replica.proc.send_signal(signal.SIGSTOP)
        primary.client().execute_command("CLIENT", "KILL", "TYPE", "replica")
        before = len(load.acked)
        if wait_replicas:  # WAIT cannot be met: the router answers BUSY, and says so once
            r.wait_log(r"0 of 1 replicas confirmed a write within 500 ms: answering BUSY", 30)
            assert len(load.acked) <= before + load.rate  # at most what was in flight when the link was cut
        else:  # ACKs go on, from the primary alone
            wait_for(lambda: len(load.acked) >= before + 100, 30, "ACKs from the primary alone")
        old_port = primary.port
        primary.stop(signal.SIGKILL)  # the primary dies with whatever it had not replicated
        replica.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: sentinels[0].primary_port() != old_port, 30, "the sentinels promote the replica")
        r.wait_log(r"the sentinels name 127\.0\.0\.1:\d+ as the primary", 30)
        # omnictl status names the primary the router uses now (its status entry, published once a second)
        wait_for(lambda: f"127.0.0.1:{sentinels[0].primary_port()}" in
                 (re.search(r"\n    redis (.*)\n", r.ctl("status").stdout) or [None, ""])[1], 10,
                 "status names the new primary")
        if wait_replicas:  # back, but no ACK promised before a WAIT is met: the promoted replica has none yet
            r.wait_log(r"info: redis is back at .*; acknowledging messages again once 1 replica confirms them "
                       r"\(redis\.wait_replicas\)", 30)
        # the old primary comes back: the sentinels make it a replica of the new one, so WAIT 1 is met again
        primary.start()
        acked_at_failover = len(load.acked)
        wait_for(lambda: len(load.acked) >= acked_at_failover + 200, 60, "ACKs resume through the new primary")
        if wait_replicas:
            r.wait_log(r"info: redis: 1 of 1 replicas confirm writes again: acknowledging messages", 10)
        load.stop()
        load.join(timeout=90)
        assert load.error is None, load.error
        assert not load.pending, f"{len(load.pending)} messages never answered"
        assert not load.nacked, load.nacked
        new = redis.Redis(port=sentinels[0].primary_port(), decode_responses=True, socket_timeout=10)
        assert new.execute_command("ROLE")[0] == "master"
        check(load.acked, new)
    finally:
        load.stop()
        r.stop()
        for s in sentinels:
            s.stop()
        primary.stop()
        replica.stop()


def test_failover_with_wait_loses_no_acked_message(tmp_path):
    failover_under_load(tmp_path, 1, every_acked_message_stored_once_and_routed)


def every_acked_message_stored_once_and_routed(acked, new):
    missing = [id for id in acked if not new.exists(f"omni:msg:{id}")]
    assert not missing, f"{len(missing)} ACKed messages lost in the failover, e.g. {missing[:5]}"
    convs = {new.hget(f"omni:msg:{id}", "conversation") for id in acked}
    # every conversation routed: assigned or waiting, none left unrouted. One opened by a write answered BUSY
    # (its WAIT fell short) and ACKed later as a duplicate is routed by the due scan, 3 s after it was opened
    # (ROUTING_UNROUTED_AFTER_MS): wait that long
    def unrouted():
        return [cv for cv in convs
                if new.hget(f"omni:conversation:{cv}", "status") not in ("offered", "assigned", "queued")]
    wait_for(lambda: not unrouted(), 10, "every conversation routed")
    ids = []
    for key in new.scan_iter(match="omni:conversation:*:messages", count=1000):
        ids += new.lrange(key, 0, -1)
    assert len(ids) == len(set(ids)), "a message stored twice"


def test_failover_without_wait_reports_what_it_lost(tmp_path):
    """The same failover with no WAIT: what the primary ACKed while its replica lagged is gone."""
    def report(acked, new):
        lost = [id for id in acked if not new.exists(f"omni:msg:{id}")]
        print(f"\n  sentinel failover, wait_replicas 0: {len(lost)} of {len(acked)} ACKed messages lost")
        assert lost, "the replica lagged by 100 ACKs or more: some must be lost without WAIT"
    failover_under_load(tmp_path, 0, report)


def test_api_and_webhooks_follow_a_failover(tmp_path):
    """SIGKILL the primary while omni-api serves requests and omni-webhooks delivers: the API answers 503 (with
    Retry-After) during the gap and then serves from the new primary (a write made after the failover is there);
    every delivery written before (and replicated) or after the failover reaches the partner."""
    primary, replica, sentinels = cluster(tmp_path)
    ports = [s.port for s in sentinels]
    api = OmniApi(str(tmp_path), None, extra={"redis.sentinels": [f"127.0.0.1:{p}" for p in ports],
                                              "redis.master_name": MASTER})
    receiver = Receiver([SECRET], lambda msg_id, n: (200, {}, 0))
    wh = Webhooks(str(tmp_path), None, [{"team": "acme", "url": receiver.url}], sentinels=(MASTER, ports))
    try:
        p = primary.client()
        token = "omni_" + "Q" * 43
        h = hashlib.sha256(token.encode()).hexdigest()
        p.hset(f"omni:token:{h}", mapping={"id": h[:12], "subject": "agent:ann", "created_at": 1})
        partner_owns(p, "acme", "51")
        api.start()
        wh.start()
        assert api.request("GET", "/v1/me", token=token).status == 200
        before = [event(p, "acme", "51", "work.message", text=f"before {i}") for i in range(20)]
        wait_for(lambda: states(p, before) == ["delivered"] * 20, 20, "deliveries before the failover")
        assert p.execute_command("WAIT", 1, 5000) >= 1  # the replica has all of it
        old_port = primary.port
        primary.stop(signal.SIGKILL)
        statuses = []

        def served_again():
            a = api.request("GET", "/v1/me", token=token)
            statuses.append(a.status)
            if a.status == 503:
                assert a.headers["retry-after"] == "3" and a.body["error"]["code"] == "unavailable", a
            return a.status == 200 and sentinels[0].primary_port() != old_port
        wait_for(served_again, 40, "omni-api serving from the new primary")
        assert 503 in statuses, f"no 503 during the gap: {statuses}"
        health = api.request("GET", "/healthz")
        assert health.status == 200, health
        new = redis.Redis(port=sentinels[0].primary_port(), decode_responses=True, socket_timeout=10)
        assert new.execute_command("ROLE")[0] == "master"
        assert api.request("PUT", "/v1/presence", token=token, body={"presence": "away"}).status == 200
        assert new.hget("omni:agent:ann", "presence") == "away"  # the write is on the new primary
        after = [event(new, "acme", "51", "work.message", text=f"after {i}") for i in range(20)]
        wait_for(lambda: states(new, before + after) == ["delivered"] * 40, 40,
                 "every delivery done through the new primary")
        accepted = [a["id"] for a in receiver.accepted()]
        assert set(accepted) >= set(before + after)
        assert [i for i in accepted if i in after] == after, "in order, each once after the failover"
        wh.wait_log(r"the sentinels name 127\.0\.0\.1:\d+ as the primary", 5)
    finally:
        wh.stop()
        api.stop()
        receiver.close()
        for s in sentinels:
            s.stop()
        primary.stop()
        replica.stop()


def test_api_and_webhooks_config_errors_name_the_sentinel_keys(tmp_path):
    """The shared keys are checked the same way in both programs: a master name is needed, and an address
    written beside the sentinels is refused, each at its file:line:column."""
    secret = tmp_path / "acme.secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    configs = {
        "omni-api": "api:\n  listen: 127.0.0.1:0\nredis:\n  address: unix:/tmp/x.sock\n  sentinels: [127.0.0.1:26379]\n",
        "omni-webhooks": ("redis:\n  address: unix:/tmp/x.sock\n  sentinels: [127.0.0.1:26379]\npartners:\n"
                          f"  - {{team: acme, url: 'https://a.example/h', secrets: ['{secret}']}}\n"),
    }
    for program, text in configs.items():
        path = tmp_path / f"{program}.yaml"
        path.write_text(text)
        out = subprocess.run([os.path.join(BIN, program), "--check-config", str(path)], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 1, (program, out.stdout, out.stderr)
        assert re.search(rf"{re.escape(str(path))}:\d+:\d+: redis.sentinels: needs redis.master_name", out.stderr), \
            out.stderr
        assert re.search(rf"{re.escape(str(path))}:\d+:\d+: redis.sentinels: redis.address is set too", out.stderr), \
            out.stderr
        path.write_text(text.replace("  address: unix:/tmp/x.sock\n", "  master_name: omni\n"))
        out = subprocess.run([os.path.join(BIN, program), "--check-config", str(path)], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0 and "configuration OK" in out.stdout, (program, out.stderr)


def test_blocking_clients_need_no_sentinel_password_and_skip_a_hung_sentinel(tmp_path):
    """The usual setup: Redis has a password, the sentinels none ("sentinel auth-pass"). The router, omnictl and
    omni-api all find the primary (a sentinel answering AUTH with "no password configured" needs none). Then the
    first sentinel hangs: omni-api waits for it once, not on every new connection (it starts with the sentinel
    that answered last)."""
    primary, replica, sentinels = cluster(tmp_path, password="pw", sentinel_extra=f"sentinel auth-pass {MASTER} pw\n")
    r = sentinel_router(tmp_path, sentinels, 0, extra_redis="  password: pw\n")
    pw = tmp_path / "pw"
    pw.write_text("pw")
    pw.chmod(0o600)
    api = OmniApi(str(tmp_path), None, extra={"redis.sentinels": [f"127.0.0.1:{s.port}" for s in sentinels],
                                              "redis.master_name": MASTER, "redis.password": str(pw)})
    try:
        status = r.ctl("status", check=False)
        assert status.returncode == 0 and re.search(r"routers: 1 alive", status.stdout), status.stdout + status.stderr
        api.start()
        health = api.request("GET", "/healthz")
        assert health.status == 200, health
        sentinels[0].proc.send_signal(signal.SIGSTOP)  # accepts connections (the kernel does), answers nothing
        times = []
        for _ in range(4):  # a new HTTP connection each: a new thread, a new Redis connection, a new lookup
            t = time.monotonic()
            assert api.request("GET", "/healthz").status == 200
            times.append(time.monotonic() - t)
        assert max(times[1:]) < 0.5, f"each lookup waited for the hung sentinel (timeout_ms 1000): {times}"
    finally:
        sentinels[0].proc.send_signal(signal.SIGCONT)
        api.stop()
        r.stop()
        for s in sentinels:
            s.stop()
        primary.stop()
        replica.stop()


def test_primary_demoted_under_open_connections(tmp_path):
    """FAILOVER on the primary demotes it while the router's connections stay open: the first READONLY takes the
    store down (one line, not one per batch), the router asks the sentinels and follows the new primary."""
    primary, replica, sentinels = cluster(tmp_path)
    r = sentinel_router(tmp_path, sentinels, 0)
    load = LoadClient(r.endpoint, 0, seed=7, rate=50, customers=40, drain_s=30)
    try:
        load.start()
        wait_for(lambda: len(load.acked) >= 100, 30, "messages ACKed before the demotion")
        assert primary.client().execute_command("FAILOVER") == "OK"
        r.wait_log(r"warn: redis unreachable at .*(READONLY|MASTERDOWN).*no longer the primary", 20)
        wait_for(lambda: primary.client().execute_command("ROLE")[0] == "slave", 20, "the old primary a replica")
        r.wait_log(r"the sentinels name 127\.0\.0\.1:%d as the primary" % replica.port, 60)
        after = len(load.acked)
        wait_for(lambda: len(load.acked) >= after + 100, 60, "ACKs through the new primary")
        demoted = log_lines(r, "warn", "READONLY|MASTERDOWN")
        assert len(demoted) == 1, f"{len(demoted)} lines about the demotion:\n" + "\n".join(demoted[:5])
        assert len(log_lines(r, "warn", "redis unreachable")) == 1
        assert log_lines(r, "info", "redis is back at")
        load.stop()
        load.join(timeout=60)
        assert load.error is None, load.error
        assert not load.pending and not load.nacked
    finally:
        load.stop()
        r.stop()
        for s in sentinels:
            s.stop()
        primary.stop()
        replica.stop()


def test_waiting_for_replicas_holds_up_only_ingest(tmp_path):
    """wait_replicas 1 and the replica stopped: messages get BUSY, but the router's status entry is still
    refreshed (omnictl status sees it alive well past its 15 s expiry) and Redis does not pile up WAITs: the work
    that is not ingest is never sent behind a WAIT, and one write at a time probes whether the replica is back."""
    primary, replica, sentinels = cluster(tmp_path)
    r = sentinel_router(tmp_path, sentinels, 1)
    load = LoadClient(r.endpoint, 0, seed=7, rate=100, customers=40, drain_s=60)
    p = primary.client()
    try:
        load.start()
        wait_for(lambda: len(load.acked) >= 100, 30, "messages ACKed with the replica up")
        replica.proc.send_signal(signal.SIGSTOP)
        p.execute_command("CLIENT", "KILL", "TYPE", "replica")
        r.wait_log(r"0 of 1 replicas confirmed a write within 500 ms: answering BUSY", 30)
        busy, acked = load.busy, len(load.acked)
        start = time.monotonic()
        seen = []

        def alive_for_20s():
            status = r.ctl("status", check=False)
            blocked = int(p.info("clients")["blocked_clients"])
            t = time.monotonic() - start
            seen.append((round(t, 1), status.returncode,
                         (re.findall(r"routers: \d+ alive", status.stdout) or [status.stderr[-200:]])[0], blocked))
            assert status.returncode == 0 and "routers: 1 alive" in status.stdout, seen
            # the WAITs sent before the first fell short end within wait_timeout_ms; then one probe at a time
            assert blocked <= 1 or t < 2, f"WAITs piling up: {seen}"
            return t > 20
        wait_for(alive_for_20s, 60, "20 s of the router alive while the replica is stopped", interval=1)
        assert load.busy > busy + 100, "messages were answered BUSY"
        assert len(load.acked) <= acked + load.rate, "no ACK without the replica"
        replica.proc.send_signal(signal.SIGCONT)
        r.wait_log(r"1 of 1 replicas confirm writes again: acknowledging messages", 60)
        wait_for(lambda: len(load.acked) >= acked + 200, 60, "ACKs once the replica is back")
        assert len(log_lines(r, "warn", "replicas confirmed a write")) == 1
        load.stop()
        load.join(timeout=90)
        assert load.error is None, load.error
        assert not load.pending and not load.nacked
    finally:
        replica.proc.send_signal(signal.SIGCONT)
        load.stop()
        r.stop()
        for s in sentinels:
            s.stop()
        primary.stop()
        replica.stop()


def test_sentinels_unreachable_or_not_knowing_the_name_logged_once(tmp_path):
    """No sentinel listening: one warning, however long it lasts; one line when one answers again. A master name
    no sentinel knows: one warning, not one per sentinel asked."""
    ports = [free_port() for _ in range(3)]
    r = sentinel_router(tmp_path, [], 0, ports=ports, wait_ready=False)
    sentinels = []
    typo = None
    try:
        r.wait_log(r"warn: redis sentinel: no sentinel reachable \(tried 3; the last, 127\.0\.0\.1:\d+: .*\)", 20)
        wait_for(lambda: len(re.findall(r"debug: redis sentinel .*trying the next one", r.log())) >= 9, 30,
                 "three rounds of the sentinels tried")
        assert len(log_lines(r, "warn", "redis sentinel")) == 1, log_lines(r, "warn", "redis sentinel")
        dead = free_port()  # the primary they monitor is down: they still name it
        sentinels = [Sentinel(str(tmp_path / f"s{i}"), port, dead) for i, port in enumerate(ports)]
        r.wait_log(r"info: redis sentinel 127\.0\.0\.1:\d+ answers again( and names the primary)? \(master %s\)"
                   % MASTER, 20)
        r.wait_log(r"the sentinels name 127\.0\.0\.1:%d as the primary" % dead, 20)
        assert len(log_lines(r, "warn", "redis sentinel")) == 1
        r.stop()
        typo = sentinel_router(tmp_path / "typo", [], 0, ports=ports, master="typo", wait_ready=False)
        typo.wait_log(r"warn: redis sentinel: no sentinel knows master typo \(asked 3; the last, 127\.0\.0\.1:\d+: "
                      r"no primary for master typo \(unknown name\)\)", 20)
        wait_for(lambda: len(re.findall(r"debug: redis sentinel .*trying the next one", typo.log())) >= 9, 30,
                 "three rounds of the sentinels asked")
        assert len(log_lines(typo, "warn", "")) == 1, log_lines(typo, "warn", "")
    finally:
        r.stop()
        if typo:
            typo.stop()
        for s in sentinels:
            s.stop()


def test_router_config_errors_for_sentinel_and_wait_keys(tmp_path):
    """Settings that would be silently ignored or never work are errors at their file:line:column: wait_replicas
    with the embedded Redis (no replica: BUSY forever), master_name without sentinels; a sentinel written with a
    scheme is quoted as written; a master_name of the wrong type is that one error only."""
    def check(redis_lines):
        path = tmp_path / "router.yaml"
        path.write_text(f"router:\n  state_dir: {tmp_path}/state\nredis:\n" + redis_lines)
        out = subprocess.run([os.path.join(BIN, "omnirouted"), "--check-config", str(path)], capture_output=True,
                             text=True, timeout=30)
        return out.returncode, out.stderr.replace(str(path), "F")
    rc, err = check("  wait_replicas: 1\n")
    assert rc == 1 and re.search(r"^F:4:18: redis.wait_replicas: 1 needs replicas, and the embedded Redis .* has "
                                 r"none", err, re.M), err
    rc, err = check("  master_name: omni\n")
    assert rc == 1 and re.search(r"^F:4:16: redis.master_name: is set but redis.sentinels is not", err, re.M), err
    rc, err = check("  sentinels: []\n  master_name: omni\n")
    assert rc == 1 and re.search(r"^F:5:16: redis.master_name: is set but redis.sentinels is not", err, re.M), err
    rc, err = check("  sentinels: [tcp://127.0.0.1:26379]\n  master_name: omni\n")
    assert rc == 1 and re.search(r'^F:4:15: redis.sentinels\[0\]: "tcp://127.0.0.1:26379" is not HOST:PORT .*'
                                 r'e\.g\. 127\.0\.0\.1:26379; without a scheme', err, re.M), err
    assert "tcp://tcp://" not in err
    rc, err = check("  sentinels: [127.0.0.1:26379]\n  master_name: [a]\n")
    assert rc == 1 and err.count("F:") == 1 and "F:5:16: redis.master_name: expected a string, got a list" in err, err
    rc, err = check("  sentinels: [127.0.0.1:26379]\n")
    assert rc == 1 and "F:4:14: redis.sentinels: needs redis.master_name" in err, err
    rc, err = check("  sentinels: [127.0.0.1:26379]\n  master_name: omni\n  wait_replicas: 1\n")
    assert rc == 0, err


def test_a_host_name_from_the_sentinels_is_not_resolved_in_the_loop(tmp_path):
    """Sentinels with announce-hostnames give the primary as a name: the router would have to resolve it with a
    blocking getaddrinfo inside its loop, so it says so once and does not use it."""
    port = free_port()
    primary = RedisServer(str(tmp_path / "primary"), port=port).start()
    names = "sentinel resolve-hostnames yes\nsentinel announce-hostnames yes\n"
    sentinels = [Sentinel(str(tmp_path / f"s{i}"), free_port(), port, head=names, host="localhost") for i in range(3)]
    r = sentinel_router(tmp_path, sentinels, 0, wait_ready=False)
    try:
        assert sentinels[0]._primary(sentinels[0].client)[0] == "localhost"
        r.wait_log(r"warn: redis: the sentinels name localhost:%d as the primary of .*: a host name, which the router "
                   r"does not resolve while it runs" % port, 20)
        assert "ready: ingest" not in r.log()
    finally:
        r.stop()
        for s in sentinels:
            s.stop()
        primary.stop()
