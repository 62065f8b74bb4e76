"""Routers fanned out: a connector names several routers (router.endpoint as a list); one killed and restarted
under a steady stream takes nothing with it, and every message is stored exactly once. Three routers on one
Redis, one killed and restarted again and again under load, stay correct: nothing lost, nothing twice,
nothing assigned twice."""
import os
import signal
import subprocess
import threading
import time

from harness import BIN, Router, stored_count, wait_for

POLICY = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: core, kind: in-house, calendar: always}
agents:
  - {id: alice, teams: [core], capacity: {other: 20}}
  - {id: bob, teams: [core], capacity: {other: 20}}
routing:
  rules:
    - {name: all, targets: [{team: core}], queue: core}
"""


class Feed(threading.Thread):
    """Appends `total` lines to the template connector's file at `rate` a second, each from its own sender."""

    def __init__(self, path, total, rate):
        super().__init__(daemon=True)
        self.path, self.total, self.rate, self.written = path, total, rate, 0

    def run(self):
        start = time.monotonic()
        with open(self.path, "a") as f:
            while self.written < self.total:
                due = int((time.monotonic() - start) * self.rate) + 1
                while self.written < min(due, self.total):
                    f.write(f"c{self.written}@example.com\tline {self.written}\n")
                    self.written += 1
                f.flush()
                time.sleep(0.01)  # pacing the feed, not waiting for a result


def connector(tmp_path, endpoints):
    src = tmp_path / "feed.txt"
    src.write_text("")
    conf = tmp_path / "template.yaml"
    conf.write_text("router:\n  endpoint: [" + ", ".join(endpoints) + f"]\n  resend_ms: 1000\n"
                    f"spool_dir: {tmp_path}/spool\npoll_ms: 20\ntemplate:\n  path: {src}\n  max_batch: 50\n")
    proc = subprocess.Popen([os.path.join(BIN, "omni-template"), "--config", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "template.log", "w"))
    return proc, src


def check_exactly_once(r, total):
    """Every line stored once: as many message keys as lines, each in exactly one conversation's list once,
    and no conversation held by two owners."""
    assert stored_count(r) == total
    ids = []
    for key in r.scan_iter(match="omni:conversation:*:messages", count=1000):
        ids += r.lrange(key, 0, -1)
    assert len(ids) == total and len(set(ids)) == total
    owners = {}
    for a in ("alice", "bob"):
        for cv in r.smembers(f"omni:agent:{a}:conversations"):
            assert cv not in owners, f"conversation {cv} held by {owners[cv]} and {a}"
            owners[cv] = a


def test_a_connector_with_two_routers_loses_nothing_when_one_dies(tmp_path, redis_server):
    a = Router(str(tmp_path / "a"), redis_server.address, name="a", policy=POLICY).start()
    b = Router(str(tmp_path / "b"), redis_server.address, name="b", policy=POLICY).start()
    r = redis_server.client()
    proc, src = connector(tmp_path, [a.endpoint, b.endpoint])
    total = 1500
    feed = Feed(src, total, rate=250)
    try:
        feed.start()
        wait_for(lambda: stored_count(r) >= 300, 30, "traffic flowing through both routers")
        a.kill()  # SIGKILL, mid-stream: what it took and did not answer is resent to b
        written = feed.written
        # a is still dead: every line written before the kill (some of them sent to a and never answered) is
        # stored by b alone, and the stream goes on through b
        wait_for(lambda: stored_count(r) >= max(written, 700), 30, "b alone stores what a took, and the stream")
        assert a.proc.poll() is not None
        a.start()
        feed.join(timeout=60)
        wait_for(lambda: stored_count(r) == total, 60, f"all {total} lines stored")
        check_exactly_once(r, total)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        a.stop()
        b.stop()


def test_three_routers_one_killed_again_and_again(tmp_path, redis_server):
    routers = [Router(str(tmp_path / n), redis_server.address, name=n, policy=POLICY).start() for n in "abc"]
    r = redis_server.client()
    proc, src = connector(tmp_path, [x.endpoint for x in routers])
    total = 2000
    feed = Feed(src, total, rate=200)
    try:
        feed.start()
        victim = routers[0]
        for round_ in range(3):
            wait_for(lambda: stored_count(r) >= (round_ + 1) * 400, 60, f"traffic before kill {round_ + 1}")
            victim.kill()
            time.sleep(0.5)  # the others carry the stream alone for a while: that is the condition under test
            victim.start()
        feed.join(timeout=60)
        wait_for(lambda: stored_count(r) == total, 90, f"all {total} lines stored")
        check_exactly_once(r, total)
        # every conversation was routed once it was stored: assigned or waiting, none left unrouted for good
        wait_for(lambda: r.zcard("omni:unrouted") == 0, 30, "nothing left unrouted")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        for x in routers:
            x.stop()
