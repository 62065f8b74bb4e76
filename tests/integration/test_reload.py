"""Reload (SIGHUP, omnictl reload): a valid configuration is applied at once and work in flight is untouched;
an invalid one is refused with every error at its file:line:column and the running one stays; keys a reload
cannot change keep their running value, with a warning; the version each router runs shows in status; under
a steady load, reloads with alternating policies lose nothing, store nothing twice and leave nothing unrouted."""
import os
import re
import signal

from fault_load import LoadClient
from harness import Peer, Router, message, wait_for

HEAD = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: core, kind: in-house, calendar: always}
  - {name: tier2, kind: in-house, calendar: always}
agents:
  - {id: alice, teams: [core], capacity: {email: 5}}
  - {id: tina, teams: [tier2], capacity: {email: 5}}
"""
TO_CORE = HEAD + """
routing:
  rules:
    - {name: all, targets: [{team: core}], queue: core}
"""
TO_TIER2 = HEAD + """
routing:
  rules:
    - {name: all, targets: [{team: tier2}], queue: tier2}
"""


def send(r, peer, id, frm):
    peer.submit(message(id, channel="email", frm=frm, text="hello"))
    assert peer.recv() == ["OMNI/1", "ACK", id]
    conv = r.redis.hget(f"omni:msg:{id}", "conversation")
    return wait_for(lambda: r.redis.hget(f"omni:conversation:{conv}", "owner"), 10, f"conversation {conv} routed")


def rewrite(r, policy, extra_router=""):
    """The test's config with another policy (and router keys), written in place as an operator would."""
    text = open(r.config).read()
    head = text[:text.index("\ncalendars:")] if "\ncalendars:" in text else text
    if extra_router:
        head = head.replace("router:\n", "router:\n" + extra_router, 1)
    with open(r.config, "w") as f:
        f.write(head + policy)


def version_of(r):
    out = r.ctl("status").stdout
    return re.search(r"configuration version ([0-9a-f]{12})", out).group(1), out


def test_reload_applies_a_valid_config_and_refuses_an_invalid_one(tmp_path, redis_server):
    r = Router(str(tmp_path), redis_server.address, policy=TO_CORE).start()
    r.redis = redis_server.client()
    peer = Peer(r.endpoint)
    try:
        assert send(r, peer, "r1", "a@example.com") == "agent:alice"
        before, _ = version_of(r)

        rewrite(r, TO_TIER2)
        out = r.ctl("reload").stdout
        assert re.search(r"router \S+: applied version ([0-9a-f]{12})", out), out
        after = re.search(r"applied version ([0-9a-f]{12})", out).group(1)
        assert after != before
        assert send(r, peer, "r2", "b@example.com") == "agent:tina"  # the new policy decides new work
        assert r.redis.hget("omni:conversation:1", "owner") == "agent:alice"  # work in flight untouched
        v, out = version_of(r)
        assert v == after and f"last reload: applied version {after}" in out, out

        # omnictl checks first: with an error it prints it at its place and signals nothing
        rewrite(r, TO_TIER2.replace("capacity: {email: 5}}\n  - {id: tina", "capacity: {email: 5}}\n  - {id: tina, tems: [x]"))
        bad = r.ctl("reload", check=False)
        assert bad.returncode == 1 and re.search(r"router\.yaml:\d+:\d+: agents\[1\]\.tems", bad.stderr), bad
        # the router, signalled directly, refuses it with every error and keeps running what it had
        os.kill(r.proc.pid, signal.SIGHUP)
        r.wait_log(r"reload: .*router\.yaml:\d+:\d+: agents\[1\]\.tems")
        r.wait_log(r"reload refused: 1 error in .*; running version " + after)
        name = r.redis.zrange("omni:routers", 0, -1)[0]  # omnictl cannot read a broken config: Redis can
        wait_for(lambda: (r.redis.hget(f"omni:router:{name}", "reload") or "").startswith("refused: 1 error"), 10,
                 "the router publishes the refusal")
        assert send(r, peer, "r3", "c@example.com") == "agent:tina"

        # keys a reload cannot change keep their running value, and the log says so
        rewrite(r, TO_CORE, extra_router="  ipc_mode: \"0600\"\n")
        out = r.ctl("reload").stdout
        assert "applied version" in out, out
        r.wait_log(r"reload: router\.ipc_mode changed in .*: a reload keeps the running value; restart to apply it")
        assert send(r, peer, "r4", "d@example.com") == "agent:alice"
        assert oct(os.stat(r.endpoint[len("ipc://"):]).st_mode & 0o777) == "0o660"  # the socket kept its mode
    finally:
        peer.close()
        r.stop()


