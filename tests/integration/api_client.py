"""omni-api for the tests: the process (started on an ephemeral port, ready when its `ready:` line names the
port) and a client that checks EVERY answer against docs/openapi.yaml: the status must be documented for the
operation (a method the path does not take: 405, documented on the path's operations, with Allow), the JSON
body must match that response's schema (python3-jsonschema, draft 2020-12 as OpenAPI 3.1 uses), and the
headers the response declares required (WWW-Authenticate, Allow, Retry-After) be there and match theirs.
Event streams are read line by line with a deadline."""
import http.client
import json
import os
import re
import socket
import time

import jsonschema
import yaml

from harness import ROOT, Daemon, Peer, Router, message, wait_for

SPEC = yaml.safe_load(open(os.path.join(ROOT, "docs", "openapi.yaml")))
_RESOLVER = jsonschema.RefResolver.from_schema(SPEC)


def _deref(node):
    while isinstance(node, dict) and "$ref" in node:
        node = _RESOLVER.resolve(node["$ref"])[1]
    return node


def operations():
    """Every (method, path template, operationId) the spec describes."""
    return [(m.upper(), p, op["operationId"]) for p, item in SPEC["paths"].items() for m, op in item.items()]


def path_template(path):
    """The spec's path template that path (query string ignored) is an instance of, or None. A parameter
    matches what its schema's pattern allows (conversation ids, agent names)."""
    path = path.split("?")[0]
    for template, item in SPEC["paths"].items():
        params = {}
        for op in item.values():
            for p in op.get("parameters", []):
                p = _deref(p)
                params[p["name"]] = _deref(p["schema"]).get("pattern", "^[^/]+$")
        rx = re.escape(template)
        for name, pattern in params.items():
            rx = rx.replace(re.escape("{" + name + "}"), "(?:" + pattern.strip("^$") + ")")
        if re.fullmatch(rx, path):
            return template
    return None


def find_operation(method, path):
    template = path_template(path)
    return SPEC["paths"][template].get(method.lower()) if template else None


def schema_check(schema, value, what):
    jsonschema.Draft202012Validator(schema, resolver=_RESOLVER).validate(value)


class Answer:
    def __init__(self, status, headers, body, raw=b""):
        self.status, self.headers, self.body, self.raw = status, headers, body, raw

    def __repr__(self):
        return f"<{self.status} {self.body}>"


