"""omni-api end to end: a real router routing real messages on a real Redis, tokens made with omnictl, and
every answer checked against docs/openapi.yaml (api_client.py). The authorization matrix is made from the
spec's operations, so a path added to the spec without a row here fails test_matrix_covers_every_operation;
likewise every status the spec documents for an operation is driven by a real request (DRIVERS, GENERIC:
test_every_documented_status_has_a_driver), and every request body its schema allows or refuses is sent
(test_request_bodies_are_taken_and_refused_as_their_schemas_say)."""
import base64
import hashlib
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from api_client import SPEC, ApiWorld, EventStream, OmniApi, operations, schema_check
from harness import BIN, RedisServer, free_port, http_get, message, scrape, wait_for

POLICY = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: core, kind: in-house, calendar: always, offers: {accept_timeout: 10m}}
  - {name: tier2, kind: in-house, calendar: always}
  - {name: acme, kind: outsourced, calendar: always, contract: {categories: [general], mask_contact: true}}
  - {name: zeta, kind: outsourced, calendar: always, contract: {categories: [general], mask_contact: true}}
agents:
  - {id: ann, teams: [core], skills: ["ann:1"], capacity: {email: 50}}
  - {id: bob, teams: [core], skills: ["bob:1"], capacity: {email: 50}}
  - {id: tina, teams: [tier2], capacity: {email: 50}}
classification:
  rules:
    - {name: ann, when: {text: ["for-ann"]}, skills: ["ann:1"]}
    - {name: bob, when: {text: ["for-bob"]}, skills: ["bob:1"]}
routing:
  rules:
    - {name: acme, when: {text: ["for-acme"]}, targets: [{team: acme}], queue: core}
    - {name: zeta, when: {text: ["for-zeta"]}, targets: [{team: zeta}], queue: core}
    - {name: rest, targets: [{team: core}], queue: core}
"""


class World(ApiWorld):
    """A router, an omni-api and tokens for ann and bob (agents), acme and zeta (partners), olga (operator)."""

    def __init__(self, tmp_path, redis_server, api_extra=None):
        super().__init__(tmp_path, redis_server, POLICY,
                         ("agent:ann", "agent:bob", "partner:acme", "partner:zeta", "operator:olga"), api_extra=api_extra)

    def work(self, text):
        """A new customer writes text; returns the conversation once the router gave it an owner."""
        _, cv = self.submit(text)
        wait_for(lambda: self.redis.hget(f"omni:conversation:{cv}", "owner"), 10, f"conversation {cv} routed")
        return cv


@pytest.fixture
def world(tmp_path, redis_server):
    w = World(tmp_path, redis_server)
    yield w
    w.close()


# --- the authorization matrix ------------------------------------------------------------------------------
# Columns: the caller. "own": the token whose work it is; "other agent": bob on ann's work; "other partner": zeta
# on acme's (or ann's) work; then no token, a malformed one, a revoked one. Each row: how to make the request for
# that operation (what work it needs, the body) and what each column must answer.
CASES = ("own", "other agent", "other partner", "no token", "bad token", "revoked")
BAD_TOKEN = "omni_" + "A" * 43  # well-formed, never issued


def _conv(text="hello for-ann"):
    return lambda w: w.work(text)


# operationId -> (owner subject, work maker or None, path maker, body, {case: expected status})
ROWS = {
    "healthz": ("agent:ann", None, lambda c: "/healthz", None,
                {"own": 200, "other agent": 200, "other partner": 200, "no token": 200, "bad token": 200,
                 "revoked": 200}),
    "getMe": ("agent:ann", None, lambda c: "/v1/me", None, {"other agent": 200, "other partner": 200}),
    "getPresence": ("agent:ann", None, lambda c: "/v1/presence", None, {"other agent": 200, "other partner": 404}),
    "setPresence": ("agent:ann", None, lambda c: "/v1/presence", {"presence": "available"},
                    {"other agent": 200, "other partner": 404}),
    "setAgentPresence": ("operator:olga", None, lambda c: "/v1/agents/ann/presence", {"presence": "available"},
                         {"other agent": 404, "other partner": 404}),
    "getWork": ("agent:ann", _conv(), lambda c: "/v1/work", None, {"other agent": 200, "other partner": 200}),
    "getConversation": ("agent:ann", _conv(), lambda c: f"/v1/conversations/{c}", None, {}),
    "accept": ("agent:ann", _conv(), lambda c: f"/v1/conversations/{c}/accept", None, {}),
    "reject": ("agent:ann", _conv(), lambda c: f"/v1/conversations/{c}/reject", {"reason": "not mine"}, {}),
    "respond": ("agent:ann", _conv(), lambda c: f"/v1/conversations/{c}/respond", None, {}),
    "resolve": ("agent:ann", _conv(), lambda c: f"/v1/conversations/{c}/resolve", None, {}),
    "transfer": ("agent:ann", _conv(), lambda c: f"/v1/conversations/{c}/transfer", {"team": "tier2"}, {}),
    # a survey tool's call on an operator's token: agents and partners learn nothing (404), as of others' work
    "survey": ("operator:olga", lambda w: _resolved(w), lambda c: f"/v1/conversations/{c}/survey", {"csat": 5}, {}),
    "events": ("agent:ann", None, lambda c: "/v1/events", None, {"other agent": 200, "other partner": 200}),
    "getOverview": ("operator:olga", None, lambda c: "/v1/overview", None, {"other agent": 404, "other partner": 404}),
    "getReport": ("operator:olga", None, lambda c: "/v1/report", None, {"other agent": 404, "other partner": 404}),
}


def expected(op, case):
    default = {"own": 200, "other agent": 404, "other partner": 404, "no token": 401, "bad token": 401,
               "revoked": 401}
    return ROWS[op][4].get(case, default[case])


def test_matrix_covers_every_operation():
    """A path added to docs/openapi.yaml needs its row in ROWS (and so in the matrix), and no row is stale."""
    ops = {op for _, _, op in operations()}
    assert ops == set(ROWS), f"in the spec, not in the matrix: {ops - set(ROWS)}; stale rows: {set(ROWS) - ops}"


@pytest.mark.parametrize("op", sorted(ROWS))
def test_authorization_matrix(world, op):
    method = next(m for m, _, o in operations() if o == op)
    owner, make, path_of, body, _ = ROWS[op]
    # a second token of the owner: it works a moment ago, and must fail at once once revoked
    revoked = world.token(owner)
    tid = world.call("GET", "/v1/me", revoked).body["token"]
    world.router.ctl("token", "revoke", tid)
    callers = {"own": owner, "other agent": "agent:bob", "other partner": "partner:zeta", "no token": None,
               "bad token": BAD_TOKEN, "revoked": revoked}
    conv = make(world) if make else None  # ann's (offered to her)
    path = path_of(conv)
    # the others first: refused, they change nothing, so "own" then finds the work as it was
    for case in [c for c in CASES if c != "own"] + ["own"]:
        who = callers[case]
        if op == "events":
            stream = EventStream(world.api, world.tokens.get(who, who) if who else "")
            status = stream.status
            stream.close()
            if status != 200:  # the error body, checked against the spec
                status = world.call(method, path, who).status
        else:
            a = world.call(method, path, who, body=body)
            status = a.status
            if op == "getWork" and status == 200:
                ids = [c["id"] for c in a.body["offered"] + a.body["owned"]]
                assert (conv in ids) == (case == "own"), (case, a.body)
        want = expected(op, case)
        assert status == want, f"{op} {path} as {case} ({who}): {status}, expected {want}"


def test_partner_sees_its_own_work_masked(world):
    conv = world.work("parcel lost for-acme")
    a = world.call("GET", f"/v1/conversations/{conv}", "partner:acme")
    assert a.status == 200 and a.body["owner"] == "team:acme"
    sender = a.body["messages"][0]["from"]["id"]
    assert sender.endswith("***@example.com") and not sender.startswith("cust"), sender
    assert world.call("GET", f"/v1/conversations/{conv}", "partner:zeta").status == 404
    assert world.call("GET", f"/v1/conversations/{conv}", "agent:ann").status == 404
    op = world.call("GET", f"/v1/conversations/{conv}", "operator:olga")
    assert op.status == 200 and op.body["messages"][0]["from"]["id"].startswith("cust")
    work = world.call("GET", "/v1/work", "partner:acme").body
    assert [c["id"] for c in work["owned"]] == [conv]
    # the customer writes again: the team's stream tells it, masked as well
    stream = EventStream(world.api, world.tokens["partner:acme"])
    customer = world.redis.hget(f"omni:msg:{world.redis.lrange(f'omni:conversation:{conv}:messages', 0, 0)[0]}",
                                "json")
    world.peer.submit(message("email:api:again", frm=json.loads(customer)["from"]["id"], text="any news?"))
    assert world.peer.recv() == ["OMNI/1", "ACK", "email:api:again"]
    _, kind, data = stream.next_event()
    assert kind == "work.message" and data["conversation"] == conv and data["message"]["text"] == "any news?"
    assert data["message"]["from"]["id"] == sender
    schema_check(SPEC["components"]["schemas"]["InboxEvent"], data, "event")
    stream.close()
    assert world.call("POST", f"/v1/conversations/{conv}/resolve", "partner:acme").body["outcome"] == "resolved"
    # resolved, it is nobody's work any more: the partner no longer sees it; an operator is told it is closed
    assert world.call("POST", f"/v1/conversations/{conv}/resolve", "partner:acme").status == 404
    closed = world.call("POST", f"/v1/conversations/{conv}/resolve", "operator:olga")
    assert closed.status == 409 and closed.body["error"]["code"] == "closed"
    # nobody holds it now: owner and team are left out (absent), never false
    gone = world.call("GET", f"/v1/conversations/{conv}", "operator:olga")
    assert gone.status == 200 and gone.body["status"] == "resolved", gone.body
    assert "owner" not in gone.body and "team" not in gone.body, gone.body
    schema_check(SPEC["components"]["schemas"]["Conversation"], gone.body, "conversation")


def test_a_masked_partner_never_sees_the_identity_in_a_message_id(world):
    """DESIGN.md: masked identities in everything the partner receives. A Facebook postback without a mid gets
    the id "facebook:postback:<PSID>:<time>" (connectors/facebook): the PSID in it is masked as the sender is,
    in the conversation, the work list and the team's events alike; an operator sees the id as stored."""
    psid = "9876543210123"
    stream = EventStream(world.api, world.tokens["partner:acme"])
    mid = f"facebook:postback:{psid}:1700000000"
    world.peer.submit(message(mid, channel="facebook", frm=psid, text="help for-acme"))
    assert world.peer.recv() == ["OMNI/1", "ACK", mid]
    cv = world.redis.hget(f"omni:msg:{mid}", "conversation")
    wait_for(lambda: world.redis.hget(f"omni:conversation:{cv}", "owner") == "team:acme", 10, "routed to acme")
    again = f"facebook:postback:{psid}:1700000001"
    world.peer.submit(message(again, channel="facebook", frm=psid, text="still there?"))
    assert world.peer.recv() == ["OMNI/1", "ACK", again]
    _, kind, data = stream.next_event()
    while kind != "work.message":
        _, kind, data = stream.next_event()
    stream.close()
    view = world.call("GET", f"/v1/conversations/{cv}", "partner:acme").body
    work = world.call("GET", "/v1/work", "partner:acme").body
    for seen in (view, work, data):
        assert psid not in json.dumps(seen), seen
    masked = view["messages"][0]["from"]["id"]
    assert masked.startswith("anon-") and [m["id"] for m in view["messages"]] == \
        [f"facebook:postback:{masked}:1700000000", f"facebook:postback:{masked}:1700000001"], view
    assert data["message"]["id"] == view["messages"][1]["id"]
    op = world.call("GET", f"/v1/conversations/{cv}", "operator:olga").body
    assert [m["id"] for m in op["messages"]] == [mid, again]


