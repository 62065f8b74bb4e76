#!/usr/bin/python3
"""A complete omnirouter connector in Python, speaking OMNI/1 directly (docs/connectors.md).

It reads a text file of lines "SENDER<TAB>TEXT" and hands each line to omnirouted as a message on
channel x-python, with the same promise as the C runtime: a message is written and fsynced to an on-disk
spool before anything else happens to it, and stays there until the router answers ACK (stored) or NACK
(refused: moved to the dead-letter file). Unanswered messages are resent after a timeout, after BUSY's
hint, and on every start, so killing this program at any moment loses nothing; the router deduplicates
by id, so resending never stores twice.

Needs only Debian's python3-zmq. Usage:
    omni_connector.py --endpoint ipc:///var/lib/omnirouter/omnirouter-ingest.sock --spool ./spool input.txt
    omni_connector.py ... --wait 30 input.txt   # exit 0 once every message is answered (1 on timeout)
Prints "ACK <id>" and "NACK <id> <reason>" lines on stdout.

Spool layout (one directory, one program at a time: it takes an flock):
    spool.jsonl        append-only: {"add": <message>} and {"done": <id>, "reply": "ACK"|"NACK"}
    dead-letter.jsonl  {"id", "reason", "nacked_at", "message"} per NACK
Replaying spool.jsonl gives the unanswered messages; it is rewritten (atomically) once all are answered.
"""
import argparse
import fcntl
import hashlib
import json
import os
import signal
import sys
import time

import zmq

PROTO = b"OMNI/1"
RESEND_S = 5.0        # resend a message unanswered this long
PING_S = 10.0         # PING a router that has been silent this long
WINDOW = 1000         # at most this many unanswered messages on the wire
BUSY_MAX_S = 60.0     # never wait longer than this on a BUSY hint


