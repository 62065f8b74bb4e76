"""omni-api audited from its documents alone (docs/api.md, docs/openapi.yaml, docs/delivery.md): what earlier
tests left out. Every answer is checked against docs/openapi.yaml by api_client, as in test_api.py; the world
(a router, an omni-api, tokens for ann, bob, acme, zeta and olga) is test_api.py's."""
import concurrent.futures
import json
import re
import os

import pytest

from api_client import EventStream, OmniApi
from harness import ROOT, free_port, scrape, wait_for
from test_api import World


@pytest.fixture
def world(tmp_path, redis_server):
    w = World(tmp_path, redis_server)
    yield w
    w.close()


def _error(a, status, code, field=None):
    assert a.status == status and a.body["error"]["code"] == code, a
    if field is not None:
        assert a.body["error"].get("field") == field, a


def test_an_integer_past_64_bits_is_a_field_out_of_range_not_bad_json(world):
    """docs/api.md: a score "that is not an integer in its range: 400 invalid_field naming it"; invalid_json is for
    a body that "is not JSON". 99999999999999999999 is JSON, an integer out of every range: the field is named
    (and a field the request does not take is unknown_field, whatever its value)."""
    cv = world.work("big numbers for-ann")
    survey = f"/v1/conversations/{cv}/survey"
    _error(world.call("POST", survey, "operator:olga", raw=b'{"csat": 99999999999999999999}'), 400, "invalid_field", "csat")
    _error(world.call("POST", survey, "operator:olga", raw=b'{"nps": -99999999999999999999}'), 400, "invalid_field", "nps")
    _error(world.call("POST", survey, "operator:olga", raw=b'{"csat": 5, "ces": 18446744073709551616}'), 400,
           "invalid_field", "ces")
    _error(world.call("POST", f"/v1/conversations/{cv}/reject", "agent:ann",
                      raw=b'{"reason": 99999999999999999999}'), 400, "invalid_field", "reason")
    _error(world.call("PUT", "/v1/presence", "agent:ann", raw=b'{"presence": 99999999999999999999}'), 400,
           "invalid_field", "presence")
    _error(world.call("POST", f"/v1/conversations/{cv}/accept", "agent:ann", raw=b'{"n": 99999999999999999999}'), 400,
           "unknown_field", "body")
    # still JSON's own errors where the body is not JSON, and nothing was done
    _error(world.call("POST", survey, "operator:olga", raw=b'{"csat": 99999999999999999999'), 400, "invalid_json", "body")
    assert world.redis.hget(f"omni:conversation:{cv}", "status") == "offered"


def test_report_query_arguments_are_refused_as_written(world):
    """docs/api.md "Report": days is 1..400 (openapi: digits), from/to a day; "a days out of bounds, a day that is not
    one ... is 400 invalid_field naming the argument"; another argument 400 unknown_field. An argument whose bytes
    are not UTF-8 is one of those, not silently dropped (a report of the default 7 days instead); an empty
    segment of the query ("?&days=1") is no argument."""
    def get(query):
        return world.call("GET", "/v1/report?" + query, "operator:olga")
    for query, field, code in (("days=%ff", "days", "invalid_field"), ("from=%ff", "from", "invalid_field"),
                               ("from=2026-12-01&to=2026-12-0%ff", "to", "invalid_field"),
                               ("days=+5", "days", "invalid_field"), ("days=%205", "days", "invalid_field"),
                               ("days=5%20", "days", "invalid_field"), ("days=-5", "days", "invalid_field")):
        _error(get(query), 400, code, field)
    bad = get("%ff=1")
    _error(bad, 400, "unknown_field")
    assert bad.body["error"]["field"] == "\ufffd", bad
    assert get("=5").status == 400
    for query in ("&days=1", "days=1&&", "days=1&"):
        a = get(query)
        assert a.status == 200 and a.body["from"] == a.body["to"], (query, a)
    assert get("days=007").status == 200  # digits, as the pattern says


def _documented_routes():
    text = open(os.path.join(ROOT, "docs", "api.md")).read()
    line = next(x for x in text.splitlines() if x.startswith("| `omnirouter_api_requests_total`"))
    listed = re.search(r"`route` \(([^)]*)\)", line).group(1)
    return set(re.findall(r"[a-z_]+", listed.split(";")[0])) | {"none"}


