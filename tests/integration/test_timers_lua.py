"""Triggers are leases, drains follow the plan's validity and the serving order, and ingest is safe against
an error between its writes: due.lua, drain.lua, assign.lua and ingest.lua run in a real redis-server on
hand-written plans (test_assign_lua.py has the helpers), one defect of issue #7 per test."""
import json

import pytest
import redis

from lua_contract import declaration, key
from test_assign_lua import NOW, Lua, target

LEASE = 5000
GRACE = 15 * 60000


@pytest.fixture
def lua(redis_server):
    return Lua(redis_server.client())


def due(lua, now, unrouted_after=3000):
    """due.lua's items as (conversation, kind) pairs."""
    flat = lua.call("due", now=now, limit=200, grace_ms=GRACE, unrouted_after_ms=unrouted_after, lease_ms=LEASE,
                    test_clock=False)
    n = len(declaration("due", "reply")[1])
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), n)]


def plan_for(lua, conv, reason, targets, now, prio=3, **kw):
    """What plan.c would send for a due item: the version as due.lua read it."""
    p = {"conv": conv, "version": lua.r.hget(key("conversation", conv), "version") or "0", "channel": "email",
         "category": "basic", "prio": prio, "tier": "new", "reason": reason, "rule": "r", "queue": "core",
         "now": now, "due": -1, "escalate_at": -1, "targets": targets, "skills": [], "trace": {}, "aging": 0,
         "valid_until": -1}
    p.update(kw)
    return lua.send_plan(p)


def test_a_timeout_stays_until_the_move_commits_and_comes_back_after_the_lease(lua):
    c = lua.conversation()
    lua.assign(c, [target(agents=("a",), timeout=1000), target(agents=("b",), i=1)])
    assert due(lua, NOW + 2000) == [(c, "timeout")]
    # the router that got it died: nothing was removed, and nobody else takes it during the lease
    assert lua.r.hget(key("conversation", c), "timeout_at") == str(NOW + 1000)
    assert due(lua, NOW + 2000 + LEASE - 1) == []
    assert due(lua, NOW + 2000 + LEASE) == [(c, "timeout")]
    # the move commits: the trigger is spent
    assert plan_for(lua, c, "timeout", [target(agents=("b",), i=1)], NOW + 2000 + LEASE) == ["assigned", "agent:b"]
    assert lua.r.hget(key("conversation", c), "timeout_at") is None
    assert due(lua, NOW + 100 * LEASE) == []


def test_a_stale_decision_leaves_the_trigger_for_the_next_scan(lua):
    c = lua.conversation()
    lua.assign(c, [target(agents=("a",), timeout=1000), target(agents=("b",), i=1)])
    assert due(lua, NOW + 2000) == [(c, "timeout")]
    p = {"version": "0"}  # another router changed it meanwhile
    assert plan_for(lua, c, "timeout", [target(agents=("b",), i=1)], NOW + 2000, **p)[0] == "stale"
    assert due(lua, NOW + 2000 + LEASE) == [(c, "timeout")]


def test_escalation_is_marked_when_the_move_commits_not_when_found(lua):
    c = lua.conversation()
    lua.assign(c, [target(agents=("a",))])
    lua.r.hset(key("conversation", c), "escalate_at", NOW + 1000)
    lua.r.zadd(key("timers"), {c: NOW + 1000})
    assert due(lua, NOW + 2000) == [(c, "escalation")]
    assert lua.r.hget(key("conversation", c), "escalated") is None
    assert due(lua, NOW + 2000 + LEASE) == [(c, "escalation")]
    plan_for(lua, c, "escalation", [target(agents=("b",), i=1)], NOW + 2000 + LEASE)
    assert lua.r.hget(key("conversation", c), "escalated") == "1"
    assert lua.r.hget(key("stats"), "sla_escalated") == "1"
    assert due(lua, NOW + 100 * LEASE) == []


def test_an_owner_offline_past_grace_stays_a_trigger_until_its_work_moved(lua):
    c = lua.conversation()
    lua.assign(c, [target(agents=("a",))])
    lua.call("presence", "a", "offline", NOW)
    assert due(lua, NOW + GRACE) == [(c, "owner offline")]
    assert lua.r.zscore(key("agents_offline"), "a") is not None
    assert due(lua, NOW + GRACE + 1) == []
    assert due(lua, NOW + GRACE + LEASE) == [(c, "owner offline")]
    plan_for(lua, c, "owner offline", [target(agents=("b",))], NOW + GRACE + LEASE)
    assert due(lua, NOW + GRACE + 2 * LEASE) == []
    assert lua.r.zscore(key("agents_offline"), "a") is None  # nothing left with it: spent


