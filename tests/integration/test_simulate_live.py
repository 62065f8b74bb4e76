"""`omnictl simulate` is the live router, replayed: one policy, one input (messages and a presence change),
one people model, run through the simulation and through a real router driven by the test clock, must place
every conversation the same way, decision by decision (reason, outcome, team, target, agent).

How the live side is driven, and why it matches the simulation by construction:
- The live router's clock is the wall clock plus the test offset, so it moves while the test works: a decision
  the simulation makes at T happens live at T + e, e a few seconds. Every duration here is a whole number of
  hours and the arrivals are 95 s apart within one hour (the presence changes 45 s after one), so every
  instant of the simulation is an input's time plus whole hours, and any two distinct ones are at least 45 s
  apart; the test groups what is due within WINDOW of the earliest pending instant into one
  instant, as the simulation does, and e stays well below WINDOW.
- At each instant the simulation applies the people's events (answers, resolutions, presence) and then runs
  router ticks to a fixed point, then the arrivals. Live, the test moves the clock to just before the instant
  and waits for the router to have read it (it reads the offset a tick after it changes), pauses the router
  (SIGSTOP) while it applies the people's events with omnictl, so none of them is seen alone, and resumes it
  with the clock moved past every trigger of the instant; then it waits until the state is unchanged over
  several due scans. A live decision is therefore up to 1 s before and WINDOW after its simulated instant.
- The people model is the simulation's (--answer-after, --handle-time): the owner of an assignment answers
  ANSWER and resolves HANDLE after the instant of the assignment, each only while that assignment holds.
- No daily quota in the policy: a partner's new day is noticed only by a forced drain, which the router runs
  once a real second and the simulation at every instant.
"""
import datetime
import json
import os
import signal
import subprocess
import time

from harness import BIN, Peer, Router, message, wait_for

H = 3600 * 1000
ANSWER, HANDLE = 2 * H, 3 * H
WINDOW = 30 * 1000
GAP = 95 * 1000

POLICY = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: core, kind: in-house, strategy: least-loaded, calendar: always, offers: {auto_accept: true}}
  - {name: tier2, kind: in-house, strategy: longest-idle, calendar: always, offers: {auto_accept: true}}
  - name: bpo
    kind: outsourced
    strategy: round-robin
    calendar: always
    contract: {categories: [basic, order-status], max_concurrent: 2}
agents:
  - {id: alice, teams: [core], skills: ["technical:3"], capacity: {email: 1, sms: 1, twitter: 1}}
  - {id: bob, teams: [core], capacity: {email: 1, sms: 1, twitter: 1}}
  - {id: tina, teams: [tier2], skills: ["technical:5"], capacity: {email: 2, sms: 2, twitter: 1}}
classification:
  rules:
    - {name: technical, when: {text: ["crash", "error"]}, category: technical, priority: high, skills: ["technical:2"]}
    - {name: orders, when: {text: ["order"]}, category: order-status}
  default_category: basic
routing:
  rules:
    - name: technical
      when: {category: [technical]}
      targets: [{team: core, timeout: 1h}, {team: tier2}]
      queue: core
    - name: basic
      targets: [{team: bpo}, {team: core}]
      queue: core
sla:
  targets:
    - {when: {channel: [twitter]}, first_response: 2h}
    - {first_response: 24h}
  escalate_at: 50
ownership:
  offline_grace: 1h
