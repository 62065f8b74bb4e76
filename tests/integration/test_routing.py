"""The routing engine end to end: a real router, a real Redis, a small hybrid-staffing policy, and the test
clock (OMNIROUTER_TEST_CLOCK=1, moved with `omnictl clock advance`) so no test waits for real minutes."""
import collections
import datetime
import json
import threading
import time

import pytest

from harness import Peer, Router, clocked_router, message, router_now, seen_by_a_tick, send_one, wait_for
from lua_contract import Scripts

POLICY = """
calendars:
  - name: always
    timezone: UTC
    hours: ["mon-sun 00:00-24:00"]
teams:
  - name: core
    kind: in-house
    strategy: least-loaded
    calendar: always
    languages: [en, fr]
    offers: {auto_accept: true}   # these tests are not about offers (test_offers.py is)
  - name: tier2
    kind: in-house
    strategy: longest-idle
    calendar: always
    offers: {auto_accept: true}
  - name: bpo
    kind: outsourced
    strategy: round-robin
    calendar: always
    languages: [en, es]
    skills: ["orders:1"]
    contract:
      categories: [basic, order-status]
      max_concurrent: 2
      daily_quota: 3
      mask_contact: true
agents:
  - id: alice
    teams: [core]
    skills: ["technical:3"]
    languages: [en, fr]
    capacity: {email: 1, sms: 1, twitter: 1}
  - id: bob
    teams: [core]
    languages: [en]
    capacity: {email: 1, sms: 1, twitter: 1}
  - id: tina
    teams: [tier2]
    skills: ["technical:5"]
    capacity: {email: 3, sms: 3, twitter: 3}
classification:
  rules:
    - name: technical
      when: {text: ["crash", "error"]}
      category: technical
      priority: high
      skills: ["technical:2"]
    - name: orders
      when: {text: ["order"]}
      category: order-status
    - name: returns
      when: {text: ["return label"]}
      category: order-status
      skills: ["orders:2"]
  default_category: basic
routing:
  rules:
    - name: vip-and-technical-in-house
      when:
        any: [{tier: [vip]}, {category: [technical]}]
      targets:
        - {team: core, timeout: 20m}
        - {team: tier2}
      queue: core
    - name: basic-partner-first
      targets:
        - {team: bpo}
        - {team: core}
      queue: core
sla:
  targets:
    - when: {channel: [twitter, facebook]}
      first_response: 1h
    - first_response: 24h
  escalate_at: 50
customers:
  vip: ["email:*@vip.example"]
ownership:
  offline_grace: 15m
"""


@pytest.fixture
def rt(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, POLICY) as r:
        yield r


send = send_one


def settled(r, conv):
    """Waits until the conversation is assigned or queued; returns its hash."""
    return wait_for(lambda: (lambda h: h if h.get("status") in ("assigned", "queued") else None)(
        r.redis.hgetall(f"omni:conversation:{conv}")), 10, f"conversation {conv} routed")


def test_technical_work_goes_to_the_skilled_agent_and_explains_why(rt):
    conv = send(rt, "m1", "ann@example.com", "The app shows an error on login")
    h = settled(rt, conv)
    assert h["owner"] == "agent:alice" and h["team"] == "core" and h["category"] == "technical"
    out = rt.ctl("explain", "m1").stdout
    assert "rule vip-and-technical-in-house" in out
    assert "    agent bob: lacks skill technical (needs level 2)" in out, out
    assert "=> assigned to agent:alice" in out
    wait_for(lambda: "routed 1  assigned 1  queued 0" in rt.ctl("status").stdout, 10, "routing counters in status: " + rt.ctl("status").stdout)
    # what is not there is a failure (exit 1), said on stderr, nothing on stdout (omnictl.1, EXIT STATUS)
    for args, said in ((("explain", "never-sent"), "message never-sent: not stored"),
                       (("customer", "show", "nobody@example.com"), "email:nobody@example.com: no customer")):
        r = rt.ctl(*args, check=False)
        assert r.returncode == 1 and said in r.stderr and r.stdout == "", (args, r)
    assert rt.ctl("queue", "core", "extra", check=False).returncode == 2  # wrong usage


def test_a_new_customers_first_conversation_is_routed_in_the_call_that_stores_it(rt):
    """A sender the router has not seen gets the plan of a new customer's first conversation before the store,
    and ingest.lua decides it in the same call (one durable write): the log says so, and the decision is the
    one assign.lua would make, with its record for explain. The sender's next conversation (a customer now)
    goes the usual way: stored, then planned from what the store said, then decided."""
    # first plans start once the router has seeded the policy and read the test clock: a message routed
    # (either way) shows both done
    settled(rt, send(rt, "w1", "warm@example.com", "where is my order"))
    conv = send(rt, "f1", "fresh@example.com", "The app shows an error on login")
    h = settled(rt, conv)
    assert h["owner"] == "agent:alice" and h["category"] == "technical", h
    rt.wait_log(r"stored f1 from email:fresh@example\.com: customer \d+ \(new\), conversation %s "
                r"\(opened and routed in the same call: (assigned|offered) agent:alice\)" % conv)
    assert "=> assigned to agent:alice" in rt.ctl("explain", "f1").stdout
    rt.redis.hset(f"omni:conversation:{conv}", "status", "resolved")
    rt.redis.hdel(f"omni:customer:{h['customer']}", "open_conversation")
    second = send(rt, "f2", "fresh@example.com", "The app shows an error again")
    assert second != conv
    settled(rt, second)
    rt.wait_log(r"stored f2 from email:fresh@example\.com: customer \d+, conversation %s \(opened; routing it\)"
                % second)


def test_vip_never_reaches_a_partner(rt):
    conv = send(rt, "v1", "boss@vip.example", "where is my order")
    h = settled(rt, conv)
    assert h["team"] == "core" and h["tier"] == "vip"


