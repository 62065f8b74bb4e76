"""Webhook connectors (omni-sms, omni-facebook) as real processes, and the providers' side: requests signed
the way Twilio and Meta sign them, computed here independently of the connectors' C code.

The connector listens on 127.0.0.1 port 0; the port it bound is read from its log line
"listening on http://127.0.0.1:PORT", so tests never race for a port.
"""
import base64
import hashlib
import hmac
import http.client
import os
import subprocess
import urllib.parse

from harness import BIN, Daemon


def twilio_signature(token, url, params):
    """base64 HMAC-SHA1 over the URL and each name+value, names sorted, each distinct value sorted (twilio-python)."""
    s = url
    for name in sorted({n for n, _ in params}):
        for value in sorted({v for n, v in params if n == name}):
            s += name + value
    return base64.b64encode(hmac.new(token.encode(), s.encode(), hashlib.sha1).digest()).decode()


def meta_signature(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhook(Daemon):
    """omni-NAME with a config written for the test; its stderr in a log file the test reads (output())."""

    def __init__(self, tmp_path, name, endpoint, section, extra="", env=None):
        self.name = name
        self.program = "omni-" + name
        self.dir = str(tmp_path / name)
        os.makedirs(self.dir, exist_ok=True)
        self.config = os.path.join(self.dir, name + ".yaml")
        self.log_path = os.path.join(self.dir, name + ".log")
        self.spool = os.path.join(self.dir, "spool")
        with open(self.config, "w") as f:
            f.write(f"router:\n  endpoint: \"{endpoint}\"\n  resend_ms: 300\n"
                    f"spool_dir: {self.spool}\nlog_level: debug\n{extra}{name}:\n  listen: \"127.0.0.1:0\"\n")
            f.write("".join(f"  {k}: {v}\n" for k, v in section.items()))
        self.env = dict(os.environ, **(env or {}))
        self.port = None

    def check(self):
        return subprocess.run([os.path.join(BIN, "omni-" + self.name), "--config", self.config, "--check-config"],
                              capture_output=True, text=True, timeout=30, env=self.env)

    def start(self):
        self.spawn(["--config", self.config], env=self.env)
        m = self.wait_log(r"listening on http://127\.0\.0\.1:(\d+)")
        self.port = int(m.group(1))
        return self

    def output(self):
        return self.log()

    def wait_log(self, pattern, timeout=20):
        return super().wait_log(pattern, timeout)

    def request(self, method, path, body=b"", headers=None, timeout=20, chunked=False):
        """One HTTP request; returns (status, headers dict lowercased, body bytes). chunked: body is a list of
        chunks sent with Transfer-Encoding: chunked (no Content-Length)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=iter(body) if chunked else body, headers=headers or {},
                      encode_chunked=chunked)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()


class Twilio:
    """Signs and posts Twilio webhooks to omni-sms as Twilio would call PUBLIC + path."""

    def __init__(self, conn, token, public="https://hooks.example.com/twilio"):
        self.conn, self.token, self.public = conn, token, public

    def post(self, params, path="/sms", query="", sign_url=None, sign_params=None, signature=None):
        url = self.public + path + ("?" + query if query else "")
        body = urllib.parse.urlencode(params).encode()
        sig = signature if signature is not None else twilio_signature(
            self.token, sign_url or url, sign_params if sign_params is not None else params)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if sig != "":
            headers["X-Twilio-Signature"] = sig
        return self.conn.request("POST", path + ("?" + query if query else ""), body, headers)


def inbound(sid, text="hello", frm="+14155550100", media=()):
    """The parameters of an inbound SMS (MMS with media: (url, type) pairs), as Twilio posts them."""
    p = [("ToCountry", "US"), ("SmsMessageSid", sid), ("NumMedia", str(len(media))), ("SmsSid", sid),
         ("SmsStatus", "received"), ("Body", text), ("To", "+18005551212"), ("NumSegments", "1"),
         ("MessageSid", sid), ("AccountSid", "AC0123456789abcdef0123456789abcdef"), ("From", frm),
         ("ApiVersion", "2010-04-01")]
    for i, (url, ctype) in enumerate(media):
        p += [(f"MediaUrl{i}", url), (f"MediaContentType{i}", ctype)]
    return p
