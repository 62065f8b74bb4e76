"""Customers and conversations: identity resolution, link and unlink through omnictl."""
import json
import os
import re
import subprocess

import pytest

from harness import BIN, ROOT, Peer, Router, clock_advance, clocked_router, message, send_one, wait_for
from test_assign_lua import Lua


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
    assert "customers" in out and "(1 message moved back)" in out, out
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


def test_an_identity_cannot_be_linked_to_itself_and_the_error_names_it(router):
    """Two ways of writing one identity are one identity: linking (or unlinking) it to itself is wrong usage, exit
    2 naming the identity both arguments are, and nothing is written."""
    for verb in ("link", "unlink"):
        r = router.ctl("customer", verb, "Ann.Lee@Example.COM", "email:ann.lee@example.com", check=False)
        assert r.returncode == 2, (verb, r.returncode, r.stdout, r.stderr)
        assert "email:ann.lee@example.com" in r.stderr and "itself" in r.stderr, r.stderr
        r = router.ctl("customer", verb, "+1 (415) 555-0100", "tel:415.555.0100", check=False)
        assert r.returncode == 2 and "phone:+14155550100" in r.stderr, (verb, r.stderr)
    assert router.redis.keys("omni:identity:*") == [] and router.redis.keys("omni:link*") == []
    assert router.redis.hget("omni:stats", "linked") is None


def test_customer_commands_refuse_arguments_they_do_not_take(router):
    """Wrong usage exits 2 with a message naming the command, before anything is written: an extra identity to
    show, a --note on unlink (only a link has one), an unknown option."""
    router.ctl("customer", "link", "uli@example.com", "twitter:4242", "--note", "same handle")
    r = router.ctl("customer", "show", "uli@example.com", "twitter:4242", check=False)
    assert r.returncode == 2 and r.stdout == "" and "customer show" in r.stderr, (r.stdout, r.stderr)
    r = router.ctl("customer", "unlink", "uli@example.com", "twitter:4242", "--note", "why", check=False)
    assert r.returncode == 2 and "customer unlink" in r.stderr and "--note" in r.stderr, r.stderr
    r = router.ctl("customer", "link", "uli@example.com", "facebook:99", "--bogus", check=False)
    assert r.returncode == 2 and r.stderr.startswith("omnictl: customer link: ") and "--bogus" in r.stderr, r.stderr
    assert router.redis.exists("omni:identity:facebook:99") == 0
    # the link is still there: none of that touched it
    assert customer(router, "email:uli@example.com") == customer(router, "twitter:4242")


def test_a_link_to_identities_never_seen_writes_the_keys_docs_redis_md_lists(router):
    """A link before any message makes each unseen identity a customer (its home), joins them under the smaller
    home, and writes the link both ways, its hash (by, at, note), the event and the counter (docs/redis.md)."""
    out = router.ctl("customer", "link", "facebook:1254459154682919", "Zoe@Bücher.DE", "--by", "olga",
                     "--note", "same order").stdout
    a, b = "email:zoe@xn--bcher-kva.de", "facebook:1254459154682919"
    fa, fb = router.redis.hgetall(f"omni:identity:{a}"), router.redis.hgetall(f"omni:identity:{b}")
    assert int(fb["home"]) < int(fa["home"]), (fa, fb)  # the first one named is made first
    assert fa["customer"] == fb["customer"] == fb["home"] and fa["home"] != fb["home"], (fa, fb)
    assert f"linked {b} and {a}: customer {fb['home']}" in out, out
    cust = fb["home"]
    assert router.redis.smembers(f"omni:customer:{cust}:identities") == {a, b}
    assert router.redis.hget(f"omni:customer:{fa['home']}", "merged_into") == cust
    assert router.redis.smembers(f"omni:links:{a}") == {b} and router.redis.smembers(f"omni:links:{b}") == {a}
    link = router.redis.hgetall(f"omni:link:{min(a, b)}|{max(a, b)}")
    assert link["by"] == "olga" and link["note"] == "same order" and int(link["at"]) > 0, link
    ev = [f for _, f in router.redis.xrange("omni:events") if f["type"] == "link"]
    assert ev == [{"type": "link", "a": b, "b": a, "by": "olga", "customer": cust}], ev
    assert router.redis.hget("omni:stats", "linked") == "1"
    again = router.ctl("customer", "link", a, b).stdout
    assert "already linked" in again and router.redis.hget("omni:stats", "linked") == "1", again
    out = router.ctl("customer", "unlink", a, b, "--by", "olga").stdout
    assert customer(router, a) == fa["home"] and customer(router, b) == fb["home"], out
    assert router.redis.hget(f"omni:customer:{fa['home']}", "merged_into") is None
    assert router.redis.keys("omni:link*") == []
    ev = [f for _, f in router.redis.xrange("omni:events") if f["type"] == "unlink"]
    assert ev == [{"type": "unlink", "a": a, "b": b, "by": "olga", "customer_a": fa["home"],
                   "customer_b": fb["home"]}], ev
    assert router.redis.hget("omni:stats", "unlinked") == "1"


