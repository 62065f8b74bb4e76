"""omni-sms end to end: Twilio-signed webhooks into a real omnirouted on a real redis-server."""
import hashlib
import json
import os
import re

from harness import stored_count, wait_for
from webhooks import Twilio, Webhook, inbound, twilio_signature

TOKEN = "f00dfacecafe0123456789abcdef0123"


def sms_connector(tmp_path, router, extra="", **section):
    creds = tmp_path / "creds"
    creds.mkdir(exist_ok=True)
    (creds / "twilio-token").write_text(TOKEN + "\n")
    os.chmod(creds / "twilio-token", 0o600)
    sec = {"public_url": "https://hooks.example.com/twilio", "auth_token": "credential:twilio-token"}
    sec.update(section)
    return Webhook(tmp_path, "sms", router.endpoint, sec, extra=extra, env={"CREDENTIALS_DIRECTORY": str(creds)})


def stored(router, id):
    return router.redis.hgetall(f"omni:msg:{id}")


def wait_stored(router, ids, timeout=20):
    wait_for(lambda: all(router.redis.exists(f"omni:msg:{i}") for i in ids), timeout, f"messages {ids}")


def test_signed_sms_arrives_once_and_bad_requests_are_refused(router, tmp_path):
    from harness import free_port, scrape_when_up
    port = free_port()
    conn = sms_connector(tmp_path, router, extra=f"metrics_listen: 127.0.0.1:{port}\n")
    assert conn.check().returncode == 0, conn.check().stderr
    conn.start()
    tw = Twilio(conn, TOKEN)
    try:
        sid = "SM" + "a1" * 16
        status, headers, body = tw.post(inbound(sid, "Hi, my order #12 is late 📦"))
        assert (status, body) == (200, b"<Response/>")
        assert headers["content-type"] == "text/xml"
        # Answered only once spooled: the spool holds it durably before the router may even have it.
        wait_stored(router, ["sms:" + sid])
        doc = json.loads(stored(router, "sms:" + sid)["json"])
        assert doc["channel"] == "sms" and doc["from"]["id"] == "+14155550100" and doc["to"] == "+18005551212"
        assert doc["text"] == "Hi, my order #12 is late 📦"
        assert stored(router, "sms:" + sid)["identity"] == "phone:+14155550100"

        # Twilio resends (a timeout on its side): answered again, stored once.
        n = stored_count(router.redis)
        assert tw.post(inbound(sid, "Hi, my order #12 is late 📦"))[0] == 200
        mms = "MM" + "b2" * 16
        assert tw.post(inbound(mms, "", media=[("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
                                                "image/jpeg")]))[0] == 200
        wait_stored(router, ["sms:" + mms])
        assert stored_count(router.redis) == n + 1
        att = json.loads(stored(router, "sms:" + mms)["json"])["attachments"]
        assert att == [{"name": "ME1", "type": "image/jpeg", "size": 0,
                        "url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"}]

        # A query string is part of the signed URL, and Twilio may sign it with the port.
        q = "SM" + "c3" * 16
        assert tw.post(inbound(q), query="tenant=7&x=%2F", sign_url="https://hooks.example.com:443/twilio/sms?tenant=7&x=%2F")[0] == 200
        wait_stored(router, ["sms:" + q])

        # Bad signatures: nothing forwarded, 403 (401 without the header), logged.
        bad = "SM" + "d4" * 16
        assert tw.post(inbound(bad), sign_params=inbound(bad, "other text"))[0] == 403          # a parameter changed
        assert tw.post(inbound(bad), sign_url="https://hooks.example.com/twilio/other")[0] == 403  # another URL
        assert tw.post(inbound(bad), signature="")[0] == 401
        assert tw.post(inbound(bad), signature=twilio_signature("wrong", "https://hooks.example.com/twilio/sms",
                                                                inbound(bad)))[0] == 403
        conn.wait_log(r"X-Twilio-Signature does not match for https://hooks.example.com/twilio/sms")

        # A status callback: accepted, not a message.
        st = [("MessageSid", "SM" + "e5" * 16), ("MessageStatus", "delivered"), ("SmsStatus", "delivered"),
              ("AccountSid", "AC1")]
        assert tw.post(st, path="/sms/status")[0] == 200
        # Malformed (signed, but not a message Twilio would send): 400, and the log says what.
        assert tw.post([("MessageSid", "SM1"), ("From", "4155550100")])[0] == 400
        conn.wait_log(r'From: "4155550100" is not an E.164 number')
        m = wait_for(lambda: scrape_when_up(port), 20, "the connector's metrics")  # counted as not a valid message
        assert m[("omnirouter_connector_messages_invalid_total", (("connector", "sms"),))] == 1, m
        raw = b"Body=%ZZ"
        assert conn.request("POST", "/sms", raw, {"X-Twilio-Signature": "x"})[0] == 400
        conn.wait_log(r"malformed form body: parameter 1: value: bad escape")
        # Other paths and methods; a body over the limit.
        status, headers, _ = conn.request("GET", "/sms")
        assert status == 405 and headers.get("allow") == "POST", headers  # RFC 9110: a 405 says what is allowed
        assert conn.request("POST", "/other", b"a=1", {"X-Twilio-Signature": "x"})[0] == 404
        assert oversized_status(conn.port, BIG_BODY) == 413
        # Without a Content-Length the limit holds as the body comes; headers and request line have theirs.
        assert oversized_status(conn.port, BIG_CHUNKED_BODY) == 413
        conn.wait_log(r"body read over max_body_bytes 65536: 413")
        assert oversized_status(conn.port, OVERSIZED_HEADER) == 431
        assert body_never_ends_is_cut(conn.port)
        assert oversized_status(conn.port, OVERSIZED_URI) == 414

        # The JSON-body variant: bodySHA256 in the signed URL binds the body.
        body = json.dumps({"MessageSid": "SM" + "f6" * 16, "From": "+447911123456", "Body": "json hi"}).encode()
        h = __import__("hashlib").sha256(body).hexdigest()
        url = f"https://hooks.example.com/twilio/sms?bodySHA256={h}"
        sig = twilio_signature(TOKEN, url, [])
        assert conn.request("POST", f"/sms?bodySHA256={h}", body,
                            {"Content-Type": "application/json", "X-Twilio-Signature": sig})[0] == 200
        wait_stored(router, ["sms:SM" + "f6" * 16])
        tampered = body.replace(b"json hi", b"json ho")
        assert conn.request("POST", f"/sms?bodySHA256={h}", tampered,
                            {"Content-Type": "application/json", "X-Twilio-Signature": sig})[0] == 403
        assert not router.redis.exists("omni:msg:sms:" + bad)
        assert stored_count(router.redis) == n + 3
    finally:
        conn.stop()


