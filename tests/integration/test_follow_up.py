"""Follow-ups (docs/routing.md "Follow-ups"): a conversation a person resolved gets, follow_up.after later, new
work for the same customer on the same channel, routed like a new conversation (so back to the agent who
resolved it), holding one message the router wrote (meta.follow_up_of); none when the customer has an open or a
later conversation by then, and a follow-up's own resolution schedules none. The router runs on the test clock
(`omnictl clock advance`), so the delay passes without waiting."""
import datetime
import json
import time

import pytest

from api_client import OmniApi
from harness import (Peer, Router, clock_advance, clocked_router, free_port, message, router_now, scrape, send_one,
                     wait_for)
from lua_contract import Scripts

POLICY = """
calendars:
  - name: always
    timezone: UTC
    hours: ["mon-sun 00:00-24:00"]
teams:
  - name: core
    kind: in-house
    strategy: least-loaded
    calendar: always
    offers: {auto_accept: true}
agents:
  - id: alice
    teams: [core]
    capacity: {email: 1, sms: 1}
  - id: bob
    teams: [core]
    capacity: {email: 1, sms: 1}
classification:
  rules:
    - {name: technical, when: {text: ["crash"]}, category: technical}
  default_category: basic
routing:
  rules:
    - name: all
      targets: [{team: core}]
      queue: core
follow_up:
  after: 1h
"""


@pytest.fixture
def rt(tmp_path, redis_server):
    port = free_port()
    with clocked_router(tmp_path, redis_server, POLICY, router_extra={"metrics_listen": f"127.0.0.1:{port}"}) as r:
        r.metrics_port = port
        yield r


send = send_one


def owner_of(r, conv):
    return wait_for(lambda: r.redis.hget(f"omni:conversation:{conv}", "owner"), 10, f"conversation {conv} assigned")


def events(r, kind):
    return [f for _, f in r.redis.xrange("omni:events") if f["type"] == kind]


