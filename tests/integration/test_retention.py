"""Retention (docs/archive.md): a resolved conversation leaves Redis after retention.resolved, written once to the
archive file of its UTC day before it goes; open conversations stay; a message id is remembered for
retention.dedup; the archive unwritable keeps everything in Redis and says so; a router killed between its fsync
and the delete leaves no duplicate. The router runs on the test clock (OMNIROUTER_TEST_CLOCK=1, `omnictl clock
advance`), so retention.resolved passes without waiting; retention.dedup is Redis's own expiry (real time), set
to a few seconds here."""
import datetime
import json
import os
import time

import pytest

from harness import Router, message, submit, wait_for

RETENTION = {"dedup": "3s", "resolved": "2h", "tombstone": "1h"}


def start(tmp_path, redis_server, archive_dir, name="router", env=None, extra=None):
    """extra: retention settings other than RETENTION's."""
    r = Router(str(tmp_path / name), redis_server.address, name=name,
               extra={"retention": dict(RETENTION, archive_dir=archive_dir, **(extra or {}))},
               env=dict({"OMNIROUTER_TEST_CLOCK": "1"}, **(env or {}))).start()
    r.redis = redis_server.client()
    return r


def conversation_of(r, msg_id):
    return wait_for(lambda: r.redis.hget("omni:msg:" + msg_id, "conversation"), 10, f"message {msg_id} stored")


def records(archive_dir, torn=None):
    """Every record in the archive, by file name; a line that is not whole JSON (a torn write) is skipped, as
    docs/archive.md tells readers to, and counted in torn (a list) when given, else an error."""
    out = {}
    for name in sorted(os.listdir(archive_dir)) if os.path.isdir(archive_dir) else []:
        out[name] = []
        with open(os.path.join(archive_dir, name)) as f:
            for line in f:
                try:
                    out[name].append(json.loads(line))
                except ValueError:
                    assert torn is not None, f"a torn line in {name}: {line[:80]}"
                    torn.append(line)
    return out


def day_file(r):
    """The archive file of the router's (test) clock's UTC day."""
    offset = int(r.redis.get("omni:clock:offset") or 0)
    now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(milliseconds=offset)
    return now.strftime("%Y-%m-%d") + ".jsonl"


def gone(r, conv):
    return not r.redis.exists("omni:conversation:" + conv)



def test_a_router_without_routing_rules_still_records_the_time_its_tick_has_seen(tmp_path, redis_server):
    """omni:due:scanned (docs/redis.md): tests wait on it after moving the test clock, whatever the policy; this
    router has no routing rules, so nothing is ever due, and the key is written all the same."""
    r = start(tmp_path, redis_server, str(tmp_path / "archive"))
    try:
        r.ctl("clock", "advance", "1h")
        target = int(time.time() * 1000) + 3600 * 1000
        wait_for(lambda: int(r.redis.get("omni:due:scanned") or 0) >= target, 10, "a scan that saw the new time")
    finally:
        r.stop()

