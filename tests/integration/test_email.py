"""omni-email against a real Dovecot (dovecot.py) loaded with every email fixture.

Most tests talk to a small OMNI/1 peer written here with python3-zmq (FakeRouter, fixture fake_router):
a ROUTER socket that ACKs every MSG, answers PING, records every copy it got, and can be taken down and
brought back; so they see the wire itself (resends included). The last tests run the same flows into the
real omnirouted and its Redis (conftest's `router`: .endpoint, .redis, .key_prefix), where the router's
dedup by id is what makes "each message once" true.

What is checked: every fixture arrives once with the subject, sender and text Python's email package
decodes (tests/unit/email/fixtures_expected.json, shared with the unit test); SIGKILL in the middle of a
batch loses nothing and creates no second id; with the router away the spool grows, then drains; a
UIDVALIDITY change re-reads mail without losing or duplicating any; fetching never sets \\Seen before the
spool has the message; a batch is one FETCH for metadata and one for bodies, whose response is read by
its literals' sizes (body lines like tagged replies are body); a response cut short or with a malformed
literal is an error and the next poll takes the mail again; big messages arrive whole; a FETCH response with
the UID after the body is read, and a body the server left out is not passed over as expunged; mail unlike
the fixtures (encoded-words side by side, nested multiparts, legacy charsets, unpadded base64, no usable
sender, a Date that is no date) is stored by omnirouted exactly as docs/connectors.md "The message" says.
Every wait has a deadline (dovecot.wait_for); nothing sleeps blindly.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
import zmq

from dovecot import FIXTURES, TOP, Dovecot, wait_for

BUILD = Path(os.environ.get("OMNI_BUILD", TOP / "build" / "asan"))
BINARY = BUILD / "bin" / "omni-email"
EXPECTED = TOP / "tests" / "unit" / "email" / "fixtures_expected.json"
WAIT = 30  # seconds; generous for ASan builds

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="Dovecot needs root to drop to its mail user")


class FakeRouter:
    """An OMNI/1 ROUTER that ACKs everything and records each MSG (every copy, resends included)."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.ctx = zmq.Context()
        self.lock = threading.Lock()
        self.received = []  # message dicts in arrival order
        self.thread = None
        self.running = False

    def start(self):
        self.running = True
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        if not self.ready.wait(5):
            raise RuntimeError("the fake router did not bind " + self.endpoint)

    def _serve(self):
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.endpoint)
        self.ready.set()
        try:
            while self.running:
                if not sock.poll(50):
                    continue
                frames = sock.recv_multipart()
                peer, rest = frames[0], frames[1:]
                if len(rest) >= 3 and rest[0] == b"OMNI/1" and rest[1] == b"MSG":
                    msg = json.loads(rest[2])
                    with self.lock:
                        self.received.append(msg)
                    sock.send_multipart([peer, b"OMNI/1", b"ACK", msg["id"].encode()])
                elif len(rest) >= 2 and rest[1] == b"PING":
                    sock.send_multipart([peer, b"OMNI/1", b"PONG"])
        finally:
            sock.close(0)

    def stop(self):
        """The router goes away: the socket is closed, nothing is answered until start()."""
        self.running = False
        if self.thread:
            self.thread.join(5)

    def by_id(self):
        with self.lock:
            out = {}
            for m in self.received:
                out.setdefault(m["id"], m)
            return out

    def copies(self):
        with self.lock:
            return len(self.received)

    def close(self):
        self.stop()
        self.ctx.term()


