"""omni-webhooks as a partner and an operator meet it (docs/webhooks.md, docs/delivery.md "Partner webhooks",
DESIGN.md "Partners and agents"), with data the other tests do not use: a receiver that verifies exactly as
the Standard Webhooks reference library does (headers case-insensitive, the timestamp within 5 minutes either
way, every space-separated signature split at its comma and only v1 ones compared), Retry-After in its
seconds and three HTTP-date forms and absurd values, an endpoint refusing connections across a kill -9 of
the sender, a partner stalling inside its answer's headers, a masking partner's every byte, and inbox entries
that only Redis's cjson takes for JSON."""
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import BIN, ROOT, free_port, scrape, wait_for
from test_webhooks import FIXTURES, P, SECRET, Webhooks, delivery_of, event, partner_owns, states
from webhook_receiver import RawEndpoint

# the directory of the JavaScript reference library (npm's standardwebhooks), when a run has it: every delivery of
# test_deliveries_verify_with_the_reference_library_... is then verified by it too, through node
NODE_LIB = os.environ.get("OMNI_SW_NODE")


class StandardWebhook:
    """What the reference library (standardwebhooks for Python, libraries/python/standardwebhooks) does in
    Webhook(secret).verify(body, headers): raises ValueError on any refusal, returns the parsed body."""
    TOLERANCE = 5 * 60

    def __init__(self, secret):
        if secret.startswith("whsec_"):
            secret = secret[len("whsec_"):]
        self.key = base64.b64decode(secret)  # strict: padding required, as the library's b64decode is

    def sign(self, msg_id, ts, data):
        mac = hmac.new(self.key, f"{msg_id}.{ts}.{data}".encode(), hashlib.sha256).digest()
        return "v1," + base64.b64encode(mac).decode()

    def verify(self, body, headers, now=None):
        data = body.decode()  # the library signs the text, not the bytes: the body must be UTF-8
        h = {k.lower(): v for k, v in headers.items()}
        msg_id, sig, ts = h.get("webhook-id"), h.get("webhook-signature"), h.get("webhook-timestamp")
        if not (msg_id and sig and ts):
            raise ValueError("Missing required headers")
        now = time.time() if now is None else now
        t = int(float(ts))
        if now - t > self.TOLERANCE:
            raise ValueError("Message timestamp too old")
        if t > now + self.TOLERANCE:
            raise ValueError("Message timestamp too new")
        want = base64.b64decode(self.sign(msg_id, str(t), data).split(",")[1])
        for versioned in sig.split(" "):
            version, s = versioned.split(",")
            if version != "v1":
                continue
            if hmac.compare_digest(want, base64.b64decode(s)):
                return json.loads(data)
        raise ValueError("No matching signature found")


class Partner:
    """A partner's endpoint on a port it is given (so it can come up where the sender has been refused),
    answering script(msg_id, n) -> (status, headers) and verifying every request with StandardWebhook."""

    def __init__(self, secrets, script, port=0):
        self.libs = [StandardWebhook(s) for s in secrets]
        self.script, self.requests, self.lock, self.counts = script, [], threading.Lock(), {}
        partner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = dict(self.headers.items())
                msg_id = self.headers.get("webhook-id", "")
                with partner.lock:
                    n = partner.counts[msg_id] = partner.counts.get(msg_id, 0) + 1
                verified = []
                for lib in partner.libs:
                    try:
                        lib.verify(raw, headers)
                        verified.append(True)
                    except ValueError:
                        verified.append(False)
                status, extra = partner.script(msg_id, n)
                with partner.lock:
                    partner.requests.append({"id": msg_id, "n": n, "at": time.monotonic(), "raw": raw,
                                             "headers": headers, "status": status, "verified": verified,
                                             "body": json.loads(raw)})
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rds(redis_server):
    return redis_server.client()