def test_offer_accept_then_conflicts(world):
    conv = world.work("hi for-ann")
    offered = world.call("GET", "/v1/work", "agent:ann").body["offered"]
    assert [c["id"] for c in offered] == [conv] and offered[0]["offer_expires_at"] > 0
    assert world.call("POST", f"/v1/conversations/{conv}/accept", "agent:ann").body["outcome"] == "accepted"
    again = world.call("POST", f"/v1/conversations/{conv}/accept", "agent:ann")
    assert again.status == 409 and again.body["error"]["code"] == "not_offered"
    owned = world.call("GET", "/v1/work", "agent:ann").body["owned"][0]
    assert owned["status"] == "assigned" and "first_response_at" not in owned, owned
    r = world.call("POST", f"/v1/conversations/{conv}/respond", "agent:ann").body
    assert r["outcome"] in ("met", "no sla") and r["since_opened_ms"] >= 0
    # the view says it was answered (openapi.yaml, Conversation): in the work list and the conversation alike
    stored = int(world.redis.hget(f"omni:conversation:{conv}", "first_response_at"))
    assert world.call("GET", "/v1/work", "agent:ann").body["owned"][0]["first_response_at"] == stored
    one = world.call("GET", f"/v1/conversations/{conv}", "agent:ann").body
    assert one["first_response_at"] == stored
    schema_check(SPEC["components"]["schemas"]["Conversation"], one, "conversation")
    bad = world.call("POST", f"/v1/conversations/{conv}/transfer", "agent:ann", body={"team": "nosuch"})
    assert bad.status == 400 and bad.body["error"]["field"] == "team"


def test_verbs_read_the_routers_clock(world):
    """The API decides by the routers' clock (docs/routing.md, "Time"): with the test clock's offset moved past
    an offer's offer_expires_at, the offer can no longer be accepted, even before a router's tick."""
    conv = world.work("late for-ann")
    expires = world.call("GET", "/v1/work", "agent:ann").body["offered"][0]["offer_expires_at"]
    world.redis.set("omni:clock:offset", expires - int(time.time() * 1000) + 60_000)  # a minute past it
    late = world.call("POST", f"/v1/conversations/{conv}/accept", "agent:ann")
    assert late.status == 409 and late.body["error"]["code"] == "not_offered", late
    # nor acted on: the offer is no longer ann's (nothing recorded in her name)
    for verb in ("respond", "resolve"):
        assert world.call("POST", f"/v1/conversations/{conv}/{verb}", "agent:ann").status == 404, verb
    assert world.redis.hget(f"omni:conversation:{conv}", "first_response_by") is None
    world.redis.delete("omni:clock:offset")


def test_a_transfer_note_is_kept_in_the_transfer_event(world):
    """docs/api.md "Verbs": transfer takes an optional note; it is kept in the router's `transfer` event, which an
    operator's stream (and omnictl watch) shows. Without a note the event has none."""
    olga = EventStream(world.api, world.tokens["operator:olga"])
    first, second = world.work("a for-ann"), world.work("b for-ann")
    for cv, body in ((first, {"team": "tier2", "note": "customer writes in Finnish"}), (second, {"team": "tier2"})):
        assert world.call("POST", f"/v1/conversations/{cv}/transfer", "agent:ann", body=body).body["outcome"] == \
            "transferred"
    seen = {}
    while len(seen) < 2:
        _, kind, data = olga.next_event()
        if kind == "transfer":
            seen[data["conversation"]] = data
    olga.close()
    assert seen[first]["note"] == "customer writes in Finnish" and seen[first]["to"] == "tier2", seen
    assert "note" not in seen[second], seen


def test_sighup_is_logged_and_ignored(world):
    """A reload sent to every omnirouter unit (systemctl reload, kill -HUP) must not stop the API
    (docs/operations.md, Services): it logs it and goes on serving."""
    world.api.proc.send_signal(signal.SIGHUP)
    world.api.wait_log(r"SIGHUP: configuration is read at start-up")
    assert world.api.proc.poll() is None
    assert world.call("GET", "/v1/me", "agent:ann").status == 200


def test_bad_bodies_name_the_field(world):
    cv = world.work("x for-ann")
    cases = [
        ("PUT", "/v1/presence", b'{"presence": ', "invalid_json", "body"),
        ("PUT", "/v1/presence", b'[1]', "invalid_json", "body"),
        ("PUT", "/v1/presence", b'{}', "missing_field", "presence"),
        ("PUT", "/v1/presence", b'{"presence": "gone"}', "invalid_field", "presence"),
        ("PUT", "/v1/presence", b'{"presence": 3}', "invalid_field", "presence"),
        ("PUT", "/v1/presence", b'{"presence": "away", "mood": "ok"}', "unknown_field", "body"),
        ("PUT", "/v1/presence", b'{"presence": "away", "presence": "offline"}', "invalid_json", "body"),
        ("POST", f"/v1/conversations/{cv}/reject", b'{}', "missing_field", "reason"),
        ("POST", f"/v1/conversations/{cv}/reject", b'{"reason": ""}', "invalid_field", "reason"),
        ("POST", f"/v1/conversations/{cv}/transfer", b'{"team": "Tier 2"}', "invalid_field", "team"),
        ("POST", f"/v1/conversations/{cv}/accept", b'{"why": 1}', "unknown_field", "body"),
        ("POST", f"/v1/conversations/{cv}/accept", b'\xff\xfe', "invalid_json", "body"),
    ]
    for method, path, raw, code, field in cases:
        a = world.call(method, path, "agent:ann", raw=raw)
        assert a.status == 400 and a.body["error"]["code"] == code and a.body["error"]["field"] == field, (raw, a)
    for raw in (b"null", b"7", b'"x"'):  # JSON, but not an object: said so, not "not JSON"
        a = world.call("PUT", "/v1/presence", "agent:ann", raw=raw)
        assert a.status == 400 and a.body["error"]["message"].startswith("body is not a JSON object"), (raw, a)
    e = EventStream(world.api, world.tokens["agent:ann"], last_event_id="yesterday")
    assert e.status == 400
    e.close()


def test_unknown_paths_and_methods(world):
    assert world.call("GET", "/v1/nothing", "agent:ann").status == 404
    assert world.call("GET", "/v1/conversations/abc", "agent:ann").status == 404
    assert world.call("GET", "/v1/conversations/0123", "agent:ann").status == 404
    assert world.call("GET", "/v1/conversations/99999999", "agent:ann").status == 404
    a = world.call("DELETE", "/v1/me", "agent:ann")
    assert a.status == 405 and a.headers["allow"] == "GET"
    # no path takes query parameters: a query string is ignored (docs/api.md "Paths")
    assert world.call("GET", "/v1/work?limit=-1&cursor=zz", "agent:ann").body == {"offered": [], "owned": []}
    assert world.call("GET", "/v1/me?x=1", "agent:ann").body["subject"] == "agent:ann"


def test_authorization_header_shapes(world):
    """docs/api.md "Tokens": no header is `unauthorized` (no error= in the challenge); a header that is not
    `Bearer omni_...` is a malformed token, `invalid_token` naming Authorization; the scheme is case-insensitive."""
    ann = world.tokens["agent:ann"]
    a = world.call("GET", "/v1/me")
    assert a.body["error"]["code"] == "unauthorized" and a.headers["www-authenticate"] == 'Bearer realm="omni-api"'
    for value in ("", "Bearer", "Bearer ", "Basic YW5uOnB3", f"Token {ann}", f"Bearer {ann}x", f"Bearer {ann} {ann}"):
        a = world.api.request("GET", "/v1/me", headers={"Authorization": value})
        assert a.status == 401 and a.body["error"]["code"] == "invalid_token", (value, a)
        assert a.body["error"]["field"] == "Authorization", (value, a)
        assert a.headers["www-authenticate"] == 'Bearer realm="omni-api", error="invalid_token"', (value, a)
    for value in (f"bearer {ann}", f"BEARER  {ann}  "):
        assert world.api.request("GET", "/v1/me", headers={"Authorization": value}).status == 200, value


def test_tokens_listed_without_secrets_and_revoked_at_once(world):
    token = world.tokens["agent:bob"]
    listing = world.router.ctl("token", "list").stdout
    assert "agent:bob" in listing and token not in listing and token[5:] not in listing
    assert not [k for k in world.redis.keys("omni:*") if token in k or token[5:] in k]
    tid = world.call("GET", "/v1/me", "agent:bob").body["token"]
    assert tid in listing
    stream = EventStream(world.api, token)  # opened before the revoke
    assert stream.status == 200
    world.router.ctl("token", "revoke", tid)
    a = world.call("GET", "/v1/me", "agent:bob")
    assert a.status == 401 and 'error="invalid_token"' in a.headers["www-authenticate"]
    # the open stream ends too (at its next batch or keepalive, 1 s here): nothing more reaches a revoked token
    deadline = time.monotonic() + 10
    with pytest.raises(EOFError):
        while time.monotonic() < deadline:
            stream.next_block(10)
    stream.close()
    assert world.router.ctl("token", "revoke", tid, check=False).returncode == 1
    bad = world.router.ctl("token", "create", "agent:nobody", check=False)
    assert bad.returncode == 2 and "no agent \"nobody\"" in bad.stderr


