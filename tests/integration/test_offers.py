"""Offers end to end (docs/delivery.md): a real router plans what the scripts omni-api calls ask for, with
the test clock (OMNIROUTER_TEST_CLOCK=1, `omnictl clock advance`) so an offer expires without waiting."""
import pytest

from harness import Peer, Router, free_port, message, scrape, wait_for
from lua_contract import Scripts, key

from test_routing import router_now, seen_by_a_tick, send

POLICY = """
calendars:
  - name: always
    timezone: UTC
    hours: ["mon-sun 00:00-24:00"]
teams:
  - {name: core, kind: in-house, calendar: always, offers: {accept_timeout: 1m}}
  - {name: tier2, kind: in-house, calendar: always, offers: {auto_accept: true}}
  - name: bpo
    kind: outsourced
    calendar: always
    contract: {categories: [basic, outsource], mask_contact: true}
agents:
  - {id: alice, teams: [core], capacity: {email: 1}}
  - {id: bob, teams: [core], capacity: {email: 1}}
  - {id: tina, teams: [tier2], capacity: {email: 1}}
classification:
  rules:
    - {name: outsource, when: {text: ["partner please"]}, category: outsource}
  default_category: basic
routing:
  rules:
    - name: partner-only
      when: {category: [outsource]}
      targets:
        - {team: bpo}
      queue: bpo
    - name: all
      targets:
        - {team: core}
        - {team: tier2}
      queue: core
"""


@pytest.fixture
def rt(tmp_path, redis_server):
    port = free_port()
    r = Router(str(tmp_path), redis_server.address, policy=POLICY, env={"OMNIROUTER_TEST_CLOCK": "1"},
               router_extra={"metrics_listen": f"127.0.0.1:{port}"}).start()
    r.metrics_port = port
    r.redis = redis_server.client()
    r.peer = Peer(r.endpoint)
    r.scripts = Scripts(r.redis)
    yield r
    r.peer.close()
    r.stop()


def field(rt, conv, name):
    return rt.redis.hget(key("conversation", conv), name)


def offered_to(rt, conv, who):
    wait_for(lambda: field(rt, conv, "owner") == who and field(rt, conv, "status") in ("offered", "assigned"), 10,
             f"conversation {conv} given to {who}")


def test_an_offer_nobody_accepts_goes_to_the_next_agent_then_a_rejection_to_the_next_target(rt):
    conv = send(rt, "o1", "ann@example.com", "where is my order")
    offered_to(rt, conv, "agent:alice")
    assert field(rt, conv, "status") == "offered"
    assert rt.redis.hget(key("agent", "alice"), "load") == "1"  # held while the offer is open
    rt.ctl("clock", "advance", "59s")
    seen_by_a_tick(rt)
    assert field(rt, conv, "owner") == "agent:alice"
    rt.ctl("clock", "advance", "2s")
    offered_to(rt, conv, "agent:bob")
    assert rt.redis.hget(key("agent", "alice"), "offers_expired") == "1"
    assert rt.redis.hget(key("agent", "alice"), "load") == "0"
    # bob rejects: the same target has nobody left who has not declined it, so the next target takes it
    assert rt.scripts.call("reject", "agent:bob", conv, "not mine", router_now(rt)) == "rejected"
    offered_to(rt, conv, "agent:tina")
    assert field(rt, conv, "status") == "assigned"  # tier2 accepts automatically
    out = rt.ctl("explain", "o1").stdout
    assert ": offer expired" in out and ": rejected" in out and "=> assigned to agent:bob as an offer, open until" in out, out


def test_a_transfer_goes_to_the_named_team_only_and_waits_in_its_queue(rt):
    conv = send(rt, "t1", "tom@example.com", "hello")
    offered_to(rt, conv, "agent:alice")
    assert rt.scripts.call("accept", "agent:alice", conv, router_now(rt)) == "accepted"
    assert rt.scripts.call("transfer", "agent:alice", conv, "tier2", router_now(rt)) == "transferred"
    offered_to(rt, conv, "agent:tina")
    assert field(rt, conv, "team") == "tier2" and field(rt, conv, "transfer_to") is None
    # tina is full now: a transfer of other work to tier2 waits in tier2's queue, not core's
    other = send(rt, "t2", "tim@example.com", "hi")
    offered_to(rt, other, "agent:alice")
    assert rt.scripts.call("transfer", "operator:olga", other, "tier2", router_now(rt)) == "transferred"
    wait_for(lambda: field(rt, other, "status") == "queued", 10, "transferred work queued")
    assert field(rt, other, "queued_on") == "tier2"
    assert rt.redis.hget(key("agent", "alice"), "load") == "0"