def test_router_away_spool_fills_then_503_then_drains(router, tmp_path):
    conn = sms_connector(tmp_path, router, extra="max_spooled: 5\n").start()
    tw = Twilio(conn, TOKEN)
    try:
        assert tw.post(inbound("SM" + "00" * 16))[0] == 200
        wait_stored(router, ["sms:SM" + "00" * 16])
        router.stop()
        sids = ["SM%032d" % i for i in range(1, 9)]
        answers = {}
        for sid in sids:
            status, headers, _ = tw.post(inbound(sid, f"while away {sid}"))
            answers[sid] = status
            if status == 503:
                assert headers["retry-after"] == "30"
        # Five are taken into the spool and answered 200; the rest get 503 + Retry-After.
        assert [answers[s] for s in sids] == [200] * 5 + [503] * 3, answers
        conn.wait_log(r"spool full")
        router.start()
        wait_stored(router, ["sms:" + s for s in sids[:5]])
        # Twilio retries the refused ones later: taken now.
        for sid in sids[5:]:
            assert tw.post(inbound(sid, f"while away {sid}"))[0] == 200
        wait_stored(router, ["sms:" + s for s in sids])
        assert stored_count(router.redis) == 1 + len(sids)
    finally:
        conn.stop()


def test_spool_disk_full_answers_503_and_loses_nothing(router, tmp_path):
    """The spool's file system full (ENOSPC): 503 + Retry-After, and once there is room the retried webhook
    is taken. The spool lives on a small tmpfs (needs root, as the other tests that run Dovecot)."""
    import subprocess
    import pytest
    fs = tmp_path / "spoolfs"
    fs.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(fs)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    conn = None
    try:
        conn = sms_connector(tmp_path, router, extra=f"state_dir: {tmp_path}/state\n")
        conn.spool = str(fs / "spool")
        text = open(conn.config).read().replace(f"spool_dir: {tmp_path}/sms/spool", f"spool_dir: {conn.spool}")
        open(conn.config, "w").write(text)
        conn.start()
        tw = Twilio(conn, TOKEN)
        assert tw.post(inbound("SM" + "11" * 16))[0] == 200
        wait_stored(router, ["sms:SM" + "11" * 16])
        filler = fs / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        for size in (65536, 4096, 1):  # fill the file system to its last byte
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
        os.close(fd)
        sid = "SM" + "22" * 16
        status, headers, _ = tw.post(inbound(sid, "a long text " * 800))
        assert status == 503 and headers["retry-after"] == "30"
        conn.wait_log(r"message sms:SM2222\S* not spooled: .*: 503")
        os.unlink(filler)
        assert tw.post(inbound(sid, "a long text " * 800))[0] == 200  # the provider's retry
        wait_stored(router, ["sms:" + sid])
        assert stored_count(router.redis) == 2
    finally:
        if conn:
            conn.stop()
        subprocess.run(["umount", "-l", str(fs)])


