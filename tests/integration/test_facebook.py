"""omni-facebook end to end: Meta-signed Messenger webhooks into a real omnirouted on a real redis-server."""
import datetime
import hashlib
import hmac
import json
import os
import re
import time

from harness import stored_count, wait_for
from webhooks import Webhook, meta_signature

SECRET = "app-secret-0123456789abcdef"
VERIFY = "verify-me-please"


def fb_connector(tmp_path, router, extra=""):
    sec = tmp_path / "app-secret"
    sec.write_text(SECRET + "\n")
    os.chmod(sec, 0o600)
    # A relative secret file is relative to the config file's directory (tmp/facebook/).
    conn = Webhook(tmp_path, "facebook", router.endpoint,
                   {"app_secret": "../app-secret", "verify_token": "env:FB_VERIFY"}, extra=extra, env={"FB_VERIFY": VERIFY})
    return conn


def post(conn, doc, secret=SECRET, signature=None, raw=None):
    body = raw if raw is not None else json.dumps(doc).encode()
    headers = {"Content-Type": "application/json"}
    sig = signature if signature is not None else meta_signature(secret, body)
    if sig:
        headers["X-Hub-Signature-256"] = sig
    return conn.request("POST", "/facebook", body, headers)


def text_event(mid, sender="1254459154682919", text="hello", ts=1700000000000, **message):
    m = {"mid": mid, "text": text}
    m.update(message)
    return {"sender": {"id": sender}, "recipient": {"id": "682498171943165"}, "timestamp": ts, "message": m}


def envelope(*entries):
    return {"object": "page", "entry": [{"id": "682498171943165", "time": 1700000000000, "messaging": list(e)}
                                        for e in entries]}


def wait_stored(router, ids, timeout=20):
    wait_for(lambda: all(router.redis.exists(f"omni:msg:{i}") for i in ids), timeout, f"messages {ids}")


def stored_doc(router, id):
    return json.loads(router.redis.hget(f"omni:msg:{id}", "json"))


def test_messenger_webhooks_end_to_end(router, tmp_path):
    conn = fb_connector(tmp_path, router)
    r = conn.check()
    assert r.returncode == 0, r.stderr
    conn.start()
    try:
        # The subscription check.
        q = "/facebook?hub.mode=subscribe&hub.verify_token=" + VERIFY + "&hub.challenge=1158201444"
        status, _, body = conn.request("GET", q)
        assert (status, body) == (200, b"1158201444")
        assert conn.request("GET", "/facebook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")[0] == 403
        assert conn.request("GET", "/facebook?hub.mode=subscribe")[0] == 400
        status, headers, _ = conn.request("PUT", "/facebook", b"{}")
        assert status == 405 and headers.get("allow") == "GET, POST", headers  # RFC 9110: what is allowed

        # Two entries, several events: messages, a quick reply, a postback, an attachment; an echo, a delivery
        # and a read that are not routed.
        doc = envelope(
            [text_event("m_1", text="where is my parcel?"),
             text_event("m_echo", sender="682498171943165", text="our answer", is_echo=True),
             {"sender": {"id": "1254459154682919"}, "recipient": {"id": "682498171943165"},
              "delivery": {"mids": ["m_echo"], "watermark": 1700000000001}},
             {"sender": {"id": "1254459154682919"}, "recipient": {"id": "682498171943165"},
              "read": {"watermark": 1700000000002}},
             text_event("m_2", text="Yes", quick_reply={"payload": "CONFIRM_ORDER_7"})],
            [{"sender": {"id": "2254459154682919"}, "recipient": {"id": "682498171943165"}, "timestamp": 1700000000500,
              "postback": {"mid": "m_pb", "title": "Talk to a person", "payload": "HUMAN"}},
             text_event("m_3", sender="2254459154682919", text="",
                        attachments=[{"type": "image", "payload": {"url": "https://cdn.example/p/photo_9.jpg?x=1"}}])])
        status, _, body = post(conn, doc)
        assert (status, body) == (200, b"EVENT_RECEIVED")
        ids = ["facebook:m_1", "facebook:m_2", "facebook:m_pb", "facebook:m_3"]
        wait_stored(router, ids)
        n = stored_count(router.redis)
        assert not router.redis.exists("omni:msg:facebook:m_echo")
        m1 = stored_doc(router, "facebook:m_1")
        assert m1["from"]["id"] == "1254459154682919" and m1["text"] == "where is my parcel?"
        assert m1["received_at"] == "2023-11-14T22:13:20.000Z" and m1["to"] == "682498171943165"
        assert router.redis.hget("omni:msg:facebook:m_1", "identity") == "facebook:1254459154682919"
        assert stored_doc(router, "facebook:m_2")["meta"]["quick_reply"] == "CONFIRM_ORDER_7"
        assert stored_doc(router, "facebook:m_pb")["meta"]["postback"] == {"title": "Talk to a person",
                                                                            "payload": "HUMAN"}
        assert stored_doc(router, "facebook:m_3")["attachments"] == [
            {"name": "photo_9.jpg", "type": "image", "size": 0, "url": "https://cdn.example/p/photo_9.jpg?x=1"}]

        # Meta resends the same POST: answered, stored once.
        assert post(conn, doc)[0] == 200
        # Bad signatures: nothing forwarded.
        other = envelope([text_event("m_forged", text="forged")])
        assert post(conn, other, secret="not-the-secret")[0] == 403
        body = json.dumps(other).encode()
        assert post(conn, None, raw=body, signature=meta_signature(SECRET, body + b" "))[0] == 403
        assert post(conn, other, signature="")[0] == 401
        conn.wait_log(r"X-Hub-Signature-256 does not match the body")
        # Malformed, but signed: 400 with the place logged.
        assert post(conn, None, raw=b'{"object":"page","entry":{}}')[0] == 400
        conn.wait_log(r'malformed webhook: "entry": not an array: 400')
        assert post(conn, None, raw=b'{"object":"page"')[0] == 400
        conn.wait_log(r"malformed webhook: not JSON")
        # Another object's webhook: 200, nothing routed.
        assert post(conn, {"object": "instagram", "entry": []})[0] == 200
        # Let the resent POST reach the router, then count.
        post(conn, envelope([text_event("m_last", text="last")]))
        wait_stored(router, ["facebook:m_last"])
        assert stored_count(router.redis) == n + 1
        assert not router.redis.exists("omni:msg:facebook:m_forged")
    finally:
        conn.stop()


