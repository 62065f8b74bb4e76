"""Offers, re-routing from outside the router, what each caller may see, masking and the inbox
(docs/delivery.md): the scripts run in a real redis-server on hand-written plans (test_assign_lua.py has the
helpers), as omni-api and omni-webhooks call them."""
import json

import pytest
import redis

from lua_contract import declaration, key
from test_assign_lua import NOW, Lua, target
from test_timers_lua import LEASE, due

MIN = 60000


@pytest.fixture
def lua(redis_server):
    lua = Lua(redis_server.client())
    # what a router writes at start: each team's masking, the salt
    lua.call("seed", "0123456789abcdef", json.dumps({"core": False, "tier2": False, "bpo": True, "acme": True}), "0")
    return lua


def offer(**kw):
    """A target whose team offers work (the default of the policy)."""
    kw.setdefault("auto_accept", False)
    kw.setdefault("timeout", 30 * MIN)
    return target(**kw)


def conv(lua, c):
    return lua.r.hgetall(key("conversation", c))


def agent(lua, a):
    return lua.r.hgetall(key("agent", a))


def inbox(lua, recipient):
    """The recipient's inbox as (type, conversation, data) triples, oldest first."""
    return [(f["type"], f["conversation"], json.loads(f["data"])) for _, f in lua.r.xrange(key("inbox", recipient))]


def replan(lua, c, kind, targets, now, **kw):
    """What the router does with a due item: a plan at the version due.lua read, sent to assign.lua."""
    p = {"conv": c, "version": lua.r.hget(key("conversation", c), "version") or "0", "channel": "email",
         "category": "basic", "prio": 3, "tier": "new", "reason": kind, "rule": "r", "queue": "core",
         "now": now, "due": -1, "escalate_at": -1, "targets": targets, "skills": [], "trace": {}, "aging": 0,
         "valid_until": -1}
    p.update(kw)
    return lua.send_plan(p)


def test_an_offer_holds_capacity_until_accepted_and_the_timeout_starts_at_acceptance(lua):
    c = lua.conversation()
    assert lua.assign(c, [offer(agents=("a",))]) == ["offered", "agent:a"]
    h = conv(lua, c)
    assert (h["status"], h["owner"], h["offer_expires_at"]) == ("offered", "agent:a", str(NOW + MIN))
    assert "timeout_at" not in h
    assert agent(lua, "a")["load"] == "1"
    # the same slot is never offered twice
    assert lua.assign(lua.conversation(), [offer(agents=("a",))])[0] == "queued"
    assert lua.call("accept", "agent:a", c, NOW + 10) == "accepted"
    h = conv(lua, c)
    assert (h["status"], h["accepted_at"], h["timeout_at"]) == ("assigned", str(NOW + 10), str(NOW + 10 + 30 * MIN))
    assert "offer_expires_at" not in h
    assert agent(lua, "a")["offers_accepted"] == "1"
    assert agent(lua, "a")["load"] == "1"
    assert lua.call("accept", "agent:a", c, NOW + 20) == "not offered"
    assert [t for t, _, _ in inbox(lua, "agent:a")] == ["work.offered", "work.assigned"]
    assert inbox(lua, "agent:a")[0][2]["expires_at"] == NOW + MIN


def test_auto_accept_assigns_without_an_offer(lua):
    c = lua.conversation()
    assert lua.assign(c, [offer(agents=("a",), auto_accept=True)]) == ["assigned", "agent:a"]
    h = conv(lua, c)
    assert h["status"] == "assigned" and "offer_expires_at" not in h and h["timeout_at"] == str(NOW + 30 * MIN)
    assert [t for t, _, _ in inbox(lua, "agent:a")] == ["work.assigned"]


