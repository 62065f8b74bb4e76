"""OMNI/1 ingest against a real omnirouted and a real redis-server."""
import json
import os
import signal
import subprocess

import pytest

from harness import Peer, Router, free_port, message, scrape, start_submit, stored_count, submit, wait_for


def stored(r, id):
    return r.redis.hgetall(f"omni:msg:{id}")


def test_ack_stores_the_message(router, tmp_path):
    rc, out = submit(router.endpoint, str(tmp_path / "spool"), [message("email:acct:1:1")])
    assert "ACK email:acct:1:1" in out
    m = stored(router, "email:acct:1:1")
    assert m["identity"] == "email:ann@example.com"
    assert json.loads(m["json"])["text"] == "hello"


def test_a_peer_that_reads_late_still_gets_every_reply(router):
    """Replies wait for a peer that reads them late, far past ZeroMQ's default queue of 1,000 (protocol.md,
    "Read your replies"): 5,000 messages and 5,000 PINGs sent before reading anything, every one answered."""
    peer = Peer(router.endpoint)
    n = 5000
    for i in range(n):
        peer.submit(message(f"late:{i}", text="hello"))
        peer.send("OMNI/1", "PING")
    wait_for(lambda: router.redis.hget("omni:stats", "messages") == str(n), 60, "every message stored")
    acks, pongs = set(), 0
    while len(acks) < n or pongs < n:
        r = peer.recv(10)
        if r[1] == "ACK":
            acks.add(r[2])
        else:
            assert r[1] == "PONG", r
            pongs += 1
    assert acks == {f"late:{i}" for i in range(n)} and pongs == n
    peer.close()


def test_same_id_again_is_acked_and_stored_once(router, tmp_path):
    peer = Peer(router.endpoint)
    for _ in range(3):
        peer.submit(message("sms:SM1", channel="sms", frm="+1 (415) 555-0100"))
        assert peer.recv() == ["OMNI/1", "ACK", "sms:SM1"]
    conv = stored(router, "sms:SM1")["conversation"]
    assert router.redis.lrange(f"omni:conversation:{conv}:messages", 0, -1) == ["sms:SM1"]
    assert stored_count(router.redis) == 1
    assert router.redis.hget("omni:stats", "duplicates") == "2"
    peer.close()
    # omni-submit given one id twice in its input sends it once: its summary adds up
    rc, out = submit(router.endpoint, str(tmp_path / "spool"), [message("twice:1"), message("twice:1", text="again")],
                     check=False)
    assert rc == 0 and out.count("ACK twice:1") == 1, out
    assert "submitted=1 acked=1 nacked=0 pending=0 invalid=0" in out, out


BIG_META = {f"k{i}": "v" * 100 for i in range(200)}
BAD = [
    # (frame body, id the NACK must carry, words its reason must contain)
    (b"{not json", "-", "JSON"),
    (json.dumps({"id": "x:1", "channel": "email", "received_at": "2026-11-22T08:00:00Z", "text": ""}),
     "x:1", "from"),
    (json.dumps(message("x:2", channel="pigeon")), "x:2", "channel"),
    (json.dumps(message("x:3", received_at="yesterday")), "x:3", "received_at"),
    (json.dumps(message("x:4", text=42)), "x:4", "text"),
    (b'{"id":"x:5","channel":"email","from":{"id":"a@b.c"},"received_at":"2026-11-22T08:00:00Z","text":"\xff\xfe"}',
     "x:5", "UTF-8"),
    (json.dumps(message("x:6", text="a" * 70000)), "x:6", "text"),
    (json.dumps(message("x:7", frm="not an address")), "x:7", "from.id"),
    (json.dumps(message("x:8", channel="sms", frm="12")), "x:8", "from.id"),
    (json.dumps(message("x:9", surprise=1)), "x:9", "surprise"),
    # over the meta limit (16 KiB), each string under its own limit and the whole message well under its limit
    # (256 KiB): the meta check must be what refuses it
    (json.dumps(message("x:10", meta=BIG_META)), "x:10",
     f"meta: is {len(json.dumps(BIG_META, separators=(',', ':')))} bytes as compact JSON, over the limit of 16384"),
    (json.dumps([1, 2]), "-", "object"),
    # bad UTF-8 elsewhere: the id is still carried, also when it holds a '?' of its own (protocol.md, "NACK
    # carries the message id")
    (b'{"id":"x:?11","channel":"email","from":{"id":"a@b.c"},"received_at":"2026-11-22T08:00:00Z","text":"\xff"}',
     "x:?11", "invalid UTF-8 at byte 99"),
]