def test_systemd_hears_ready_reloading_and_stopping(tmp_path, redis_server):
    """The sd_notify protocol as systemd's Type=notify sees it, on a socket of the test's own."""
    import socket
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    heard = []

    def hear(what):
        while not any(what in m for m in heard):
            heard.append(sock.recv(4096).decode())
        return next(m for m in heard if what in m)

    r = Router(str(tmp_path), redis_server.address, policy=TO_CORE,
               env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}).start()
    try:
        hear("READY=1")
        hear("WATCHDOG=1")  # from the loop, at half of WatchdogSec
        heard.clear()
        os.kill(r.proc.pid, signal.SIGHUP)
        assert re.search(r"RELOADING=1\nMONOTONIC_USEC=\d+", hear("RELOADING=1"))
        assert "STATUS=accepting messages (configuration reloaded)" in hear("READY=1")
        assert heard.index(hear("RELOADING=1")) < heard.index(hear("READY=1"))
        status = hear("STATUS=accepting messages: ")  # the live counts, once a second
        assert re.search(r"STATUS=accepting messages: \d+ stored, \d+ duplicates, \d+ refused, \d+ in flight; "
                         r"\d+ assigned, \d+ queued, \d+ moved; configuration [0-9a-f]{12}", status), status
        # a reload while Redis is away does not tell systemd the router accepts messages again
        redis_server.stop()
        hear("STATUS=redis unreachable; answering BUSY")
        heard.clear()
        os.kill(r.proc.pid, signal.SIGHUP)
        ready = hear("READY=1")
        assert "accepting" not in ready and "answering BUSY" in ready, ready
        redis_server.start()
        hear("STATUS=accepting messages")
        heard.clear()
        r.proc.send_signal(signal.SIGTERM)
        hear("STOPPING=1")
        assert r.proc.wait(timeout=20) == 0
    finally:
        r.kill()
        sock.close()


LOAD_HEAD = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: core, kind: in-house, calendar: always}
  - {name: tier2, kind: in-house, calendar: always}
agents:
  - {id: alice, teams: [core], capacity: {email: 40, sms: 40, twitter: 40}}
  - {id: tina, teams: [tier2], capacity: {email: 40, sms: 40, twitter: 40}}
"""
LOAD_POLICIES = [LOAD_HEAD + "routing:\n  rules:\n    - {name: all, targets: [{team: core}], queue: core}\n",
                 LOAD_HEAD + "routing:\n  rules:\n    - {name: all, targets: [{team: tier2}], queue: tier2}\n"]


def test_reloads_under_load_lose_nothing(tmp_path, redis_server):
    """A client at a steady 120 messages a second (resending what is unanswered, as a connector does) while the
    router is sent SIGHUP six times, the policy alternating between two teams: every ACKed message is stored
    once and its conversation routed, nothing is NACKed, nothing is left unanswered, and both policies routed
    work (each reload took effect while messages were in flight)."""
    r = Router(str(tmp_path), redis_server.address, policy=LOAD_POLICIES[0]).start()
    rd = redis_server.client()
    load = LoadClient(r.endpoint, 0, seed=11, rate=120, customers=200, drain_s=60)
    try:
        load.start()
        wait_for(lambda: len(load.acked) >= 100, 30, "messages ACKed before the first reload")
        for i in range(1, 7):
            rewrite(r, LOAD_POLICIES[i % 2])
            at = len(load.acked)
            os.kill(r.proc.pid, signal.SIGHUP)
            wait_for(lambda: len(re.findall(r"reload: .*version [0-9a-f]{12} applied", r.log())) == i, 15,
                     f"reload {i} applied")
            wait_for(lambda: len(load.acked) >= at + 60, 30, f"ACKs flowing after reload {i}")
        load.stop()
        load.join(timeout=90)
        assert load.error is None, load.error
        assert not load.pending, f"{len(load.pending)} messages never answered"
        assert not load.nacked, load.nacked
        assert "reload refused" not in r.log()
        missing = [id for id in load.acked if not rd.exists(f"omni:msg:{id}")]
        assert not missing, f"{len(missing)} ACKed messages not stored, e.g. {missing[:5]}"
        ids = []
        for key in rd.scan_iter(match="omni:conversation:*:messages", count=1000):
            ids += rd.lrange(key, 0, -1)
        assert len(ids) == len(set(ids)), "a message stored twice"
        assert set(load.acked) <= set(ids), "an ACKed message in no conversation"
        convs = {rd.hget(f"omni:msg:{id}", "conversation") for id in load.acked}

        def routed():
            return [cv for cv in convs if rd.hget(f"omni:conversation:{cv}", "status")
                    not in ("offered", "assigned", "queued")]
        wait_for(lambda: not routed(), 20, "every conversation routed")
        teams = {rd.hget(f"omni:conversation:{cv}", "team") or rd.hget(f"omni:conversation:{cv}", "queued_on")
                 for cv in convs}
        assert teams == {"core", "tier2"}, teams
        print(f"\n  reload under load: {len(load.acked)} ACKed, {load.busy} BUSY, {len(convs)} conversations, "
              f"6 reloads, statuses {sorted(rd.hget(f'omni:conversation:{cv}', 'status') for cv in convs)[:3]}...")
    finally:
        load.stop()
        r.stop()


def test_work_waiting_on_a_team_a_reload_removed_is_planned_again(tmp_path, redis_server):
    """A reload that removes a team: what waited in its queue would wait there for good (no drain serves a team
    the policy lacks, and its plan never expires). It is planned again by the new policy's rules at once."""
    small = HEAD.replace("{id: alice, teams: [core], capacity: {email: 5}}", "{id: alice, teams: [core], capacity: {email: 1}}")
    r = Router(str(tmp_path), redis_server.address, policy=small + TO_CORE[len(HEAD):]).start()
    r.redis = redis_server.client()
    peer = Peer(r.endpoint)
    try:
        assert send(r, peer, "w1", "a@example.com") == "agent:alice"
        for i, frm in ((2, "b@example.com"), (3, "c@example.com")):
            peer.submit(message(f"w{i}", channel="email", frm=frm, text="hello"))
            assert peer.recv() == ["OMNI/1", "ACK", f"w{i}"]
        waiting = [r.redis.hget(f"omni:msg:w{i}", "conversation") for i in (2, 3)]
        for cv in waiting:
            wait_for(lambda cv=cv: r.redis.hget(f"omni:conversation:{cv}", "queued_on") == "core", 10, f"{cv} queued")
        without_core = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: tier2, kind: in-house, calendar: always}