def test_copies_fold_across_linked_channels_within_the_window_and_not_just_after_it(tmp_path, redis_server):
    """docs/routing.md "Ownership and folding": a near-copy of the newest message of the customer's open
    conversation, within folding.window, is stored there marked folded_into the FIRST copy (a chain of copies
    points at the original), with a folded event; the same text just past the window is an ordinary message of
    that conversation, not folded."""
    with clocked_router(tmp_path, redis_server, "", extra={"folding": {"window": "2m", "similarity": 90}}) as r:
        r.ctl("customer", "link", "fil@example.com", "+44 20 7946 0958")
        r.ctl("customer", "link", "fil@example.com", "twitter:783214")
        text = "My parcel 7781 never arrived, where is it? Please help."
        conv = send_one(r, "fo:1", "Fil@Example.com", text)
        assert send_one(r, "fo:2", "+442079460958", "my parcel 7781 never arrived - where is it?? please help",
                        channel="sms") == conv
        assert send_one(r, "fo:3", "783214", "My parcel 7781 never arrived, where is it? please help!",
                        channel="twitter") == conv
        for copy in ("fo:2", "fo:3"):
            assert r.redis.hget(f"omni:msg:{copy}", "folded_into") == "fo:1", copy
        assert r.redis.hget("omni:stats", "folded") == "2"
        folded = [f for _, f in r.redis.xrange("omni:events") if f["type"] == "folded"]
        assert folded == [{"type": "folded", "id": "fo:2", "into": "fo:1", "conversation": conv},
                          {"type": "folded", "id": "fo:3", "into": "fo:1", "conversation": conv}], folded
        clock_advance(r, "110s")  # within 2 minutes of the newest copy, fo:3: still a copy
        assert send_one(r, "fo:4", "fil@example.com", text) == conv
        assert r.redis.hget("omni:msg:fo:4", "folded_into") == "fo:1"
        clock_advance(r, "121s")  # the newest copy (fo:4) is now more than 2 minutes old, on the routers' clock
        assert send_one(r, "fo:5", "+44 20 7946 0958", text, channel="sms") == conv
        assert r.redis.hget("omni:msg:fo:5", "folded_into") is None
        assert r.redis.hget("omni:stats", "folded") == "3"
        assert r.redis.lrange(f"omni:conversation:{conv}:messages", 0, -1) == ["fo:1", "fo:2", "fo:3", "fo:4", "fo:5"]


