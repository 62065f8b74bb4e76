"""The hybrid-staffing scenario at scale: two in-house teams and two partners, 10,000 messages over five
channels from 2,000 customers, with agents resolving work while it arrives. Invariants are sampled while
it runs (capacity, contract caps, quotas) and checked in full at the end; per-team counts are printed.
The same scenario split between two routers on one Redis must keep the same invariants."""
import collections
import json
import random
import threading

import pytest

from harness import Router, start_submit, stored_count, wait_for
from lua_contract import Scripts

CAP = {"a": {"email": 4, "sms": 3, "phone": 1, "twitter": 3, "facebook": 3},
       "t": {"email": 3, "sms": 2, "phone": 1, "twitter": 2, "facebook": 2},
       "p": {"email": 5, "sms": 5, "phone": 0, "twitter": 5, "facebook": 5}}
AGENTS = [(f"a{i}", "core", "a") for i in range(6)] + [(f"t{i}", "tech", "t") for i in range(4)] + \
         [(f"p{i}", "bpo2", "p") for i in range(3)]
PARTNER_CATEGORIES = {"bpo1": {"basic", "faq", "order-status"}, "bpo2": {"basic", "faq"}}
BPO1_MAX, BPO1_QUOTA, BPO2_MAX = 40, 600, 20


def policy():
    agents = "".join(
        f"  - id: {a}\n    teams: [{team}]\n    skills: [\"technical:3\"]\n    capacity: {json.dumps(CAP[kind])}\n"
        for a, team, kind in AGENTS)
    return f"""
calendars:
  - name: always
    timezone: UTC
    hours: ["mon-sun 00:00-24:00"]
teams:
  - {{name: core, kind: in-house, strategy: least-loaded, calendar: always, offers: {{auto_accept: true}}}}
  - {{name: tech, kind: in-house, strategy: longest-idle, calendar: always, offers: {{auto_accept: true}}}}
  - name: bpo1
    kind: outsourced
    strategy: round-robin
    calendar: always
    offers: {{auto_accept: true}}
    contract: {{categories: [basic, faq, order-status], max_concurrent: {BPO1_MAX}, daily_quota: {BPO1_QUOTA}}}
  - name: bpo2
    kind: outsourced
    strategy: round-robin
    calendar: always
    offers: {{auto_accept: true}}
    contract: {{categories: [basic, faq], max_concurrent: {BPO2_MAX}}}
agents:
{agents}
classification:
  rules:
    - {{name: technical, when: {{text: ["crash|error|outage"]}}, category: technical, priority: high}}
    - {{name: orders, when: {{text: ["order"]}}, category: order-status}}
    - {{name: faq, when: {{text: ["how do i"]}}, category: faq, priority: low}}
  default_category: basic
routing:
  rules:
    - name: vip-and-technical-in-house
      when: {{any: [{{tier: [vip]}}, {{category: [technical]}}]}}
      targets: [{{team: tech}}, {{team: core}}]
      queue: core
    - name: partners-first
      targets: [{{team: bpo1}}, {{team: bpo2}}, {{team: core}}]
      queue: core
sla:
  targets:
    - {{when: {{channel: [twitter, facebook]}}, first_response: 1h}}
    - {{first_response: 24h}}
customers:
  vip: ["email:vip*"]
"""


TEXTS = ["my order {n} has not arrived", "the app shows an error {n}", "how do i change my address {n}",
         "hello, question about product {n}", "site outage again {n}", "please call me back about {n}"]


def messages(n=10000, customers=2000, seed=7):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        c = rnd.randrange(customers)
        ch = ("email", "sms", "phone", "twitter", "facebook")[rnd.randrange(5)]
        frm = {"email": f"{'vip' if c % 50 == 0 else 'c'}{c}@example.com", "sms": f"+1415555{c:04d}",
               "phone": f"+1415555{c:04d}", "twitter": str(100000 + c), "facebook": str(900000 + c)}[ch]
        text = "" if ch == "phone" else TEXTS[rnd.randrange(len(TEXTS))].format(n=i)
        out.append({"id": f"sc:{i}", "channel": ch, "from": {"id": frm},
                    "received_at": "2026-11-22T08:00:00Z", "text": text})
    return out


class Invariants:
    """Samples loads while the scenario runs; any breach is kept to fail the test at the end."""

    def __init__(self, r):
        self.r, self.breaches, self.samples, self.stop = r, [], 0, threading.Event()

    def check(self):
        for a, _, kind in AGENTS:
            h = self.r.hgetall(f"omni:agent:{a}")
            for ch, cap in CAP[kind].items():
                if int(h.get(f"load:{ch}", 0)) > cap:
                    self.breaches.append(f"{a} {ch} {h.get(f'load:{ch}')} > {cap}")
        for team, cap in (("bpo1", BPO1_MAX), ("bpo2", BPO2_MAX)):
            if self.r.scard(f"omni:team:{team}:conversations") > cap:
                self.breaches.append(f"{team} load over {cap}")
        for key in self.r.keys("omni:team:bpo1:quota:*"):
            if int(self.r.get(key)) > BPO1_QUOTA:
                self.breaches.append(f"bpo1 quota over {BPO1_QUOTA}")
        self.samples += 1

    def run(self):
        while not self.stop.wait(0.05):
            self.check()