def test_requests_of_one_turn_share_one_fsync(router, tmp_path):
    """Group commit: webhooks that arrive together are made durable by one fsync and answered after it. The
    connector is stopped (SIGSTOP) while ten signed POSTs are sent on ten connections, so they are all
    waiting when it runs again; its closing log line counts the fsyncs."""
    import signal
    import threading
    conn = sms_connector(tmp_path, router).start()
    tw = Twilio(conn, TOKEN)
    sids = ["SM%032d" % (100 + i) for i in range(10)]
    answers = []
    try:
        conn.proc.send_signal(signal.SIGSTOP)
        threads = [threading.Thread(target=lambda s=s: answers.append(tw.post(inbound(s))[0])) for s in sids]
        for t in threads:
            t.start()
        wait_for(lambda: requests_waiting(conn.port) >= 10, 10, "ten requests waiting in their sockets")
        conn.proc.send_signal(signal.SIGCONT)
        for t in threads:
            t.join(20)
        assert answers == [200] * 10
        wait_stored(router, ["sms:" + s for s in sids])
    finally:
        conn.proc.send_signal(signal.SIGCONT)
        conn.stop()
    m = re.search(r"10 requests: 10 answered once spooled, in (\d+) fsyncs", conn.output())
    assert m and int(m.group(1)) <= 2, conn.output()