def test_an_odd_event_costs_itself_only_and_is_counted_invalid(router, tmp_path):
    """Valid JSON jansson alone would refuse whole (a string holding U+0000, a lone surrogate escape): the POST
    is taken, the event with the NUL skipped (logged, counted in messages_invalid_total), the half surrogate read
    as U+FFFD, and the good event beside them stored."""
    from harness import free_port, scrape_when_up
    port = free_port()
    conn = fb_connector(tmp_path, router, extra=f"metrics_listen: 127.0.0.1:{port}\n")
    conn.start()
    try:
        doc = envelope([text_event("m_ok", text="fine"), text_event("m_nul", text="NULHERE"),
                        text_event("m_half", text="HALFHERE")])
        body = json.dumps(doc).encode().replace(b"NULHERE", b"a\\u0000b").replace(b"HALFHERE", b"smile \\ud83d!")
        assert post(conn, None, raw=body)[0] == 200
        wait_stored(router, ["facebook:m_ok", "facebook:m_half"])
        assert stored_doc(router, "facebook:m_half")["text"] == "smile \ufffd!"
        conn.wait_log(r"event skipped: entry\[0\]\.messaging\[1\]: a string holds U\+0000")
        assert not router.redis.exists("omni:msg:facebook:m_nul")
        label = (("connector", "facebook"),)
        m = wait_for(lambda: scrape_when_up(port), 20, "the connector's metrics")
        assert m[("omnirouter_connector_messages_invalid_total", label)] == 1, m
    finally:
        conn.stop()


