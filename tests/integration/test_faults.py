"""The core promises under faults (`make test-faults`; also part of `make test`).

Three OMNI/1 clients keep a steady load and a ledger of every ACKed id, omni-phonelog follows a growing
call log, agents answer and resolve work through omnictl, and the test clock moves on (in small steps, and
in a jump just before each fault) so target timeouts, SLA escalations and breaches keep falling due. Meanwhile: on an external redis-server,
the router is killed with SIGKILL 20 times and Redis 3 times (restarted from its append-only file); on the
embedded Redis, Redis is killed 2 more times under a running router, which restarts it; the connector is
killed mid-batch in both. Then the load stops, the router is given a bounded time to settle, and the
figures of fault_figures.py are printed on one line and each asserted:

  acked, lost (0), stored twice (0), unowned (0), owned twice (0), over capacity (0), counters off (0),
  timers stranded (0): every conversation whose timeout, escalation point or due time has passed was
  acted on.

Fault moments are random from a seed printed with the figures; FAULT_SEED=N replays a run's schedule
(timing on a busy machine still varies a little).
"""
import os
import random
import signal
import threading
import time

import pytest
import redis

from fault_figures import FIGURES, Model, figures, report, router_now, snapshot
from fault_load import Agents, LoadClient
from harness import Peer, Router, message, stored_count, wait_for
from test_phonelog import Phonelog, cdr

pytestmark = pytest.mark.faults

SEED = int(os.environ.get("FAULT_SEED", "20261130"))
MIN = 60_000
CORE = {"email": 2, "sms": 1, "phone": 1, "twitter": 1}
TIER2 = {"email": 2, "sms": 2, "phone": 1, "twitter": 2}
MODEL = Model(agents={"a1": CORE, "a2": CORE, "a3": CORE, "a4": CORE, "t1": TIER2, "t2": TIER2},
              caps={"core": 0, "tier2": 0, "bpo": 4},
              timeouts={"technical": [3 * MIN, 4 * MIN], "rest": [5 * MIN, 3 * MIN]})


def policy():
    agents = "".join(f"  - {{id: {a}, teams: [{'core' if a[0] == 'a' else 'tier2'}], "
                     f"skills: [\"technical:{2 if a[0] == 'a' else 4}\"], capacity: {cap}}}\n"
                     for a, cap in MODEL.agents.items()).replace("'", "")
    return f"""
calendars:
  - {{name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}}
teams:
  - {{name: core, kind: in-house, strategy: least-loaded, calendar: always, offers: {{auto_accept: true}}}}
  - {{name: tier2, kind: in-house, strategy: round-robin, calendar: always, offers: {{auto_accept: true}}}}
  - name: bpo
    kind: outsourced
    strategy: round-robin
    calendar: always
    contract: {{categories: [basic, order-status], max_concurrent: {MODEL.caps['bpo']}}}
agents:
{agents}
classification:
  rules:
    - {{name: technical, when: {{text: ["crash|error"]}}, category: technical, priority: high, skills: ["technical:2"]}}
    - {{name: orders, when: {{text: ["order"]}}, category: order-status}}
  default_category: basic
routing:
  rules:
    - name: technical
      when: {{category: [technical]}}
      targets: [{{team: tier2, timeout: 3m}}, {{team: core, timeout: 4m}}]
      queue: core
    - name: rest
      targets: [{{team: bpo, timeout: 5m}}, {{team: core, timeout: 3m}}]
      queue: core
sla:
  targets:
    - {{when: {{channel: [twitter]}}, first_response: 6m}}
    - {{first_response: 20m}}
  escalate_at: 50
"""


def pause(seconds):
    """Lets the load run on: the pace of the run and the random moment of a fault, not a wait for
    readiness (every readiness wait here is a wait_for with a deadline)."""
    threading.Event().wait(seconds)


class CallLog(threading.Thread):
    """The PBX: appends a few missed calls to Master.csv every 0.3 s while omni-phonelog follows it."""

    def __init__(self, path, tag):
        super().__init__(name="calllog", daemon=True)
        self.path, self.tag, self.ids, self.stopping = path, tag, [], threading.Event()
        open(path, "a").close()

    def run(self):
        n = 0
        while not self.stopping.wait(0.3):
            lines = []
            for _ in range(8):
                uid = f"{self.tag}.{n}"
                lines.append(cdr(uid, caller=f"+1415700{n % 40:04d}"))
                self.ids.append(f"phone:pbx:{uid}")
                n += 1
            with open(self.path, "a") as f:
                f.write("".join(lines))