def test_resolved_conversation_archived_once_open_one_stays(tmp_path, redis_server):
    archive = str(tmp_path / "archive")
    r = start(tmp_path, redis_server, archive)
    r.wait_log(r"retention: .* resolved conversations kept 7200 s")
    sent = [message("a1", frm="ann@example.com", text="my order is late"),
            message("a2", frm="ann@example.com", text="order 1234, please hurry"),
            message("b1", frm="bob@example.com", text="hello?"),
            message("c1", frm="cat@example.com", text="still waiting")]
    submit(r.endpoint, str(tmp_path / "spool"), sent)
    ann, bob, cat = conversation_of(r, "a1"), conversation_of(r, "b1"), conversation_of(r, "c1")
    assert conversation_of(r, "a2") == ann and len({ann, bob, cat}) == 3
    r.ctl("conversation", "resolve", ann)
    assert r.redis.zscore("omni:archive:due", ann) is not None
    r.ctl("clock", "advance", "1h")
    r.ctl("conversation", "resolve", bob)
    # ann's retention is over, bob's is not: the look that archives ann sees bob too and leaves it
    r.ctl("clock", "advance", "90m")
    wait_for(lambda: gone(r, ann), 20, "the resolved conversation archived")
    assert not gone(r, bob) and not gone(r, cat)
    day = day_file(r)
    recs = records(archive)
    assert list(recs) == [day]
    assert [x["conversation"] for x in recs[day]] == [ann], recs
    rec = recs[day][0]
    assert rec["fields"]["status"] == "resolved" and rec["fields"]["customer"]
    assert [m["id"] for m in rec["messages"]] == ["a1", "a2"]
    assert [json.loads(m["json"])["text"] for m in rec["messages"]] == [sent[0]["text"], sent[1]["text"]]
    assert isinstance(rec["decisions"], list) and rec["merged"] == []
    # every key of the conversation is gone; the others are untouched
    for key in ("omni:msg:a1", "omni:msg:a2", f"omni:conversation:{ann}:messages",
                f"omni:conversation:{ann}:decisions"):
        assert not r.redis.exists(key), key
    assert r.redis.zscore("omni:archive:due", ann) is None
    assert r.redis.exists("omni:msg:b1") and r.redis.exists("omni:msg:c1")
    assert int(r.redis.hget("omni:stats", "archived")) == 1
    # its customer keeps the count (tiers depend on it), not the id
    customer = rec["fields"]["customer"]
    assert r.redis.smembers(f"omni:customer:{customer}:conversations") == set()
    assert r.redis.hget("omni:customer:" + customer, "archived_conversations") == "1"
    assert "  conversations 1 archived\n" in r.ctl("customer", "show", "ann@example.com").stdout  # none open

    # omnictl names the file: from the tombstone, and by searching the archive once the tombstone is gone
    out = r.ctl("conversation", "show", ann).stdout
    assert f"archived to {os.path.join(archive, day)}" in out, out
    assert 0 < r.redis.pttl("omni:archived:" + ann) <= 3600 * 1000
    r.redis.delete("omni:archived:" + ann)
    out = r.ctl("conversation", "show", ann).stdout
    assert f"archived to {os.path.join(archive, day)}" in out, out
    missing = r.ctl("conversation", "show", "999", check=False)
    assert missing.returncode == 1 and "no such conversation" in missing.stderr and missing.stdout == ""

    # bob's turn; each record exactly once, the open conversation stays however long
    r.ctl("clock", "advance", "1h")
    wait_for(lambda: gone(r, bob), 20, "the second resolved conversation archived")
    day = day_file(r)
    assert sorted(x["conversation"] for f in records(archive).values() for x in f) == sorted([ann, bob])
    assert r.redis.hget("omni:conversation:" + cat, "status") == "open" and r.redis.exists("omni:msg:c1")
    assert int(r.redis.hget("omni:stats", "archived")) == 2
    r.stop()