def requests_waiting(port):
    """Established TCP connections to 127.0.0.1:port with bytes not yet read by the server (/proc/net/tcp:
    local address, state 01, rx_queue)."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, state, rx = fields[1], fields[3], fields[4].split(":")[1]
            if int(local.split(":")[1], 16) == port and state == "01" and int(rx, 16) > 0:
                n += 1
    return n


OVERSIZED_HEADER = b"POST /sms HTTP/1.1\r\nHost: x\r\nX-Big: " + b"x" * 40000 + b"\r\nContent-Length: 3\r\n\r\na=1"
OVERSIZED_URI = b"POST /sms?" + b"q" * 40000 + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na=1"
BIG_BODY = (b"POST /sms HTTP/1.1\r\nHost: x\r\nX-Twilio-Signature: x\r\nContent-Length: 70002\r\n\r\na="
            + b"x" * 70000)
BIG_CHUNKED_BODY = (b"POST /sms HTTP/1.1\r\nHost: x\r\nX-Twilio-Signature: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (b"a=" + b"x" * 40000, b"y" * 40000)) + b"0\r\n\r\n")


def oversized_status(port, req):
    """The status answered to req, a request over one of the connector's limits (a 40 KB header or request
    line, a body over max_body_bytes). The connector answers as soon as its limit is passed and closes with the
    rest unread, so the client's own sending may fail (EPIPE) or the
    answer be cut by the reset that closing with unread bytes makes: tried up to 5 times, the first status line
    read counts."""
    import socket
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        try:
            try:
                s.sendall(req)
            except (BrokenPipeError, ConnectionResetError):
                pass
            head = s.recv(64)
            m = re.match(rb"HTTP/1\.[01] (\d{3}) ", head)
            if m:
                return int(m.group(1))
        except (ConnectionResetError, socket.timeout):
            pass
        finally:
            s.close()
    raise AssertionError("no status line in 5 tries")


def body_never_ends_is_cut(port):
    """A chunked body that goes on and on: the connector drops it up to 16 MiB past the limit, then closes the
    connection. True when the connection was closed before 24 MiB were sent."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"POST /sms HTTP/1.1\r\nHost: x\r\nX-Twilio-Signature: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    try:
        for _ in range(24 * 16):
            s.sendall(chunk)
        return False
    except (BrokenPipeError, ConnectionResetError):
        return True
    finally:
        s.close()


def test_a_connection_past_max_connections_is_served_when_one_closes(router, tmp_path):
    """docs/connectors.md: past max_connections, connections "wait in the kernel's accept queue until one
    closes": served once one does, not at the connector's next timed poll (poll_ms, here 20 s). Two idle
    connections fill a limit of 2; a signed POST waits; closing one lets it through at once."""
    import socket
    import threading
    import time
    conn = sms_connector(tmp_path, router, extra="poll_ms: 20000\n", max_connections=2).start()
    tw = Twilio(conn, TOKEN)
    idle = []
    try:
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", conn.port), timeout=20)
            s.sendall(b"POST /sms HTTP/1.1\r\nHost: x\r\n")  # headers never finished: the connection stays
            idle.append(s)
        answered = []
        sid = "SM" + "7a" * 16
        t = threading.Thread(target=lambda: answered.append((tw.post(inbound(sid))[0], time.monotonic())))
        t.start()
        time.sleep(0.5)   # not a readiness wait: the POST must still be waiting for a free connection
        assert not answered, "served past max_connections"
        idle.pop().close()
        closed = time.monotonic()
        t.join(25)
        assert answered and answered[0][0] == 200
        assert answered[0][1] - closed < 3, f"served {answered[0][1] - closed:.1f} s after a connection closed"
        wait_stored(router, ["sms:" + sid])
    finally:
        for s in idle:
            s.close()
        conn.stop()