class Connector:
    """omni-email as a child process with its config, spool and log in a scratch directory."""

    def __init__(self, workdir, endpoint, dovecot, **extra):
        self.dir = workdir
        self.log = workdir / "omni-email.log"
        self.spool = workdir / "spool"
        self.conf = workdir / "email.yaml"
        self.proc = None
        email = {"url": dovecot.url(), "tls": "none", "user": "alice", "password": "secret",
                 "account": "support", "address": "support@example.com", "batch": 10}
        email.update(extra)
        lines = ["router:", "  endpoint: %s" % endpoint, "  resend_ms: 300", "  ping_ms: 300",
                 "spool_dir: %s" % self.spool, "poll_ms: 100", "retry_max_ms: 500", "log_level: debug",
                 "email:"]
        lines += ["  %s: %s" % (k, str(v).lower() if isinstance(v, bool) else json.dumps(v))
                  for k, v in email.items()]  # JSON scalars and lists are YAML too
        self.conf.write_text("\n".join(lines) + "\n")

    def set_url(self, url):
        text = self.conf.read_text().splitlines()
        self.conf.write_text("\n".join('  url: "%s"' % url if l.startswith("  url:") else l for l in text) + "\n")

    def start(self, env=None):
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([str(BINARY), "--config", str(self.conf)], stdout=out, stderr=out,
                                     stdin=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))
        out.close()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self):
        """SIGTERM; returns the exit status (0 expected: a clean stop, and no sanitizer report)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(WAIT)

    def state(self):
        try:
            return json.loads((self.spool / "email-state.json").read_text())["mailboxes"]["support/INBOX"]
        except (OSError, ValueError, KeyError):
            return None

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def workdir():
    # Short and under /tmp: an ipc:// path must fit in a sockaddr_un.
    d = Path(tempfile.mkdtemp(prefix="omni-email-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def dovecot():
    d = Dovecot({"alice": "secret"})
    try:  # a Dovecot that fails to start still leaves its directory to remove
        yield d.start()
    finally:
        d.cleanup()


@pytest.fixture
def fake_router(workdir):
    r = FakeRouter("ipc://%s/router.sock" % workdir)
    r.start()
    yield r
    r.close()


@pytest.fixture
def connector(workdir, dovecot):
    """make(endpoint, **email_keys) -> a Connector (not started) talking to the router at endpoint."""
    made = []

    def make(endpoint, **extra):
        c = Connector(workdir, endpoint, dovecot, **extra)
        made.append(c)
        return c
    yield make
    for c in made:
        if c.proc and c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait(10)
        print(c.log_text())  # pytest shows it when the test failed
    print(dovecot.log_text())


def expectations():
    return json.loads(EXPECTED.read_text())["fixtures"]


def check_text(e, text):
    """The same comparison as tests/unit/email/test_mime.c (see the JSON's "compare" and "why")."""
    mode = e["compare"]
    if mode == "python_none":
        assert text == e["ours_text"], e["file"]
        return
    py = e["text"].replace("\r\n", "\n")
    if mode == "exact":
        assert text == py, e["file"]
    elif mode == "python_prefix":
        assert text.startswith(py) and "---------- Forwarded message ----------\n" in text[len(py):], e["file"]
    elif mode == "ours_prefix":
        assert text and py.startswith(text), e["file"]
    else:
        raise AssertionError("unknown compare mode " + mode)


def deliver_fixtures(dovecot):
    """Delivers every fixture in order; returns {uid: expectation}."""
    by_uid = {}
    for e in expectations():
        uid = dovecot.deliver("alice", (FIXTURES / "email" / e["file"]).read_bytes())
        by_uid[uid] = e
    return by_uid


def synthetic(i, body="hello"):
    return ("From: Customer %d <c%d@example.org>\r\nTo: support@example.com\r\nSubject: load %04d\r\n"
            "Message-ID: <load-%d@example.org>\r\nDate: Sun, 22 Nov 2026 08:00:00 +0000\r\n\r\n%s %d\r\n"
            % (i, i, i, i, body, i)).encode()


def test_every_fixture_arrives_once(dovecot, fake_router, connector):
    by_uid = deliver_fixtures(dovecot)
    c = connector(fake_router.endpoint)
    c.start()
    wait_for(lambda: len(fake_router.by_id()) >= len(by_uid), WAIT, "every fixture at the router")
    got = fake_router.by_id()
    assert len(got) == len(by_uid)
    uids = sorted(m["meta"]["uid"] for m in got.values())
    assert uids == sorted(by_uid)  # each message once: one id per UID, none missing
    for m in got.values():
        e = by_uid[m["meta"]["uid"]]
        assert m["channel"] == "email"
        assert m["to"] == "support@example.com"
        assert m["meta"]["account"] == "support" and m["meta"]["mailbox"] == "INBOX"
        assert m["id"].startswith("email:support:")
        assert m.get("subject") == e["subject"], e["file"]
        if e["from_addr"]:
            assert m["from"]["id"] == e["from_addr"].lower(), e["file"]
        else:
            assert m["from"]["id"].endswith("@no-sender.invalid") and m["meta"]["no_sender"] is True
        assert m["from"].get("name") == e["from_name"], e["file"]
        check_text(e, m["text"])
        if e["file"] == "cpython/msg_16.txt":
            assert m["meta"]["auto"] == "bounce"
        if e["file"] == "mikel-mail/raw_email_bad_time.eml":
            assert m["meta"]["date_ignored"] is True and not m["received_at"].startswith("3609")
    # \Seen is set once the messages are spooled, and only then.
    wait_for(lambda: dovecot.search("alice", "UNSEEN") == [], WAIT, "every message marked \\Seen")
    assert c.terminate() == 0


class CountingProxy:
    """A TCP proxy between the connector and Dovecot that keeps every command line the connector sends
    (connections made again after a drop go through it too). spoil(mode) arms it once for the next body
    FETCH (a command with BODY.PEEK[]): "cut" passes the first 2,000 bytes of the response and then closes
    the connection; "garble" turns the first literal's size into "{12x}"; "announce" puts a
    "* OK [UIDVALIDITY 4242]" between the first message's FETCH response and the next one's, as a server
    does whose mailbox was re-created while it answered; "drop" leaves out UID 2's FETCH response and body,
    as a server that skips a message it cannot read; "uid_last" holds the whole response and moves each
    body's UID after its literal ("* 1 FETCH (BODY[] {n}" literal " UID 5)"), an order RFC 3501 allows."""

    def __init__(self, port):
        import socket
        self.target = port
        self.commands = []
        self.lock = threading.Lock()
        self.armed = None      # "cut" or "garble" until a body FETCH takes it
        self.spoiling = None   # what the response now on its way is to suffer
        self.spoiled = 0
        self.no_uidnext = False  # True: SELECT answers lose their UIDNEXT, as some servers send them
        self.conns = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self):
        return "imap://127.0.0.1:%d" % self.port

    def spoil(self, mode, every=False):
        """Arms mode for the next body FETCH; every: for each one after it too (a server that always does it)."""
        with self.lock:
            self.armed = mode
            self.every = every

    def _accept(self):
        import socket
        while True:
            try:
                a, _ = self.sock.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.conns += [a, b]
            threading.Thread(target=self._pump, args=(a, b, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(b, a, False), daemon=True).start()

    def _pump(self, src, dst, upstream):
        line = b""
        passed = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream:  # the connector's commands are short lines: keep them (before they go on)
                    line += data
                    while b"\n" in line:
                        one, line = line.split(b"\n", 1)
                        with self.lock:
                            self.commands.append(one.decode(errors="replace").strip())
                            if self.armed and b"BODY.PEEK[]" in one:
                                self.spoiling, self.armed, passed = self.armed, None, 0
                                self.tag = one.split(b" ", 1)[0]
                else:
                    if self.no_uidnext:  # whole lines only, then without "* OK [UIDNEXT n]"
                        data = getattr(self, "partial", b"") + data
                        if not data.endswith(b"\r\n"):
                            self.partial = data
                            continue
                        self.partial, data = b"", re.sub(rb"\* OK \[UIDNEXT \d+\][^\r\n]*\r\n", b"", data)
                    with self.lock:
                        mode = self.spoiling
                    if mode in ("uid_last", "drop"):
                        held = getattr(self, "held", b"") + data
                        if not re.search(rb"\r\n" + re.escape(self.tag) + rb" (OK|NO|BAD)[^\r\n]*\r\n$", held):
                            self.held = held
                            continue
                        self.held, data = b"", self._uid_last(held) if mode == "uid_last" else self._drop(held)
                        with self.lock:
                            self.spoiling, self.spoiled = None, self.spoiled + 1
                            if getattr(self, "every", False):
                                self.armed = mode
                    if mode == "announce" and b")\r\n* " in data:
                        data = data.replace(b")\r\n* ", b")\r\n* OK [UIDVALIDITY 4242] changed\r\n* ", 1)
                        with self.lock:
                            self.spoiling, self.spoiled = None, self.spoiled + 1
                    elif mode == "garble" and b"}\r\n" in data:
                        data = re.sub(rb"\{\d+\}\r\n", b"{12x}\r\n", data, count=1)
                        with self.lock:
                            self.spoiling, self.spoiled = None, self.spoiled + 1
                    elif mode == "cut":
                        if passed + len(data) >= 2000:
                            dst.sendall(data[:2000 - passed])
                            with self.lock:
                                self.spoiling, self.spoiled = None, self.spoiled + 1
                            break
                        passed += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    @staticmethod
    def _uid_last(resp):
        out, pos = b"", 0
        head = re.compile(rb"\* (\d+) FETCH \(UID (\d+) BODY\[\] \{(\d+)\}\r\n")
        while True:
            m = head.search(resp, pos)
            if not m:
                return out + resp[pos:]
            end = m.end() + int(m.group(3))
            out += resp[pos:m.start()] + b"* %s FETCH (BODY[] {%s}\r\n" % (m.group(1), m.group(3))
            out += resp[m.end():end] + b" UID " + m.group(2)
            pos = end

    @staticmethod
    def _drop(resp):
        """The response without the FETCH response (and body) of UID 2."""
        m = re.search(rb"\* \d+ FETCH \(UID 2 BODY\[\] \{(\d+)\}\r\n", resp)
        if not m:
            return resp
        end = m.end() + int(m.group(1)) + len(b")\r\n")
        return resp[:m.start()] + resp[end:]

    def cut_connections(self):
        """Closes every connection made so far, as a server's idle timeout does."""
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(2)
            except OSError:
                pass

    def fetches(self):
        with self.lock:
            return [c.split(" ", 1)[1] for c in self.commands if " UID FETCH " in c.upper()]

    def logins(self):
        with self.lock:
            return sum(1 for c in self.commands if " AUTHENTICATE " in c.upper() or " LOGIN " in c.upper())

    def close(self):
        self.sock.close()


def test_a_batch_takes_one_fetch_for_metadata_and_one_for_bodies(dovecot, fake_router, connector):
    """30 small messages, batch 40: one UID FETCH of the metadata of all, then one of all their bodies
    (the response read by its literals' sizes, so a body whose lines look like the tagged reply, in the
    middle of them, is just a body); one connection, one login; nothing lost or doubled. Then 600 more
    with batch 600: metadata 500 UIDs a command, the bodies still one command (they fit in 8 MiB)."""
    n = 30
    tricky = "".join("X%d OK looks like a tagged reply\r\n" % k for k in range(1, 80))
    for i in range(n):
        dovecot.deliver("alice", synthetic(i) if i != 12 else
                        ("From: a@example.org\r\nSubject: load %04d\r\n\r\n" % i + tricky).encode(),
                        sync=False)
    dovecot.status("alice")
    proxy = CountingProxy(dovecot.port)
    try:
        c = connector(fake_router.endpoint, batch=40, url=proxy.url())
        c.start()
        wait_for(lambda: len(fake_router.by_id()) >= n, WAIT, "every message at the router")
        got = fake_router.by_id()
        assert sorted(m["subject"] for m in got.values()) == ["load %04d" % i for i in range(n)]
        assert next(m for m in got.values() if m["subject"] == "load 0012")["text"] == tricky.replace("\r\n", "\n")
        assert proxy.fetches() == ["UID FETCH 1:30 (UID FLAGS RFC822.SIZE INTERNALDATE)",
                                   "UID FETCH 1:30 (UID BODY.PEEK[])"]
        assert proxy.logins() == 1
        assert c.terminate() == 0
        m = 600
        for i in range(n, n + m):
            dovecot.deliver("alice", synthetic(i), sync=False)
        dovecot.status("alice")
        before = len(proxy.fetches())
        c = connector(fake_router.endpoint, batch=m, url=proxy.url())
        c.start()
        wait_for(lambda: len(fake_router.by_id()) >= n + m, WAIT, "the second lot at the router")
        assert proxy.fetches()[before:] == ["UID FETCH 31:530 (UID FLAGS RFC822.SIZE INTERNALDATE)",
                                            "UID FETCH 531:630 (UID FLAGS RFC822.SIZE INTERNALDATE)",
                                            "UID FETCH 31:630 (UID BODY.PEEK[])"]
        assert c.terminate() == 0
        assert "warn" not in c.log_text()
    finally:
        proxy.close()


@pytest.mark.parametrize("mode,why", [
    ("cut", "the server closed the connection in the middle of the response"),
    ("garble", "a literal's size is not a number"),
])
def test_a_broken_body_response_is_an_error_and_the_next_poll_takes_it_again(mode, why, dovecot, fake_router,
                                                                             connector):
    """The response to the body FETCH cut short (the server gone mid-literal) or with a literal size that
    is not a number: the fetch fails with an error naming the command and what was wrong, the connection
    is dropped, nothing is marked \\Seen, and the next poll reads every message, once."""
    n = 20
    for i in range(n):
        dovecot.deliver("alice", synthetic(i, body="x" * 300), sync=False)
    dovecot.status("alice")
    proxy = CountingProxy(dovecot.port)
    proxy.spoil(mode)
    try:
        c = connector(fake_router.endpoint, batch=50, url=proxy.url())
        c.start()
        wait_for(lambda: len(fake_router.by_id()) >= n, WAIT, "every message at the router")
        assert proxy.spoiled == 1
        log = c.log_text()
        assert re.search(r"fetching UID \d+: UID FETCH: " + re.escape(why), log), log
        assert sorted(m["subject"] for m in fake_router.by_id().values()) == ["load %04d" % i for i in range(n)]
        assert proxy.logins() == 2  # the broken connection was dropped and made again
        wait_for(lambda: not dovecot.search("alice", "UNSEEN"), WAIT, "\\Seen once spooled")
        assert c.terminate() == 0
    finally:
        proxy.close()


def test_a_server_whose_select_has_no_uidnext(dovecot, fake_router, connector):
    """RFC 3501 requires UIDNEXT in SELECT's answer; some servers leave it out. The connector asks STATUS for
    it (before, every poll of such a mailbox failed, and no mail was ever read): the mail there arrives, and
    so does mail delivered later."""
    for i in range(3):
        dovecot.deliver("alice", synthetic(i), sync=False)
    dovecot.status("alice")
    proxy = CountingProxy(dovecot.port)
    proxy.no_uidnext = True
    try:
        c = connector(fake_router.endpoint, batch=50, url=proxy.url())
        c.start()
        wait_for(lambda: len(fake_router.by_id()) >= 3, WAIT, "the first mail at the router")
        assert any(cmd.split()[1:3] == ["STATUS", '"INBOX"'] for cmd in proxy.commands if len(cmd.split()) > 2), \
            proxy.commands
        for i in range(3, 5):
            dovecot.deliver("alice", synthetic(i), sync=False)
        wait_for(lambda: len(fake_router.by_id()) >= 5, WAIT, "the later mail at the router")
        got = fake_router.by_id()
        assert sorted(m["meta"]["uid"] for m in got.values()) == [1, 2, 3, 4, 5]
        assert "no UIDNEXT" not in c.log_text() and "warn" not in c.log_text() and c.terminate() == 0
    finally:
        proxy.close()


def test_a_server_that_sends_the_uid_after_the_body(dovecot, fake_router, connector):
    """RFC 3501 fixes no order of a FETCH response's items, and some servers send the UID after the body
    literal. Each body goes to the UID named after it: every message arrives once, nothing is logged as a
    failure, and all are marked \\Seen (before, each such fetch failed, and the mailbox never moved on)."""
    n = 5
    tricky = "A005 OK looks like a tagged reply\r\n UID 99)\r\n"
    for i in range(n):
        dovecot.deliver("alice", synthetic(i, body=tricky if i == 2 else "z" * 100), sync=False)
    dovecot.status("alice")
    proxy = CountingProxy(dovecot.port)
    proxy.spoil("uid_last", every=True)
    try:
        c = connector(fake_router.endpoint, batch=50, url=proxy.url())
        c.start()
        wait_for(lambda: len(fake_router.by_id()) >= n, WAIT, "every message at the router")
        assert proxy.spoiled >= 1
        got = fake_router.by_id()
        assert sorted(m["subject"] for m in got.values()) == ["load %04d" % i for i in range(n)]
        assert sorted(m["meta"]["uid"] for m in got.values()) == list(range(1, n + 1))
        assert next(m for m in got.values() if m["subject"] == "load 0002")["text"] == \
            (tricky + " 2\r\n").replace("\r\n", "\n")
        wait_for(lambda: not dovecot.search("alice", "UNSEEN"), WAIT, "\\Seen once spooled")
        assert fake_router.copies() == n and "warn" not in c.log_text()
        assert c.terminate() == 0
    finally:
        proxy.close()


def test_a_body_the_server_left_out_is_not_passed_over(dovecot, fake_router, connector):
    """The body FETCH answers OK without the FETCH response of one message that is still in the mailbox (a
    server that could not read it, as some do). It is not taken for expunged and passed over (it would never
    be read): the fetch fails there with a warning naming the UID, the messages before it stand, nothing after
    it is passed, and once the server answers for it, every message arrives, once."""
    n = 3
    for i in range(n):
        dovecot.deliver("alice", synthetic(i), sync=False)
    dovecot.status("alice")
    proxy = CountingProxy(dovecot.port)
    proxy.spoil("drop", every=True)
    try:
        c = connector(fake_router.endpoint, batch=50, url=proxy.url())
        c.start()
        wait_for(lambda: "UID FETCH gave no body for UID 2, which is still in INBOX" in c.log_text(), WAIT,
                 "the warning")
        wait_for(lambda: len(fake_router.by_id()) == 1, WAIT, "the message before it at the router")
        assert "expunged" not in c.log_text()
        assert (c.state() or {}).get("last_uid", 0) < 2
        with proxy.lock:
            proxy.armed, proxy.every = None, False
        wait_for(lambda: len(fake_router.by_id()) == n, WAIT, "every message at the router")
        assert sorted(m["meta"]["uid"] for m in fake_router.by_id().values()) == [1, 2, 3]
        assert fake_router.copies() == n
        wait_for(lambda: not dovecot.search("alice", "UNSEEN"), WAIT, "\\Seen once spooled")
        assert c.terminate() == 0
    finally:
        proxy.close()


def test_uidvalidity_announced_in_the_middle_of_a_body_fetch_marks_nothing_seen(dovecot, fake_router, connector):
    """A "* OK [UIDVALIDITY n]" with another number in the middle of the body FETCH's response: the bodies
    that came are real mail (their ids are their content's), so they are spooled, once; but the batch's UIDs
    may no longer name those messages, so no STORE \\Seen is sent for them under the old UIDVALIDITY (a
    warning names both numbers). The next poll selects the mailbox again and goes on: new mail arrives and
    is marked \\Seen as usual."""
    n = 20
    for i in range(n):
        dovecot.deliver("alice", synthetic(i, body="y" * 200), sync=False)
    uv = dovecot.status("alice")[0]
    proxy = CountingProxy(dovecot.port)
    proxy.spoil("announce")
    try:
        c = connector(fake_router.endpoint, batch=50, url=proxy.url())
        c.start()
        wait_for(lambda: len(fake_router.by_id()) >= n, WAIT, "every message at the router")
        assert proxy.spoiled == 1
        wait_for(lambda: "announced UIDVALIDITY" in c.log_text(), WAIT, "the warning")
        assert re.search(r"setting \\Seen: the server announced UIDVALIDITY 4242, not %d" % uv, c.log_text())
        assert not [cmd for cmd in proxy.commands if "UID STORE" in cmd]
        assert len(dovecot.search("alice", "UNSEEN")) == n
        dovecot.deliver("alice", synthetic(n, body="after"), sync=False)
        wait_for(lambda: len(fake_router.by_id()) == n + 1, WAIT, "the new message at the router")
        wait_for(lambda: len(dovecot.search("alice", "UNSEEN")) == n, WAIT, "the new message marked \\Seen")
        assert sorted(m["subject"] for m in fake_router.by_id().values()) == ["load %04d" % i for i in range(n + 1)]
        assert fake_router.copies() == n + 1
        assert c.terminate() == 0
    finally:
        proxy.close()


def test_sigkill_mid_batch_loses_nothing_and_duplicates_nothing(dovecot, fake_router, connector):
    n = 150
    for i in range(n):
        dovecot.deliver("alice", synthetic(i), sync=False)
    dovecot.status("alice")  # numbers them all
    c = connector(fake_router.endpoint, batch=10)
    c.start()
    wait_for(lambda: len(fake_router.by_id()) >= 25, WAIT, "a first part of the mail at the router")
    c.kill()
    assert len(fake_router.by_id()) < n, "the kill came too late to be in the middle of the work"
    c.start()
    wait_for(lambda: len(fake_router.by_id()) >= n, WAIT * 2, "all mail at the router after the restart")
    got = fake_router.by_id()
    subjects = {}
    for m in got.values():
        subjects.setdefault(m["subject"], set()).add(m["id"])
    assert sorted(subjects) == ["load %04d" % i for i in range(n)]       # nothing lost
    assert all(len(ids) == 1 for ids in subjects.values())               # nothing under two ids
    assert len(got) == n
    assert c.terminate() == 0


def test_router_away_spool_grows_then_drains(dovecot, fake_router, connector):
    for i in range(5):
        dovecot.deliver("alice", synthetic(i))
    c = connector(fake_router.endpoint)
    c.start()
    wait_for(lambda: len(fake_router.by_id()) == 5, WAIT, "the first mail at the router")
    fake_router.stop()
    spool_log = c.spool / "spool.log"
    before = spool_log.stat().st_size
    for i in range(5, 25):
        dovecot.deliver("alice", synthetic(i))
    # The connector keeps reading: the cursor passes the new mail while the router is away.
    wait_for(lambda: (c.state() or {}).get("last_uid", 0) >= 25, WAIT, "the new mail spooled")
    assert spool_log.stat().st_size > before
    assert len(fake_router.by_id()) == 5
    fake_router.start()
    wait_for(lambda: len(fake_router.by_id()) == 25, WAIT, "the spool to drain into the router")
    assert sorted(m["subject"] for m in fake_router.by_id().values()) == ["load %04d" % i for i in range(25)]
    assert c.terminate() == 0


def test_uidvalidity_change_neither_loses_nor_duplicates(dovecot, fake_router, connector):
    """The mailbox is rebuilt under a running connector: the server goes away, comes back with a new
    UIDVALIDITY and every message renumbered, plus new mail."""
    deliver_fixtures(dovecot)
    c = connector(fake_router.endpoint)
    c.start()
    wait_for(lambda: len(fake_router.by_id()) == 14, WAIT, "every fixture at the router")
    old_ids = set(fake_router.by_id())
    uv_before = dovecot.status("alice")[0]
    copies = fake_router.copies()
    dovecot.stop()
    dovecot.reset_uids("alice")
    dovecot.start(same_port=True)
    dovecot.deliver("alice", synthetic(1, "after the change"))
    dovecot.deliver("alice", synthetic(2, "after the change"))
    assert dovecot.status("alice")[0] != uv_before
    wait_for(lambda: len(fake_router.by_id()) >= 16, WAIT, "the two new messages at the router")
    wait_for(lambda: "UIDVALIDITY changed" in c.log_text(), WAIT, "the change to be logged")
    got = fake_router.by_id()
    assert len(got) == 16
    assert old_ids < set(got)  # the old mail came again under the same ids: the router drops it
    wait_for(lambda: fake_router.copies() >= copies + 16, WAIT, "the re-read mail to come again")
    assert c.terminate() == 0


def test_full_spool_pauses_reading_without_losing_mail(dovecot, fake_router, connector):
    """With the router away and the spool at max_spooled, the connector stops taking mail (the cursor
    stays before what it could not spool) and takes the rest once the router drained the spool."""
    fake_router.stop()
    for i in range(12):
        dovecot.deliver("alice", synthetic(i))
    c = connector(fake_router.endpoint)
    c.conf.write_text(c.conf.read_text().replace("poll_ms: 100", "poll_ms: 100\nmax_spooled: 5"))
    c.start()
    wait_for(lambda: (c.state() or {}).get("last_uid", 0) >= 5, WAIT, "the spool to fill")
    wait_for(lambda: "poll" in c.log_text(), WAIT, "a few polls")  # polls go on, taking nothing
    assert c.state()["last_uid"] == 5
    assert len(dovecot.search("alice", "UNSEEN")) == 7  # only what was spooled is marked \Seen
    fake_router.start()
    wait_for(lambda: len(fake_router.by_id()) == 12, WAIT, "all mail once the router is back")
    # Each message goes to the router once written, before its batch's commit saves the cursor: wait for it.
    wait_for(lambda: c.state()["last_uid"] == 12, WAIT, "the cursor after the last message")
    assert c.terminate() == 0


def test_body_line_like_the_tag_is_just_body(dovecot, fake_router, connector):
    """Body lines that look like tagged replies, for our tags (X5 OK) and for curl's (A005 OK): the
    response is read by its literal's size, so they are body, and nothing sets \\Seen before the spool."""
    body = "".join("%s%03d OK looks like a tagged reply\r\n" % (t, n) for t in "AX" for n in range(1, 80))
    body += "".join("X%d OK looks like a tagged reply\r\n" % n for n in range(1, 80))
    raw = ("From: a@example.org\r\nSubject: tricky\r\n\r\n" + body).encode()
    dovecot.deliver("alice", raw)
    c = connector(fake_router.endpoint)
    c.start()
    wait_for(lambda: len(fake_router.by_id()) == 1, WAIT, "the tricky message at the router")
    m = next(iter(fake_router.by_id().values()))
    assert m["text"] == body.replace("\r\n", "\n")
    assert "warn" not in c.log_text()
    assert c.terminate() == 0


def test_big_message_arrives_whole_and_says_it_was_cut(dovecot, fake_router, connector):
    line = "x" * 400000  # one line longer than curl's buffer would allow in one piece
    raw = ("From: big@example.org\r\nSubject: big\r\n\r\nstart\r\n" + line + "\r\nend\r\n").encode()
    dovecot.deliver("alice", raw)
    c = connector(fake_router.endpoint)
    c.start()
    wait_for(lambda: len(fake_router.by_id()) == 1, WAIT, "the big message at the router")
    m = next(iter(fake_router.by_id().values()))
    assert m["meta"]["truncated"] is True
    assert m["meta"]["text_bytes"] == len("start\n" + line + "\nend\n")
    assert len(m["text"].encode()) == 65536 and m["text"].startswith("start\nxxx")
    assert m["meta"]["size"] == len(raw)
    assert "warn" not in c.log_text()  # one partial PEEK: BODY.PEEK[]<0.max_fetch_bytes>
    assert c.terminate() == 0


def test_a_connection_closed_between_polls_is_made_again_without_a_failed_poll(dovecot, fake_router,
                                                                                connector):
    """The server closes the kept connection while the connector waits for the next poll (an idle timeout):
    the next poll connects again at once, with no warning and no failed poll."""
    dovecot.deliver("alice", synthetic(0))
    proxy = CountingProxy(dovecot.port)
    try:
        c = connector(fake_router.endpoint, url=proxy.url())
        c.start()
        wait_for(lambda: len(fake_router.by_id()) == 1, WAIT, "the first message at the router")

        def turn_over():  # the message goes to the router once spooled, before its \Seen is set
            with proxy.lock:
                cmds = list(proxy.commands)
            stores = [i for i, cmd in enumerate(cmds) if "UID STORE" in cmd]
            return stores and any(" SELECT " in cmd for cmd in cmds[stores[0] + 1:])
        wait_for(turn_over, WAIT, "the first turn over (its \\Seen set, the next turn's SELECT sent)")
        proxy.cut_connections()
        dovecot.deliver("alice", synthetic(1))
        wait_for(lambda: len(fake_router.by_id()) == 2, WAIT, "the second message at the router")
        assert proxy.logins() == 2
        assert "warn" not in c.log_text()
        assert c.terminate() == 0
    finally:
        proxy.close()


def test_a_message_over_max_fetch_bytes_is_fetched_partially_between_whole_ones(dovecot, fake_router, connector):
    """max_fetch_bytes 65536: a 100 KB message between two small ones is fetched alone, its first 65,536
    bytes (BODY.PEEK[]<0.65536>), and marked truncated with its size on the server; the small ones around
    it come whole, each group in one command."""
    big = ("From: big@example.org\r\nSubject: big\r\n\r\n" + "y" * 100 + "\r\n") * 1000
    dovecot.deliver("alice", synthetic(0), sync=False)
    dovecot.deliver("alice", big.encode(), sync=False)
    dovecot.deliver("alice", synthetic(2), sync=False)
    dovecot.status("alice")
    proxy = CountingProxy(dovecot.port)
    try:
        c = connector(fake_router.endpoint, max_fetch_bytes=65536, url=proxy.url())
        c.start()
        wait_for(lambda: len(fake_router.by_id()) == 3, WAIT, "the three messages at the router")
        by_subject = {m["subject"]: m for m in fake_router.by_id().values()}
        assert by_subject["big"]["meta"]["truncated"] is True
        assert by_subject["big"]["meta"]["size"] == len(big)
        assert not by_subject["load 0000"]["meta"].get("truncated")
        assert [f for f in proxy.fetches() if "BODY.PEEK" in f] == [
            "UID FETCH 1 (UID BODY.PEEK[])", "UID FETCH 2 (UID BODY.PEEK[]<0.65536>)",
            "UID FETCH 3 (UID BODY.PEEK[])"]
        assert c.terminate() == 0
    finally:
        proxy.close()


def test_tls_starttls_and_imaps(fake_router, connector, workdir):
    """Two entries of email.mailboxes read one INBOX, one over STARTTLS and one over imaps, trusting the
    test's own CA; a third entry that does not trust it fails alone and does not stop the others."""
    d = Dovecot({"alice": "secret"}, tls=True)
    try:
        d.start()
        n = 3
        for i in range(n):
            d.deliver("alice", synthetic(i))
        ca = str(d.ca_file())
        c = connector(fake_router.endpoint, url=d.url(), mailboxes=[
            "account=starttls tls=starttls ca_file=%s mailbox=INBOX" % ca,
            "account=imaps url=%s ca_file=%s mailbox=INBOX" % (d.imaps_url(), ca),
            "account=untrusted url=%s mailbox=INBOX" % d.imaps_url(),
        ], mark_seen=False)
        c.start()
        wait_for(lambda: len(fake_router.by_id()) == 2 * n, WAIT, "the mail read over both TLS entries")
        accounts = sorted(m["meta"]["account"] for m in fake_router.by_id().values())
        assert accounts == ["imaps"] * n + ["starttls"] * n
        wait_for(lambda: "untrusted/INBOX: SELECT" in c.log_text(), WAIT, "the untrusted entry to fail")
        assert len(d.search("alice", "UNSEEN")) == n  # mark_seen: false leaves the flags alone
        assert c.terminate() == 0
    finally:
        d.cleanup()


def stored_messages(router):
    """{id: message JSON} of every message omnirouted stored."""
    prefix = router.key_prefix + "msg:"
    out = {}
    for key in router.redis.scan_iter(prefix + "*"):
        rest = key[len(prefix):]
        data = router.redis.hget(key, "json")
        if data:
            out[rest] = json.loads(data)
    return out


def router_stat(router, name):
    return int(router.redis.hget(router.key_prefix + "stats", name) or 0)


def test_real_router_stores_every_fixture_once(dovecot, router, connector):
    by_uid = deliver_fixtures(dovecot)
    c = connector(router.endpoint)
    c.start()
    wait_for(lambda: router_stat(router, "messages") >= len(by_uid), WAIT, "every fixture stored by omnirouted")
    got = stored_messages(router)
    assert len(got) == len(by_uid)
    for id, m in got.items():
        e = by_uid[m["meta"]["uid"]]
        assert m["id"] == id
        assert m.get("subject") == e["subject"], e["file"]
        check_text(e, m["text"])
    assert c.terminate() == 0


def test_real_router_uidvalidity_change_stores_nothing_twice(dovecot, router, connector):
    deliver_fixtures(dovecot)
    c = connector(router.endpoint)
    c.start()
    wait_for(lambda: router_stat(router, "messages") == 14, WAIT, "every fixture stored")
    assert c.terminate() == 0
    dovecot.stop()
    dovecot.reset_uids("alice")
    dovecot.start(same_port=True)
    c.set_url(dovecot.url())
    dovecot.deliver("alice", synthetic(1, "after the change"))
    c.start()
    wait_for(lambda: router_stat(router, "messages") == 15, WAIT, "the new message stored")
    wait_for(lambda: router_stat(router, "duplicates") >= 14, WAIT, "the re-read mail dropped as duplicates")
    assert len(stored_messages(router)) == 15
    assert c.terminate() == 0


def test_no_ready_while_no_mailbox_answers(workdir, fake_router, connector):
    """READY=1 means the source was reached (docs/connectors.md): a server that is not there, tried again and again
    with back-off, never makes the connector ready, nor "reachable again" between two failures."""
    import socket
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = str(workdir / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.1)
    c = connector(fake_router.endpoint, url=f"imap://127.0.0.1:{port}")
    c.start(env={"NOTIFY_SOCKET": path})
    seen = []

    def failures():
        try:
            while True:
                seen.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
        return len(re.findall(r"Connection refused|connect", c.log_text())) >= 4
    try:
        wait_for(failures, 20, "four failed attempts")
        assert not any("READY=1" in d for d in seen), seen
        assert "reachable again" not in c.log_text() and "the source answered" not in c.log_text(), c.log_text()
    finally:
        assert c.terminate() == 0
        sock.close()


def test_a_failing_mailbox_backs_off_up_to_retry_max_ms(dovecot, fake_router, connector):
    """A mailbox that fails is retried poll_ms apart, doubling up to the common retry_max_ms (docs/connectors.md:
    500 ms in these tests), not to a fixed minute: with poll_ms 100, twelve tries take about 5 s, where a
    minute's cap would take over three minutes. The other mailbox is read meanwhile."""
    c = connector(fake_router.endpoint, mailboxes=["INBOX", "Missing"])
    c.start()
    dovecot.deliver("alice", synthetic(1))
    wait_for(lambda: len(fake_router.by_id()) == 1, WAIT, "the INBOX message")
    wait_for(lambda: c.log_text().count("support/Missing: SELECT") >= 12, 15, "twelve failed tries of Missing")
    assert c.terminate() == 0


class StallingServer:
    """An IMAP server (a thread) that stalls: "greeting" sends its greeting, then never answers (curl's first
    command waits, inside its connect and login); "login" answers CAPABILITY and LOGIN, then never answers a
    command (the connector's own SELECT waits). `stalled` is set once a connection waits on it."""

    def __init__(self, mode):
        import socket
        self.mode = mode
        self.stalled = threading.Event()
        self.lock = threading.Lock()
        self.conns = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def entry(self):
        """The email.mailboxes entry of a mailbox on this server."""
        return "account=stalled url=imap://127.0.0.1:%d mailbox=INBOX" % self.port

    def _accept(self):
        while True:
            try:
                a, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(a)
            threading.Thread(target=self._serve, args=(a,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        logged_in = False
        try:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1] stalling server ready\r\n")
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\r\n" in buf:
                    line, buf = buf.split(b"\r\n", 1)
                    tag, _, rest = line.partition(b" ")
                    verb = rest.split(b" ", 1)[0].upper()
                    if self.mode == "greeting" or logged_in:
                        self.stalled.set()  # and never answer
                    elif verb == b"CAPABILITY":
                        conn.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
                    elif verb == b"LOGIN":
                        conn.sendall(tag + b" OK logged in\r\n")
                        logged_in = True
                    else:
                        conn.sendall(tag + b" BAD not here\r\n")
        except OSError:
            pass

    def close(self):
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass


def stalling_connector(connector, fake_router, server, stalling_first=True):
    """A mailbox on the stalling server and the Dovecot one (the stalling one first unless told), both
    bounded by a minute (the default command timeout, and the unit's WatchdogSec)."""
    boxes = [server.entry(), "INBOX"] if stalling_first else ["INBOX", server.entry()]
    return connector(fake_router.endpoint, mailboxes=boxes, timeout_ms="60s", connect_timeout_ms="60s")


STALLS = ["greeting", "login"]


@pytest.mark.parametrize("stall", STALLS)
def test_a_stalled_server_does_not_hold_up_the_other_mailbox(stall, dovecot, fake_router, connector):
    """One IMAP server stalls (after its greeting, or after LOGIN) with a one-minute timeout: the other
    mailbox's mail still reaches the router within seconds, and is marked \\Seen."""
    server = StallingServer(stall)
    try:
        c = stalling_connector(connector, fake_router, server)
        c.start()
        wait_for(server.stalled.is_set, WAIT, "the connector to wait on the stalling server")
        dovecot.deliver("alice", synthetic(0))
        wait_for(lambda: len(fake_router.by_id()) == 1, 10, "the other mailbox's mail at the router")
        wait_for(lambda: not dovecot.search("alice", "UNSEEN"), 10, "the mail marked \\Seen")
        dovecot.deliver("alice", synthetic(1))
        wait_for(lambda: len(fake_router.by_id()) == 2, 10, "the next mail at the router")
        assert sorted(m["subject"] for m in fake_router.by_id().values()) == ["load 0000", "load 0001"]
        assert "stalled/INBOX: SELECT" not in c.log_text()  # still waiting, not failed
    finally:
        server.close()


@pytest.mark.parametrize("stall", STALLS)
def test_sigterm_ends_the_connector_at_once_while_a_server_stalls(stall, dovecot, fake_router, connector):
    """SIGTERM while one server stalls: the connector ends within a few seconds with status 0 (not a minute
    later), and what it took from the other mailbox stays taken once: the cursor is after it, and the
    restart spools only the new mail. (The Dovecot mailbox comes first here, so that its mail is taken
    before the stall even where one mailbox waits for the other.)"""
    import time
    server = StallingServer(stall)
    try:
        for i in range(3):
            dovecot.deliver("alice", synthetic(i))
        c = stalling_connector(connector, fake_router, server, stalling_first=False)
        c.start()
        wait_for(server.stalled.is_set, WAIT, "the connector to wait on the stalling server")
        wait_for(lambda: (c.state() or {}).get("last_uid") == 3, 10, "the other mailbox's mail spooled")
        began = time.monotonic()
        c.proc.send_signal(signal.SIGTERM)
        assert c.proc.wait(5) == 0
        assert time.monotonic() - began < 5
        assert c.state()["last_uid"] == 3
        dovecot.deliver("alice", synthetic(3))
        c.start()
        wait_for(lambda: (c.state() or {}).get("last_uid") == 4, 10, "the new mail spooled after the restart")
        wait_for(lambda: len(fake_router.by_id()) == 4, 10, "every mail at the router")
        subjects = [m["subject"] for m in fake_router.by_id().values()]
        assert sorted(subjects) == ["load %04d" % i for i in range(4)]
        # none twice; the line comes after the cursor is saved, and the mail may reach the router before it
        wait_for(lambda: re.findall(r"support/INBOX: spooled (\d+) message", c.log_text()) == ["3", "1"], 10,
                 "the restart's spooled line")
        c.proc.send_signal(signal.SIGTERM)
        assert c.proc.wait(5) == 0
    finally:
        server.close()


def test_watchdog_and_ready_go_on_while_a_server_stalls(workdir, dovecot, fake_router, connector):
    """Under systemd (NOTIFY_SOCKET, WATCHDOG_USEC): while one server stalls for longer than the watchdog
    interval, WATCHDOG=1 keeps coming every half interval, and READY=1 comes once the other mailbox
    answered."""
    import socket
    import time
    server = StallingServer("login")
    path = str(workdir / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.1)
    got = []  # (monotonic time, datagram)

    def drain():
        try:
            while True:
                got.append((time.monotonic(), sock.recv(4096).decode()))
        except socket.timeout:
            pass
    try:
        c = stalling_connector(connector, fake_router, server)
        c.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})  # a ping every 500 ms
        wait_for(server.stalled.is_set, WAIT, "the connector to wait on the stalling server")
        since = time.monotonic()
        wait_for(lambda: drain() or time.monotonic() - since >= 3, 10, "three seconds of the stall")
        pings = [t for t, d in got if "WATCHDOG=1" in d and t >= since]
        assert len(pings) >= 4, got
        assert any("READY=1" in d for _, d in got), got
        assert c.terminate() == 0
    finally:
        sock.close()
        server.close()