def test_a_merged_conversation_is_found_inside_the_record_it_went_with(tmp_path, redis_server):
    """A conversation merged into another (a customer link) is archived inside the record of the one it was merged
    into: omnictl says so, from the tombstone and by searching the files once it has expired."""
    archive = str(tmp_path / "archive")
    r = start(tmp_path, redis_server, archive)
    submit(r.endpoint, str(tmp_path / "spool"), [message("h1", frm="hank@example.com", text="where is my parcel"),
                                                 message("g1", frm="gina@example.com", text="parcel 77 is late")])
    hank, gina = conversation_of(r, "h1"), conversation_of(r, "g1")
    r.ctl("customer", "link", "email:hank@example.com", "email:gina@example.com")
    into = r.redis.hget("omni:conversation:" + gina, "merged_into") or r.redis.hget("omni:conversation:" + hank,
                                                                                    "merged_into")
    kept, merged = (into, gina if into == hank else hank)
    r.ctl("conversation", "resolve", kept)
    r.ctl("clock", "advance", "3h")
    wait_for(lambda: gone(r, kept) and gone(r, merged), 20, "both archived")
    day = os.path.join(archive, day_file(r))
    want = (f"conversation {merged}: archived to {day}\n  merged into conversation {kept}: inside its record, the line "
            f'starting {{"conversation":"{kept}", (docs/archive.md)\n')
    assert r.ctl("conversation", "show", merged).stdout == want
    r.redis.delete("omni:archived:" + merged, "omni:archived:" + kept)
    assert r.ctl("conversation", "show", merged).stdout == want
    assert f'its record is the line starting {{"conversation":"{kept}",' in r.ctl("conversation", "show", kept).stdout
    # both counted and told as archived, as the customer counts them
    assert r.redis.hget("omni:stats", "archived") == "2"
    told = {f["conversation"]: f for _, f in r.redis.xrange("omni:events") if f.get("type") == "archived"}
    assert set(told) == {kept, merged} and told[merged]["inside"] == kept and "inside" not in told[kept], told
    wait_for(lambda: sum(int(v) for k, v in r.redis.hgetall(r.redis.keys("omni:router:*")[0]).items()
                         if k == "archived") == 2, 10, "the router's own count")
    r.stop()


def test_duplicate_while_stored_and_after_archive_inside_the_window(tmp_path, redis_server):
    # retention.dedup longer than the 3 h the clock moves on: 1 h of it is left when the message is archived
    r = start(tmp_path, redis_server, str(tmp_path / "archive"), extra={"dedup": "4h"})
    m = message("dup-1", frm="cat@example.com", text="is anybody there")
    submit(r.endpoint, str(tmp_path / "s1"), [m])
    conv = conversation_of(r, "dup-1")
    assert not r.redis.exists("omni:seen:dup-1")  # a stored message is its own proof
    submit(r.endpoint, str(tmp_path / "s2"), [m])  # a connector's resend, the message still in Redis
    stats = r.redis.hgetall("omni:stats")
    assert stats["messages"] == "1" and stats["duplicates"] == "1", stats

    # resolved and archived 3 h after it was stored: the marker carries the id through what is left of the window
    r.ctl("conversation", "resolve", conv)
    r.ctl("clock", "advance", "3h")
    wait_for(lambda: gone(r, conv), 20, "the conversation archived")
    assert not r.redis.exists("omni:msg:dup-1")
    assert r.redis.get("omni:seen:dup-1") == conv
    assert 3500 * 1000 < r.redis.pttl("omni:seen:dup-1") <= 3600 * 1000  # 4 h less the 3 h gone by
    ex = r.ctl("explain", "dup-1", check=False)  # explain names where it went
    assert ex.returncode == 1 and ex.stderr.startswith(f"message dup-1: archived with conversation {conv};"), ex
    assert ex.stdout == ""
    submit(r.endpoint, str(tmp_path / "s3"), [m])
    stats = r.redis.hgetall("omni:stats")
    assert stats["messages"] == "1" and stats["duplicates"] == "2", stats
    r.stop()


def test_duplicate_after_the_window_stored_as_new(tmp_path, redis_server):
    # retention.dedup (3 s) shorter than the 3 h between store and archive: no marker is left at all
    r = start(tmp_path, redis_server, str(tmp_path / "archive"))
    m = message("dup-1", frm="cat@example.com", text="is anybody there")
    submit(r.endpoint, str(tmp_path / "s1"), [m])
    conv = conversation_of(r, "dup-1")
    r.ctl("conversation", "resolve", conv)
    r.ctl("clock", "advance", "3h")
    wait_for(lambda: gone(r, conv), 20, "the conversation archived")
    assert not r.redis.exists("omni:seen:dup-1") and not r.redis.exists("omni:msg:dup-1")
    # the id is forgotten: the same id is stored as a new message, in a new conversation
    submit(r.endpoint, str(tmp_path / "s2"), [m])
    again = conversation_of(r, "dup-1")
    assert again != conv
    stats = r.redis.hgetall("omni:stats")
    assert stats["messages"] == "2" and stats.get("duplicates", "0") == "0", stats
    assert r.redis.lrange(f"omni:conversation:{again}:messages", 0, -1) == ["dup-1"]
    r.stop()