@pytest.fixture
def partners():
    made = []
    yield lambda *a, **kw: made.append(Partner(*a, **kw)) or made[-1]
    for p in made:
        p.close()


class FirstWait:
    """next_at - last_attempt_at that a delivery's first attempt left: the wait the sender chose. Read by the
    partner when the second attempt comes (the hash still holds the first's), or from Redis while a long
    wait runs."""

    def __init__(self, rds):
        self.rds, self.seen = rds, {}

    def script(self, answer):
        def run(msg_id, n):
            if n == 2:
                w = self.rds.hgetall(f"{P}webhook:{msg_id}")
                self.seen[msg_id] = (int(w["next_at"]) - int(w["last_attempt_at"]), w)
            return answer(msg_id, n)
        return run

    def of(self, i):
        def known():
            if i in self.seen:
                return self.seen[i]
            w = self.rds.hgetall(f"{P}webhook:{i}")
            if w.get("attempts") == "1" and int(w["next_at"]) - int(time.time() * 1000) > 1000:
                return int(w["next_at"]) - int(w["last_attempt_at"]), w
        return wait_for(known, 15, f"the first attempt of {i} recorded")


def test_the_reference_verifier_accepts_the_published_vector_and_refuses_what_it_refuses():
    """The verifier of these tests is the library's: the published vector passes; a timestamp 6 minutes
    old or ahead, a v2 signature alone, a missing header are refused."""
    v = json.load(open(os.path.join(FIXTURES, "standard-webhooks", "sign-vector.json")))
    lib = StandardWebhook(v["secret"])
    h = {"Webhook-Id": v["webhook-id"], "Webhook-Timestamp": v["webhook-timestamp"],
         "Webhook-Signature": v["webhook-signature"]}
    ts = int(v["webhook-timestamp"])
    assert lib.verify(v["body"].encode(), h, now=ts) == json.loads(v["body"])
    for now in (ts + 361, ts - 361):
        with pytest.raises(ValueError):
            lib.verify(v["body"].encode(), h, now=now)
    with pytest.raises(ValueError):
        lib.verify(v["body"].encode(), dict(h, **{"Webhook-Signature": "v2," + v["webhook-signature"][3:]}), now=ts)
    with pytest.raises(ValueError):
        lib.verify(v["body"].encode(), {k: x for k, x in h.items() if k != "Webhook-Id"}, now=ts)


