"""omni-api end to end: a real router routing real messages on a real Redis, tokens made with omnictl, and
every answer checked against docs/openapi.yaml (api_client.py). The authorization matrix is made from the
spec's operations, so a path added to the spec without a row here fails test_matrix_covers_every_operation."""
import hashlib
import json
import os
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
    "events": ("agent:ann", None, lambda c: "/v1/events", None, {"other agent": 200, "other partner": 200}),
    "getOverview": ("operator:olga", None, lambda c: "/v1/overview", None, {"other agent": 404, "other partner": 404}),
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