def test_an_expired_offer_goes_to_the_next_agent_and_never_back(lua):
    c = lua.conversation()
    t = offer(agents=("a", "b"))
    assert lua.assign(c, [t])[1] == "agent:a"
    assert due(lua, NOW + MIN - 1) == []
    assert lua.call("accept", "agent:a", c, NOW + MIN) == "not offered"  # too late, even before a tick
    assert due(lua, NOW + MIN) == [(c, "offer expired")]
    assert replan(lua, c, "offer expired", [t], NOW + MIN, exclude="a") == ["offered", "agent:b"]
    assert lua.r.smembers(key("conversation_declined", c)) == {"agent:a"}
    assert agent(lua, "a")["offers_expired"] == "1" and agent(lua, "a")["load"] == "0"
    assert inbox(lua, "agent:a")[-1][2]["reason"] == "offer expired"
    # b lets it expire too: nobody of the team is offered it again, even with the plan not excluding anyone
    assert due(lua, NOW + 2 * MIN) == [(c, "offer expired")]
    assert replan(lua, c, "offer expired", [t], NOW + 2 * MIN)[0] == "queued"
    assert lua.call("drain", "core", NOW + 3 * MIN, 100, 0, "{}", True) == []
    assert conv(lua, c)["status"] == "queued"


def test_work_moving_inside_a_partner_team_counts_once_against_its_contract(lua):
    """A partner with agents, max_concurrent 1 and a daily quota of 2: an offer that expires goes to the team's
    next agent (the work it holds is the one moving: no second concurrent conversation), and the quota counts
    the conversation once however often it moves inside the team that day (docs/routing.md, contracts)."""
    c = lua.conversation()
    t = offer(team="bpo", agents=("p1", "p2", "p3"), max_concurrent=1, quota=2)
    assert lua.assign(c, [t]) == ["offered", "agent:p1"]
    quota = key("team_quota", "bpo", "2026-11-22")
    assert lua.r.get(quota) == "1"
    assert due(lua, NOW + MIN) == [(c, "offer expired")]
    assert replan(lua, c, "offer expired", [t], NOW + MIN, exclude="p1") == ["offered", "agent:p2"]
    assert due(lua, NOW + 2 * MIN) == [(c, "offer expired")]
    assert replan(lua, c, "offer expired", [t], NOW + 2 * MIN, exclude="p2") == ["offered", "agent:p3"]
    assert lua.r.get(quota) == "1" and lua.r.scard(key("team_conversations", "bpo")) == 1
    # another conversation still finds the team full (max_concurrent), and a second one of the day counts
    assert lua.assign(lua.conversation(), [t])[0] == "queued"
    assert lua.call("accept", "agent:p3", c, NOW + 2 * MIN + 1) == "accepted"
    assert lua.call("resolve", "agent:p3", c, "agent:p3", NOW + 3 * MIN)
    assert lua.assign(lua.conversation(), [t])[0] == "offered"
    assert lua.r.get(quota) == "2"


def test_an_escalation_back_to_the_agent_who_accepted_keeps_it_accepted(lua):
    """Decided to the same owner again (its next target holds the agent too): no new offer, nothing revoked."""
    c = lua.conversation()
    t0, t1 = offer(agents=("a",), cap=2), offer(team="tier2", agents=("a",), cap=2, i=1)
    assert lua.assign(c, [t0, t1]) == ["offered", "agent:a"]
    assert lua.call("accept", "agent:a", c, NOW + 10) == "accepted"
    assert replan(lua, c, "escalation", [t1], NOW + 20) == ["assigned", "agent:a"]
    h = conv(lua, c)
    assert h["status"] == "assigned" and h["team"] == "tier2" and "offer_expires_at" not in h, h
    assert "work.revoked" not in [k for k, _, _ in inbox(lua, "agent:a")]
    assert agent(lua, "a")["load"] == "1"


def test_an_escalation_frees_its_owners_capacity_for_a_target_she_is_in_too(lua):
    """docs/routing.md (SLA): an escalation moves the work on, "the owner's capacity is freed". An agent of the
    next target who is at capacity only by this conversation keeps it (it does not wait); another agent of that
    target who can take it now gets it first."""
    c = lua.conversation()
    t0, t1 = target(agents=("a",), cap=1), target(team="tier2", agents=("a",), cap=1, i=1)
    assert lua.assign(c, [t0, t1]) == ["assigned", "agent:a"]
    assert replan(lua, c, "escalation", [t1], NOW + 20) == ["assigned", "agent:a"]
    h = conv(lua, c)
    assert (h["status"], h["team"], h["owner"]) == ("assigned", "tier2", "agent:a"), h
    assert agent(lua, "a")["load"] == "1"
    # with another agent of tier2 ready, the escalation moves it to her
    d = lua.conversation()
    u0, u1 = target(agents=("c",), cap=1), target(team="tier2", agents=("c", "d"), cap=1, i=1)
    assert lua.assign(d, [u0, u1]) == ["assigned", "agent:c"]
    assert replan(lua, d, "escalation", [u1], NOW + 20) == ["assigned", "agent:d"]
    assert agent(lua, "c")["load"] == "0" and agent(lua, "d")["load"] == "1"