class FaultRun:
    """One store under load and faults: start(), run(schedule of fault kinds), then finish() settles, prints
    the figures and asserts them."""

    def __init__(self, label, router, client, tmp_path, seed, redis_server=None):
        self.label, self.router, self.r, self.redis_server = label, router, client, redis_server
        self.rnd = random.Random(seed)
        self.kills = {"router": 0, "redis": 0, "connector": 0}
        self.clients = [LoadClient(router.endpoint, i, seed * 10 + i) for i in range(3)]
        holders = [f"omni:agent:{a}:conversations" for a in MODEL.agents] + ["omni:team:bpo:conversations"]
        self.agents = Agents(router, client, holders, seed + 7)
        os.makedirs(tmp_path / "phonelog", exist_ok=True)
        self.calls = CallLog(str(tmp_path / "phonelog" / "Master.csv"), f"{label}{seed}")
        self.phonelog = Phonelog(tmp_path / "phonelog", router.endpoint)

    def start(self):
        self.phonelog.start()
        for t in self.clients + [self.agents, self.calls]:
            t.start()

    def tick_clock(self, lo=15, hi=45):
        """Moves the test clock lo..hi seconds: timers fall due in small bursts, as in a busy hour."""
        self.router.ctl("clock", "advance", f"{self.rnd.randint(lo, hi)}s", check=False)

    def run(self, schedule, gap=(1.0, 3.0)):
        """Runs the faults of schedule (a list of kinds) in order, `gap` seconds of load and clock apart.
        Before each, the clock jumps 4-10 minutes, so that many timeouts and escalations fall due at once (as
        after a quiet spell or a restart), and the fault lands at a random moment of the next 100 ms, while
        the router works through them."""
        for kind in schedule:
            end = time.monotonic() + self.rnd.uniform(*gap)
            while time.monotonic() < end:
                self.tick_clock()
                pause(0.25)
            self.tick_clock(240, 600)
            pause(self.rnd.uniform(0, 0.1))
            getattr(self, "kill_" + kind)()
            self.kills[kind] += 1

    def kill_router(self):
        self.router.kill(signal.SIGKILL)
        pause(self.rnd.uniform(0, 0.3))
        self.router.start()

    def kill_redis(self):
        back = self.router.log().count("redis is back")
        if self.redis_server:  # external: restarted from its append-only file, as an operator's unit would
            self.redis_server.stop(signal.SIGKILL)
            pause(self.rnd.uniform(0, 0.3))
            self.redis_server.start()
        else:  # embedded: the router notices and restarts it
            with open(os.path.join(self.router.state, "redis", "redis.pid")) as f:
                os.kill(int(f.read()), signal.SIGKILL)
        wait_for(lambda: self.router.log().count("redis is back") > back, 30, "the router back on redis")

    def kill_connector(self):
        self.phonelog.proc.kill()
        self.phonelog.proc.wait(timeout=10)
        self.phonelog.log.close()
        self.phonelog.start()

    def finish(self, capsys):
        self.calls.stopping.set()
        self.calls.join()
        for c in self.clients:
            c.stop()
        for c in self.clients:
            c.join(timeout=120)
        calls = set(self.calls.ids)
        wait_for(lambda: all(self.r.exists(f"omni:msg:{i}") for i in calls), 60, "every call in the log stored")
        self.agents.stop()
        self.agents.join(timeout=60)
        self.phonelog.stop()
        acked = set().union(*(c.acked for c in self.clients))
        bad, snap = self.settle(acked | calls)
        reasons = [d.get("reason") for _, _, ds in snap["conv"].values() for d in ds]
        moves = {w: reasons.count(w) for w in ("timeout", "escalation", "capacity freed")}
        extra = (f"calls={len(calls)} kills={self.kills} conversations={len(snap['conv'])} "
                 f"resolved={self.agents.resolved} responded={self.agents.responded} "
                 f"moves={moves} seed={SEED}")
        with capsys.disabled():
            print("\n" + report(self.label, len(acked) + len(calls), bad, extra))
        for c in self.clients + [self.agents]:
            assert c.error is None, f"{c.name}: {c.error}"
        for c in self.clients:
            assert not c.nacked and not c.pending, (c.name, c.nacked[:3], list(c.pending)[:3])
        assert len(acked) > 300 and len(calls) > 50
        assert moves["timeout"] > 0 and moves["escalation"] > 0, "no timer fell due: the run tests nothing"
        for f in FIGURES:
            n = len(bad.get(f, []))
            assert n == 0, f"{f}={n}: " + "; ".join(bad[f][:3])

    def settle(self, ledger, seconds=30):
        """Gives the router up to `seconds` to act on what fell due. Each look judges the timers against
        the clock as it was before the router ticked for at least a second more; while something is
        still unsettled the clock moves on 30 s, so any lease or grace measured in router time expires."""
        deadline = time.monotonic() + seconds
        while True:
            wall = int(time.time() * 1000)
            now = router_now(self.r)
            wait_for(lambda: self.ticked_after(wall + 1000), 20, "the router to tick on")
            snap = snapshot(self.r, MODEL, ledger)
            bad = figures(snap, MODEL, now)
            if not any(bad.values()) or time.monotonic() > deadline:
                return bad, snap
            self.router.ctl("clock", "advance", "30s")

    def ticked_after(self, wall_ms):
        """True once the running router published its status (once a second, from its tick) after wall_ms."""
        for key in self.r.scan_iter("omni:router:*"):
            h = self.r.hgetall(key)
            if h.get("pid") == str(self.router.proc.pid) and int(h.get("updated_at", 0)) >= wall_ms:
                return True
        return False


def router_for(tmp_path, redis_address):
    return Router(str(tmp_path), redis_address, policy=policy(), env={"OMNIROUTER_TEST_CLOCK": "1"}).start()