def test_the_router_writes_each_teams_masking_at_start(rt):
    wait_for(lambda: rt.redis.hget(key("team", "bpo"), "mask_contact") == "1", 10, "team masking written")
    assert rt.redis.hget(key("team", "core"), "mask_contact") == "0"
    assert len(rt.redis.get(key("mask_salt"))) == 32


def test_offers_by_outcome_and_redis_round_trips_in_the_metrics(rt):
    """omnirouter_offers_total counts each way an offer ends, whoever ended it (the scripts count in Redis);
    omnirouter_redis_roundtrip_seconds counts the router's script calls as they are answered."""
    before = scrape(rt.metrics_port)
    a = send(rt, "x1", "ann@example.com", "where is my order")
    offered_to(rt, a, "agent:alice")
    rt.ctl("clock", "advance", "61s")  # alice lets it expire: bob is offered it
    offered_to(rt, a, "agent:bob")
    assert rt.scripts.call("reject", "agent:bob", a, "not mine", router_now(rt)) == "rejected"
    offered_to(rt, a, "agent:tina")  # tier2 accepts by itself: not an offer accepted
    b = send(rt, "x2", "bea@example.com", "hello")
    offered_to(rt, b, "agent:alice")
    assert rt.scripts.call("accept", "agent:alice", b, router_now(rt)) == "accepted"
    c = send(rt, "x3", "cid@example.com", "hi")
    offered_to(rt, c, "agent:bob")
    assert rt.scripts.call("transfer", "operator:olga", c, "tier2", router_now(rt)) == "transferred"
    want = {o: 1 for o in ("accepted", "rejected", "expired", "transferred")}
    offers = lambda m: {o: m.get(("omnirouter_offers_total", (("outcome", o),))) for o in want}  # noqa: E731
    assert offers(before) == {o: 0 for o in want}
    m = wait_for(lambda: (lambda m: m if offers(m) == want else None)(scrape(rt.metrics_port)), 15,
                 "each outcome counted once (the gauges are read every 5 s)")
    rtt = m[("omnirouter_redis_roundtrip_seconds_count", ())]
    assert rtt > before[("omnirouter_redis_roundtrip_seconds_count", ())] + 5  # stores, plans, assigns...
    assert m[("omnirouter_redis_roundtrip_seconds_bucket", (("le", "+Inf"),))] == rtt
    assert 0 < m[("omnirouter_redis_roundtrip_seconds_sum", ())] < rtt  # each well under a second


def test_work_its_only_target_gave_back_is_flagged_in_the_queue_and_explained(rt):
    """A partner that rejects work it was the only target of: queued flagged unservable (every target declined
    it), shown so by omnictl queue, and explain does not call the partner eligible (docs/routing.md)."""
    conv = send(rt, "po1", "pat@example.com", "partner please help")
    wait_for(lambda: field(rt, conv, "owner") == "team:bpo", 10, "given to the partner")
    assert rt.scripts.call("reject", "partner:bpo", conv, "outside contract", router_now(rt)) == "rejected"
    wait_for(lambda: field(rt, conv, "status") == "queued", 10, "queued after the rejection")
    assert rt.redis.sismember(key("unservable"), conv)
    out = rt.ctl("queue", "bpo").stdout
    assert f"conversation {conv}, which bpo can never take: every target declined this conversation" in out, out
    assert "UNSERVABLE: nobody can ever take it with this policy: every target declined this conversation" in out
    assert f"conversations {conv}" not in out, out  # not listed as work bpo could take
    ex = rt.ctl("explain", "po1").stdout
    assert "moved from team:bpo (target 0): rejected by its owner" in ex, ex
    assert "target 0, team bpo: cannot take it now: gave this conversation back" in ex, ex


LAST_TARGET = """
teams:
  - {name: desk, kind: in-house, strategy: round-robin, offers: {accept_timeout: 1m}}
agents:
  - {id: ann, teams: [desk], capacity: {email: 1}}
  - {id: ben, teams: [desk], capacity: {email: 1}}
routing:
  rules:
    - name: only-desk
      targets:
        - {team: desk, timeout: 5m}
ownership: {prefer_previous_owner: false}
"""