def test_every_route_label_of_the_metrics_is_documented(tmp_path, redis_server):
    """docs/api.md "Metrics": omnirouter_api_requests_total's `route` label takes the values listed there; a
    request on each operation of docs/openapi.yaml (the survey's too) counts under one of them."""
    port = free_port()
    w = World(tmp_path, redis_server, api_extra={"api.metrics_listen": f"127.0.0.1:{port}"})
    try:
        cv = w.work("labels for-ann")
        for method, path, who, body in (
                ("GET", "/healthz", None, None), ("GET", "/v1/me", "agent:ann", None),
                ("GET", "/v1/presence", "agent:ann", None), ("PUT", "/v1/agents/ann/presence", "agent:ann",
                                                              {"presence": "available"}),
                ("GET", "/v1/work", "agent:ann", None), ("GET", f"/v1/conversations/{cv}", "agent:ann", None),
                ("POST", f"/v1/conversations/{cv}/accept", "agent:ann", None),
                ("POST", f"/v1/conversations/{cv}/respond", "agent:ann", None),
                ("POST", f"/v1/conversations/{cv}/transfer", "operator:olga", {"team": "core"}),
                ("POST", f"/v1/conversations/{cv}/reject", "operator:olga", {"reason": "x"}),
                ("POST", f"/v1/conversations/{cv}/resolve", "operator:olga", None),
                ("POST", f"/v1/conversations/{cv}/survey", "operator:olga", {"csat": 4}),
                ("GET", "/v1/overview", "operator:olga", None), ("GET", "/v1/report", "operator:olga", None),
                ("GET", "/v1/nothing", None, None)):
            w.call(method, path, who, body=body)
        stream = EventStream(w.api, w.tokens["agent:ann"])
        stream.close()
        m = scrape(port)
        seen = {dict(labels)["route"] for (name, labels), v in m.items() if name == "omnirouter_api_requests_total"}
        assert "survey" in seen and "events" in seen, seen
        assert seen <= _documented_routes(), (seen - _documented_routes(), "not listed in docs/api.md Metrics")
    finally:
        w.close()


def test_since_opened_ms_is_never_negative_when_the_router_clock_runs_ahead(world):
    """openapi RespondOutcome: since_opened_ms >= 0. omni-api may run on another machine than the router that
    opened the conversation, a little behind it: the time since it opened is then 0, not negative (nor is a
    negative response time counted in the report)."""
    cv = world.work("ahead for-ann")
    ck = f"omni:conversation:{cv}"
    world.redis.hset(ck, "opened_at", int(world.redis.hget(ck, "opened_at")) + 60000)
    a = world.call("POST", f"/v1/conversations/{cv}/respond", "agent:ann")
    assert a.status == 200 and a.body["since_opened_ms"] == 0, a
    again = world.call("POST", f"/v1/conversations/{cv}/respond", "agent:ann")
    assert again.status == 200 and again.body["outcome"] == "already" and again.body["since_opened_ms"] == 0, again
    report = world.call("GET", "/v1/report?days=1", "operator:olga").body
    assert report["total"]["responded"] == 1 and report["total"]["response_ms"] == 0, report


def test_a_desk_resumes_across_a_restart_of_omni_api_missing_nothing(world):
    """docs/api.md: omni-api keeps nothing that Redis does not have, "restart any at any time"; a client
    reconnects with its Last-Event-ID and the stream continues right after it. omni-api killed mid-way (SIGKILL:
    no goodbye), work keeps happening, a new omni-api: the desk gets every event it missed, once, in order,
    without a gap, and acts on the work at once."""
    stream = EventStream(world.api, world.tokens["agent:ann"])
    first = world.work("before the crash for-ann")
    last_id, kind, data = stream.next_event()
    assert kind == "work.offered" and data["conversation"] == first
    world.api.kill()
    with pytest.raises((EOFError, OSError)):  # the stream ends with the process
        while True:
            stream.next_event(timeout=10)
    stream.close()
    second = world.work("during the restart for-ann")
    world.router.ctl("conversation", "resolve", first, "--by", "olga")
    world.api.start()
    stream = EventStream(world.api, world.tokens["agent:ann"], last_event_id=last_id)
    got = [stream.next_event() for _ in range(2)]
    assert [(k, d["conversation"]) for _, k, d in got] == [("work.offered", second), ("work.resolved", first)], got
    def order(i):
        return tuple(int(x) for x in i.split("-"))
    assert all(i is not None and order(i) > order(last_id) for i, _, _ in got), got  # no gap, nothing twice
    a = world.call("POST", f"/v1/conversations/{second}/accept", "agent:ann")
    assert a.status == 200 and a.body["outcome"] == "accepted", a
    _, kind, data = stream.next_event()
    assert kind == "work.assigned" and data["conversation"] == second
    stream.close()