def test_texts_under_twelve_characters_never_fold_in_any_script(router):
    """docs/routing.md: "Texts shorter than 12 characters never fold"; docs/redis.md: no fp "under 12 characters
    once normalized". Characters, not bytes: seven Cyrillic letters are 14 bytes and must not fold either."""
    p = Peer(router.endpoint)
    texts = ["hello world", "hello world!", "Спасибо", "спасибо!!", "谢谢你的帮助", "谢谢你的帮助"]
    for i, text in enumerate(texts):
        ack(p, message(f"short:{i}", frm="sho@example.com", text=text))
    for i in range(6):
        assert router.redis.hget(f"omni:msg:short:{i}", "fp") is None, i
        assert router.redis.hget(f"omni:msg:short:{i}", "folded_into") is None, i
    ack(p, message("long:1", frm="sho@example.com", text="hello worlds"))
    ack(p, message("long:2", frm="sho@example.com", text="Hello, Worlds!"))
    assert router.redis.hget("omni:msg:long:2", "folded_into") == "long:1"
    p.close()


def test_customer_show_keeps_the_history_a_link_left_with_the_other_customer(router):
    """A link moves open conversations only: what the other identity's customer resolved before stays under that
    customer (docs/redis.md). customer show of the linked customer still lists it, and names an operator's tier
    set on that customer, which the link leaves unused."""
    router.ctl("customer", "show", "hana@example.com", check=False)
    p = Peer(router.endpoint)
    ack(p, message("hi:1", frm="hana@example.com", text="about my invoice"))
    ack(p, message("hi:2", channel="sms", frm="+14155550177", text="about my delivery"))
    old = open_conv(router, customer(router, "phone:+14155550177"))
    other = customer(router, "phone:+14155550177")
    router.ctl("conversation", "resolve", old)
    router.ctl("customer", "tier", "+14155550177", "vip")
    router.ctl("customer", "link", "hana@example.com", "+14155550177")
    show = router.ctl("customer", "show", "+14155550177").stdout
    cust = customer(router, "email:hana@example.com")
    assert show.startswith(f"customer {cust}\n") and cust != other, show
    assert f"  as customer {other}, before a link: conversations {old} (resolved)\n" in show, show
    assert f"  as customer {other}, before a link: tier vip (not routed by while linked)\n" in show, show
    router.ctl("customer", "unlink", "hana@example.com", "+14155550177")
    show = router.ctl("customer", "show", "+14155550177").stdout
    assert f"customer {other}\n" in show and "before a link" not in show and "tier        vip" in show, show
    p.close()


LINK_POLICY = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: core, kind: in-house, calendar: always, offers: {auto_accept: true}}
agents:
  - {id: alice, teams: [core], capacity: {email: 1, sms: 1}}
  - {id: bob, teams: [core], capacity: {email: 1, sms: 1}}
routing:
  rules:
    - {name: all, targets: [{team: core}]}