def test_work_past_its_last_target_stays_with_the_agent_who_accepted_it(tmp_path, redis_server):
    """docs/routing.md, Queues: work that moved past its rule's last target goes back to the rule's queue team
    with nobody left out, "assigned at once when one of that team's agents has room, the agent who had it
    included". The move frees her capacity, so ben, who accepted it and whose only work it is, keeps it, still
    accepted (not offered anew, which would take back what he is working on), rather than it waiting behind
    work queued before it and his freed place going to that."""
    rt = Router(str(tmp_path), redis_server.address, policy=LAST_TARGET, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    rt.redis, rt.peer, scripts = redis_server.client(), Peer(rt.endpoint), Scripts(redis_server.client())
    try:
        first = send(rt, "lt1", "una@example.com", "hello")
        offered_to(rt, first, "agent:ann")
        mine = send(rt, "lt2", "uma@example.com", "hello")
        offered_to(rt, mine, "agent:ben")
        for conv, who in ((first, "agent:ann"), (mine, "agent:ben")):
            assert scripts.call("accept", who, conv, router_now(rt)) == "accepted"
        waiting = send(rt, "lt3", "ula@example.com", "hello")  # nobody has room: it waits, queued first
        wait_for(lambda: field(rt, waiting, "status") == "queued", 10, "queued")
        rt.ctl("clock", "advance", "301s")  # both time out at desk, their last target: back to desk, nobody left out
        for conv in (first, mine):
            wait_for(lambda: rt.redis.llen(key("conversation_decisions", conv)) >= 2, 10, "decided again")
        seen_by_a_tick(rt)  # and a drain after it
        assert field(rt, first, "owner") == "agent:ann"
        h = rt.redis.hgetall(key("conversation", mine))
        assert (h["status"], h["owner"]) == ("assigned", "agent:ben"), h
        assert "offer_expires_at" not in h and "timeout_at" not in h, h  # still accepted; no further timeout
        assert field(rt, waiting, "status") == "queued"
        assert rt.redis.hget(key("agent", "ben"), "load") == "1"
        types = [f["type"] for _, f in rt.redis.xrange(key("inbox", "agent:ben")) if f["conversation"] == mine]
        assert types[:2] == ["work.offered", "work.assigned"] and set(types[2:]) <= {"work.assigned"}, types  # kept
        out = rt.ctl("explain", "lt2").stdout
        assert "decision 2 at " in out and ": timeout\n" in out, out
        assert "at capacity" not in out.split("decision 2")[1], out  # his place is this conversation's own
        assert out.rstrip().endswith("=> assigned to agent:ben"), out
    finally:
        rt.peer.close()
        rt.stop()


TRANSFER = """
teams:
  - {name: desk, kind: in-house, offers: {auto_accept: true}}
  - {name: lyon, kind: in-house, languages: [fr], offers: {auto_accept: true}}
agents:
  - {id: ann, teams: [desk], capacity: {email: 2}}
  - {id: leo, teams: [lyon], capacity: {email: 2}}
routing:
  rules:
    - name: everything
      targets: [{team: desk}]
"""


def test_a_transfer_to_a_team_that_can_never_take_it_is_surfaced_as_unservable(tmp_path, redis_server):
    """docs/routing.md: a transfer is planned for the named team only, its queue when nobody there can take it;
    work nobody can ever take is surfaced (omni:unservable, omnictl queue's UNSERVABLE, status). A German
    conversation transferred to a French-only team waits there for good: flagged so, and explain says the
    transfer's team cannot take it, not that no target of the rule can (desk, the rule's target, could)."""
    rt = Router(str(tmp_path), redis_server.address, policy=TRANSFER, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    rt.redis, rt.peer, scripts = redis_server.client(), Peer(rt.endpoint), Scripts(redis_server.client())
    try:
        rt.peer.submit(message("tr1", frm="dora@example.com", text="Guten Tag", lang="de"))
        assert rt.peer.recv() == ["OMNI/1", "ACK", "tr1"]
        conv = rt.redis.hget(key("msg", "tr1"), "conversation")
        offered_to(rt, conv, "agent:ann")
        assert scripts.call("transfer", "operator:olga", conv, "lyon", router_now(rt)) == "transferred"
        wait_for(lambda: field(rt, conv, "status") == "queued", 10, "queued on lyon")
        assert field(rt, conv, "queued_on") == "lyon"
        assert rt.redis.sismember(key("unservable"), conv)
        assert rt.redis.hget(key("stats"), "unservable") == "1"
        q = rt.ctl("queue", "lyon").stdout
        assert f"conversation {conv}, which lyon can never take: team does not speak de" in q, q
        assert "    UNSERVABLE: nobody can ever take it with this policy: transferred to team lyon, which cannot " \
               "take it at any hour: team does not speak de" in q, q
        out = rt.ctl("explain", "tr1").stdout
        assert "no target of rule everything can" not in out, out
        assert out.rstrip().endswith("  => queued on lyon\n  nobody can ever take it with this policy: team lyon, "
                                     "which it was transferred to, cannot, at any hour"), out
        # transferred again, to a team that can: it leaves the list
        assert scripts.call("transfer", "operator:olga", conv, "desk", router_now(rt)) == "transferred"
        wait_for(lambda: field(rt, conv, "owner") == "agent:ann", 10, "back on desk")
        assert not rt.redis.sismember(key("unservable"), conv)
    finally:
        rt.peer.close()
        rt.stop()


def test_an_offer_past_its_expiry_is_not_its_agents_to_act_on_before_the_tick_either(rt):
    """docs/delivery.md, Offers: from offer_expires_at on, the offer is no longer its agent's, even while no
    router's tick has moved it on (the router is stopped here, the test clock moved past the expiry): view.lua
    answers "", work.lua leaves it out, reject, transfer, respond and resolve answer "not found", accept "not
    offered". So the agent's late reject changes nothing, and the tick then counts what happened: it expired."""
    conv = send(rt, "lp1", "lea@example.com", "where is my order")
    offered_to(rt, conv, "agent:alice")
    rt.stop()
    rt.ctl("clock", "advance", "61s")
    now = router_now(rt)
    s = rt.scripts
    assert s.call("view", "agent:alice", conv) == ""
    assert s.call("work", "agent:alice") == '{"offered":[],"owned":[]}'
    assert s.call("reject", "agent:alice", conv, "too late", now) == "not found"
    assert s.call("transfer", "agent:alice", conv, "tier2", now) == "not found"
    assert s.call("respond", "agent:alice", conv, "alice", now)[0] == "not found"
    assert s.call("resolve", "agent:alice", conv, "alice", now)[0] == "not found"
    assert s.call("accept", "agent:alice", conv, now) == "not offered"
    assert '"status":"offered"' in s.call("view", "operator:olga", conv)  # still hers until the tick moves it
    rt.start()
    offered_to(rt, conv, "agent:bob")
    assert rt.redis.hget(key("agent", "alice"), "offers_expired") == "1"
    assert rt.redis.hget(key("agent", "alice"), "offers_rejected") is None
    assert [d for d in rt.ctl("explain", "lp1").stdout.splitlines() if "moved from" in d] == \
        ["  moved from agent:alice (target 0): the offer was not accepted in time"]


TIERS = """
calendars:
  - name: always
    timezone: UTC
    hours: ["mon-sun 00:00-24:00"]
teams:
  - {name: core, kind: in-house, calendar: always, offers: {accept_timeout: 1m}}
  - {name: tier2, kind: in-house, calendar: always, offers: {accept_timeout: 1m}}
agents:
  - {id: alice, teams: [core], capacity: {email: 1}}
  - {id: tina, teams: [tier2], capacity: {email: 1}}
  - {id: tom, teams: [tier2], capacity: {email: 1}}
routing:
  rules:
    - name: all
      targets: [{team: core}]
      queue: core
sla:
  targets:
    - first_response: 2h
  escalate_at: 50
ownership: {prefer_previous_owner: false}
"""


@pytest.fixture
def tiers(tmp_path, redis_server):
    r = Router(str(tmp_path), redis_server.address, policy=TIERS, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    r.redis, r.peer, r.scripts = redis_server.client(), Peer(r.endpoint), Scripts(redis_server.client())
    yield r
    r.peer.close()
    r.stop()


def transferred_by_alice(rt, id, frm):
    conv = send(rt, id, frm, "hello")
    offered_to(rt, conv, "agent:alice")
    assert rt.scripts.call("accept", "agent:alice", conv, router_now(rt)) == "accepted"
    assert rt.scripts.call("transfer", "agent:alice", conv, "tier2", router_now(rt)) == "transferred"
    return conv


def test_work_a_transfer_gave_a_team_goes_to_its_next_agent_when_rejected_or_let_expire(tiers):
    """docs/routing.md, Offers: a rejected or expired offer goes to the same target's other agents first; for
    transferred work that is the team it was transferred to (a transfer is planned for the named team only), not
    the rule's queue team and the very agent who transferred it away. With nobody left there it waits in that
    team's queue."""
    rt = tiers
    conv = transferred_by_alice(rt, "tr1", "una@example.com")
    offered_to(rt, conv, "agent:tina")
    assert rt.scripts.call("reject", "agent:tina", conv, "not mine", router_now(rt)) == "rejected"
    offered_to(rt, conv, "agent:tom")
    assert field(rt, conv, "transferred_to") == "tier2"  # docs/redis.md: kept while tier2 holds it
    rt.ctl("clock", "advance", "61s")  # tom lets it expire: nobody of tier2 left, so it waits in tier2's queue
    wait_for(lambda: field(rt, conv, "status") == "queued", 10, "queued after the expiry")
    assert field(rt, conv, "queued_on") == "tier2" and field(rt, conv, "transferred_to") == "tier2"
    assert rt.redis.hget(key("agent", "alice"), "load") == "0"
    out = rt.ctl("explain", "tr1").stdout
    d3 = out.split("decision 3 at ")[1].split("decision 4 at ")[0]
    assert "  moved from agent:tina (team tier2, which it was transferred to): rejected by its owner\n" in d3, d3
    assert "  rule all (not tried: work transferred to team tier2 is planned for that team only)\n" in d3, d3
    assert "  team tier2, which it was transferred to: eligible\n" in d3, d3
    assert "    agent tina: lost this conversation already" in d3, d3
    assert "=> assigned to agent:tom" in d3, d3
    d4 = out.split("decision 4 at ")[1]
    assert "  moved from agent:tom (team tier2, which it was transferred to): the offer was not accepted in time\n" \
        in d4, d4
    assert "target 0" not in d3 + d4 and "=> queued on tier2" in d4, d4
    # transferred again: the new team's, and back by its rule once that team holds it
    assert rt.scripts.call("transfer", "operator:olga", conv, "core", router_now(rt)) == "transferred"
    offered_to(rt, conv, "agent:alice")
    assert field(rt, conv, "transferred_to") == "core"


def test_waiting_transferred_work_escalates_in_the_team_it_was_transferred_to(tiers):
    """docs/routing.md: waiting work that escalates goes on with the move it waits in; for work a transfer
    left waiting in a team's queue that move is the transfer: it stays there, more urgent, rather than going back
    by its rule to the agent who transferred it away."""
    rt = tiers
    for a in ("tina", "tom"):
        rt.ctl("agent", "presence", a, "away")
    conv = transferred_by_alice(rt, "te1", "ula@example.com")
    wait_for(lambda: field(rt, conv, "status") == "queued", 10, "queued on tier2")
    assert field(rt, conv, "queued_on") == "tier2"
    prio = int(field(rt, conv, "prio"))
    rt.ctl("clock", "advance", "61m")  # past its escalation point (50 % of 2 h)
    wait_for(lambda: field(rt, conv, "escalated") == "1", 10, "escalated")
    seen_by_a_tick(rt)
    h = rt.redis.hgetall(key("conversation", conv))
    assert (h["status"], h["queued_on"], h.get("owner")) == ("queued", "tier2", None), h
    assert int(h["prio"]) < prio, h
    assert rt.redis.hget(key("agent", "alice"), "load") == "0"
    out = rt.ctl("explain", "te1").stdout
    last = out.split("decision 3 at ")[1]
    assert ": escalation" in last and "team tier2, which it was transferred to" in last, last
    rt.ctl("agent", "presence", "tom", "available")  # tier2's own agent serves it
    offered_to(rt, conv, "agent:tom")


def test_a_partner_that_rejects_work_transferred_to_it_keeps_it_flagged_for_an_operator(rt):
    """docs/routing.md, Offers: a partner team that rejects work transferred to it (the only team it is planned
    for then) leaves it in its queue flagged `every target declined this conversation`, not back by the rule to
    the agent who transferred it away; transferred again, it leaves the list."""
    conv = send(rt, "pt1", "pia@example.com", "hello")
    offered_to(rt, conv, "agent:alice")
    assert rt.scripts.call("transfer", "agent:alice", conv, "bpo", router_now(rt)) == "transferred"
    wait_for(lambda: field(rt, conv, "owner") == "team:bpo", 10, "given to the partner")
    assert rt.scripts.call("reject", "partner:bpo", conv, "not ours", router_now(rt)) == "rejected"
    wait_for(lambda: field(rt, conv, "status") == "queued", 10, "queued after the rejection")
    assert field(rt, conv, "queued_on") == "bpo" and rt.redis.sismember(key("unservable"), conv)
    assert rt.redis.hget(key("agent", "alice"), "load") == "0"
    ex = rt.ctl("explain", "pt1").stdout
    assert "moved from team:bpo (team bpo, which it was transferred to): rejected by its owner" in ex, ex
    assert rt.scripts.call("transfer", "operator:olga", conv, "core", router_now(rt)) == "transferred"
    offered_to(rt, conv, "agent:alice")
    assert not rt.redis.sismember(key("unservable"), conv)
    assert field(rt, conv, "transferred_to") == "core"
