"""Reload (SIGHUP, omnictl reload): a valid configuration is applied at once and work in flight is untouched;
an invalid one is refused with every error at its file:line:column and the running one stays; keys a reload
cannot change keep their running value, with a warning; the version each router runs shows in status."""
import os
import re
import signal

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
        heard.clear()
        r.proc.send_signal(signal.SIGTERM)
        hear("STOPPING=1")
        assert r.proc.wait(timeout=20) == 0
    finally:
        r.kill()
        sock.close()
