"""Retention (docs/archive.md): a resolved conversation leaves Redis after retention.resolved, written once to the
archive file of its UTC day before it goes; open conversations stay; a message id is remembered for
retention.dedup; the archive unwritable keeps everything in Redis and says so; a router killed between its fsync
and the delete leaves no duplicate. The router runs on the test clock (OMNIROUTER_TEST_CLOCK=1, `omnictl clock
advance`), so retention.resolved passes without waiting; retention.dedup is Redis's own expiry (real time), set
to a few seconds here."""
import datetime
import json
import os
import subprocess
import time

import pytest

from harness import BIN, Router, message, submit, wait_for

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
    # written with a trailing slash: the files, the records and omnictl (from the tombstone or searching) all
    # name DIR/DAY.jsonl, never DIR//DAY.jsonl
    r = start(tmp_path, redis_server, archive + "/")
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
    # archived_at is the claim's time, of the file's UTC day; the file one line per record, modes as documented
    assert rec["archived_at"] == int(rec["fields"]["archive_claimed_at"])
    assert datetime.datetime.fromtimestamp(rec["archived_at"] / 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%d.jsonl") == day
    assert rec["fields"]["archive_tried"] == f"0 {os.path.join(archive, day)}\n"
    assert os.stat(os.path.join(archive, day)).st_mode & 0o777 == 0o640 and os.stat(archive).st_mode & 0o777 == 0o750
    with open(os.path.join(archive, day), "rb") as f:
        assert f.read().count(b"\n") == 1
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
    want = (f"conversation {ann}: archived to {os.path.join(archive, day)}\n"
            f'  its record is the line starting {{"conversation":"{ann}", (docs/archive.md)\n')
    assert out == want, out
    assert 0 < r.redis.pttl("omni:archived:" + ann) <= 3600 * 1000
    r.redis.delete("omni:archived:" + ann)
    assert r.ctl("conversation", "show", ann).stdout == want
    missing = r.ctl("conversation", "show", "999", check=False)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr == f"conversation 999: no such conversation (not in Redis, not in the archive {archive})\n"

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
    # both counted and told as archived, as the customer counts them: its conversation count unchanged
    assert r.redis.hget("omni:stats", "archived") == "2"
    customer = r.redis.hget("omni:identity:email:hank@example.com", "customer")
    assert r.redis.hget("omni:identity:email:gina@example.com", "customer") == customer
    assert r.redis.smembers(f"omni:customer:{customer}:conversations") == set()
    assert r.redis.hget("omni:customer:" + customer, "archived_conversations") == "2"
    rec = [x for f in records(archive).values() for x in f]
    assert [x["conversation"] for x in rec] == [kept] and [m["conversation"] for m in rec[0]["merged"]] == [merged]
    assert list(rec[0]["merged"][0]) == ["conversation", "fields", "messages", "decisions"]
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


@pytest.mark.parametrize("case", ["after-fsync", "inside-write", "torn-at-the-end", "newline-lost", "next-day"])
def test_router_killed_mid_archive_leaves_no_loss_no_duplicate(tmp_path, redis_server, case):
    """Killed after its fsync, before the delete: the next router finds the records and writes none again.
    inside-write: the last record is cut short as a kill inside write() leaves it: it is written again, whole.
    torn-at-the-end: the same, nobody writing after it: the takeover ends the torn line before its record.
    newline-lost: only the last record's newline is missing (a power loss before the fsync can leave that): the
    record is whole, so it is found, given its newline, and not written again.
    next-day: the takeover comes a day later, its own records going to the next day's file: it finds them in
    the first day's."""
    torn = case in ("inside-write", "torn-at-the-end")
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
        if case == "inside-write":
            with open(path, "a") as f:  # another router's append ends the torn line before the takeover looks
                f.write("\n")
    if case == "newline-lost":
        path = os.path.join(archive, day)
        os.truncate(path, os.path.getsize(path) - 1)
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
    with open(os.path.join(archive, day), "rb") as f:
        assert f.read().endswith(b"}\n")  # one line per record, each ended
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


def test_a_batch_holds_at_most_5000_messages_one_conversation_always(tmp_path, redis_server):
    """docs/archive.md: at most 5,000 messages a batch, one conversation always. big (4,995 messages) and small
    (10) together would be 5,005: small waits for the next batch; huge (5,001) goes alone, in a batch of its
    own. A batch is the records of one claim (batches() below)."""
    archive = str(tmp_path / "archive")
    r = start(tmp_path, redis_server, archive)
    sizes = {"big": 4995, "small": 10, "huge": 5001}
    submit(r.endpoint, str(tmp_path / "s1"),
           [message(f"{who}-{i}", frm=f"{who}@example.com", text=f"{who} line {i}, number {i * 7919}")
            for who, n in sizes.items() for i in range(n)], timeout=120)
    convs = {who: conversation_of(r, f"{who}-0") for who in sizes}
    for who, n in sizes.items():
        wait_for(lambda: r.redis.llen(f"omni:conversation:{convs[who]}:messages") == n, 30, "every message stored")
        r.ctl("conversation", "resolve", convs[who])
    r.ctl("clock", "advance", "3h")
    wait_for(lambda: all(gone(r, c) for c in convs.values()), 60, "all archived")
    got = sorted([(x["conversation"], len(x["messages"])) for x in b] for b in batches(archive, day_file(r)))
    assert got == sorted([[(convs[who], n)] for who, n in sizes.items()]), got
    r.stop()


def test_a_field_that_is_not_utf8_does_not_keep_a_conversation_from_the_archive(tmp_path, redis_server):
    """A field holding bytes that are not UTF-8 (omnictl refuses such a --by now, but Redis takes whatever any
    writer gives it, an older omnictl included): the record is JSON, so such bytes are written as U+FFFD
    (docs/archive.md, "The files") instead of the conversation staying in Redis for good."""
    archive = str(tmp_path / "archive")
    r = start(tmp_path, redis_server, archive)
    submit(r.endpoint, str(tmp_path / "s0"), [message("n1", frm="zed@example.com", text="first one")])
    conv = conversation_of(r, "n1")
    refused = subprocess.run([os.path.join(BIN, "omnictl"), "-c", r.config, "conversation", "resolve", conv, "--by",
                              b"ann\xff"], capture_output=True)
    assert refused.returncode == 2, refused
    r.ctl("conversation", "resolve", conv, "--by", "ann")
    redis_server.client().hset(f"omni:conversation:{conv}", "resolved_by", b"ann\xff")
    r.ctl("clock", "advance", "3h")
    wait_for(lambda: gone(r, conv), 20, "the conversation archived")
    (rec,) = [x for f in records(archive).values() for x in f]
    assert rec["fields"]["resolved_by"] == "ann\ufffd" and rec["messages"][0]["id"] == "n1"
    assert "not a conversation" not in r.log()
    r.stop()


def batches(archive, day):
    """The records of the day's file grouped by the claim that wrote them: a claim's archive_tried names the
    offset its records land at or after (only one router writes here), so records of one batch share it."""
    out = {}
    for x in records(archive)[day]:
        out.setdefault(x["fields"]["archive_tried"], []).append(x)
    return list(out.values())


def test_a_batch_holds_at_most_500_conversations(tmp_path, redis_server):
    archive = str(tmp_path / "archive")
    r = start(tmp_path, redis_server, archive)
    n = 501
    submit(r.endpoint, str(tmp_path / "s0"), [message(f"c{i}", frm=f"c{i}@example.com", text=f"thread {i}")
                                              for i in range(n)])
    convs = [conversation_of(r, f"c{i}") for i in range(n)]
    for c in convs:
        r.ctl("conversation", "resolve", c)
    r.ctl("clock", "advance", "3h")
    wait_for(lambda: r.redis.zcard("omni:archive:due") == 0, 60, "every conversation archived")
    assert sorted(len(b) for b in batches(archive, day_file(r))) == [1, 500]
    r.stop()


def test_a_batch_holds_at_most_16_mib_of_message_json(tmp_path, redis_server):
    """big: 270 messages of 60 kB (just under 16 MiB of JSON); small: 10 more would pass 16 MiB together."""
    archive = str(tmp_path / "archive")
    r = start(tmp_path, redis_server, archive)
    submit(r.endpoint, str(tmp_path / "s0"),
           [message(f"big-{i}", frm="big@example.com", text=f"{i} " + "x" * 60000) for i in range(270)] +
           [message(f"small-{i}", frm="small@example.com", text=f"{i} " + "y" * 60000) for i in range(10)],
           timeout=120)
    big, small = conversation_of(r, "big-0"), conversation_of(r, "small-0")
    wait_for(lambda: r.redis.llen(f"omni:conversation:{small}:messages") == 10, 30, "every message stored")
    size = {who: sum(r.redis.hstrlen(f"omni:msg:{who}-{i}", "json") for i in range(n))
            for who, n in (("big", 270), ("small", 10))}
    assert 16000000 < size["big"] <= 16 << 20 < size["big"] + size["small"], size
    r.ctl("conversation", "resolve", big)
    r.ctl("conversation", "resolve", small)
    r.ctl("clock", "advance", "3h")
    wait_for(lambda: gone(r, big) and gone(r, small), 60, "both archived")
    assert sorted([x["conversation"] for x in b] for b in batches(archive, day_file(r))) == sorted([[big], [small]])
    r.stop()


def test_a_full_disk_keeps_everything_in_redis_and_cuts_the_batch_back(tmp_path, redis_server):
    """docs/archive.md, "The archive unwritable": a full disk (a 64 KiB tmpfs, filled) fails the batch's write:
    one error logged however many tries, every conversation still in Redis, and what the batch wrote cut back off
    the file; once there is room it is written, each record once, and the router says so."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        archive = str(mnt / "archive")
        r = start(tmp_path, redis_server, archive)
        # both batches in one UTC day's file: the router's clock to 01:00 first (two 3 h steps follow; run in the
        # evening, they crossed midnight and the second batch went to the next day's file)
        now = datetime.datetime.now(datetime.timezone.utc)
        one_am = (now + datetime.timedelta(days=1)).replace(hour=1, minute=0, second=0, microsecond=0)
        r.ctl("clock", "advance", "%ds" % int((one_am - now).total_seconds()))
        submit(r.endpoint, str(tmp_path / "s0"), [message("p0", frm="zed@example.com", text="first one")])
        first = conversation_of(r, "p0")
        r.ctl("conversation", "resolve", first)
        r.ctl("clock", "advance", "3h")
        wait_for(lambda: gone(r, first), 20, "the first conversation archived")
        path = os.path.join(archive, day_file(r))
        size = os.path.getsize(path)
        st = os.statvfs(str(mnt))
        with open(mnt / "filler", "wb") as f:  # about 4 KiB left: room for one record of the batch, not two
            f.write(b"x" * (st.f_bavail * st.f_bsize - 4096))
        submit(r.endpoint, str(tmp_path / "s1"),
               [message(f"q{i}", frm=f"p{i}@example.com", text="z" * 1500 + str(i)) for i in range(4)])
        convs = [conversation_of(r, f"q{i}") for i in range(4)]
        for c in convs:
            r.ctl("conversation", "resolve", c)
        r.ctl("clock", "advance", "3h")
        r.wait_log(r"error: archive: cannot write " + path + r": No space left on device; 4 resolved "
                   r"conversations stay in Redis until it can be written \(retried every 5 s\)", 20)
        # a second try (5 s on: a new claim, released again) fails the same way and is not logged again
        ck = "omni:conversation:" + convs[0]
        tried = r.redis.hget(ck, "archive_claimed_at")
        wait_for(lambda: r.redis.hget(ck, "archive_claimed_at") != tried and r.redis.hget(ck, "archive_claim") is None,
                 20, "a second try, failed and released")
        assert r.log().count("archive: cannot") == 1
        assert not any(gone(r, c) for c in convs)
        assert os.path.getsize(path) == size, "what the failed batch wrote is cut back off the file"
        os.unlink(mnt / "filler")
        wait_for(lambda: all(gone(r, c) for c in convs), 30, "all archived once there is room")
        r.wait_log(r"info: archive: writing to " + archive + " again")
        assert r.log().count("archive: cannot") == 1
        assert sorted(x["conversation"] for f in records(archive).values() for x in f) == sorted([first] + convs)
        r.stop()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_marker_lasts_exactly_what_is_left_of_retention_dedup(redis_server):
    """archive_done.lua as the router calls it, at chosen times: a message archived 1 s before retention.dedup
    has passed since it was stored leaves a marker for that second; archived exactly when it has passed, or
    later, none: the id is forgotten, and stored as new."""
    from lua_contract import Scripts
    lua = Scripts(redis_server.client())
    now, dedup = 1_800_000_000_000, 3_600_000
    convs = {}
    for id, who in (("e1", "a@x.io"), ("e2", "b@x.io"), ("e3", "c@x.io")):
        doc = json.dumps({"id": id, "channel": "email", "from": {"id": who}, "text": "hello there, anyone?"})
        rec = lua.ingest(id=id, identity=f"email:{who}", channel="email", message=doc, fingerprint="", now=now,
                         queue="default", routing=False, fold_window_ms=60000, fold_max_bits=3)
        convs[id] = rec[2]
        # resolved as _resolved.lua marks it: due for the archive, no longer its customer's open conversation
        lua.r.hset("omni:conversation:" + rec[2], mapping={"status": "resolved", "resolved_at": now})
        lua.r.hdel("omni:customer:" + lua.r.hget("omni:conversation:" + rec[2], "customer"), "open_conversation")
        lua.r.zadd("omni:archive:due", {rec[2]: now})
    for id, at in (("e1", now + dedup - 1000), ("e2", now + dedup), ("e3", now + dedup + 1)):
        claim = lua.call("archive_claim", "r1", at, at, 60000, 1, 5000, 16 << 20, "/a/f.jsonl", 0)
        assert claim[0] == convs[id], (id, claim)
        assert lua.call("archive_done", "r1", at, 0, dedup, convs[id], "/a/f.jsonl") == [convs[id], "archived"]
        assert not lua.r.exists("omni:msg:" + id)
    assert lua.r.get("omni:seen:e1") == convs["e1"] and 0 < lua.r.pttl("omni:seen:e1") <= 1000
    assert not lua.r.exists("omni:seen:e2") and not lua.r.exists("omni:seen:e3")
    assert lua.r.hget("omni:stats", "archived") == "3"
    again = {}
    for id, who in (("e1", "a@x.io"), ("e2", "b@x.io")):
        doc = json.dumps({"id": id, "channel": "email", "from": {"id": who}, "text": "hello there, anyone?"})
        again[id] = lua.ingest(id=id, identity=f"email:{who}", channel="email", message=doc, fingerprint="",
                               now=now + dedup, queue="default", routing=False, fold_window_ms=60000, fold_max_bits=3)
    assert again["e1"][0] == 0 and again["e1"][2] == convs["e1"]  # a duplicate, of the archived conversation
    assert again["e2"][0] == 1 and again["e2"][2] != convs["e2"]  # stored as new, in a new conversation