def test_faults_external_redis_router_killed_20_times_redis_3(tmp_path, redis_server, capsys):
    router = router_for(tmp_path, redis_server.address)
    run = FaultRun("external", router, redis_server.client(), tmp_path, SEED, redis_server)
    schedule = ["router"] * 20 + ["redis"] * 3 + ["connector"] * 2
    random.Random(SEED).shuffle(schedule)
    run.start()
    try:
        run.run(schedule)
        run.finish(capsys)
    finally:
        router.stop()


def test_faults_embedded_redis_killed_twice_under_the_router(tmp_path, capsys):
    router = router_for(tmp_path, None)
    client = redis.Redis(unix_socket_path=os.path.join(router.state, "redis", "redis.sock"), decode_responses=True,
                         socket_timeout=10)
    run = FaultRun("embedded", router, client, tmp_path, SEED + 1)
    run.start()
    try:
        run.run(["redis", "connector", "redis"], gap=(4.0, 8.0))
        run.finish(capsys)
    finally:
        router.stop()


def test_phonelog_killed_mid_batch_loses_nothing(router, tmp_path):
    """SIGKILL while the connector holds calls it has read but the router has not answered: on restart its
    spool resends them and its saved position goes on from there; each call is stored exactly once."""
    admin = router.redis_server.client()
    csv = tmp_path / "Master.csv"
    ids = [f"phone:pbx:1771000000.{i}" for i in range(400)]
    csv.write_text("".join(cdr(i[10:], caller=f"+1415701{n % 30:04d}") for n, i in enumerate(ids[:200])))
    conn = Phonelog(tmp_path, router.endpoint).start()
    spool = tmp_path / "spool" / "spool.log"
    try:
        wait_for(lambda: stored_count(admin) >= 50, 30, "the first calls stored")
        admin.execute_command("CLIENT", "PAUSE", "60000", "WRITE")  # from here nothing is answered
        size = spool.stat().st_size
        with open(csv, "a") as f:
            f.write("".join(cdr(i[10:], caller=f"+1415701{n % 30:04d}") for n, i in enumerate(ids[200:])))
        wait_for(lambda: spool.stat().st_size > size + 20000, 30, "the connector to spool the second batch")
        conn.proc.kill()
        conn.proc.wait(timeout=10)
        conn.log.close()
        # judged before the router may write again: it still holds what it received unanswered, and stores
        # that once unpaused (the resends from the spool are then duplicates)
        assert stored_count(admin) < len(ids), "the kill came too late to be in the middle of the work"
        admin.execute_command("CLIENT", "UNPAUSE")
        conn = Phonelog(tmp_path, router.endpoint).start()
        wait_for(lambda: all(admin.exists(f"omni:msg:{i}") for i in ids), 60, "every call stored")
        assert stored_count(admin) == len(ids)
        listed = [m for c in range(1, int(admin.get("omni:seq:conversation")) + 1)
                  for m in admin.lrange(f"omni:conversation:{c}:messages", 0, -1)]
        assert sorted(listed) == sorted(ids)
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        conn.stop()


def test_the_figures_see_each_offence(tmp_path, redis_server):
    """The checker must be able to fail: offences planted in a real router's Redis each show in their figure."""
    router = router_for(tmp_path, redis_server.address)
    r = redis_server.client()
    peer = Peer(router.endpoint)
    ids = [f"fig:{i}" for i in range(4)]
    for i, text in zip(ids, ["crash on start", "the app shows an error", "where is my order", "hello"]):
        peer.submit(message(i, frm=i[4:] + "@example.com", text=text))
        assert peer.recv() == ["OMNI/1", "ACK", i]
    peer.close()
    wait_for(lambda: all(r.hget(f"omni:conversation:{c}", "status") == "assigned" for c in range(1, 5)), 10,
             "the four conversations assigned")
    router.stop()  # from here Redis holds still
    now = router_now(r)

    def count(ledger=ids, at=now):
        bad = figures(snapshot(r, MODEL, ledger), MODEL, at)
        return {f: len(bad.get(f, [])) for f in FIGURES}
    assert count() == dict.fromkeys(FIGURES, 0)
    # an hour on with no router: each one's target timeout, escalation point and due time passed, none acted on
    assert count(at=now + 60 * MIN)["timers_stranded"] == 12
    r.rpush("omni:conversation:2:messages", "fig:3")  # fig:3 is conversation 4's
    r.hset("omni:conversation:3", "status", "open")  # a partner's: no agent counter involved
    owner = r.hget("omni:conversation:2", "owner")[len("agent:"):]
    other = "a1" if owner != "a1" else "a2"
    r.sadd(f"omni:agent:{other}:conversations", 2)  # held by a second agent, whose load says nothing of it
    r.hset(f"omni:agent:{owner}", "load:email", 5)  # over capacity 2, and not what it holds
    assert count(ids + ["fig:never-stored"]) == {"lost": 1, "stored_twice": 1, "unowned": 1, "owned_twice": 1,
                                                  "over_capacity": 1, "counters_off": 2, "timers_stranded": 0}
