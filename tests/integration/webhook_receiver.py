"""A partner's endpoint for the omni-webhooks tests: an HTTP server on an ephemeral port that checks every
request's Standard Webhooks signature itself (Python's hmac, not the code under test) and answers what the
test's script says for that webhook-id's n-th attempt."""
import base64
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sign(secret, msg_id, timestamp, body):
    """v1,<base64 HMAC-SHA256(base64decode(secret after whsec_), id.timestamp.body)>"""
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(secret, msg_id, timestamp, body, header, tolerance=300, now=None):
    """True when any v1 signature in header (space-separated) is the one secret makes, and the timestamp is
    within tolerance seconds of now (the reference receivers' 5 minutes)."""
    if now is not None and abs(now - int(timestamp)) > tolerance:
        return False
    want = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(want, s) for s in header.split(" ") if s.startswith("v1,"))


class Receiver:
    """script(msg_id, n) -> (status, headers, stall_seconds) for the n-th request (1-based) of msg_id.
    Every request is recorded in .requests as a dict: id, n, at, status, stalled (answered only after the
    sender's timeout), body (parsed), verified
    (per secret), signature, timestamp."""

    def __init__(self, secrets, script, timeout=1.0, tls=None):
        """tls: (certificate file, key file): an https endpoint at https://localhost:PORT/hook."""
        self.secrets, self.script, self.timeout = secrets, script, timeout
        self.requests, self.lock = [], threading.Lock()
        self.counts = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                msg_id = self.headers.get("webhook-id", "")
                ts = self.headers.get("webhook-timestamp", "0")
                sig = self.headers.get("webhook-signature", "")
                with receiver.lock:
                    n = receiver.counts[msg_id] = receiver.counts.get(msg_id, 0) + 1
                status, headers, stall = receiver.script(msg_id, n)
                rec = {"id": msg_id, "n": n, "at": time.monotonic(), "status": status, "stalled": stall >= receiver.timeout,
                       "body": json.loads(raw), "raw": raw, "signature": sig, "timestamp": ts,
                       "content_type": self.headers.get("Content-Type"),
                       "verified": [verify(s, msg_id, ts, raw, sig, now=int(time.time())) for s in receiver.secrets]}
                with receiver.lock:
                    receiver.requests.append(rec)
                if stall:
                    time.sleep(stall)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            # the handshake is made in the request's thread, not in accept (a client that fails it, as one
            # that does not trust the certificate, must not hold up the server)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True,
                                                 do_handshake_on_connect=False)
            self.url = f"https://localhost:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def accepted(self):
        """Requests the sender saw answered 2xx (a stalled one it had given up on does not count)."""
        return [r for r in self.snapshot() if 200 <= r["status"] < 300 and not r["stalled"]]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class RawEndpoint:
    """An endpoint that reads each request whole, then lets answer(sock, n) write whatever bytes it likes
    (n: the request's number, 1-based): answers no HTTP library would send, such as a body that trickles
    or never ends. .requests holds (monotonic time, request head) per request."""

    def __init__(self, answer, ipv6=False):
        """ipv6: listen on ::1, the url an IPv6 literal (http://[::1]:PORT/hook)."""
        self.answer, self.requests, self.lock = answer, [], threading.Lock()
        self.sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET)
        self.sock.bind(("::1" if ipv6 else "127.0.0.1", 0))
        self.sock.listen(64)
        host = "[::1]" if ipv6 else "127.0.0.1"
        self.url = f"http://{host}:{self.sock.getsockname()[1]}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            try:
                data = b""
                while True:  # requests one after another on a kept-alive connection
                    while b"\r\n\r\n" not in data:
                        got = conn.recv(65536)
                        if not got:
                            return
                        data += got
                    head, _, data = data.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    while len(data) < length:
                        got = conn.recv(65536)
                        if not got:
                            return
                        data += got
                    data = data[length:]
                    with self.lock:
                        self.requests.append((time.monotonic(), head))
                        n = len(self.requests)
                    if not self.answer(conn, n):
                        return  # the answer closes the connection
            except OSError:
                pass

    def close(self):
        self.sock.close()
