"""The web console (console/, served by omni-api under /console/; docs/console.md) in headless Chromium, against a
real router with traffic on a real Redis: the supervisor view shows the numbers the router's /metrics shows
(parsed by prometheus_client), an offer that arrives live in the agent view and is accepted by a click is the
agent's in Redis, presence set in the page is in Redis; screenshots of each view at laptop and phone width go
to $OMNI_BUILD/test-artifacts/. Also, without a browser: the static files' types and headers, and that no path
leaves the console's directory."""
import http.client
import json
import os
import shutil

import pytest

from api_client import SPEC, ApiWorld, OmniApi, schema_check
from harness import BUILD, ROOT, Router, free_port, scrape, wait_for

POLICY = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: core, kind: in-house, calendar: always, offers: {accept_timeout: 10m}}
  - {name: solo, kind: in-house, calendar: always, offers: {accept_timeout: 10m}}
  - {name: acme, kind: outsourced, calendar: always,
     contract: {categories: [general], max_concurrent: 2, daily_quota: 5, mask_contact: true}}
agents:
  - {id: ann, teams: [core], capacity: {email: 3, sms: 2}}
  - {id: bob, teams: [core], capacity: {email: 1}}
  - {id: cara, teams: [solo], capacity: {email: 5}}
sla:
  targets:
    - first_response: 15m
routing:
  rules:
    - {name: cara, when: {text: ["for-cara"]}, targets: [{team: solo}], queue: solo}
    - {name: acme, when: {text: ["for-acme"]}, targets: [{team: acme}], queue: core}
    - {name: rest, targets: [{team: core}], queue: core}
