"""OMNI/1 as an outside integrator meets it: a raw DEALER (pyzmq) written from docs/protocol.md alone, against a
real omnirouted and a real redis-server. Each test names the sentence of the docs it holds the router to."""
import json
import os
import re
import subprocess

import pytest
import zmq

from harness import BIN, ROOT, Peer, Router, free_port, message, stored_count, wait_for


def compact(v):
    """Compact JSON as JSON libraries write it (Python's json here): no spaces, UTF-8 kept as it is, reals in their
    shortest round-trip form."""
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def meta_text(size, fixed):
    """The compact JSON text of a meta of exactly size bytes: fixed (compact JSON members, as a connector wrote
    them), padded with strings each under the 4 KiB string limit."""
    pads, i = [], 0
    def text(last):
        return "{" + ",".join([fixed] * bool(fixed) + pads + [f'"pad":"{last}"']) + "}"
    while len(text("").encode()) + 4000 + 12 < size:
        pads.append(f'"p{i}":"' + "v" * 4000 + '"')
        i += 1
    t = text("v" * (size - len(text("").encode())))
    assert len(t.encode()) == size and isinstance(json.loads(t), dict)
    return t


def with_meta(id, meta):
    m = json.dumps(message(id, channel="x-crm", frm="cust-1", meta={}), ensure_ascii=False)
    return m.replace('"meta": {}', '"meta": ' + meta)


@pytest.mark.parametrize("label,fixed", [
    ("strings", ""),
    # real numbers in their shortest round-trip form, as JSON libraries write them: 0.1 is 3 bytes (jansson
    # writes 17 digits, 0.10000000000000001, and the router counted those)
    ("reals", compact({"duration_s": 12.3, "lat": 37.7749, "lon": -122.4194, "score": 0.1, "whole": 1.0,
                       "ratios": [0.3, 0.7, 1.1], "money": 19.99})[1:-1]),
    # an exponent counts without '+' and leading zeros (protocol.md)
    # Python's notation at the edges: exponents with a sign and two digits, fixed from 1e-4 up to 1e16
    ("edges", compact({"tiny": 2.5e-07, "big": 1e21, "neg": -3.3e-12, "e16": 1e16, "e15": 1e15, "pow": 2 ** -20,
                       "hundred": 100.0, "zero": 0.0, "negzero": -0.0, "small": 0.0001, "smaller": 0.00001,
                       "max": 1.7976931348623157e308, "denormal": 5e-324})[1:-1]),
    ("unicode and escapes", compact({"name": "Zoë 😀 \u2028", "path": "a/b\\c", "quote": "\"hi\"",
                                     "ctl": "\u0001\t"})[1:-1]),
])
def test_meta_limit_is_compact_json_as_the_connector_writes_it(router, label, fixed):
    """protocol.md: `meta` as compact JSON, limits.meta_bytes 16 KiB: a meta of exactly 16384 bytes is stored, one
    byte more is NACKed naming the size, whatever the values (strings, real numbers, non-ASCII text)."""
    p = Peer(router.endpoint)
    p.submit(with_meta(f"meta-at:{label}", meta_text(16384, fixed)))
    assert p.recv() == ["OMNI/1", "ACK", f"meta-at:{label}"]
    p.submit(with_meta(f"meta-over:{label}", meta_text(16385, fixed)))
    assert p.recv() == ["OMNI/1", "NACK", f"meta-over:{label}",
                        "meta: is 16385 bytes as compact JSON, over the limit of 16384"]
    p.close()


