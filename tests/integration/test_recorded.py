"""A routing rule with `record: true` (docs/routing.md, "Recording what is not work"): what it matches opens no
work. omni-phonelog's `answered: log` calls are the case in point (docs/connectors.md, "Answered calls"): with no
open conversation the call is stored as a resolved conversation in the caller's history, nobody's work; with
one, it joins it and changes nothing of its routing. A real router and a real Redis."""
import os
import subprocess

import pytest

from harness import BIN, Peer, Router, free_port, message, scrape, wait_for


POLICY = """
teams:
  - name: core
    offers: {auto_accept: true}
agents:
  - id: alice
    teams: [core]
    capacity: {phone: 2}
routing:
  rules:
    - name: answered-calls
      when: {channel: [phone], text: ['^Answered call from']}
      record: true
    - name: everything
      targets: [{team: core}]
"""
CALLER = "+14155550100"
ANSWERED = f"Answered call from {CALLER} at 2026-11-21 14:03:12 +00:00 (212 s)"
MISSED = f"Missed call from {CALLER} at 2026-11-21 15:10:00 +00:00; please call back"


@pytest.fixture
def rt(tmp_path, redis_server):
    port = free_port()
    r = Router(str(tmp_path), redis_server.address, policy=POLICY,
               router_extra={"metrics_listen": f"127.0.0.1:{port}"}).start()
    r.metrics_port = port
    r.redis = redis_server.client()
    r.peer = Peer(r.endpoint)
    yield r
    r.peer.close()
    r.stop()


def send(r, id, text):
    r.peer.submit(message(id, channel="phone", frm=CALLER, text=text))
    assert r.peer.recv() == ["OMNI/1", "ACK", id]
    return r.redis.hget(f"omni:msg:{id}", "conversation")


def status_is(r, conv, *statuses):
    """Waits until the conversation's status is one of statuses; returns its hash."""
    return wait_for(lambda: (lambda h: h if h.get("status") in statuses else None)(
        r.redis.hgetall(f"omni:conversation:{conv}")), 10, f"conversation {conv} {'/'.join(statuses)}")


def event_types(r, conv):
    return [f["type"] for _, f in r.redis.xrange("omni:events") if f.get("conversation") == conv]


def test_an_answered_call_without_an_open_conversation_is_recorded_not_routed(rt):
    conv = send(rt, "call1", ANSWERED)
    h = status_is(rt, conv, "resolved", "assigned", "offered", "queued")
    assert h["status"] == "resolved", h
    assert h["resolved_by"] == "policy:answered-calls" and h["rule"] == "answered-calls", h
    assert "owner" not in h and "team" not in h and "queued_on" not in h, h
    # nobody offered it, nothing waits, and nothing will come due for it
    assert not rt.redis.exists("omni:inbox:agent:alice"), rt.redis.xrange("omni:inbox:agent:alice")
    assert rt.redis.hget("omni:agent:alice", "load") in (None, "0")
    assert rt.redis.zscore("omni:unrouted", conv) is None
    queues = [k for k in rt.redis.scan_iter("omni:queue:*") if rt.redis.type(k) == "zset"]  # arrival and teams'
    assert not any(rt.redis.zscore(k, conv) is not None for k in queues), queues
    assert rt.redis.zscore("omni:timers", conv) is None
    # resolved as resolve.lua resolves: kept for retention, then archived
    assert rt.redis.zscore("omni:archive:due", conv) is not None
    cust = rt.redis.hget(f"omni:conversation:{conv}", "customer")
    assert rt.redis.hget(f"omni:customer:{cust}", "open_conversation") is None
    assert rt.redis.hget(f"omni:customer:{cust}", "last_conversation") == conv
    assert rt.redis.hget("omni:stats", "recorded") == "1"
    assert rt.redis.hget("omni:stats", "resolved") is None  # nobody resolved work
    types = event_types(rt, conv)
    assert "recorded" in types and "assigned" not in types and "queued" not in types, types
    assert rt.redis.llen(f"omni:conversation:{conv}:decisions") == 1
    out = rt.ctl("explain", "call1").stdout
    assert "  rule answered-calls\n" in out, out
    assert ("  => recorded, not work: rule answered-calls has record: true, so the conversation was stored resolved "
            "at once (resolved_by policy:answered-calls), offered to nobody") in out, out
    assert f"conversations {conv} (resolved)" in rt.ctl("customer", "show", f"phone:{CALLER}").stdout
    # conversation show tells a recorded conversation from resolved work (man/omnictl.1: status)
    show = rt.ctl("conversation", "show", conv).stdout
    assert "  recorded, not work: stored resolved by rule answered-calls\n" in show, show
    m = scrape(rt.metrics_port)
    assert m[("omnirouter_routing_decisions_total", (("outcome", "recorded"),))] == 1
    assert m[("omnirouter_routing_decisions_total", (("outcome", "assigned"),))] == 0
    # stats are read from Redis every few seconds
    wait_for(lambda: scrape(rt.metrics_port).get(("omnirouter_conversations_recorded_total", ())) == 1, 15,
             "omnirouter_conversations_recorded_total 1")

    # The caller's next message is work: a new conversation, routed.
    conv2 = send(rt, "call2", MISSED)
    assert conv2 != conv
    h = status_is(rt, conv2, "assigned", "offered", "queued", "resolved")
    assert h["status"] == "assigned" and h["owner"] == "agent:alice", h
    assert rt.redis.hget("omni:stats", "recorded") == "1"


