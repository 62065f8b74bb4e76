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
    def __init__(self, directory, port, primary_port):
        self.dir, self.port = directory, port
        os.makedirs(directory, exist_ok=True)
        self.conf = os.path.join(directory, "sentinel.conf")
        with open(self.conf, "w") as f:
            f.write(f"port {port}\nbind 127.0.0.1\ndir {directory}\nlogfile {directory}/sentinel.log\n"
                    f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n"
                    f"sentinel down-after-milliseconds {MASTER} 1000\n"
                    f"sentinel failover-timeout {MASTER} 4000\n")
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


def cluster(tmp_path):
    p_port, r_port = free_port(), free_port()
    primary = RedisServer(str(tmp_path / "primary"), port=p_port).start()
    replica = RedisServer(str(tmp_path / "replica"), port=r_port,
                          extra=["--replicaof", "127.0.0.1", str(p_port)]).start()
    wait_for(lambda: replica.client().info("replication").get("master_link_status") == "up", 30,
             "the replica in sync (its link up, not only connected)")
    sentinels = [Sentinel(str(tmp_path / f"s{i}"), free_port(), p_port) for i in range(3)]
    return primary, replica, sentinels


def sentinel_router(tmp_path, sentinels, wait_replicas):
    r = Router(str(tmp_path / "router"), None, policy=POLICY)
    text = open(r.config).read()
    redis_section = ("redis:\n  sentinels: [" + ", ".join(f"127.0.0.1:{s.port}" for s in sentinels) + "]\n"
                     f"  master_name: {MASTER}\n  wait_replicas: {wait_replicas}\n  wait_timeout_ms: 500\n"
                     "  timeout_ms: 2000\n  reconnect_ms: 20\n")
    head, rest = text.split("redis:\n", 1)
    rest = rest.split("identity:\n", 1)[1]
    with open(r.config, "w") as f:
        f.write(head + redis_section + "identity:\n" + rest)
    return r.start()


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
        # the old primary comes back: the sentinels make it a replica of the new one, so WAIT 1 is met again
        primary.start()
        acked_at_failover = len(load.acked)
        wait_for(lambda: len(load.acked) >= acked_at_failover + 200, 60, "ACKs resume through the new primary")
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
    for cv in convs:  # every conversation routed: assigned or waiting, none left unrouted
        assert new.hget(f"omni:conversation:{cv}", "status") in ("offered", "assigned", "queued"), cv
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