def rfc3339_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Messages on disk until answered. Not thread-safe; one Spool per directory (flock)."""

    def __init__(self, directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.dir = directory
        self.path = os.path.join(directory, "spool.jsonl")
        self.lock = open(os.path.join(directory, "spool.lock"), "a")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"{directory}: another connector uses this spool")
        self.pending = {}  # id -> message (dict), in submission order
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        break  # a torn last line from a crash: it was never fsynced, so never promised
                    if "add" in rec:
                        self.pending[rec["add"]["id"]] = rec["add"]
                    elif "done" in rec:
                        self.pending.pop(rec["done"], None)
        self.log = open(self.path, "a", encoding="utf-8")
        self.dirty = False

    def add(self, msg):
        """Appends msg; call sync() before acknowledging the source. A pending id is not added twice."""
        if msg["id"] in self.pending:
            return False
        self.log.write(json.dumps({"add": msg}, ensure_ascii=False) + "\n")
        self.pending[msg["id"]] = msg
        self.dirty = True
        return True

    def sync(self):
        if self.dirty:
            self.log.flush()
            os.fsync(self.log.fileno())
            self.dirty = False

    def done(self, id, reply, reason=None):
        msg = self.pending.pop(id, None)
        if msg is None:
            return False  # a late answer to something already answered
        if reply == "NACK":
            with open(os.path.join(self.dir, "dead-letter.jsonl"), "a", encoding="utf-8") as dl:
                dl.write(json.dumps({"id": id, "reason": reason, "nacked_at": rfc3339_now(), "message": msg},
                                    ensure_ascii=False) + "\n")
                dl.flush()
                os.fsync(dl.fileno())
        self.log.write(json.dumps({"done": id, "reply": reply}) + "\n")
        self.log.flush()  # losing a "done" only means one harmless resend: no fsync needed
        if not self.pending:
            self.compact()
        return True

    def compact(self):
        """Everything answered: replace the log with an empty one (write, fsync, rename, fsync dir)."""
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.path)
        fsync_dir(self.dir)
        self.log.close()
        self.log = open(self.path, "a", encoding="utf-8")


class Connector:
    """The OMNI/1 side: a DEALER that sends what the spool holds and files the router's answers."""

    def __init__(self, endpoint, spool_dir):
        self.spool = Spool(spool_dir)
        self.ctx = zmq.Context.instance()
        self.endpoint = endpoint
        self.sock = None
        self.sent_at = {}  # id -> time it was last sent (unanswered, on the wire)
        self.not_before = {}  # id -> earliest resend after BUSY
        self.heard = time.monotonic()
        self.pinged = 0.0
        self.connect()

    def connect(self):
        if self.sock is not None:
            self.sock.close(0)
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, WINDOW * 2)
        # Over ipc the socket file's permissions decide who connects. For a router's tcp:// endpoint (CURVE),
        # set before connect: sock.curve_serverkey = the router's .pub, sock.curve_secretkey = our .key (a
        # file of mode 0600, never in code), sock.curve_publickey = zmq.curve_public(that secret).
        self.sock.connect(self.endpoint)
        self.sent_at.clear()  # a new connection: everything unanswered goes again
        self.heard = time.monotonic()

    def submit(self, msg):
        """Spools msg (durable only after commit())."""
        self.spool.add(msg)

    def commit(self):
        """fsyncs the spool: after this, the source may be told the messages are taken."""
        self.spool.sync()

    def _send_due(self):
        now = time.monotonic()
        for id, msg in self.spool.pending.items():
            if len(self.sent_at) >= WINDOW and id not in self.sent_at:
                break
            if now - self.sent_at.get(id, -RESEND_S) < RESEND_S or now < self.not_before.get(id, 0):
                continue
            try:
                self.sock.send_multipart([PROTO, b"MSG", json.dumps(msg, ensure_ascii=False).encode()],
                                         zmq.NOBLOCK)
            except zmq.Again:
                return  # the socket is full: try again next turn
            self.sent_at[id] = now
        if now - self.heard > PING_S and now - self.pinged > PING_S:
            try:
                self.sock.send_multipart([PROTO, b"PING"], zmq.NOBLOCK)
                self.pinged = now
            except zmq.Again:
                pass
        if now - self.heard > 3 * PING_S:
            self.connect()  # the router is gone or the connection is stale: start over

    def _handle(self, frames):
        frames = [f.decode("utf-8", "replace") for f in frames]
        if len(frames) < 2 or frames[0] != "OMNI/1":
            print(f"ignoring a malformed reply: {frames[:3]}", file=sys.stderr)
            return
        self.heard = time.monotonic()
        cmd = frames[1]
        if cmd == "ACK" and len(frames) == 3:
            self.sent_at.pop(frames[2], None)
            if self.spool.done(frames[2], "ACK"):
                print(f"ACK {frames[2]}", flush=True)
        elif cmd == "NACK" and len(frames) == 4:
            self.sent_at.pop(frames[2], None)
            if self.spool.done(frames[2], "NACK", frames[3]):
                print(f"NACK {frames[2]} {frames[3]}", flush=True)
        elif cmd == "BUSY" and len(frames) == 4:
            try:
                wait = min(max(int(frames[3]), 10) / 1000.0, BUSY_MAX_S)
            except ValueError:
                wait = RESEND_S
            self.sent_at.pop(frames[2], None)
            self.not_before[frames[2]] = time.monotonic() + wait
        elif cmd == "PING":
            self.sock.send_multipart([PROTO, b"PONG"], zmq.NOBLOCK)
        elif cmd != "PONG":
            print(f"ignoring an unknown reply: {frames[:3]}", file=sys.stderr)

    def poll(self, timeout_s):
        """Sends what is due, handles replies for up to timeout_s. Never blocks longer."""
        self._send_due()
        if self.sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            while True:
                try:
                    self._handle(self.sock.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break

    def close(self):
        self.sock.close(0)


def messages_from(path, channel):
    """One message per line "SENDER<TAB>TEXT". The id hashes the file name, line number and line, so
    reading the same file again yields the same ids (and the router stores nothing twice)."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for n, line in enumerate(f, 1):
            # bytes that are not UTF-8 become U+FFFD: a message is UTF-8, and one bad byte must not stop the feed
            line = line.rstrip("\n").encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            if not line.strip():
                continue
            sender, _, text = line.partition("\t")
            digest = hashlib.sha256(f"{os.path.abspath(path)}:{n}:{line}".encode())
            yield {
                "id": f"{channel}:{digest.hexdigest()[:32]}",
                "channel": channel,
                "from": {"id": sender.strip()},
                "received_at": rfc3339_now(),
                "text": text,
                "meta": {"file": os.path.abspath(path), "line": n},
            }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True, help="router ingest endpoint (ipc://... or tcp://...)")
    ap.add_argument("--spool", required=True, help="spool directory")
    ap.add_argument("--channel", default="x-python", help="x-<name> channel (default x-python)")
    ap.add_argument("--wait", type=float, default=None,
                    help="exit once every message is answered, or with status 1 after this many seconds")
    ap.add_argument("input", help="text file: SENDER<TAB>TEXT per line")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # clean exit; the spool keeps what is unanswered

    c = Connector(args.endpoint, args.spool)
    for msg in messages_from(args.input, args.channel):
        c.submit(msg)
    c.commit()  # from here on, the input file could be deleted: the spool has everything
    deadline = None if args.wait is None else time.monotonic() + args.wait
    try:
        while c.spool.pending or deadline is None:
            if deadline is not None and time.monotonic() > deadline:
                print(f"{len(c.spool.pending)} message(s) unanswered; they stay in {args.spool}", file=sys.stderr)
                return 1
            c.poll(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