class OmniApi(Daemon):
    """An omni-api on redis_address (unix:...; None: extra names sentinels), its config written for the test;
    .log_path has its stderr."""
    program = "omni-api"

    def __init__(self, directory, redis_address, extra=None, name="api"):
        self.dir = directory
        self.config = os.path.join(directory, name + ".yaml")
        self.log_path = os.path.join(directory, name + ".log")
        values = {"api": {"listen": "127.0.0.1:0", "log_level": "debug", "retry_after": "3s"},
                  "redis": {"timeout_ms": 1000, **({"address": redis_address} if redis_address else {})},
                  "limits": {"body_bytes": 1024}, "sse": {"keepalive": "1s"}}
        for k, v in (extra or {}).items():
            values.setdefault(k.split(".")[0], {})[k.split(".", 1)[1]] = v
        with open(self.config, "w") as f:
            for section, kv in values.items():
                f.write(section + ":\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in kv.items()))

    def start(self, env=None):
        self.spawn(["--config", self.config], env=env)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"omni-api exited {self.proc.returncode}:\n{self.log()}")
            m = re.search(r"ready: listening on \S+ port (\d+)", self.log())
            return m and int(m.group(1))
        self.port = wait_for(ready, 20, "omni-api's ready line")
        return self

    def request(self, method, path, token=None, body=None, headers=None, raw=None):
        """One request; the answer checked against docs/openapi.yaml. body: JSON-able; raw: bytes as they are."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        text = resp.read()
        conn.close()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        assert headers.get("content-type") == "application/json", (method, path, resp.status, headers)
        doc = json.loads(text)
        self.check(method, path, resp.status, headers, doc)
        return Answer(resp.status, headers, doc, text)

    @staticmethod
    def check(method, path, status, headers, doc):
        """An answer against docs/openapi.yaml: the status documented for the operation (405: for every
        operation of a path that does not take the method), the body valid against that response's schema,
        the headers it declares required present and valid. headers: lower-cased names."""
        template = path_template(path)
        if template is None:  # a path the API does not have: 404, an Error
            assert status == 404, (method, path, status, doc)
            schema_check(SPEC["components"]["schemas"]["NotFoundError"], doc, path)
            return
        item = SPEC["paths"][template]
        op = item.get(method.lower())
        if op is None:  # a path of the spec, another method: each of the path's operations documents 405
            assert status == 405, (method, path, status, doc)
            for o in item.values():
                assert "405" in o["responses"], f"{o['operationId']} does not document 405"
            allow = ", ".join(m.upper() for m in ("get", "put", "post") if m in item)
            assert headers.get("allow") == allow, (method, path, headers)
            op = next(iter(item.values()))
        resp = op["responses"].get(str(status))
        assert resp is not None, f"{method} {path} answered {status}, not documented in openapi.yaml: {doc}"
        resp = _deref(resp)
        schema = resp["content"]["application/json"]["schema"]
        schema_check(schema, doc, f"{method} {path} {status}")
        for name, h in resp.get("headers", {}).items():
            h = _deref(h)
            value = headers.get(name.lower())
            if value is None:
                assert not h.get("required"), f"{method} {path} {status}: no {name} header: {headers}"
                continue
            hs = _deref(h["schema"])
            schema_check(hs, int(value) if hs.get("type") == "integer" else value, f"{method} {path} {name}")
        if status == 405:
            assert headers.get("allow") == ", ".join(m.upper() for m in ("get", "put", "post")
                                                     if m in item), (method, path, headers)


class EventStream:
    """GET /v1/events read as it arrives: .next_event(timeout) gives (id, type, data) or a comment."""

    def __init__(self, api, token, last_event_id=None):
        self.sock = socket.create_connection(("127.0.0.1", api.port), timeout=10)
        extra = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id else ""
        self.sock.sendall(f"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{extra}\r\n".encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n", 10).decode()
        self.status = int(head.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in
                        (line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)}
        self.chunked = self.headers.get("transfer-encoding") == "chunked"
        self.text = ""

    def _until(self, sep, timeout):
        deadline = time.monotonic() + timeout
        while sep not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"nothing on the stream within {timeout}s")
            self.sock.settimeout(left)
            got = self.sock.recv(65536)
            if not got:
                raise EOFError("stream closed")
            self.buf += got
        out, self.buf = self.buf.split(sep, 1)
        return out

    def _more_text(self, timeout):
        if self.chunked:
            size = int(self._until(b"\r\n", timeout), 16)
            if size == 0:
                raise EOFError("stream ended")
            while len(self.buf) < size + 2:
                self.buf += self.sock.recv(65536)
            self.text += self.buf[:size].decode()
            self.buf = self.buf[size + 2:]
        else:
            self.text += self._until(b"\n", timeout).decode() + "\n"

    def next_block(self, timeout=10):
        """The next block (lines up to a blank line) as a list of lines."""
        deadline = time.monotonic() + timeout
        while "\n\n" not in self.text:
            self._more_text(max(0.01, deadline - time.monotonic()))
        block, self.text = self.text.split("\n\n", 1)
        return block.split("\n")

    def next_event(self, timeout=10):
        """The next event as (id, type, data), skipping comments and the retry hint; id is None for an event
        without one (gap)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.next_block(max(0.01, deadline - time.monotonic()))
            fields = {}
            for line in lines:
                if line.startswith(":") or not line:
                    continue
                k, _, v = line.partition(":")
                v = v[1:] if v.startswith(" ") else v
                fields[k] = fields[k] + "\n" + v if k in fields else v
            if "data" in fields:
                return fields.get("id"), fields.get("event"), json.loads(fields["data"])

    def close(self):
        self.sock.close()


class ApiWorld:
    """A router on the test's Redis with policy, an omni-api beside it (api_extra: more of its keys), a peer to
    submit messages with, and a token made with omnictl for each of subjects, in .tokens."""

    def __init__(self, tmp_path, redis_server, policy, subjects, router_extra=None, api_extra=None):
        self.redis_server = redis_server
        self.redis = redis_server.client()
        self.router = Router(str(tmp_path), redis_server.address, policy=policy, router_extra=router_extra).start()
        self.peer = Peer(self.router.endpoint)
        self.api = OmniApi(str(tmp_path), redis_server.address,
                           extra={"overview.router_config": self.router.config, **(api_extra or {})}).start()
        self.tokens = {s: self.token(s) for s in subjects}
        self.n = 0

    def token(self, subject):
        return self.router.ctl("token", "create", subject).stdout.strip()

    def submit(self, text, channel="email", tag="api"):
        """A new customer writes text; returns the message id and its conversation, once stored."""
        self.n += 1
        mid = f"{channel}:{tag}:{self.n}:{time.monotonic_ns()}"
        frm = f"cust{self.n}@example.com" if channel == "email" else f"+1415555{self.n:04d}"
        self.peer.submit(message(mid, channel=channel, frm=frm, text=text))
        assert self.peer.recv() == ["OMNI/1", "ACK", mid]
        return mid, self.redis.hget(f"omni:msg:{mid}", "conversation")

    def call(self, method, path, who=None, body=None, **kw):
        """A request as who (a subject of .tokens, or a token itself; None: no token)."""
        token = self.tokens.get(who, who) if who else None
        return self.api.request(method, path, token=token, body=body, **kw)

    def close(self):
        self.api.stop()
        self.peer.close()
        self.router.stop()