def test_a_resolved_conversation_is_followed_up_by_its_agent_after_the_delay(rt, request):
    # carl's goes to alice (first of equals), ann's to bob; both resolved, so both agents are free when the
    # follow-ups come: each goes back to the agent who resolved it, not to the first of equals
    carl = send(rt, "f1", "carl@example.com", "The app shows a crash on start", subject="crash")
    assert owner_of(rt, carl) == "agent:alice"
    ann = send(rt, "f2", "ann@example.com", "The app shows a crash when I pay", subject="Payment crash",
               thread="<t1@example.com>", lang="en")
    assert owner_of(rt, ann) == "agent:bob"
    # bob resolves his through omni-api, as an agent does (resolve.lua reads the delay the routers keep in Redis)
    api = OmniApi(rt.dir, rt.redis_address).start()
    request.addfinalizer(api.stop)
    bob = rt.ctl("token", "create", "agent:bob").stdout.strip()
    assert api.request("POST", f"/v1/conversations/{ann}/resolve", token=bob).status == 200
    rt.ctl("conversation", "resolve", carl)
    resolved_at = int(rt.redis.hget(f"omni:conversation:{ann}", "resolved_at"))
    assert int(rt.redis.zscore("omni:followups", ann)) == resolved_at + 3600 * 1000
    assert rt.redis.hget("omni:settings", "follow_up_after_ms") == "3600000"
    shown = rt.ctl("conversation", "show", ann).stdout
    assert "follow-up due " in shown, shown

    clock_advance(rt, "59m")
    assert rt.redis.hget(f"omni:conversation:{ann}", "follow_up") is None, "opened before it was due"
    clock_advance(rt, "2m")
    new = wait_for(lambda: rt.redis.hget(f"omni:conversation:{ann}", "follow_up"), 10, "ann's follow-up opened")
    assert owner_of(rt, new) == "agent:bob"
    carl_new = wait_for(lambda: rt.redis.hget(f"omni:conversation:{carl}", "follow_up"), 10, "carl's follow-up")
    assert owner_of(rt, carl_new) == "agent:alice"
    assert rt.redis.zcard("omni:followups") == 0

    h = rt.redis.hgetall(f"omni:conversation:{new}")
    assert h["follow_up_of"] == ann and h["channel"] == "email" and h["status"] == "assigned", h
    # same customer: the customer's open conversation is the follow-up
    cust = h["customer"]
    assert rt.redis.hget(f"omni:conversation:{ann}", "customer") == cust
    assert rt.redis.hget(f"omni:customer:{cust}", "open_conversation") == new
    # the one message, written by the router: valid as a connector's, what the customer wrote quoted, so the
    # classification of the original holds (technical), its threading kept for the reply
    assert rt.redis.lrange(f"omni:conversation:{new}:messages", 0, -1) == [f"followup:{ann}"]
    m = rt.redis.hgetall(f"omni:msg:followup:{ann}")
    assert m["identity"] == "email:ann@example.com" and m["conversation"] == new and m["channel"] == "email"
    j = json.loads(m["json"])
    assert j["id"] == f"followup:{ann}" and j["channel"] == "email" and j["from"]["id"] == "ann@example.com"
    assert j["meta"] == {"follow_up_of": ann}
    assert j["subject"] == "Payment crash" and j["thread"] == "<t1@example.com>" and j["lang"] == "en"
    assert j["text"].startswith(f"Follow-up of conversation {ann}, resolved ")
    assert j["text"].endswith("They wrote:\nThe app shows a crash when I pay")
    assert abs(time.mktime(time.strptime(j["received_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
               - router_now(rt) / 1000) < 120, j["received_at"]
    assert h["category"] == "technical"
    ev = [e for e in events(rt, "follow_up") if e["of"] == ann]
    assert ev == [{"type": "follow_up", "conversation": new, "of": ann, "customer": cust}]
    assert any(e["conversation"] == new for e in events(rt, "opened"))
    assert rt.redis.hget("omni:stats", "follow_ups") == "2"
    wait_for(lambda: scrape(rt.metrics_port).get(("omnirouter_follow_ups_opened_total", ())) == 2, 15,
             "the follow-ups counted in /metrics")
    shown = rt.ctl("conversation", "show", new).stdout
    assert f"the follow-up of conversation {ann}" in shown, shown
    assert f"followed up: conversation {new}" in rt.ctl("conversation", "show", ann).stdout
    explained = rt.ctl("explain", f"followup:{ann}").stdout
    assert f"  the follow-up of conversation {ann}, written by the router when it fell due; routed as new work\n" \
        in explained and "decision 1 at " in explained, explained
    # the agent's view of the follow-up names what it follows up (docs/openapi.yaml, Conversation)
    view = api.request("GET", f"/v1/conversations/{new}", token=bob)
    assert view.status == 200 and view.body["follow_up_of"] == ann, view
    assert view.body["messages"][0]["meta"] == {"follow_up_of": ann}

    # the follow-up's own resolution schedules none: one follow-up, not a chain
    rt.ctl("conversation", "resolve", new)
    assert rt.redis.zscore("omni:followups", new) is None
    # and the customer's next message opens new work as usual
    assert send(rt, "f3", "ann@example.com", "thanks, all good now") not in (ann, new)


def test_no_follow_up_when_the_customer_wrote_again_meanwhile(rt):
    dan = send(rt, "d1", "dan@example.com", "where is my parcel?")
    owner_of(rt, dan)
    rt.ctl("conversation", "resolve", dan)
    eve = send(rt, "e1", "eve@example.com", "my invoice is wrong")
    owner_of(rt, eve)
    rt.ctl("conversation", "resolve", eve)
    clock_advance(rt, "30m")
    # dan writes again: an open conversation when the follow-up falls due; eve writes again and is resolved
    # again: a later conversation, whose own follow-up is the one that counts
    dan2 = send(rt, "d2", "dan@example.com", "still nothing")
    eve2 = send(rt, "e2", "eve@example.com", "and another thing")
    owner_of(rt, eve2)
    rt.ctl("conversation", "resolve", eve2)
    clock_advance(rt, "31m")
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{dan}", "follow_up_skipped"), 10, "dan's follow-up skipped")
    assert rt.redis.hget(f"omni:conversation:{dan}", "follow_up_skipped") == f"open conversation {dan2}"
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{eve}", "follow_up_skipped"), 10, "eve's skipped")
    assert rt.redis.hget(f"omni:conversation:{eve}", "follow_up_skipped") == f"later conversation {eve2}"
    assert rt.redis.hget(f"omni:conversation:{dan}", "follow_up") is None
    assert rt.redis.hget(f"omni:conversation:{dan2}", "follow_up_of") is None
    assert rt.redis.hget("omni:stats", "follow_ups_skipped") == "2"
    wait_for(lambda: scrape(rt.metrics_port).get(("omnirouter_follow_ups_skipped_total", ())) == 2, 15,
             "the skipped follow-ups counted in /metrics")
    assert {e["conversation"]: e["reason"] for e in events(rt, "follow_up_skipped")} == {
        dan: f"open conversation {dan2}", eve: f"later conversation {eve2}"}
    assert "no follow-up: open conversation" in rt.ctl("conversation", "show", dan).stdout
    # eve2's follow-up is still to come, and comes
    assert rt.redis.zscore("omni:followups", eve2) is not None
    clock_advance(rt, "30m")
    new = wait_for(lambda: rt.redis.hget(f"omni:conversation:{eve2}", "follow_up"), 10, "eve2's follow-up")
    assert rt.redis.hget(f"omni:conversation:{new}", "follow_up_of") == eve2


def test_a_resolution_schedules_no_follow_up_when_the_policy_has_none(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, POLICY.replace("after: 1h", "after: 0")) as r:
        conv = send(r, "n1", "nia@example.com", "hello")
        owner_of(r, conv)
        r.ctl("conversation", "resolve", conv)
        assert r.redis.hget("omni:settings", "follow_up_after_ms") == "0"
        assert r.redis.zcard("omni:followups") == 0
        assert "follow-up" not in r.ctl("conversation", "show", conv).stdout


# A policy with a partner team that masks contacts, a record rule, and every channel kind.
POLICY2 = """
calendars:
  - name: always
    timezone: UTC
    hours: ["mon-sun 00:00-24:00"]
teams:
  - name: core
    kind: in-house
    strategy: least-loaded
    calendar: always
    offers: {auto_accept: true}
  - {name: acme, kind: outsourced, calendar: always, contract: {categories: [basic], mask_contact: true}}
agents:
  - id: alice
    teams: [core]
    capacity: {email: 5, sms: 5, phone: 5, twitter: 5, other: 5}
classification:
  rules:
    - {name: technical, when: {text: ["crash"]}, category: technical}
  default_category: basic
routing:
  rules:
    - {name: answered, when: {channel: [phone], text: ['^Answered call']}, record: true}
    - {name: sms, when: {channel: [sms]}, targets: [{team: acme}]}
    - name: all
      targets: [{team: core}]
      queue: core
follow_up:
  after: 1h
"""


@pytest.fixture
def rt2(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, POLICY2) as r:
        yield r


def test_the_follow_up_message_is_a_normalized_message_on_every_channel(rt2):
    """The message the router writes is one a connector could have sent (DESIGN.md): only the schema's fields,
    from as the first message had it, received_at RFC 3339, the text quoted exactly (unicode, quotes,
    backslashes, newlines, tabs); none of the original's meta or attachments; a missed call's empty text
    quotes nothing. A masking partner gets it masked (no meta, no sender)."""
    r = rt2
    cases = [
        ("p1", "sms", "+14155550101", "Ça ne marche pas 😀 \"quoted\" / back\\slash\nline2", {"name": "Zoë"}, {}),
        ("p2", "x-chat", "u-77", "héllo\ttab", {}, {"meta": {"room": "r1"}, "attachments": [
            {"name": "a.png", "type": "image/png", "size": 3, "url": "https://x/a.png"}], "to": "support"}),
        ("p3", "phone", "+14155550102", "", {}, {}),
        ("p4", "twitter", "123456", "crash", {"name": "T"}, {"thread": "99"}),
    ]
    convs = {}
    for id, ch, frm, text, fr, extra in cases:
        m = message(id, channel=ch, frm=frm, text=text, **extra)
        m["from"].update(fr)
        r.peer.submit(m)
        assert r.peer.recv() == ["OMNI/1", "ACK", id]
        conv = r.redis.hget(f"omni:msg:{id}", "conversation")
        owner_of(r, conv)
        r.ctl("conversation", "resolve", conv)
        convs[id] = (conv, m)
    clock_advance(r, "61m")
    for id, (conv, orig) in convs.items():
        new = wait_for(lambda: r.redis.hget(f"omni:conversation:{conv}", "follow_up"), 10, f"{id} follow-up")
        raw = r.redis.hget(f"omni:msg:followup:{conv}", "json")
        j = json.loads(raw)
        assert set(j) <= {"id", "channel", "from", "received_at", "text", "subject", "thread", "to", "lang", "meta"}
        assert j["from"] == orig["from"], (j, orig)
        datetime.datetime.strptime(j["received_at"], "%Y-%m-%dT%H:%M:%SZ")
        if orig["text"]:
            assert j["text"].endswith("\n\nThey wrote:\n" + orig["text"]), j["text"]
        else:
            assert "They wrote" not in j["text"]
        assert r.redis.hget(f"omni:conversation:{new}", "channel") == orig["channel"]
    # masked partner
    conv = convs["p1"][0]
    new = r.redis.hget(f"omni:conversation:{conv}", "follow_up")
    ents = [f for _, f in r.redis.xrange("omni:inbox:team:acme") if f["conversation"] == new]
    assert ents
    for e in ents:
        d = json.loads(e["data"])
        if "message" in d:
            assert "meta" not in d["message"] and d["message"]["from"]["id"] != "+14155550101", d


def test_a_recorded_conversation_does_not_cancel_the_follow_up(rt2):
    """A conversation a record: true rule stored resolved at once is not work and has no follow-up of its own
    (docs/routing.md "Recording what is not work"), so it does not count as the later conversation whose
    follow-up is the one that counts: the earlier work is still followed up."""
    r = rt2
    c1 = send(r, "q1", "+14155550103", "my line is dead", channel="phone")
    owner_of(r, c1)
    r.ctl("conversation", "resolve", c1)
    # a record conversation gets none of its own
    c2 = send(r, "q2", "+14155550104", "Answered call from +14155550104", channel="phone")
    wait_for(lambda: r.redis.hget(f"omni:conversation:{c2}", "status") == "resolved", 10, "c2 recorded")
    assert r.redis.zscore("omni:followups", c2) is None
    # the same customer's answered call after the resolution: recorded, not work
    c3 = send(r, "q3", "+14155550103", "Answered call from +14155550103", channel="phone")
    wait_for(lambda: r.redis.hget(f"omni:conversation:{c3}", "status") == "resolved", 10, "c3 recorded")
    assert r.redis.hget(f"omni:conversation:{c3}", "resolved_by") == "policy:answered"
    clock_advance(r, "61m")
    new = wait_for(lambda: r.redis.hget(f"omni:conversation:{c1}", "follow_up"), 10, "c1's follow-up")
    assert r.redis.hget(f"omni:conversation:{c1}", "follow_up_skipped") is None
    assert r.redis.hget(f"omni:conversation:{new}", "follow_up_of") == c1
    assert owner_of(r, new) == "agent:alice"
    assert r.redis.hget(f"omni:conversation:{c2}", "follow_up") is None


def test_a_later_conversation_on_a_linked_identity_counts(rt2):
    """The customer is the one the first identity belongs to now: a conversation opened after this one on an
    identity linked since is a later conversation of that customer."""
    r = rt2
    c1 = send(r, "k1", "kim@example.com", "my parcel is late")
    owner_of(r, c1)
    r.ctl("conversation", "resolve", c1)
    c2 = send(r, "k2", "+14155550109", "about my parcel", channel="phone")
    owner_of(r, c2)
    r.ctl("conversation", "resolve", c2)
    r.ctl("customer", "link", "kim@example.com", "+14155550109")
    clock_advance(r, "61m")
    wait_for(lambda: r.redis.hget(f"omni:conversation:{c1}", "follow_up_skipped"), 10, "c1's follow-up skipped")
    assert r.redis.hget(f"omni:conversation:{c1}", "follow_up_skipped") == f"later conversation {c2}"
    assert r.redis.hget(f"omni:conversation:{c1}", "follow_up") is None
    # c2's own follow-up is the one that counts
    new = wait_for(lambda: r.redis.hget(f"omni:conversation:{c2}", "follow_up"), 10, "c2's follow-up")
    assert r.redis.hget(f"omni:conversation:{new}", "follow_up_of") == c2


def test_a_reload_keeps_scheduled_follow_ups_and_two_routers_open_each_once(tmp_path, redis_server):
    """A reload to after: 0 stops new ones, not those scheduled (they keep their time); with two routers on
    one Redis each follow-up is opened exactly once."""
    r = Router(str(tmp_path / "a"), redis_server.address, policy=POLICY, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    r.redis = redis_server.client()
    r2 = Router(str(tmp_path / "b"), redis_server.address, policy=POLICY, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    r.peer = Peer(r.endpoint)
    try:
        cs = []
        for i in range(6):
            c = send(r, f"r{i}", f"c{i}@example.com", "hello there")
            owner_of(r, c) if i < 2 else None
            cs.append(c)
        for c in cs[:2]:
            r.ctl("conversation", "resolve", c)
        due0 = r.redis.zscore("omni:followups", cs[0])
        # reload: after 0
        with open(r.config) as f:
            txt = f.read()
        for x in (r, r2):
            with open(x.config, "w") as f:
                f.write(txt.replace("after: 1h", "after: 0"))
            x.ctl("reload")
        wait_for(lambda: r.redis.hget("omni:settings", "follow_up_after_ms") == "0", 10, "reloaded")
        assert r.redis.zscore("omni:followups", cs[0]) == due0
        clock_advance(r, "61m")
        for c in cs[:2]:
            wait_for(lambda: r.redis.hget(f"omni:conversation:{c}", "follow_up"), 10, "opened after reload")
        assert r.redis.hget("omni:stats", "follow_ups") == "2"
        assert len(events(r, "follow_up")) == 2
        assert len({r.redis.hget(f"omni:conversation:{c}", "follow_up") for c in cs[:2]}) == 2
        # a resolution after the reload schedules none
        r.ctl("conversation", "resolve", cs[2])
        assert r.redis.zscore("omni:followups", cs[2]) is None
    finally:
        r.peer.close()
        r.stop()
        r2.stop()


def test_a_rule_singles_follow_ups_out_and_a_masking_partner_sees_them_masked(tmp_path, redis_server, request):
    """`text: ['^Follow-up of conversation']` picks follow-ups out (routing and SLA), the SLA clock starts
    when it is routed, and a partner with mask_contact sees follow_up_of but neither meta nor the sender."""
    pol = POLICY2.replace("    - {name: sms, when: {channel: [sms]}, targets: [{team: acme}]}",
                          "    - {name: fu, when: {text: ['^Follow-up of conversation']}, targets: [{team: acme}]}") + \
        "sla:\n  targets:\n    - {when: {text: ['^Follow-up of']}, first_response: 2h}\n    - {first_response: 15m}\n"
    r = Router(str(tmp_path), redis_server.address, policy=pol, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    r.redis = redis_server.client()
    r.peer = Peer(r.endpoint)
    request.addfinalizer(r.stop)
    request.addfinalizer(r.peer.close)
    c = send(r, "m1", "+14155550111", "it fails", channel="sms", meta={"x": 1})
    assert owner_of(r, c) == "agent:alice"
    r.ctl("conversation", "resolve", c)
    clock_advance(r, "61m")
    new = wait_for(lambda: r.redis.hget(f"omni:conversation:{c}", "follow_up"), 10, "follow-up")
    assert owner_of(r, new) == "team:acme"
    h = r.redis.hgetall(f"omni:conversation:{new}")
    assert int(h["due"]) - int(h["assigned_at"]) == 2 * 3600 * 1000, h
    api = OmniApi(r.dir, redis_server.address).start()
    request.addfinalizer(api.stop)
    tok = r.ctl("token", "create", "partner:acme").stdout.strip()
    v = api.request("GET", f"/v1/conversations/{new}", token=tok)
    assert v.status == 200 and v.body["follow_up_of"] == c
    m = v.body["messages"][0]
    assert "meta" not in m and m["from"]["id"] != "+14155550111" and "name" not in m["from"]
    assert f"the follow-up of conversation {c}" in r.ctl("conversation", "show", new).stdout


def test_a_follow_up_counts_as_a_conversation_of_the_customer(tmp_path, redis_server, request):
    """customers.repeat_after: 2 makes the follow-up, the customer's second conversation, repeat."""
    r = Router(str(tmp_path), redis_server.address, policy=POLICY2 + "customers:\n  repeat_after: 2\n",
               env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    r.redis = redis_server.client()
    r.peer = Peer(r.endpoint)
    request.addfinalizer(r.stop)
    request.addfinalizer(r.peer.close)
    c = send(r, "m1", "zed@example.com", "it fails")
    owner_of(r, c)
    assert r.redis.hget(f"omni:conversation:{c}", "tier") == "new"
    r.ctl("conversation", "resolve", c)
    clock_advance(r, "61m")
    new = wait_for(lambda: r.redis.hget(f"omni:conversation:{c}", "follow_up"), 10, "follow-up")
    owner_of(r, new)
    assert r.redis.hget(f"omni:conversation:{new}", "tier") == "repeat"


def test_a_conversation_archived_before_its_follow_up_is_skipped_as_gone(tmp_path, redis_server, request):
    """A reload that shortens retention.resolved below a delay already scheduled: the conversation is archived
    first, and its follow-up is skipped as `gone` (only the event can say so)."""
    r = Router(str(tmp_path), redis_server.address, policy=POLICY, extra={"retention": {"resolved": "2h"}},
               env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    r.redis = redis_server.client()
    r.peer = Peer(r.endpoint)
    request.addfinalizer(r.stop)
    request.addfinalizer(r.peer.close)
    c = send(r, "g1", "gil@example.com", "it fails")
    owner_of(r, c)
    r.ctl("conversation", "resolve", c)
    with open(r.config) as f:
        txt = f.read()
    with open(r.config, "w") as f:
        f.write(txt.replace('resolved: "2h"', 'resolved: "10m"').replace("after: 1h", "after: 5m"))
    r.ctl("reload")
    wait_for(lambda: r.redis.hget("omni:settings", "follow_up_after_ms") == "300000", 10, "reloaded")
    clock_advance(r, "11m")
    wait_for(lambda: any(e["conversation"] == c for e in events(r, "archived")), 20, "archived")
    clock_advance(r, "50m")
    ev = wait_for(lambda: events(r, "follow_up_skipped"), 10, "skipped")
    assert ev == [{"type": "follow_up_skipped", "conversation": c, "reason": "gone"}]
    assert r.redis.zcard("omni:followups") == 0 and not r.redis.exists(f"omni:conversation:{c}")
    assert r.redis.hget("omni:stats", "follow_ups_skipped") == "1"


def test_a_follow_up_opened_by_a_router_that_died_before_routing_it_is_routed_once(tmp_path, redis_server):
    """Opening the follow-up (due.lua) and routing it are two steps: a router killed between them leaves the
    new conversation leased, and it comes due again for any router, which routes it, once."""
    r = Router(str(tmp_path), redis_server.address, policy=POLICY, env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    r.redis = redis_server.client()
    r.peer = Peer(r.endpoint)
    try:
        c = send(r, "l1", "lee@example.com", "it fails")
        owner_of(r, c)
        r.ctl("conversation", "resolve", c)
        r.peer.close()
        r.stop()
        r.ctl("clock", "advance", "61m")
        # what the dead router's tick did: the follow-up opened and handed out, never routed
        reply = Scripts(r.redis).call("due", router_now(r), 100, 60000, 3000, 5000, True)
        new = r.redis.hget(f"omni:conversation:{c}", "follow_up")
        assert new and reply[:2] == [new, "new"], reply
        assert r.redis.hget(f"omni:conversation:{new}", "status") == "open"
        r.start()
        r.ctl("clock", "advance", "10s")  # past the lease
        assert owner_of(r, new) in ("agent:alice", "agent:bob")
        assert r.redis.hget("omni:stats", "follow_ups") == "1"
        assert len(events(r, "follow_up")) == 1 and len(events(r, "opened")) == 2
        assert len([e for e in events(r, "assigned") if e["conversation"] == new]) == 1
    finally:
        r.stop()


def test_a_follow_up_after_an_unlink_goes_to_the_customer_the_identity_belongs_to_now(rt2):
    """Conversations stay with the customer that held them; after an unlink the follow-up is for the customer
    the first identity belongs to now, and a later conversation of the other side does not cancel it."""
    r = rt2
    send(r, "u0", "uma@example.com", "first contact")
    uma = r.redis.hget("omni:identity:email:uma@example.com", "customer")
    r.ctl("conversation", "resolve", r.redis.hget("omni:msg:u0", "conversation"))
    r.ctl("customer", "link", "uma@example.com", "+14155550120")
    c1 = send(r, "u1", "+14155550120", "my phone line is down", channel="phone")
    owner_of(r, c1)
    assert r.redis.hget(f"omni:conversation:{c1}", "customer") == uma
    r.ctl("conversation", "resolve", c1)
    r.ctl("customer", "unlink", "uma@example.com", "+14155550120")
    phone_cust = r.redis.hget("omni:identity:phone:+14155550120", "customer")
    assert phone_cust != uma
    # uma writes again by email: a later conversation of the email side only
    c2 = send(r, "u2", "uma@example.com", "and my invoice")
    owner_of(r, c2)
    r.ctl("conversation", "resolve", c2)
    clock_advance(r, "61m")
    new = wait_for(lambda: r.redis.hget(f"omni:conversation:{c1}", "follow_up"), 10, "c1's follow-up")
    h = r.redis.hgetall(f"omni:conversation:{new}")
    assert h["customer"] == phone_cust and h["channel"] == "phone" and h["first_identity"] == "phone:+14155550120"



def test_a_connector_may_not_take_a_follow_up_id(rt):
    """docs/protocol.md: ids starting "followup:" are the router's own: refused with the id in the NACK (a
    connector's message with one could be taken for a follow-up's and never stored)."""
    rt.peer.submit(message("followup:1", frm="ann@example.com", text="hello"))
    reply = rt.peer.recv()
    assert reply[:3] == ["OMNI/1", "NACK", "followup:1"], reply
    assert 'id: ids starting "followup:" are the router\'s own (follow-ups): "followup:1"' in reply[3], reply
    assert not rt.redis.exists("omni:msg:followup:1")