@pytest.mark.parametrize("body,want_id,words", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_is_nacked_with_its_reason_and_others_go_on(router, body, want_id, words):
    bad, good = Peer(router.endpoint), Peer(router.endpoint)
    bad.send("OMNI/1", "MSG", body)
    reply = bad.recv()
    assert reply[:3] == ["OMNI/1", "NACK", want_id], reply
    assert len(reply) == 4 and reply[3], reply
    assert words.lower() in reply[3].lower(), reply
    good.submit(message("good:1"))
    assert good.recv() == ["OMNI/1", "ACK", "good:1"]
    assert not router.redis.exists(f"omni:msg:{want_id}")
    bad.close(), good.close()


@pytest.mark.parametrize("frames,words", [
    (["OMNI/2", "MSG", "{}"], "version"),
    (["OMNI/1", "HELLO"], "unknown"),
    (["OMNI/1", "MSG"], "message frame"),
    (["OMNI/1", "MSG", "{}", "extra"], "extra"),
    (["OMNI/1"], "command"),
])
def test_protocol_breaks_are_nacked(router, frames, words):
    p = Peer(router.endpoint)
    p.send(*frames)
    reply = p.recv()
    assert reply[:3] == ["OMNI/1", "NACK", "-"] and words in reply[3], reply
    p.send("OMNI/1", "PING")
    assert p.recv() == ["OMNI/1", "PONG"]
    p.close()


def test_a_peer_that_keeps_breaking_the_protocol_is_dropped(tmp_path, redis_server):
    r = Router(str(tmp_path), redis_server.address).start()
    try:
        rude, polite = Peer(r.endpoint), Peer(r.endpoint)
        for _ in range(10):  # router.peer_violation_limit defaults to 10
            rude.send("OMNI/9", "junk")
            assert rude.recv()[1] == "NACK"
        r.wait_log(r"dropped for 60 s")
        rude.send("OMNI/1", "PING")
        assert rude.silent(0.5), "a dropped peer must not be answered"
        polite.send("OMNI/1", "PING")
        assert polite.recv() == ["OMNI/1", "PONG"]
        rude.close(), polite.close()
    finally:
        r.stop()


def test_redis_down_gives_busy_and_acks_resume_when_it_is_back(router):
    p = Peer(router.endpoint)
    router.redis_server.stop()
    router.wait_log(r"redis unreachable")
    p.submit(message("busy:1"))
    reply = p.recv()
    assert reply[:3] == ["OMNI/1", "BUSY", "busy:1"] and int(reply[3]) > 0, reply
    router.redis_server.start()
    router.wait_log(r"redis is back", 20)
    p.submit(message("busy:1"))
    assert p.recv() == ["OMNI/1", "ACK", "busy:1"]
    assert router.redis_server.client().exists("omni:msg:busy:1")
    p.close()


def test_kill_9_between_submit_and_ack_stores_exactly_once(router, tmp_path):
    """The router dies while Redis holds the write back; the client resends to the new router."""
    admin = router.redis_server.client()
    admin.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
    proc = start_submit(router.endpoint, str(tmp_path / "spool"), [message("k9:1")])
    router.wait_log(r"k9:1 .*handed to redis", 10)
    router.kill(signal.SIGKILL)
    admin.execute_command("CLIENT", "UNPAUSE")
    router.start()
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    assert "ACK k9:1" in out
    conv = admin.hget("omni:msg:k9:1", "conversation")
    assert admin.lrange(f"omni:conversation:{conv}:messages", 0, -1).count("k9:1") == 1
    assert stored_count(admin) == 1


def test_kill_9_during_a_stream_loses_nothing_and_stores_nothing_twice(router, tmp_path):
    n = 3000
    msgs = [message(f"burst:{i}", frm=f"c{i % 50}@example.com") for i in range(n)]
    proc = start_submit(router.endpoint, str(tmp_path / "spool"), msgs, timeout=120, quiet=True)
    admin = router.redis_server.client()
    wait_for(lambda: stored_count(admin) > 200, 60, "some messages stored")
    router.kill(signal.SIGKILL)
    router.start()
    out, _ = proc.communicate(timeout=150)
    assert proc.returncode == 0, out
    assert stored_count(admin) == n
    total = 0
    for cust in range(1, 51):
        conv = admin.hget(f"omni:customer:{cust}", "open_conversation")
        ids = admin.lrange(f"omni:conversation:{conv}:messages", 0, -1)
        assert len(ids) == len(set(ids))
        total += len(ids)
    assert total == n


def test_restarted_connector_resends_from_its_spool(tmp_path, redis_server):
    r = Router(str(tmp_path), redis_server.address)
    spool = str(tmp_path / "spool")
    # no router yet: the client spools and gives up waiting, messages still pending
    rc, out = submit(r.endpoint, spool, [message(f"sp:{i}") for i in range(5)], timeout=1, check=False)
    assert rc == 1 and "pending=5" in out, out
    r.start()
    try:
        rc, out = submit(r.endpoint, spool, [], timeout=30)
        for i in range(5):
            assert f"ACK sp:{i}" in out
        assert stored_count(redis_server.client()) == 5
    finally:
        r.stop()


def test_connector_killed_mid_batch_resends_after_restart(router, tmp_path):
    admin = router.redis_server.client()
    admin.execute_command("CLIENT", "PAUSE", "60000", "WRITE")  # nothing gets an answer
    spool = str(tmp_path / "spool")
    proc = start_submit(router.endpoint, spool, [message(f"ck:{i}") for i in range(20)])
    # every record written (the client writes a round of them at once): what is not in the spool when the
    # submitter dies was never taken, and is not the router's to store
    log = os.path.join(spool, "spool.log")
    wait_for(lambda: os.path.exists(log) and all(f'"ck:{i}"'.encode() in open(log, "rb").read() for i in range(20)),
             10, "the spool to hold the whole batch")
    proc.kill()
    proc.wait()
    admin.execute_command("CLIENT", "UNPAUSE")
    rc, out = submit(router.endpoint, spool, [], timeout=30)
    assert sum(1 for i in range(20) if f"ACK ck:{i}" in out) == 20, out
    assert stored_count(admin) == 20


def test_embedded_redis_keeps_acked_messages_across_kill_9(tmp_path):
    r = Router(str(tmp_path), None).start()
    try:
        p = Peer(r.endpoint)
        p.submit(message("emb:1"))
        assert p.recv() == ["OMNI/1", "ACK", "emb:1"]
        assert os.path.isdir(os.path.join(r.state, "redis"))
        r.kill(signal.SIGKILL)
        r.start()
        out = r.ctl("conversation", "show", "1").stdout
        assert "emb:1" in out, out
        p.submit(message("emb:1"))
        assert p.recv() == ["OMNI/1", "ACK", "emb:1"]
        p.close()
    finally:
        r.stop()
    assert "embedded redis: stopped" in r.log()


def test_sigterm_exits_cleanly(router):
    router.stop()
    assert "stopped" in router.log()


def test_the_socket_cuts_frames_far_over_the_message_limit(tmp_path, redis_server):
    """4 x limits.message_bytes + 64 KiB (OMNI_FRAME_CAP) is the socket's ZMQ_MAXMSGSIZE: over the limit up to
    that is read and NACKed with its id; far over is cut by ZeroMQ, unread, and nobody else notices."""
    limit = 8192
    r = Router(str(tmp_path), redis_server.address, extra={"limits": {"message_bytes": limit}}).start()
    try:
        def sized(id, size):
            m = message(id, text="")
            m["text"] = "a" * (size - len(json.dumps(m)))
            body = json.dumps(m)
            assert len(body) == size
            return body
        p, other = Peer(r.endpoint), Peer(r.endpoint)
        p.submit(sized("size:under", limit))
        assert p.recv() == ["OMNI/1", "ACK", "size:under"]
        p.submit(sized("size:over", limit + 1))
        reply = p.recv()
        assert reply[:3] == ["OMNI/1", "NACK", "size:over"] and f"over the limit of {limit}" in reply[3], reply
        p.submit(sized("size:within-allowance", limit + 60 * 1024))
        assert p.recv()[:3] == ["OMNI/1", "NACK", "size:within-allowance"]
        p.submit(sized("size:4x", 4 * limit))
        assert p.recv()[:3] == ["OMNI/1", "NACK", "size:4x"]
        # past 4 x and the allowance, up to the cap: NACKed unparsed, without its id (libomni/message.c)
        p.submit(sized("size:cap", 4 * limit + 64 * 1024))
        reply = p.recv()
        assert reply[:3] == ["OMNI/1", "NACK", "-"] and f"over the limit of {limit}" in reply[3], reply
        p.submit(sized("size:far", 4 * limit + 64 * 1024 + 1000))
        assert p.silent(1.0), "a frame over the socket's limit must not be read"
        other.submit(message("size:other"))
        assert other.recv() == ["OMNI/1", "ACK", "size:other"]
        assert not redis_server.client().exists("omni:msg:size:far")
        assert "size:far" not in r.log()  # never parsed, so never named
        # the cut peer's socket reconnects by itself and is served again
        p.send("OMNI/1", "PING")
        assert p.recv() == ["OMNI/1", "PONG"]
        p.close(), other.close()
    finally:
        r.stop()


def test_nack_counts_are_by_schema_field_whatever_the_sender_names(tmp_path, redis_server):
    """omnirouter_messages_nacked_total counts by the field that failed (docs/operations.md): a sender's own key
    names (unknown fields, meta's keys) never become label values, so junk cannot push a real field into
    "other" nor cut a multi-byte name into a scrape that is not UTF-8 (scrape() decodes and parses it)."""
    port = free_port()
    r = Router(str(tmp_path), redis_server.address, router_extra={"metrics_listen": f"127.0.0.1:{port}"}).start()
    try:
        p = Peer(r.endpoint)
        for i in range(20):
            p.submit(message(f"junk:{i}", **{f"junk{i}" + "é" * 30: 1}))
            assert p.recv()[:3] == ["OMNI/1", "NACK", f"junk:{i}"]
        p.submit(message("junk:from", **{"from": {"id": "ann@example.com", "nick": "x"}}))
        p.submit(message("junk:att", attachments=[{"name": "a", "type": "t", "size": 1, "sha": "x"}]))
        p.submit(message("junk:meta", meta={"ü" * 30: "v" * 5000}))
        p.submit(message("junk:deep", meta={"a": [[[[[[[[1]]]]]]]]}))
        p.submit(message("junk:size", attachments=[{"name": "a", "type": "t", "size": -1}]))
        p.submit(message("real:1", channel="pigeon"))
        for _ in range(6):
            assert p.recv()[1] == "NACK"
        m = scrape(port)
        nacked = {dict(k[1])["field"]: v for k, v in m.items() if k[0] == "omnirouter_messages_nacked_total"}
        assert nacked == {"unknown": 22, "meta": 2, "attachments[].size": 1, "channel": 1}, nacked
        p.close()
    finally:
        r.stop()


def test_omni_submit_takes_a_file_with_a_byte_order_mark_and_names_its_own_options(router, tmp_path):
    """omni-submit(1): a UTF-8 BOM before the first line (Windows editors) is not part of it; a CURVE key that
    cannot be used is named by the option given (--server-key...), not by the library's config names."""
    path = tmp_path / "win.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(message("bom-1")).encode() + b"\r\n" +
                     json.dumps(message("bom-2")).encode() + b"\r\n")
    exe = os.path.join(os.environ.get("OMNI_BUILD", "build/release"), "bin", "omni-submit")
    r = subprocess.run([exe, "--endpoint", router.endpoint, "--spool", str(tmp_path / "spool"), "--timeout", "20",
                        str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "submitted=2 acked=2" in r.stdout, r
    assert router.redis.exists("omni:msg:bom-1", "omni:msg:bom-2") == 2
    r = subprocess.run([exe, "--endpoint", "tcp://127.0.0.1:1", "--spool", str(tmp_path / "spool2"),
                        "--server-key", "not-a-key"], input="", capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "--server-key" in r.stderr and "server_public_key" not in r.stderr, r