"""

ARTIFACTS = os.path.join(BUILD, "test-artifacts")
LAPTOP, PHONE = (1280, 900), (375, 812)


class World(ApiWorld):
    """A router with /metrics, an omni-api serving a copy of console/, tokens for an operator and two agents."""

    def __init__(self, tmp_path, redis_server, policy=POLICY, subjects=("operator:olga", "agent:ann", "agent:cara"),
                 api_extra=None):
        self.metrics_port = free_port()
        self.console = str(tmp_path / "console")
        shutil.copytree(os.path.join(ROOT, "console"), self.console)
        super().__init__(tmp_path, redis_server, policy, subjects,
                         router_extra={"metrics_listen": f"127.0.0.1:{self.metrics_port}"},
                         api_extra={"console.directory": self.console, **(api_extra or {})})

    def send(self, text, channel="email"):
        """A new customer writes; returns the conversation once the router decided (owner or queue)."""
        _, cv = self.submit(text, channel, tag="console")
        wait_for(lambda: self.redis.hget(f"omni:conversation:{cv}", "status") in ("offered", "assigned", "queued"),
                 10, f"conversation {cv} decided")
        return cv

    def metrics(self):
        return scrape(self.metrics_port)


@pytest.fixture
def world(tmp_path, redis_server):
    w = World(tmp_path, redis_server)
    yield w
    w.close()


def raw_get(port, path):
    """GET with the path sent exactly as written (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", "x")
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def test_static_files_types_headers_and_no_way_out(world, tmp_path):
    port = world.api.port
    for path, ctype in (("/console/", "text/html; charset=utf-8"), ("/console/index.html", "text/html; charset=utf-8"),
                        ("/console/console.css", "text/css; charset=utf-8"),
                        ("/console/console.js", "text/javascript; charset=utf-8")):
        status, h, body = raw_get(port, path)
        assert status == 200 and h["content-type"] == ctype, (path, status, h)
        assert "default-src 'none'" in h["content-security-policy"] and "script-src 'self'" in h[
            "content-security-policy"], h
        assert h["x-content-type-options"] == "nosniff"
        name = path.rsplit("/", 1)[1] or "index.html"
        assert body == open(os.path.join(ROOT, "console", name), "rb").read()
    status, h, _ = raw_get(port, "/console")
    assert status == 308 and h["location"] == "/console/"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("HEAD", "/console/console.js")
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "text/javascript; charset=utf-8" and r.read() == b""
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/console/index.html", body=b"x")
    r = conn.getresponse()
    assert r.status == 405 and r.getheader("Allow") == "GET, HEAD", r.status
    conn.close()
    # no token needed for the files; the API itself still wants one
    assert raw_get(port, "/v1/overview")[0] == 401
    # a secret beside the console's directory, a hidden file and a link inside it: none is served
    open(tmp_path / "secret.txt", "w").write("secret")
    open(os.path.join(world.console, ".hidden.txt"), "w").write("hidden")
    os.symlink(str(tmp_path / "secret.txt"), os.path.join(world.console, "link.txt"))
    os.mkdir(os.path.join(world.console, "sub.txt"))
    for path in ("/console/../secret.txt", "/console/..%2fsecret.txt", "/console/%2e%2e/secret.txt",
                 "/console/%2e%2e%2fsecret.txt", "/console/.hidden.txt", "/console/link.txt", "/console/sub.txt",
                 "/console/..", "/console/sub.txt/../../secret.txt", "/console//etc/passwd",
                 "/console/%2fetc%2fpasswd", "/console/index.html%00.txt", "/console/api.yaml", "/console/nothing.js",
                 "/console/..\\secret.txt"):
        status, h, body = raw_get(port, path)
        assert status == 404 and b"secret" not in body and b"hidden" not in body, (path, status, body)
        assert h["content-type"] == "application/json", (path, h)
        schema_check(SPEC["components"]["schemas"]["Error"], json.loads(body), path)
    # served by name only: the text file itself is a known type, and reachable
    assert raw_get(port, "/console/index.html")[0] == 200


def test_file_names_sizes_and_caching(world):
    """docs/console.md "Security": names of 1..64 characters, files of at most 4 MiB, Cache-Control no-cache with
    no validator (conditional and range requests get the whole file), errors no-store; a request with two
    Content-Lengths (400) under /console/ carries the console's headers too."""
    import socket
    port = world.api.port
    for n, status in ((64, 200), (65, 404)):
        name = "a" * (n - 4) + ".txt"
        open(os.path.join(world.console, name), "w").write("x")
        assert raw_get(port, "/console/" + name)[0] == status, n
    with open(os.path.join(world.console, "big.txt"), "wb") as f:
        f.truncate(4 * 1024 * 1024)
    assert raw_get(port, "/console/big.txt")[0] == 200
    with open(os.path.join(world.console, "big.txt"), "ab") as f:
        f.write(b"x")
    assert raw_get(port, "/console/big.txt")[0] == 404
    whole = open(os.path.join(ROOT, "console", "index.html"), "rb").read()
    for headers in ({"Range": "bytes=0-9"}, {"If-None-Match": "*"},
                    {"If-Modified-Since": "Thu, 01 Jan 2099 00:00:00 GMT"}):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/console/index.html", headers=headers)
        r = conn.getresponse()
        body = r.read()
        conn.close()
        assert r.status == 200 and body == whole, (headers, r.status)
        assert r.getheader("Cache-Control") == "no-cache", headers
        assert r.getheader("ETag") is None and r.getheader("Last-Modified") is None, r.getheaders()
    status, h, _ = raw_get(port, "/console/nothing.js")
    assert status == 404 and h["cache-control"] == "no-store", h
    status, h, body = raw_get(port, "/console%2Fconsole.css")  # %-decoded first: /console/console.css
    assert status == 200 and h["content-type"] == "text/css; charset=utf-8", (status, h)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /console/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx")
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = s.recv(4096)
        if not chunk:
            break
        answer += chunk
    s.close()
    head = answer.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert head[0].startswith("HTTP/1.1 400"), head
    security_headers_ok({k.lower(): v.strip() for k, v in (x.split(":", 1) for x in head[1:])}, "400")

def overview_ok(world):
    """GET /v1/overview as the operator, checked against openapi.yaml."""
    a = world.api.request("GET", "/v1/overview", token=world.tokens["operator:olga"])
    assert a.status == 200, a
    return a.body


def test_overview_explains_each_agent_passed_over(world):
    """A decision that found core full says why of each of its agents, one sentence an agent (the record keeps
    them grouped by reason)."""
    convs = [world.send(f"full {i}") for i in range(5)]  # ann is offered 3, bob 1: the fifth waits
    assert world.redis.hget(f"omni:conversation:{convs[-1]}", "status") == "queued"
    o = overview_ok(world)
    d = next(d for d in o["decisions"] if d["conversation"] == convs[-1])
    assert d["outcome"] == "queued", d
    now = [x for x in d["explanation"] if x.startswith("now: agent")]
    assert now == ["now: agent ann: at capacity (3/3 email)", "now: agent bob: at capacity (1/1 email)"], d


# ---- the browser ----------------------------------------------------------------------------------------------

def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={LAPTOP[0]},{LAPTOP[1]}", "--force-prefers-reduced-motion"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def until(driver, cond, what, timeout=20):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait
    # the page re-renders its tables as events come: an element found an instant before may be gone when read,
    # which is a reason to look again, not a failure
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
            lambda d: cond(d), what)
    except Exception:
        logs = driver.get_log("browser")
        raise AssertionError(f"{what}: not within {timeout}s; browser console: {logs}")


def screenshot(driver, name):
    """Laptop and phone width; the phone layout must not scroll sideways."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    paths = []
    for label, (w, h) in (("laptop", LAPTOP), ("phone", PHONE)):
        driver.set_window_size(w, h)
        until(driver, lambda d: d.execute_script("return window.innerWidth") <= w, f"{label} width applied")
        # the chart is redrawn at its box's width (its labels keep their size)
        until(driver, lambda d: d.execute_script(
            "const s = document.querySelector('#volume-chart svg');"
            "return !s || s.offsetParent === null || "
            "s.viewBox.baseVal.width === Math.max(300, Math.min(1200, s.parentElement.clientWidth))"),
            f"the chart drawn at {label} width")
        if label == "phone":
            wide = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            assert wide <= 0, f"{name}: the page is {wide}px wider than a phone"
        full = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(w, max(h, min(full + 150, 4000)))
        path = os.path.join(ARTIFACTS, f"console-{name}-{label}.png")
        driver.save_screenshot(path)
        print(f"screenshot: {path}")
        paths.append(path)
    driver.set_window_size(*LAPTOP)
    return paths


# The basics a screen reader needs, checked in the page: every control has a name, contrast 4.5:1 for text.
A11Y = r"""
const bad = [];
const visible = (e) => e.offsetParent !== null;
for (const e of document.querySelectorAll('input, select, textarea, button')) {
  if (!visible(e)) continue;
  const name = (e.labels && e.labels.length ? e.labels[0].textContent : '') || e.getAttribute('aria-label') ||
               (e.tagName === 'BUTTON' ? e.textContent : '');
  if (!name.trim()) bad.push('no name: ' + e.outerHTML.slice(0, 80));
}
const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                     return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
const bg = (e) => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
                    if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c; } return [255, 255, 255]; };