def test_ids_are_sent_normalized_and_unknown_events_cost_nothing(router, tmp_path):
    """DESIGN.md: identities are normalized (Facebook numeric user ids). A sender id Meta wrote with blanks
    around it is sent as its digits alone, in from.id as in to; a leading zero is no id (skipped, named). An
    event of a kind the connector does not route (a reaction) and an entry of "changes" beside them cost nothing
    to the rest of the POST. A timestamp that is no date (year 33658: seconds sent as microseconds) is read as
    none: the message is taken, received when it was read, not skipped. A message whose sender is the page
    itself is the page's own, dropped as an echo is."""
    conn = fb_connector(tmp_path, router).start()
    try:
        spaced = text_event("m_spaced", sender=" 1254459154682920 ")
        spaced["recipient"] = {"id": " 682498171943165"}
        doc = envelope([{"sender": {"id": "1254459154682919"}, "recipient": {"id": "682498171943165"},
                         "timestamp": 1700000000000, "reaction": {"mid": "m_x", "action": "react", "emoji": "+1"}},
                        spaced, text_event("m_zero", sender="0123"), text_event("m_fine"),
                        text_event("m_far", ts=10 ** 15),
                        text_event("m_own", sender="682498171943165", text="sent by the page itself")])
        doc["entry"].append({"id": "682498171943165", "time": 1700000000000, "changes": [{"field": "feed"}]})
        assert post(conn, doc)[:3:2] == (200, b"EVENT_RECEIVED")
        before = time.time()
        wait_stored(router, ["facebook:m_spaced", "facebook:m_fine", "facebook:m_far"])
        far = datetime.datetime.fromisoformat(stored_doc(router, "facebook:m_far")["received_at"].replace("Z", "+00:00"))
        assert abs(far.timestamp() - before) < 60, far
        d = stored_doc(router, "facebook:m_spaced")
        assert (d["from"]["id"], d["to"]) == ("1254459154682920", "682498171943165"), d
        conn.wait_log(r"event skipped: entry\[0\]\.messaging\[2\]: sender\.id: a leading zero")
        assert not router.redis.exists("omni:msg:facebook:m_zero")
        # the page's own message, though Meta did not mark it is_echo: the page is not its own customer
        conn.wait_log(r"POST /facebook: 3 message\(s\), 1 echo\(es\), 0 delivery, 0 read, 2 other, 1 skipped")
        assert not router.redis.exists("omni:msg:facebook:m_own")
    finally:
        conn.stop()


def test_the_published_signature_vector_passes_end_to_end(router, tmp_path):
    """../shared/fixtures/messenger/signature-vector.json byte for byte against a running omni-facebook with
    that secret: its header is taken (then 400: "Hello, World!" is no webhook, which shows the signature passed);
    the same header in upper-case hex too; one digit changed, or the sha1 X-Hub-Signature alone, is not."""
    from fake_x_api import FIXTURES
    with open(os.path.join(FIXTURES, "messenger", "signature-vector.json")) as f:
        vec = json.load(f)["published"]
    sec = tmp_path / "published-secret"
    sec.write_text(vec["secret"])
    os.chmod(sec, 0o600)
    conn = Webhook(tmp_path, "facebook", router.endpoint, {"app_secret": "../published-secret",
                                                          "verify_token": "env:FB_VERIFY"},
                   env={"FB_VERIFY": VERIFY}).start()
    try:
        body, header = vec["payload"].encode(), vec["expected_header"]
        assert post(conn, None, raw=body, signature=header)[0] == 400
        conn.wait_log(r"malformed webhook: not JSON")
        assert post(conn, None, raw=body, signature="sha256=" + header[7:].upper())[0] == 400
        wrong = header[:-1] + ("0" if header[-1] != "0" else "1")
        assert post(conn, None, raw=body, signature=wrong)[0] == 403
        sha1 = "sha1=" + hmac.new(vec["secret"].encode(), body, hashlib.sha1).hexdigest()
        assert conn.request("POST", "/facebook", body, {"X-Hub-Signature": sha1})[0] == 401
    finally:
        conn.stop()


def test_messenger_router_away_then_back(router, tmp_path):
    conn = fb_connector(tmp_path, router, extra="max_spooled: 3\n").start()
    try:
        router.stop()
        # One POST of two messages and one of one fill the spool (3); the next POST is refused whole.
        assert post(conn, envelope([text_event("m_a"), text_event("m_b")]))[0] == 200
        assert post(conn, envelope([text_event("m_c")]))[0] == 200
        status, headers, _ = post(conn, envelope([text_event("m_d"), text_event("m_e")]))
        assert status == 503 and headers["retry-after"] == "30"
        router.start()
        wait_stored(router, ["facebook:m_a", "facebook:m_b", "facebook:m_c"])
        assert post(conn, envelope([text_event("m_d"), text_event("m_e")]))[0] == 200  # Meta retries
        wait_stored(router, ["facebook:m_d", "facebook:m_e"])
        assert stored_count(router.redis) == 5
        # A POST of more events than max_spooled is taken whole while the spool has room: refusing it would
        # refuse every retry of it too (docs/connectors.md, "Never a lost message")
        big = [f"m_big{i}" for i in range(5)]
        assert post(conn, envelope([text_event(m) for m in big]))[0] == 200
        wait_stored(router, [f"facebook:{m}" for m in big])
    finally:
        conn.stop()