def test_a_rejection_reroutes_at_once_to_the_next_agent_never_the_same(lua):
    c = lua.conversation()
    t = offer(agents=("a", "b"))
    lua.assign(c, [t])
    assert lua.call("reject", "agent:a", c, "not my area", NOW + 5) == "rejected"
    h = conv(lua, c)
    assert (h["status"], h["reroute"]) == ("rerouting", "rejected") and "owner" not in h
    assert agent(lua, "a")["load"] == "0" and agent(lua, "a")["offers_rejected"] == "1"
    flat = lua.call("due", now=NOW + 5, limit=10, grace_ms=1, unrouted_after_ms=3000, lease_ms=LEASE,
                    test_clock=False)
    assert flat[:2] == [c, "rejected"] and flat[4] == "agent:a"  # the owner it was taken from, to exclude
    assert replan(lua, c, "rejected", [t], NOW + 5) == ["offered", "agent:b"]
    assert "reroute" not in conv(lua, c)
    assert lua.call("reject", "agent:b", c, "no", NOW + 6) == "rejected"
    assert replan(lua, c, "rejected", [t], NOW + 6)[0] == "queued"
    assert lua.r.smembers(key("conversation_declined", c)) == {"agent:a", "agent:b"}


def test_a_partner_team_rejecting_is_declined_as_a_team(lua):
    c = lua.conversation()
    bpo = target(team="bpo", agents=(), team_level=True)
    assert lua.assign(c, [bpo]) == ["assigned", "team:bpo"]  # a partner team is assigned, never offered
    assert lua.call("reject", "partner:bpo", c, "outside contract", NOW) == "rejected"
    assert replan(lua, c, "rejected", [bpo, target(agents=("a",), i=1)], NOW)[1] == "agent:a"
    # a partner that was the only target and rejected it will never take it: queued, flagged unservable
    only = lua.conversation()
    assert lua.assign(only, [bpo]) == ["assigned", "team:bpo"]
    assert lua.call("reject", "partner:bpo", only, "outside contract", NOW) == "rejected"
    assert replan(lua, only, "rejected", [bpo], NOW)[0] == "queued"
    assert lua.r.sismember(key("unservable"), only) and lua.r.hget(key("stats"), "unservable") == "1"
    stored = json.loads(lua.r.hget(key("conversation", only), "plan"))
    assert stored["unservable"] == "every target declined this conversation"


def test_going_offline_revokes_open_offers_at_once_and_keeps_accepted_work(lua):
    offered, accepted = lua.conversation(), lua.conversation()
    lua.assign(accepted, [offer(agents=("a",), cap=2)])
    lua.call("accept", "agent:a", accepted, NOW)
    lua.assign(offered, [offer(agents=("a",), cap=2)])
    lua.call("presence", "a", "offline", NOW + 1)
    assert (conv(lua, offered)["status"], conv(lua, offered)["reroute"]) == ("rerouting", "offer revoked")
    assert conv(lua, accepted)["status"] == "assigned"
    assert agent(lua, "a")["load"] == "1"
    assert due(lua, NOW + 1) == [(offered, "offer revoked")]
    assert inbox(lua, "agent:a")[-1][2]["reason"] == "offer revoked"