def test_body_limits(world):
    """limits.body_bytes is 1024 here: exactly that is read; one byte more is 413, by length or chunked."""
    cv = world.work("limits for-ann")
    path = f"/v1/conversations/{cv}/reject"
    body = b'{"reason": "' + b"x" * 400 + b'"}'
    fits = body + b" " * (1024 - len(body))
    assert world.call("POST", path, "agent:ann", raw=fits).status == 200
    over = fits + b" "
    a = world.call("POST", path, "agent:ann", raw=over)
    assert a.status == 413 and a.body["error"]["code"] == "body_too_large"
    # a length over the limit is refused before any of the body is sent
    s = socket.create_connection(("127.0.0.1", world.api.port), timeout=10)
    s.sendall((f"PUT /v1/presence HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {world.tokens['agent:ann']}\r\n"
               "Content-Length: 100000000\r\n\r\n").encode())
    head = s.recv(65536)
    assert head.split()[1] == b"413", head
    s.close()
    # chunked: no length to refuse up front
    s = socket.create_connection(("127.0.0.1", world.api.port), timeout=10)
    chunk = b" " * 600
    req = (f"PUT /v1/presence HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {world.tokens['agent:ann']}\r\n"
           "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n").encode()
    s.sendall(req + b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2 + b"0\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        got = s.recv(65536)
        if not got:
            break
        data += got
    s.close()
    head, _, text = data.partition(b"\r\n\r\n")
    assert head.split()[1] == b"413", data
    OmniApi.check("PUT", "/v1/presence", 413, {}, json.loads(text))


def test_every_operation_documents_413_for_a_body_over_the_limit(world):
    """The body's size is checked first, on every path (docs/api.md "Errors"): a GET with a Content-Length over
    limits.body_bytes is 413 too, and so every operation of docs/openapi.yaml must list 413 (api_client checks
    the status against the spec)."""
    for method, template, op in operations():
        path = template.replace("{id}", "ann" if "agents" in template else "1")
        s = socket.create_connection(("127.0.0.1", world.api.port), timeout=10)
        s.sendall((f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {world.tokens['operator:olga']}\r\n"
                   "Content-Type: application/json\r\nContent-Length: 2000\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            got = s.recv(65536)
            if not got:
                break
            data += got
        s.close()
        head, _, text = data.partition(b"\r\n\r\n")
        assert head.split()[1] == b"413", (op, data)
        OmniApi.check(method, path, 413, {}, json.loads(text))


def _raw_exchange(port, data):
    """Sends data on a new connection; returns everything the server sends until it closes (10 s at most)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    got = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            more = s.recv(65536)
        except socket.timeout:
            break
        if not more:
            break
        got += more
    s.close()
    return got


def test_two_different_content_lengths_are_refused_and_the_connection_closed(world):
    """RFC 9112 6.1, 6.3: a request with differing Content-Lengths, or with Content-Length and Transfer-Encoding,
    is invalid or must be closed; libmicrohttpd would read one length, a proxy in front perhaps the other, and
    take the rest for a request of its own (docs/api.md "Errors")."""
    ann = world.tokens["agent:ann"]
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    for method, path in (("PUT", "/v1/presence"), ("GET", "/v1/me")):
        body = b'{"presence":"away"}'
        head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ann}\r\n"
                f"Content-Length: {len(body)}\r\nContent-Length: {len(body) + len(smuggled)}\r\n\r\n").encode()
        got = _raw_exchange(world.api.port, head + body + smuggled)
        assert got.count(b"HTTP/1.1 ") == 1, got  # answered once, closed: the rest was never taken for a request
        status, _, text = got.partition(b"\r\n\r\n")
        assert status.split()[1] == b"400", got
        doc = json.loads(text)
        assert doc["error"]["code"] == "invalid_request" and doc["error"]["field"] == "Content-Length", doc
        OmniApi.check(method, path, 400, {}, doc)
    # a chunked body with a Content-Length as well: libmicrohttpd would read the chunks and keep the connection
    body = b'{"presence":"away"}'
    head = (f"PUT /v1/presence HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ann}\r\n"
            f"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n").encode()
    got = _raw_exchange(world.api.port, head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) + smuggled)
    assert got.count(b"HTTP/1.1 ") == 1 and got.split()[1] == b"400", got
    doc = json.loads(got.partition(b"\r\n\r\n")[2])
    assert doc["error"]["code"] == "invalid_request" and doc["error"]["field"] == "Content-Length", doc
    assert world.call("GET", "/v1/presence", "agent:ann").body["presence"] == "available"  # nothing was set
    # the same length twice is one length (RFC 9112 allows it)
    body = b'{"presence":"away"}'
    got = _raw_exchange(world.api.port, (f"PUT /v1/presence HTTP/1.0\r\nAuthorization: Bearer {ann}\r\n"
                                         f"Content-Length: {len(body)}\r\nContent-Length: {len(body)}\r\n\r\n"
                                         ).encode() + body)
    assert got.split()[1] == b"200", got


def test_events_resume_with_last_event_id(world):
    """An agent's inbox streams live; after a reconnect with Last-Event-ID, nothing in between is missed and
    nothing is sent twice. Entries come from the router's own scripts (offers) and from XADD."""
    ann = world.tokens["agent:ann"]
    s = EventStream(world.api, ann)
    assert s.status == 200 and s.headers["content-type"] == "text/event-stream"
    first = world.work("one for-ann")
    eid, kind, data = s.next_event()
    assert kind == "work.offered" and data["conversation"] == first
    schema_check(SPEC["components"]["schemas"]["InboxEvent"], data, "event")
    s.close()
    # while away: two offers and an entry written by hand
    missed = [world.work("two for-ann"), world.work("three for-ann")]
    world.redis.xadd("omni:inbox:agent:ann", {"type": "work.message", "conversation": missed[0],
                                              "data": json.dumps({"conversation": missed[0], "at": 1})})
    s = EventStream(world.api, ann, last_event_id=eid)
    got = [s.next_event() for _ in range(3)]
    assert [g[2]["conversation"] for g in got] == missed + [missed[0]]
    assert [g[1] for g in got] == ["work.offered", "work.offered", "work.message"]
    ids = [eid] + [g[0] for g in got]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-")))) and len(set(ids)) == 4
    for g in got:
        schema_check(SPEC["components"]["schemas"]["InboxEvent"], g[2], "event")
    # an id that is not one, or whose parts do not fit in 64 bits (Redis would refuse it after the 200): 400
    for bad in ("12", "18446744073709551616-0", "0-18446744073709551616"):
        e = EventStream(world.api, ann, last_event_id=bad)
        assert e.status == 400, bad
        e.close()
    top = EventStream(world.api, ann, last_event_id="18446744073709551615-0")
    assert top.status == 200
    top.close()
    # idle: keepalive comments (sse.keepalive is 1 s here)
    assert any(line.startswith(": keepalive") for line in s.next_block(5))
    s.close()
    # a partner follows its team's inbox; an operator the router's events
    p = EventStream(world.api, world.tokens["partner:acme"])
    conv = world.work("for-acme")
    _, kind, data = p.next_event()
    assert kind == "work.assigned" and data["conversation"] == conv and data["team"] == "acme"
    p.close()
    o = EventStream(world.api, world.tokens["operator:olga"])
    world.call("PUT", "/v1/presence", "agent:bob", body={"presence": "away"})
    _, kind, data = o.next_event()
    while kind != "presence":
        _, kind, data = o.next_event()
    assert data["agent"] == "bob" and data["presence"] == "away"
    o.close()


def test_redis_down_is_503_then_back(tmp_path):
    """No Redis: every request that needs it is 503 with Retry-After (the sentence says so); when Redis is back,
    the next request connects again."""
    server = RedisServer(str(tmp_path / "redis")).start()
    api = OmniApi(str(tmp_path), server.address).start()
    try:
        sub = "operator:olga"
        token = "omni_" + "Q" * 43
        h = hashlib.sha256(token.encode()).hexdigest()
        server.client().hset(f"omni:token:{h}", mapping={"id": h[:12], "subject": sub, "created_at": 1})
        assert api.request("GET", "/v1/me", token=token).status == 200
        server.stop(signal.SIGKILL)
        for path in ("/v1/me", "/healthz", "/v1/work"):
            a = api.request("GET", path, token=token)
            assert a.status == 503 and a.headers["retry-after"] == "3" and a.body["error"]["code"] == "unavailable"
        e = EventStream(api, token)
        assert e.status == 503
        e.close()
        for _ in range(10):
            assert api.request("GET", "/v1/me", token=token).status == 503
        # said once per change of the reason, not once per request
        said = [l for l in api.log().splitlines() if "every request gets 503 until it answers" in l]
        assert 1 <= len(said) <= 2, said
        server.start()
        assert wait_for(lambda: api.request("GET", "/v1/me", token=token).status == 200, 10, "200 again")
        assert "info: redis answers again: serving requests" in api.log()
    finally:
        api.stop()
        server.stop()


def test_check_config_names_file_line_column(tmp_path):
    bad = tmp_path / "api.yaml"
    bad.write_text("api:\n  listen: nowhere\n  max_connections: 0\nsse:\n  keepalive: 2h\nredis:\n  adress: x\n")
    r = subprocess.run([os.path.join(BIN, "omni-api"), "--check-config", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"{bad}:2:11: api.listen: "), lines
    assert lines[1].startswith(f"{bad}:3:20: api.max_connections: "), lines
    assert lines[2].startswith(f"{bad}:5:14: sse.keepalive: "), lines
    assert lines[3].startswith(f"{bad}:7:3: redis.adress: "), lines
    # a password given in the file instead of where it is: named once, at its place
    bad.write_text("redis:\n  address: unix:/nonexistent.sock\n  password: literal-password\n")
    r = subprocess.run([os.path.join(BIN, "omni-api"), "--check-config", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == \
        f"{bad}:3:13: redis.password: {tmp_path / 'literal-password'}: No such file or directory"  # relative: to the file
    good = tmp_path / "ok.yaml"
    good.write_text(open(os.path.join(os.path.dirname(__file__), "..", "..", "conf", "omni-api.yaml")).read())
    # the sample's overview.router_config is the router's file beside it, as installed in /etc/omnirouter
    (tmp_path / "omnirouter.yaml").write_text(
        open(os.path.join(os.path.dirname(__file__), "..", "..", "conf", "omnirouter.yaml")).read())
    r = subprocess.run([os.path.join(BIN, "omni-api"), "--check-config", str(good)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "configuration OK\n", r.stderr


def test_config_reference_is_documented():
    ref = subprocess.run([os.path.join(BIN, "omni-api"), "--config-reference"], capture_output=True,
                         text=True, check=True).stdout
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "api.md")).read()
    assert ref.strip() in doc, "docs/api.md's Configuration section must be `omni-api --config-reference`"


def test_systemd_ready_watchdog_stopping_with_a_stream_open(tmp_path, redis_server):
    """Type=notify: READY=1 once it listens, WATCHDOG=1 while its own port answers, STOPPING=1 at SIGTERM; an
    open event stream does not hold the exit up."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
    env.pop("WATCHDOG_PID", None)
    api = OmniApi(str(tmp_path), redis_server.address).start(env=env)
    got = []

    def heard(word):
        while not any(word in g for g in got):
            got.append(sock.recv(4096).decode())
        return True
    try:
        assert heard("READY=1")
        got.clear()
        assert heard("WATCHDOG=1")
        got.clear()
        assert heard("WATCHDOG=1")
        token = "omni_" + "Q" * 43
        h = hashlib.sha256(token.encode()).hexdigest()
        redis_server.client().hset(f"omni:token:{h}", mapping={"id": h[:12], "subject": "agent:ann"})
        stream = EventStream(api, token)
        assert stream.status == 200
        t0 = time.monotonic()
        api.stop()  # SIGTERM, exit 0 asserted
        assert heard("STOPPING=1") and time.monotonic() - t0 < 5
        stream.close()
    finally:
        sock.close()


def test_reject_reroutes_and_tells_the_agent(world):
    """A rejection through the API: the agent's stream says work.revoked, the router re-routes the work within a
    tick, and the agent no longer sees it (404)."""
    s = EventStream(world.api, world.tokens["agent:ann"])
    conv = world.work("help for-ann")
    assert s.next_event()[1] == "work.offered"
    assert world.call("POST", f"/v1/conversations/{conv}/reject", "agent:ann",
                      body={"reason": "wrong language"}).body["outcome"] == "rejected"
    _, kind, data = s.next_event()
    assert kind == "work.revoked" and data["conversation"] == conv and data["reason"] == "rejected"
    s.close()
    wait_for(lambda: world.redis.hget(f"omni:conversation:{conv}", "status") not in ("rerouting", "offered"), 10,
             "the router's new decision")
    assert world.redis.hget(f"omni:conversation:{conv}", "owner") != "agent:ann"
    assert world.call("GET", f"/v1/conversations/{conv}", "agent:ann").status == 404


def test_max_connections_and_a_second_server(tmp_path, redis_server):
    """api.max_connections are served at once; one more waits (in the listen queue) and is served as soon as one
    ends. A second omni-api on the same Redis serves the same tokens: nothing lives in the process."""
    api = OmniApi(str(tmp_path), redis_server.address, extra={"api.max_connections": 3}).start()
    other = OmniApi(str(tmp_path), redis_server.address, name="api2").start()
    token = "omni_" + "Q" * 43
    h = hashlib.sha256(token.encode()).hexdigest()
    redis_server.client().hset(f"omni:token:{h}", mapping={"id": h[:12], "subject": "operator:olga"})
    try:
        streams = [EventStream(api, token) for _ in range(3)]
        assert [st.status for st in streams] == [200] * 3
        waiting = socket.create_connection(("127.0.0.1", api.port), timeout=10)
        waiting.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        waiting.settimeout(1.5)
        with pytest.raises(socket.timeout):
            waiting.recv(100)
        assert other.request("GET", "/v1/me", token=token).body["subject"] == "operator:olga"
        streams.pop().close()
        waiting.settimeout(10)
        assert waiting.recv(100).split()[1] == b"200"
        waiting.close()
        for st in streams:
            st.close()
    finally:
        api.stop()
        other.stop()


def test_events_resumed_past_what_was_trimmed_say_so(tmp_path, redis_server):
    """Resuming after entries the stream no longer holds (trimmed) starts with a gap event, so the desk refetches
    its work; then what is still there follows in order."""
    api = OmniApi(str(tmp_path), redis_server.address).start()
    r = redis_server.client()
    token = "omni_" + "Q" * 43
    h = hashlib.sha256(token.encode()).hexdigest()
    r.hset(f"omni:token:{h}", mapping={"id": h[:12], "subject": "agent:ann"})
    key = "omni:inbox:agent:ann"
    ids = [r.xadd(key, {"type": "work.message", "conversation": "9",
                        "data": json.dumps({"conversation": "9", "at": i})}) for i in range(5)]
    try:
        s = EventStream(api, token, last_event_id=ids[3])  # nothing trimmed after it: no gap
        assert s.next_event()[0] == ids[4]
        s.close()
        r.xtrim(key, maxlen=2, approximate=False)  # ids[0..2] are gone
        s = EventStream(api, token, last_event_id=ids[0])
        eid, kind, data = s.next_event()
        assert (eid, kind, data) == (None, "gap", {"after": ids[0], "first_kept": ids[3]})
        assert [s.next_event()[0] for _ in range(2)] == ids[3:]
        s.close()
    finally:
        api.stop()


def test_a_stream_outlives_the_connection_timeout(tmp_path, redis_server):
    """api.connection_timeout closes idle connections; a stream waiting for events is not idle (its keepalive
    comes after the timeout here), so it stays open."""
    w = World(tmp_path, redis_server, api_extra={"api.connection_timeout": "1s", "sse.keepalive": "3s"})
    try:
        stream = EventStream(w.api, w.tokens["agent:bob"])
        assert stream.status == 200
        keepalives = 0
        while keepalives < 2:  # 6 s: past the timeout several times over (EOFError when it is cut)
            keepalives += any(line.startswith(": keepalive") for line in stream.next_block(10))
        stream.close()
    finally:
        w.close()


def test_metrics_count_requests_by_route_and_status_and_open_streams(tmp_path, redis_server):
    """api.metrics_listen: GET /metrics parsed by prometheus_client follows the requests made."""
    port = free_port()
    w = World(tmp_path, redis_server, api_extra={"api.metrics_listen": f"127.0.0.1:{port}"})
    try:
        def requests(m, route, status):
            return m.get(("omnirouter_api_requests_total", (("route", route), ("status", str(status)))), 0)
        before = scrape(port)
        for _ in range(2):
            assert w.call("GET", "/v1/me", "agent:ann").status == 200
        assert w.call("GET", "/v1/me").status == 401
        assert w.call("GET", "/v1/nothing", "agent:ann").status == 404
        stream = EventStream(w.api, w.tokens["agent:bob"])
        assert stream.status == 200
        m = scrape(port)
        assert requests(m, "me", 200) == requests(before, "me", 200) + 2
        assert requests(m, "me", 401) == requests(before, "me", 401) + 1
        assert requests(m, "none", 404) == requests(before, "none", 404) + 1
        assert requests(m, "events", 200) == 1
        assert m[("omnirouter_api_event_streams", ())] == 1
        total = sum(v for (name, _), v in m.items() if name == "omnirouter_api_requests_total")
        assert m[("omnirouter_api_request_duration_seconds_count", ())] == total
        assert m[("omnirouter_api_request_duration_seconds_bucket", (("le", "+Inf"),))] == total
        stream.close()  # noticed at the next keepalive (sse.keepalive 1s here)
        wait_for(lambda: scrape(port)[("omnirouter_api_event_streams", ())] == 0, 10, "the stream counted as closed")
        assert http_get(port, "/healthz") == (200, "ok\n")
    finally:
        w.close()


def test_an_offer_past_its_expiry_is_gone_for_its_agent_on_every_read_and_verb(world):
    """docs/delivery.md, Offers: an offer past offer_expires_at is no longer its agent's, even before a router's
    tick has moved it on (this router runs on the wall clock, so none does here): not in GET /v1/work, 404 on
    GET /v1/conversations/ID and on reject, transfer, respond and resolve (as work that moved on), 409
    not_offered on accept. An operator still sees it offered to her until the router re-routes it."""
    conv = world.work("lapsed for-ann")
    expires = world.call("GET", "/v1/work", "agent:ann").body["offered"][0]["offer_expires_at"]
    world.redis.set("omni:clock:offset", expires - int(time.time() * 1000) + 60_000)  # a minute past it
    try:
        assert world.call("GET", "/v1/work", "agent:ann").body == {"offered": [], "owned": []}
        assert world.call("GET", f"/v1/conversations/{conv}", "agent:ann").status == 404
        for verb, body in (("reject", {"reason": "too late"}), ("transfer", {"team": "tier2"}), ("respond", None),
                           ("resolve", None)):
            got = world.call("POST", f"/v1/conversations/{conv}/{verb}", "agent:ann", body=body)
            assert got.status == 404, (verb, got)
        late = world.call("POST", f"/v1/conversations/{conv}/accept", "agent:ann")
        assert late.status == 409 and late.body["error"]["code"] == "not_offered", late
        h = world.redis.hgetall(f"omni:conversation:{conv}")
        assert (h["status"], h["owner"]) == ("offered", "agent:ann") and "reroute" not in h, h  # nothing changed
        assert world.call("GET", f"/v1/conversations/{conv}", "operator:olga").body["status"] == "offered"
    finally:
        world.redis.delete("omni:clock:offset")
    # before its expiry it is hers again on the routers' clock: nothing was taken from her meanwhile
    assert [c["id"] for c in world.call("GET", "/v1/work", "agent:ann").body["offered"]] == [conv]


# --- docs/openapi.yaml, mechanically ------------------------------------------------------------------------
# For every operation of the spec, every response status it documents is driven by a real request (DRIVERS),
# and the answer checked against the spec by api_client (status documented, body valid against the response's
# schema, its required headers present and valid). test_every_documented_status_has_a_driver keeps DRIVERS and
# the spec equal, so a status added to (or removed from) the spec without a request that gets it fails.

def _reply(got):
    """(status, lower-cased headers, JSON body) of a raw HTTP/1.1 answer."""
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    return int(lines[0].split()[1]), headers, json.loads(body[:int(headers.get("content-length", len(body)))])


def _raw_answer(port, data, timeout=10):
    """Sends data on a new connection; returns _reply of the first answer once its body is in."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    got = b""
    deadline = time.monotonic() + timeout
    while True:
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep:
            n = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")), None)
            if n is not None and len(body) >= n:
                break
        assert time.monotonic() < deadline, got
        s.settimeout(max(0.01, deadline - time.monotonic()))
        more = s.recv(65536)
        if not more:
            break
        got += more
    s.close()
    return _reply(got)


def _raw_token(world, subject):
    """A token for subject written straight into Redis (omnictl makes them only for agents its policy knows)."""
    token = "omni_" + base64.urlsafe_b64encode(hashlib.sha256(subject.encode()).digest()).decode().rstrip("=")
    h = hashlib.sha256(token.encode()).hexdigest()
    world.redis.hset(f"omni:token:{h}", mapping={"id": h[:12], "subject": subject, "created_at": 1})
    return token


class Drive:
    """One documented (operation, status): how to get it. Each maker gets (world, dead, method, path, token) and
    returns (status, headers, body); dead is an omni-api whose Redis is gone."""

    @staticmethod
    def call(w, method, path, who, body=None, raw=None, headers=None):
        token = w.tokens.get(who, who) if who else None
        a = w.api.request(method, path, token=token, body=body, raw=raw, headers=headers)
        return a.status, a.headers, a.body

    @staticmethod
    def framing(w, api, method, path, token):
        """Two different Content-Lengths: 400 invalid_request before anything else."""
        body = b"{}"
        return _raw_answer(api.port, (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                                      f"Content-Length: {len(body)}\r\nContent-Length: {len(body) + 1}\r\n\r\n"
                                      ).encode() + body)

    @staticmethod
    def too_large(w, api, method, path, token):
        """A Content-Length over limits.body_bytes (1024 here), the body never sent: 413 at once."""
        return _raw_answer(api.port, (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                                      "Content-Type: application/json\r\nContent-Length: 1025\r\n\r\n").encode())


def _conv_of(w, text="spec for-ann"):
    return w.work(text)


def _resolved(w):
    cv = w.work("spec closed for-ann")
    assert w.call("POST", f"/v1/conversations/{cv}/resolve", "operator:olga").status == 200
    return cv


CORRUPT_CONV = "900000001"  # a conversation key that holds a string: every script reading it fails (500)


def _corrupt_conv(w):
    w.redis.set(f"omni:conversation:{CORRUPT_CONV}", "not a hash")
    return CORRUPT_CONV


def _verb_driver(verb, body, conflict):
    """accept, reject, respond, resolve, transfer: the statuses only a verb has."""
    def ok(w):
        cv = _conv_of(w)
        return Drive.call(w, "POST", f"/v1/conversations/{cv}/{verb}", "agent:ann", body=body)

    def not_found(w):  # bob on ann's offer: as one that does not exist
        cv = _conv_of(w)
        return Drive.call(w, "POST", f"/v1/conversations/{cv}/{verb}", "agent:bob", body=body)

    def internal(w):
        return Drive.call(w, "POST", f"/v1/conversations/{_corrupt_conv(w)}/{verb}", "operator:olga", body=body)

    return {200: ok, 404: not_found, 409: conflict, 500: internal}


def _accept_twice(w):
    cv = _conv_of(w)
    assert Drive.call(w, "POST", f"/v1/conversations/{cv}/accept", "agent:ann")[0] == 200
    return Drive.call(w, "POST", f"/v1/conversations/{cv}/accept", "agent:ann")


def _on_resolved(verb, body):
    return lambda w: Drive.call(w, "POST", f"/v1/conversations/{_resolved(w)}/{verb}", "operator:olga", body=body)


def _ghost_presence(w, method, corrupt_key):
    """An agent whose hash holds a string (no router writes that): its presence cannot be read or set."""
    token = _raw_token(w, "agent:ghost")
    w.redis.set(corrupt_key, "not a hash")
    body = {"presence": "away"} if method == "PUT" else None
    return Drive.call(w, method, "/v1/presence", token, body=body)


def _report_key(w):
    """The SLA report's hash of yesterday (UTC): a string there is a broken store."""
    day = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    return "omni:report:" + day.strftime("%Y-%m-%d")


def _minute_key(w):
    return f"omni:volume:{int(time.time() * 1000) // 60000 - 30}"  # a minute of the window nobody writes again


# operationId -> {status: maker(world) -> (status, headers, body)}; the generic statuses (400 framing or body,
# 401, 405, 413, 503) are made for every operation by _drive.
DRIVERS = {
    "healthz": {200: lambda w: Drive.call(w, "GET", "/healthz", None)},
    "getMe": {200: lambda w: Drive.call(w, "GET", "/v1/me", "agent:ann")},
    "getPresence": {200: lambda w: Drive.call(w, "GET", "/v1/presence", "agent:ann"),
                    404: lambda w: Drive.call(w, "GET", "/v1/presence", "partner:acme"),
                    500: lambda w: _ghost_presence(w, "GET", "omni:agent:ghost")},
    "setPresence": {200: lambda w: Drive.call(w, "PUT", "/v1/presence", "agent:ann", body={"presence": "away"}),
                    404: lambda w: Drive.call(w, "PUT", "/v1/presence", "operator:olga", body={"presence": "away"}),
                    500: lambda w: _ghost_presence(w, "PUT", "omni:agent:ghost")},
    "setAgentPresence": {
        200: lambda w: Drive.call(w, "PUT", "/v1/agents/ann/presence", "operator:olga", body={"presence": "away"}),
        404: lambda w: Drive.call(w, "PUT", "/v1/agents/nobody/presence", "operator:olga",
                                  body={"presence": "away"}),
        500: lambda w: (w.redis.set("omni:agent:ghost", "x"),
                        Drive.call(w, "PUT", "/v1/agents/ghost/presence", "operator:olga",
                                   body={"presence": "away"}))[1]},
    "getWork": {200: lambda w: (_conv_of(w), Drive.call(w, "GET", "/v1/work", "agent:ann"))[1],
                500: lambda w: (w.redis.set("omni:agent:ghost:conversations", "x"),
                                Drive.call(w, "GET", "/v1/work", _raw_token(w, "agent:ghost")))[1]},
    "getConversation": {
        200: lambda w: Drive.call(w, "GET", f"/v1/conversations/{_conv_of(w)}", "agent:ann"),
        404: lambda w: Drive.call(w, "GET", f"/v1/conversations/{_conv_of(w)}", "partner:acme"),
        500: lambda w: Drive.call(w, "GET", f"/v1/conversations/{_corrupt_conv(w)}", "operator:olga")},
    "accept": _verb_driver("accept", None, _accept_twice),
    "reject": _verb_driver("reject", {"reason": "not mine"}, _on_resolved("reject", {"reason": "late"})),
    "respond": _verb_driver("respond", None, _on_resolved("respond", None)),
    "resolve": _verb_driver("resolve", None, _on_resolved("resolve", None)),
    "transfer": _verb_driver("transfer", {"team": "tier2"}, _on_resolved("transfer", {"team": "tier2"})),
    "survey": {200: lambda w: Drive.call(w, "POST", f"/v1/conversations/{_resolved(w)}/survey", "operator:olga",
                                         body={"csat": 4, "nps": 10}),
               404: lambda w: Drive.call(w, "POST", f"/v1/conversations/{_resolved(w)}/survey", "agent:ann",
                                         body={"csat": 4}),
               409: lambda w: Drive.call(w, "POST", f"/v1/conversations/{_conv_of(w)}/survey", "operator:olga",
                                         body={"ces": 7}),
               500: lambda w: Drive.call(w, "POST", f"/v1/conversations/{_corrupt_conv(w)}/survey", "operator:olga",
                                         body={"csat": 4})},
    "getOverview": {200: lambda w: Drive.call(w, "GET", "/v1/overview", "operator:olga"),
                    404: lambda w: Drive.call(w, "GET", "/v1/overview", "partner:acme"),
                    500: lambda w: (w.redis.set(_minute_key(w), "x"),
                                    Drive.call(w, "GET", "/v1/overview", "operator:olga"))[1]},
    "getReport": {200: lambda w: Drive.call(w, "GET", "/v1/report", "operator:olga"),
                  404: lambda w: Drive.call(w, "GET", "/v1/report", "agent:ann"),
                  500: lambda w: (w.redis.set(_report_key(w), "x"),
                                  Drive.call(w, "GET", "/v1/report", "operator:olga"))[1]},
    "events": {},  # 200 is a stream: _drive reads it
}
GENERIC = (400, 401, 405, 413, 503)


def _op_of(op_id):
    return next((m, p, SPEC["paths"][p][m.lower()]) for m, p, o in operations() if o == op_id)


def _instance(template):
    return template.replace("{id}", "ann" if "agents" in template else "1")


def _drive(w, dead, op_id, status):
    method, template, op = _op_of(op_id)
    path = _instance(template)
    olga = w.tokens["operator:olga"]
    if status in DRIVERS[op_id]:
        return DRIVERS[op_id][status](w)
    if status == 200 and op_id == "events":
        s = EventStream(w.api, w.tokens["agent:ann"])
        assert s.headers["content-type"] == "text/event-stream", s.headers
        assert "text/event-stream" in op["responses"]["200"]["content"], op
        s.close()
        return 200, s.headers, None
    if status == 400:
        if "requestBody" in op:  # a body the request does not take
            return Drive.call(w, method, path, "operator:olga", raw=b'{"nothing": 1}')
        if op_id == "events":
            return Drive.call(w, method, path, "agent:ann", headers={"Last-Event-ID": "1-2-3"})
        return Drive.framing(w, w.api, method, path, olga)
    if status == 401:
        return Drive.call(w, method, path, None, body={} if "requestBody" in op else None)
    if status == 405:  # a method the path does not take, without a token: the path and method come first
        item = SPEC["paths"][template]
        other = next(m for m in ("DELETE", "PATCH", "POST", "PUT", "GET") if m.lower() not in item)
        return Drive.call(w, other, path, None)
    if status == 413:
        return Drive.too_large(w, w.api, method, path, olga)
    if status == 503:
        return Drive.call(dead, method, path, "operator:olga", body={} if "requestBody" in op else None)
    raise AssertionError(f"{op_id}: no way to get {status}")


def test_every_documented_status_has_a_driver():
    """DRIVERS and GENERIC make a request for every status openapi.yaml documents, and for nothing else."""
    for _, _, op_id in operations():
        documented = {int(s) for s in SPEC["paths"][_op_of(op_id)[1]][_op_of(op_id)[0].lower()]["responses"]}
        made = set(DRIVERS[op_id]) | set(GENERIC) | ({200} if op_id == "events" else set())
        if op_id == "healthz":
            made -= {401}
        assert documented == made, f"{op_id}: documented {sorted(documented)}, driven {sorted(made)}"


class _Dead:
    """An omni-api whose Redis is gone, with the world's tokens (every request needing Redis is 503)."""

    def __init__(self, tmp_path, tokens):
        self.api = OmniApi(str(tmp_path), f"unix:{tmp_path}/no-redis.sock", name="dead").start()
        self.tokens = tokens


@pytest.mark.parametrize("op_id", sorted(DRIVERS))
def test_every_documented_status_answers_as_the_spec_says(tmp_path, redis_server, op_id):
    """docs/openapi.yaml, mechanically: each status the operation documents, got by a real request, with a body
    that is valid against the response's schema (its error code one of that status's) and the headers the
    response declares (WWW-Authenticate, Allow, Retry-After)."""
    w = World(tmp_path, redis_server)
    dead = _Dead(tmp_path, w.tokens)
    try:
        method, template, op = _op_of(op_id)
        for status in sorted(int(s) for s in op["responses"]):
            got, headers, body = _drive(w, dead, op_id, status)
            assert got == status, f"{op_id}: wanted {status}, got {got}: {body}"
            if body is not None:  # api.request checked it already; the raw ones are checked here
                OmniApi.check(method if got != 405 else "DELETE", _instance(template), got, headers, body)
            for key in w.redis.keys("omni:volume:*") + w.redis.keys("omni:report:*") + w.redis.keys("omni:*ghost*") + \
                    [f"omni:conversation:{CORRUPT_CONV}"]:
                if w.redis.type(key) == "string":
                    w.redis.delete(key)
    finally:
        dead.api.stop()
        w.close()


# --- tokens on every operation: partner against partner, operator -----------------------------------------
CONV_VERBS = {"getConversation": ("GET", "", None), "accept": ("POST", "/accept", None),
              "reject": ("POST", "/reject", {"reason": "not ours"}), "respond": ("POST", "/respond", None),
              "transfer": ("POST", "/transfer", {"team": "tier2"}), "resolve": ("POST", "/resolve", None)}


@pytest.mark.parametrize("op_id", sorted(CONV_VERBS))
def test_one_partner_never_reaches_another_partners_work(world, op_id):
    """DESIGN.md: partners see only their own work. acme's conversation (held by the team) is 404 to zeta, to
    the agents and to anyone without a valid token, on every verb, exactly as one that does not exist; the
    nonexistent one answers the same body. acme itself may act (accept: 409 not_offered, it holds no offer);
    an operator sees it, unmasked."""
    method, suffix, body = CONV_VERBS[op_id]
    cv = world.work("parcel for-acme")
    path = f"/v1/conversations/{cv}{suffix}"
    nowhere = world.call(method, f"/v1/conversations/999999{suffix}", "partner:zeta", body=body)
    assert nowhere.status == 404
    for who in ("partner:zeta", "agent:ann", "agent:bob"):
        a = world.call(method, path, who, body=body)
        assert (a.status, a.body) == (404, nowhere.body), (who, a)
    assert world.redis.hget(f"omni:conversation:{cv}", "owner") == "team:acme"  # nothing changed
    for who in (None, BAD_TOKEN):
        assert world.call(method, path, who, body=body).status == 401
    a = world.call(method, path, "partner:acme", body=body)
    if op_id == "accept":
        assert a.status == 409 and a.body["error"]["code"] == "not_offered", a
    else:
        assert a.status == 200, a
    # zeta's stream and work never show it
    assert cv not in json.dumps(world.call("GET", "/v1/work", "partner:zeta").body)
    op = world.call("GET", f"/v1/conversations/{cv}", "operator:olga")
    assert op.status == 200 and op.body["messages"][0]["from"]["id"].startswith("cust"), op


@pytest.mark.parametrize("op_id", sorted(ROWS))
def test_an_operator_token_on_every_operation(world, op_id):
    """docs/api.md "Tokens": an operator sees and acts on every conversation and any agent's presence; it has
    no presence of its own (404) and holds no work (both lists empty). Its accept takes the offer for the agent
    offered it (accept.lua)."""
    method, template, op = _op_of(op_id)
    cv = world.work("olga for-ann")
    path = template.replace("{id}", "ann" if "agents" in template else cv)
    _, _, _, body, _ = ROWS[op_id]
    # accept: for the agent offered it; a survey is of resolved work (this is open)
    want = {"getPresence": 404, "setPresence": 404, "survey": 409}.get(op_id, 200)
    if op_id == "events":
        s = EventStream(world.api, world.tokens["operator:olga"])
        got = s.status
        s.close()
    else:
        a = world.call(method, path, "operator:olga", body=body)
        got = a.status
        if op_id == "getWork":
            assert a.body == {"offered": [], "owned": []}, a
    assert got == want, (op_id, got)


def test_documented_bounds_at_and_just_past_them(world):
    """Each bound docs/openapi.yaml gives, at the bound (accepted) and one past it (refused as documented):
    reason and note 1..500 bytes of UTF-8 (bytes, not characters), team 1..64 of a name's characters,
    presence one of three, an agent id 1..64 in a path, a conversation id 1..20 digits, Last-Event-ID parts
    1..20 digits within 64 bits."""
    def refused(a, field, code="invalid_field"):
        assert a.status == 400 and a.body["error"]["code"] == code and a.body["error"]["field"] == field, a

    for text, ok in (("x" * 500, True), ("é" * 250, True), ("x" * 501, False), ("é" * 250 + "x", False),
                     ("a\u0000b", False), ("", False)):
        cv = world.work("bounds for-ann")
        raw = json.dumps({"reason": text}, ensure_ascii=False).encode()  # UTF-8 as it is (limits.body_bytes 1024)
        a = world.call("POST", f"/v1/conversations/{cv}/reject", "agent:ann", raw=raw)
        if ok:
            assert a.status == 200 and a.body == {"conversation": cv, "outcome": "rejected"}, a
        else:
            refused(a, "reason")
        a = world.call("POST", f"/v1/conversations/{cv}/transfer", "operator:olga",
                       raw=json.dumps({"team": "tier2", "note": text}, ensure_ascii=False).encode())
        if ok:
            assert a.status == 200 and a.body["outcome"] == "transferred", a
        else:
            refused(a, "note")
    cv = world.work("bounds team for-ann")
    for team in ("t" * 64, "t" * 65, "Tier2", "tier 2", "", 7, None):
        a = world.call("POST", f"/v1/conversations/{cv}/transfer", "agent:ann", body={"team": team})
        refused(a, "team")  # 64 is a name, but no router's: still 400 naming team
    for value in ("Away", "busy", "", ["away"]):
        refused(world.call("PUT", "/v1/presence", "agent:ann", body={"presence": value}), "presence")
    for agent in ("a" * 64, "a" * 65, "Ann", "ann%2Fx"):
        a = world.call("PUT", f"/v1/agents/{agent}/presence", "operator:olga", body={"presence": "away"})
        assert a.status == 404 and a.body["error"]["code"] == "not_found", (agent, a)
    for cid in ("9" * 20, "9" * 21, "1" + "0" * 20, "0", "-1", "1e3"):
        a = world.call("GET", f"/v1/conversations/{cid}", "operator:olga")
        assert a.status == 404 and a.body["error"]["code"] == "not_found", (cid, a)
    ann = world.tokens["agent:ann"]
    last_event_id = next(p["schema"] for p in SPEC["paths"]["/v1/events"]["get"]["parameters"]
                         if p["name"] == "Last-Event-ID")
    for eid, status in (("18446744073709551615-18446744073709551615", 200), ("0-0", 200),
                        ("18446744073709551614-9", 200), ("09999999999999999999-0", 200),
                        ("99999999999999999999-0", 400), ("0-18446744073709551616", 400),
                        ("00000000000000000001-0", 200), ("000000000000000000001-0", 400),
                        ("18446744073709551616-0", 400), ("1-", 400), ("-1", 400), ("1-0-0", 400), ("1_0", 400)):
        s = EventStream(world.api, ann, last_event_id=eid)
        got = s.status
        s.close()
        if got == 400:
            a = world.call("GET", "/v1/events", "agent:ann", headers={"Last-Event-ID": eid})
            refused(a, "Last-Event-ID")
        assert got == status, (eid, got)
        assert bool(re.fullmatch(last_event_id["pattern"], eid)) == (status == 200), (eid, "openapi.yaml's pattern")


def test_a_conversation_answers_its_last_100_messages(world):
    """docs/openapi.yaml, Conversation.messages: maxItems 100, the last ones, oldest first, in the conversation
    and in the work list alike."""
    cv = world.work("first of many for-ann")
    frm = json.loads(world.redis.hget(
        f"omni:msg:{world.redis.lrange(f'omni:conversation:{cv}:messages', 0, 0)[0]}", "json"))["from"]["id"]
    ids = []
    for i in range(101):
        mid = f"email:many:{i}"
        world.peer.submit(message(mid, frm=frm, text=f"{os.urandom(12).hex()} {i} {os.urandom(12).hex()}"))
        assert world.peer.recv() == ["OMNI/1", "ACK", mid]
        ids.append(mid)
    stored = world.redis.lrange(f"omni:conversation:{cv}:messages", 0, -1)
    assert len(stored) == 102 and stored[1:] == ids, len(stored)
    one = world.call("GET", f"/v1/conversations/{cv}", "agent:ann").body
    assert [m["id"] for m in one["messages"]] == stored[-100:]
    work = world.call("GET", "/v1/work", "agent:ann").body
    assert [m["id"] for m in (work["offered"] + work["owned"])[0]["messages"]] == stored[-100:]


MESSAGE_VARIANTS = [  # (channel, from, extra fields) as connectors write them (docs/connectors.md)
    ("email", {"id": "jane.doe@example.org", "name": "Jane Doe"},
     {"subject": "Re: Order 1234 — where is it?", "thread": "<a@b>", "to": "support@shop.example", "lang": "en",
      "attachments": [{"name": "receipt.pdf", "type": "application/pdf", "size": 48213,
                       "url": "https://files.example/1"}]}),
    ("sms", {"id": "+14155550123"}, {"attachments": [{"name": "MM1.jpg", "type": "image/jpeg", "size": 0,
                                                    "url": "https://api.twilio.example/m"}]}),
    ("twitter", {"id": "1432154312", "name": "Zoë 🚀"}, {"thread": "1790000000000000000"}),
    ("facebook", {"id": "6543210987654321"}, {"meta": {"page": "1234"}}),
    ("x-chat", {"id": "visitor-77", "name": "Visitor"}, {"subject": ""}),
]


@pytest.mark.parametrize("variant", range(len(MESSAGE_VARIANTS)))
def test_messages_of_every_channel_are_shown_field_by_field(world, variant):
    """Messages as the connectors write them, each channel: the conversation shows id, channel, from, text,
    subject, attachments and meta as stored and `at` its storing time (openapi.yaml, Message: nothing else, so
    thread, to, lang and received_at are not shown); a masking partner sees the sender masked, without the
    name and without meta, and everything else the same; valid against the schema for each."""
    channel, frm, extra = MESSAGE_VARIANTS[variant]
    mid = f"{channel}:variant:{variant}"
    text = "Bonjour, où est ma commande? ✓ for-acme\nline two\t\"quoted\" \\ end"
    world.peer.submit(message(mid, channel=channel, frm=frm["id"], text=text, **extra,
                              **({"from": frm} if "name" in frm else {})))
    assert world.peer.recv() == ["OMNI/1", "ACK", mid]
    cv = world.redis.hget(f"omni:msg:{mid}", "conversation")
    wait_for(lambda: world.redis.hget(f"omni:conversation:{cv}", "owner") == "team:acme", 10, "routed to acme")
    at = int(world.redis.hget(f"omni:msg:{mid}", "stored_at"))
    want = {"id": mid, "channel": channel, "from": frm, "text": text, "at": at,
            **{k: extra[k] for k in ("subject", "attachments") if k in extra}}
    op = world.call("GET", f"/v1/conversations/{cv}", "operator:olga").body
    assert op["messages"] == [{**want, **({"meta": extra["meta"]} if "meta" in extra else {})}], op
    assert op["channel"] == channel and op["owner"] == "team:acme" and op["team"] == "acme", op
    seen = world.call("GET", f"/v1/conversations/{cv}", "partner:acme").body["messages"][0]
    masked = seen["from"]["id"]
    assert seen == {**want, "from": {"id": masked}}, seen  # no meta for a masking partner
    assert frm["id"] not in json.dumps(seen) and masked != frm["id"], seen
    # docs/api.md "Paths": j***@example.com, +1415*****01, anon-<16 hex>
    assert re.fullmatch({"email": r"j\*\*\*@example\.org", "sms": r"\+1415\*{5}23"}.get(channel, "anon-[0-9a-f]{16}"),
                        masked), masked
    assert [c["messages"] for c in world.call("GET", "/v1/work", "partner:acme").body["owned"]] == [[seen]]


def test_meta_is_passed_through_to_assignees_as_written(world):
    """DESIGN.md, the normalized message: `meta` (channel-specific facts) is passed through to assignees. An
    operator and an in-house agent holding the work get it as the connector wrote it, in the conversation and
    in the inbox's work.message: an empty list stays a list, an integer past 2^53 (within the 64 bits the router takes) keeps its digits, nested
    objects and odd spacing survive. A masking partner gets no meta at all: a channel's facts name the customer
    too (here the caller's number as dialled)."""
    mid = "phone:variant:meta"
    meta = {"outcome": "missed", "callback": True, "duration": 12, "caller_raw": "(415) 555-0123"}
    world.peer.submit(message(mid, channel="phone", frm="+14155550123", text="Missed call for-acme", meta=meta))
    assert world.peer.recv() == ["OMNI/1", "ACK", mid]
    cv = world.redis.hget(f"omni:msg:{mid}", "conversation")
    wait_for(lambda: world.redis.hget(f"omni:conversation:{cv}", "owner") == "team:acme", 10, "routed to acme")
    op = world.call("GET", f"/v1/conversations/{cv}", "operator:olga").body["messages"][0]
    assert op.get("meta") == meta, op
    seen = world.call("GET", f"/v1/conversations/{cv}", "partner:acme").body["messages"][0]
    assert "meta" not in seen, seen
    assert "555-0123" not in json.dumps(seen) and "5550123" not in json.dumps(seen), seen

    # ann's work: her inbox and her view carry meta byte for byte as written (raw JSON, spacing and all)
    stream = EventStream(world.api, world.tokens["agent:ann"])
    cv = world.work("order for-ann")
    first = world.redis.hget(f"omni:msg:{world.redis.lrange(f'omni:conversation:{cv}:messages', 0, 0)[0]}", "json")
    raw_meta = '{ "labels" : [], "big": 1234567890123456789, "nested": {"a": [1, {"b": "x\\\\"}]}, "s": "}]" }'
    frame = json.dumps({"id": "email:api:meta", "channel": "email", "from": json.loads(first)["from"],
                        "received_at": "2026-12-03T10:00:00Z", "text": "meta for-ann"})[:-1] + ', "meta": ' + raw_meta + "}"
    world.peer.send("OMNI/1", "MSG", frame)
    assert world.peer.recv() == ["OMNI/1", "ACK", "email:api:meta"]
    kind = None
    while kind != "work.message":
        _, kind, data = stream.next_event()
    stream.close()
    expect = json.loads(raw_meta, parse_int=str)
    assert json.loads(json.dumps(data["message"]["meta"]), parse_int=str) == expect, data
    view = world.call("GET", f"/v1/conversations/{cv}", "agent:ann").body["messages"][-1]
    assert view["id"] == "email:api:meta" and view["meta"]["labels"] == [] and view["meta"]["big"] == 1234567890123456789
    assert view["meta"]["nested"] == {"a": [1, {"b": "x\\"}]} and view["meta"]["s"] == "}]", view
    # and what the API sends holds the same text, not a float: read raw
    raw = world.call("GET", f"/v1/conversations/{cv}", "agent:ann").raw
    assert b"1234567890123456789" in raw and b'"labels":[]' in raw.replace(b" ", b""), raw


def test_checks_come_in_the_documented_order_on_every_operation(world):
    """openapi.yaml's description: framing (400 invalid_request), the body's size (413), path and method (404,
    405), the token (401), the body and Last-Event-ID (400), then the conversation (404, 409; 400 for a
    transfer's unknown team). Each pair of neighbours, on every operation: the earlier check answers."""
    bob = world.tokens["agent:bob"]
    cv = world.work("order for-ann")  # ann's: bob may not see it
    for method, template, op_id in operations():
        path = template.replace("{id}", "ann" if "agents" in template else cv)
        wrong = "DELETE"
        # framing before size: two lengths, both over the limit
        status, _, doc = _raw_answer(world.api.port, (
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\nContent-Length: 2001\r\n\r\n").encode())
        assert (status, doc["error"]["code"]) == (400, "invalid_request"), (op_id, doc)
        # size before method and token
        status, headers, doc = _raw_answer(world.api.port, (
            f"{wrong} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n").encode())
        assert status == 413, (op_id, doc)
        # method before token
        a = world.call(wrong, path, None)
        assert a.status == 405 and method in a.headers["allow"].split(", "), (op_id, a)
        # token before body
        if "requestBody" in _op_of(op_id)[2]:
            a = world.call(method, path, BAD_TOKEN, raw=b"{not json")
            assert a.status == 401, (op_id, a)
            # body before the conversation (bob may not see it): 400, not 404
            a = world.call(method, path, bob, raw=b'{"nothing": 1}')
            assert a.status == 400 and a.body["error"]["code"] == "unknown_field", (op_id, a)
        elif op_id == "events":
            a = world.call(method, path, BAD_TOKEN, headers={"Last-Event-ID": "x"})
            assert a.status == 401, (op_id, a)
    # the conversation before the team: an unknown team on a conversation the caller may not see is 404
    a = world.call("POST", f"/v1/conversations/{cv}/transfer", "agent:bob", body={"team": "nosuch"})
    assert a.status == 404, a
    a = world.call("POST", "/v1/conversations/999999/transfer", "operator:olga", body={"team": "nosuch"})
    assert a.status == 404, a


def test_whatever_is_sent_every_answer_is_documented(world):
    """A sweep: every operation's path (and a few near misses) with each method, each kind of caller and each
    kind of body; api_client checks each answer (status documented for the operation or the path, body
    valid, declared headers there). Nothing answered may be missing from docs/openapi.yaml."""
    cvs = {"ann's offer": world.work("sweep for-ann"), "acme's": world.work("sweep for-acme"),
           "resolved": _resolved(world), "none": "424242"}
    bodies = [None, b"", b"{}", b"[]", b"null", b'{"presence": "away"}', b'{"reason": "r"}', b'{"team": "tier2"}',
              b'{"team": "nosuch"}', b'{"reason": "r", "x": 1}', b"\xff", b'{"presence": 1}']
    callers = [None, BAD_TOKEN, "agent:ann", "agent:bob", "partner:acme", "partner:zeta", "operator:olga"]
    seen = set()
    for _, template, op_id in operations():
        if op_id == "events":
            continue  # a 200 is a stream: test_every_documented_status_answers_as_the_spec_says reads it
        ids = cvs.values() if "{id}" in template and "agents" not in template else \
            (["ann", "bob", "nobody"] if "agents" in template else [None])
        for i in ids:
            path = template.replace("{id}", i) if i else template
            for method in ("GET", "PUT", "POST", "DELETE"):
                for who in callers:
                    for raw in bodies:
                        if raw is not None and method == "GET":
                            continue
                        a = world.call(method, path, who, raw=raw)
                        seen.add((op_id, a.status))
    # no path takes query parameters (docs/api.md "Paths"): however malformed or large, a query is ignored
    for query in ("?", "?%zz&a=%00&=&&", "?limit=99999999999999999999&cursor=-1", "?offset=" + "9" * 2000):
        assert world.call("GET", "/v1/work" + query, "agent:bob").body == {"offered": [], "owned": []}, query
        one = "/v1/conversations/" + cvs["acme's"]
        a = world.call("GET", one + query, "partner:acme")
        assert a.status in (200, 404) and a.status == world.call("GET", one, "partner:acme").status, (query, a)
    for path in ("/v1/me/", "/v1/conversations/1/accept/", "/v1/conversations//accept", "/v1/agents//presence",
                 "/v1", "/", "/v2/me", "/healthz/"):
        assert world.call("GET", path, "operator:olga").status == 404, path
    assert {s for _, s in seen} >= {200, 400, 401, 404, 405, 409}, seen


PARTNER_AGENT_POLICY = POLICY.replace("agents:\n", "agents:\n  - {id: pat, teams: [acme], capacity: {email: 5}}\n")


def test_a_partner_sees_what_its_own_agents_hold_and_nobody_else_does(tmp_path, redis_server):
    """docs/api.md "Tokens": a partner sees what its team holds, the team itself or its agents, masked as its
    contract says (its agents too); another partner, another team's agent: 404. The offer goes to the agent's
    inbox, not the team's."""
    w = ApiWorld(tmp_path, redis_server, PARTNER_AGENT_POLICY,
                 ("partner:acme", "partner:zeta", "agent:pat", "agent:ann", "operator:olga"))
    try:
        team_stream = EventStream(w.api, w.tokens["partner:acme"])
        _, cv = w.submit("a parcel for-acme")
        wait_for(lambda: w.redis.hget(f"omni:conversation:{cv}", "owner") == "agent:pat", 10, "offered to pat")
        for who in ("partner:acme", "agent:pat"):
            one = w.call("GET", f"/v1/conversations/{cv}", who)
            assert one.status == 200 and one.body["owner"] == "agent:pat" and one.body["team"] == "acme", one
            assert one.body["messages"][0]["from"]["id"].endswith("***@example.com"), (who, one)
            work = w.call("GET", "/v1/work", who).body
            assert [c["id"] for c in work["offered"]] == [cv] and work["owned"] == [], (who, work)
        for who in ("partner:zeta", "agent:ann"):
            assert w.call("GET", f"/v1/conversations/{cv}", who).status == 404, who
            assert cv not in json.dumps(w.call("GET", "/v1/work", who).body), who
            assert w.call("POST", f"/v1/conversations/{cv}/accept", who).status == 404, who
        assert w.call("POST", f"/v1/conversations/{cv}/accept", "agent:pat").body["outcome"] == "accepted"
        assert [c["id"] for c in w.call("GET", "/v1/work", "partner:acme").body["owned"]] == [cv]
        # the team's stream carries only work the team itself holds: a keepalive, no event about pat's offer
        lines = []
        while not any(line.startswith(": keepalive") for line in lines):
            lines += team_stream.next_block(5)
        assert not [line for line in lines if line.startswith("data:")], lines
        team_stream.close()
    finally:
        w.close()


def test_going_offline_through_the_api_reroutes_open_offers_at_once(world):
    """openapi.yaml, setPresence: going offline re-routes the agent's open offers at once (docs/delivery.md:
    `work.revoked` with reason `offer revoked`), not after ownership.offline_grace; the answer says what it
    was; the next offer goes to the other agent."""
    assert world.call("PUT", "/v1/presence", "agent:bob", body={"presence": "away"}).body == \
        {"agent": "bob", "presence": "away", "was": "available"}
    ann = EventStream(world.api, world.tokens["agent:ann"])
    cv = world.work("who takes this")
    assert world.redis.hget(f"omni:conversation:{cv}", "owner") == "agent:ann"
    assert ann.next_event()[1] == "work.offered"
    assert world.call("PUT", "/v1/presence", "agent:bob", body={"presence": "available"}).status == 200
    a = world.call("PUT", "/v1/agents/ann/presence", "operator:olga", body={"presence": "offline"})
    assert a.body == {"agent": "ann", "presence": "offline", "was": "available"}, a
    _, kind, data = ann.next_event()
    assert kind == "work.revoked" and data["conversation"] == cv and data["reason"] == "offer revoked", data
    schema_check(SPEC["components"]["schemas"]["InboxEvent"], data, "event")
    ann.close()
    wait_for(lambda: world.redis.hget(f"omni:conversation:{cv}", "owner") == "agent:bob", 10, "offered to bob")
    assert world.call("GET", "/v1/work", "agent:ann").body == {"offered": [], "owned": []}
    assert world.call("GET", "/v1/presence", "agent:ann").body == {"agent": "ann", "presence": "offline"}
    # setting what it is already: 200, was says so
    assert world.call("PUT", "/v1/presence", "agent:ann", body={"presence": "offline"}).body["was"] == "offline"


def test_two_authorization_headers_are_a_malformed_token(world):
    """docs/api.md "Tokens": an Authorization that is not one `Bearer omni_...` is a malformed token. Two of
    them (RFC 9110: not a list) are refused, whichever comes first: libmicrohttpd would read the first, a proxy
    in front perhaps the other, and the request would act as someone else than the proxy checked."""
    ann, acme = world.tokens["agent:ann"], world.tokens["partner:acme"]
    for first, second in ((ann, acme), (ann, ann), (ann, "nothing")):
        status, headers, doc = _raw_answer(world.api.port, (
            f"GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {first}\r\n"
            f"Authorization: Bearer {second}\r\n\r\n").encode())
        assert status == 401 and doc["error"]["code"] == "invalid_token", (second, status, doc)
        assert doc["error"]["field"] == "Authorization" and "more than once" in doc["error"]["message"], doc
        OmniApi.check("GET", "/v1/me", status, headers, doc)
    # the healthz needs none: an Authorization there (one or two) changes nothing
    status, _, doc = _raw_answer(world.api.port, (
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ann}\r\nAuthorization: x\r\n\r\n").encode())
    assert status == 200, doc


def test_concurrent_verbs_on_one_conversation_take_effect_once(world):
    """Each verb is one atomic script: many clients at once (one thread each on the server) accepting the same
    offer get exactly one 200 and 409 not_offered for the rest; resolving it at once, one 200 and 409 closed
    (operators) or 404 (its agent, for whom it moved on)."""
    import concurrent.futures
    cv = world.work("race for-ann")
    ann, olga = world.tokens["agent:ann"], world.tokens["operator:olga"]
    pool = concurrent.futures.ThreadPoolExecutor(16)
    try:
        got = list(pool.map(lambda i: world.api.request("POST", f"/v1/conversations/{cv}/accept",
                                                        token=ann if i % 2 else olga), range(16)))
        assert sorted(a.status for a in got) == [200] + [409] * 15, got
        assert {a.body["error"]["code"] for a in got if a.status == 409} == {"not_offered"}
        got = list(pool.map(lambda i: world.api.request("POST", f"/v1/conversations/{cv}/resolve",
                                                        token=ann if i % 2 else olga), range(16)))
        assert [a.status for a in got].count(200) == 1, got
        assert {(a.status, a.body.get("error", {}).get("code")) for a in got if a.status != 200} <= \
            {(409, "closed"), (404, "not_found")}, got
        assert world.redis.hget("omni:stats", "resolved") == "1"
        assert world.redis.hget("omni:agent:ann", "load") == "0"
    finally:
        pool.shutdown()


def _body_cases(schema):
    """From a request body's schema (the subset openapi.yaml uses: object, required, additionalProperties false,
    maxProperties, properties of type string with minLength/maxLength/pattern/enum): (body, None) for bodies
    it allows, (body, (code, field)) for each it refuses and the error that names why."""
    from api_client import _deref
    schema = _deref(schema)
    props = {k: _deref(v) for k, v in schema.get("properties", {}).items()}
    required = schema.get("required", [])

    def good(p):
        if "enum" in p:
            return p["enum"][0]
        if p.get("type") == "integer":
            return p["minimum"]
        return "a" * p.get("minLength", 1)
    base = {k: good(p) for k, p in props.items() if k in required}
    # minProperties: the first optional fields make it up; fewer is 400 missing_field naming the body
    optional = [k for k in props if k not in required]
    for k in optional[:max(0, schema.get("minProperties", 0) - len(base))]:
        base[k] = good(props[k])
    cases = [(base, None)]
    if schema.get("minProperties", 0) > len(required):
        cases.append(({k: v for k, v in base.items() if k in required}, ("missing_field", "body")))
    if schema.get("maxProperties") == 0 or schema.get("additionalProperties") is False:
        cases.append(({**base, "surplus": "x"}, ("unknown_field", "body")))
    for k in required:
        cases.append(({n: v for n, v in base.items() if n != k}, ("missing_field", k)))
    for k, p in props.items():
        if p.get("type") == "integer":  # its bounds, and every other JSON type (a real too) refused
            lo, hi = p["minimum"], p["maximum"]
            for wrong in ("7", True, None, 1.5, float(lo), ["a"], {"a": "b"}, lo - 1, hi + 1, 2 ** 40, -2 ** 40):
                cases.append(({**base, k: wrong}, ("invalid_field", k)))
            for v in (lo, hi):
                cases.append(({**base, k: v}, None))
            continue
        assert p.get("type") == "string" or "enum" in p, (k, p)  # what this generator knows
        for wrong in (7, True, None, ["a"], {"a": "b"}):
            cases.append(({**base, k: wrong}, ("invalid_field", k)))
        for v in p.get("enum", []):
            cases.append(({**base, k: v}, None))
        if "enum" in p:
            cases.append(({**base, k: p["enum"][0].upper()}, ("invalid_field", k)))
            continue
        lo, hi = p.get("minLength", 0), p.get("maxLength")
        if "pattern" in p:  # the lengths must say what the pattern says
            assert re.fullmatch(p["pattern"].strip("^$"), "a" * lo) and (
                lo == 0 or not re.fullmatch(p["pattern"].strip("^$"), "a" * (lo - 1))), (k, p)
            assert hi and re.fullmatch(p["pattern"].strip("^$"), "a" * hi) and \
                not re.fullmatch(p["pattern"].strip("^$"), "a" * (hi + 1)), (k, p)
        cases.append(({**base, k: "a" * lo}, None))
        if lo > 0:
            cases.append(({**base, k: "a" * (lo - 1)}, ("invalid_field", k)))
        if hi:
            cases.append(({**base, k: "a" * hi}, None))
            cases.append(({**base, k: "a" * (hi + 1)}, ("invalid_field", k)))
        if "pattern" in p:
            cases.append(({**base, k: "A" * max(lo, 1)}, ("invalid_field", k)))
    return cases


def test_request_bodies_are_taken_and_refused_as_their_schemas_say(world):
    """openapi.yaml's request bodies, mechanically: for each operation that takes one, bodies its schema allows
    pass the body check (the answer is the conversation's or the presence's, never 400), and each one it does
    not allow (a missing required field, a surplus one, a wrong type, a length or enum or pattern past its
    bound) is 400 with the documented code naming the field."""
    from api_client import _deref
    checked = 0
    for method, template, op_id in operations():
        op = SPEC["paths"][template][method.lower()]
        if "requestBody" not in op:
            continue
        schema = _deref(op["requestBody"])["content"]["application/json"]["schema"]
        # a conversation nobody has (the body is checked before it: 404 once the body passes); bob's presence
        path = template.replace("{id}", "bob" if "agents" in template else "999999")
        who = "agent:bob" if template == "/v1/presence" else "operator:olga"
        for body, refusal in _body_cases(schema):
            a = world.call(method, path, who, raw=json.dumps(body).encode())
            if refusal is None:
                assert a.status != 400, (op_id, body, a)
            else:
                assert a.status == 400 and (a.body["error"]["code"], a.body["error"].get("field")) == refusal, \
                    (op_id, body, refusal, a)
            checked += 1
    assert checked > 60, checked


def test_each_verbs_conflicts_reach_an_operator_with_their_codes(world):
    """docs/api.md "Verbs", as an operator meets them: accept of work that is not an open offer is not_offered;
    reject of work nobody holds (queued, resolved) not_owned; respond with none recorded, resolve and transfer
    of resolved work closed; respond recorded before is 200 `already`."""
    def conflict(verb, cv, code, body=None):
        a = world.call("POST", f"/v1/conversations/{cv}/{verb}", "operator:olga", body=body)
        assert a.status == 409 and a.body["error"]["code"] == code, (verb, a)
        assert cv in a.body["error"]["message"], a

    for agent in ("ann", "bob"):  # nobody can take it: it waits in core's queue
        world.call("PUT", f"/v1/agents/{agent}/presence", "operator:olga", body={"presence": "away"})
    _, queued = world.submit("nobody in for-ann")
    wait_for(lambda: world.redis.hget(f"omni:conversation:{queued}", "status") == "queued", 10, "queued")
    conflict("accept", queued, "not_offered")
    conflict("reject", queued, "not_owned", {"reason": "x"})
    for agent in ("ann", "bob"):
        world.call("PUT", f"/v1/agents/{agent}/presence", "operator:olga", body={"presence": "available"})
    cv = world.work("conflicts for-ann")
    assert world.call("POST", f"/v1/conversations/{cv}/accept", "operator:olga").body["outcome"] == "accepted"
    conflict("accept", cv, "not_offered")
    assert world.call("POST", f"/v1/conversations/{cv}/resolve", "operator:olga").body["outcome"] == "resolved"
    conflict("reject", cv, "not_owned", {"reason": "x"})
    conflict("respond", cv, "closed")
    conflict("resolve", cv, "closed")
    conflict("transfer", cv, "closed", {"team": "tier2"})
    answered = world.work("answered for-ann")
    first = world.call("POST", f"/v1/conversations/{answered}/respond", "agent:ann").body
    assert first["outcome"] in ("met", "no sla"), first
    assert world.call("POST", f"/v1/conversations/{answered}/resolve", "agent:ann").status == 200
    again = world.call("POST", f"/v1/conversations/{answered}/respond", "operator:olga").body
    assert again["outcome"] == "already" and again["since_opened_ms"] >= 0, again


def test_a_redis_slower_than_its_timeout_is_503_then_served_again(world):
    """docs/api.md "Threads and limits": a Redis call takes at most redis.timeout_ms (1 s here), then 503 with
    Retry-After, and the next request connects again. Redis paused for 5 s: the requests in it answer 503
    within the timeout (not when Redis wakes); afterwards every path answers again."""
    assert world.call("GET", "/v1/me", "agent:ann").status == 200
    world.redis.execute_command("CLIENT", "PAUSE", 5000, "ALL")
    for path, who in (("/v1/me", "agent:ann"), ("/healthz", None)):
        t0 = time.monotonic()
        a = world.call("GET", path, who)
        assert a.status == 503 and a.headers["retry-after"] == "3", (path, a)
        assert a.body["error"]["code"] == "unavailable", a
        assert time.monotonic() - t0 < 2.0, path  # it gave up after its 1 s, not when Redis came back
    wait_for(lambda: world.call("GET", "/healthz").status == 200, 10, "Redis answering again")
    assert world.call("GET", "/v1/work", "agent:ann").status == 200
    assert world.call("GET", "/v1/me", "agent:ann").body["subject"] == "agent:ann"


def test_an_agents_stream_tells_the_whole_life_of_its_work(world):
    """docs/api.md "Events": each change of the agent's work is one event, in order, its data an InboxEvent
    (openapi.yaml) with the fields its type has (docs/delivery.md "The inbox"), ids increasing."""
    ann = EventStream(world.api, world.tokens["agent:ann"])
    cv = world.work("life for-ann")
    assert world.call("POST", f"/v1/conversations/{cv}/accept", "agent:ann").status == 200
    frm = json.loads(world.redis.hget(
        f"omni:msg:{world.redis.lrange(f'omni:conversation:{cv}:messages', 0, 0)[0]}", "json"))["from"]["id"]
    world.peer.submit(message("email:life:2", frm=frm, text="and another thing"))
    assert world.peer.recv() == ["OMNI/1", "ACK", "email:life:2"]
    assert world.call("POST", f"/v1/conversations/{cv}/resolve", "operator:olga").status == 200
    other = world.work("moved for-ann")
    assert world.call("POST", f"/v1/conversations/{other}/transfer", "agent:ann", body={"team": "tier2"}).status == 200
    got = [ann.next_event() for _ in range(6)]
    ann.close()
    assert [(g[1], g[2]["conversation"]) for g in got] == [
        ("work.offered", cv), ("work.assigned", cv), ("work.message", cv), ("work.resolved", cv),
        ("work.offered", other), ("work.revoked", other)], got
    ids = [tuple(map(int, g[0].split("-"))) for g in got]
    assert ids == sorted(ids) and len(set(ids)) == 6
    for _, kind, data in got:
        schema_check(SPEC["components"]["schemas"]["InboxEvent"], data, kind)
        assert isinstance(data["at"], int) and data["at"] > 0
    offered, assigned, msg, resolved, _, revoked = (g[2] for g in got)
    assert offered["expires_at"] > offered["at"] and offered["team"] == "core" and offered["channel"] == "email"
    assert {"team", "channel", "category", "prio"} <= set(assigned) and "expires_at" not in assigned, assigned
    assert msg["message"]["id"] == "email:life:2" and msg["message"]["text"] == "and another thing", msg
    assert resolved["by"] == "operator:olga", resolved
    assert revoked["reason"] == "transfer", revoked


def test_an_idle_connection_and_a_stalled_body_are_closed_after_the_timeout(tmp_path, redis_server):
    """api.connection_timeout (1 s here): a connection that sends nothing, or a body that stops arriving, is
    closed after it (its thread and Redis connection freed), not held open."""
    api = OmniApi(str(tmp_path), redis_server.address, extra={"api.connection_timeout": "1s"}).start()
    try:
        for data in (b"", b"PUT /v1/presence HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n{\"pres",
                     b"GET /v1/m"):
            s = socket.create_connection(("127.0.0.1", api.port), timeout=10)
            s.sendall(data)
            t0 = time.monotonic()
            s.settimeout(10)
            try:
                while s.recv(65536):
                    pass
            except ConnectionResetError:
                pass
            assert time.monotonic() - t0 < 5, data
            s.close()
        assert api.request("GET", "/healthz").status == 200
    finally:
        api.stop()


def test_a_transfer_encoding_other_than_chunked_is_refused_at_once(world):
    """RFC 9112 6.1, 6.3: a request whose Transfer-Encoding does not end in chunked has no length a proxy and this
    server read alike; libmicrohttpd would wait for the connection to close to end the body. docs/api.md
    "Errors": its framing is refused at once, 400 invalid_request naming Transfer-Encoding, the connection
    closed; chunked alone is read as ever."""
    ann = world.tokens["agent:ann"]
    for te in ("gzip", "chunked, gzip", "gzip, chunked", "identity", "chunked;x=1"):
        t0 = time.monotonic()
        got = _raw_exchange(world.api.port, (
            f"PUT /v1/presence HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ann}\r\nTransfer-Encoding: {te}\r\n"
            "\r\n").encode() + b'{"presence":"away"}')
        assert time.monotonic() - t0 < 5, te  # answered and closed, not left waiting for the body's end
        assert got.count(b"HTTP/1.1 ") == 1, got
        status, headers, doc = _reply(got)
        assert status == 400 and doc["error"]["code"] == "invalid_request", (te, got)
        assert doc["error"]["field"] == "Transfer-Encoding", doc
        OmniApi.check("PUT", "/v1/presence", status, headers, doc)
    assert world.call("GET", "/v1/presence", "agent:ann").body["presence"] == "available"  # nothing was set
    body = b'{"presence":"away"}'
    for te in ("chunked", "Chunked"):
        got = _raw_exchange(world.api.port, (
            f"PUT /v1/presence HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ann}\r\nTransfer-Encoding: {te}\r\n"
            "Connection: close\r\n\r\n").encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        assert got.split()[1] == b"200", got


def test_the_sla_report_answers_operators_as_omnictl_prints_it(world):
    """GET /v1/report (docs/api.md "Report"): the same JSON as omnictl report --json, for operators; its query
    checked strictly."""
    conv = world.work("hello for-ann")
    assert world.call("POST", f"/v1/conversations/{conv}/accept", "agent:ann").status == 200
    assert world.call("POST", f"/v1/conversations/{conv}/respond", "agent:ann").status == 200
    assert world.call("POST", f"/v1/conversations/{conv}/resolve", "agent:ann").status == 200
    r = world.call("GET", "/v1/report", "operator:olga")
    assert r.status == 200, r
    assert r.body == json.loads(world.router.ctl("report", "--json").stdout)
    assert r.body["total"]["responded"] == 1 and r.body["total"]["resolved"] == 1
    row = next(x for x in r.body["rows"] if x["channel"] == "email")
    assert row["responded"] == 1 and row["resolved"] == 1 and row["first_contact"] == 1
    today = r.body["to"]
    one = world.call("GET", f"/v1/report?from={today}&to={today}", "operator:olga")
    assert one.status == 200 and one.body["from"] == today and one.body["total"] == r.body["total"]
    assert world.call("GET", "/v1/report?days=2", "operator:olga").body["to"] == today
    for query, field, code in (("days=0", "days", "invalid_field"), ("days=401", "days", "invalid_field"),
                               ("days=x", "days", "invalid_field"), ("from=2026-02-30", "from", "invalid_field"),
                               ("to=2026-12-01", "to", "invalid_field"), ("days=2&from=2026-12-01", "days", "invalid_field"),
                               ("days=1&days=2", "days", "invalid_field"), ("limit=5", "limit", "unknown_field"),
                               ("from=2026-12-03&to=2026-12-01", "to", "invalid_field")):
        bad = world.call("GET", "/v1/report?" + query, "operator:olga")
        assert bad.status == 400 and bad.body["error"]["code"] == code and bad.body["error"]["field"] == field, \
            (query, bad)


def test_a_survey_is_recorded_through_the_api_once_and_shown_on_the_conversation(world):
    """docs/api.md "Surveys": an operator's token records a resolved conversation's scores; each once (the same
    again: already; another: 409 surveyed naming the recorded one); the conversation shows them; the report
    counts them under the team that resolved it."""
    cv = world.work("survey for-ann")
    path = f"/v1/conversations/{cv}/survey"
    a = world.call("POST", path, "operator:olga", body={"csat": 4})
    assert a.status == 409 and a.body["error"]["code"] == "not_resolved" and cv in a.body["error"]["message"], a
    assert world.call("POST", f"/v1/conversations/{cv}/resolve", "operator:olga").status == 200
    a = world.call("POST", path, "operator:olga", body={"csat": 4, "nps": 10})
    assert (a.status, a.body) == (200, {"conversation": cv, "outcome": "recorded"}), a
    a = world.call("POST", path, "operator:olga", body={"nps": 10})
    assert (a.status, a.body) == (200, {"conversation": cv, "outcome": "already"}), a
    a = world.call("POST", path, "operator:olga", body={"nps": 3, "ces": 5})
    assert a.status == 409 and a.body["error"]["code"] == "surveyed" and "nps 10" in a.body["error"]["message"], a
    a = world.call("POST", path, "operator:olga", body={})
    assert a.status == 400 and (a.body["error"]["code"], a.body["error"]["field"]) == ("missing_field", "body"), a
    # the agent who held it, and a partner: as for others' work
    for who in ("agent:ann", "partner:acme"):
        assert world.call("POST", path, who, body={"ces": 5}).status == 404
    view = world.call("GET", f"/v1/conversations/{cv}", "operator:olga").body
    assert view["survey"]["csat"] == 4 and view["survey"]["nps"] == 10 and "ces" not in view["survey"], view
    row = next(r for r in world.call("GET", "/v1/report", "operator:olga").body["rows"] if r["team"] == "core")
    assert (row["csat"], row["csat_sum"], row["csat_satisfied"], row["nps"], row["nps_promoters"]) == (1, 4, 1, 1, 1)