"""


def test_a_link_keeps_the_older_conversation_with_its_owner_and_an_unlink_routes_the_other_again(tmp_path,
                                                                                                   redis_server):
    """docs/redis.md "Customers and links", docs/routing.md "Assignment": of two open conversations a link keeps the
    older with its owner; the other is merged into it and leaves its owner (told work.revoked, reason merged; its
    capacity freed). A message on either identity then reaches the older one's owner. The unlink gives the merged
    one back to its identity's customer, with the message that identity sent meanwhile, and routes it again."""
    with clocked_router(tmp_path, redis_server, LINK_POLICY) as r:
        for agent in ("alice", "bob"):
            r.ctl("agent", "presence", agent, "available")
        older = send_one(r, "own:1", "olive@example.com", "my invoice 5521 is wrong")
        wait_for(lambda: r.redis.hget(f"omni:conversation:{older}", "status") == "assigned", 10, "older assigned")
        younger = send_one(r, "own:2", "+1 415 555 0166", "my parcel 7781 has not arrived", channel="sms")
        wait_for(lambda: r.redis.hget(f"omni:conversation:{younger}", "status") == "assigned", 10, "younger assigned")
        keeper = r.redis.hget(f"omni:conversation:{older}", "owner")
        loser = r.redis.hget(f"omni:conversation:{younger}", "owner")
        assert {keeper, loser} == {"agent:alice", "agent:bob"}
        r.ctl("customer", "link", "+14155550166", "olive@example.com", "--by", "olga")
        h = r.redis.hgetall(f"omni:conversation:{younger}")
        assert h["status"] == "merged" and h["merged_into"] == older and "owner" not in h, h
        assert h["previous_owner"] == loser, h
        assert r.redis.smembers(f"omni:conversation:{older}:merged") == {younger}
        assert r.redis.hget(f"omni:conversation:{older}", "owner") == keeper
        assert r.redis.smembers(f"omni:agent:{loser[6:]}:conversations") == set()
        revoked = [f for _, f in r.redis.xrange(f"omni:inbox:{loser}") if f["type"] == "work.revoked"]
        assert [(f["conversation"], json.loads(f["data"])["reason"]) for f in revoked] == [(younger, "merged")]
        assert send_one(r, "own:3", "4155550166", "any news on the parcel?", channel="sms") == older
        # the keeper reads what the customer wrote on the other channel: told of the merged conversation's message
        # at the link, then of the new one; its view holds all three, in the order they were stored
        told = [f for _, f in r.redis.xrange(f"omni:inbox:{keeper}") if f["type"] == "work.message"]
        assert [(f["conversation"], json.loads(f["data"])["message"]["id"]) for f in told] == \
            [(older, "own:2"), (older, "own:3")], told
        assert json.loads(told[0]["data"])["message"]["text"] == "my parcel 7781 has not arrived"
        view = json.loads(Lua(r.redis).call("view", keeper, older))
        assert [m["id"] for m in view["messages"]] == ["own:1", "own:2", "own:3"], view
        assert [m["channel"] for m in view["messages"]] == ["email", "sms", "sms"], view
        out = r.ctl("customer", "unlink", "olive@example.com", "phone:+14155550166").stdout
        assert "(1 message moved back)" in out, out
        assert r.redis.lrange(f"omni:conversation:{older}:messages", 0, -1) == ["own:1"]
        assert r.redis.lrange(f"omni:conversation:{younger}:messages", 0, -1) == ["own:2", "own:3"]
        assert r.redis.hget(f"omni:conversation:{older}", "owner") == keeper
        phone_customer = customer(r, "phone:+14155550166")
        assert r.redis.hget(f"omni:conversation:{younger}", "customer") == phone_customer
        assert open_conv(r, phone_customer) == younger
        clock_advance(r, "5s")
        wait_for(lambda: r.redis.hget(f"omni:conversation:{younger}", "status") == "assigned", 10,
                 "the conversation the unlink gave back routed again")
        # linked again: merged into the older once more, and its owner told of what it brings, once
        before = len([1 for _, f in r.redis.xrange(f"omni:inbox:{keeper}") if f["type"] == "work.message"])
        r.ctl("customer", "link", "+14155550166", "olive@example.com")
        told = [json.loads(f["data"])["message"]["id"] for _, f in r.redis.xrange(f"omni:inbox:{keeper}")
                if f["type"] == "work.message"][before:]
        assert told == ["own:2", "own:3"], told


def test_omnictl_reads_identities_as_connectors_write_them(router):
    """man omnictl: IDENTITY is a kind:value key or a bare address or number, normalized as the router normalizes
    a sender (identity.default_country US here): every way of writing one person reaches one customer, a number
    with an extension included; what is not an identity exits 2 naming it and why."""
    p = Peer(router.endpoint)
    ack(p, message("w:1", channel="sms", frm="+1 (415) 555-0142", text="hi"))
    ack(p, message("w:2", frm="Rene <RENE@Bücher.de.>", text="hi"))
    ack(p, message("w:3", channel="facebook", frm=" 1254459154682919 ", text="hi"))
    phone, mail = customer(router, "phone:+14155550142"), customer(router, "email:rene@xn--bcher-kva.de")
    fb = customer(router, "facebook:1254459154682919")
    for written, cust in (("+14155550142", phone), ("(415) 555-0142", phone), ("tel:+1-415-555-0142", phone),
                          ("415.555.0142", phone), ("1 415 555 0142", phone), ("011 1 415 555 0142", phone),
                          ("+1 415 555 0142 ext. 12", phone), ("phone:+1 415 555 0142 x12", phone),
                          ("sms:4155550142", phone), ("rene@bücher.de", mail), ("Email:René <rene@BÜCHER.DE>", mail),
                          ("mailto:Rene@xn--bcher-kva.de", mail), ("facebook:1254459154682919", fb)):
        out = router.ctl("customer", "show", written, check=False)
        assert out.returncode == 0 and out.stdout.startswith(f"customer {cust}\n"), (written, out.stdout, out.stderr)
    for written, why in (("twitter:@jack", "not all digits"), ("facebook:0123", "a leading zero"),
                         ("ann@gmail", "the domain has no dot"), ("skype:ann", "unknown identity kind"),
                         ("+1 555 123 4567", "not a number in use"), ("ann", "neither an address nor a number")):
        out = router.ctl("customer", "show", written, check=False)
        assert out.returncode == 2 and f'omnictl: identity "{written}": {why}' in out.stderr, (written, out.stderr)
    p.close()