def test_marker_expires_in_real_time_then_stored_as_new(tmp_path, redis_server):
    # archived at once (retention.resolved 1 s, the real clock): the marker lasts the rest of retention.dedup's
    # 4 s by Redis's own expiry, and then the id is forgotten
    r = start(tmp_path, redis_server, str(tmp_path / "archive"), extra={"dedup": "4s", "resolved": "1s"})
    m = message("dup-1", frm="cat@example.com", text="is anybody there")
    submit(r.endpoint, str(tmp_path / "s1"), [m])
    conv = conversation_of(r, "dup-1")
    r.ctl("conversation", "resolve", conv)
    wait_for(lambda: gone(r, conv), 20, "the conversation archived")
    ttl = r.redis.pttl("omni:seen:dup-1")
    if ttl > 0:  # usually: archived within the 4 s; a resend now is still a duplicate
        submit(r.endpoint, str(tmp_path / "s2"), [m])
        assert r.redis.hget("omni:stats", "messages") == "1"
    wait_for(lambda: not r.redis.exists("omni:seen:dup-1"), 10, "the id forgotten after retention.dedup")
    submit(r.endpoint, str(tmp_path / "s3"), [m])
    assert conversation_of(r, "dup-1") != conv
    assert r.redis.hget("omni:stats", "messages") == "2"
    r.stop()


def test_unwritable_archive_keeps_everything_in_redis(tmp_path, redis_server):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the archive's parent directory should be\n")
    archive = str(blocker / "archive")
    r = start(tmp_path, redis_server, archive)
    submit(r.endpoint, str(tmp_path / "spool"), [message("u1", frm="dan@example.com", text="one"),
                                                  message("u2", frm="dan@example.com", text="two")])
    conv = conversation_of(r, "u1")
    r.ctl("conversation", "resolve", conv)
    r.ctl("clock", "advance", "3h")
    r.wait_log(r"error: archive: cannot create the directory " + archive + r".*1 resolved conversations stay in "
               r"Redis", 20)
    assert not gone(r, conv)
    assert r.redis.lrange(f"omni:conversation:{conv}:messages", 0, -1) == ["u1", "u2"]
    assert r.redis.exists("omni:msg:u1") and r.redis.exists("omni:msg:u2")
    assert r.redis.hget("omni:conversation:" + conv, "archive_claim") is None  # released, not held for a lease
    wait_for(lambda: "ARCHIVE FAILING (resolved conversations stay in Redis): cannot create the directory" in
             r.ctl("status").stdout, 10, "omnictl status to show the archive failing")

    # a person fixes it: the next try writes it, once, and only then it leaves Redis
    blocker.unlink()
    wait_for(lambda: gone(r, conv), 20, "the conversation archived once the directory can be made")
    recs = records(archive)
    assert [x["conversation"] for f in recs.values() for x in f] == [conv]
    r.wait_log(r"archive: writing to .* again")
    wait_for(lambda: "archived 1\n" in r.ctl("status").stdout, 10, "omnictl status to count the archived one")
    r.stop()