def test_deliveries_verify_with_the_reference_library_for_secrets_of_every_usual_length(tmp_path, redis_server,
                                                                                       rds, partners):
    """Secrets as providers generate them (24, 32 and 64 random bytes), one per partner, and a rotation pair:
    every delivery passes the library's verify; with two secrets, each signature on its own does."""
    secrets = {n: "whsec_" + base64.b64encode(os.urandom(n)).decode() for n in (24, 32, 64)}
    ends = {f"k{n}": partners([s], lambda i, n: (200, {})) for n, s in secrets.items()}
    rot = [secrets[24], secrets[64]]
    ends["rot"] = partners(rot + [secrets[32]], lambda i, n: (200, {}))
    cfg = [{"team": f"k{n}", "url": ends[f"k{n}"].url, "secrets": [s]} for n, s in secrets.items()]
    cfg.append({"team": "rot", "url": ends["rot"].url, "secrets": rot})
    wh = Webhooks(str(tmp_path), redis_server.address, cfg).start()
    text = "Grüße — 你好 \U0001F600 \"quoted\" \\ back\nslash </script>"
    ids = {t: delivery_of(rds, t, event(rds, t, "5", "work.message", message={"id": "m1", "text": text}))
           for t in ends}
    wait_for(lambda: states(rds, ids.values()) == ["delivered"] * len(ids), 20, "all delivered")
    for t, e in ends.items():
        (q,) = e.snapshot()
        assert q["body"]["data"]["message"]["text"] == text
        assert q["verified"] == ([True, True, False] if t == "rot" else [True]), (t, q["headers"])
        sigs = q["headers"]["webhook-signature"].split(" ")
        assert len(sigs) == (2 if t == "rot" else 1) and all(re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", s) for s in sigs)
        if NODE_LIB:
            for s in (rot if t == "rot" else [secrets[int(t[1:])]]):
                js = ("const {Webhook}=require(process.argv[1]);const h=JSON.parse(process.argv[2]);"
                      "new Webhook(process.argv[3]).verify(require('fs').readFileSync(0),h);console.log('ok')")
                out = subprocess.run(["node", "-e", js, NODE_LIB, json.dumps(q["headers"]), s], input=q["raw"],
                                     capture_output=True, timeout=30)
                assert out.stdout.strip() == b"ok", out.stderr
    wh.stop()


RETRY_AFTER = {
    # value -> (least, most) wait in ms after the first failed attempt; backoff alone is 50..100 ms
    "3": (3000, 3000),
    " 2 ": (2000, 2000),
    "0": (50, 100),
    "-5": (50, 100),             # not delay-seconds (1*DIGIT): ignored, the backoff counts
    "1.5": (50, 100),            # likewise
    "2s": (50, 100),
    "soon": (50, 100),
    "99999999999999999999999": (3600000, 3600000),  # absurd: capped at 1 h
    "Thu, 01 Jan 1970 00:00:00 GMT": (50, 100),      # past: no wait beyond the backoff
    "Fri, 31 Dec 9999 23:59:59 GMT": (3600000, 3600000),
}


def test_retry_after_in_seconds_three_http_date_forms_and_absurd_values(tmp_path, redis_server, rds, partners):
    """docs/webhooks.md: Retry-After (seconds, or an HTTP date) on any failed answer is honoured when it asks for
    longer than the backoff, up to 1 h; a value that is neither is ignored (the backoff counts). The wait is
    read from Redis (next_at - last_attempt_at of the first attempt), so no timing of this machine counts."""
    soon = time.time() + 4
    dates = {"imf": formatdate(soon, usegmt=True),
             "rfc850": time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(soon)),
             "asctime": time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(soon))}
    values = dict(RETRY_AFTER, **{v: (2000, 4000) for v in dates.values()})
    teams = {f"t{k}": v for k, v in enumerate(values)}
    fw = FirstWait(rds)
    ends = {t: partners([SECRET], fw.script(lambda i, n, v=v: (503 if n == 1 else 200,
                                                                 {"Retry-After": v} if n == 1 else {})))
            for t, v in teams.items()}
    # a 3xx is a failed answer too: its Retry-After counts
    ends["redirect"] = partners([SECRET], fw.script(lambda i, n: (302 if n == 1 else 200,
                                                                    {"Retry-After": "2", "Location": "http://x/"})))
    wh = Webhooks(str(tmp_path), redis_server.address,
                  [{"team": t, "url": e.url, "base": "100ms", "max": "100ms"} for t, e in ends.items()]).start()
    ids = {t: delivery_of(rds, t, event(rds, t, "1")) for t in ends}
    for t, v in list(teams.items()) + [("redirect", "2 (302)")]:
        lo, hi = values.get(v, (2000, 2000))
        waited, w = fw.of(ids[t])
        assert lo - 1000 * (v in dates.values()) <= waited <= hi + 50, (v, waited, w)
    wh.stop()


