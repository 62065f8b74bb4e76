"""ingest.lua in a real redis-server, called as the router calls it: deduplication by id (its seen:<id>
marker, or the message still in Redis once the marker has expired) and a resend after a store that was cut
between the conversation's list and the marker (Redis does not roll a script back): the message ends up in
its conversation once, with or without the fold check having read the list's end already."""
import json

import pytest

from lua_contract import Scripts

NOW = 1_800_000_000_000
FIXED = dict(now=NOW, queue="default", routing=True, fold_window_ms=60000, fold_max_bits=3, dedup_ms=86400000)


@pytest.fixture
def lua(redis_server):
    return Scripts(redis_server.client())


def store(lua, id, text, fingerprint, who="c1@x.io"):
    doc = json.dumps({"id": id, "channel": "email", "from": {"id": who}, "received_at": "2026-11-22T08:00:00Z",
                      "text": text})
    return lua.ingest(id=id, identity=f"email:{who}", channel="email", message=doc, fingerprint=fingerprint,
                      **FIXED)


def test_an_id_is_known_by_its_marker_or_by_its_message_while_stored(lua):
    first = store(lua, "m1", "hello", "")
    assert first[0] == 1 and first[3] == 1
    cv = first[2]
    again = store(lua, "m1", "hello", "")
    assert again[0] == 0 and again[2] == cv               # the marker
    lua.r.delete("omni:seen:m1")                           # expired (retention.dedup), message not archived
    again = store(lua, "m1", "hello", "")
    assert again[0] == 0 and again[2] == cv
    assert lua.r.lrange(f"omni:conversation:{cv}:messages", 0, -1) == ["m1"]
    assert lua.r.hget("omni:stats", "duplicates") == "2" and lua.r.hget("omni:stats", "messages") == "1"


@pytest.mark.parametrize("fingerprint", ["", "ffffffffffffffff"], ids=["no-fold-check", "fold-check"])
def test_a_resend_after_a_cut_store_is_in_its_conversation_once(lua, fingerprint):
    cv = store(lua, "m1", "hello", "0000000000000000")[2]
    assert store(lua, "m2", "a different question", fingerprint)[2] == cv
    # the store of m2 cut after its RPUSH: neither its hash nor its marker were written
    lua.r.delete("omni:msg:m2", "omni:seen:m2")
    again = store(lua, "m2", "a different question", fingerprint)
    assert again[0] == 1 and again[2] == cv and again[8] == ""  # stored, not folded into itself
    assert lua.r.lrange(f"omni:conversation:{cv}:messages", 0, -1) == ["m1", "m2"]
    assert lua.r.hget("omni:msg:m2", "conversation") == cv and lua.r.exists("omni:seen:m2")
    # and a new message after it is added as usual
    assert store(lua, "m3", "one more thing", fingerprint)[2] == cv
    assert lua.r.lrange(f"omni:conversation:{cv}:messages", 0, -1) == ["m1", "m2", "m3"]


def test_a_near_copy_folds_into_the_newest_and_is_listed_once(lua):
    cv = store(lua, "m1", "hello", "0000000000000000")[2]
    copy = store(lua, "m2", "hello!", "0000000000000001")
    assert copy[0] == 1 and copy[2] == cv and copy[8] == "m1"
    assert lua.r.lrange(f"omni:conversation:{cv}:messages", 0, -1) == ["m1", "m2"]
    assert lua.r.hget("omni:msg:m2", "folded_into") == "m1"
