"""Follow-ups (docs/routing.md "Follow-ups"): a conversation a person resolved gets, follow_up.after later, new
work for the same customer on the same channel, routed like a new conversation (so back to the agent who
resolved it), holding one message the router wrote (meta.follow_up_of); none when the customer has an open or a
later conversation by then, and a follow-up's own resolution schedules none. The router runs on the test clock
(`omnictl clock advance`), so the delay passes without waiting."""
import json
import time

import pytest

from api_client import OmniApi
from harness import Peer, Router, free_port, message, scrape, wait_for

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
    r = Router(str(tmp_path), redis_server.address, policy=POLICY, env={"OMNIROUTER_TEST_CLOCK": "1"},
               router_extra={"metrics_listen": f"127.0.0.1:{port}"}).start()
    r.metrics_port = port
    r.redis_address = redis_server.address
    r.redis = redis_server.client()
    r.peer = Peer(r.endpoint)
    yield r
    r.peer.close()
    r.stop()


def send(r, id, frm, text, channel="email", **extra):
    r.peer.submit(message(id, channel=channel, frm=frm, text=text, **extra))
    assert r.peer.recv() == ["OMNI/1", "ACK", id]
    return r.redis.hget(f"omni:msg:{id}", "conversation")


def router_now(r):
    return int(time.time() * 1000) + int(r.redis.get("omni:clock:offset") or 0)


def advance(r, span):
    """Moves the test clock and waits until a due scan has run at the new time and one more after it, so what
    the first opened has been routed."""
    r.ctl("clock", "advance", span)
    scanned = lambda: int(r.redis.get("omni:due:scanned") or 0)  # noqa: E731
    target = router_now(r)
    wait_for(lambda: scanned() >= target, 10, "a due scan at the new time")
    first = scanned()
    wait_for(lambda: scanned() > first, 10, "the next due scan")


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

    advance(rt, "59m")
    assert rt.redis.hget(f"omni:conversation:{ann}", "follow_up") is None, "opened before it was due"
    advance(rt, "2m")
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
    advance(rt, "30m")
    # dan writes again: an open conversation when the follow-up falls due; eve writes again and is resolved
    # again: a later conversation, whose own follow-up is the one that counts
    dan2 = send(rt, "d2", "dan@example.com", "still nothing")
    eve2 = send(rt, "e2", "eve@example.com", "and another thing")
    owner_of(rt, eve2)
    rt.ctl("conversation", "resolve", eve2)
    advance(rt, "31m")
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
    advance(rt, "30m")
    new = wait_for(lambda: rt.redis.hget(f"omni:conversation:{eve2}", "follow_up"), 10, "eve2's follow-up")
    assert rt.redis.hget(f"omni:conversation:{new}", "follow_up_of") == eve2


def test_a_resolution_schedules_no_follow_up_when_the_policy_has_none(tmp_path, redis_server):
    r = Router(str(tmp_path), redis_server.address, policy=POLICY.replace("after: 1h", "after: 0"),
               env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    r.redis = redis_server.client()
    r.peer = Peer(r.endpoint)
    try:
        conv = send(r, "n1", "nia@example.com", "hello")
        owner_of(r, conv)
        r.ctl("conversation", "resolve", conv)
        assert r.redis.hget("omni:settings", "follow_up_after_ms") == "0"
        assert r.redis.zcard("omni:followups") == 0
        assert "follow-up" not in r.ctl("conversation", "show", conv).stdout
    finally:
        r.peer.close()
        r.stop()