def test_the_published_twilio_vectors_pass_end_to_end(router, tmp_path):
    """Every vector of ../shared/fixtures/twilio/signature-vectors.json, posted to a running omni-sms whose
    public_url + path + query is the vector's URL: the signature is taken (then 400: a voice webhook has no
    MessageSid, which shows the signature passed), and the same request with one byte of the signature changed
    is 403. The :443/:80 vectors are signed with the port, the connector configured without it (and the
    :1234 one with it), as Twilio's validators try both forms."""
    import urllib.parse
    from fake_x_api import FIXTURES
    with open(os.path.join(FIXTURES, "twilio", "signature-vectors.json")) as f:
        doc = json.load(f)
    token = doc["auth_token"]
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "twilio-token").write_text(token)
    os.chmod(creds / "twilio-token", 0o600)
    conns = {}
    try:
        for v in doc["vectors"]:
            url = urllib.parse.urlsplit(v["url"])
            host = url.hostname + (":1234" if url.port == 1234 else "")  # a non-default port is configured
            public = f"{url.scheme}://{host}"
            if public not in conns:
                conns[public] = Webhook(tmp_path / f"c{len(conns)}", "sms", router.endpoint,
                                        {"public_url": public, "auth_token": "credential:twilio-token",
                                         "paths": "[/myapp.php]"},
                                        env={"CREDENTIALS_DIRECTORY": str(creds)}).start()
            conn = conns[public]
            if "raw_body" in v:
                body, ctype = v["raw_body"].encode(), "application/json"
                assert hashlib.sha256(body).hexdigest() == v["bodySHA256"]
            else:
                params = [tuple(p) for p in v.get("params_multi") or v["params"].items()]
                body, ctype = urllib.parse.urlencode(params).encode(), "application/x-www-form-urlencoded"
            target = url.path + "?" + url.query
            for sig, want in ((v["expected"], 400), (("A" if v["expected"][0] != "A" else "B") + v["expected"][1:], 403)):
                status = conn.request("POST", target, body, {"Content-Type": ctype, "X-Twilio-Signature": sig})[0]
                assert status == want, (v["name"], sig, status, conn.output()[-1500:])
        for conn in conns.values():
            conn.wait_log(r"MessageSid: missing")
    finally:
        for conn in conns.values():
            conn.stop()


def test_webhook_variants_field_by_field(router, tmp_path):
    """docs/connectors.md "omni-sms", "The message": webhooks the other tests do not send, each message read back
    from the router's Redis field by field. Unicode and emoji with %20 spaces, a repeated parameter, an MMS whose
    media have a query and no type, an empty To, counts that are not numbers as sent, a meta parameter over the
    router's limit for a string (left out, the message taken), an empty MediaUrl0 (400), a status callback with
    no MessageSid (200, nothing stored)."""
    import urllib.parse
    conn = sms_connector(tmp_path, router).start()
    tw = Twilio(conn, TOKEN)
    url = "https://hooks.example.com/twilio/sms"
    try:
        sid1 = "SM" + "1a" * 16
        text = "Bonjour, ça va ? 👋🏽 日本語 + 100% & a=b"
        params = inbound(sid1, text, frm="+33 6 12 34 56 78") + [("Body", "a second Body"), ("FromCity", "PARIS"),
                                                                   ("ProfileName", "Zoé"), ("MessagingServiceSid", "MG1")]
        body = urllib.parse.urlencode(params, quote_via=urllib.parse.quote).encode()  # %20, not +
        status, headers, answer = conn.request("POST", "/sms", body, {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "X-Twilio-Signature": twilio_signature(TOKEN, url, params)})
        assert (status, headers["content-type"], answer) == (200, "text/xml", b"<Response/>")
        wait_stored(router, ["sms:" + sid1])
        doc = json.loads(stored(router, "sms:" + sid1)["json"])
        received = doc.pop("received_at")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", received), received
        assert doc == {"id": "sms:" + sid1, "channel": "sms", "from": {"id": "+33612345678"}, "to": "+18005551212",
                       "text": text,  # a repeated parameter: its first value (the signature covers both)
                       "meta": {"message_sid": sid1, "account_sid": "AC0123456789abcdef0123456789abcdef",
                                "messaging_service_sid": "MG1", "num_segments": 1, "num_media": 0,
                                "sms_status": "received", "api_version": "2010-04-01", "from_city": "PARIS",
                                "to_country": "US", "profile_name": "Zoé"}}, doc
        assert stored(router, "sms:" + sid1)["identity"] == "phone:+33612345678"

        sid2 = "MM" + "2b" * 16
        media = [("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM2/Media/ME9f?Expires=1", ""),
                 ("https://cdn.example.com/", "video/mp4")]
        params = [(k, "" if k == "To" else "99999999999999999999" if k == "NumSegments" else v)
                  for k, v in inbound(sid2, "", media=media)] + [("ProfileName", "P" * 5000)]
        assert tw.post(params)[0] == 200
        wait_stored(router, ["sms:" + sid2])
        doc = json.loads(stored(router, "sms:" + sid2)["json"])
        assert "to" not in doc and doc["text"] == "", doc  # an empty To names no address: left out
        assert doc["attachments"] == [
            {"name": "ME9f", "type": "application/octet-stream", "size": 0, "url": media[0][0]},
            {"name": "MediaUrl1", "type": "video/mp4", "size": 0, "url": media[1][0]}], doc["attachments"]
        assert doc["meta"]["num_segments"] == "99999999999999999999" and doc["meta"]["num_media"] == 2, doc["meta"]
        assert "profile_name" not in doc["meta"]
        conn.wait_log(rf"message {sid2}: ProfileName is 5000 bytes, over the router's limit of 4096: left out of "
                      r"meta\.profile_name")

        sid3 = "MM" + "3c" * 16
        params = [(k, "" if k == "MediaUrl0" else v)
                  for k, v in inbound(sid3, "", media=[("https://x.example/m", "image/png")])]
        assert tw.post(params)[0] == 400
        conn.wait_log(rf"MediaUrl0: empty though NumMedia is 1 \(message {sid3}\): 400")
        assert tw.post([("MessageStatus", "undelivered"), ("ErrorCode", "30005")], path="/sms/status")[0] == 200
        assert tw.post(inbound("SM" + "4d" * 16, frm="+15551234567"))[0] == 400  # plausible length, no such range
        conn.wait_log(r'From: "\+15551234567" is not an E\.164 number')
        assert not router.redis.exists("omni:msg:sms:" + sid3)
        assert not router.redis.exists("omni:msg:sms:SM" + "4d" * 16)
    finally:
        conn.stop()


