"""ingest.lua in a real redis-server, called as the router calls it: deduplication by id (the message still
in Redis, or its seen:<id> marker once archive_done.lua took the message away) and a resend after a store that
was cut between the conversation's list and the message's hash (Redis does not roll a script back): the
message ends up in its conversation once, with or without the fold check having read the list's end already. And a new
customer's first conversation decided in the same call on the plan sent with its message, only when the
sender did turn out to be new."""
import json

import pytest

from lua_contract import Scripts
from test_assign_lua import Lua as AssignLua, target

NOW = 1_800_000_000_000
FIXED = dict(now=NOW, queue="default", routing=True, fold_window_ms=60000, fold_max_bits=3)


@pytest.fixture
def lua(redis_server):
    return Scripts(redis_server.client())


def store(lua, id, text, fingerprint, who="c1@x.io", plan=""):
    doc = json.dumps({"id": id, "channel": "email", "from": {"id": who}, "received_at": "2026-11-22T08:00:00Z",
                      "text": text})
    return lua.ingest(id=id, identity=f"email:{who}", channel="email", message=doc, fingerprint=fingerprint,
                      plan=plan, **FIXED)


def test_an_id_is_known_by_its_message_while_stored_or_by_its_marker(lua):
    first = store(lua, "m1", "hello", "")
    assert first[0] == 1 and first[3] == 1
    cv = first[2]
    assert not lua.r.exists("omni:seen:m1")                # a stored message is its own proof: no marker
    again = store(lua, "m1", "hello", "")
    assert again[0] == 0 and again[2] == cv               # the message
    # archived within retention.dedup: archive_done.lua deleted the message and left the marker
    lua.r.delete("omni:msg:m1")
    lua.r.set("omni:seen:m1", cv, px=60000)
    again = store(lua, "m1", "hello", "")
    assert again[0] == 0 and again[2] == cv
    assert lua.r.lrange(f"omni:conversation:{cv}:messages", 0, -1) == ["m1"]
    assert lua.r.hget("omni:stats", "duplicates") == "2" and lua.r.hget("omni:stats", "messages") == "1"
    # both gone (the marker expired): the id is forgotten, stored as new
    lua.r.delete("omni:seen:m1")
    assert store(lua, "m1", "hello", "")[0] == 1


@pytest.mark.parametrize("fingerprint", ["", "ffffffffffffffff"], ids=["no-fold-check", "fold-check"])
def test_a_resend_after_a_cut_store_is_in_its_conversation_once(lua, fingerprint):
    cv = store(lua, "m1", "hello", "0000000000000000")[2]
    assert store(lua, "m2", "a different question", fingerprint)[2] == cv
    # the store of m2 cut after its RPUSH: its hash was not written
    lua.r.delete("omni:msg:m2")
    again = store(lua, "m2", "a different question", fingerprint)
    assert again[0] == 1 and again[2] == cv and again[8] == ""  # stored, not folded into itself
    assert lua.r.lrange(f"omni:conversation:{cv}:messages", 0, -1) == ["m1", "m2"]
    assert lua.r.hget("omni:msg:m2", "conversation") == cv
    # and a new message after it is added as usual
    assert store(lua, "m3", "one more thing", fingerprint)[2] == cv
    assert lua.r.lrange(f"omni:conversation:{cv}:messages", 0, -1) == ["m1", "m2", "m3"]


def test_a_near_copy_folds_into_the_newest_and_is_listed_once(lua):
    cv = store(lua, "m1", "hello", "0000000000000000")[2]
    copy = store(lua, "m2", "hello!", "0000000000000001")
    assert copy[0] == 1 and copy[2] == cv and copy[8] == "m1"
    assert lua.r.lrange(f"omni:conversation:{cv}:messages", 0, -1) == ["m1", "m2"]
    assert lua.r.hget("omni:msg:m2", "folded_into") == "m1"


# ---- a new customer's first conversation decided in the call that stores its message ----

def first_plan(lua, targets, **kw):
    """The plan plan.c makes before the store for a sender the router has not seen: conv "" (not known yet),
    version "0", a new customer's first conversation. Seeds the targets' agents as the policy would."""
    plan = {"conv": "", "version": "0", "channel": "email", "category": "basic", "prio": 3, "tier": "new",
            "reason": "new", "rule": "r", "queue": "core", "now": NOW, "due": NOW + 3600000, "escalate_at": -1,
            "targets": targets, "skills": [], "trace": {}, "aging": 600000, "valid_until": -1}
    plan.update(kw)
    return lua.prepared(plan)


@pytest.fixture
def alua(redis_server):
    return AssignLua(redis_server.client())