def unseen_mail():
    """Mail unlike the fixtures, as other clients write it, each with what docs/connectors.md ("The message")
    and DESIGN.md's message schema say it becomes: {subject: (raw bytes, {field: expected})}. A field whose
    expected value is None must be absent; "meta.x" names a meta key; "attachments" the whole list."""
    import base64
    import email.utils
    import time
    now = email.utils.formatdate(time.time() - 600)  # ten minutes ago: a sane Date
    b64 = lambda b: base64.b64encode(b).decode()
    png = base64.b64encode(b"\x89PNG" + bytes(range(256))).decode()
    mails = {}
    # Outlook and Gmail fold a long subject or name into B encoded-words padded one by one.
    mails["adjacent"] = (
        "From: =?UTF-8?B?SsO8cmdlbg==?=\r\n =?UTF-8?B?IE3DvGxsZXI=?= <Juergen.Mueller@Example.DE>\r\n"
        "To: support@example.com\r\nDate: %s\r\nMessage-ID: <adj-1@example.de>\r\n"
        "Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?UTF-8?B?IGF1cw==?=\r\n =?UTF-8?B?IEvDtmxu?=\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Hallo, die Rechnung f=C3=BCr M=C3=A4rz fehlt.\r\n"
        "--b1\r\nContent-Type: application/pdf; name=\"=?UTF-8?B?UmVjaG51bmcgTcOkcno=?= =?UTF-8?B?LnBkZg==?=\"\r\n"
        "Content-Disposition: attachment; filename=\"=?UTF-8?B?UmVjaG51bmcgTcOkcno=?= =?UTF-8?B?LnBkZg==?=\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n" % (now, b64(b"%PDF-1.4 x"))
    ).encode(), {"subject": "Grüße aus Köln", "from.id": "juergen.mueller@example.de",
                 "from.name": "Jürgen Müller", "text": "Hallo, die Rechnung für März fehlt.",
                 "thread": "adj-1@example.de", "meta.message_id": "adj-1@example.de",
                 "attachments": [{"name": "Rechnung März.pdf", "type": "application/pdf", "size": 10}]}
    # mixed > alternative > related: the plain alternative is the text; the other rendering and its inline
    # image are not attachments; a filename in RFC 2231 form; an unnamed part by its IMAP section.
    mails["nested"] = (
        "From: \"Doe, John\" <John.Doe@Example.ORG>\r\nDate: %s\r\nMessage-ID: <n-1@example.org>\r\n"
        "Subject: nested\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=M\r\n\r\n"
        "--M\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n"
        "--A\r\nContent-Type: text/plain; charset=iso-8859-15\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Preis: 10 \xa4\r\n"
        "--A\r\nContent-Type: multipart/related; boundary=R\r\n\r\n"
        "--R\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Preis: 10 &euro;</p><img src=\"cid:i\">\r\n"
        "--R\r\nContent-Type: image/png\r\nContent-ID: <i>\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n"
        "--R--\r\n--A--\r\n"
        "--M\r\nContent-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename*=utf-8''%%E2%%82%%AC%%20rates.pdf\r\n\r\nabc\r\n"
        "--M\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nYWJjZA\r\n"
        "--M--\r\n" % (now, png)
    ).encode("latin-1"), {"subject": "nested", "from.id": "john.doe@example.org", "from.name": "Doe, John",
                          "text": "Preis: 10 €", "thread": "n-1@example.org",
                          "attachments": [{"name": "€ rates.pdf", "type": "application/pdf", "size": 3},
                                          {"name": "part-3", "type": "application/octet-stream", "size": 4}]}
    # HTML only, quoted-printable windows-1252; a reply: thread is the first References id.
    mails["html reply"] = (
        "From: Ann <ann@example.org>\r\nDate: %s\r\nMessage-ID: <r-3@example.org>\r\n"
        "In-Reply-To: <r-2@example.com>\r\nReferences: <r-1@example.org>\r\n <r-2@example.com>\r\n"
        "Subject: =?windows-1252?Q?Re:_=93html_reply=94?=\r\nContent-Type: text/html; charset=windows-1252\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "<html><body><p>Thanks =96 it works.</p><p>Ann<br>Sales</p></body></html>\r\n" % now
    ).encode(), {"subject": "Re: “html reply”", "text": "Thanks – it works.\n\nAnn\nSales",
                 "thread": "r-1@example.org", "meta.message_id": "r-3@example.org",
                 "meta.in_reply_to": "r-2@example.com", "attachments": None}
    # koi8-r in base64 its writer did not pad; no Message-ID; a Date that is not a date: INTERNALDATE, said so.
    mails["koi8"] = (
        "From: =?koi8-r?B?8NLJ18XU?= <ivan@example.ru>\r\nDate: yesterday\r\nSubject: koi8\r\n"
        "Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n"
        % b64("Привет, мир".encode("koi8-r")).rstrip("=")
    ).encode(), {"from.name": "Привет", "text": "Привет, мир", "thread": None, "meta.message_id": None,
                 "meta.date_ignored": True}
    # No sender anyone could answer: the reason names what is wrong with the From found.
    mails["nobody"] = (
        "From: undisclosed-recipients:;\r\nDate: %s\r\nSubject: nobody\r\n\r\nwho am I\r\n" % now
    ).encode(), {"meta.no_sender": True, "meta.no_sender_reason": "no '@'", "text": "who am I\n"}
    # A UTF-8 byte-order mark and bare LF line ends.
    mails["bom"] = (
        "From: b@example.org\nDate: %s\nSubject: bom\nContent-Type: text/plain; charset=utf-8\n\n"
        "\ufeffline one\nline two\n" % now
    ).encode(), {"text": "line one\nline two\n", "meta.date_ignored": None}
    return mails