def test_a_tier_set_with_omnictl_overrides_the_policy(rt):
    """docs/routing.md, Customer tiers: omnictl customer tier names a VIP (even before its first message), the
    next decision routes it so; auto gives the tier back to the policy."""
    out = rt.ctl("customer", "tier", "pat@example.com", "vip", "--by", "olga").stdout
    assert "tier vip (was as the policy works it out)" in out, out
    conv = send(rt, "t1", "pat@example.com", "where is my order")
    h = settled(rt, conv)
    assert h["tier"] == "vip" and h["team"] == "core", h  # the VIP rule, never the partner
    assert "  tier        vip\n" in rt.ctl("customer", "show", "pat@example.com").stdout
    assert "tier vip (was vip)" in rt.ctl("customer", "tier", "pat@example.com", "vip").stdout
    rt.ctl("customer", "tier", "pat@example.com", "auto")
    rt.ctl("conversation", "resolve", conv)
    again = send(rt, "t2", "pat@example.com", "where is my order")
    assert settled(rt, again)["tier"] == "new"  # its second conversation: repeat_after is 3
    bad = rt.ctl("customer", "tier", "pat@example.com", "gold", check=False)
    assert bad.returncode == 2 and "not vip, repeat, new or auto" in bad.stderr, bad.stderr


def test_partner_first_then_in_house_overflow_then_queue_then_drain(rt):
    convs = [send(rt, f"b{i}", f"c{i}@example.com", "do you ship to Spain?") for i in range(5)]
    owners = [settled(rt, c) for c in convs]
    teams = collections.Counter(h.get("team") or "queued" for h in owners)
    assert teams == {"bpo": 2, "core": 2, "queued": 1}, teams  # contract cap 2, then alice and bob (1 each)
    queued = [c for c, h in zip(convs, owners) if h["status"] == "queued"][0]
    assert rt.redis.hget(f"omni:conversation:{queued}", "queued_on") == "core"
    # resolving in-house work frees capacity: the queued one is assigned by the next drain
    busy = [c for c, h in zip(convs, owners) if h.get("team") == "core"][0]
    rt.ctl("conversation", "resolve", busy)
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{queued}", "status") == "assigned", 10, "drain")
    assert rt.redis.hget(f"omni:conversation:{queued}", "owner") in ("agent:alice", "agent:bob", "team:bpo")


def test_partner_daily_quota_is_never_exceeded(rt):
    for i in range(3):
        c = send(rt, f"q{i}", f"q{i}@example.com", "hello")
        assert settled(rt, c)["team"] == "bpo"
        rt.ctl("conversation", "resolve", c)
    c = send(rt, "q3", "q3@example.com", "hello")
    h = settled(rt, c)
    assert h.get("team") != "bpo", h
    day = datetime.datetime.fromtimestamp(router_now(rt) / 1000, datetime.timezone.utc)  # the router's day
    assert rt.redis.get(f"omni:team:bpo:quota:{day:%Y-%m-%d}") == "3"


def test_capacity_is_never_exceeded(rt):
    convs = [send(rt, f"t{i}", f"+1415555{i:04d}", "crash again", channel="sms") for i in range(6)]
    hs = [settled(rt, c) for c in convs]
    owners = collections.Counter(h.get("owner") or "queued" for h in hs)
    assert owners == {"agent:alice": 1, "agent:tina": 3, "queued": 2}, owners  # sms capacities 1 and 3
    assert rt.redis.hget("omni:agent:alice", "load:sms") == "1"
    assert rt.redis.hget("omni:agent:tina", "load:sms") == "3"


def test_target_timeout_moves_the_work_to_the_next_target(rt):
    conv = send(rt, "to1", "tim@example.com", "crash on start")
    assert settled(rt, conv)["owner"] == "agent:alice"
    rt.ctl("clock", "advance", "19m")
    seen_by_a_tick(rt)
    assert rt.redis.hget(f"omni:conversation:{conv}", "owner") == "agent:alice"
    rt.ctl("clock", "advance", "2m")
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{conv}", "owner") == "agent:tina", 10, "timeout re-route")
    assert rt.redis.hget("omni:agent:alice", "load:email") == "0"
    out = rt.ctl("explain", "to1").stdout
    assert "decision 2" in out and ": timeout" in out and "target 1, team tier2" in out, out
    # whom it left, from which target, and why
    assert "  moved from agent:alice (target 0): its target's timeout passed; the next target's turn" in out, out
    assert "=> assigned to agent:tina" in out


def test_work_that_timed_out_waits_on_the_next_target_and_explain_says_why_not_the_first(rt):
    """Timed out at core (target 0), the next target tier2 full: it waits on tier2's queue; core, the rule's queue
    team, is passed over because the work moved past it, which explain says (not "not a target of the rule")."""
    conv = send(rt, "mp1", "mia@example.com", "crash on start")
    assert settled(rt, conv)["owner"] == "agent:alice"
    for i in range(3):  # alice is full: tier2's tina takes the next three, and is full too
        assert settled(rt, send(rt, f"mp{i + 2}", f"mp{i}@example.com", "error again"))["owner"] == "agent:tina"
    rt.ctl("clock", "advance", "21m")
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{conv}", "queued_on") == "tier2", 10, "waiting on tier2")
    out = rt.ctl("explain", "mp1").stdout
    assert "waits on tier2: team core can never take it: the work moved past it (its target's timeout or an " \
           "escalation)" in out, out


def test_work_past_its_last_target_waits_and_is_drained(rt):
    conv = send(rt, "lt1", "lea@example.com", "crash on start")
    assert settled(rt, conv)["owner"] == "agent:alice"
    rt.ctl("agent", "presence", "tina", "away")
    # a name no policy knows is refused, nothing written (not an agent created by a typo)
    for args in (("presence", "tnia", "available"), ("show", "tnia")):
        r = rt.ctl("agent", *args, check=False)
        assert r.returncode == 2 and r.stderr.startswith('omnictl: no agent "tnia" in '), r.stderr
    assert not rt.redis.exists("omni:agent:tnia")
    rt.ctl("clock", "advance", "21m")
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{conv}", "status") == "queued", 10, "queued after timeout")
    rt.ctl("agent", "presence", "tina", "available")
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{conv}", "owner") == "agent:tina", 10, "drained to tina")