def test_public_url_is_checked_at_load(tmp_path):
    """sms.public_url: an http(s) URL (the scheme in any case) with a host and no query: one without a host
    could never match a signature, so --check-config refuses it, located, rather than a 403 for every webhook."""
    import subprocess
    from harness import BIN
    (tmp_path / "tok").write_text(TOKEN)
    os.chmod(tmp_path / "tok", 0o600)
    conf = tmp_path / "sms.yaml"
    for url, want in (("https://", '"https://" has no host (https://HOST/PATH)'),
                      ("https:///twilio", '"https:///twilio" has no host (https://HOST/PATH)'),
                      ("https://h.example/t?x=1", '"https://h.example/t?x=1" is not an http(s) URL without query'),
                      ("HTTPS://hooks.example.com/twilio", None), ("http://127.0.0.1:8080", None)):
        conf.write_text(f"spool_dir: spool\nsms:\n  public_url: \"{url}\"\n  auth_token: tok\n")
        r = subprocess.run([os.path.join(BIN, "omni-sms"), "--config", str(conf), "--check-config"],
                           capture_output=True, text=True, timeout=30)
        if want is None:
            assert r.returncode == 0, (url, r.stderr)
        else:
            assert r.returncode == 1 and f"{conf}:3:15: sms.public_url: {want}" in r.stderr, (url, r.stderr)