def test_a_conversation_an_unlink_opens_is_an_opened_event(router):
    """A message an identity sent into the other side's open conversation while linked goes back with the unlink,
    into a conversation opened for it when its side has none (docs/redis.md): like every conversation opened, it
    is an `opened` event (conversation, customer, channel), so what follows the stream (omnictl watch, GET
    /v1/events) sees it."""
    p = Peer(router.endpoint)
    ack(p, message("op:1", channel="sms", frm="+14155550133", text="my parcel is late"))
    router.ctl("customer", "show", "opal@example.com", check=False)
    router.ctl("customer", "link", "opal@example.com", "+14155550133")
    ack(p, message("op:2", frm="opal@example.com", text="and my invoice is wrong"))
    out = router.ctl("customer", "unlink", "opal@example.com", "+14155550133").stdout
    assert "(1 message moved back)" in out, out
    conv = router.redis.hget("omni:msg:op:2", "conversation")
    mail = customer(router, "email:opal@example.com")
    assert open_conv(router, mail) == conv and msgs(router, conv) == ["op:2"]
    opened = [f for _, f in router.redis.xrange("omni:events") if f["type"] == "opened"]
    assert {"type": "opened", "conversation": conv, "customer": mail, "channel": "email"} in opened, opened
    p.close()


def test_numbers_are_read_in_the_configured_default_country(tmp_path, redis_server):
    """identity.default_country GB (docs/configuration.md, docs/connectors.md "Phone numbers"): a national number is
    read as dialled in the UK (trunk 0, international prefix 00), one with + as written; every form of one number
    is one customer, for the router and for omnictl alike; a number not in use there is NACKed naming from.id."""
    r = Router(str(tmp_path), redis_server.address)
    with open(r.config) as f:
        text = f.read()
    with open(r.config, "w") as f:
        f.write(text.replace("default_country: US", "default_country: gb"))
    r.start()
    try:
        red = redis_server.client()
        p = Peer(r.endpoint)
        for i, written in enumerate(["07911 123456", "+44 7911 123456", "0044 (0)7911 123456", "+44 (0) 7911-123-456"]):
            ack(p, message(f"gb:{i}", channel="sms" if i % 2 else "phone", frm=written, text=f"call {i}"))
            assert red.hget(f"omni:msg:gb:{i}", "identity") == "phone:+447911123456", written
        ack(p, message("gb:us", channel="sms", frm="00 1 (415) 555-0100", text="from abroad"))
        assert red.hget("omni:msg:gb:us", "identity") == "phone:+14155550100"
        p.submit(message("gb:bad", channel="sms", frm="(415) 555-0100"))
        assert p.recv() == ["OMNI/1", "NACK", "gb:bad", "from.id: not a number in use in its country (no such "
                            "range in libphonenumber's data)"]
        cust = red.hget("omni:identity:phone:+447911123456", "customer")
        assert r.ctl("customer", "show", "07911 123456").stdout.startswith(f"customer {cust}\n")
        p.close()
    finally:
        r.stop()