def test_first_response_stops_escalation_and_sla_is_counted(rt):
    conv = send(rt, "s1", "12345", "crash!!", channel="twitter")
    h = settled(rt, conv)
    assert int(h["due"]) - int(h["escalate_at"]) == 30 * 60 * 1000  # 1 h target, escalate at 50 %
    out = rt.ctl("conversation", "respond", conv).stdout
    assert "SLA met" in out
    assert rt.redis.hget("omni:stats", "sla_met") == "1"
    rt.ctl("clock", "advance", "2h")
    seen_by_a_tick(rt)
    assert rt.redis.hget(f"omni:conversation:{conv}", "owner") == "agent:alice"  # nothing moved
    assert not rt.redis.hget("omni:stats", "sla_breached")


def test_sla_escalation_and_breach(rt):
    conv = send(rt, "s2", "777", "where is my order", channel="twitter")
    settled(rt, conv)
    rt.ctl("clock", "advance", "31m")
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{conv}", "escalated") == "1", 10, "escalation")
    rt.ctl("clock", "advance", "30m")
    wait_for(lambda: rt.redis.hget("omni:stats", "sla_breached") == "1", 10, "breach counted")


def test_owner_offline_past_grace_loses_the_work(rt):
    conv = send(rt, "o1", "olga@example.com", "crash report")
    assert settled(rt, conv)["owner"] == "agent:alice"
    rt.ctl("agent", "presence", "alice", "offline")
    rt.ctl("clock", "advance", "10m")
    # within the grace period nothing moves
    seen_by_a_tick(rt)
    assert rt.redis.hget(f"omni:conversation:{conv}", "owner") == "agent:alice"
    rt.ctl("clock", "advance", "6m")
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{conv}", "owner") == "agent:tina", 10, "re-route")
    assert rt.redis.hget("omni:agent:alice", "load") == "0"
    assert "owner offline" in rt.ctl("explain", "o1").stdout


def test_work_waiting_goes_back_to_its_owner_when_they_return(rt):
    conv = send(rt, "ob1", "omar@example.com", "crash report")
    assert settled(rt, conv)["owner"] == "agent:alice"
    rt.ctl("agent", "presence", "tina", "away")  # nobody else can take technical work
    rt.ctl("agent", "presence", "alice", "offline")
    rt.ctl("clock", "advance", "16m")
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{conv}", "status") == "queued", 10, "queued while away")
    rt.ctl("agent", "presence", "alice", "available")
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{conv}", "owner") == "agent:alice", 10, "back to alice")


def test_sticky_owner_across_channels(rt):
    conv = send(rt, "st1", "sam@example.com", "crash in the app")
    assert settled(rt, conv)["owner"] == "agent:alice"
    rt.ctl("customer", "link", "sam@example.com", "+14155550123")
    conv2 = send(rt, "st2", "+14155550123", "any news?", channel="sms")
    assert conv2 == conv
    assert rt.redis.hget(f"omni:conversation:{conv}", "owner") == "agent:alice"
    assert rt.redis.hget("omni:agent:alice", "load") == "1"


def test_two_routers_on_one_redis_never_double_assign(tmp_path, redis_server):
    a = Router(str(tmp_path / "a"), redis_server.address, policy=POLICY, name="a").start()
    b = Router(str(tmp_path / "b"), redis_server.address, policy=POLICY, name="b").start()
    try:
        rs = redis_server.client()
        def feed(router, start):
            p = Peer(router.endpoint)
            for i in range(start, start + 60):
                p.submit(message(f"two:{i}", frm=f"u{i}@example.com", text="crash" if i % 3 else "order"))
                assert p.recv()[1] == "ACK"
            p.close()
        threads = [threading.Thread(target=feed, args=(r, s)) for r, s in ((a, 0), (b, 60))]
        [t.start() for t in threads]
        [t.join() for t in threads]
        def all_routed():
            return all(rs.hget(f"omni:conversation:{c}", "status") in ("assigned", "queued")
                       for c in range(1, 121))
        wait_for(all_routed, 20, "all 120 conversations routed")
        owners = collections.Counter(rs.hget(f"omni:conversation:{c}", "owner") for c in range(1, 121))
        assert owners["agent:alice"] == 1 and owners["agent:bob"] <= 1 and owners["team:bpo"] <= 2
        assert rs.hget("omni:agent:alice", "load") == "1"
        for c in range(1, 121):
            h = rs.hgetall(f"omni:conversation:{c}")
            in_queue = sum(rs.zscore(f"omni:queue:core:p{p}", c) is not None for p in range(1, 5))
            assert (h["status"] == "queued") == (in_queue == 1), h
    finally:
        a.stop()
        b.stop()


def test_near_duplicates_across_channels_are_folded_not_routed_again(rt):
    rt.ctl("customer", "link", "fay@example.com", "+14155550999")
    c1 = send(rt, "f1", "fay@example.com", "My parcel 7781 never arrived, where is it?")
    settled(rt, c1)
    c2 = send(rt, "f2", "+14155550999", "my parcel 7781 never arrived - where is it", channel="sms")
    assert c2 == c1
    assert rt.redis.hget("omni:msg:f2", "folded_into") == "f1"
    assert rt.redis.hget("omni:stats", "folded") == "1"
    assert "folded: a near-duplicate of f1" in rt.ctl("explain", "f2").stdout
    assert rt.redis.llen(f"omni:conversation:{c1}:decisions") == 1
    # a different question in the same open conversation is not folded
    c4 = send(rt, "f4", "fay@example.com", "Can I change the delivery address for order 9912?")
    assert c4 == c1 and rt.redis.hget("omni:msg:f4", "folded_into") is None