def test_an_endpoint_refusing_connections_across_a_kill_9_loses_and_duplicates_nothing(tmp_path, redis_server, rds,
                                                                                      partners):
    """Nothing listens on the partner's port: every attempt fails as a network failure (last_status 0, the
    reason in last_error, counted under reason network), the sender is SIGKILLed meanwhile, the partner comes
    up on that port, a new sender starts: each event is taken exactly once (nothing reached the partner
    before), in order per conversation, every one verifying."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    mport = free_port()
    by_conv = {c: [event(rds, "acme", c, "work.assigned" if k == 0 else "work.message", k=k) for k in range(3)]
               for c in ("301", "302", "303")}
    ids = [i for v in by_conv.values() for i in v]
    cfg = [{"team": "acme", "url": url, "base": "100ms", "max": "300ms", "max_attempts": 100}]
    wh = Webhooks(str(tmp_path), redis_server.address, cfg, metrics_port=mport).start()
    heads = [v[0] for v in by_conv.values()]
    wait_for(lambda: all(int(rds.hget(f"{P}webhook:{i}", "attempts") or 0) >= 2 for i in heads), 15,
             "every conversation's head failed twice")
    w = rds.hgetall(f"{P}webhook:{heads[0]}")
    assert w["state"] == "pending" and w["last_status"] == "0" and "onnect" in w["last_error"], w
    assert all(rds.hget(f"{P}webhook:{i}", "attempts") == "0" for v in by_conv.values() for i in v[1:])
    m = scrape(mport)
    assert m[("omnirouter_webhook_failures_total", (("reason", "network"),))] >= 6
    assert m[("omnirouter_webhook_deliveries_total", ())] == 0
    wh.kill()
    rc = partners([SECRET], lambda i, n: (200, {}), port=port)
    wh = Webhooks(str(tmp_path), redis_server.address, cfg).start()
    wait_for(lambda: states(rds, ids) == ["delivered"] * len(ids), 30, "every delivery after the restart")
    got = rc.snapshot()
    assert sorted(q["id"] for q in got) == sorted(ids)  # once each
    for c, v in by_conv.items():
        assert [q["id"] for q in got if q["id"] in v] == v, c
    assert all(q["verified"] == [True] for q in got)
    wh.stop()


def test_a_partner_stalling_inside_its_answers_headers_is_retried(tmp_path, redis_server, rds):
    """A status line and part of the headers, then nothing until the timeout, or the connection closed: no
    whole answer came, so the attempt failed (a network failure, last_status 0) and it is sent again, with the
    same webhook-id."""
    first, second = {}, {}

    def stall(c, n):
        if n == 1:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
            time.sleep(3)
            return False
        if n == 2:
            first.update(rds.hgetall(f"{P}webhook:{i}"))  # what the first attempt left
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")  # then the connection closes
            return False
        second.update(rds.hgetall(f"{P}webhook:{i}"))
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        return True
    end = RawEndpoint(stall)
    wh = Webhooks(str(tmp_path), redis_server.address,
                  [{"team": "acme", "url": end.url, "timeout": "1s", "base": "50ms", "max": "50ms"}]).start()
    i = delivery_of(rds, "acme", event(rds, "acme", "1"))
    wait_for(lambda: states(rds, [i]) == ["delivered"], 15, "delivered at the third attempt")
    w = rds.hgetall(f"{P}webhook:{i}")
    assert w["attempts"] == "3", (w, len(end.requests))
    assert first["last_status"] == "0" and "timed out" in first["last_error"], first
    assert (second["attempts"], second["last_status"], second["last_error"]) == \
        ("2", "0", "the connection closed inside the answer's headers (after its status line, 200)"), second
    ids = [re.search(rb"webhook-id: (\S+)", h).group(1) for _, h in end.requests]
    assert ids == [i.encode()] * 3
    wh.stop()
    end.close()


def test_2xx_variants_are_deliveries_and_a_status_past_599_is_not(tmp_path, redis_server, rds):
    """Any 2xx is a delivery (200, 201, 202, 208); a status line outside 100..599 fails the attempt."""
    def answer(code):
        return lambda c, n: c.sendall(f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n".encode()) or True
    codes = [200, 201, 202, 208, 600, 999]
    ends = {c: RawEndpoint(answer(c)) for c in codes}
    wh = Webhooks(str(tmp_path), redis_server.address,
                  [{"team": f"t{c}", "url": e.url, "max_attempts": 1} for c, e in ends.items()]).start()
    ids = {c: delivery_of(rds, f"t{c}", event(rds, f"t{c}", "1")) for c in codes}
    wait_for(lambda: all(s in ("delivered", "dead") for s in states(rds, ids.values())), 15, "all settled")
    for c, i in ids.items():
        assert (c, rds.hget(f"{P}webhook:{i}", "state")) == (c, "delivered" if c < 300 else "dead")
    wh.stop()
    for e in ends.values():
        e.close()


def test_metrics_are_exposed_with_the_documented_types(tmp_path, redis_server, rds, partners):
    """docs/webhooks.md "Metrics": every metric of the table, of its type, with its labels."""
    port = free_port()
    rc = partners([SECRET], lambda i, n: (200, {}))
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": rc.url}], metrics_port=port).start()
    wait_for(lambda: states(rds, [delivery_of(rds, "acme", event(rds, "acme", "1"))]) == ["delivered"], 15, "sent")
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    want = {"omnirouter_webhook_attempts_total": "counter", "omnirouter_webhook_deliveries_total": "counter",
            "omnirouter_webhook_failures_total": "counter", "omnirouter_webhook_retries_total": "counter",
            "omnirouter_webhook_dead_letters_total": "counter", "omnirouter_webhook_inflight": "gauge",
            "omnirouter_webhook_redis_up": "gauge", "omnirouter_webhook_delivery_seconds": "histogram"}
    for name, kind in want.items():
        assert types.get(name) == kind or types.get(name.removesuffix("_total")) == kind, (name, types)
    reasons = set(re.findall(r'^omnirouter_webhook_failures_total\{reason="([^"]+)"\}', text, re.M))
    assert reasons == {"network", "gone", "4xx", "5xx", "other"}, reasons
    wh.stop()


def test_a_masking_partner_receives_no_contact_identity_in_any_event(tmp_path, redis_server, rds, partners):
    """DESIGN.md: where a partner's contract says so, contact identities are masked in everything it receives.
    Through the router (bpo masks, test_routing.py's policy): an SMS customer with a display name and meta
    naming the number as dialled, then a Twitter customer, each conversation's events (work.assigned,
    work.message, work.resolved) reach the partner with the shapes docs/delivery.md "The inbox" gives, the
    number as +1415*****23, a pseudonym anon-<16 hex> for the handle, no name and no meta; no byte of any body
    or header holds an identity, a name or a number as dialled."""
    from harness import Peer, Router, message
    from test_routing import POLICY
    rc = partners([SECRET], lambda i, n: (200, {}))
    router = Router(str(tmp_path / "router"), redis_server.address, policy=POLICY).start()
    peer = Peer(router.endpoint)
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "bpo", "url": rc.url}]).start()
    secrets_of_customers = ["+14155550123", "4155550123", "555-0123", "Jane Roe", "jroe_tw", "Twitter Jane",
                            "98765432101234"]
    msgs = [message("ms1", channel="sms", frm="+14155550123", text="where is my order",
                    **{"from": {"id": "+14155550123", "name": "Jane Roe"}, "meta": {"dialled": "(415) 555-0123"}}),
            message("mt1", channel="twitter", frm="98765432101234", text="where is my order #42",
                    **{"from": {"id": "98765432101234", "name": "Twitter Jane"}, "meta": {"username": "jroe_tw"}})]
    for m in msgs:
        peer.submit(m)
        assert peer.recv() == ["OMNI/1", "ACK", m["id"]]
    convs = [rds.hget(f"{P}msg:{m['id']}", "conversation") for m in msgs]
    assert all(rds.hget(f"{P}conversation:{c}", "team") == "bpo" for c in convs), convs
    peer.submit(message("ms2", channel="sms", frm="+14155550123", text="still waiting",
                        **{"from": {"id": "+14155550123", "name": "Jane Roe"}}))
    assert peer.recv() == ["OMNI/1", "ACK", "ms2"]
    for c in convs:
        router.ctl("conversation", "resolve", c, "--by", "ops")
    # an email customer: a subject and attachments reach the partner as written (texts are not masked)
    att = [{"name": "invoice.pdf", "type": "application/pdf", "size": 1234, "url": "https://files.example/i/1"}]
    mail = dict(channel="email", frm="Jane.Roe+orders@mail.example.org", text="where is my order",
                **{"from": {"id": "Jane.Roe+orders@mail.example.org", "name": "Jane Roe"}, "subject": "Order 42",
                   "attachments": att, "meta": {"mailbox": "INBOX/jane.roe"}})
    for mid, text in (("me1", "where is my order"), ("me2", "the invoice attached shows the wrong address")):
        peer.submit(message(mid, **dict(mail, text=text)))
        assert peer.recv() == ["OMNI/1", "ACK", mid]
    convs.append(rds.hget(f"{P}msg:me1", "conversation"))
    secrets_of_customers += ["Jane.Roe", "jane.roe", "orders@"]
    # the message that opened a conversation is the work.assigned (docs/delivery.md "The inbox"); each later one a
    # work.message
    want = {convs[0]: ["work.assigned", "work.message", "work.resolved"], convs[1]: ["work.assigned", "work.resolved"],
            convs[2]: ["work.assigned", "work.message"]}

    def types():
        got = {c: [q["body"]["type"] for q in rc.snapshot() if q["body"]["data"]["conversation"] == c] for c in convs}
        return got if all(len(got[c]) >= len(want[c]) for c in convs) else None
    assert wait_for(types, 20, "every event delivered") == want
    for q in rc.snapshot():
        blob = q["raw"] + json.dumps(q["headers"]).encode()
        for s in secrets_of_customers:
            assert s.encode() not in blob, (s, q["raw"])
        assert q["verified"] == [True]
        d, t = q["body"]["data"], q["body"]["type"]
        assert isinstance(d["at"], int) and d["conversation"] in convs, d
        if t == "work.assigned":
            assert {"team", "channel", "category", "prio"} <= set(d) and d["team"] == "bpo", d
        elif t == "work.message":
            m = d["message"]
            assert {"id", "channel", "from", "text", "at"} <= set(m) and "meta" not in m, m
            assert set(m["from"]) == {"id"}, m
            if m["channel"] == "sms":
                assert m["from"]["id"] == "+1415*****23", m
            elif m["channel"] == "email":
                assert m["from"]["id"] == "j***@mail.example.org", m  # as normalized: lower case
                assert (m["id"], m["subject"], m["attachments"]) == ("me2", "Order 42", att), m
            else:
                assert re.fullmatch(r"anon-[0-9a-f]{16}", m["from"]["id"]), m
        elif t == "work.resolved":
            assert d["by"], d
    wh.stop()
    peer.close()
    router.stop()


def test_every_omnictl_command_docs_webhooks_names_exists(tmp_path, redis_server):
    """docs/webhooks.md sends an operator to omnictl commands: each one it names in `backticks` runs (TEAM as a
    team of the config), rather than answering with a usage error."""
    doc = open(os.path.join(ROOT, "docs", "webhooks.md")).read()
    named = sorted(set(re.findall(r"`omnictl ([a-z][a-z ]*[A-Z]*)`", doc)))
    assert named, doc
    cfg = tmp_path / "router.yaml"
    cfg.write_text(f"redis: {{address: '{redis_server.address}'}}\nteams:\n  - name: acme\n    kind: outsourced\n"
                   "    contract: {categories: [general]}\n")
    for cmd in named:
        args = cmd.replace("TEAM", "acme").split()
        out = subprocess.run([os.path.join(BIN, "omnictl"), "-c", str(cfg), *args], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, (cmd, out.stdout, out.stderr)


def test_sigterm_gives_a_stalled_attempt_3_s_then_exits_0_and_it_is_sent_again_after_its_lease(tmp_path,
                                                                                               redis_server, rds):
    """docs/webhooks.md "How it runs": SIGTERM: no new claims; attempts in flight get 3 s, then it exits 0; what
    is left is sent again after its lease (its timeout + 5 s), with the same webhook-id. Meanwhile at most
    webhooks.concurrency attempts are in flight."""
    live, most, lock = [0], [0], threading.Lock()

    def answer(c, n):
        with lock:
            live[0] += 1
            most[0] = max(most[0], live[0])
        try:
            if n <= 2:
                time.sleep(8)
                return False
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            return True
        finally:
            with lock:
                live[0] -= 1
    end = RawEndpoint(answer)
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": end.url, "timeout": "10s"}])
    with open(wh.config) as f:
        text = f.read().replace("webhooks:\n", "webhooks:\n  concurrency: 2\n")
    with open(wh.config, "w") as f:
        f.write(text)
    wh.start()
    ids = [delivery_of(rds, "acme", event(rds, "acme", c)) for c in ("1", "2", "3")]
    wait_for(lambda: len(end.requests) >= 2, 15, "two attempts under way")
    time.sleep(0.5)  # a third, were the limit not kept, would have come by now (poll 20 ms)
    assert len(end.requests) == 2 and most[0] == 2
    t0 = time.monotonic()
    wh.proc.send_signal(15)
    assert wh.proc.wait(timeout=10) == 0
    took = time.monotonic() - t0
    assert took >= 2.5, took  # the attempts in flight had their 3 s (docs/webhooks.md "SIGTERM"); the end: wait(10)
    assert states(rds, ids) == ["pending"] * 3
    leased = [rds.zscore(f"{P}webhooks:due", i) for i in ids[:2]]
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": end.url, "timeout": "10s"}]).start()
    wait_for(lambda: states(rds, ids) == ["delivered"] * 3, 30, "all delivered after the leases")
    heads = [re.search(rb"webhook-id: (\S+)", h).group(1).decode() for _, h in end.requests]
    assert sorted(heads) == sorted(ids[:2] * 2 + ids[2:]), heads  # the two cut short once more, the third once
    assert all(s and s > 0 for s in leased)
    wh.stop()
    end.close()


def test_a_delivered_record_expires_after_keep_delivered_and_a_dead_one_stays(tmp_path, redis_server, rds,
                                                                             partners):
    """docs/webhooks.md "Limits": a delivered delivery's record expires after webhooks.keep_delivered; dead ones
    stay until an operator deletes them; nothing of either is left in webhooks:due or an order list."""
    rc = partners([SECRET], lambda i, n: (200, {}) if i != doomed[0] else (500, {}))
    doomed = [None]
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": rc.url, "max_attempts": 1}])
    with open(wh.config) as f:
        text = f.read().replace("webhooks:\n", "webhooks:\n  keep_delivered: 1s\n")
    with open(wh.config, "w") as f:
        f.write(text)
    wh.start()
    doomed[0] = event(rds, "acme", "1")
    ok = event(rds, "acme", "1", "work.message", message={"id": "m", "text": "x"})
    wait_for(lambda: states(rds, [doomed[0], ok]) == ["dead", "delivered"], 15, "one dead, one delivered")
    assert 0 < rds.pttl(f"{P}webhook:{ok}") <= 1000
    assert rds.pttl(f"{P}webhook:{doomed[0]}") == -1
    wait_for(lambda: not rds.exists(f"{P}webhook:{ok}"), 5, "the delivered record expired")
    assert rds.hget(f"{P}webhook:{doomed[0]}", "last_error") == "HTTP 500 after 1 attempt"
    assert rds.zcard(f"{P}webhooks:due") == 0 and not rds.exists(f"{P}webhooks:order:acme:1")
    wh.stop()


def test_the_work_revoked_of_a_dead_letter_has_the_documented_shape(tmp_path, redis_server, rds, partners):
    """docs/delivery.md "The inbox": data always has conversation and at (ms); work.revoked has reason, here
    dead letter. It reaches the partner signed like any event, after the conversation's events before it."""
    doomed = []
    rc = partners([SECRET], lambda i, n: (500, {}) if i in doomed else (200, {}))
    partner_owns(rds, "acme", "77")
    doomed.append(event(rds, "acme", "77"))
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": rc.url, "max_attempts": 1}]).start()
    t0 = int(time.time() * 1000)
    q = wait_for(lambda: [q for q in rc.snapshot() if q["body"]["type"] == "work.revoked"], 15, "work.revoked")[0]
    d = q["body"]["data"]
    assert set(d) == {"conversation", "at", "reason"} and d["conversation"] == "77" and d["reason"] == "dead letter", d
    assert isinstance(d["at"], int) and t0 - 5000 <= d["at"] <= int(time.time() * 1000), d
    assert q["verified"] == [True] and [r["id"] for r in rc.snapshot()] == [doomed[0], q["id"]]
    # docs/redis.md names every field of a delivery's hash and of an endpoint's
    doc = open(os.path.join(ROOT, "docs", "redis.md")).read()
    row = re.search(r"^\| `omni:webhook:<id>`.*?\| hash \|(.*)\|$", doc, re.M).group(1)
    named = set(re.findall(r"`([a-z_]+)`", row))
    wait_for(lambda: states(rds, [q["id"]]) == ["delivered"], 15, "work.revoked recorded")
    for i in (doomed[0], q["id"]):
        assert set(rds.hgetall(f"{P}webhook:{i}")) <= named, (i, rds.hgetall(f"{P}webhook:{i}"), named)
    row = re.search(r"^\| `omni:webhooks:endpoint:<team>` \| hash \|(.*)\|$", doc, re.M).group(1)
    assert set(rds.hgetall(f"{P}webhooks:endpoint:acme")) <= set(re.findall(r"`([a-z_]+)`", row))
    wh.stop()