def test_a_replan_keeps_the_expiry_until_the_new_plan_commits(lua):
    c = lua.conversation()
    full = target(agents=("a",), cap=0)
    plan_for(lua, c, "new", [full], NOW, valid_until=NOW + 1000)
    assert lua.r.hget(key("conversation", c), "status") == "queued"
    assert due(lua, NOW + 1000) == [(c, "replan")]
    assert lua.r.hget(key("conversation", c), "valid_until") == str(NOW + 1000)
    assert due(lua, NOW + 1000 + LEASE) == [(c, "replan")]
    plan_for(lua, c, "replan", [full], NOW + 1000 + LEASE, valid_until=NOW + 10 * LEASE)
    assert due(lua, NOW + 3 * LEASE) == []


def test_a_drain_does_not_assign_by_an_expired_plan(lua):
    c = lua.conversation()
    closed_later = target(agents=("a",), cap=1)
    lua.call("presence", "a", "away", NOW)
    plan_for(lua, c, "new", [closed_later], NOW, valid_until=NOW + 1000)  # the team closes at NOW + 1000
    lua.call("presence", "a", "available", NOW + 2000)
    assert lua.call("drain", "core", NOW + 2000, 1000, 0, "{}", True) == []  # waits for its re-plan
    assert lua.r.hget(key("conversation", c), "status") == "queued"
    assert lua.call("drain", "core", NOW + 500, 1000, 0, "{}", True) == [c]  # within the plan's validity


def test_work_nobody_can_take_does_not_hide_work_behind_it(lua):
    lua.call("presence", "x", "away", NOW)
    blocked = target(agents=("x",), cap=5, team="tier2")
    for i in range(120):
        plan_for(lua, lua.conversation(), "new", [blocked], NOW, due=NOW + i)
    takeable = lua.conversation()
    free = target(agents=("a",), cap=1)
    lua.call("presence", "a", "away", NOW)
    plan_for(lua, takeable, "new", [free], NOW, due=NOW + 1000)
    lua.call("presence", "a", "available", NOW)
    # the router looks at up to 1,000 a level (dispatch.c DRAIN_SCAN)
    assert lua.call("drain", "core", NOW, 1000, 0, "{}", True) == [takeable]


def test_overflow_conditions_do_not_starve_their_own_queue(lua):
    waiting = []
    core = target(agents=("a",), cap=1, queue_below=1)
    lua.call("presence", "a", "away", NOW)
    for i in range(3):
        c = lua.conversation()
        plan_for(lua, c, "new", [core], NOW, due=NOW + i)
        waiting.append(c)
    lua.call("presence", "a", "available", NOW)
    assert lua.call("drain", "core", NOW, 1000, 0, "{}", True) == [waiting[0]]


def test_a_replan_keeps_what_escalation_and_breach_gave(lua):
    c = lua.conversation()
    full = target(agents=("a",), cap=0)
    plan_for(lua, c, "new", [full], NOW, prio=3)
    plan_for(lua, c, "escalation", [full], NOW + 1, prio=2)
    assert lua.r.hget(key("conversation", c), "queued_prio") == "2"
    plan_for(lua, c, "replan", [full], NOW + 2, prio=3)
    assert lua.r.hget(key("conversation", c), "queued_prio") == "2"
    lua.r.hset(key("conversation", c), "breached", 1)
    plan_for(lua, c, "replan", [full], NOW + 3, prio=3)
    assert lua.r.hget(key("conversation", c), "queued_prio") == "1"


def test_a_breach_makes_waiting_work_urgent_and_the_drain_serves_it_so(lua):
    """Queued work past its SLA jumps to the most urgent level, and is that urgent: the conversation's priority
    and the decision of the drain that serves it say 1, not the level its plan was made at."""
    c = lua.conversation()
    lua.call("presence", "a", "away", NOW)
    plan_for(lua, c, "escalation", [target(agents=("a",))], NOW, prio=2, due=NOW + 10)
    assert lua.r.hget(key("conversation", c), "queued_prio") == "2"
    due(lua, NOW + 20)
    h = lua.r.hgetall(key("conversation", c))
    assert h["breached"] == "1" and h["queued_prio"] == "1" and h["prio"] == "1", h
    lua.call("presence", "a", "available", NOW + 30)
    assert lua.call("drain", "core", NOW + 30, 1000, 0, "{}", True) == [c]
    last = json.loads(lua.r.lindex(key("conversation_decisions", c), -1))
    assert last["outcome"] == "assigned" and last["prio"] == 1, last


def test_responding_to_queued_work_keeps_its_plan_expiry(lua):
    c = lua.conversation()
    plan_for(lua, c, "new", [target(agents=("a",), cap=0)], NOW, valid_until=NOW + 1000)
    lua.call("respond", "operator:t", c, "test", NOW + 10)
    assert lua.r.zscore(key("timers"), c) == NOW + 1000
    assert due(lua, NOW + 1000) == [(c, "replan")]


