"""omni-webhooks (docs/webhooks.md): inbox entries written as the router writes them (XADD in the format of
docs/delivery.md "The inbox") reach a partner's endpoint signed, once per webhook-id, in order per
conversation, through failures, 429 with Retry-After, stalls past the timeout, a 410, dead letters and a
kill -9; the receiver (webhook_receiver.py) checks every signature with Python's own hmac."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from harness import BIN, LIVE_ROUTERS, ROOT, Daemon, free_port, http_get, scrape, wait_for
from webhook_receiver import RawEndpoint, Receiver, sign, verify

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks vector's (FIXTURES)
NEXT_SECRET = "whsec_" + "bmV4dC1zZWNyZXQtZm9yLXJvdGF0aW9uLTAxMjM0NTY3"  # base64 of 33 bytes
P = "omni:"
FIXTURES = os.environ.get("OMNI_FIXTURES", os.path.join(os.path.dirname(ROOT), "shared", "fixtures"))


class Webhooks(Daemon):
    """omni-webhooks with a config written for the test; its stderr goes to a log file."""
    program = "omni-webhooks"

    def __init__(self, directory, redis_address, partners, name="webhooks", poll="20ms", metrics_port=None,
                 sentinels=None):
        """sentinels: (master name, [ports]) instead of redis_address."""
        LIVE_ROUTERS.append(self)  # conftest kills what a failed test left running
        self.dir, self.name = directory, name
        self.config = os.path.join(directory, name + ".yaml")
        self.log_path = os.path.join(directory, name + ".log")
        where = [f"  address: \"{redis_address}\""] if not sentinels else [
            f"  master_name: {sentinels[0]}", "  sentinels: [" + ", ".join(f"127.0.0.1:{p}" for p in sentinels[1]) + "]"]
        lines = ["redis:", *where, "  timeout: 2s", "  reconnect: 20ms",
                 "webhooks:", "  log_level: debug", f"  poll: {poll}",
                 *([f"  metrics_listen: 127.0.0.1:{metrics_port}"] if metrics_port else []), "partners:"]
        for p in partners:
            files = []
            for i, s in enumerate(p.get("secrets", [SECRET])):
                path = os.path.join(directory, f"{p['team']}-{i}.secret")
                with open(path, "w") as f:
                    f.write(s + "\n")
                os.chmod(path, 0o600)
                files.append(path)
            lines += [f"  - team: {p['team']}", f"    url: {p['url']}", "    insecure_http: true",
                      *([f"    ca_file: {p['ca_file']}"] if "ca_file" in p else []),
                      f"    secrets: {json.dumps(files)}", f"    timeout: {p.get('timeout', '1s')}",
                      "    connect_timeout: 1s", f"    max_attempts: {p.get('max_attempts', 10)}",
                      f"    backoff: {{base: {p.get('base', '100ms')}, max: {p.get('max', '400ms')}}}"]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.spawn(["--config", self.config])
        self.wait_log(r"ready: redis at", 15)
        return self


def event(r, team, conv, kind="work.assigned", **data):
    """XADDs one inbox entry as the router writes it; returns its webhook-id."""
    d = {"conversation": conv, "at": int(time.time() * 1000), **data}
    eid = r.xadd(f"{P}inbox:team:{team}", {"type": kind, "conversation": conv, "data": json.dumps(d)})
    return "msg_" + eid


def delivery_of(r, team, msg_id):
    """The delivery id of team's entry msg_id: entries of two inboxes written in the same millisecond share an
    id, and the delivery taken second has its team added (docs/webhooks.md)."""
    def known():
        for i in (msg_id, f"{msg_id}.{team}"):
            if r.hget(f"{P}webhook:{i}", "team") == team:
                return i
    return wait_for(known, 15, f"the delivery of {msg_id} to {team}")


def partner_owns(r, team, conv):
    """A conversation assigned to the partner team itself, as assign.lua leaves it."""
    r.hset(f"{P}conversation:{conv}", mapping={"status": "assigned", "owner": f"team:{team}", "team": team,
                                               "channel_kind": "email", "target": 0, "customer": 1})
    r.sadd(f"{P}team:{team}:conversations", conv)


def states(r, ids):
    return [r.hget(f"{P}webhook:{i}", "state") for i in ids]


@pytest.fixture
def rds(redis_server):
    return redis_server.client()


@pytest.fixture
def receivers():
    made = []
    yield lambda secrets, script, **kw: made.append(Receiver(secrets, script, **kw)) or made[-1]
    for rc in made:
        rc.close()


def in_order_and_once(receiver, by_conv):
    """Per conversation: the ids were accepted in the order they were written, each exactly once, and no
    request for an id came before the previous id of its conversation was accepted."""
    acc = receiver.accepted()
    for conv, ids in by_conv.items():
        got = [a["id"] for a in acc if a["id"] in ids]
        assert got == ids, f"conversation {conv}: accepted {got}, written {ids}"
        for prev, nxt in zip(ids, ids[1:]):
            done = next(a["at"] for a in acc if a["id"] == prev)
            first = min(q["at"] for q in receiver.snapshot() if q["id"] == nxt)
            assert first >= done, f"{nxt} was sent before {prev} was taken"


def test_retries_500_429_stall_then_200_once_in_order_signed_with_both_secrets(tmp_path, redis_server, rds,
                                                                                receivers):
    def script(msg_id, n):
        return {1: (500, {}, 0), 2: (429, {"Retry-After": "1"}, 0), 3: (200, {}, 2.5)}.get(n, (200, {}, 0))
    rc = receivers([SECRET, NEXT_SECRET], script)
    by_conv = {c: [event(rds, "acme", c, "work.message" if k else "work.assigned", n=k, text=f"hello {k}")
                   for k in range(3)] for c in ("11", "12")}
    wh = Webhooks(str(tmp_path), redis_server.address,
                  [{"team": "acme", "url": rc.url, "secrets": [SECRET, NEXT_SECRET]}]).start()
    ids = [i for v in by_conv.values() for i in v]
    wait_for(lambda: states(rds, ids) == ["delivered"] * len(ids), 40, "every delivery delivered")
    reqs = rc.snapshot()
    # once per webhook-id: four attempts each, the fourth taken, nothing sent again after it
    assert sorted(r["id"] for r in rc.accepted()) == sorted(ids)
    assert all(rc.counts[i] == 4 for i in ids), rc.counts
    in_order_and_once(rc, by_conv)
    for i in ids:
        mine = sorted((r for r in reqs if r["id"] == i), key=lambda r: r["n"])
        # Retry-After: 1 is honoured (the backoff alone would wait 100..200 ms after the second failure)
        assert mine[2]["at"] - mine[1]["at"] >= 0.95, (i, mine[2]["at"] - mine[1]["at"])
        # the stall (2.5 s) is given up on at the 1 s timeout, not waited out (then 0.2-0.4 s of backoff)
        assert mine[3]["at"] - mine[2]["at"] < 2.3, (i, mine[3]["at"] - mine[2]["at"])
        assert len({r["raw"] for r in mine}) == 1  # the same body on every attempt
        assert rds.hget(f"{P}webhook:{i}", "attempts") == "4"
    for r in reqs:
        # two secrets: two signatures, each verified on its own by Python's hmac
        assert r["verified"] == [True, True], r
        assert len(r["signature"].split(" ")) == 2
        assert r["content_type"] == "application/json"
        assert set(r["body"]) == {"type", "timestamp", "data"}
        eid = r["id"][len("msg_"):]
        entry = rds.xrange(f"{P}inbox:team:acme", eid, eid)[0][1]
        assert r["body"]["type"] == entry["type"] and r["body"]["data"] == json.loads(entry["data"])
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", r["body"]["timestamp"])
    # every entry was taken and acknowledged: nothing pending in the group
    assert rds.xpending(f"{P}inbox:team:acme", "webhooks")["pending"] == 0
    assert rds.hget(f"{P}webhooks:endpoint:acme", "delivered") == str(len(ids))
    wh.stop()


def test_410_disables_the_endpoint_and_the_work_is_rerouted(tmp_path, redis_server, rds, receivers):
    rc = receivers([SECRET], lambda msg_id, n: (410, {}, 0))
    partner_owns(rds, "acme", "21")
    first = event(rds, "acme", "21")
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": rc.url}]).start()
    wait_for(lambda: states(rds, [first]) == ["dead"], 15, "the 410'd delivery dead")
    wh.wait_log(r"webhook endpoint of acme .* answered 410 Gone: disabled")
    ep = rds.hgetall(f"{P}webhooks:endpoint:acme")
    assert ep["disabled_status"] == "410" and int(ep["disabled_at"]) > 0
    conv = rds.hgetall(f"{P}conversation:21")
    assert conv["status"] == "rerouting" and conv["reroute"] == "dead letter" and "owner" not in conv
    assert rds.zscore(f"{P}timers", "21") is not None
    assert rds.scard(f"{P}team:acme:conversations") == 0
    # later events of a disabled endpoint are not sent: dead at once
    later = event(rds, "acme", "22")
    wait_for(lambda: states(rds, [later]) == ["dead"], 15, "a later delivery dead without a request")
    assert [r["id"] for r in rc.snapshot()] == [first]
    assert rds.hget(f"{P}webhook:{later}", "last_error") == "endpoint disabled (410)"
    # omnictl status shows it (the router's config names acme an outsourced team); enable sends again
    assert re.search(r"webhooks acme: DISABLED \(410 at .*\), delivered 0, failed attempts 1, dead 3",
                     omnictl(tmp_path, redis_server, "status").stdout)
    assert "enabled" in omnictl(tmp_path, redis_server, "webhooks", "enable", "acme").stdout
    # only a partner team of the policy has an endpoint
    r = subprocess.run([os.path.join(BIN, "omnictl"), "-c", str(tmp_path / "router.yaml"), "webhooks", "enable",
                        "acm"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stderr.startswith('omnictl: no team "acm" in '), r.stderr
    assert re.search(r"webhooks acme: enabled", omnictl(tmp_path, redis_server, "status").stdout)
    again = event(rds, "acme", "23")
    wait_for(lambda: rc.counts.get(again) == 1, 15, "a delivery sent once the endpoint is enabled")
    wh.stop()


def omnictl(tmp_path, redis_server, *args):
    cfg = tmp_path / "router.yaml"
    cfg.write_text(f"redis: {{address: '{redis_server.address}'}}\nteams:\n  - name: acme\n    kind: outsourced\n"
                   "    contract: {categories: [general]}\n")
    out = subprocess.run([os.path.join(BIN, "omnictl"), "-c", str(cfg), *args], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_dead_letter_after_the_last_attempt_reroutes_and_the_next_proceeds(tmp_path, redis_server, rds, receivers):
    failing = set()
    rc = receivers([SECRET], lambda msg_id, n: (503, {}, 0) if msg_id in failing else (200, {}, 0))
    partner_owns(rds, "acme", "31")
    doomed = event(rds, "acme", "31")
    failing.add(doomed)
    after = event(rds, "acme", "31", "work.message", text="still there?")
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": rc.url, "max_attempts": 3}]).start()
    wait_for(lambda: states(rds, [doomed]) == ["dead"], 15, "the delivery dead after 3 attempts")
    assert rc.counts[doomed] == 3
    w = rds.hgetall(f"{P}webhook:{doomed}")
    assert w["attempts"] == "3" and w["last_status"] == "503" and w["last_error"] == "HTTP 503 after 3 attempts"
    assert rds.zscore(f"{P}webhooks:dead", doomed) is not None
    wh.wait_log(rf"webhook {doomed} to acme \(conversation 31\): dead after 3 attempts; the conversation is re-routed")
    conv = rds.hgetall(f"{P}conversation:31")
    assert conv["status"] == "rerouting" and conv["reroute"] == "dead letter" and "owner" not in conv
    assert rds.zscore(f"{P}timers", "31") is not None
    # the conversation's next delivery proceeds, then the partner is told the work was taken back
    wait_for(lambda: states(rds, [after]) == ["delivered"], 15, "the next delivery of the conversation")
    revoked = wait_for(lambda: [r for r in rc.accepted() if r["body"]["type"] == "work.revoked"], 15, "work.revoked")
    assert revoked[0]["body"]["data"]["reason"] == "dead letter"
    assert [r["id"] for r in rc.accepted()][:1] == [after]
    wh.stop()


def test_kill_9_in_the_middle_of_retries_loses_nothing(tmp_path, redis_server, rds, receivers):
    rc = receivers([SECRET], lambda msg_id, n: (500, {}, 0) if n <= 2 else (200, {}, 0))
    by_conv = {str(c): [event(rds, "acme", str(c), n=k) for k in range(3)] for c in range(41, 45)}
    ids = [i for v in by_conv.values() for i in v]
    partners = [{"team": "acme", "url": rc.url, "base": "300ms", "max": "600ms"}]
    wh = Webhooks(str(tmp_path), redis_server.address, partners).start()
    wait_for(lambda: len(rc.snapshot()) >= 6, 15, "retries under way")
    wh.kill()
    assert set(states(rds, ids)) != {"delivered"}  # killed in the middle
    wh = Webhooks(str(tmp_path), redis_server.address, partners).start()
    wait_for(lambda: states(rds, ids) == ["delivered"] * len(ids), 60, "every delivery delivered after restart")
    assert set(a["id"] for a in rc.accepted()) == set(ids)
    by_first = {}
    for a in rc.accepted():
        by_first.setdefault(a["id"], a)
    for conv, v in by_conv.items():  # the first acceptance of each, in the order written
        got = sorted(v, key=lambda i: by_first[i]["at"])
        assert got == v, conv
    assert all(r["verified"] == [True] for r in rc.snapshot())
    wh.stop()


def test_two_senders_share_the_work_each_delivery_once(tmp_path, redis_server, rds, receivers):
    rc = receivers([SECRET], lambda msg_id, n: (200, {}, 0.05))
    partners = [{"team": "acme", "url": rc.url}]
    a = Webhooks(str(tmp_path), redis_server.address, partners, name="a").start()
    b = Webhooks(str(tmp_path), redis_server.address, partners, name="b").start()
    by_conv = {str(c): [event(rds, "acme", str(c), n=k) for k in range(4)] for c in range(51, 56)}
    ids = [i for v in by_conv.values() for i in v]
    wait_for(lambda: states(rds, ids) == ["delivered"] * len(ids), 30, "every delivery delivered")
    assert sorted(r["id"] for r in rc.snapshot()) == sorted(ids)  # each sent once, by one of them
    in_order_and_once(rc, by_conv)
    # entries are read and acknowledged in one step, so all read as one consumer and none piles up
    consumers = rds.xinfo_consumers(f"{P}inbox:team:acme", "webhooks")
    assert [(c["name"], c["pending"]) for c in consumers] == [("omni-webhooks", 0)]
    a.stop()
    b.stop()


def test_the_standard_webhooks_vector(tmp_path):
    """The published vector (standard-webhooks' own tests, ../shared/fixtures/standard-webhooks), read from the
    fixture: the receiver's Python verifier and omni-webhooks --sign both give the published signature, and
    the fixture's negative cases are refused."""
    with open(os.path.join(FIXTURES, "standard-webhooks", "sign-vector.json")) as f:
        v = json.load(f)
    secret, msg_id, ts, body = v["secret"], v["webhook-id"], v["webhook-timestamp"], v["body"].encode()
    expected = v["webhook-signature"]
    assert secret == SECRET  # the receivers of these tests check every delivery with the vector's secret
    assert sign(secret, msg_id, ts, body) == expected
    cases = v["also_from_the_same_tests"]
    several = next(h for k, h in cases.items() if k.startswith("several signatures"))
    assert verify(secret, msg_id, ts, body, several.replace("<the valid one>", expected[len("v1,"):]))
    assert not verify(secret, msg_id, ts, body, several.replace(" v1,<the valid one>", ""))
    assert not verify(secret, msg_id, ts, body, cases["an invalid signature for the same inputs"])
    path = tmp_path / "secret"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    out = subprocess.run([os.path.join(BIN, "omni-webhooks"), "--sign", str(path), msg_id, ts], input=body,
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().strip() == expected


def test_check_config_names_file_line_column(tmp_path):
    good = tmp_path / "good.secret"
    good.write_text(SECRET + "\n")
    good.chmod(0o600)
    bad = tmp_path / "bad.secret"
    bad.write_text("not-a-webhook-secret\n")
    bad.chmod(0o600)
    cfg = tmp_path / "w.yaml"
    cfg.write_text("\n".join([
        "redis:",
        "  address: unix:/tmp/x.sock",
        "partners:",
        "  - team: acme",
        "    url: http://partner.example/hook",       # plain http without insecure_http
        "    secrets: [good.secret]",
        "  - team: beta",
        "    url: ftp://partner.example/",            # not http(s)
        "    secrets: [bad.secret, missing.secret]",
        "    max_attempts: 0",
        "  - team: acme",
        "    url: https://x.example/",
        "    secrets: [good.secret]",
    ]) + "\n")
    out = subprocess.run([os.path.join(BIN, "omni-webhooks"), "--check-config", str(cfg)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    want = [
        rf"^{cfg}:4:5: partners\[0\]: url http://partner.example/hook is plain http",
        rf"^{cfg}:8:10: partners\[1\].url: \"ftp://partner.example/\" is not an http\(s\) URL",
        rf"^{cfg}:9:15: partners\[1\].secrets\[0\]: bad.secret does not hold a whsec_ secret",
        rf"^{cfg}:9:27: partners\[1\].secrets\[1\]: .*missing.secret: No such file",
        rf"^{cfg}:10:19: partners\[1\].max_attempts: 0 is below the minimum 1",
        rf"^{cfg}:11:11: partners\[2\].team: acme is already partners\[0\]",
    ]
    for w in want:
        assert any(re.search(w, line) for line in lines), (w, out.stderr)
    cfg.write_text(f"redis: {{address: 'unix:/tmp/x.sock'}}\npartners:\n  - {{team: acme, url: 'https://a.example/', "
                   f"secrets: [{good}]}}\n")
    out = subprocess.run([os.path.join(BIN, "omni-webhooks"), "--check-config", str(cfg)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == "configuration OK", out.stderr
    # the Redis password is a secret too: the config names where it is, never the password
    cfg.write_text(f"redis: {{address: 'unix:/tmp/x.sock', password: 'env:OMNI_TEST_NO_SUCH_VAR'}}\npartners:\n"
                   f"  - {{team: acme, url: 'https://a.example/', secrets: [{good}]}}\n")
    out = subprocess.run([os.path.join(BIN, "omni-webhooks"), "--check-config", str(cfg)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1 and re.search(rf"^{cfg}:1:\d+: redis.password: .*OMNI_TEST_NO_SUCH_VAR", out.stderr,
                                             re.M), out.stderr
    out = subprocess.run([os.path.join(BIN, "omni-webhooks"), "--check-config", str(cfg)], capture_output=True,
                         text=True, timeout=30, env=dict(os.environ, OMNI_TEST_NO_SUCH_VAR="pw"))
    assert out.returncode == 0, out.stderr


def test_an_https_endpoint_is_verified_against_the_system_cas_or_ca_file(tmp_path, redis_server, rds, receivers):
    """docs/webhooks.md "What to answer": a partner's TLS certificate is verified (its chain and the url's
    name). One signed by a private CA fails every attempt as a network failure (not sent: the receiver never
    sees it) until the partner's ca_file names that CA; then it is delivered, signed, over TLS. A ca_file
    that cannot be read is an error at its key."""
    cert, key = str(tmp_path / "partner.crt"), str(tmp_path / "partner.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    untrusted = receivers([SECRET], lambda msg_id, n: (200, {}, 0), tls=(cert, key))
    trusted = receivers([SECRET], lambda msg_id, n: (200, {}, 0), tls=(cert, key))
    assert untrusted.url.startswith("https://localhost:")
    wh = Webhooks(str(tmp_path), redis_server.address,
                  [{"team": "acme", "url": untrusted.url, "max_attempts": 2, "base": "50ms", "max": "50ms"},
                   {"team": "beta", "url": trusted.url, "ca_file": "partner.crt"}],  # relative to the config
                  metrics_port=free_port()).start()
    a = delivery_of(rds, "acme", event(rds, "acme", "1"))
    b = delivery_of(rds, "beta", event(rds, "beta", "1"))
    wait_for(lambda: states(rds, [a, b]) == ["dead", "delivered"], 20, "acme's dead, beta's delivered")
    w = rds.hgetall(f"{P}webhook:{a}")
    assert w["last_status"] == "0" and "certificate" in w["last_error"], w
    assert not untrusted.snapshot()
    got = trusted.accepted()
    assert [q["id"] for q in got] == [b] and got[0]["verified"] == [True]
    wh.stop()
    cfg = tmp_path / "w.yaml"
    cfg.write_text(f"redis: {{address: 'unix:/tmp/x.sock'}}\npartners:\n  - team: acme\n    url: https://a.example/\n"
                   f"    secrets: [{tmp_path}/acme-0.secret]\n    ca_file: no-such.crt\n")
    out = subprocess.run([os.path.join(BIN, "omni-webhooks"), "--check-config", str(cfg)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1 and re.search(rf"^{cfg}:6:14: partners\[0\].ca_file: .*no-such.crt: No such file",
                                             out.stderr, re.M), out.stderr


def test_urls_with_a_path_a_query_a_port_and_an_ipv6_literal_are_posted_to_as_written(tmp_path, redis_server, rds):
    """A partner's url is used as written: the request line carries its path and query (percent-escapes
    kept), Host its host and port, an IPv6 literal in brackets."""
    ok = lambda c, n: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") or True
    v4 = RawEndpoint(ok)
    try:
        v6 = RawEndpoint(ok, ipv6=True)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port4, port6 = v4.url.split(":")[2].split("/")[0], v6.url.split("]:")[1].split("/")[0]
    urls = {"q": f"http://127.0.0.1:{port4}/partners/acme/hook?token=a%20b&x=1", "v6": f"http://[::1]:{port6}/h?k=v"}
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": k, "url": f"'{u}'"} for k, u in urls.items()]).start()
    ids = {k: delivery_of(rds, k, event(rds, k, "1")) for k in urls}
    wait_for(lambda: states(rds, ids.values()) == ["delivered", "delivered"], 15, "both delivered")
    (_, h4), = v4.requests
    (_, h6), = v6.requests
    assert h4.startswith(b"POST /partners/acme/hook?token=a%20b&x=1 HTTP/1.1\r\n") and \
        f"\r\nHost: 127.0.0.1:{port4}\r\n".encode() in h4, h4
    assert h6.startswith(b"POST /h?k=v HTTP/1.1\r\n") and f"\r\nHost: [::1]:{port6}\r\n".encode() in h6, h6
    wh.stop()
    v4.close()
    v6.close()


def test_a_url_no_attempt_could_be_sent_to_is_refused_at_its_key(tmp_path):
    """A partner's url is parsed as each attempt parses it (libcurl's URL parser), when the config is read: one
    no attempt could be sent to (a space, a port 0, past 65535 or not a number, no host, a broken IPv6 literal) is
    an error at its key (file, line, column), not found out as a dead letter after max_attempts; so is one
    carrying a user or password (a secret written in the config and its logs); a path, a query, a port and an
    IPv6 literal are fine."""
    good = tmp_path / "good.secret"
    good.write_text(SECRET + "\n")
    good.chmod(0o600)
    bad = ["https://exa mple.com/hook", "https://partner.example:99999/hook", "https://:8443/hook",
           "https://[::1/hook", "https://partner.example:12ab/hook", "https://bob:hunter2@partner.example/hook",
           "https://bob@partner.example/hook", "https://partner.example:0/hook"]
    fine = ["https://partner.example/a/b?x=1&y=a%20b", "https://partner.example:8443/hook",
            "https://[2001:db8::1]:8443/hook?k=v", "https://127.0.0.1/hook"]
    lines = ["redis:", "  address: unix:/tmp/x.sock", "partners:"]
    for i, u in enumerate(bad + fine):
        lines += [f"  - team: t{i}", f"    url: '{u}'", f"    secrets: [{good}]"]
    cfg = tmp_path / "w.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    out = subprocess.run([os.path.join(BIN, "omni-webhooks"), "--check-config", str(cfg)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1, out.stdout + out.stderr
    for i, u in enumerate(bad):
        why = rf"\"{re.escape(u)}\" is not a URL" if "@" not in u else r"credentials in the url \(USER\[:PASSWORD\]@\)"
        want = rf"^{re.escape(str(cfg))}:{5 + 3 * i}:10: partners\[{i}\].url: {why}"
        assert re.search(want, out.stderr, re.M), (u, out.stderr)
    assert "hunter2" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == len(bad) + 1, out.stderr  # + "N configuration errors"


def test_docs_tell_the_truth():
    """docs/webhooks.md: its example request is signed as shown, its verifier accepts it, and its
    configuration list is omni-webhooks --config-reference."""
    doc = open(os.path.join(ROOT, "docs", "webhooks.md")).read()
    ex = re.search(r"webhook-id: (\S+)\nwebhook-timestamp: (\S+)\nwebhook-signature: (\S+)\n\n(\{.*\})\n", doc)
    msg_id, ts, sig, body = ex.groups()
    assert sign(SECRET, msg_id, ts, body.encode()) == sig
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    scope = {}
    exec(code, scope)
    headers = {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": "v1,bad " + sig}
    assert scope["verify"](SECRET, headers, body.encode(), tolerance=10 ** 10)
    assert not scope["verify"](SECRET, dict(headers, **{"webhook-signature": "v1,bad"}), body.encode(),
                               tolerance=10 ** 10)
    ref = subprocess.run([os.path.join(BIN, "omni-webhooks"), "--config-reference"], capture_output=True,
                         text=True, timeout=30).stdout
    listed = doc.split("--config-reference (tests/integration/test_webhooks.py checks it) -->\n")[1]
    assert listed.split("<!-- end of the reference -->")[0] == ref


def test_through_the_router_a_dead_letter_sends_the_work_to_the_next_target(tmp_path, redis_server, rds,
                                                                           receivers):
    """End to end: the router assigns work to the partner team bpo (test_routing.py's policy), its inbox entry
    is delivered, the partner's endpoint keeps failing, the delivery is dead-lettered, and the router gives
    the work to the rule's next target (core) with bpo declined."""
    from harness import Peer, Router, message
    from test_routing import POLICY
    rc = receivers([SECRET], lambda msg_id, n: (503, {"Retry-After": "0"}, 0))
    router = Router(str(tmp_path / "router"), redis_server.address, policy=POLICY).start()
    peer = Peer(router.endpoint)
    wh = Webhooks(str(tmp_path), redis_server.address,
                  [{"team": "bpo", "url": rc.url, "max_attempts": 2, "base": "50ms", "max": "100ms"}]).start()
    peer.submit(message("wh1", frm="sky@example.com", text="where is my order"))
    assert peer.recv() == ["OMNI/1", "ACK", "wh1"]
    conv = rds.hget(f"{P}msg:wh1", "conversation")
    first = wait_for(lambda: [r for r in rc.snapshot() if r["body"]["type"] == "work.assigned"], 15,
                     "the partner sent work.assigned")[0]
    assert first["body"]["data"]["conversation"] == conv and first["body"]["data"]["team"] == "bpo"
    assert first["verified"] == [True]
    moved = wait_for(lambda: (lambda h: h if h.get("team") == "core" else None)(
        rds.hgetall(f"{P}conversation:{conv}")), 20, "the work re-routed to core")
    assert moved["owner"].startswith("agent:"), moved
    assert "team:bpo" in rds.smembers(f"{P}conversation:{conv}:declined")
    assert rds.hget(f"{P}webhook:{first['id']}", "state") == "dead"
    assert rds.hget(f"{P}webhook:{first['id']}", "rerouted") == "1"
    # explain: whom it left and why, and the partner not called eligible by the plan that moved it on
    out = router.ctl("explain", "wh1").stdout
    assert "moved from team:bpo (target 0): the partner's webhook deliveries failed (dead letter)" in out, out
    assert "team bpo: cannot take it now: gave this conversation back (rejected it, or its webhook deliveries " \
           "failed)" in out, out
    wh.stop()
    peer.close()
    router.stop()


def test_through_the_router_a_masking_partner_never_receives_the_customers_identity(tmp_path, redis_server, rds,
                                                                                     receivers):
    """DESIGN.md "Partners and agents", docs/delivery.md "Masking": bpo's contract has mask_contact, so what
    its endpoint receives has the customer's address as s***@example.com, no display name, the text as
    written, and the conversation id as it is; the identity appears in no byte of any delivery."""
    from harness import Peer, Router, message
    from test_routing import POLICY
    rc = receivers([SECRET], lambda msg_id, n: (200, {}, 0))
    router = Router(str(tmp_path / "router"), redis_server.address, policy=POLICY).start()
    peer = Peer(router.endpoint)
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "bpo", "url": rc.url}]).start()
    peer.submit(message("mk1", frm="sky.walker@example.com", text="where is my order"))
    assert peer.recv() == ["OMNI/1", "ACK", "mk1"]
    conv = rds.hget(f"{P}msg:mk1", "conversation")
    wait_for(lambda: rc.accepted(), 15, "work.assigned delivered")
    peer.submit(message("mk2", frm="sky.walker@example.com", text="again, Sky Walker here: ünïcode ✓",
                        **{"from": {"id": "sky.walker@example.com", "name": "Sky Walker"}}))
    assert peer.recv() == ["OMNI/1", "ACK", "mk2"]
    msg = wait_for(lambda: [q for q in rc.accepted() if q["body"]["type"] == "work.message"], 15,
                   "work.message delivered")[0]
    m = msg["body"]["data"]["message"]
    assert (msg["body"]["data"]["conversation"], m["id"], m["from"], m["text"]) == \
        (conv, "mk2", {"id": "s***@example.com"}, "again, Sky Walker here: ünïcode ✓"), m
    assert all(b"sky.walker" not in q["raw"] and q["verified"] == [True] for q in rc.snapshot())
    wh.stop()
    peer.close()
    router.stop()


def test_an_entry_whose_data_is_not_json_is_dead_with_the_reason_and_the_next_proceeds(tmp_path, redis_server, rds,
                                                                                      receivers):
    rc = receivers([SECRET], lambda msg_id, n: (204, {}, 0))
    eid = rds.xadd(f"{P}inbox:team:acme", {"type": "work.message", "conversation": "61", "data": "{not json"})
    ok = event(rds, "acme", "61", "work.message", text="fine")
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": rc.url}]).start()
    wait_for(lambda: states(rds, [ok]) == ["delivered"], 15, "the next entry delivered")
    bad = rds.hgetall(f"{P}webhook:msg_{eid}")
    assert bad["state"] == "dead" and bad["last_error"] == f"inbox entry {eid}: data is not JSON"
    assert [r["id"] for r in rc.snapshot()] == [ok]
    wh.stop()


def test_an_entry_missing_a_field_or_whose_data_is_not_an_object_is_dead_with_the_reason(tmp_path, redis_server,
                                                                                         rds, receivers):
    """docs/delivery.md "The inbox": an entry has type, conversation and data, the event's JSON object. One
    without one of them, or whose data is JSON but not an object, is not sent (a partner would get a body
    that breaks the contract): dead at once, last_error naming the entry and what is wrong, and the
    conversation's next event proceeds."""
    rc = receivers([SECRET], lambda msg_id, n: (204, {}, 0))
    inbox = f"{P}inbox:team:acme"
    good = json.dumps({"conversation": "62", "at": 1})
    bad = {rds.xadd(inbox, {"type": "work.message", "conversation": "62", "data": "[1, 2]"}):
           "data is not a JSON object",
           rds.xadd(inbox, {"type": "work.message", "conversation": "62", "data": "42"}): "data is not a JSON object",
           rds.xadd(inbox, {"type": "work.message", "conversation": "62", "data": "null"}): "data is not a JSON object",
           rds.xadd(inbox, {"type": "work.message", "conversation": "62", "data": "  \"x\""}):
           "data is not a JSON object",
           rds.xadd(inbox, {"conversation": "62", "data": good}): "no type",
           rds.xadd(inbox, {"type": "", "conversation": "62", "data": good}): "no type",
           rds.xadd(inbox, {"type": "work.message", "data": good}): "no conversation",
           rds.xadd(inbox, {"type": "work.message", "conversation": "62"}): "no data",
           rds.xadd(inbox, {"type": "work.message", "conversation": "62", "data": ""}): "no data"}
    ok = event(rds, "acme", "62", "work.message", text="fine")
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": rc.url}]).start()
    wait_for(lambda: states(rds, [ok]) == ["delivered"], 15, "the next entry delivered")
    for eid, why in bad.items():
        w = rds.hgetall(f"{P}webhook:msg_{eid}")
        assert (w["state"], w["last_error"]) == ("dead", f"inbox entry {eid}: {why}"), w
        assert rds.zscore(f"{P}webhooks:dead", f"msg_{eid}") is not None
    assert rds.hget(f"{P}webhooks:endpoint:acme", "dead") == str(len(bad))
    assert [r["id"] for r in rc.snapshot()] == [ok]
    wh.stop()


def test_two_partners_entries_with_the_same_id_are_both_delivered_each_to_its_own(tmp_path, redis_server, rds,
                                                                                    receivers):
    """Entry ids are per stream: two partners' inbox entries written in the same millisecond share one. Each
    partner still gets its own event, once (the second one's delivery id has its team added)."""
    ra = receivers([SECRET], lambda msg_id, n: (200, {}, 0))
    rb = receivers([SECRET], lambda msg_id, n: (200, {}, 0))
    same = "1764547200000-0"
    for team, conv in (("acme", "71"), ("beta", "72")):
        rds.xadd(f"{P}inbox:team:{team}", {"type": "work.assigned", "conversation": conv,
                                           "data": json.dumps({"conversation": conv, "team": team})}, id=same)
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": ra.url},
                                                        {"team": "beta", "url": rb.url}]).start()
    wait_for(lambda: len(ra.accepted()) == 1 and len(rb.accepted()) == 1, 15, "one delivery to each partner")
    got = {"acme": ra.snapshot(), "beta": rb.snapshot()}
    ids = {team: {r["id"] for r in reqs} for team, reqs in got.items()}
    assert ids["acme"] | ids["beta"] == {f"msg_{same}", f"msg_{same}.acme"} or \
        ids["acme"] | ids["beta"] == {f"msg_{same}", f"msg_{same}.beta"}
    for team, conv in (("acme", "71"), ("beta", "72")):
        (delivery,) = ids[team]
        assert got[team][0]["body"]["data"]["conversation"] == conv
        assert rds.hget(f"{P}webhook:{delivery}", "team") == team
        assert rds.hget(f"{P}webhook:{delivery}", "state") == "delivered"
    wh.stop()


def test_sigterm_lets_an_attempt_in_flight_finish_and_records_it(tmp_path, redis_server, rds, receivers):
    rc = receivers([SECRET], lambda msg_id, n: (200, {}, 1.0), timeout=2.0)
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": rc.url, "timeout": "2s"}]).start()
    one = event(rds, "acme", "71")
    wait_for(lambda: rc.snapshot(), 15, "the attempt under way")
    wh.proc.send_signal(signal.SIGTERM)
    assert wh.proc.wait(timeout=10) == 0, wh.log()
    assert "attempts unrecorded" not in wh.log()
    assert states(rds, [one]) == ["delivered"]  # recorded before it exited: not sent again
    wh.kill()


def test_a_backlog_larger_than_one_batch_is_taken_at_once(tmp_path, redis_server, rds, receivers):
    rc = receivers([SECRET], lambda msg_id, n: (200, {}, 0))
    ids = [event(rds, "acme", str(1000 + k)) for k in range(250)]
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": rc.url}], poll="5s").start()
    # one poll (the first, at start): every entry taken, not 100 per poll
    wait_for(lambda: rds.exists(*[f"{P}webhook:{i}" for i in ids]) == len(ids), 4, "the whole backlog taken")
    assert rds.xpending(f"{P}inbox:team:acme", "webhooks")["pending"] == 0
    wh.stop()


def test_redis_restarted_in_the_middle_deliveries_resume(tmp_path, redis_server, rds, receivers):
    rc = receivers([SECRET], lambda msg_id, n: (500, {}, 0) if n == 1 else (200, {}, 0))
    by_conv = {str(c): [event(rds, "acme", str(c), n=k) for k in range(3)] for c in range(81, 84)}
    ids = [i for v in by_conv.values() for i in v]
    wh = Webhooks(str(tmp_path), redis_server.address,
                  [{"team": "acme", "url": rc.url, "base": "300ms", "max": "300ms"}]).start()
    wait_for(lambda: len(rc.snapshot()) >= 3, 15, "deliveries under way")
    redis_server.stop()
    redis_server.start()  # from its append-only file
    rds = redis_server.client()
    wait_for(lambda: states(rds, ids) == ["delivered"] * len(ids), 40, "every delivery delivered after the restart")
    assert set(a["id"] for a in rc.accepted()) == set(ids)
    for conv, v in by_conv.items():
        firsts = {}
        for a in rc.accepted():
            firsts.setdefault(a["id"], a["at"])
        assert sorted(v, key=firsts.get) == v, conv
    wh.stop()


def test_router_and_sender_killed_in_the_middle_of_retries_every_delivery_completes(tmp_path, redis_server, rds,
                                                                                  receivers):
    """End to end with kill -9 of both: the router assigns several conversations to the partner bpo (its inbox
    entries are written with each decision), the endpoint fails twice per delivery, and omni-webhooks and the
    router are SIGKILLed while the retries are under way. After both restart, every delivery arrives once per
    webhook-id, in order per conversation."""
    from harness import Peer, Router, message
    from test_routing import POLICY
    rc = receivers([SECRET], lambda msg_id, n: (500, {}, 0) if n <= 2 else (200, {}, 0))
    router = Router(str(tmp_path / "router"), redis_server.address, policy=POLICY).start()
    peer = Peer(router.endpoint)
    partners = [{"team": "bpo", "url": rc.url, "base": "300ms", "max": "600ms"}]
    wh = Webhooks(str(tmp_path), redis_server.address, partners).start()
    convs = []
    for i in range(2):  # bpo holds two at once (its contract): both go to it
        peer.submit(message(f"rk{i}", frm=f"rk{i}@example.com", text="where is my order"))
        assert peer.recv() == ["OMNI/1", "ACK", f"rk{i}"]
        convs.append(rds.hget(f"{P}msg:rk{i}", "conversation"))
    for i in range(2):  # a second message in each: a work.message event behind the work.assigned
        peer.submit(message(f"rk{i}b", frm=f"rk{i}@example.com", text="any news?"))
        assert peer.recv() == ["OMNI/1", "ACK", f"rk{i}b"]
    wait_for(lambda: len(rc.snapshot()) >= 3, 15, "retries under way")
    wh.kill()
    router.kill()
    ids = [i for i in rds.keys(f"{P}webhook:*") if i.count(":") == 2]
    assert set(states(rds, [i.split(":", 2)[2] for i in ids])) != {"delivered"}  # killed in the middle
    router = Router(str(tmp_path / "router"), redis_server.address, policy=POLICY).start()
    wh = Webhooks(str(tmp_path), redis_server.address, partners).start()
    want = {c: [e for e, _ in sorted(((e, f) for e, f in rds.xrange(f"{P}inbox:team:bpo")
                                      if f["conversation"] == c))] for c in convs}
    assert all(len(v) == 2 for v in want.values()), want  # work.assigned and work.message each
    all_ids = ["msg_" + e for v in want.values() for e in v]
    wait_for(lambda: states(rds, all_ids) == ["delivered"] * len(all_ids), 60, "every delivery after the restarts")
    accepted = [a["id"] for a in rc.accepted()]
    assert sorted(accepted) == sorted(all_ids), accepted  # once per webhook-id
    for c, entries in want.items():
        assert [a for a in accepted if a in ["msg_" + e for e in entries]] == ["msg_" + e for e in entries], c
    assert all(r["verified"] == [True] for r in rc.snapshot())
    wh.stop()
    peer.close()
    router.stop()


def test_metrics_count_deliveries_failures_retries_and_dead_letters(tmp_path, redis_server, rds, receivers):
    """GET /metrics (webhooks.metrics_listen), parsed by prometheus_client: the counters follow what happened."""
    port = free_port()
    failing = set()
    rc = receivers([SECRET], lambda msg_id, n: (503, {}, 0) if msg_id in failing else (200, {}, 0))
    partner_owns(rds, "acme", "41")
    doomed = event(rds, "acme", "41")
    failing.add(doomed)
    after = event(rds, "acme", "41", "work.message", text="still there?")
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": rc.url, "max_attempts": 3}],
                  metrics_port=port).start()
    wait_for(lambda: states(rds, [after]) == ["delivered"], 15, "the dead letter, then the next delivery")
    revoked = wait_for(lambda: [r for r in rc.accepted() if r["body"]["type"] == "work.revoked"], 15, "work.revoked")
    assert len(revoked) == 1
    m = wait_for(lambda: (lambda m: m if m[("omnirouter_webhook_inflight", ())] == 0 else None)(scrape(port)), 10,
                 "nothing in flight")
    assert m[("omnirouter_webhook_attempts_total", ())] == 5  # 3 for the doomed one, the next, work.revoked
    assert m[("omnirouter_webhook_deliveries_total", ())] == 2
    assert m[("omnirouter_webhook_failures_total", (("reason", "5xx"),))] == 3
    assert m[("omnirouter_webhook_failures_total", (("reason", "network"),))] == 0
    assert m[("omnirouter_webhook_retries_total", ())] == 2
    assert m[("omnirouter_webhook_dead_letters_total", ())] == 1
    assert m[("omnirouter_webhook_redis_up", ())] == 1
    assert m[("omnirouter_webhook_delivery_seconds_count", ())] == 5
    assert m[("omnirouter_webhook_delivery_seconds_bucket", (("le", "+Inf"),))] == 5
    assert http_get(port, "/healthz") == (200, "ok\n") and http_get(port, "/readyz") == (200, "ready\n")
    redis_server.stop()
    status, text = wait_for(lambda: (lambda g: g if g[0] == 503 else None)(http_get(port, "/readyz")), 15,
                            "/readyz answering 503 while Redis is away")
    assert "redis unreachable" in text, text
    # its log says what it does meanwhile (not the router's "answering BUSY")
    wait_for(lambda: "delivering nothing until it is back" in open(wh.log_path).read(), 15, "the log line")
    assert "answering BUSY" not in open(wh.log_path).read()
    redis_server.start()
    wait_for(lambda: http_get(port, "/readyz")[0] == 200, 30, "/readyz ready again")
    wh.stop()


def test_an_answer_counts_by_its_status_however_its_body_comes(tmp_path, redis_server, rds):
    """docs/webhooks.md "What to answer": the answer is the status line; the body is not kept. A 200 whose body
    trickles past the timeout, never ends, is cut off, or is longer than 64 KiB is delivered at its first
    attempt, not retried (the partner took it)."""
    def trickle(c, n):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            c.sendall(b"x")
            time.sleep(0.05)

    def endless(c, n):
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(1000):
            c.sendall(b"1\r\nx\r\n")
            time.sleep(0.01)

    def cut_off(c, n):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly ten b")

    def long_body(c, n):  # 200 KiB at once, then nothing more of the 10 MB it announced
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 200 * 1024)
        time.sleep(10)

    kinds = {"trickle": trickle, "endless": endless, "cutoff": cut_off, "long": long_body}
    ends = {k: RawEndpoint(f) for k, f in kinds.items()}
    wh = Webhooks(str(tmp_path), redis_server.address,
                  [{"team": k, "url": e.url, "timeout": "2s", "max_attempts": 3} for k, e in ends.items()]).start()
    ids = {k: delivery_of(rds, k, event(rds, k, "1")) for k in kinds}
    wait_for(lambda: all(rds.hget(f"{P}webhook:{i}", "state") in ("delivered", "dead") for i in ids.values()), 30,
             "every delivery settled")
    for k, i in ids.items():
        w = rds.hgetall(f"{P}webhook:{i}")
        assert (k, w["state"], w["attempts"], w["last_status"], w["last_error"]) == (k, "delivered", "1", "200", ""), w
        assert len(ends[k].requests) == 1, k
    # past 64 KiB the rest is not waited for: delivered at once, not at the 2 s timeout
    w = rds.hgetall(f"{P}webhook:{ids['long']}")
    assert int(w["delivered_at"]) - int(w["created_at"]) < 1500, w
    wh.stop()
    for e in ends.values():
        e.close()


def test_the_backoff_schedule_is_within_its_documented_bounds_then_dead_and_rerouted(tmp_path, redis_server, rds,
                                                                                      receivers):
    """docs/webhooks.md "Retries and order": after failed attempt n the next comes a uniformly random point in
    the upper half of backoff.base x 2^(n-1), at most backoff.max; read from Redis as each attempt comes
    (next_at - last_attempt_at of the one before), so no timing of this machine is asserted. After
    max_attempts it is dead, the conversation re-routed and the partner sent a work.revoked (dead letter)."""
    seen = {}

    def script(msg_id, n):
        if n > 1:  # attempt n is in flight: the hash holds what attempt n - 1 left
            w = rds.hgetall(f"{P}webhook:{msg_id}")
            seen.setdefault(msg_id, []).append((int(w["attempts"]), int(w["next_at"]) - int(w["last_attempt_at"])))
        return 503, {}, 0

    rc = receivers([SECRET], script)
    wh = Webhooks(str(tmp_path), redis_server.address,
                  [{"team": "acme", "url": rc.url, "base": "100ms", "max": "400ms", "max_attempts": 6}]).start()
    partner_owns(rds, "acme", "70")
    i = delivery_of(rds, "acme", event(rds, "acme", "70"))
    wait_for(lambda: states(rds, [i]) == ["dead"], 30, "dead after 6 attempts")
    w = rds.hgetall(f"{P}webhook:{i}")
    assert (w["attempts"], w["last_error"], w["rerouted"]) == ("6", "HTTP 503 after 6 attempts", "1"), w
    assert [k for k, _ in seen[i]] == [1, 2, 3, 4, 5]
    for k, delay in seen[i]:
        step = min(100 * 2 ** (k - 1), 400)
        assert step / 2 <= delay <= step, (k, delay, step)
    assert rds.hget(f"{P}conversation:70", "reroute") == "dead letter"
    revoked = wait_for(lambda: [q for q in rc.snapshot() if q["body"]["type"] == "work.revoked"], 15,
                       "the partner sent a work.revoked")[0]
    assert revoked["body"]["data"]["reason"] == "dead letter" and revoked["id"] != i
    assert [q["id"] for q in rc.snapshot()].count(i) == 6
    wh.stop()


def test_a_retry_after_counts_only_on_the_final_answer_not_on_a_1xx_before_it(tmp_path, redis_server, rds):
    """docs/webhooks.md: the answer is the status line and its Retry-After. An interim 1xx (103 Early Hints,
    here with a Retry-After of an hour) before a 503 is not the answer: the 503 without one is retried after
    the backoff, not in an hour; a 100 Continue before a 200 is a delivery."""
    def early_hints(c, n):
        if n == 1:
            c.sendall(b"HTTP/1.1 103 Early Hints\r\nRetry-After: 3600\r\nLink: </a.css>; rel=preload\r\n\r\n"
                      b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        else:
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        return True

    end = RawEndpoint(early_hints)
    wh = Webhooks(str(tmp_path), redis_server.address,
                  [{"team": "acme", "url": end.url, "base": "100ms", "max": "200ms"}]).start()
    i = delivery_of(rds, "acme", event(rds, "acme", "1"))
    w = wait_for(lambda: (lambda h: h if h.get("attempts") == "1" else None)(rds.hgetall(f"{P}webhook:{i}")), 15,
                 "the first attempt recorded")
    assert w["last_status"] == "503" and int(w["next_at"]) - int(w["last_attempt_at"]) <= 200, w
    wait_for(lambda: rds.hget(f"{P}webhook:{i}", "state") == "delivered", 15, "delivered at the second attempt")
    assert rds.hget(f"{P}webhook:{i}", "attempts") == "2"
    wh.stop()
    end.close()


def test_every_status_class_and_redirects_are_not_followed(tmp_path, redis_server, rds, receivers):
    """docs/webhooks.md "What to answer": any 2xx (204, 299 too) is a delivery; a 3xx is a failed attempt and its
    Location is never followed (the target it names receives nothing); 4xx (but 410), 5xx and odd statuses are
    retried up to max_attempts, then dead with `HTTP N after N attempts`; each counted under its reason."""
    target = receivers([SECRET], lambda msg_id, n: (200, {}, 0))
    codes = [204, 299, 300, 301, 302, 303, 307, 308, 400, 404, 429, 500, 503, 599]
    ends = {c: receivers([SECRET], lambda msg_id, n, c=c: (c, {"Location": target.url}, 0)) for c in codes}
    port = free_port()
    wh = Webhooks(str(tmp_path), redis_server.address,
                  [{"team": f"t{c}", "url": e.url, "max_attempts": 2, "base": "20ms", "max": "20ms"}
                   for c, e in ends.items()], metrics_port=port).start()
    ids = {c: delivery_of(rds, f"t{c}", event(rds, f"t{c}", "1")) for c in codes}
    wait_for(lambda: all(s in ("delivered", "dead") for s in states(rds, ids.values())), 30, "every delivery settled")
    for c, i in ids.items():
        w = rds.hgetall(f"{P}webhook:{i}")
        want = ("delivered", "1", "") if c < 300 else ("dead", "2", f"HTTP {c} after 2 attempts")
        assert (c, w["state"], w["attempts"], w["last_error"]) == (c, *want), w
        assert [q["id"] for q in ends[c].snapshot()] == [i] * int(want[1])
    assert not target.snapshot()
    m = scrape(port)
    failures = {labels[0][1]: v for (name, labels), v in m.items() if name == "omnirouter_webhook_failures_total"}
    assert failures == {"network": 0, "gone": 0, "4xx": 3 * 2, "5xx": 3 * 2, "other": 6 * 2}, failures
    wh.stop()


def test_bodies_and_headers_exactly_as_documented_with_unicode_and_a_rotated_secret(tmp_path, redis_server, rds,
                                                                                     receivers):
    """docs/webhooks.md "What a partner receives": Content-Type application/json, webhook-id msg_ + the entry id
    on every retry, webhook-timestamp in seconds of the attempt, webhook-signature with one v1 per secret
    (both verify with Python's hmac, over the raw bytes); the body is type, timestamp and data byte for byte
    as the router wrote it, UTF-8 and \\u escapes alike."""
    rc = receivers([SECRET, NEXT_SECRET], lambda msg_id, n: (500, {}, 0) if n < 3 else (200, {}, 0))
    wh = Webhooks(str(tmp_path), redis_server.address,
                  [{"team": "acme", "url": rc.url, "secrets": [SECRET, NEXT_SECRET], "base": "20ms", "max": "40ms"}]
                  ).start()
    d = {"conversation": "7", "at": 1, "message": {"text": "h\u00e9llo \u2713 \U0001F600 \"q\" \\ / \u0000 \u2028",
                                                   "from": {"id": "anon-0123456789abcdef"}}}
    raws = [json.dumps(d, ensure_ascii=False), json.dumps(d), json.dumps(d, separators=(",", ":"))]
    sent = [int(time.time())]
    ids = ["msg_" + rds.xadd(f"{P}inbox:team:acme", {"type": "work.message", "conversation": "7", "data": r})
           for r in raws]
    wait_for(lambda: states(rds, ids) == ["delivered"] * 3, 30, "all three delivered")
    sent.append(int(time.time()))
    got = rc.snapshot()
    assert [q["id"] for q in got] == [i for i in ids for _ in range(3)]  # in order, the same id on each retry
    for q in got:
        raw = ids.index(q["id"])
        body = json.loads(q["raw"])
        assert q["raw"] == ('{"type":"work.message","timestamp":' + json.dumps(body["timestamp"]) + ',"data":'
                            + raws[raw] + '}').encode(), q["raw"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"]), body
        assert body["data"] == d
        assert q["content_type"] == "application/json"
        assert sent[0] <= int(q["timestamp"]) <= sent[1], q["timestamp"]
        assert q["verified"] == [True, True]
        assert len(q["signature"].split(" ")) == 2 and all(v.startswith("v1,") for v in q["signature"].split(" "))
    wh.stop()


def test_secrets_at_their_bounds_and_without_the_prefix(tmp_path, redis_server, rds, receivers):
    """docs/webhooks.md "Limits": a secret is whsec_ + padded base64 of 1..256 bytes. 1 and 256 bytes sign
    deliveries that Python's hmac verifies; 257 bytes, no whsec_ prefix, unpadded or url-safe base64 are each
    an error at its key."""
    import base64
    bad = ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + base64.b64encode(b"k" * 257).decode(),
           "whsec_" + base64.b64encode(b"k" * 31).decode().rstrip("="),
           "whsec_" + base64.urlsafe_b64encode(b"\xfb" * 30).decode(),
           "whsec_"]
    for s in bad:
        path = tmp_path / "bad.secret"
        path.write_text(s + "\n")
        path.chmod(0o600)
        cfg = tmp_path / "w.yaml"
        cfg.write_text(f"redis: {{address: 'unix:/tmp/x.sock'}}\npartners:\n  - team: acme\n"
                       f"    url: https://a.example/\n    secrets: [{path}]\n")
        out = subprocess.run([os.path.join(BIN, "omni-webhooks"), "--check-config", str(cfg)], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 1 and re.search(rf"^{cfg}:5:15: partners\[0\].secrets\[0\]: ", out.stderr, re.M), \
            (s, out.stderr)
    one, most = "whsec_" + base64.b64encode(b"\x01").decode(), "whsec_" + base64.b64encode(bytes(range(256))).decode()
    rc = receivers([one, most], lambda msg_id, n: (200, {}, 0))
    wh = Webhooks(str(tmp_path), redis_server.address,
                  [{"team": "acme", "url": rc.url, "secrets": [one, most]}]).start()
    i = delivery_of(rds, "acme", event(rds, "acme", "1"))
    wait_for(lambda: states(rds, [i]) == ["delivered"], 15, "delivered")
    assert rc.accepted()[0]["verified"] == [True, True]
    wh.stop()


def test_rotating_a_secret_by_restarts_and_sighup_changes_nothing(tmp_path, redis_server, rds, receivers):
    """docs/webhooks.md "How it runs": the configuration (and the secrets) are read at start; SIGHUP is logged
    and changes nothing. Rotating a partner's secret: list the new one after the old and restart (both
    signatures), then only the new one and restart."""
    rc = receivers([SECRET, NEXT_SECRET], lambda msg_id, n: (200, {}, 0))
    seen = []
    for k, secrets in enumerate([[SECRET], [SECRET, NEXT_SECRET], [NEXT_SECRET]]):
        wh = Webhooks(str(tmp_path), redis_server.address,
                      [{"team": "acme", "url": rc.url, "secrets": secrets}]).start()
        if k == 0:
            wh.proc.send_signal(signal.SIGHUP)
            wh.wait_log(r"SIGHUP: configuration is read at start-up; restart the service to apply changes")
        i = delivery_of(rds, "acme", event(rds, "acme", str(k)))
        wait_for(lambda: states(rds, [i]) == ["delivered"], 15, "delivered")
        seen.append(next(q["verified"] for q in rc.accepted() if q["id"] == i))
        wh.stop()
    assert seen == [[True, False], [True, True], [False, True]]


def test_a_proxy_named_in_the_environment_is_used_and_no_proxy_bypasses_it(tmp_path, redis_server, rds, receivers):
    """docs/webhooks.md "Retries and order": http_proxy (libcurl's variables) sends the request through the
    proxy (absolute URL in the request line, the partner's headers unchanged); a host listed in no_proxy is
    reached directly."""
    proxy = RawEndpoint(lambda c, n: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") or True)
    rc = receivers([SECRET], lambda msg_id, n: (200, {}, 0))
    direct = receivers([SECRET], lambda msg_id, n: (200, {}, 0))
    direct_url = direct.url.replace("127.0.0.1", "localhost")
    saved = {k: os.environ.get(k) for k in ("http_proxy", "no_proxy", "NO_PROXY")}
    os.environ.update(http_proxy=proxy.url.rsplit("/", 1)[0], no_proxy="localhost")
    os.environ.pop("NO_PROXY", None)
    try:
        wh = Webhooks(str(tmp_path), redis_server.address,
                      [{"team": "acme", "url": rc.url}, {"team": "beta", "url": direct_url}]).start()
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    a = delivery_of(rds, "acme", event(rds, "acme", "1"))
    b = delivery_of(rds, "beta", event(rds, "beta", "1"))
    wait_for(lambda: states(rds, [a, b]) == ["delivered", "delivered"], 15, "both delivered")
    assert not rc.snapshot() and [q["id"] for q in direct.snapshot()] == [b]
    (_, head), = proxy.requests
    assert head.startswith(f"POST {rc.url} HTTP/1.1\r\n".encode()) and f"webhook-id: {a}\r\n".encode() in head, head
    wh.stop()
    proxy.close()


def test_another_teams_backlog_never_starves_this_senders_teams(tmp_path, redis_server, rds, receivers):
    """Several omni-webhooks on one Redis, each with its own teams: hundreds of due deliveries of acme, whose
    sender is down, come first in omni:webhooks:due, and beta's sender still delivers beta's at once."""
    failing = receivers([SECRET], lambda msg_id, n: (500, {}, 0))
    ok = receivers([SECRET], lambda msg_id, n: (200, {}, 0))
    ids = [event(rds, "acme", str(100 + k)) for k in range(300)]
    a = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": failing.url, "max_attempts": 100,
                                                        "base": "10ms", "max": "10ms"}], name="a").start()
    wait_for(lambda: rds.exists(*[f"{P}webhook:{i}" for i in ids]) == len(ids), 15, "acme's backlog taken")
    wait_for(lambda: len(failing.snapshot()) > 400, 15, "acme's deliveries failing")
    a.kill()
    assert rds.zcount(f"{P}webhooks:due", "-inf", int(time.time() * 1000) + 100) > 200  # acme's, due, unclaimed
    b = Webhooks(str(tmp_path), redis_server.address, [{"team": "beta", "url": ok.url}], name="b").start()
    mine = event(rds, "beta", "9")
    wait_for(lambda: states(rds, [mine]) == ["delivered"], 10, "beta's delivery delivered")
    assert states(rds, ids[:5]) == ["pending"] * 5  # acme's left for acme's sender
    b.stop()


def test_an_outcome_after_its_lease_ran_out_leaves_the_delivery_to_the_sender_holding_it(redis_server, rds):
    """The scripts as two senders call them: A's attempt outlives its lease, B claims the delivery again; A's
    failure, coming then, is counted but does not make the delivery due while B's attempt is in flight (two
    attempts of one delivery at once); an outcome for a delivery settled already is "settled", so a late
    one never reports (and logs and counts) a dead letter twice."""
    from lua_contract import Scripts
    lua = Scripts(rds)
    due = f"{P}webhooks:due"
    ids = [event(rds, "acme", c) for c in ("91", "92")]
    assert lua.call("webhook_take", "acme", 1000, "1970-01-01T00:00:01.000Z", 100, "omni-webhooks") == 2
    assert [r[0] for r in chunks(lua.call("webhook_claim", 1000, 10, 6000, "acme"))] == ids  # A: leases to 7000
    assert [r[0] for r in chunks(lua.call("webhook_claim", 8000, 10, 6000, "acme"))] == ids  # B: to 14000
    one, two = ids
    # A's failure of one: counted, not re-scheduled: B holds it
    assert lua.call("webhook_result", one, 8100, 503, "", 8200, 10, 1000, 7000) == ["pending", 1, 0]
    assert rds.zscore(due, one) == 14000 and rds.hget(f"{P}webhook:{one}", "attempts") == "1"
    assert lua.call("webhook_claim", 9000, 10, 6000, "acme") == []
    # B's failure, with its own lease, re-schedules it as always
    assert lua.call("webhook_result", one, 8300, 503, "", 8400, 10, 1000, 14000) == ["pending", 2, 0]
    assert rds.zscore(due, one) == 8400
    # a 2xx counts whoever's lease it came under: the partner took it
    assert lua.call("webhook_result", two, 8100, 200, "", 0, 10, 1000, 7000) == ["delivered", 1, 0]
    assert lua.call("webhook_result", two, 8200, 503, "", 8300, 10, 1000, 14000) == ["settled", 1, 0]
    # dead after its last attempt: a late outcome of another attempt is "settled", not a second dead letter
    assert lua.call("webhook_result", one, 8500, 503, "", 8600, 3, 1000, 8400) == ["dead", 3, 0]
    assert lua.call("webhook_result", one, 8600, 503, "", 8700, 3, 1000, 14000) == ["settled", 3, 0]
    assert rds.hget(f"{P}webhooks:endpoint:acme", "dead") == "1"


def chunks(flat, n=5):
    return [flat[i:i + n] for i in range(0, len(flat), n)]


def test_a_410_dead_letters_the_teams_deliveries_waiting_for_a_retry_at_once(tmp_path, redis_server, rds,
                                                                             receivers):
    """docs/webhooks.md "What to answer": after a 410 every later delivery of the team is dead-lettered
    without being sent and its work re-routed: one waiting out a long Retry-After too, at once, not an hour
    later; and one whose attempt was in flight when the 410 came, once it fails."""
    waiting, in_flight, gone = set(), set(), set()

    def script(msg_id, n):
        if msg_id in waiting:
            return 503, {"Retry-After": "3600"}, 0
        if msg_id in in_flight:
            return 503, {}, 1.0
        return 410, {}, 0
    rc = receivers([SECRET], script, timeout=3.0)
    for conv in ("81", "82", "83"):
        partner_owns(rds, "acme", conv)
    waiting.add(event(rds, "acme", "81"))
    wh = Webhooks(str(tmp_path), redis_server.address, [{"team": "acme", "url": rc.url, "timeout": "3s"}]).start()
    (first,) = waiting
    wait_for(lambda: rds.hget(f"{P}webhook:{first}", "attempts") == "1", 15, "the first failed, Retry-After 1 h")
    in_flight.add(event(rds, "acme", "82"))
    (slow,) = in_flight
    wait_for(lambda: rc.counts.get(slow) == 1, 15, "an attempt in flight")
    gone.add(event(rds, "acme", "83"))
    (last,) = gone
    wait_for(lambda: states(rds, [first, slow, last]) == ["dead"] * 3, 10, "all three dead")
    for i, conv in ((first, "81"), (slow, "82"), (last, "83")):
        assert rds.hget(f"{P}webhook:{i}", "last_error") == "endpoint disabled (410)" or i == slow, i
        c = rds.hgetall(f"{P}conversation:{conv}")
        assert c["status"] == "rerouting" and c["reroute"] == "dead letter", (conv, c)
    assert rc.counts == {first: 1, slow: 1, last: 1}
    wh.stop()