def test_samples_check_and_secrets_are_never_inline(tmp_path):
    """conf/omni-sms.yaml and conf/omni-facebook.yaml check as they are, given their credentials; a secret that
    is missing, or readable by others, is an error naming the key."""
    import subprocess
    from harness import BIN, ROOT
    creds = tmp_path / "creds"
    creds.mkdir()
    for name in ("twilio-token", "facebook-app-secret", "facebook-verify-token"):
        (creds / name).write_text("s3cret\n")
        os.chmod(creds / name, 0o600)
    env = dict(os.environ, CREDENTIALS_DIRECTORY=str(creds))

    def check(program, conf, *more, env=env):
        return subprocess.run([os.path.join(BIN, program), "--check-config", "--config", conf,
                               "-D", f"spool_dir={tmp_path / program}", *more],
                              capture_output=True, text=True, timeout=30, env=env)
    for program in ("omni-sms", "omni-facebook"):
        r = check(program, os.path.join(ROOT, "conf", program + ".yaml"))
        assert r.returncode == 0, r.stdout + r.stderr
    r = check("omni-sms", os.path.join(ROOT, "conf", "omni-sms.yaml"), env=dict(os.environ))
    assert r.returncode == 1
    assert "sms.auth_token: credential:twilio-token: $CREDENTIALS_DIRECTORY is not set" in r.stderr
    os.chmod(creds / "facebook-app-secret", 0o644)
    r = check("omni-facebook", os.path.join(ROOT, "conf", "omni-facebook.yaml"))
    assert r.returncode == 1
    assert "facebook.app_secret: " + str(creds / "facebook-app-secret") + ": readable by others (mode 0644)" in r.stderr
    r = check("omni-sms", os.path.join(ROOT, "conf", "omni-sms.yaml"), "-D", "sms.public_url=hooks.example.com")
    assert r.returncode == 1 and "sms.public_url: \"hooks.example.com\" is not an http(s) URL" in r.stderr


def test_check_config_lists_every_error_where_its_key_was_set(tmp_path):
    """--check-config lists every error of a connector's own checks, each at the key's FILE:LINE:COLUMN (or
    command line:N:1 for a -D), and a listen address that could not be bound; a refused value is not also
    "missing"; a second YAML document and a directory are errors (docs/connectors.md, "Your connector")."""
    import subprocess
    from harness import BIN

    def check(program, conf, *more):
        return subprocess.run([os.path.join(BIN, program), "--check-config", "--config", str(conf),
                               "-D", f"spool_dir={tmp_path / program}", *more],
                              capture_output=True, text=True, timeout=30)
    conf = tmp_path / "sms.yaml"
    conf.write_text("sms:\n  public_url: notaurl-at-all\n  auth_token: /nonexistent/token\n"
                    "  paths: [nosl, /ok, also-bad]\n  listen: 1.2.3.4:99999\n")
    r = check("omni-sms", conf)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f'omni-sms: {conf}:2:15: sms.public_url: "notaurl-at-all" is not an http(s) URL without query',
        f'omni-sms: {conf}:4:10: sms.paths: "nosl" does not start with /',
        f'omni-sms: {conf}:4:10: sms.paths: "also-bad" does not start with /',
        f'omni-sms: {conf}:5:11: sms.listen: "1.2.3.4:99999": the port must be 0..65535',
        f'omni-sms: {conf}:3:15: sms.auth_token: /nonexistent/token: No such file or directory'], r.stderr
    r = check("omni-sms", conf, "-D", "sms.listen=127.0.0.1:abc", "-D", "sms.public_url=https://h.example.com/t")
    assert 'omni-sms: command line:2:1: sms.listen: "127.0.0.1:abc": the port must be 0..65535' in r.stderr
    assert "public_url" not in r.stderr
    conf.write_text("sms:\n  public_url: x\n")
    r = check("omni-sms", conf)
    assert r.stderr.splitlines() == [f"omni-sms: {conf}:2:15: sms.public_url: shorter than 8 bytes",
                                     f"omni-sms: {conf}: sms.auth_token: missing (required)"], r.stderr
    two = tmp_path / "two.yaml"
    two.write_text("phonelog:\n  max_batch: 10\n---\nphonelog:\n  max_batch: 0\n")
    r = check("omni-phonelog", two)
    assert r.returncode == 1
    assert f"omni-phonelog: {two}:3:1: a second YAML document (---); a config file holds one" in r.stderr
    two.write_text("phonelog:\n  max_batch: 10\n---\nphonelog: [\n")  # a broken second one is a broken file
    r = check("omni-phonelog", two)
    assert r.returncode == 1 and f"omni-phonelog: {two}:5:1: did not find expected node content" in r.stderr, r.stderr
    r = check("omni-phonelog", tmp_path)
    assert r.returncode == 1 and r.stderr.strip() == f"omni-phonelog: {tmp_path}: cannot read: Is a directory"