def test_real_router_stores_unseen_mail_field_by_field(dovecot, router, connector):
    """Mail the fixtures do not have, through Dovecot, omni-email and omnirouted: each message as stored in
    Redis (omni:msg:<id> json) is checked field by field against docs/connectors.md "The message"."""
    import datetime
    mails = unseen_mail()
    for raw, _ in mails.values():
        dovecot.deliver("alice", raw)
    c = connector(router.endpoint)
    c.start()
    wait_for(lambda: router_stat(router, "messages") >= len(mails), WAIT, "every message stored by omnirouted")
    got = stored_messages(router)
    assert len(got) == len(mails)
    by_subject = {m.get("subject"): m for m in got.values()}
    for name, (raw, want) in mails.items():
        subject = want.get("subject", name)
        m = by_subject.get(subject)
        assert m is not None, (name, sorted(s or "" for s in by_subject))
        assert m["channel"] == "email" and m["to"] == "support@example.com"
        assert re.fullmatch(r"email:support:[0-9a-f]{32}", m["id"]), m["id"]
        assert m["meta"]["size"] == len(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        received = datetime.datetime.fromisoformat(m["received_at"].replace("Z", "+00:00"))
        age = datetime.datetime.now(datetime.timezone.utc) - received
        assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=15), (name, m["received_at"])
        for field, value in want.items():
            if field == "attachments":
                have = m.get("attachments")
            elif field.startswith("meta."):
                have = m["meta"].get(field[5:])
            elif field.startswith("from."):
                have = m["from"].get(field[5:])
            else:
                have = m.get(field)
            assert have == value, (name, field, have, value)
    assert c.terminate() == 0



