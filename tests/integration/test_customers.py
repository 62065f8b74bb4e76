"""Customers and conversations: identity resolution, link and unlink through omnictl."""
import os
import re
import subprocess

from harness import BIN, ROOT, Peer, Router, message, wait_for


def ack(peer, m):
    peer.submit(m)
    assert peer.recv() == ["OMNI/1", "ACK", m["id"]]


def customer(r, ident):
    return r.redis.hget(f"omni:identity:{ident}", "customer")


def open_conv(r, cust):
    return r.redis.hget(f"omni:customer:{cust}", "open_conversation")


def msgs(r, conv):
    return r.redis.lrange(f"omni:conversation:{conv}:messages", 0, -1)


def test_messages_of_one_identity_share_one_open_conversation(router):
    p = Peer(router.endpoint)
    ack(p, message("e:1", frm="Ann.Lee@Example.COM"))
    ack(p, message("e:2", frm="ann.lee@example.com"))
    cust = customer(router, "email:ann.lee@example.com")
    assert msgs(router, open_conv(router, cust)) == ["e:1", "e:2"]
    # SMS and a missed call from the same number are the same identity
    ack(p, message("s:1", channel="sms", frm="+1 415-555-0100"))
    ack(p, message("p:1", channel="phone", frm="(415) 555-0100", text=""))
    assert customer(router, "phone:+14155550100") != cust
    assert msgs(router, open_conv(router, customer(router, "phone:+14155550100"))) == ["s:1", "p:1"]
    p.close()


def test_link_joins_email_and_sms_and_unlink_splits_them_again(router):
    p = Peer(router.endpoint)
    ack(p, message("mail:1", frm="bob@example.com", text="my order is late"))
    ack(p, message("sms:1", channel="sms", frm="+14155550111", text="any news on my order?"))
    e, s = customer(router, "email:bob@example.com"), customer(router, "phone:+14155550111")
    assert e != s

    out = router.ctl("customer", "link", "bob@example.com", "phone:+1 415 555 0111", "--by", "alice",
                     "--note", "same order number").stdout
    assert "linked email:bob@example.com and phone:+14155550111" in out
    assert customer(router, "email:bob@example.com") == customer(router, "phone:+14155550111") == e
    conv = open_conv(router, e)
    merged = router.redis.smembers(f"omni:conversation:{conv}:merged")
    assert len(merged) == 1
    other = merged.pop()
    assert router.redis.hget(f"omni:conversation:{other}", "status") == "merged"
    assert open_conv(router, s) is None
    show = router.ctl("conversation", "show", conv).stdout
    assert "mail:1" in show and "sms:1" in show, show
    assert "resolved" not in show, show
    cust_show = router.ctl("customer", "show", "phone:+14155550111").stdout
    assert f"customer {e}" in cust_show and "by alice" in cust_show and "same order number" in cust_show

    # a message on either channel now joins the one open conversation
    ack(p, message("sms:2", channel="sms", frm="+14155550111", text="hello?"))
    assert msgs(router, conv) == ["mail:1", "sms:2"]
    assert router.redis.zcard("omni:queue:default") == 1

    out = router.ctl("customer", "unlink", "email:bob@example.com", "phone:+14155550111").stdout
    assert "customers" in out and "1 messages moved back" in out, out
    e2, s2 = customer(router, "email:bob@example.com"), customer(router, "phone:+14155550111")
    assert (e2, s2) == (e, s)
    assert msgs(router, open_conv(router, e)) == ["mail:1"]
    assert msgs(router, open_conv(router, s)) == ["sms:1", "sms:2"]
    assert router.redis.hget(f"omni:customer:{s}", "merged_into") is None
    assert router.redis.zcard("omni:queue:default") == 2
    p.close()


