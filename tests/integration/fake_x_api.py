"""A local stand-in for the X API v2 that serves the recorded responses of ../shared/fixtures/twitter byte for
byte (body files as they are; the recorded status and header values), on 127.0.0.1 and an ephemeral port.

A test scripts it per route ("mentions", "dms") with a function of the request's query that returns a
Response; every request is logged with its wall-clock time, so a test can check what was asked and when.
A gate holds the answers of one route until the test opens it (to stop a connector between two pages).
"""
import json
import os
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import ROOT

FIXTURES = os.environ.get("OMNI_FIXTURES", os.path.join(os.path.dirname(ROOT), "shared", "fixtures"))
TWITTER = os.path.join(FIXTURES, "twitter")


def fixture_bytes(name):
    with open(os.path.join(TWITTER, name), "rb") as f:
        return f.read()


def fixture_json(name):
    return json.loads(fixture_bytes(name))


class Response:
    def __init__(self, status, body, headers=()):
        self.status, self.body, self.headers = status, body, list(headers)


def recorded_mentions_headers():
    """The recorded headers of the mentions call (tweepy-GET-2-users-783214-mentions.headers.json)."""
    rec = fixture_json("tweepy-GET-2-users-783214-mentions.headers.json")
    return list(rec["response_headers_subset"].items())


def recorded_dm_headers():
    """The recorded rate-limit headers of GET /2/dm_events (tweepy-dm.headers.json), and its content type."""
    rec = fixture_json("tweepy-dm.headers.json")["GET /2/dm_events"]
    return [("content-type", "application/json; charset=utf-8")] + \
        [(k, v) for k, v in rec.items() if k.startswith("x-rate-limit-")]


def page(name, headers=None):
    """A recorded body served with recorded headers (the mentions call's unless told)."""
    return Response(200, fixture_bytes(name), recorded_mentions_headers() if headers is None else headers)


def too_many_requests(reset_epoch_s):
    """The recorded 429 body, with the headers X sends with it: the window's reset and nothing left."""
    return Response(429, fixture_bytes("v2-429-body.json"),
                    [("content-type", "application/problem+json"), ("x-rate-limit-limit", "450"),
                     ("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", str(reset_epoch_s))])


UNAUTHORIZED = Response(401, b'{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}',
                        [("content-type", "application/problem+json")])
NOT_FOUND = Response(404, b'{"title":"Not Found"}', [("content-type", "application/json")])


class FakeXApi:
    def __init__(self, token):
        self.token = token
        self.routes = {}            # name -> function(query dict) -> Response
        self.requests = []          # (wall time, route, query dict, authorized)
        self.gates = {}             # name -> (threading.Event (set: open), function(query) -> held?)
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, resp):
                try:
                    self.send_response_only(resp.status)
                    for k, v in resp.headers:
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(resp.body)))
                    self.end_headers()
                    self.wfile.write(resp.body)
                except OSError:
                    pass  # the connector was killed or stopped while the answer was held

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
                route = "mentions" if url.path == "/2/users/783214/mentions" else \
                    "dms" if url.path == "/2/dm_events" else None
                authorized = self.headers.get("Authorization") == "Bearer " + api.token
                with api.lock:
                    api.requests.append((time.time(), route, query, authorized))
                gate = api.gates.get(route)
                if gate is not None and gate[1](query):
                    gate[0].wait(30)
                if not authorized:
                    resp = UNAUTHORIZED
                elif route not in api.routes:
                    resp = NOT_FOUND
                else:
                    resp = api.routes[route](query)
                self.answer(resp)

            def do_POST(self):
                # a DM sent (an outpost's pointer): route "dm_send", the query {"participant": id, "body": JSON}
                url = urllib.parse.urlsplit(self.path)
                m = re.fullmatch(r"/2/dm_conversations/with/(\d+)/messages", url.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                authorized = self.headers.get("Authorization") == "Bearer " + api.token
                query = {"participant": m.group(1) if m else None, "body": body.decode("utf-8", "replace"),
                         "content_type": self.headers.get("Content-Type")}
                with api.lock:
                    api.requests.append((time.time(), "dm_send" if m else None, query, authorized))
                if not authorized:
                    resp = UNAUTHORIZED
                elif m is None:
                    resp = NOT_FOUND
                elif "dm_send" in api.routes:
                    resp = api.routes["dm_send"](query)
                else:  # the recorded answer of a DM sent
                    resp = Response(201, fixture_bytes(
                        "tweepy-POST-2-dm_conversations-with-750362064426721281-messages.201.json"),
                        [("content-type", "application/json; charset=utf-8")])
                self.answer(resp)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def hold(self, route, when=lambda query: True):
        """Holds the answers of route to requests whose query matches when, until release(route)."""
        self.gates[route] = (threading.Event(), when)

    def release(self, route):
        gate = self.gates.pop(route, None)
        if gate is not None:
            gate[0].set()

    def calls(self, route):
        with self.lock:
            return [r for r in self.requests if r[1] == route]

    def stop(self):
        for gate in list(self.gates.values()):
            gate[0].set()
        self.server.shutdown()
        self.server.server_close()