def test_a_late_copy_after_resolution_opens_routed_work(rt):
    """A near-copy arriving after its conversation was resolved is not parked in the resolved conversation
    (nobody would own it): it opens a new conversation, which is routed."""
    c1 = send(rt, "lc1", "lou@example.com", "My parcel 7781 never arrived, where is it?")
    settled(rt, c1)
    rt.ctl("conversation", "resolve", c1)
    c2 = send(rt, "lc2", "lou@example.com", "My parcel 7781 never arrived, where is it??")
    assert c2 != c1 and rt.redis.hget("omni:msg:lc2", "folded_into") is None
    h = settled(rt, c2)
    assert h.get("owner") or h["status"] == "queued", h


def test_a_partner_without_agents_takes_only_work_its_skills_cover(rt):
    covered = send(rt, "sk1", "sky@example.com", "where is my order")
    assert settled(rt, covered)["owner"] == "team:bpo"
    beyond = send(rt, "sk2", "kim@example.com", "I need a return label for my order")
    h = settled(rt, beyond)
    assert h.get("owner") != "team:bpo", h
    assert "cannot take it at any hour: team bpo has skill orders at level 1 (needs 2)" in rt.ctl("explain", "sk2").stdout


def test_unlink_routes_the_conversations_it_gives_back(rt):
    c1 = send(rt, "ul1", "uma@example.com", "crash when saving")
    c2 = send(rt, "ul2", "+14155550777", "crash when saving too, from my phone", channel="sms")
    settled(rt, c1), settled(rt, c2)
    rt.ctl("customer", "link", "uma@example.com", "+14155550777")
    assert rt.redis.hget(f"omni:conversation:{c2}", "status") == "merged"
    rt.ctl("customer", "unlink", "uma@example.com", "+14155550777")
    rt.ctl("clock", "advance", "5s")  # past the grace for unrouted work
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{c2}", "status") in ("assigned", "queued"), 10,
             "the reopened conversation routed again")


HOL_POLICY = """
teams:
  - {name: core, kind: in-house, offers: {auto_accept: true}}
  - {name: tier2, kind: in-house, offers: {auto_accept: true}}
agents:
  - {id: alice, teams: [core], capacity: {email: 1}}
  - {id: tina, teams: [tier2], skills: ["technical:1"], capacity: {email: 5}, presence: away}
classification:
  rules:
    - {name: technical, when: {text: ["crash"]}, category: technical, skills: ["technical:1"]}
  default_category: basic
routing:
  rules:
    - {name: tech, when: {category: [technical]}, targets: [{team: tier2}], queue: core}
    - {name: basic, targets: [{team: core}], queue: core}
sla:
  targets:
    - first_response: 24h
"""


def test_work_nobody_can_take_does_not_hide_work_someone_can(tmp_path, redis_server):
    """60 technical conversations wait on core for tier2 (away); a basic one behind them is served as soon as
    alice is free, not hidden behind work nobody can take."""
    r = Router(str(tmp_path), redis_server.address, policy=HOL_POLICY, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    r.redis, r.peer = redis_server.client(), Peer(r.endpoint)
    try:
        first = send(r, "h0", "h0@example.com", "how do I log in")
        assert settled(r, first)["owner"] == "agent:alice"
        blocked = [send(r, f"hb{i}", f"hb{i}@example.com", "crash on start") for i in range(60)]
        behind = send(r, "h1", "h1@example.com", "how do I log out")
        assert all(settled(r, c)["status"] == "queued" for c in blocked + [behind])
        r.ctl("conversation", "resolve", first)
        wait_for(lambda: r.redis.hget(f"omni:conversation:{behind}", "owner") == "agent:alice", 10,
                 "the basic conversation behind 60 blocked ones drained to alice")
    finally:
        r.peer.close()
        r.stop()


def test_explain_prints_each_targets_live_reasons_under_it(rt):
    first = send(rt, "ex1", "eve@example.com", "crash on start")
    assert settled(rt, first)["owner"] == "agent:alice"
    second = send(rt, "ex2", "ed@example.com", "crash on save")
    assert settled(rt, second)["owner"] == "agent:tina"
    out = rt.ctl("explain", "ex2").stdout
    lines = out.splitlines()
    block = lines[lines.index("  target 0, team core: eligible"):]
    assert block[:4] == ["  target 0, team core: eligible",
                         "    agent bob: lacks skill technical (needs level 2)",
                         "    now: agent alice: at capacity (1/1 email)",
                         "    now: no agent free now"], out
    assert block[4:7] == ["  target 1, team tier2: eligible", "    now: takes it", "  => assigned to agent:tina"], out


def test_status_counts_are_current_the_moment_the_acks_are_in(rt):
    """No wait: stats.messages is counted by the script that stores each message, and the routing line reads
    the keys each decision changes."""
    convs = [send(rt, f"cur{i}", f"cur{i}@example.com", "hello") for i in range(7)]
    out = rt.ctl("status").stdout
    assert "stored messages 7," in out, out
    [settled(rt, c) for c in convs]  # bpo takes 2 (its cap), core 2, 3 wait on core
    out = rt.ctl("status").stdout
    assert "routing now: 4 held by teams, 3 waiting in team queues, 0 not routed yet, unservable 0 waiting" in out, out


def test_queue_lists_what_the_team_can_take_and_flags_work_nobody_can(rt):
    waiting = [send(rt, f"qq{i}", f"qq{i}@example.com", "do you ship to Spain?") for i in range(5)]
    hs = [settled(rt, c) for c in waiting]
    queued = [c for c, h in zip(waiting, hs) if h["status"] == "queued"]
    assert len(queued) == 1
    # German: the partner's contract and core's languages refuse it at any hour
    lost = send(rt, "qde", "udo@example.com", "wo ist mein Paket", lang="de")
    assert settled(rt, lost)["queued_on"] == "core"
    out = rt.ctl("queue", "core").stdout
    assert f"  waiting, normal: conversations {queued[0]}\n" in out, out  # not the German one
    assert (f"  waiting here, normal: conversation {lost}, which core can never take: team does not speak de\n"
            "    UNSERVABLE: nobody can ever take it with this policy: team bpo: contract does not cover language de; "
            "team core: team does not speak de\n") in out, out
    out = rt.ctl("queue", "bpo").stdout
    assert f"  waiting on core's queue, which bpo can take too: conversations {queued[0]}\n" in out, out
    assert lost not in out.split("waiting on core's queue")[1], out
    assert "unservable 1 waiting (1 found in all)" in rt.ctl("status").stdout
    assert "nobody can ever take it with this policy" in rt.ctl("explain", "qde").stdout
    rt.ctl("conversation", "resolve", lost)  # an operator closes it: no longer waiting, still counted
    assert "unservable 0 waiting (1 found in all)" in rt.ctl("status").stdout


def test_refused_work_waits_where_it_can_be_served_and_says_why(rt):
    """Spanish basic work: core (the rule's queue team) never speaks Spanish, bpo does but is full. It waits on
    bpo's queue, not core's (core could never take it there), says so, and bpo takes it when a place frees."""
    held = [send(rt, f"es{i}", f"es{i}@example.com", "hola", lang="es") for i in range(2)]
    assert all(settled(rt, c)["owner"] == "team:bpo" for c in held)
    spanish = send(rt, "es9", "es9@example.com", "hola otra vez", lang="es")
    h = settled(rt, spanish)
    assert h["status"] == "queued" and h["queued_on"] == "bpo", h
    assert spanish not in rt.ctl("queue", "core").stdout
    assert f"  waiting, normal: conversations {spanish}\n" in rt.ctl("queue", "bpo").stdout
    out = rt.ctl("explain", "es9").stdout
    assert "waits on bpo: team core can never take it: team does not speak es" in out, out
    assert "unservable 0 waiting" in rt.ctl("status").stdout  # bpo can take it: not unservable
    rt.ctl("conversation", "resolve", held[0])
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{spanish}", "owner") == "team:bpo", 10,
             "the waiting Spanish conversation drained to bpo")