def test_max_text_bytes_above_what_can_be_sent_is_a_config_error(workdir, dovecot, fake_router, connector):
    """Every message is checked against the router's default limits (limits.text_bytes 65,536) before it is
    spooled, so a max_text_bytes above that let a longer text be built, refused as invalid and never sent (the
    mail lost to routing). Above 65,536 is now a config error naming file, line, column and key; at 65,536 a
    text of 80,000 bytes arrives cut, and said so."""
    c = connector(fake_router.endpoint, max_text_bytes=65537)
    r = subprocess.run([str(BINARY), "--config", str(c.conf), "--check-config"], capture_output=True, text=True)
    assert r.returncode == 1
    line = next(i for i, l in enumerate(c.conf.read_text().splitlines(), 1) if "max_text_bytes" in l)
    assert re.search(r"%s:%d:\d+: email\.max_text_bytes: 65537 is above the maximum 65536" % (re.escape(str(c.conf)), line),
                     r.stderr), r.stderr
    dovecot.deliver("alice", b"From: a@example.org\r\nSubject: long\r\n\r\n" + b"a" * 80000 + b"\r\n")
    c = connector(fake_router.endpoint, max_text_bytes=65536)
    c.start()
    wait_for(lambda: len(fake_router.by_id()) == 1, WAIT, "the message at the router")
    m = next(iter(fake_router.by_id().values()))
    assert m["text"] == "a" * 65536 and m["meta"]["truncated"] is True and m["meta"]["text_bytes"] == 80001
    assert "invalid" not in c.log_text()
    assert c.terminate() == 0