def test_a_raw_dealer_on_two_routers_resends_to_the_one_left(tmp_path, redis_server):
    """protocol.md "Several routers": a DEALER connected to two routers; one is killed with messages unanswered;
    resent once, each reaches the router still up (the DEALER set as the doc says: ZMQ_IMMEDIATE) and is stored
    once."""
    r1 = Router(str(tmp_path), redis_server.address, name="r1", endpoint=f"ipc://{tmp_path}/r1.sock").start()
    r2 = Router(str(tmp_path), redis_server.address, name="r2", endpoint=f"ipc://{tmp_path}/r2.sock").start()
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.immediate = 1
    sock.connect(r1.endpoint)
    sock.connect(r2.endpoint)

    def both_up():  # a PING to each: with ZMQ_IMMEDIATE a send goes only to a router connected
        for _ in range(2):
            sock.send_multipart([b"OMNI/1", b"PING"])
        got = 0
        while sock.poll(200):
            sock.recv_multipart()
            got += 1
        return got == 2
    wait_for(both_up, 10, "both routers connected")
    ids = [f"two:{i}" for i in range(600)]
    for i in ids:
        sock.send_multipart([b"OMNI/1", b"MSG", json.dumps(message(i, channel="sms", frm="+14155550100")).encode()])
    answered = set()
    assert sock.poll(10000)
    answered.add(sock.recv_multipart()[2].decode())
    r1.kill()
    while sock.poll(500):
        f = sock.recv_multipart()
        answered.add(f[2].decode())
    # one resend of everything unanswered (after the resend timeout, in a real connector)
    for i in ids:
        if i not in answered:
            sock.send_multipart([b"OMNI/1", b"MSG",
                                 json.dumps(message(i, channel="sms", frm="+14155550100")).encode()],
                                zmq.NOBLOCK)
    while len(answered) < len(ids):
        assert sock.poll(10000), f"{len(ids) - len(answered)} resent messages never answered"
        f = [x.decode() for x in sock.recv_multipart()]
        assert f[1] == "ACK", f
        answered.add(f[2])
    client = redis_server.client()
    assert stored_count(client) == len(ids)
    sock.close(0)
    r2.stop()


FRAME = ('{"id":"%s","channel":"email","from":{"id":"ann@example.com"},"received_at":"2026-11-22T08:00:00Z",'
         '"text":%s}')

# (label, frame body, the reply wanted after "OMNI/1": ["ACK", id] or ["NACK", id, reason])
ODD_BUT_VALID = [
    (f"received_at {ra}", json.dumps(message(f"ra:{i}", received_at=ra)), ["ACK", f"ra:{i}"])
    for i, ra in enumerate(["2026-11-22t08:00:00z", "2026-11-22 08:00:00+05:30", "2026-11-22T08:00:00.123456789-00:00",
                            "2024-02-29T23:59:59.5+14:00", "2026-12-31T23:59:60Z", "2026-11-22T08:00:00-23:59"])
] + [
    ("x- channel, 32 characters", json.dumps(message("ch:1", channel="x-" + "a1-" * 10 + "zz", frm=" user 42 ")),
     ["ACK", "ch:1"]),
    ("x- from.id of 256 bytes once trimmed", json.dumps(message("ch:2", channel="x-chat", frm=" " + "é" * 128 + " ")),
     ["ACK", "ch:2"]),
    ("lang of 35 bytes", json.dumps(message("lang:1", lang="zh-Hant-TW-abcdefgh-12345678-a1b2c3")),
     ["ACK", "lang:1"]),
    ("empty text, a missed call", json.dumps(message("ph:1", channel="phone", frm="+44 (0)20 7946 0958", text="")),
     ["ACK", "ph:1"]),
    ("U+FFFE, a surrogate pair, RTL and ZWJ", FRAME % ("u:1", '"\\ufffe \\ud83d\\ude00 \u0645\u0631\u062d\u0628\u0627 '
                                                     '\U0001F468\u200d\U0001F469\u200d\U0001F467 \u200f"'),
     ["ACK", "u:1"]),
    ("control characters in text", FRAME % ("u:2", '"\\u0001\\u001f\\u007f\\u0085\\t\\r\\n"'), ["ACK", "u:2"]),
    ("32 attachments, size 0 and 2^63-1", json.dumps(message("att:1", attachments=[
        {"name": "", "type": "", "size": 0}] * 31 + [{"name": "a.pdf", "type": "application/pdf",
                                                      "size": 2 ** 63 - 1, "url": "https://x/a.pdf"}])),
     ["ACK", "att:1"]),
    ("meta nested 8 deep, a string at 9", json.dumps(message("m:1", meta={"a": {"b": {"c": {"d": {"e": {"f": {"g": {
        "h": "s"}}}}}}}})), ["ACK", "m:1"]),
    ("twitter id of 32 digits", json.dumps(message("tw:1", channel="twitter", frm=" " + "9" * 32 + " ")),
     ["ACK", "tw:1"]),
    ("email with a display name and an IDN", json.dumps(message("em:1", frm='"Lee, Ann" <Ann@Bücher.DE.>')),
     ["ACK", "em:1"]),
]

