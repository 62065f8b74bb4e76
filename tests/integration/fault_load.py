"""Steady work for the fault suite (test_faults.py): OMNI/1 clients that keep a ledger of every ACKed id,
agents resolving and answering through omnictl, and the test clock moving so timers fire.

Each client behaves as a connector must (docs/protocol.md): it resends whatever has no answer after a
timeout, after a BUSY's hint and on every reconnect, so a router or Redis killed under it costs nothing
but time. Only an ACK goes into its ledger: that is the promise the suite checks.
"""
import json
import random
import subprocess
import threading
import time

import redis
import zmq
from zmq.utils.monitor import recv_monitor_message

RESEND_S = 2.0   # an unanswered message is sent again after this long
WINDOW = 500     # at most this many unanswered messages per client


def rfc3339_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


TEXTS = ["my order {n} has not arrived", "the app shows an error {n} when I pay", "hello, a question {n}",
         "crash again on screen {n}", "where is order {n}?", "can you call me back about {n}"]


class LoadClient(threading.Thread):
    """One connector's worth of traffic: `rate` messages a second from `customers` customers over email, sms
    and twitter until stop(), then it keeps resending until everything it sent is answered or `drain_s`
    passes. acked holds every id the router ACKed; nacked and pending must be empty at the end."""

    def __init__(self, endpoint, index, seed, rate=15, customers=60, drain_s=90):
        super().__init__(name=f"load{index}", daemon=True)
        self.endpoint, self.index, self.prefix = endpoint, index, f"load{index}"
        self.rate, self.customers = rate, customers
        self.rnd = random.Random(seed)
        self.drain_s = drain_s
        self.acked, self.nacked, self.pending = set(), [], {}  # pending: id -> [frames, resend at]
        self.sent = self.resent = self.busy = self.reconnects = 0
        self.stopping = threading.Event()
        self.error = None

    def stop(self):
        self.stopping.set()

    def message(self, n):
        k = self.rnd.randrange(self.customers)
        channel = self.rnd.choice(("email", "sms", "twitter"))
        frm = {"email": f"{self.prefix}-{k}@faults.example", "sms": f"+1415{600 + self.index}{k:04d}",
               "twitter": str(700000 + 10000 * self.index + k)}[channel]
        return {"id": f"{self.prefix}:{n}", "channel": channel, "from": {"id": frm}, "received_at": rfc3339_now(),
                "text": self.rnd.choice(TEXTS).format(n=n)}

    def run(self):
        try:
            self._run()
        except Exception as e:  # the test reports it; a thread's exception would otherwise vanish
            self.error = repr(e)

    def _run(self):
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 50)
        monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED)
        sock.connect(self.endpoint)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        n, next_send, gave_up_at = 0, time.monotonic(), None
        try:
            while True:
                now = time.monotonic()
                if self.stopping.is_set():
                    gave_up_at = gave_up_at or now + self.drain_s
                    if not self.pending or now > gave_up_at:
                        return
                elif now >= next_send and len(self.pending) < WINDOW:
                    m = self.message(n)
                    n += 1
                    self.pending[m["id"]] = [[b"OMNI/1", b"MSG", json.dumps(m).encode()], 0.0]
                    self.sent += 1
                    next_send += 1.0 / self.rate
                for id, p in self.pending.items():
                    if p[1] <= now:
                        try:
                            sock.send_multipart(p[0], zmq.NOBLOCK)
                        except zmq.Again:
                            break  # the pipe is full while the router is away: try again later
                        self.resent += p[1] > 0
                        p[1] = now + RESEND_S
                wait = max(0, min(next_send - time.monotonic(), 0.02))
                for s, _ in poller.poll(int(wait * 1000) + 1):
                    if s is monitor:
                        recv_monitor_message(monitor)
                        self.reconnects += 1
                        for p in self.pending.values():
                            p[1] = 0.0  # a new connection: whatever was on the old one may be gone
                    else:
                        self._answers(sock)
        finally:
            sock.disable_monitor()
            monitor.close(0)
            sock.close(0)

    def _answers(self, sock):
        while True:
            try:
                f = [x.decode() for x in sock.recv_multipart(zmq.NOBLOCK)]
            except zmq.Again:
                return
            if len(f) < 3 or f[0] != "OMNI/1":
                continue
            if f[1] == "ACK":
                self.acked.add(f[2])
                self.pending.pop(f[2], None)
            elif f[1] == "NACK":
                self.nacked.append(f[2:])
                self.pending.pop(f[2], None)
            elif f[1] == "BUSY" and f[2] in self.pending:
                self.busy += 1
                self.pending[f[2]][1] = time.monotonic() + int(f[3]) / 1000.0


class Agents(threading.Thread):
    """The people: every `every` seconds one conversation somebody holds is answered (a quarter of the time)
    or resolved, through omnictl, so capacity frees and queues drain while the faults happen. Errors while
    Redis or the router is down are expected and ignored: the next round tries again."""

    def __init__(self, router, client, holders, seed, every=0.06):
        super().__init__(name="agents", daemon=True)
        self.router, self.r, self.holders, self.every = router, client, holders, every
        self.rnd = random.Random(seed)
        self.resolved = self.responded = 0
        self.stopping = threading.Event()
        self.error = None

    def stop(self):
        self.stopping.set()

    def run(self):
        try:
            while not self.stopping.wait(self.every):
                self.once()
        except Exception as e:
            self.error = repr(e)

    def once(self):
        try:
            cv = self.r.srandmember(self.rnd.choice(self.holders))
        except redis.RedisError:
            return
        if not cv:
            return
        verb = "respond" if self.rnd.random() < 0.25 else "resolve"
        try:
            done = self.router.ctl("conversation", verb, cv, "--by", "faults", check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return
        if done:
            if verb == "resolve":
                self.resolved += 1
            else:
                self.responded += 1