"""

TEXTS = ["the app shows an error", "where is my order 7781?", "hello, do you ship to Spain?",
         "crash when I pay", "can I change my address", "order 5512 is late"]
CHANNELS = ["email", "sms", "twitter"]


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def scenario(base):
    """36 messages 95 s apart (30 customers, 6 of them writing twice into their open conversation), bob offline
    for two hours from the 11th arrival on."""
    msgs = []
    for k in range(36):
        c = k if k < 30 else k - 25  # the last six write again
        ch = CHANNELS[c % 3]
        frm = {"email": f"c{c}@example.com", "sms": f"+1415555{c:04d}", "twitter": f"{7000 + c}"}[ch]
        m = message(f"m{k}", channel=ch, frm=frm, text=TEXTS[(c + k // 30) % len(TEXTS)] + f" ({k})")
        m["received_at"] = iso(base + k * GAP)
        msgs.append(m)
    presence = [("bob", "offline", base + 10 * GAP + 45000), ("bob", "available", base + 10 * GAP + 45000 + 2 * H)]
    return msgs, presence


def simulate(tmp_path, msgs, presence):
    conf = tmp_path / "sim.yaml"
    conf.write_text("identity:\n  default_country: US\n" + POLICY)
    inp = tmp_path / "in.jsonl"
    lines = [json.dumps(m) for m in msgs]
    lines += [json.dumps({"presence": {"agent": a, "status": s, "at": iso(t)}}) for a, s, t in presence]
    inp.write_text("\n".join(lines) + "\n")
    trace = tmp_path / "trace.jsonl"
    r = subprocess.run([os.path.join(BIN, "omnictl"), "simulate", "--config", str(conf), "--input", str(inp),
                        "--answer-after", "2h", "--handle-time", "3h", "--trace", str(trace)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout, [json.loads(line) for line in trace.read_text().splitlines()]


class Live:
    """The router, the test clock, and the people model applied from outside."""

    def __init__(self, tmp_path, redis_server):
        self.r = Router(str(tmp_path / "live"), redis_server.address, policy=POLICY,
                        env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
        self.redis = redis_server.client()
        self.peer = Peer(self.r.endpoint)
        self.people = []  # (time, order, kind, conv, owner, assignment)
        self.seen = {}  # conv -> assignments count already given to the people model
        self.convs = set()
        self.order = 0

    def close(self):
        self.peer.close()
        self.r.stop()

    def now(self):
        return int(time.time() * 1000) + int(self.redis.get("omni:clock:offset") or 0)

    def set_clock(self, t):
        self.redis.set("omni:clock:offset", max(t, self.now()) - int(time.time() * 1000))

    def snapshot(self):
        out = []
        for c in sorted(self.convs, key=int):
            h = self.redis.hmget(f"omni:conversation:{c}", "status", "owner", "assignments", "queued_on")
            out.append((c, *h, self.redis.llen(f"omni:conversation:{c}:decisions")))
        return out

    def scanned(self):
        return int(self.redis.get("omni:due:scanned") or 0)

    def wait_scanned(self, t):
        wait_for(lambda: self.scanned() >= t, 20, "a due scan at the new time")

    def settle(self):
        """Waits for a due scan at the current time, then until the state stays the same over 5 scans."""
        scanned = self.scanned
        self.wait_scanned(self.now())
        last, stable, deadline = self.snapshot(), 0, time.monotonic() + 30
        while stable < 5:
            n = scanned()
            wait_for(lambda: scanned() > n, 10, "the next due scan")
            s = self.snapshot()
            stable = stable + 1 if s == last else 0
            last = s
            assert time.monotonic() < deadline, "the live router did not settle"

    def observe(self, instant):
        """New assignments made at this instant go to the people model, as simulate's assigned() does."""
        for c in self.convs:
            owner, n, status = self.redis.hmget(f"omni:conversation:{c}", "owner", "assignments", "status")
            if status == "assigned" and n and self.seen.get(c) != n:
                self.seen[c] = n
                for kind, after in (("respond", ANSWER), ("resolve", HANDLE)):
                    self.order += 1
                    self.people.append((instant + after, self.order, kind, c, owner, n))

    def triggers(self):
        """Live times of what the router's due scan will act on next."""
        out = []
        for key, add in (("omni:timers", 0), ("omni:unrouted", 3000), ("omni:agents:offline", H)):
            first = self.redis.zrange(key, 0, 0, withscores=True)
            if first:
                out.append(int(first[0][1]) + add)
        return out