agents:
  - {id: tina, teams: [tier2], capacity: {email: 5}}
routing:
  rules:
    - {name: all, targets: [{team: tier2}], queue: tier2}
"""
        rewrite(r, without_core)
        assert "applied version" in r.ctl("reload").stdout
        for cv in waiting:
            wait_for(lambda cv=cv: r.redis.hget(f"omni:conversation:{cv}", "owner") == "agent:tina", 15,
                     f"conversation {cv} planned again and served by tier2")
        assert r.redis.zcard("omni:queue:core:p3") == 0 and r.redis.smembers("omni:teams") == {"tier2"}
        assert r.redis.hget("omni:conversation:1", "owner") == "agent:alice"  # held work keeps its owner
    finally:
        peer.close()
        r.stop()


def test_omnictl_reload_that_signals_nobody_fails(tmp_path, redis_server):
    """A file whose Redis settings name no running router (here another key_prefix: a reload could not apply it
    anyway) reloads nothing: omnictl says so and exits 1, not 0."""
    r = Router(str(tmp_path), redis_server.address, policy=TO_CORE).start()
    try:
        text = open(r.config).read()
        assert "redis:\n" in text
        with open(r.config, "w") as f:
            f.write(text.replace("redis:\n", "redis:\n  key_prefix: \"x:\"\n", 1))
        out = r.ctl("reload", check=False)
        assert out.returncode == 1 and "no router is running with this configuration's Redis" in out.stderr, out
    finally:
        r.stop()


def test_an_agent_a_reload_removed_can_still_be_shown_and_set_offline(tmp_path, redis_server):
    """Work held by an agent the policy no longer names keeps its owner; omnictl can still show that agent and
    set it offline, so that ownership.offline_grace hands the work on."""
    r = Router(str(tmp_path), redis_server.address, policy=TO_CORE).start()
    r.redis = redis_server.client()
    peer = Peer(r.endpoint)
    try:
        assert send(r, peer, "g1", "a@example.com") == "agent:alice"
        rewrite(r, TO_TIER2.replace("  - {id: alice, teams: [core], capacity: {email: 5}}\n", ""))
        assert "applied version" in r.ctl("reload").stdout
        shown = r.ctl("agent", "show", "alice", check=False)
        assert shown.returncode == 0 and "agent alice" in shown.stdout, shown
        assert 'agent "alice" is not in' in shown.stderr, shown
        assert r.ctl("agent", "presence", "alice", "offline", check=False).returncode == 0
        assert r.redis.hget("omni:agent:alice", "presence") == "offline"
        assert r.redis.zscore("omni:agents:offline", "alice") is not None  # its grace runs: then its work moves
        nobody = r.ctl("agent", "show", "nobody", check=False)
        assert nobody.returncode == 2 and 'no agent "nobody"' in nobody.stderr, nobody
    finally:
        peer.close()
        r.stop()


def test_omnictl_reload_signals_only_a_router(tmp_path, redis_server):
    """A router's entry in Redis outlives it by its TTL; the pid it names may already be another program's by
    then. omnictl reload signals only a pid that runs omnirouted: anything else is said, not signalled."""
    import socket
    import subprocess
    import time
    r = Router(str(tmp_path), redis_server.address, policy=TO_CORE)  # its config only: no router runs
    other = subprocess.Popen(["sleep", "60"])
    try:
        name = f"{socket.gethostname()}:{other.pid}"
        client = redis_server.client()
        client.hset(f"omni:router:{name}", mapping={"pid": other.pid, "reloads": 0})
        client.expire(f"omni:router:{name}", 30)
        client.zadd("omni:routers", {name: int(time.time() * 1000) + 30000})
        out = r.ctl("reload", check=False)
        assert out.returncode == 1, out
        assert f"router {name}: pid {other.pid} is not omnirouted" in out.stdout, out
        assert other.poll() is None, "omnictl reload sent SIGHUP to a program that is not a router"
    finally:
        other.kill()
        other.wait()