def test_a_transfer_is_planned_for_the_named_team_only(lua):
    c = lua.conversation()
    lua.assign(c, [target(agents=("a",))])
    assert lua.call("transfer", "agent:a", c, "nosuch", NOW) == "no such team"
    assert lua.call("transfer", "agent:b", c, "tier2", NOW) == "not found"
    assert lua.call("transfer", "agent:a", c, "tier2", NOW) == "transferred"
    flat = lua.call("due", now=NOW, limit=10, grace_ms=1, unrouted_after_ms=3000, lease_ms=LEASE, test_clock=False)
    fields = [name for name, _ in declaration("due", "reply")[1]]
    assert flat[:2] == [c, "transfer"] and flat[fields.index("transfer_to")] == "tier2"
    assert replan(lua, c, "transfer", [target(team="tier2", agents=("t",))], NOW) == ["assigned", "agent:t"]
    h = conv(lua, c)
    assert h["team"] == "tier2" and "transfer_to" not in h and "reroute" not in h
    assert inbox(lua, "agent:a")[-1][2]["reason"] == "transfer"


def test_a_dead_letter_reroutes_only_while_the_work_is_still_that_teams(lua):
    c = lua.conversation()
    lua.assign(c, [target(team="bpo", agents=(), team_level=True)])
    assert lua.call("reroute", c, "acme", "dead letter", NOW) == "not found"
    assert lua.call("reroute", c, "bpo", "dead letter", NOW) == "rerouted"
    assert due(lua, NOW) == [(c, "dead letter")]
    assert lua.call("reroute", c, "bpo", "dead letter", NOW) == "not found"  # a second one finds it moved on
    with pytest.raises(redis.ResponseError, match="reroute: reason"):
        lua.call("reroute", c, "bpo", "whatever", NOW)


def test_each_caller_sees_only_its_own_work(lua):
    mine, theirs = lua.conversation(), lua.conversation()
    lua.assign(mine, [offer(agents=("a",))])
    lua.assign(theirs, [target(team="bpo", agents=(), team_level=True)])
    for caller in ("agent:b", "partner:bpo"):
        assert lua.call("view", caller, mine) == ""
        assert lua.call("accept", caller, mine, NOW) == "not found"
        assert lua.call("reject", caller, mine, "x", NOW) == "not found"
        assert lua.call("transfer", caller, mine, "tier2", NOW) == "not found"
        assert lua.call("respond", caller, mine, "x", NOW) == ["not found", 0]
        assert lua.call("resolve", caller, mine, "x", NOW) == ["not found", "", 0]
    assert lua.call("view", "agent:a", theirs) == "" and lua.call("view", "partner:acme", theirs) == ""
    assert lua.call("view", "agent:a", "999") == ""  # none at all: the same answer
    assert json.loads(lua.call("view", "agent:a", mine))["status"] == "offered"
    assert json.loads(lua.call("view", "partner:bpo", theirs))["owner"] == "team:bpo"
    assert json.loads(lua.call("view", "operator:olga", mine))["id"] == mine
    work = json.loads(lua.call("work", "agent:a"))
    assert [v["id"] for v in work["offered"]] == [mine] and work["owned"] == []
    assert [v["id"] for v in json.loads(lua.call("work", "partner:bpo"))["owned"]] == [theirs]
    with pytest.raises(redis.ResponseError, match="caller is not"):
        lua.call("view", "bob", mine)
    assert lua.call("resolve", "partner:bpo", theirs, "bpo", NOW) == ["resolved", "team:bpo", 1]
    assert inbox(lua, "team:bpo")[-1][:2] == ("work.resolved", theirs)


def ingest(lua, n, identity, channel, frm, text="hello"):
    doc = json.dumps({"id": f"x{n}", "channel": channel, "from": {"id": frm, "name": "Jane Roe"},
                      "received_at": "2026-11-22T08:00:00Z", "text": text, "subject": "help"})
    return lua.ingest(id=f"x{n}", identity=identity, channel=channel, message=doc, now=NOW + n,
                    queue="default", routing=True, fingerprint="", fold_window_ms=0, fold_max_bits=0)[2]