def test_an_answered_call_joins_the_open_conversation_and_changes_nothing_of_its_routing(rt):
    conv = send(rt, "call3", MISSED)
    h = status_is(rt, conv, "assigned", "offered", "queued", "resolved")
    assert h["owner"] == "agent:alice", h
    joined = send(rt, "call4", ANSWERED)
    assert joined == conv  # stored and joined before its ACK; a joining message is never routed
    h = rt.redis.hgetall(f"omni:conversation:{conv}")
    assert h["status"] == "assigned" and h["owner"] == "agent:alice", h
    assert rt.redis.llen(f"omni:conversation:{conv}:decisions") == 1
    assert rt.redis.hget("omni:stats", "recorded") is None
    assert "recorded" not in event_types(rt, conv)


def test_a_record_rule_with_targets_or_a_queue_is_refused_where_it_is_written(tmp_path):
    """docs/routing.md, "Errors": the lines it shows, from omnirouted --check-config."""
    conf = tmp_path / "omnirouter.yaml"
    conf.write_text("teams:\n"
                    "  - {name: core}\n"
                    "routing:\n"
                    "  rules:\n"
                    "    - name: calls\n"
                    "      when: {channel: [phone]}\n"
                    "      record: true\n"
                    "      targets: [{team: core}]\n"
                    "    - {name: logged, when: {channel: [sms]}, record: true, queue: core}\n"
                    "    - {name: nowhere, when: {channel: [email]}}\n"
                    "    - {name: all, record: true}\n")
    r = subprocess.run([os.path.join(BIN, "omnirouted"), "--check-config", str(conf)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == [
        f"{conf}:8:16: routing.rules[0].targets: rule calls has record: true: what it matches is stored resolved and "
        "goes to nobody; remove its targets, or remove record",
        f"{conf}:9:67: routing.rules[1].queue: rule logged has record: true: nothing it matches ever waits in a queue; "
        "remove queue",
        f"{conf}:10:7: routing.rules[2].targets: required key missing (or record: true, for a rule whose matches are "
        "not work)",
        f"{conf}:11:27: routing.rules[3].record: rule all takes all work: the catch-all must route it (targets), not "
        "record it",
        "omnirouted: 4 configuration errors; not started"], r.stderr