def test_an_outpost_points_each_number_once_per_window_and_keeps_the_message(router, tmp_path):
    """sms.outpost_reply (docs/routing.md "Outpost channels"): the first message of a number is answered with the
    reply as TwiML <Message> (XML-escaped), which Twilio texts back; later ones within sms.outpost_window get the
    empty answer; the messages are stored all the same; who was pointed survives a restart (even kill -9), and
    the window running out points a number again."""
    import time
    reply = 'We answer on email: help@example.com & <chat> "24/7"'
    conn = sms_connector(tmp_path, router, outpost_reply=json.dumps(reply), outpost_window="3s")
    assert conn.check().returncode == 0, conn.check().stderr
    conn.start()
    tw = Twilio(conn, TOKEN)
    pointer = (b"<Response><Message>We answer on email: help@example.com &amp; &lt;chat&gt; &quot;24/7&quot;"
               b"</Message></Response>")
    try:
        first = tw.post(inbound("SM" + "c1" * 16, "hello?", frm="+14155550101"))
        assert (first[0], first[2]) == (200, pointer) and first[1]["content-type"] == "text/xml"
        assert tw.post(inbound("SM" + "c2" * 16, "anyone?", frm="+14155550101"))[2] == b"<Response/>"
        # a resend of the first (Twilio retrying) is not a second pointer either
        assert tw.post(inbound("SM" + "c1" * 16, "hello?", frm="+14155550101"))[2] == b"<Response/>"
        # another number is pointed on its own
        assert tw.post(inbound("SM" + "c3" * 16, "hi", frm="+14155550102"))[2] == pointer
        wait_stored(router, ["sms:SM" + "c1" * 16, "sms:SM" + "c2" * 16, "sms:SM" + "c3" * 16])
        assert "outpost: +14155550101 pointed to a covered channel" in conn.output()
        # a restart, even kill -9, remembers who was pointed
        conn.kill()
        conn.start()
        tw = Twilio(conn, TOKEN)
        assert tw.post(inbound("SM" + "c4" * 16, "again", frm="+14155550101"))[2] == b"<Response/>"
        # once the window is over the number is pointed again (the window is 3 s: waited on, with a deadline)
        deadline = time.time() + 15
        n = 5
        while True:
            body = tw.post(inbound("SM" + f"{n:02x}" * 16, "still there?", frm="+14155550101"))[2]
            if body == pointer:
                break
            assert body == b"<Response/>" and time.time() < deadline, body
            n += 1
            time.sleep(0.2)
    finally:
        conn.stop()