@pytest.mark.parametrize("channel, frm, shown, ident", [
    ("email", "jane.roe@example.com", "j***@example.com", None),
    ("sms", "+14155550101", "+1415*****01", None),
    # written as a person would: masked as the number the router normalized it to, one form per customer
    ("sms", "+1 (415) 555-0101", "+1415*****01", "phone:+14155550101"),
    ("twitter", "123456789", None, None),  # a pseudonym
])
def test_a_masking_partner_never_receives_the_customers_identity(lua, channel, frm, shown, ident):
    ident = ident or f"{channel}:{frm}"
    c = ingest(lua, 1, ident, channel, frm)
    lua.assign(c, [target(team="bpo", agents=(), team_level=True)])
    ingest(lua, 2, ident, channel, frm, text="more")
    entries = lua.r.xrange(key("inbox", "team:bpo"))
    assert [f["type"] for _, f in entries] == ["work.assigned", "work.message"]
    seen = [json.dumps(f) for _, f in entries] + [lua.call("view", "partner:bpo", c), lua.call("work", "partner:bpo")]
    for text in seen:
        assert frm not in text and frm[1:] not in text and "Jane Roe" not in text
    got = json.loads(entries[1][1]["data"])["message"]
    assert got["text"] == "more" and got["subject"] == "help"
    if shown:
        assert got["from"]["id"] == shown
    else:
        assert got["from"]["id"].startswith("anon-") and len(got["from"]["id"]) == 21
        # stable for the partner, different for another partner
        assert json.loads(lua.call("view", "partner:bpo", c))["messages"][0]["from"]["id"] == got["from"]["id"]
        lua.call("transfer", "operator:o", c, "acme", NOW)
        replan(lua, c, "transfer", [target(team="acme", agents=(), team_level=True)], NOW)
        other = json.loads(lua.call("view", "partner:acme", c))["messages"][0]["from"]["id"]
        assert other.startswith("anon-") and other != got["from"]["id"]
    # in-house and operators see the identity as it is
    assert json.loads(lua.call("view", "operator:o", c))["messages"][0]["from"]["id"] == frm


def test_the_inbox_has_one_entry_per_event(lua):
    c = lua.conversation()
    lua.assign(c, [offer(agents=("a", "b"))])
    lua.call("accept", "agent:a", c, NOW + 1)
    lua.ingest(id="m1b", identity="email:c1@x.io", channel="email",
             message=json.dumps({"id": "m1b", "channel": "email", "from": {"id": "c1@x.io"},
                                 "received_at": "2026-11-22T08:00:00Z", "text": "again"}),
             now=NOW + 2, queue="default", routing=True, fingerprint="", fold_window_ms=0, fold_max_bits=0)
    lua.r.hset(key("conversation", c), "escalate_at", NOW + 3)
    lua.r.zadd(key("timers"), {c: NOW + 3})
    assert due(lua, NOW + 3) == [(c, "escalation")]
    replan(lua, c, "escalation", [offer(agents=("b",), i=1, auto_accept=True)], NOW + 3, prio=2)
    lua.call("resolve", "agent:b", c, "b", NOW + 4)
    assert [t for t, _, _ in inbox(lua, "agent:a")] == ["work.offered", "work.assigned", "work.message",
                                                          "work.revoked"]
    assert inbox(lua, "agent:a")[2][2]["message"]["text"] == "again"
    assert inbox(lua, "agent:a")[3][2]["reason"] == "escalation"
    assert [t for t, _, _ in inbox(lua, "agent:b")] == ["work.assigned", "work.escalated", "work.resolved"]
    assert inbox(lua, "agent:b")[1][2]["prio"] == 2
    assert all(d["conversation"] == c and "at" in d for _, _, d in inbox(lua, "agent:a") + inbox(lua, "agent:b"))


def test_work_merged_away_by_a_link_is_revoked_from_its_owner(lua):
    first, second = lua.conversation(), lua.conversation()
    lua.assign(first, [target(agents=("a",))])
    lua.assign(second, [target(agents=("b",))])
    lua.call("link", "email:c1@x.io", "email:c2@x.io", "olga", NOW + 1, "same person")
    merged = [c for c in (first, second) if conv(lua, c)["status"] == "merged"]
    assert len(merged) == 1
    owner = "agent:a" if merged[0] == first else "agent:b"
    assert inbox(lua, owner)[-1][:2] == ("work.revoked", merged[0])
    assert inbox(lua, owner)[-1][2]["reason"] == "merged"