def test_max_fetch_bytes_at_and_one_past(dovecot, fake_router, connector):
    """max_fetch_bytes 65536: a message of exactly 65,536 bytes on the server is fetched whole (not
    truncated); one of 65,537 bytes is fetched partially, meta.truncated and meta.size its size there."""
    def mail(subject, size):
        head = "From: a@example.org\r\nSubject: %s\r\n\r\n" % subject
        body = "b" * (size - len(head) - 2) + "\r\n"
        return (head + body).encode()
    at, past = mail("at", 65536), mail("past", 65537)
    assert (len(at), len(past)) == (65536, 65537)
    dovecot.deliver("alice", at)
    dovecot.deliver("alice", past)
    c = connector(fake_router.endpoint, max_fetch_bytes=65536, max_text_bytes=65536)
    c.start()
    wait_for(lambda: len(fake_router.by_id()) == 2, WAIT, "both messages at the router")
    got = {m["subject"]: m for m in fake_router.by_id().values()}
    assert got["at"]["meta"]["size"] == 65536 and "truncated" not in got["at"]["meta"]
    assert got["at"]["text"] == at.decode().split("\r\n\r\n", 1)[1].replace("\r\n", "\n")
    assert got["past"]["meta"]["size"] == 65537 and got["past"]["meta"]["truncated"] is True
    assert c.terminate() == 0