def test_link_before_any_message_and_errors(router):
    out = router.ctl("customer", "link", "carol@example.com", "twitter:12345").stdout
    assert "linked" in out
    p = Peer(router.endpoint)
    ack(p, message("tw:1", channel="twitter", frm="12345"))
    assert customer(router, "twitter:12345") == customer(router, "email:carol@example.com")
    r = router.ctl("customer", "unlink", "carol@example.com", "dave@example.com", check=False)
    assert r.returncode == 1 and "not linked" in r.stderr
    r = router.ctl("customer", "link", "not-an-identity", "carol@example.com", check=False)
    assert r.returncode == 2 and "not-an-identity" in r.stderr
    p.close()


def test_unlink_keeps_customers_joined_through_another_link(router):
    for a, b in (("a@x.io", "b@x.io"), ("b@x.io", "c@x.io"), ("a@x.io", "c@x.io")):
        router.ctl("customer", "link", a, b)
    out = router.ctl("customer", "unlink", "a@x.io", "b@x.io").stdout
    assert "other links still join them" in out
    assert customer(router, "email:a@x.io") == customer(router, "email:b@x.io") == customer(router, "email:c@x.io")


def test_status_reports_router_and_counters(router):
    p = Peer(router.endpoint)
    ack(p, message("st:1"))
    out = router.ctl("status").stdout  # no wait: the script that stored it counted it
    assert "stored messages 1," in out, out
    assert "appendfsync always" in out, out
    p.close()


WARNED_POLICY = ("teams:\n  - {name: core}\nagents:\n  - {id: ann, teams: [core]}\nclassification:\n  rules:\n"
                 "    - {name: tech, category: technical, skills: ['technical:2']}\nrouting:\n  rules:\n"
                 "    - {name: all, targets: [{team: core}]}\n")