REFUSED = [
    ("received_at without seconds", json.dumps(message("r:1", received_at="2026-11-22T08:00Z")),
     ["NACK", "r:1", 'received_at: not an RFC 3339 date-time: "2026-11-22T08:00Z"']),
    ("received_at on a day that does not exist", json.dumps(message("r:2", received_at="2026-02-29T08:00:00Z")),
     ["NACK", "r:2", 'received_at: not an RFC 3339 date-time: "2026-02-29T08:00:00Z"']),
    ("x- channel of 33 characters", json.dumps(message("r:3", channel="x-" + "a" * 33, frm="u")),
     ["NACK", "r:3", 'channel: not a known channel (email, sms, twitter, facebook, phone or x-<name>): "x-'
      + "a" * 33 + '"']),
    ("lang of 36 bytes", json.dumps(message("r:4", lang="zh-Hant-TW-abcdefgh-12345678-a1b2c3d")),
     ["NACK", "r:4", 'lang: not a language tag (like "en" or "pt-BR"): "zh-Hant-TW-abcdefgh-12345678-a1b2c3d"']),
    ("33 attachments", json.dumps(message("r:5", attachments=[{"name": "a", "type": "t", "size": 1}] * 33)),
     ["NACK", "r:5", "attachments: has 33 entries, over the limit of 32"]),
    ("attachment size 1.0", json.dumps(message("r:6", attachments=[{"name": "a", "type": "t", "size": 1.0}])),
     ["NACK", "r:6", "attachments[0].size: must be a non-negative integer, not a real number"]),
    ("null url", json.dumps(message("r:7", attachments=[{"name": "a", "type": "t", "size": 1, "url": None}])),
     ["NACK", "r:7", "attachments[0].url: must be a string, not null"]),
    ("meta nested 9 deep", json.dumps(message("r:8", meta={"a": [[[[[[[[]]]]]]]]})),
     ["NACK", "r:8", "meta.a[0][0][0][0][0][0][0]: nested 9 levels deep, over the limit of 8"]),
    ("a lone surrogate escape", FRAME % ("r:9", '"a\\ud800b"'), ["NACK", "-"]),
    # the byte counted from 0: the 0xC0 of the overlong pair
    ("overlong UTF-8 in text: the id still carried", (FRAME % ("r:10", '"a__b"')).replace("__", "\udcc0\udc80"),
     ["NACK", "r:10", "invalid UTF-8 at byte %d" % (FRAME % ("r:10", '"a__b"')).index("__")]),
    ("a bad byte inside the id", (FRAME % ("r:11__", '"x"')).replace("__", "\udcff"),
     ["NACK", "-", "invalid UTF-8 at byte 11"]),
    ("an id of the router's own", json.dumps(message("followup:12")),
     ["NACK", "followup:12", 'id: ids starting "followup:" are the router\'s own (follow-ups): "followup:12"']),
    ("an id of 257 bytes", json.dumps(message("i" * 257)), ["NACK", "-"]),
    ("duplicate keys in meta", FRAME.replace('"text":%s}', '"text":"x","meta":{"a":1,"a":2}}') % "r:13",
     ["NACK", "-"]),
    # 2048 levels counting the message itself: meta's limit names it; one more and jansson refuses the document
    ("nested 2048 levels", FRAME.replace('"text":%s}', '"text":"x","meta":{"a":%s}}')
     % ("r:14", "[" * 2046 + "]" * 2046), ["NACK", "r:14", "meta.a[0][0][0][0][0][0][0]: nested 9 levels deep, "
                                                       "over the limit of 8"]),
    ("nested past jansson's 2048 levels", FRAME.replace('"text":%s}', '"text":"x","meta":{"a":%s}}')
     % ("r:15", "[" * 2047 + "]" * 2047), ["NACK", "-"]),
]