def office_policy(opens_at):
    """A team whose office opens at opens_at (UTC, "HH:MM") for two hours every day."""
    h, m = map(int, opens_at.split(":"))
    closes = (h * 60 + m + 120) % 1440
    return f"""
calendars:
  - {{name: office, timezone: UTC, hours: ["mon-sun {opens_at}-{closes // 60:02d}:{closes % 60:02d}"]}}
teams:
  - {{name: desk, kind: in-house, calendar: office, offers: {{auto_accept: true}}}}
agents:
  - {{id: dan, teams: [desk], capacity: {{email: 2}}}}
classification:
  default_category: general
routing:
  rules:
    - {{name: all, targets: [{{team: desk}}]}}
"""


def test_explain_marks_a_plan_made_before_a_re_plan(tmp_path, redis_server):
    """Work arriving while the office is closed is queued (decision 1); at the opening it is re-planned (2) and
    drained (3): decision 1 says it was re-planned, decision 3 says which plan it used."""
    rs = redis_server.client()
    opens = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
    r = Router(str(tmp_path), redis_server.address, policy=office_policy(f"{opens:%H:%M}"),
               env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    r.redis, r.peer = rs, Peer(r.endpoint)
    try:
        conv = send(r, "rp1", "rita@example.com", "hello")
        assert settled(r, conv)["status"] == "queued"
        out = r.ctl("explain", "rp1").stdout
        assert f"target 0, team desk: cannot take it now: closed until {opens:%a %H:%M} UTC (calendar office)" in out, out
        r.ctl("clock", "advance", "11m")
        wait_for(lambda: rs.hget(f"omni:conversation:{conv}", "owner") == "agent:dan", 10, "drained at the opening")
        out = r.ctl("explain", "rp1").stdout
        d1, d2, d3 = out.split("\ndecision ")[1:]
        assert ", re-planned at " in d1 and "(decision 2): what follows is the plan before that" in d1, out
        assert d2.split("\n")[0].endswith(": replan") and "team desk: eligible" in d2, out
        assert d3.split("\n")[0].endswith(": capacity freed"), out
        assert "(decision 2, replan): the static reasons below are as of then" in d3, out
        assert "    now: takes it" in d3 and "=> assigned to agent:dan" in d3, out
    finally:
        r.peer.close()
        r.stop()


MOVED_ON = """
calendars:
  - {name: office, timezone: UTC, hours: ["mon-fri 09:00-18:00"]}
teams:
  - {name: front, kind: in-house, offers: {auto_accept: true}}
  - {name: back, kind: in-house, calendar: office, offers: {auto_accept: true}}
agents:
  - {id: fay, teams: [front], capacity: {email: 2}}
  - {id: bo, teams: [back], capacity: {email: 1}}
routing:
  rules:
    - name: front-then-back
      targets: [{team: front, timeout: 5m}, {team: back}]
      queue: front
sla:
  targets:
    - {first_response: 1h}
  escalate_at: 50
"""


def test_a_re_plan_or_an_escalation_of_waiting_work_keeps_the_move_it_waits_in(tmp_path, redis_server):
    """docs/routing.md: a timeout moves work on to the next target, the timed-out agent left out; when that
    target is full it waits there ("team front can never take it: the work moved past it"). A re-plan (the next
    target's calendar closing) only renews the plan of that waiting work, and an escalation of waiting work
    makes it more urgent: neither starts the rule over, so fay, who let it time out, never gets it back. It
    waits on back, closed, until back opens."""
    rs = redis_server.client()
    opening = datetime.datetime(2026, 12, 2, 17, 50, tzinfo=datetime.timezone.utc)  # a Wednesday, back open
    rs.set("omni:clock:offset", int(opening.timestamp() * 1000 - time.time() * 1000))
    r = Router(str(tmp_path), redis_server.address, policy=MOVED_ON, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    r.redis, r.peer = rs, Peer(r.endpoint)
    seen_by_a_tick(r)  # the router has read the offset set before it started before any message comes
    try:
        held = send(r, "mo1", "mona@example.com", "hello")
        waits = send(r, "mo2", "mick@example.com", "hello")
        assert settled(r, held)["owner"] == "agent:fay" and settled(r, waits)["owner"] == "agent:fay"
        r.ctl("clock", "advance", "301s")  # 17:55: both time out at front; bo takes one, the other waits on back
        wait_for(lambda: rs.hget(f"omni:conversation:{waits}", "queued_on") == "back", 10, "waiting on back")
        assert rs.hget(f"omni:conversation:{held}", "owner") == "agent:bo"
        r.ctl("clock", "advance", "6m")  # 18:01: back closes: the waiting work is re-planned
        wait_for(lambda: rs.llen(f"omni:conversation:{waits}:decisions") >= 3, 10, "re-planned")
        seen_by_a_tick(r)
        h = rs.hgetall(f"omni:conversation:{waits}")
        assert (h["status"], h.get("queued_on"), h.get("owner")) == ("queued", "back", None), h
        out = r.ctl("explain", "mo2").stdout
        replan = out.split("\ndecision 3 at ")[1]
        assert replan.split("\n")[0].endswith(": replan"), out
        assert "target 0, team front" not in replan and "target 1, team back: cannot take it now: closed" in replan, out
        assert "waits on back: team front can never take it: the work moved past it" in replan, out
        r.ctl("clock", "advance", "20m")  # 18:21: its escalation (30 min after 17:50): more urgent, same move
        wait_for(lambda: rs.hget(f"omni:conversation:{waits}", "escalated") == "1", 10, "escalated")
        seen_by_a_tick(r)
        h = rs.hgetall(f"omni:conversation:{waits}")
        assert (h["status"], h.get("queued_on"), h.get("owner"), h["prio"]) == ("queued", "back", None, "2"), h
        assert not rs.sismember("omni:agent:fay:conversations", waits)
    finally:
        r.peer.close()
        r.stop()


def test_work_timed_out_at_night_waits_for_the_closed_next_target_not_its_agent(tmp_path, redis_server):
    """docs/routing.md, Queues: the timed-out agent is left out of the move, and work refused by the next
    target only for its hours waits for its opening ("night work for a closed office still waits for the
    office"): fay, who let it time out, does not get it straight back because back is closed."""
    rs = redis_server.client()
    night = datetime.datetime(2026, 12, 2, 20, 0, tzinfo=datetime.timezone.utc)  # a Wednesday, back closed
    rs.set("omni:clock:offset", int(night.timestamp() * 1000 - time.time() * 1000))
    r = Router(str(tmp_path), redis_server.address, policy=MOVED_ON, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    r.redis, r.peer = rs, Peer(r.endpoint)
    seen_by_a_tick(r)  # the router has read the offset set before it started before any message comes
    try:
        conv = send(r, "nt1", "nina@example.com", "hello")
        assert settled(r, conv)["owner"] == "agent:fay"
        r.ctl("clock", "advance", "301s")
        wait_for(lambda: rs.llen(f"omni:conversation:{conv}:decisions") >= 2, 10, "timed out")
        seen_by_a_tick(r)
        h = rs.hgetall(f"omni:conversation:{conv}")
        assert (h["status"], h.get("queued_on"), h.get("owner")) == ("queued", "back", None), h
        assert "waits on back: team front can never take it: the work moved past it" in r.ctl("explain", "nt1").stdout
    finally:
        r.peer.close()
        r.stop()


ARRIVAL = """
calendars:
  - {name: evenings, timezone: UTC, hours: ["mon-sun 18:00-23:00"]}
teams:
  - {name: desk, kind: in-house, offers: {auto_accept: true}}
  - {name: late, kind: in-house, calendar: evenings, offers: {auto_accept: true}}
agents:
  - {id: sol, teams: [desk], capacity: {email: 1}}
  - {id: lu, teams: [late], capacity: {sms: 1}}
routing:
  rules:
    - name: desk-or-late
      when: {text: ['tonight']}
      targets: [{team: desk}, {team: late}]
    - name: desk
      targets: [{team: desk}]
"""


def test_work_without_an_sla_is_served_by_arrival_whatever_re_planned_it(tmp_path, redis_server):
    """docs/routing.md, Queues: the serving order is effective priority, then SLA due time, then arrival (when
    it was first queued), then conversation number. Two waiting conversations without an SLA, the first one
    re-planned after the second arrived (a calendar its plan names opened): the first is still served first."""
    rs = redis_server.client()
    at = datetime.datetime(2026, 12, 2, 17, 50, tzinfo=datetime.timezone.utc)  # late opens at 18:00
    rs.set("omni:clock:offset", int(at.timestamp() * 1000 - time.time() * 1000))
    r = Router(str(tmp_path), redis_server.address, policy=ARRIVAL, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    r.redis, r.peer = rs, Peer(r.endpoint)
    seen_by_a_tick(r)  # the router has read the offset set before it started before any message comes
    try:
        busy = send(r, "ar0", "ada@example.com", "hello")
        assert settled(r, busy)["owner"] == "agent:sol"
        first = send(r, "ar1", "abe@example.com", "call me tonight")  # late takes no email: waits on desk
        r.ctl("clock", "advance", "1m")
        second = send(r, "ar2", "amy@example.com", "hello")
        for conv in (first, second):
            assert settled(r, conv)["status"] == "queued"
        r.ctl("clock", "advance", "10m")  # 18:01: late opens: the first is re-planned, the second is not
        wait_for(lambda: rs.llen(f"omni:conversation:{first}:decisions") == 2, 10, "re-planned")
        r.ctl("conversation", "resolve", busy)
        wait_for(lambda: rs.hget("omni:agent:sol", "load") == "1", 10, "sol given the next waiting work")
        assert rs.hget(f"omni:conversation:{first}", "owner") == "agent:sol"
        assert rs.hget(f"omni:conversation:{second}", "status") == "queued"
    finally:
        r.peer.close()
        r.stop()


def test_explain_names_a_transfer_outside_the_rule_truthfully(rt):
    """docs/routing.md, Explain: a transfer is planned for the named team only, whichever rule matched; explain
    says so, and never calls that team a target of the rule it is not in ("target 2" of a two-target rule). A
    later move from there says which team it left, not a target index past the rule's end."""
    conv = send(rt, "xt1", "xt1@example.com", "hello there")  # basic-partner-first: bpo, then core
    assert settled(rt, conv)["owner"] == "team:bpo"
    rt.ctl("agent", "presence", "alice", "away")  # nobody free but tina (core could not take it either way:
    rt.ctl("agent", "presence", "bob", "away")    # a move of transferred work is planned for tier2 only)
    s = Scripts(rt.redis)
    assert s.call("transfer", "operator:olga", conv, "tier2", router_now(rt)) == "transferred"
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{conv}", "owner") == "agent:tina", 10, "on tier2")
    assert s.call("reject", "agent:tina", conv, "not mine", router_now(rt)) == "rejected"
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{conv}", "status") == "queued", 10, "queued again")
    assert rt.redis.hget(f"omni:conversation:{conv}", "queued_on") == "tier2"
    out = rt.ctl("explain", "xt1").stdout
    assert "target 2" not in out, out
    d2 = out.split("decision 2 at ")[1].split("decision 3 at ")[0]
    assert "  moved from team:bpo (target 0): transferred\n" in d2, d2
    assert "  rule basic-partner-first (not tried: a transfer is planned for team tier2 only)\n" in d2, d2
    assert "  team tier2, which it was transferred to: eligible\n    now: takes it\n" in d2, d2
    d3 = out.split("decision 3 at ")[1]
    assert "  moved from agent:tina (team tier2, which it was transferred to): rejected by its owner\n" in d3, d3


def test_explain_says_a_timeout_at_the_last_target_sends_the_work_back_to_the_queue_team(tmp_path, redis_server):
    """docs/routing.md: work that moved past its rule's last target goes back to the rule's queue team. Its
    decision's "moved from" line must not promise a next target that does not exist."""
    policy = """
teams:
  - {name: desk, kind: in-house, offers: {auto_accept: true}}
agents:
  - {id: ann, teams: [desk], capacity: {email: 1}}
routing:
  rules:
    - name: only-desk
      targets:
        - {team: desk, timeout: 5m}
"""
    rt = Router(str(tmp_path), redis_server.address, policy=policy, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    rt.redis, rt.peer = redis_server.client(), Peer(rt.endpoint)
    try:
        conv = send(rt, "lt1", "una@example.com", "hello")
        assert settled(rt, conv)["owner"] == "agent:ann"
        rt.ctl("clock", "advance", "301s")
        wait_for(lambda: rt.redis.llen(f"omni:conversation:{conv}:decisions") >= 2, 10, "decided again")
        out = rt.ctl("explain", "lt1").stdout
        assert "the next target's turn" not in out, out
        assert "  moved from agent:ann (target 0): its target's timeout passed; it was the rule's last target: " \
               "back to the rule's queue team\n" in out, out
    finally:
        rt.peer.close()
        rt.stop()


def test_explain_of_a_conversation_merged_by_a_link_says_where_its_work_went(rt):
    """docs/routing.md, Explain: a link merges the newer of a customer's two open conversations into the older,
    taking it from its owner without a decision; explain must not leave its last "=> assigned to" as the word."""
    older = send(rt, "mg1", "mg@example.com", "hello partner")
    settled(rt, older)
    newer = send(rt, "mg2", "+14155550142", "hello by sms", channel="sms")
    settled(rt, newer)
    rt.ctl("customer", "link", "email:mg@example.com", "phone:+14155550142")
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{newer}", "status") == "merged", 10, "merged")
    out = rt.ctl("explain", "mg2").stdout
    assert out.endswith(f"merged into conversation {older} by a customer link, no decision: it left its owner or "
                        f"its queue then, and its work goes on there (omnictl conversation show {older})\n"), out
    assert "merged into" not in rt.ctl("explain", "mg1").stdout


def test_a_move_under_another_rule_starts_at_that_rules_first_target(tmp_path, redis_server):
    """docs/routing.md, Time: the choice of rule runs again on a timeout. When another rule matches then (its time
    condition no longer holds), the move starts at that rule's first target: the index of the target the work
    left counts in the old rule's targets, not the new one's (it went to night2, skipping night)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    span = f"{(now - datetime.timedelta(minutes=60)):%H:%M}-{(now + datetime.timedelta(minutes=20)):%H:%M}"
    policy = f"""
teams:
  - {{name: day, offers: {{auto_accept: true}}}}
  - {{name: day2, offers: {{auto_accept: true}}}}
  - {{name: night, offers: {{auto_accept: true}}}}
  - {{name: night2, offers: {{auto_accept: true}}}}
agents:
  - {{id: d, teams: [day], capacity: {{email: 5}}}}
  - {{id: d2, teams: [day2], capacity: {{email: 5}}}}
  - {{id: n, teams: [night], capacity: {{email: 5}}}}
  - {{id: n2, teams: [night2], capacity: {{email: 5}}}}
routing:
  rules:
    - {{name: daytime, when: {{local_time: '{span}'}}, targets: [{{team: day, timeout: 30m}}, {{team: day2}}]}}
    - {{name: all, targets: [{{team: night, timeout: 30m}}, {{team: night2}}]}}
"""
    rt = Router(str(tmp_path), redis_server.address, policy=policy, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    rt.redis, rt.peer = redis_server.client(), Peer(rt.endpoint)
    try:
        conv = send(rt, "rc1", "rc@example.com", "hello")
        assert settled(rt, conv)["owner"] == "agent:d"
        rt.ctl("clock", "advance", "31m")
        wait_for(lambda: rt.redis.llen(f"omni:conversation:{conv}:decisions") >= 2, 10, "decided again")
        h = settled(rt, conv)
        assert (h["owner"], h["rule"], h["target"]) == ("agent:n", "all", "0"), h
        out = rt.ctl("explain", "rc1").stdout
        assert "  moved from agent:d (target 0 of rule daytime): its target's timeout passed\n" in out, out
        assert "  rule all (the work was under rule daytime, which no longer applies: this move starts at rule all's " \
               "first target)\n  target 0, team night: eligible\n    now: takes it\n" in out, out
        # its own timeout under rule all then moves it on within that rule, as usual
        rt.ctl("clock", "advance", "31m")
        wait_for(lambda: rt.redis.hget(f"omni:conversation:{conv}", "owner") == "agent:n2", 10, "next target")
        assert "rule all (the work" not in rt.ctl("explain", "rc1").stdout.split("decision 3")[1]
    finally:
        rt.peer.close()
        rt.stop()


def test_a_partners_contract_narrows_its_teams_languages_never_widens_them(tmp_path, redis_server):
    """docs/routing.md, Teams: a team's `languages` are the languages it answers in; a contract's `languages` are
    those it is contracted for. Spanish work must not reach a partner that answers only in English because its
    contract lists Spanish; German work its team speaks but its contract does not list stays refused too."""
    policy = """
teams:
  - {name: core, offers: {auto_accept: true}}
  - name: bpo
    kind: outsourced
    languages: [en, de]
    contract: {categories: [general], languages: [en, es]}
agents:
  - {id: ann, teams: [core], capacity: {email: 3}, presence: away}
routing:
  rules:
    - {name: all, targets: [{team: bpo}, {team: core}]}
"""
    rt = Router(str(tmp_path), redis_server.address, policy=policy, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    rt.redis, rt.peer = redis_server.client(), Peer(rt.endpoint)
    try:
        got = {lang: settled(rt, send(rt, f"pl-{lang}", f"{lang}@example.com", "hello", lang=lang)).get("owner")
               for lang in ("en-GB", "es", "de")}
        assert got == {"en-GB": "team:bpo", "es": None, "de": None}, got
        assert "  target 0, team bpo: cannot take it at any hour: team does not speak es\n" in \
            rt.ctl("explain", "pl-es").stdout
        assert "  target 0, team bpo: cannot take it at any hour: contract does not cover language de\n" in \
            rt.ctl("explain", "pl-de").stdout
    finally:
        rt.peer.close()
        rt.stop()


def test_a_freed_place_serves_the_most_urgent_work_whichever_teams_queue_it_waits_in(tmp_path, redis_server):
    """DESIGN.md: queues are drained in priority order when capacity frees; docs/routing.md, Queues: the serving
    order is effective priority first. Normal work waits in t1's queue, urgent work in t2's (each its rule's
    first target, whose agent is away); both plans name x. When x's only place frees, the urgent work gets it,
    though t1 comes first in the policy."""
    policy = """
teams:
  - {name: t1, offers: {auto_accept: true}}
  - {name: t2, offers: {auto_accept: true}}
  - {name: x, offers: {auto_accept: true}}
agents:
  - {id: p, teams: [t1], capacity: {email: 1}, presence: away}
  - {id: q, teams: [t2], capacity: {email: 1}, presence: away}
  - {id: r, teams: [x], capacity: {email: 1}}
classification:
  rules:
    - {name: urgent, when: {text: ['^b']}, priority: urgent}
routing:
  rules:
    - {name: ra, when: {text: ['^a']}, targets: [{team: t1}, {team: x}]}
    - {name: rb, when: {text: ['^b']}, targets: [{team: t2}, {team: x}]}
    - {name: all, targets: [{team: x}]}
"""
    rt = Router(str(tmp_path), redis_server.address, policy=policy, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    rt.redis, rt.peer = redis_server.client(), Peer(rt.endpoint)
    try:
        first = send(rt, "dq0", "dq0@example.com", "zero")
        assert settled(rt, first)["owner"] == "agent:r"
        normal = send(rt, "dqa", "dqa@example.com", "a normal request")
        urgent = send(rt, "dqb", "dqb@example.com", "b urgent request")
        assert (settled(rt, normal)["queued_on"], settled(rt, urgent)["queued_on"]) == ("t1", "t2")
        rt.ctl("conversation", "resolve", first)
        wait_for(lambda: rt.redis.hget(f"omni:conversation:{urgent}", "owner") == "agent:r", 10, "urgent served")
        seen_by_a_tick(rt)
        assert rt.redis.hget(f"omni:conversation:{normal}", "status") == "queued"
    finally:
        rt.peer.close()
        rt.stop()


def test_a_decision_that_tried_every_target_stores_them_once_and_explain_shows_them_all(rt):
    """bpo takes two (max_concurrent 2); the third tries bpo, then core, which takes it. Its record leaves the
    plan's targets out (tried says the same: docs/redis.md), and explain still shows both targets, each with
    what was found when it was tried; the first decision, which tried bpo only, keeps the plan's targets."""
    convs = [send(rt, f"ov{i}", f"ov{i}@example.com", "Where is my parcel?") for i in range(3)]
    assert [settled(rt, c)["team"] for c in convs] == ["bpo", "bpo", "core"]
    first = json.loads(rt.redis.lindex(f"omni:conversation:{convs[0]}:decisions", -1))
    assert [t["team"] for t in first["plan"]["targets"]] == ["bpo", "core"], first
    third = json.loads(rt.redis.lindex(f"omni:conversation:{convs[2]}:decisions", -1))
    assert "targets" not in third["plan"] and [t["team"] for t in third["tried"]] == ["bpo", "core"], third
    out = rt.ctl("explain", "ov2").stdout
    assert "  target 0, team bpo: eligible\n" in out and "  target 1, team core: eligible\n" in out, out
    assert ("  target 0, team bpo: eligible\n    now: contract: holds 2 of the 2 it may hold at once (max_concurrent)\n"
            "  target 1, team core: eligible\n    now: takes it\n") in out, out