def test_jsons_odd_corners_are_sent_byte_for_byte(tmp_path, redis_server, rds, partners):
    """docs/webhooks.md: a delivery's data is the inbox entry's, sent as it is: JSON's odd corners (exponents,
    -0, escapes, raw UTF-8, whitespace around the object, deep nesting) reach the partner byte for byte and
    verify. (Every inbox entry is written by a script encoding with cjson, so what a sender sends is JSON; an
    entry written by hand is checked only by cjson's decode, docs/webhooks.md "Limits".)"""
    rc = partners([SECRET], lambda i, n: (200, {}))
    inbox = f"{P}inbox:team:acme"
    good = ['{"at": 1e3, "b": -0, "c": 1.5E-7, "d": 0.0, "e": -12.5e+2}',
            '{"s": "NaN Infinity 0x10 +1 01 \\" inf", "t": true, "f": false, "n": null}',
            '{"deep": [[[[{"x": [1, {"y": "\\u00e9\\ud83d\\ude00"}]}]]]], "k": "a\\\\"}',
            '\t{\r\n "raw": "h\u00e9llo \u2713 \U0001F600 \uffff \U0010ffff \x7f",\n "n": [ -1 , 2 ] }\n']
    ids = {d: "msg_" + rds.xadd(inbox, {"type": "work.message", "conversation": "66", "data": d}) for d in good}
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": rc.url}]).start()
    wait_for(lambda: states(rds, [ids[d] for d in good]) == ["delivered"] * len(good), 15, "the good ones delivered")
    got = rc.snapshot()
    assert [q["id"] for q in got] == [ids[d] for d in good]
    for q, d in zip(got, good):
        assert q["body"]["data"] == json.loads(d) and q["raw"].endswith(b',"data":' + d.encode() + b'}')
        assert q["verified"] == [True]
    wh.stop()