def resolver(r, stop, resolved):
    """Agents at work: resolves assigned conversations (oldest first) while messages arrive."""
    scripts = Scripts(r)
    while not stop.wait(0.02):
        for key in r.keys("omni:agent:*:conversations")[:20] + r.keys("omni:team:bpo1:conversations"):
            for cv in list(r.smembers(key))[:2]:
                r_ = scripts.call("resolve", caller="operator:scenario", conversation=cv, who="scenario",
                                  now=1_800_000_000_000)
                if r_[0] == "resolved":  # not resolved or moved meanwhile by a router
                    resolved.append(cv)


def run_scenario(routers, redis_client, tmp_path, capsys):
    msgs = messages()
    inv = Invariants(redis_client)
    stop, resolved = threading.Event(), []
    threads = [threading.Thread(target=inv.run), threading.Thread(target=resolver, args=(redis_client, stop, resolved))]
    [t.start() for t in threads]
    procs = [start_submit(r.endpoint, str(tmp_path / f"spool{i}"), msgs[i::len(routers)], timeout=300, quiet=True)
             for i, r in enumerate(routers)]
    try:
        for p in procs:
            out, _ = p.communicate(timeout=400)
            assert p.returncode == 0 and "nacked=0" in out, out
    finally:
        stop.set()
        inv.stop.set()
        [t.join() for t in threads]
    r = redis_client
    assert stored_count(r) == len(msgs)  # folded ones included
    n_conv = int(r.get("omni:seq:conversation"))

    def settled():
        return all(r.hget(f"omni:conversation:{c}", "status") != "open" for c in range(1, n_conv + 1))
    wait_for(settled, 60, "every conversation routed")
    inv.check()
    assert not inv.breaches, inv.breaches[:10]

    per_team, per_agent = collections.Counter(), collections.Counter()
    for c in range(1, n_conv + 1):
        h = r.hgetall(f"omni:conversation:{c}")
        status = h["status"]
        queues = [f"{t}:p{p}" for t in ("core", "tech", "bpo1", "bpo2") for p in range(1, 5)
                  if r.zscore(f"omni:queue:{t}:p{p}", c) is not None]
        owner = h.get("owner")
        if status == "assigned":
            assert owner and not queues, h
            kind, who = owner.split(":", 1)
            assert r.sismember(f"omni:{kind}:{who}:conversations", c), h
            per_agent[owner] += 1
            per_team[h["team"]] += 1
        elif status == "queued":
            assert not owner and len(queues) == 1, (h, queues)
            per_team["queued"] += 1
        else:
            assert status in ("resolved", "merged"), h
            per_team[status] += 1
        for d in r.lrange(f"omni:conversation:{c}:decisions", 0, -1):
            d = json.loads(d)
            if d["outcome"] == "assigned":
                team = d["owner"].split(":", 1)[1] if d["owner"].startswith("team:") else None
                agent_team = {a: t for a, t, _ in AGENTS}.get(d["owner"].split(":", 1)[1])
                t = team or agent_team
                if t in PARTNER_CATEGORIES:
                    assert d["category"] in PARTNER_CATEGORIES[t], d
                    assert d["tier"] != "vip", d
    totals = {t: int(r.hget(f"omni:team:{t}", "assigned") or 0) for t in ("core", "tech", "bpo1", "bpo2")}
    with capsys.disabled():
        print(f"\n  scenario: {len(msgs)} messages, {n_conv} conversations, {len(resolved)} resolved while running, "
              f"{inv.samples} invariant samples")
        print("  assignments per team:", dict(totals), " now:", dict(per_team))
    assert totals["bpo1"] > 0 and totals["core"] > 0 and totals["tech"] > 0
    return totals


@pytest.fixture
def scenario_redis(redis_server):
    return redis_server.client()


def test_scenario_one_router(tmp_path, redis_server, capsys):
    r = Router(str(tmp_path), redis_server.address, policy=policy()).start()
    try:
        run_scenario([r], redis_server.client(), tmp_path, capsys)
    finally:
        r.stop()


def test_scenario_two_routers_one_redis(tmp_path, redis_server, capsys):
    a = Router(str(tmp_path / "a"), redis_server.address, policy=policy(), name="a").start()
    b = Router(str(tmp_path / "b"), redis_server.address, policy=policy(), name="b").start()
    try:
        run_scenario([a, b], redis_server.client(), tmp_path, capsys)
    finally:
        a.stop()
        b.stop()