def test_an_error_between_ingest_writes_never_leaves_a_message_stored_nowhere(lua):
    c = lua.conversation()  # customer c1@x.io, message m1
    lua.r.delete(key("conversation_messages", c))
    lua.r.set(key("conversation_messages", c), "not a list")  # the next write to it fails
    doc = json.dumps({"id": "late", "channel": "email", "from": {"id": "c1@x.io"},
                      "received_at": "2026-11-22T08:00:00Z", "text": "again"})
    args = dict(id="late", identity="email:c1@x.io", channel="email", message=doc, now=NOW, queue="default",
                routing=True, fingerprint="", fold_window_ms=0, fold_max_bits=0)
    with pytest.raises(redis.ResponseError):
        lua.ingest(**args)
    assert not lua.r.exists(key("msg", "late"))  # not "already stored": a resend stores it
    lua.r.delete(key("conversation_messages", c))
    assert lua.ingest(**args)[0] == 1
    assert lua.r.lrange(key("conversation_messages", c), 0, -1) == ["late"]


def test_several_messages_in_one_call_are_each_stored_once_in_order(lua):
    """The router sends a read's messages for one connection in one ingest.lua call: each is its own unit,
    in order, so a copy of an earlier one in the same call is a duplicate and a follow-up joins the
    conversation the first one opened; the counters count what was stored."""
    def doc(i, frm, text):
        return json.dumps({"id": i, "channel": "email", "from": {"id": frm}, "received_at": "2026-11-22T08:00:00Z",
                           "text": text})
    msgs = [("b1", "email:bob@x.io", "email", doc("b1", "bob@x.io", "hello"), "", ""),
            ("b1", "email:bob@x.io", "email", doc("b1", "bob@x.io", "hello"), "", ""),
            ("b2", "email:bob@x.io", "email", doc("b2", "bob@x.io", "more"), "", ""),
            ("c1", "email:carol@x.io", "email", doc("c1", "carol@x.io", "hi"), "", "")]
    reply = lua.call("ingest", NOW, "default", True, 0, 0, "{}", *[v for m in msgs for v in m])
    records = [reply[i:i + 11] for i in range(0, len(reply), 11)]
    assert [r[0] for r in records] == [1, 0, 1, 1]  # stored, duplicate, stored, stored
    assert [r[3] for r in records] == [1, 0, 0, 1]  # b1 and c1 opened conversations; b2 joined b1's
    assert records[1][2] == records[2][2] == records[0][2] != records[3][2]
    assert lua.r.lrange(key("conversation_messages", records[0][2]), 0, -1) == ["b1", "b2"]
    assert lua.r.hget(key("stats"), "messages") == "3" and lua.r.hget(key("stats"), "duplicates") == "1"
    assert sum(int(v) for v in lua.r.hgetall(key("volume", str(NOW // 60000))).values()) == 3
    # the arguments come in sixes: a call cut short is refused whole, nothing written
    with pytest.raises(redis.ResponseError, match="messages come in sixes"):
        lua.call("ingest", NOW, "default", True, 0, 0, "{}", "d1", "email:dan@x.io", "email")
    assert not lua.r.exists(key("msg", "d1"))


def test_a_drain_looks_at_its_queue_again_only_when_capacity_was_freed(lua):
    a = target(agents=("a",), cap=1)
    first, waiting = lua.conversation(), lua.conversation()
    plan_for(lua, first, "new", [a], NOW)
    plan_for(lua, waiting, "new", [a], NOW)
    assert lua.call("drain", "core", NOW, 1000, 0, "{}", True) == []  # a is full
    assert lua.call("drain", "core", NOW, 1000, 0, "{}", False) == []  # nothing freed since: not even read
    lua.call("resolve", "operator:t", first, "test", NOW)  # capacity freed
    assert lua.call("drain", "core", NOW, 1000, 0, "{}", False) == [waiting]
    assert lua.r.hget(key("team_queue_info", "core"), waiting) is None  # no longer waiting


def test_a_replan_leaves_the_serving_order_to_the_drain(lua):
    """An office opening re-plans its waiting work one conversation at a time, in whatever order the timers
    come; who is served first is still the most urgent, then the earliest due."""
    a = target(agents=("a",), cap=1)
    lua.call("presence", "a", "away", NOW)
    late, urgent, early = lua.conversation(), lua.conversation(), lua.conversation()
    for c, prio, due in ((late, 3, NOW + 9000), (urgent, 1, NOW + 50000), (early, 3, NOW + 1000)):
        plan_for(lua, c, "new", [a], NOW, prio=prio, due=due, valid_until=NOW + 100)
    lua.call("presence", "a", "available", NOW + 100)
    for c, prio, due in ((late, 3, NOW + 9000), (early, 3, NOW + 1000), (urgent, 1, NOW + 50000)):
        assert plan_for(lua, c, "replan", [a], NOW + 100, prio=prio, due=due)[0] == "queued"
    assert lua.call("drain", "core", NOW + 100, 1000, 0, "{}", False) == [urgent]
