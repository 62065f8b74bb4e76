#!/usr/bin/python3
"""The outside world of `make run` (scripts/run-demo), all on 127.0.0.1: a partner's webhook receiver that checks
each Standard Webhooks signature with Python's hmac and prints what arrived; a stand-in X API serving one
mention; and one signed Twilio SMS and one signed Messenger event posted to the connectors, as the providers
would send them.

  demo_peers.py partner PORT SECRET_FILE          serve until killed; one line per delivery
  demo_peers.py xapi PORT                          serve GET /2/users/:id/mentions and /2/dm_events
  demo_peers.py sms URL PUBLIC_URL TOKEN_FILE       post one signed inbound SMS
  demo_peers.py facebook URL APP_SECRET_FILE        post one signed Messenger text event
"""
import base64
import hashlib
import hmac
import json
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PRINTING = threading.Lock()  # the partner receiver's lines, whole


def read(path):
    with open(path) as f:
        return f.read().strip()


def partner(port, secret_file):
    key = base64.b64decode(read(secret_file).removeprefix("whsec_"))

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            wid, ts = self.headers.get("webhook-id", ""), self.headers.get("webhook-timestamp", "")
            want = base64.b64encode(hmac.new(key, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
            sigs = [s.split(",", 1)[1] for s in self.headers.get("webhook-signature", "").split() if s.startswith("v1,")]
            ok = any(hmac.compare_digest(s, want) for s in sigs)
            event = json.loads(body) if ok else {}
            data = event.get("data", {})
            who = data.get("message", {}).get("from", "") if isinstance(data.get("message"), dict) else ""
            line = (f"{event.get('type', '?'):14} conversation {data.get('conversation', '?'):>4}"
                    f"{'  from ' + str(who) if who else ''}  (signature {'ok' if ok else 'BAD'}, {wid})\n")
            with PRINTING:  # one write a line: deliveries arrive on several threads at once
                sys.stdout.write(line)
                sys.stdout.flush()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()


def xapi(port):
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    mention = {"data": [{"id": "1861000000000000001", "author_id": "2244994945", "conversation_id": "1861000000000000001",
                         "created_at": now, "lang": "en",
                         "text": "@omnidemo my order 7781 never arrived, can someone help?"}],
               "includes": {"users": [{"id": "2244994945", "username": "demo_customer", "name": "Demo Customer"}]},
               "meta": {"result_count": 1, "newest_id": "1861000000000000001", "oldest_id": "1861000000000000001"}}
    empty = {"meta": {"result_count": 0}}

    class Api(BaseHTTPRequestHandler):
        def do_GET(self):
            path = urllib.parse.urlparse(self.path)
            q = urllib.parse.parse_qs(path.query)
            body = mention if "/mentions" in path.path and "since_id" not in q else empty
            raw = json.dumps(body).encode()
            self.send_response(200)
            for k, v in (("Content-Type", "application/json"), ("Content-Length", str(len(raw))),
                         ("x-rate-limit-remaining", "450"), ("x-rate-limit-reset", str(int(time.time()) + 900))):
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Api).serve_forever()


def post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read().decode()


def sms(url, public_url, token_file):
    params = {"MessageSid": "SM" + "d3" * 16, "AccountSid": "AC" + "00" * 16, "From": "+14155550100",
              "To": "+14155550199", "Body": "Hi, it's Ann again: any news on order 1042?", "NumMedia": "0"}
    signed = public_url + "".join(k + params[k] for k in sorted(params))
    sig = base64.b64encode(hmac.new(read(token_file).encode(), signed.encode(), hashlib.sha1).digest()).decode()
    status, body = post(url, urllib.parse.urlencode(params).encode(),
                        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
    print(f"POST {url} -> {status} {body.strip()}")


def facebook(url, secret_file):
    event = {"object": "page", "entry": [{"id": "1234567890", "time": int(time.time() * 1000), "messaging": [
        {"sender": {"id": "6543210987654321"}, "recipient": {"id": "1234567890"}, "timestamp": int(time.time() * 1000),
         "message": {"mid": "mid.demo.1", "text": "Bonjour, ma commande 5512 est en retard"}}]}]}
    body = json.dumps(event).encode()
    sig = "sha256=" + hmac.new(read(secret_file).encode(), body, hashlib.sha256).hexdigest()
    status, text = post(url, body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig})
    print(f"POST {url} -> {status} {text.strip()}")


if __name__ == "__main__":
    # started in the background by run-demo, where bash ignores SIGINT for its jobs (and Python keeps an
    # inherited SIG_IGN): stop on SIGINT and SIGTERM alike, so Ctrl-C and run-demo's stop() both end it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        {"partner": lambda: partner(int(args[0]), args[1]), "xapi": lambda: xapi(int(args[0])),
         "sms": lambda: sms(*args), "facebook": lambda: facebook(*args)}[cmd]()
    except KeyboardInterrupt:
        pass  # Ctrl-C: the demo is stopping