@pytest.mark.parametrize("case", ["after-fsync", "inside-write", "next-day"])
def test_router_killed_mid_archive_leaves_no_loss_no_duplicate(tmp_path, redis_server, case):
    """Killed after its fsync, before the delete: the next router finds the records and writes none again.
    inside-write: the last record is cut short as a kill inside write() leaves it: it is written again, whole.
    next-day: the takeover comes a day later, its own records going to the next day's file: it finds them in
    the first day's."""
    torn = case == "inside-write"
    archive = str(tmp_path / "archive")
    a = start(tmp_path, redis_server, archive, name="a", env={"OMNIROUTER_TEST_ARCHIVE_PAUSE": "1"})
    submit(a.endpoint, str(tmp_path / "spool"), [message("k1", frm="eve@example.com", text="first"),
                                                  message("k2", frm="fay@example.com", text="second")])
    convs = [conversation_of(a, "k1"), conversation_of(a, "k2")]
    for c in convs:
        a.ctl("conversation", "resolve", c)
    a.ctl("clock", "advance", "3h")
    a.wait_log(r"archive: test pause: 2 records fsynced to ", 20)
    a.kill()  # SIGKILL after the fsync, before archive_done.lua
    day = day_file(a)
    assert sorted(x["conversation"] for x in records(archive)[day]) == sorted(convs)
    if torn:
        path = os.path.join(archive, day)
        os.truncate(path, os.path.getsize(path) - 20)
        with open(path, "a") as f:  # another router's append ends the torn line before the takeover looks
            f.write("\n")
    assert not gone(a, convs[0]) and not gone(a, convs[1])
    assert a.redis.hget("omni:conversation:" + convs[0], "archive_file") == os.path.join(archive, day)

    # another router takes the claims over once their lease is out, finds the records and writes none again
    b = start(tmp_path, redis_server, archive, name="b")
    b.ctl("clock", "advance", "25h" if case == "next-day" else "2m")
    wait_for(lambda: gone(b, convs[0]) and gone(b, convs[1]), 20, "the conversations archived by the second router")
    cut = []
    every = records(archive, cut)
    assert list(every) == [day]  # nothing in the second router's day file
    recs = every[day]
    assert sorted(x["conversation"] for x in recs) == sorted(convs)
    assert len(cut) == (1 if torn else 0)
    assert all(len(x["messages"]) == 1 for x in recs)
    assert int(b.redis.hget("omni:stats", "archived")) == 2
    assert not b.redis.exists("omni:msg:k1") and not b.redis.exists("omni:msg:k2")
    assert b.redis.get("omni:archived:" + convs[0]) == os.path.join(archive, day)  # where it really is
    b.stop()


def test_two_routers_archive_each_conversation_once(tmp_path, redis_server):
    """Two live routers on one Redis and one archive directory race for the same resolved conversations."""
    archive = str(tmp_path / "archive")
    small = {"OMNIROUTER_TEST_ARCHIVE_BATCH": "3"}  # many small batches, so both routers claim
    a = start(tmp_path, redis_server, archive, name="a", env=small)
    b = start(tmp_path, redis_server, archive, name="b", env=small)
    n = 60
    submit(a.endpoint, str(tmp_path / "spool"),
           [message(f"t{i}-{j}", frm=f"p{i}@example.com", text=f"question {j} of person {i}")
            for i in range(n) for j in range(2)])
    convs = [conversation_of(a, f"t{i}-0") for i in range(n)]
    for cv in convs:
        a.ctl("conversation", "resolve", cv)
    a.ctl("clock", "advance", "3h")
    wait_for(lambda: a.redis.zcard("omni:archive:due") == 0 and not any(
        a.redis.exists("omni:conversation:" + cv) for cv in convs), 30, "every conversation archived")
    written = [x["conversation"] for f in records(archive).values() for x in f]
    assert sorted(written) == sorted(convs), "each conversation exactly once"
    assert all(len(x["messages"]) == 2 for f in records(archive).values() for x in f)
    assert int(a.redis.hget("omni:stats", "archived")) == n
    assert a.redis.keys("omni:msg:*") == []
    by = {}
    for _, e in a.redis.xrange("omni:events"):
        if e["type"] == "archived":
            by[e["router"]] = by.get(e["router"], 0) + 1
    print("archived by router:", by)
    assert sum(by.values()) == n
    a.stop()
    b.stop()