def run_live(live, msgs, presence, horizon):
    arrivals = [(int(datetime.datetime.fromisoformat(m["received_at"].replace("Z", "+00:00")).timestamp() * 1000), m)
                for m in msgs]
    live.people += [(t, -1, "presence", a, s, None) for a, s, t in presence]
    while True:
        trig = live.triggers()
        nominal = [e[0] for e in live.people] + [t for t, _ in arrivals]
        if not nominal and not trig:
            return
        first = min(nominal + trig)
        if first > horizon:
            return
        in_window = lambda t: t < first + WINDOW  # noqa: E731
        # The router reads the test clock's offset a tick after it changes: it has to know the instant before it
        # is paused, or its first tick after would still run at the previous one. Just before the instant, so
        # no trigger of it fires before the people have acted.
        live.set_clock(first - 1000)
        live.wait_scanned(first - 1000)
        # the people first, with the router paused: the simulation applies them all before its ticks
        live.r.proc.send_signal(signal.SIGSTOP)
        try:
            due = sorted(e for e in live.people if in_window(e[0]))
            live.people = [e for e in live.people if not in_window(e[0])]
            for t, _, kind, who, what, n in due:
                if kind == "presence":
                    live.r.ctl("agent", "presence", who, what)
                    continue
                owner, assignments, status = live.redis.hmget(f"omni:conversation:{who}", "owner", "assignments",
                                                              "status")
                if owner == what and assignments == n and status == "assigned":
                    live.r.ctl("conversation", kind, who)
            late = max([t for t in trig if in_window(t)] + [first]) + 1000
            live.set_clock(late)  # past every trigger of this instant
        finally:
            live.r.proc.send_signal(signal.SIGCONT)
        live.settle()
        live.observe(first)
        for t, m in [a for a in arrivals if in_window(a[0])]:
            live.peer.submit(m)
            assert live.peer.recv() == ["OMNI/1", "ACK", m["id"]]
            live.convs.add(live.redis.hget(f"omni:msg:{m['id']}", "conversation"))
            live.settle()
            live.observe(first)
        arrivals = [a for a in arrivals if not in_window(a[0])]


def live_decisions(live):
    out = {}
    for c in live.convs:
        for raw in live.redis.lrange(f"omni:conversation:{c}:decisions", 0, -1):
            d = json.loads(raw)  # an assignment's team is the last target tried
            last = d["tried"][-1] if d["outcome"] == "assigned" else {"team": d.get("queue"), "target": None}
            out.setdefault(c, []).append((d["reason"], d["outcome"], last["team"], last["target"], d.get("owner"),
                                          d["at"]))
    return out


def test_simulate_places_every_conversation_as_the_live_router_does(tmp_path, redis_server):
    # tomorrow, 01:00 UTC (SIMULATE_DAYS_AHEAD=N replays the scenario N days ahead instead)
    ahead = int(os.environ.get("SIMULATE_DAYS_AHEAD", "1"))
    day = datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=ahead)
    base = int(datetime.datetime(day.year, day.month, day.day, 1, tzinfo=datetime.timezone.utc).timestamp() * 1000)
    msgs, presence = scenario(base)
    summary, trace = simulate(tmp_path, msgs, presence)
    sim = {}
    for d in trace:
        sim.setdefault(d["conversation"], []).append(d)
    reasons = {d["reason"] for d in trace}
    assert {"new", "timeout", "capacity freed", "owner offline"} <= reasons, reasons  # the scenario exercises them
    assert {d["team"] for d in trace if d["outcome"] == "assigned"} == {"core", "tier2", "bpo"}

    live = Live(tmp_path, redis_server)
    try:
        live.settle()  # the router knows the test clock
        run_live(live, msgs, presence, base + 30 * 24 * H)
        got = live_decisions(live)
        final = {c: tuple(live.redis.hmget(f"omni:conversation:{c}", "status", "team", "owner")) for c in live.convs}
    finally:
        live.close()

    assert sorted(got, key=int) == sorted(sim, key=int), "the same conversations"
    for c, decisions in sim.items():
        want = [(d["reason"], d["outcome"], d["team"], d["target"], d["agent"]) for d in decisions]
        have = [g[:5] for g in got[c]]
        assert have == want, f"conversation {c}: live {have} != simulated {want}"
        for d, (*_, at) in zip(decisions, got[c]):  # the same instants, up to the live clock's drift
            sim_at = int(datetime.datetime.fromisoformat(d["at"].replace("Z", "+00:00")).timestamp() * 1000)
            assert -1000 <= at - sim_at < WINDOW, (c, d, at)
        last = decisions[-1]
        if last["outcome"] == "assigned":  # the final placement: team and agent
            assert final[c][1:] == (last["team"], last["agent"]) or final[c][0] == "resolved", (c, final[c], last)
    assert "still waiting at the end: 0" in summary, summary