def test_meta_reaches_the_api_byte_for_byte_as_its_connector_wrote_it(world):
    """docs/delivery.md, a view: a message's meta is "passed through byte for byte as the connector wrote them";
    docs/api.md: it "comes as the connector wrote it". Numbers as written (0.1, 1E2, -0), escapes as written, odd
    spacing: the very text, in GET /v1/conversations/ID and GET /v1/work, as in the inbox."""
    raw_meta = '{"r":0.1,"e":1E2,"n":-0,"u":"\\u00e9\\/", "sp" : [ ] ,"big":-9223372036854775808}'
    mid = "email:audit:meta"
    frame = json.dumps({"id": mid, "channel": "email", "from": {"id": "meta@example.com"},
                        "received_at": "2026-12-03T10:00:00Z", "text": "raw meta for-ann"})[:-1] + ', "meta": ' + raw_meta + "}"
    world.peer.send("OMNI/1", "MSG", frame)
    assert world.peer.recv() == ["OMNI/1", "ACK", mid]
    cv = world.redis.hget(f"omni:msg:{mid}", "conversation")
    wait_for(lambda: world.redis.hget(f"omni:conversation:{cv}", "owner") == "agent:ann", 10, "offered to ann")
    for who, path in (("agent:ann", f"/v1/conversations/{cv}"), ("operator:olga", f"/v1/conversations/{cv}"),
                      ("agent:ann", "/v1/work")):
        a = world.call("GET", path, who)
        assert a.status == 200 and b'"meta":' + raw_meta.encode() in a.raw, (who, path, a.raw)


def test_accept_of_an_offer_that_moved_on(world):
    """docs/api.md, accept: moved on, it is 404 to the agent it was offered to; an operator acts on it where it is
    now (an open offer to another agent is accepted for her; anything else is 409 not_offered)."""
    cv = world.work("moving on")  # no skill asked: ann or bob, and tina in tier2 can take it
    agent = world.redis.hget(f"omni:conversation:{cv}", "owner")
    t = world.call("POST", f"/v1/conversations/{cv}/transfer", "operator:olga", body={"team": "tier2"})
    assert t.status == 200 and t.body["outcome"] == "transferred", t
    wait_for(lambda: world.redis.hget(f"omni:conversation:{cv}", "owner") == "agent:tina", 10, "offered to tina")
    _error(world.call("POST", f"/v1/conversations/{cv}/accept", "agent:ann"), 404, "not_found")
    a = world.call("POST", f"/v1/conversations/{cv}/accept", "operator:olga")
    assert a.status == 200 and a.body == {"conversation": cv, "outcome": "accepted"}, a
    assert world.redis.hget(f"omni:conversation:{cv}", "status") == "assigned"
    _error(world.call("POST", f"/v1/conversations/{cv}/accept", "operator:olga"), 409, "not_offered")
    assert world.call("POST", f"/v1/conversations/{cv}/resolve", "operator:olga").status == 200
    _error(world.call("POST", f"/v1/conversations/{cv}/accept", "agent:ann"), 404, "not_found")
    _error(world.call("POST", f"/v1/conversations/{cv}/accept", "operator:olga"), 409, "not_offered")


def test_attachments_reach_the_api_as_their_connector_wrote_them(world):
    """DESIGN.md's attachments: a size is an integer of bytes; a view gives it exactly (cjson, decoding and encoding
    it again in Redis, wrote 123456789012345678 as 1.2345678901235e+17), in the views and in the inbox."""
    raw_att = '[{"name":"big.bin","type":"application/octet-stream","size":123456789012345678}]'
    mid = "email:audit:attachments"
    frame = json.dumps({"id": mid, "channel": "email", "from": {"id": "att@example.com"},
                        "received_at": "2026-12-03T10:00:00Z", "text": "a large file for-ann"})[:-1] + \
        ', "attachments": ' + raw_att + "}"
    world.peer.send("OMNI/1", "MSG", frame)
    assert world.peer.recv() == ["OMNI/1", "ACK", mid]
    cv = world.redis.hget(f"omni:msg:{mid}", "conversation")
    wait_for(lambda: world.redis.hget(f"omni:conversation:{cv}", "owner") == "agent:ann", 10, "offered to ann")
    for who, path in (("agent:ann", f"/v1/conversations/{cv}"), ("agent:ann", "/v1/work")):
        a = world.call("GET", path, who)
        assert a.status == 200 and b'"attachments":' + raw_att.encode() in a.raw, (who, path, a.raw)