def test_ready_and_status_for_systemd(router, tmp_path):
    """Type=notify: READY=1 once the listener is up and the first poll passed; STATUS= counts the webhooks by
    outcome (docs/connectors.md "Webhook connectors")."""
    import socket
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    conn = fb_connector(tmp_path, router)
    conn.env["NOTIFY_SOCKET"] = path
    seen = []

    def notified(text):
        try:
            while True:
                seen.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
        return any(text in d for d in seen)
    try:
        conn.start()
        wait_for(lambda: notified("READY=1"), 10, "READY=1")
        assert post(conn, envelope([text_event("m_status")]))[0] == 200
        assert post(conn, envelope([text_event("m_forged")]), secret="wrong")[0] == 403
        assert post(conn, None, raw=b"[]")[0] == 400
        want = (r"STATUS=.*Messenger webhooks on port \d+: 3 requests, 1 spooled in 1 fsyncs, 1 bad signatures, "
                r"1 malformed, 0 too large, 0 answered 503")
        wait_for(lambda: notified("STATUS=") and any(re.search(want, d) for d in seen), 10,
                 f"STATUS= with the counts (seen: {seen})")
    finally:
        conn.stop()
        sock.close()


def test_stickers_locations_and_ids_as_meta_writes_them(router, tmp_path):
    """Meta's current messages reference puts a sticker's id only in its attachment's payload
    ({"type": "image", "payload": {"url", "sticker_id"}}): it is meta.sticker_id as message.sticker_id was. A
    location carries no URL, only its coordinates: its attachment's url is the geo URI (RFC 5870), not nothing; an
    older fallback's link sits beside its title, its payload null; a file is named by its URL's last segment,
    percent-decoded. A sender id written as a JSON number is the same
    numeric id. Standby events (another app holds the thread) are counted and dropped (docs/connectors.md,
    omni-facebook "Events")."""
    conn = fb_connector(tmp_path, router).start()
    try:
        sticker = text_event("m_sticker", text=None, attachments=[
            {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/v/t39.1997-6/851557_369239266556155_"
                                                 "759568595_n.png?_nc_cat=1", "sticker_id": 369239263222822}}])
        del sticker["message"]["text"]
        where = text_event("m_where", text=None, attachments=[
            {"type": "location", "title": "Pinned Location",
             "payload": {"coordinates": {"lat": 48.8566141, "long": -2.3522219}}}])
        del where["message"]["text"]
        number = text_event("m_number")
        number["sender"]["id"] = 1254459154682921
        old_link = text_event("m_link", text="look", attachments=[
            {"type": "fallback", "title": "Our shop", "url": "https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example",
             "payload": None}])
        named = text_event("m_named", text="my invoice", attachments=[
            {"type": "file", "payload": {"url": "https://cdn.fbsbx.com/v/t59.2708-21/4316_n.pdf/Invoice%20M%C3%A4rz.pdf"
                                                "?_nc_cat=1&oh=00_x"}}])
        doc = envelope([sticker, where, number, old_link, named])
        # another app holds the thread (handover protocol): its standby events are not ours to route
        doc["entry"].append({"id": "682498171943165", "time": 1700000000000,
                             "standby": [text_event("m_standby", text="to the other app")]})
        assert post(conn, doc)[:3:2] == (200, b"EVENT_RECEIVED")
        wait_stored(router, ["facebook:m_sticker", "facebook:m_where", "facebook:m_number", "facebook:m_link",
                             "facebook:m_named"])
        # a file's URL ends in its own name, percent-encoded: the attachment is named as the customer named it
        assert stored_doc(router, "facebook:m_named")["attachments"][0]["name"] == "Invoice M\u00e4rz.pdf"
        assert stored_doc(router, "facebook:m_link")["attachments"] == [
            {"name": "l.php", "type": "fallback", "size": 0,
             "url": "https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example"}]
        conn.wait_log(r"POST /facebook: 5 message\(s\), 0 echo\(es\), 0 delivery, 0 read, 1 other, 0 skipped")
        assert not router.redis.exists("omni:msg:facebook:m_standby")
        d = stored_doc(router, "facebook:m_sticker")
        assert d["meta"]["sticker_id"] == 369239263222822 and d["text"] == "", d
        assert d["attachments"][0]["name"] == "851557_369239266556155_759568595_n.png"
        d = stored_doc(router, "facebook:m_where")
        assert d["attachments"] == [{"name": "location-1", "type": "location", "size": 0,
                                     "url": "geo:48.8566141,-2.3522219"}], d
        assert stored_doc(router, "facebook:m_number")["from"]["id"] == "1254459154682921"
    finally:
        conn.stop()