for (const e of document.querySelectorAll('h1, h2, h3, h4, p, th, td, li, label, button, summary, a, span, time')) {
  if (!visible(e) || !e.textContent.trim()) continue;
  const fg = rgb(getComputedStyle(e).color), b = bg(e);
  const l1 = lum(fg), l2 = lum(b), ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
  if (ratio < 4.5) bad.push(ratio.toFixed(2) + ':1 ' + e.tagName + ' ' + e.textContent.trim().slice(0, 40));
}
return bad;
"""


def sign_in(driver, port, token):
    from selenium.webdriver.common.by import By
    driver.get(f"http://127.0.0.1:{port}/console/")
    driver.execute_script("sessionStorage.clear()")
    driver.get(f"http://127.0.0.1:{port}/console/")
    field = until(driver, lambda d: d.find_element(By.ID, "token"), "the sign-in form")
    field.send_keys(token)
    driver.find_element(By.ID, "signin-button").click()


def cell(driver, team, field):
    from selenium.webdriver.common.by import By
    found = driver.find_elements(By.CSS_SELECTOR, f'#teams td[data-team="{team}"][data-field="{field}"]')
    return found[0].text if found else None


def test_supervisor_and_agent_views(world):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    # traffic: 6 emails for core (ann is offered 3, bob 1, 2 wait), 3 for acme (cap 2: one waits), 2 SMS (ann)
    first = [world.send(f"hello {i}") for i in range(6)]
    for i in range(3):
        world.send(f"parcel for-acme {i}")
    for i in range(2):
        world.send(f"sms {i}", channel="sms")
    # one resolved: what core holds and what it was ever assigned now differ (a freed place is taken from its queue)
    a = world.api.request("POST", f"/v1/conversations/{first[0]}/resolve", token=world.tokens["operator:olga"])
    assert a.status == 200, a
    wait_for(lambda: world.redis.zcard("omni:queue:core:p3") == 1, 10, "core's queue drained by one")
    teams = ("core", "solo", "acme")
    driver = browser()
    try:
        # ---- supervisor ----
        sign_in(driver, world.api.port, world.tokens["operator:olga"])
        until(driver, lambda d: cell(d, "core", "queue_depth") is not None, "the supervisor's team table")

        def matches(d):
            """The figures on the page equal /metrics' (both read Redis every 5 s: wait until they agree)."""
            m = world.metrics()
            for t in teams:
                depth = sum(m[("omnirouter_queue_depth", (("priority", p), ("team", t)))]
                            for p in ("urgent", "high", "normal", "low"))
                kind = "partner" if t == "acme" else "in-house"
                want = {"queue_depth": depth, "holding": m[("omnirouter_team_holding", (("team", t),))],
                        "assigned": m[("omnirouter_team_assignments_total", (("kind", kind), ("team", t)))]}
                for field, v in want.items():
                    if cell(d, t, field) != str(int(v)):
                        return False
            return m
        m = until(driver, matches, "the supervisor's numbers equal /metrics'", 30)
        o = overview_ok(world)
        # core's agents hold 6 (ann 3 email + 2 sms, bob 1), were given 7, and 1 waits; acme holds 2 (its cap)
        # and the third waits on acme's own queue (core can never serve it)
        fields = ("queue_depth", "holding", "assigned")
        assert [cell(driver, "core", f) for f in fields] == ["1", "6", "7"], json.dumps(o, indent=1)
        assert [cell(driver, "acme", f) for f in fields] == ["1", "2", "2"], json.dumps(o, indent=1)
        # the messages per channel over the last hour are the router's stored counts
        for ch in ("email", "sms"):
            stored = int(m[("omnirouter_messages_stored_total", (("channel", ch),))])
            until(driver, lambda d: any(li.text == f"{ch}: {stored}" for li in
                                        d.find_elements(By.CSS_SELECTOR, f'#volume-legend li[data-channel="{ch}"]')),
                  f"the chart's legend: {ch} {stored}")
        # the SLA report of the last 7 days (GET /v1/report): the resolution and its survey, then the totals
        world.api.request("POST", f"/v1/conversations/{first[0]}/survey", token=world.tokens["operator:olga"],
                          body={"csat": 5, "ces": 4, "nps": 10})

        def report_cell(d, field, where="tbody"):
            found = d.find_elements(By.CSS_SELECTOR, f'#report {where} td[data-team="{"(all)" if where == "tfoot" else "core"}"]'
                                                     f'[data-field="{field}"]')
            return found[0].text if found else None
        until(driver, lambda d: report_cell(d, "csat") == "100.0%", "the survey in the report", 15)
        assert [report_cell(driver, f) for f in ("resolved", "fcr", "csat", "ces", "nps")] == \
            ["1", "100.0%", "100.0%", "4.0", "+100"]
        assert [report_cell(driver, f, "tfoot") for f in ("resolved", "in_sla", "csat")] == ["1", "–", "100.0%"]
        partner = driver.find_element(By.CSS_SELECTOR, '#partners td[data-team="acme"][data-field="today"]').text
        assert partner == "2 / 5", partner
        decisions = driver.find_elements(By.CSS_SELECTOR, "#decisions li[data-conversation]")
        assert len(decisions) >= 10, len(decisions)
        # the overview itself, against the spec and the same figures
        core = next(t for t in o["teams"] if t["name"] == "core")
        assert core["queue_depth"] == 1 and core["at_risk"] == 0 and core["overdue"] == 0
        assert sum(c["total"] for c in o["volume"]["channels"]) == 11
        # live: bob goes away (an event on the operator's stream): the page shows it without a reload
        world.api.request("PUT", "/v1/agents/bob/presence", token=world.tokens["operator:olga"],
                          body={"presence": "away"})
        until(driver, lambda d: d.find_element(By.CSS_SELECTOR, '#agents td[data-agent="bob"][data-field="presence"]')
              .text == "away", "bob away on the page")
        assert driver.execute_script(A11Y) == []
        screenshot(driver, "supervisor")

        # ---- agent ----
        sign_in(driver, world.api.port, world.tokens["agent:cara"])
        until(driver, lambda d: "Now: available" in d.find_element(By.ID, "presence-now").text, "cara's presence")
        Select(driver.find_element(By.ID, "presence")).select_by_value("away")
        driver.find_element(By.ID, "presence-set").click()
        wait_for(lambda: world.redis.hget("omni:agent:cara", "presence") == "away", 10, "cara away in Redis")
        Select(driver.find_element(By.ID, "presence")).select_by_value("available")
        driver.find_element(By.ID, "presence-set").click()
        wait_for(lambda: world.redis.hget("omni:agent:cara", "presence") == "available", 10, "cara back in Redis")
        until(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#offers li.empty"), "no offer yet")
        # an offer arrives while the page is open: shown and announced, with no reload
        cv = world.send("help for-cara please")
        assert world.redis.hget(f"omni:conversation:{cv}", "status") == "offered"
        card = until(driver, lambda d: d.find_element(By.CSS_SELECTOR, f'#offers li[data-conversation="{cv}"]'),
                     "the offer on the page")
        assert "help for-cara please" in card.text
        until(driver, lambda d: f"New offer: conversation {cv}" in d.find_element(By.ID, "announce").text,
              "the offer announced in the live region")
        assert driver.find_element(By.ID, "announce").get_attribute("aria-live") == "polite"
        assert driver.execute_script(A11Y) == []
        screenshot(driver, "agent-offer")
        card.find_element(By.CSS_SELECTOR, 'button[data-verb="accept"]').click()
        wait_for(lambda: world.redis.hget(f"omni:conversation:{cv}", "status") == "assigned", 10, "accepted in Redis")
        assert world.redis.hget(f"omni:conversation:{cv}", "owner") == "agent:cara"
        assert world.redis.sismember("omni:agent:cara:conversations", cv)
        until(driver, lambda d: d.find_element(By.CSS_SELECTOR, f'#owned li[data-conversation="{cv}"]'),
              "the conversation under Held")
        # accepted with the keyboard's focus on its button: the focus follows the card under Held
        until(driver, lambda d: d.execute_script("const li = document.activeElement.closest('#owned li');"
                                                 "return li && li.dataset.conversation") == cv, "the focus under Held")
        screenshot(driver, "agent")
        # resolving from the page frees cara
        driver.find_element(By.CSS_SELECTOR, f'#owned li[data-conversation="{cv}"] button[data-verb="resolve"]').click()
        wait_for(lambda: world.redis.hget(f"omni:conversation:{cv}", "status") == "resolved", 10, "resolved in Redis")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        driver.quit()


def test_overview_needs_the_router_config(tmp_path, redis_server):
    """Without overview.router_config the overview is 404, said plainly; a broken router config stops omni-api
    from starting, with the router's own FILE:LINE:COLUMN."""
    router = Router(str(tmp_path), redis_server.address, policy=POLICY)
    token = "omni_" + "Q" * 43
    import hashlib
    h = hashlib.sha256(token.encode()).hexdigest()
    redis_server.client().hset(f"omni:token:{h}", mapping={"id": h[:12], "subject": "operator:olga", "created_at": 1})
    api = OmniApi(str(tmp_path), redis_server.address).start()
    try:
        a = api.request("GET", "/v1/overview", token=token)
        assert a.status == 404 and "overview.router_config" in a.body["error"]["message"]
    finally:
        api.stop()
    with open(router.config, "a") as f:
        f.write("agents:\n  - {id: Bad Id}\n")
    bad = OmniApi(str(tmp_path), redis_server.address, extra={"overview.router_config": router.config}, name="bad")
    import subprocess
    from harness import BIN
    r = subprocess.run([os.path.join(BIN, "omni-api"), "--check-config", bad.config], capture_output=True, text=True)
    assert r.returncode == 1 and "overview.router_config" in r.stderr and router.config + ":" in r.stderr, r.stderr


# ---- what the audit found (each test failed on the console before its fix) --------------------------------------

SECURITY = {"content-security-policy": None, "x-content-type-options": "nosniff", "x-frame-options": "DENY",
            "referrer-policy": "no-referrer"}


def security_headers_ok(h, what):
    for k, v in SECURITY.items():
        assert k in h, (what, k, h)
        if v is not None:
            assert h[k] == v, (what, k, h)
    assert "default-src 'none'" in h["content-security-policy"] and "frame-ancestors 'none'" in h[
        "content-security-policy"], (what, h)


def test_every_console_answer_carries_the_security_headers(world):
    """Errors too: a missing file, a name that is no file name, a method the console does not take, a body too
    large; the API's own answers do not get the console's headers."""
    port = world.api.port
    for path in ("/console/nothing.js", "/console/..", "/console/.hidden.txt", "/console/%2fetc%2fpasswd",
                 "/console/sub/x.js", "/console/index.html%00.txt", "/console/", "/console", "/console/console.css"):
        status, h, _ = raw_get(port, path)
        assert status in (200, 308, 404), (path, status)
        security_headers_ok(h, path)
    for method, path, body in (("POST", "/console/index.html", b"x"), ("DELETE", "/console", None),
                               ("PUT", "/console/nothing.js", b"x"), ("POST", "/console/", b"x" * 5000)):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(method, path, body=body)
        r = conn.getresponse()
        r.read()
        h = {k.lower(): v for k, v in r.getheaders()}
        conn.close()
        assert r.status in (405, 413), (method, path, r.status)
        security_headers_ok(h, f"{method} {path}")
    # only the console's: an API error stays as it was
    status, h, _ = raw_get(port, "/v1/nothing")
    assert status == 404 and "content-security-policy" not in h and h["cache-control"] == "no-store", h
    status, h, _ = raw_get(port, "/consolex")
    assert status == 404 and "content-security-policy" not in h, h


PARTNER_POLICY = POLICY.replace("  - {id: cara, teams: [solo], capacity: {email: 5}}\n",
                                "  - {id: cara, teams: [solo], capacity: {email: 5}}\n"
                                "  - {id: pat, teams: [acme], capacity: {email: 2}}\n")


def cards(driver, where):
    return {e.get_attribute("data-conversation"): e.get_attribute("data-status")
            for e in driver.find_elements("css selector", f"#{where} li.card")}


def test_partner_view_follows_its_agents_work(tmp_path, redis_server):
    """Work for a partner's own agent goes to that agent's inbox, not the team's stream: the partner's page still
    shows it without a reload (it reads its work again every few seconds), and sees it move on."""
    assert "id: pat" in PARTNER_POLICY
    world = World(tmp_path, redis_server, PARTNER_POLICY, ("partner:acme", "agent:pat"))
    driver = browser()
    try:
        sign_in(driver, world.api.port, world.tokens["partner:acme"])
        until(driver, lambda d: d.find_element("id", "live").text == "Live", "the partner's stream open")
        until(driver, lambda d: d.find_elements("css selector", "#offers li.empty"), "no offer yet")
        cv = world.send("a parcel for-acme via pat")
        assert world.redis.hmget(f"omni:conversation:{cv}", "status", "owner") == ["offered", "agent:pat"]
        until(driver, lambda d: cards(d, "offers").get(cv) == "offered", "pat's offer on the partner's page", 15)
        a = world.api.request("POST", f"/v1/conversations/{cv}/accept", token=world.tokens["agent:pat"])
        assert a.status == 200, a
        until(driver, lambda d: cards(d, "owned").get(cv) == "assigned" and cv not in cards(d, "offers"),
              "held by pat on the partner's page", 15)
    finally:
        driver.quit()
        world.close()


def test_reload_during_an_api_outage_keeps_the_token(tmp_path):
    """GET /v1/me answering 503 (Redis down) when the page is reloaded: the token stays, the page says it is
    trying again, and signs in by itself once the API answers."""
    import hashlib
    import signal
    from harness import RedisServer
    server = RedisServer(str(tmp_path / "redis")).start()
    console = str(tmp_path / "console")
    shutil.copytree(os.path.join(ROOT, "console"), console)
    api = OmniApi(str(tmp_path), server.address, extra={"console.directory": console}).start()
    token = "omni_" + "A" * 43
    h = hashlib.sha256(token.encode()).hexdigest()
    server.client().hset(f"omni:token:{h}", mapping={"id": h[:12], "subject": "agent:ann", "created_at": 1})
    driver = browser()
    try:
        sign_in(driver, api.port, token)
        until(driver, lambda d: d.find_element("id", "agent").is_displayed(), "the agent view")
        server.stop(signal.SIGKILL)
        assert api.request("GET", "/v1/me", token=token).status == 503
        driver.refresh()
        until(driver, lambda d: "trying again" in d.find_element("id", "signin-error").text, "the page says it retries")
        assert driver.execute_script("return sessionStorage.getItem('omni-token')") == token
        server.start()
        until(driver, lambda d: d.find_element("id", "agent").is_displayed(), "signed in again by itself", 30)
        assert driver.find_element("id", "who").text == "Signed in as agent:ann"
        assert driver.execute_script("return sessionStorage.getItem('omni-token')") == token
        # a refused token (revoked) still signs out and is forgotten
        server.client().delete(f"omni:token:{h}")
        driver.refresh()
        until(driver, lambda d: "refused" in d.find_element("id", "signin-error").text, "refused")
        assert driver.execute_script("return sessionStorage.getItem('omni-token')") is None
    finally:
        driver.quit()
        api.stop()
        server.stop()


def test_refresh_keeps_typed_text_focus_and_open_decisions(world):
    """A new offer (an inbox event) updates the lists in place: the reason half typed into another offer and the
    keyboard focus stay; in the supervisor view an opened decision stays open, with the focus, across refreshes."""
    from selenium.webdriver.common.keys import Keys
    first = world.send("first for-cara")
    driver = browser()
    try:
        sign_in(driver, world.api.port, world.tokens["agent:cara"])
        until(driver, lambda d: first in cards(d, "offers"), "the first offer")
        field = driver.find_element("id", f"reason-{first}")
        field.click()
        field.send_keys("not my langu")
        second = world.send("second for-cara")
        until(driver, lambda d: second in cards(d, "offers"), "the second offer, live")
        assert driver.find_element("id", f"reason-{first}").get_attribute("value") == "not my langu"
        assert driver.execute_script("return document.activeElement.id") == f"reason-{first}"
        driver.switch_to.active_element.send_keys("age")
        assert driver.find_element("id", f"reason-{first}").get_attribute("value") == "not my language"

        sign_in(driver, world.api.port, world.tokens["operator:olga"])
        summary = until(driver, lambda d: d.find_element(
            "css selector", f'#decisions li[data-conversation="{first}"] summary'), "the decisions")
        driver.execute_script("arguments[0].focus()", summary)
        driver.switch_to.active_element.send_keys(Keys.ENTER)  # no mouse
        details = f'#decisions li[data-conversation="{first}"] details'
        until(driver, lambda d: d.find_element("css selector", details).get_attribute("open") is not None, "opened")
        at = driver.find_element("id", "supervisor").get_attribute("data-at")
        world.send("third for-cara")  # an event, and the 5 s refresh
        until(driver, lambda d: d.find_element("id", "supervisor").get_attribute("data-at") != at, "refreshed")
        at = driver.find_element("id", "supervisor").get_attribute("data-at")
        until(driver, lambda d: d.find_element("id", "supervisor").get_attribute("data-at") != at, "refreshed again")
        assert driver.find_element("css selector", details).get_attribute("open") is not None
        assert driver.execute_script("return document.activeElement.closest('li') && "
                                     "document.activeElement.closest('li').dataset.conversation") == first
    finally:
        driver.quit()


def test_responded_is_marked(world):
    """Pressing Responded marks the held conversation "responded" and says the outcome; the page reads no
    conversation field the API does not give (openapi.yaml, Conversation)."""
    import re
    js = open(os.path.join(ROOT, "console", "console.js")).read()
    fields = set(SPEC["components"]["schemas"]["Conversation"]["properties"])
    for f in ("first_response_at", "responded_at"):
        assert not re.search(r"\.\s*" + f + r"\b", js) or f in fields, \
            f"console.js reads {f}, which the conversation view does not have"
    cv = world.send("respond to me for-cara")
    assert world.api.request("POST", f"/v1/conversations/{cv}/accept", token=world.tokens["agent:cara"]).status == 200
    driver = browser()
    try:
        sign_in(driver, world.api.port, world.tokens["agent:cara"])
        card = f'#owned li[data-conversation="{cv}"]'
        until(driver, lambda d: d.find_element("css selector", card), "held")
        assert "responded" not in driver.find_element("css selector", card).text
        driver.find_element("css selector", card + ' button[data-verb="respond"]').click()
        wait_for(lambda: world.redis.hget(f"omni:conversation:{cv}", "first_response_at"), 10, "responded in Redis")
        until(driver, lambda d: re.search(r"\bresponded\b", d.find_element("css selector", card + " .hint").text),
              "the responded mark")
        until(driver, lambda d: f"Conversation {cv}: first response recorded (met)" in
              d.find_element("id", "agent-status").text, "the outcome said")
        # the mark is the view's first_response_at: a reload keeps it, and one recorded elsewhere shows too
        other = world.send("responded elsewhere for-cara")
        for verb in ("accept", "respond"):
            a = world.api.request("POST", f"/v1/conversations/{other}/{verb}", token=world.tokens["agent:cara"])
            assert a.status == 200, a
        driver.refresh()
        for c in (cv, other):
            until(driver, lambda d: re.search(r"\bresponded\b", d.find_element(
                "css selector", f'#owned li[data-conversation="{c}"] .hint').text), f"{c} marked after a reload")
    finally:
        driver.quit()


def test_reject_reason_is_checked_in_bytes(world):
    """The API takes a reason of at most 500 bytes of UTF-8; 300 'é' are 300 characters but 600 bytes: the page
    says so and sends nothing, keeping the text to shorten; 250 'é' (500 bytes) are sent."""
    cv = world.send("reject me for-cara")
    driver = browser()
    try:
        sign_in(driver, world.api.port, world.tokens["agent:cara"])
        until(driver, lambda d: cv in cards(d, "offers"), "the offer")
        field = driver.find_element("id", f"reason-{cv}")
        field.send_keys("é" * 300)
        driver.find_element("css selector", f'#offers li[data-conversation="{cv}"] button[data-verb="reject"]').click()
        until(driver, lambda d: "600 bytes" in d.find_element("id", "agent-error").text, "the page says the length")
        assert "500" in driver.find_element("id", "agent-error").text
        assert driver.find_element("id", f"reason-{cv}").get_attribute("value") == "é" * 300
        assert driver.execute_script("return document.activeElement.id") == f"reason-{cv}"
        assert "/reject" not in world.api.log(), "a reason too long was sent"
        assert world.redis.hget(f"omni:conversation:{cv}", "status") == "offered"
        field = driver.find_element("id", f"reason-{cv}")
        field.clear()
        field.send_keys("é" * 250)
        driver.find_element("css selector", f'#offers li[data-conversation="{cv}"] button[data-verb="reject"]').click()
        wait_for(lambda: world.redis.hget(f"omni:conversation:{cv}", "owner") != "agent:cara", 10, "rejected")
    finally:
        driver.quit()


def test_sign_out_forgets_the_previous_user(world):
    """Signing out leaves none of the previous user's data in the page, and no timer or state behind."""
    cv = world.send("my secret order 4711 for-cara")
    driver = browser()
    try:
        sign_in(driver, world.api.port, world.tokens["operator:olga"])
        until(driver, lambda d: d.find_elements("css selector", "#decisions li[data-conversation]"), "the decisions")
        until(driver, lambda d: d.execute_script("return lastVolume !== null"), "the chart")
        driver.find_element("id", "signout").click()
        state = driver.execute_script(
            "return {timer: refreshTimer, pending: pending, volume: lastVolume, token: token, me: me,"
            " text: document.getElementById('main').textContent,"
            " rows: document.querySelectorAll('#teams tbody tr, #agents tbody tr, #partners tbody tr,"
            " #report tbody tr, #report tfoot tr').length,"
            " decisions: document.querySelectorAll('#decisions li').length}")
        assert state["timer"] is None and state["pending"] is None and state["volume"] is None, state
        assert state["token"] is None and state["me"] is None and state["rows"] == 0 and state["decisions"] == 0, state
        assert "4711" not in state["text"] and "cara" not in state["text"], state["text"]

        sign_in(driver, world.api.port, world.tokens["agent:cara"])
        until(driver, lambda d: cv in cards(d, "offers"), "the offer")
        until(driver, lambda d: "New offer" in d.find_element("id", "announce").text, "announced")
        driver.find_element("id", "signout").click()
        state = driver.execute_script(
            "return {known: knownOffers.size, text: document.getElementById('main').textContent,"
            " title: document.getElementById('agent-title').textContent, who: document.getElementById('who').textContent}")
        assert state["known"] == 0, state
        for secret in ("4711", "for-cara", "New offer", "cara"):
            assert secret not in state["text"] + state["who"], (secret, state)
    finally:
        driver.quit()


def test_a_console_directory_that_is_not_there_is_said_at_start(tmp_path, redis_server):
    """The default console.directory names /usr/local's; another PREFIX's install leaves it empty: omni-api
    says so at start instead of answering 404 in silence."""
    missing = str(tmp_path / "nowhere")
    api = OmniApi(str(tmp_path), redis_server.address, extra={"console.directory": missing}).start()
    try:
        assert f"console.directory {missing}: No such file or directory: /console/ answers 404" in api.log()
        assert api.request("GET", "/console/").status == 404
    finally:
        api.stop()


def test_a_read_error_goes_once_the_api_answers_again(tmp_path, redis_server):
    """omni-api restarted (same port) under a partner's page, which reads its work every few seconds: while it is
    away the page says it cannot read the work and the stream is "Reconnecting…"; once it is back the stream is
    "Live" again, the work is read, and the error is gone (it was about a read that now succeeds)."""
    port = free_port()
    world = World(tmp_path, redis_server, PARTNER_POLICY, ("partner:acme",),
                  api_extra={"api.listen": f"127.0.0.1:{port}"})
    driver = browser()
    try:
        sign_in(driver, port, world.tokens["partner:acme"])
        until(driver, lambda d: d.find_element("id", "live").text == "Live", "the partner's stream open")
        world.api.stop()
        until(driver, lambda d: d.find_element("id", "live").text == "Reconnecting…", "the stream being reopened")
        until(driver, lambda d: "Cannot read your work" in d.find_element("id", "agent-error").text,
              "the page says it cannot read the work")
        world.api.start()
        until(driver, lambda d: d.find_element("id", "live").text == "Live", "the stream open again", 30)
        cv = world.send("a parcel for-acme after the restart")
        until(driver, lambda d: cv in cards(d, "offers"), "work read again", 15)
        until(driver, lambda d: d.find_element("id", "agent-error").text == "", "the read error gone")
    finally:
        driver.quit()
        world.close()


def test_a_token_revoked_mid_session_signs_out_leaving_nothing(world):
    """A token revoked while the page is open: the next action is refused (401), the page signs out and says
    so, and nothing of the previous user stays (no error naming their conversation, no "not available")."""
    import hashlib
    cv = world.send("revoke me for-cara")
    token = world.tokens["agent:cara"]
    driver = browser()
    try:
        sign_in(driver, world.api.port, token)
        until(driver, lambda d: cv in cards(d, "offers"), "the offer")
        world.redis.delete("omni:token:" + hashlib.sha256(token.encode()).hexdigest())
        driver.find_element("css selector", f'#offers li[data-conversation="{cv}"] button[data-verb="accept"]').click()
        until(driver, lambda d: d.find_element("id", "signin").is_displayed(), "signed out")
        until(driver, lambda d: "refused" in d.find_element("id", "signin-error").text, "the page says why")
        text = driver.execute_script("return document.getElementById('main').textContent")
        assert f"Conversation {cv}" not in text and "for-cara" not in text, text
        assert driver.find_element("id", "agent-error").get_attribute("textContent") == ""
        assert driver.execute_script("return sessionStorage.getItem('omni-token')") is None

        sign_in(driver, world.api.port, world.tokens["operator:olga"])
        until(driver, lambda d: d.find_elements("css selector", "#decisions li[data-conversation]"), "the decisions")
        world.redis.delete("omni:token:" + hashlib.sha256(world.tokens["operator:olga"].encode()).hexdigest())
        until(driver, lambda d: d.find_element("id", "signin").is_displayed(), "signed out by the refresh", 15)
        assert driver.find_element("id", "overview-at").get_attribute("textContent") == "-"
        text = driver.execute_script("return document.getElementById('main').textContent")
        assert "not available" not in text and "cara" not in text, text
    finally:
        driver.quit()


LONG_AGENT, LONG_TEAM = "a" * 64, "t" * 64  # the longest names a policy takes
LONG_POLICY = f"""
calendars:
  - {{name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}}
teams:
  - {{name: {LONG_TEAM}, kind: in-house, calendar: always, offers: {{accept_timeout: 10m}}}}
agents:
  - {{id: {LONG_AGENT}, teams: [{LONG_TEAM}], capacity: {{email: 3}}}}
routing:
  rules:
    - {{name: {"r" * 64}, targets: [{{team: {LONG_TEAM}}}], queue: {LONG_TEAM}}}
"""


def test_long_names_fit_a_phone(tmp_path, redis_server):
    """Agent, team and rule names of 64 characters (the most a policy takes) in the header, a card's title and
    the decisions: at phone width (375 px) the page still does not scroll sideways."""
    world = World(tmp_path, redis_server, LONG_POLICY, ("operator:olga", f"agent:{LONG_AGENT}"))
    driver = browser()
    try:
        cv = world.send("a long-named team")
        driver.set_window_size(*PHONE)
        until(driver, lambda d: d.execute_script("return window.innerWidth") <= PHONE[0], "phone width")
        sign_in(driver, world.api.port, world.tokens[f"agent:{LONG_AGENT}"])
        until(driver, lambda d: cv in cards(d, "offers"), "the offer")
        wide = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"the agent view is {wide}px wider than a phone"
        sign_in(driver, world.api.port, world.tokens["operator:olga"])
        summary = until(driver, lambda d: d.find_element(
            "css selector", f'#decisions li[data-conversation="{cv}"] summary'), "the decisions")
        driver.execute_script("arguments[0].click()", summary)
        until(driver, lambda d: d.find_element("css selector", f'#decisions li[data-conversation="{cv}"] details')
              .get_attribute("open") is not None, "opened")
        wide = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"the supervisor view is {wide}px wider than a phone"
    finally:
        driver.quit()
        world.close()


def test_any_token_typed_is_checked_by_the_api(world):
    """What is typed is checked with GET /v1/me, whatever its shape: a malformed token (401 invalid_token), one
    of the right shape nobody made, and a good one pasted with spaces around it. One with "€" (fetch() cannot
    send it in a header, and threw) is refused too, not taken for an outage and kept."""
    driver = browser()
    try:
        for bad in ("not-a-token", "omni_" + "A" * 43, "omni_" + "é" * 43, "omni_" + "€" * 43, "omni_a b"):
            sign_in(driver, world.api.port, bad)
            until(driver, lambda d: "refused" in d.find_element("id", "signin-error").text, f"{bad} refused")
            assert driver.execute_script("return sessionStorage.getItem('omni-token')") is None
        sign_in(driver, world.api.port, "  " + world.tokens["agent:ann"] + " ")
        until(driver, lambda d: d.find_element("id", "agent").is_displayed(), "signed in")
        assert driver.execute_script("return sessionStorage.getItem('omni-token')") == world.tokens["agent:ann"]
    finally:
        driver.quit()


def test_signing_in_during_an_outage_waits_retry_after_at_most_60s(tmp_path):
    """GET /v1/me answering 503: the page tries again after the answer's Retry-After, at most 60 s."""
    import signal
    from harness import RedisServer
    server = RedisServer(str(tmp_path / "redis")).start()
    console = str(tmp_path / "console")
    shutil.copytree(os.path.join(ROOT, "console"), console)
    driver = browser()
    try:
        for retry_after, said in (("5s", "trying again in 5 s"), ("2m", "trying again in 60 s")):
            api = OmniApi(str(tmp_path), server.address,
                          extra={"console.directory": console, "api.retry_after": retry_after}).start()
            try:
                server.stop(signal.SIGKILL)
                a = api.request("GET", "/v1/me", token="omni_" + "A" * 43)
                assert a.status == 503, a
                sign_in(driver, api.port, "omni_" + "A" * 43)
                until(driver, lambda d: said in d.find_element("id", "signin-error").text, said)
                assert driver.execute_script("return sessionStorage.getItem('omni-token')") == "omni_" + "A" * 43
                server.start()
            finally:
                api.stop()
    finally:
        driver.quit()
        server.stop()