def test_check_config(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("router:\n  tick_ms: 50\n")
    r = subprocess.run([os.path.join(BIN, "omnirouted"), "--check-config", str(good)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "configuration OK"
    bad = tmp_path / "bad.yaml"
    bad.write_text("router:\n  tick_ms: 0\n  tikc_ms: 5\nredis:\n  database: many\n")
    r = subprocess.run([os.path.join(BIN, "omnirouted"), "--check-config", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0
    assert f"{bad}:2:12:" in r.stderr and f"{bad}:3:3:" in r.stderr and f"{bad}:5:13:" in r.stderr, r.stderr
    sample = os.path.join(ROOT, "conf", "omnirouter.yaml")  # the tree's, wherever OMNI_BUILD puts the binaries
    r = subprocess.run([os.path.join(BIN, "omnirouted"), "--check-config", sample], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr, r.stderr
    # Several errors of different kinds, cross-references included, all in one pass and in file order.
    many = tmp_path / "many.yaml"
    many.write_text("router:\n  tick_ms: 0\nteams:\n  - {name: core, kind: inhouse}\nagents:\n"
                    "  - {id: ann, teams: [cor]}\nrouting:\n  rules:\n    - {name: all, targets: [{team: nosuch}]}\n")
    r = subprocess.run([os.path.join(BIN, "omnirouted"), "--check-config", str(many)], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    places = [line.split(": ")[0] for line in r.stderr.splitlines()[:-1]]
    assert places == [f"{many}:2:12", f"{many}:4:24", f"{many}:6:23", f"{many}:9:36"], r.stderr
    assert r.stderr.splitlines()[-1] == "omnirouted: 4 configuration errors; not started", r.stderr
    # Work no target can take is a warning: the file is still fine.
    warned = tmp_path / "warned.yaml"
    warned.write_text(WARNED_POLICY)
    r = subprocess.run([os.path.join(BIN, "omnirouted"), "--check-config", str(warned)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "configuration OK", r.stdout + r.stderr
    assert r.stderr == (f"{warned}:10:7: warning: routing.rules[0]: rule all can be given work that classification "
                        "rule tech asks skill technical:2 for (category technical), but none of its targets can ever "
                        "take it: no agent of core has technical:2 or more\n"), r.stderr


def test_start_logs_warnings(tmp_path, redis_server):
    """The warnings --check-config prints are logged when the router starts, and it starts all the same."""
    r = Router(str(tmp_path), redis_server.address, policy=WARNED_POLICY).start()
    r.wait_log(re.escape(r.config) + r":\d+:7: warning: routing\.rules\[0\]: rule all can be given work that "
               r"classification rule tech asks skill technical:2 for \(category technical\)")
    r.stop()


def test_conversation_show_says_when_and_by_whom_it_was_resolved(router):
    p = Peer(router.endpoint)
    ack(p, message("r:1", frm="rita@example.com", text="thanks, all good"))
    conv = open_conv(router, customer(router, "email:rita@example.com"))
    assert "conversation " + conv + " resolved" in router.ctl("conversation", "resolve", conv, "--by", "olga").stdout
    show = router.ctl("conversation", "show", conv).stdout
    assert re.search(r"^  resolved \S.* by olga$", show, re.M), show
    p.close()


OFFER_POLICY = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: core, kind: in-house, calendar: always, offers: {accept_timeout: 2m}}
agents:
  - {id: alice, teams: [core], capacity: {email: 1}}
routing:
  rules:
    - {name: all, targets: [{team: core}]}
"""


def test_conversation_show_says_an_open_offer_and_when_it_expires(tmp_path, redis_server):
    r = Router(str(tmp_path), redis_server.address, policy=OFFER_POLICY).start()
    try:
        p = Peer(r.endpoint)
        ack(p, message("o:1", frm="otto@example.com", text="hello"))
        red = redis_server.client()
        conv = red.hget("omni:customer:" + red.hget("omni:identity:email:otto@example.com", "customer"),
                        "open_conversation")
        wait_for(lambda: red.hget(f"omni:conversation:{conv}", "status") == "offered", 10, "offered to alice")
        show = r.ctl("conversation", "show", conv).stdout
        assert re.search(r"^  offered, not accepted yet: the offer expires \S", show, re.M), show
        p.close()
    finally:
        r.stop()


def test_a_first_response_cannot_be_recorded_once_resolved(router):
    """respond.lua on a resolved conversation with no first response: closed (omnictl exit 1, the API 409), nothing
    written into a conversation an archive claim may be reading (docs/delivery.md); one recorded before: already."""
    p = Peer(router.endpoint)
    ack(p, message("late:1", frm="lena@example.com", text="never mind"))
    conv = open_conv(router, customer(router, "email:lena@example.com"))
    router.ctl("conversation", "resolve", conv)
    late = router.ctl("conversation", "respond", conv, check=False)
    assert late.returncode == 1 and "resolved or merged already" in late.stderr, (late.stdout, late.stderr)
    assert router.redis.hget(f"omni:conversation:{conv}", "first_response_at") is None
    ack(p, message("late:2", frm="lena@example.com", text="one more thing"))
    again = open_conv(router, customer(router, "email:lena@example.com"))
    assert again != conv
    router.ctl("conversation", "respond", again)
    router.ctl("conversation", "resolve", again)
    assert "first response" in router.ctl("conversation", "respond", again).stdout  # already: said as before
    p.close()


def test_by_and_note_must_be_text(router):
    """--by and --note go into Redis and are read back as JSON (events, the archive, the API): bytes that are not
    UTF-8, or control characters, are refused (exit 2) before anything is written."""
    p = Peer(router.endpoint)
    ack(p, message("by:1", frm="bert@example.com", text="hi"))
    conv = open_conv(router, customer(router, "email:bert@example.com"))
    bad = router.ctl("conversation", "resolve", conv, "--by", "ann\udcff", check=False)  # the byte 0xff
    assert bad.returncode == 2 and "--by: not UTF-8 text" in bad.stderr, (bad.stdout, bad.stderr)
    assert router.redis.hget(f"omni:conversation:{conv}", "status") != "resolved"
    bad = router.ctl("customer", "link", "bert@example.com", "phone:+14155550199", "--note", "a\nb", check=False)
    assert bad.returncode == 2 and "--note: not UTF-8 text" in bad.stderr, (bad.stdout, bad.stderr)
    assert "resolved" in router.ctl("conversation", "resolve", conv, "--by", "Zoë").stdout
    p.close()