def test_odd_but_valid_messages_are_stored_as_sent_and_refusals_name_id_and_field(router):
    """protocol.md "The message" and "NACK carries the message id": odd but valid content of every channel is
    ACKed and stored byte for byte; each refusal carries the id when it can be read and names the field and the
    rule (a reason given in full here must match in full; a NACK listed without one only by its id)."""
    p = Peer(router.endpoint)
    wrong = []
    for label, body, want in ODD_BUT_VALID + REFUSED:
        p.send("OMNI/1", "MSG", body.encode("utf-8", "surrogateescape"))
        got = p.recv()
        if got[:len(want) + 1] != ["OMNI/1", *want] or (want[0] == "NACK" and len(got) != 4):
            wrong.append(f"{label}: wanted {want}, got {got[1:]}")
        elif want[0] == "ACK" and router.redis.hget(f"omni:msg:{want[1]}", "json") != body:
            wrong.append(f"{label}: not stored as sent")
    assert not wrong, "\n".join(wrong)
    assert stored_count(router.redis) == len(ODD_BUT_VALID)
    p.close()


def test_a_message_of_exactly_the_size_limit_is_stored_one_byte_more_is_refused(router):
    """limits.message_bytes 256 KiB: a frame of 262144 bytes is stored, 262145 is NACKed with its id."""
    p = Peer(router.endpoint)
    for size, want in ((262144, ["ACK", "big:262144"]),
                       (262145, ["NACK", "big:262145", "message is 262145 bytes, over the limit of 262144"])):
        m = message(f"big:{size}", text="", attachments=[
            {"name": "n" * 4000, "type": "t" * 4000, "size": 1, "url": "u" * 4000} for _ in range(17)])
        m["text"] = "x" * (size - len(json.dumps(m)))
        body = json.dumps(m)
        assert len(body) == size
        p.submit(body)
        assert p.recv() == ["OMNI/1", *want]
    p.close()


def connectors_md_curve_snippet():
    """The pyzmq CURVE lines of docs/connectors.md ("Writing a connector in another language"), as written."""
    doc = open(os.path.join(ROOT, "docs", "connectors.md"), encoding="utf-8").read()
    m = re.search(r"Over tcp with CURVE, pyzmq sets the keys.*?```python\n(.*?)```", doc, re.S)
    assert m, "docs/connectors.md: the pyzmq CURVE snippet is gone"
    return m.group(1)


def test_the_pyzmq_curve_lines_of_connectors_md_reach_a_curve_router(tmp_path, redis_server):
    """docs/connectors.md: "Over tcp with CURVE, pyzmq sets the keys on the socket before connect" with the lines
    it shows (the key paths made this test's): run as written, a message over them is ACKed."""
    keys = {}
    for name in ("router", "pyconn"):
        r = subprocess.run([os.path.join(BIN, "omnictl"), "keygen", str(tmp_path / name)], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        keys[name] = str(tmp_path / name)
    ep = f"tcp://127.0.0.1:{free_port()}"
    router = Router(str(tmp_path), redis_server.address, endpoint=ep, router_extra={
        "curve": {"secret_key_file": keys["router"] + ".key", "allowed_keys": [keys["pyconn"] + ".pub"]}}).start()
    snippet = connectors_md_curve_snippet().replace("/etc/omnirouter/keys/", str(tmp_path) + "/")

    class Conn:
        pass
    conn = Conn()
    conn.sock = zmq.Context.instance().socket(zmq.DEALER)
    conn.sock.linger = 0
    try:
        exec(snippet, {"zmq": zmq, "open": open}, {"self": conn})
        conn.sock.connect(ep)
        conn.sock.send_multipart([b"OMNI/1", b"MSG", json.dumps(message("curve-py:1")).encode()])
        assert conn.sock.poll(10000), "no answer over CURVE"
        assert conn.sock.recv_multipart() == [b"OMNI/1", b"ACK", b"curve-py:1"]
    finally:
        conn.sock.close(0)
        router.stop()