def test_an_outpost_reply_is_text_only(tmp_path):
    import subprocess
    from harness import BIN
    (tmp_path / "tok").write_text(TOKEN)
    os.chmod(tmp_path / "tok", 0o600)
    conf = tmp_path / "sms.yaml"
    conf.write_text('spool_dir: spool\nsms:\n  public_url: "https://h.example/t"\n  auth_token: tok\n'
                    '  outpost_reply: "see\\u0007 email"\n')
    r = subprocess.run([os.path.join(BIN, "omni-sms"), "--config", str(conf), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "sms.outpost_reply: holds a control character (byte 3): text only" in r.stderr, \
        r.stderr


def test_an_outpost_points_nobody_on_a_503_at_commit_and_the_resend_does(router, tmp_path):
    """"Only a message that was spooled points: a 503 points nobody, and the resend that follows does." The
    spool's file system full shows at the commit (the spool writes there), after the handler took the message:
    the number must not be recorded as pointed then, or Twilio's resend would get the empty answer and the
    sender no pointer at all. The spool lives on a small tmpfs (needs root, as the disk-full test above)."""
    import subprocess
    import pytest
    fs = tmp_path / "spoolfs"
    fs.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(fs)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    conn = None
    try:
        conn = sms_connector(tmp_path, router, extra=f"state_dir: {tmp_path}/state\n",
                             outpost_reply='"write to help@example.com"')
        conn.spool = str(fs / "spool")
        text = open(conn.config).read().replace(f"spool_dir: {tmp_path}/sms/spool", f"spool_dir: {conn.spool}")
        open(conn.config, "w").write(text)
        conn.start()
        tw = Twilio(conn, TOKEN)
        pointer = b"<Response><Message>write to help@example.com</Message></Response>"
        assert tw.post(inbound("SM" + "d1" * 16, frm="+14155550120"))[2] == pointer
        wait_stored(router, ["sms:SM" + "d1" * 16])
        filler = fs / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        for size in (65536, 4096, 1):  # fill the file system to its last byte
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
        os.close(fd)
        sid = "SM" + "d2" * 16
        status, headers, body = tw.post(inbound(sid, "a long text " * 800, frm="+14155550121"))
        assert status == 503 and headers["retry-after"] == "30", (status, body)
        assert "outpost: +14155550121" not in conn.output()
        os.unlink(filler)
        status, _, body = tw.post(inbound(sid, "a long text " * 800, frm="+14155550121"))  # Twilio's retry
        assert (status, body) == (200, b"<Response><Message>write to help@example.com</Message></Response>")
        wait_stored(router, ["sms:" + sid])
        conn.wait_log(r"sms:SMd2\S*: outpost: \+14155550121 pointed to a covered channel")
    finally:
        if conn:
            conn.stop()
        subprocess.run(["umount", "-l", str(fs)])


def test_an_outpost_reply_refuses_every_control_character_and_what_xml_cannot_carry(tmp_path):
    """"UTF-8, no control character but a line break or tab": DEL and the C1 controls (U+0080..U+009F) are
    control characters too, and U+FFFE/U+FFFF are not characters XML 1.0 allows (Twilio could not parse the
    TwiML); each is refused, located, with the byte it is at. A line break, a tab, emoji, accents are fine."""
    import subprocess
    from harness import BIN
    (tmp_path / "tok").write_text(TOKEN)
    os.chmod(tmp_path / "tok", 0o600)

    def check(reply_yaml):
        conf = tmp_path / "sms.yaml"
        conf.write_text('spool_dir: spool\nsms:\n  public_url: "https://h.example/t"\n  auth_token: tok\n'
                        f'  outpost_reply: {reply_yaml}\n')
        return subprocess.run([os.path.join(BIN, "omni-sms"), "--config", str(conf), "--check-config"],
                              capture_output=True, text=True, timeout=30)
    for reply, why in (('"see\\x7f email"', "holds a control character (byte 3): text only"),
                       ('"see\\u0085 email"', "holds a control character (byte 3): text only"),
                       ('"é\\u009f"', "holds a control character (byte 2): text only"),
                       ('"see\\r\\nemail"', "holds a control character (byte 3): text only"),
                       ('"see \\uFFFE"', "holds U+FFFE (byte 4): not a character XML allows"),
                       ('"see \\uFFFF"', "holds U+FFFF (byte 4): not a character XML allows")):
        r = check(reply)
        assert r.returncode == 1 and re.search(r"sms\.yaml:5:\d+: sms\.outpost_reply: " + re.escape(why), r.stderr), \
            (reply, r.stderr)
    r = check('"Write to help@example.com\\n\\tor call +1 415 555 0100 ☎️ — merci, señor"')
    assert r.returncode == 0, r.stderr


def test_an_outpost_state_file_that_cannot_be_read_never_stops_the_channel(router, tmp_path):
    """STATE_DIR/outpost-pointed that cannot be read at all (here a directory in its place): the connector starts
    all the same, remembering nobody, and says so; a pointer whose save fails still goes (with a warning)."""
    state = tmp_path / "state"
    (state / "outpost-pointed").mkdir(parents=True)
    conn = sms_connector(tmp_path, router, extra=f"state_dir: {state}\n", outpost_reply='"write to help@example.com"')
    conn.start()
    tw = Twilio(conn, TOKEN)
    try:
        conn.wait_log(r"outpost-pointed: cannot be read \(Is a directory\): .*nobody is remembered")
        assert tw.post(inbound("SM" + "e1" * 16, frm="+14155550130"))[2] == \
            b"<Response><Message>write to help@example.com</Message></Response>"
        conn.wait_log(r"outpost-pointed: cannot save who was pointed to a covered channel")
        assert tw.post(inbound("SM" + "e2" * 16, frm="+14155550130"))[2] == b"<Response/>"
        wait_stored(router, ["sms:SM" + "e1" * 16, "sms:SM" + "e2" * 16])
    finally:
        conn.stop()