def test_a_new_customers_first_conversation_is_decided_in_the_same_call(alua):
    plan = first_plan(alua, [target(agents=("a",), cap=1)])
    r = store(alua, "n1", "hello", "", who="new@x.io", plan=plan)
    cv = r[2]
    assert r[0] == 1 and r[3] == 1 and r[4] == 1 and r[9:] == ["assigned", "agent:a"]
    h = alua.r.hgetall(f"omni:conversation:{cv}")
    assert h["owner"] == "agent:a" and h["status"] == "assigned" and h["version"] == "1", h
    # the hash is written once, with the decision: what opening it writes is there too
    assert (h["customer"], h["first_identity"], h["channel"], h["opened_at"]) == (r[1], "email:new@x.io", "email", str(NOW)), h
    assert alua.r.zscore("omni:unrouted", cv) is None  # decided: nothing left for a router's tick
    d = json.loads(alua.r.lindex(f"omni:conversation:{cv}:decisions", -1))
    assert d["outcome"] == "assigned" and d["owner"] == "agent:a" and d["reason"] == "new", d
    kinds = [f["type"] for _, f in alua.r.xrange("omni:events")]
    assert kinds == ["opened", "assigned"], kinds
    # the same decision assign.lua makes: a second new customer finds the only agent full, and queues
    r2 = store(alua, "n2", "hello", "", who="other@x.io", plan=first_plan(alua, [target(agents=("a",), cap=1)]))
    assert r2[9:] == ["queued", "core"], r2
    queued = json.loads(alua.r.hget(f"omni:conversation:{r2[2]}", "plan"))
    assert queued["conv"] == r2[2]  # the plan kept for the drains names its conversation


def test_a_first_plan_is_not_used_when_the_sender_was_a_customer_already(alua):
    cv = store(alua, "k1", "hello", "", who="known@x.io")[2]
    alua.r.hset(f"omni:conversation:{cv}", "status", "resolved")
    alua.r.hdel(f"omni:customer:{alua.r.hget(f'omni:conversation:{cv}', 'customer')}", "open_conversation")
    # the router had not seen the sender (another router stored the first message): it sent a plan
    r = store(alua, "k2", "again", "", who="known@x.io", plan=first_plan(alua, [target(agents=("a",))]))
    assert r[3] == 1 and r[4] == 0 and r[9:] == ["", ""], r  # opened, not a new customer: not decided here
    assert alua.r.zscore("omni:unrouted", r[2]) is not None  # the router plans it from the reply, as before
    assert not alua.r.exists(f"omni:conversation:{r[2]}:decisions")
    # and a message joining an open conversation does not use one either
    j = store(alua, "k3", "more", "", who="known@x.io", plan=first_plan(alua, [target(agents=("a",))]))
    assert j[2] == r[2] and j[3] == 0 and j[9:] == ["", ""]


def test_a_bad_first_plan_is_an_error_and_leaves_the_conversation_for_a_router(alua):
    with pytest.raises(Exception, match="^ingest: a plan is not JSON"):
        store(alua, "b1", "hello", "", who="bad@x.io", plan="{nope")
    cv = alua.r.hget("omni:msg:b1", "conversation")
    assert cv and alua.r.zscore("omni:unrouted", cv) is not None  # stored, and any router's tick routes it
    h = alua.r.hgetall(f"omni:conversation:{cv}")  # written as opened, as without a plan
    assert h["status"] == "open" and h["first_identity"] == "email:bad@x.io" and h["channel"] == "email", h
    assert "version" not in h and h["customer"] == alua.r.hget("omni:identity:email:bad@x.io", "customer"), h
    # the connector's resend is a duplicate, ACKed
    assert store(alua, "b1", "hello", "", who="bad@x.io")[0] == 0
    # the ids the failed call gave are spent (a call takes its ids from one read of each sequence and writes the
    # sequence once at its end, failed or not): the next sender gets a customer and a conversation of its own
    r = store(alua, "b2", "hello", "", who="next@x.io")
    assert r[1] != h["customer"] and r[2] != cv, (r, h, cv)
    assert alua.r.get("omni:seq:customer") == r[1] and alua.r.get("omni:seq:conversation") == r[2]


def test_the_event_stream_is_trimmed_near_its_cap_by_the_next_call(lua):
    """omni:events is capped near 100,000 entries (docs/redis.md): a call trims it once, before its first entry
    (whole nodes of 100, as XTRIM MAXLEN ~ does), instead of each XADD carrying MAXLEN into the AOF."""
    pipe = lua.r.pipeline(transaction=False)
    for _ in range(100_250):
        pipe.xadd("omni:events", {"type": "filler"})
    pipe.execute()
    store(lua, "m1", "hello", "")  # opens a conversation: one `opened` event
    n = lua.r.xlen("omni:events")
    assert 100_000 < n <= 100_101, n
    assert lua.r.xrevrange("omni:events", count=1)[0][1]["type"] == "opened"
