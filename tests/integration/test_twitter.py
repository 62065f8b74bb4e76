"""omni-twitter against a local X API (fake_x_api.py: the recorded responses of ../shared/fixtures/twitter,
bodies and headers byte for byte) and a real omnirouted on a real redis-server.

Pages the recordings lack (a second mention, a DM with its sender) are derived from the recorded ones and
say so. Every wait is on a condition with a deadline.
"""
import json
import math
import re
import os
import subprocess
import time

import pytest

from fake_x_api import FakeXApi, Response, fixture_bytes, fixture_json, page, recorded_dm_headers, too_many_requests
from harness import BIN, ROOT, Daemon, stored_count, wait_for

TOKEN = "AAAA-test-bearer-token"
QUICKSTART = "x-docs-user-mention-quickstart-response.json"     # 1 mention with author, next_token t3buv...
TWEEPY_MENTIONS = "tweepy-GET-2-users-783214-mentions.json"     # 10 mentions recorded without author_id
EMPTY = "tweepy-GET-2-dm_events-empty.json"                       # {"meta":{"result_count":0}}
FIRST_ID = "1301573587187331074"


def derived_mention(tweet_id, text):
    """The quickstart page with another tweet id and text, as the last page of a round (derived)."""
    doc = fixture_json(QUICKSTART)
    doc["data"][0].update(id=tweet_id, text=text)
    doc["meta"] = {"newest_id": tweet_id, "oldest_id": tweet_id, "result_count": 1}
    return Response(200, json.dumps(doc).encode(), [("content-type", "application/json; charset=utf-8")])


def derived_dm():
    """The recorded DM conversation page with the fields the connector asks for (derived): one from a
    customer, one the account sent itself."""
    doc = json.loads(fixture_bytes(
        "tweepy-GET-2-dm_conversations-750362064426721281-1072250532645998596-dm_events.json"))
    conv = "750362064426721281-783214"
    doc["data"][0].update(sender_id="750362064426721281", dm_conversation_id=conv,
                          created_at="2022-10-28T01:08:23.000Z")
    doc["data"][1].update(sender_id="783214", dm_conversation_id=conv)
    doc["includes"] = {"users": [{"id": "750362064426721281", "username": "ann", "name": "Ann"}]}
    del doc["meta"]["next_token"]
    return Response(200, json.dumps(doc).encode(), recorded_dm_headers())


class Twitter(Daemon):
    """omni-twitter with a config for the test; log() is what it wrote since its last start."""
    program = "omni-twitter"

    def __init__(self, tmp_path, endpoint, api, feeds=("mentions", "dms"), poll_ms=100, extra=""):
        self.dir = str(tmp_path)
        self.config = os.path.join(self.dir, "twitter.yaml")
        self.log_path = os.path.join(self.dir, "twitter.log")
        token_file = os.path.join(self.dir, "x-token")
        with open(os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(TOKEN + "\n")
        with open(self.config, "w") as f:
            f.write(f"router:\n  endpoint: \"{endpoint}\"\n  resend_ms: 500\n"
                    f"spool_dir: spool\npoll_ms: {poll_ms}\nretry_max_ms: 5000\nlog_level: debug\n"
                    f"twitter:\n  api_url: \"{api.url}\"\n  user_id: \"783214\"\n  token: {token_file}\n"
                    f"  feeds: [{', '.join(feeds)}]\n  call_timeout_ms: 20000\n{extra}")

    def start(self):
        check = subprocess.run([os.path.join(BIN, self.program), "--config", self.config, "--check-config"],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        self.spawn(["--config", self.config])
        return self

    def state(self, feed):
        with open(os.path.join(self.dir, "spool", f"twitter-{feed}.json")) as f:
            return json.load(f)


@pytest.fixture
def api():
    server = FakeXApi(TOKEN).start()
    yield server
    server.stop()


def wait_stored(router, ids, conn, timeout=20):
    def all_there():
        assert conn.proc.poll() is None, f"omni-twitter exited:\n{conn.log()}"
        return all(router.redis.exists(f"omni:msg:{i}") for i in ids)
    wait_for(all_there, timeout, f"messages {ids}")


def stored_doc(router, id):
    return json.loads(router.redis.hget(f"omni:msg:{id}", "json"))


def test_mentions_and_dms_arrive_once_and_a_restart_resumes(router, api, tmp_path):
    new_mentions = []  # derived pages the test adds later, served to since_id=FIRST_ID

    def mentions(q):
        token = q.get("pagination_token")
        if token == "t3buvdr5pujq9g7bggsnf3ep2ha28":
            return page(TWEEPY_MENTIONS)                     # page 2: recorded, no authors: skipped
        if token == "7140dibdnow9c7btw423i3sy3u5zupmkcpofxcsmxj48j":
            return page(EMPTY)                               # page 3: the end of the round
        if q.get("since_id") == FIRST_ID and new_mentions:
            return new_mentions[0]
        if q.get("since_id"):
            return page(EMPTY)
        return page(QUICKSTART)                              # page 1

    dms = [page(EMPTY, recorded_dm_headers())]
    api.routes["mentions"] = mentions
    api.routes["dms"] = lambda q: dms[0]
    # Page 2 is held: the connector is killed between two pages of a round.
    api.hold("mentions", lambda q: q.get("pagination_token") == "t3buvdr5pujq9g7bggsnf3ep2ha28")
    conn = Twitter(tmp_path, router.endpoint, api).start()
    wait_stored(router, [f"twitter:{FIRST_ID}"], conn)
    wait_for(lambda: len(api.calls("mentions")) == 2, 10, "the request of page 2")
    assert conn.state("mentions").get("next_token") == "t3buvdr5pujq9g7bggsnf3ep2ha28"
    assert "since" not in conn.state("mentions")  # the round is not complete: since has not moved
    conn.kill()
    api.release("mentions")

    first = api.calls("mentions")[0][2]
    assert first["expansions"] == "author_id" and "since_id" not in first
    assert all(authorized for _, _, _, authorized in api.requests)

    # Restart: the round goes on at page 2, then page 3; since becomes the round's newest id.
    conn = Twitter(tmp_path, router.endpoint, api).start()
    try:
        wait_for(lambda: conn.state("mentions").get("since") == FIRST_ID, 20, "the round to complete")
        resumed = api.calls("mentions")[2][2]
        assert resumed.get("pagination_token") == "t3buvdr5pujq9g7bggsnf3ep2ha28"
        assert "tweet 1578516295611748353: no author_id" in conn.log()

        doc = stored_doc(router, f"twitter:{FIRST_ID}")
        assert router.redis.hget(f"omni:msg:twitter:{FIRST_ID}", "identity") == "twitter:1234567890"
        assert doc["channel"] == "twitter" and doc["text"] == "Hey @XDevelopers, love the new API!"
        assert doc["from"] == {"id": "1234567890", "name": "Dev Person"}
        assert doc["received_at"] == "2024-01-15T10:30:00.000Z"
        assert doc["meta"]["kind"] == "mention" and doc["meta"]["username"] == "developer"

        # A DM (derived page) arrives, told apart from mentions; the account's own DM is not a message.
        dms[0] = derived_dm()
        wait_stored(router, ["twitter:dm:1585800613752881156"], conn)
        dm = stored_doc(router, "twitter:dm:1585800613752881156")
        assert dm["meta"]["kind"] == "dm" and dm["from"] == {"id": "750362064426721281", "name": "Ann"}
        assert dm["thread"] == "dm:750362064426721281-783214"
        wait_for(lambda: conn.state("dms").get("since") == "1585800613752881156", 10, "the DM cursor")
        assert not router.redis.exists("omni:msg:twitter:dm:1585800613253812228")
    finally:
        conn.stop()
    # A stop leaves unanswered messages in the spool (the kill -9 above may have done so too): the next start
    # resends them and the router folds them as duplicates. Only those may be counted below.
    left = int(re.search(r"stopped; (\d+) message\(s\) wait in the spool", conn.log()).group(1))
    duplicates = int(router.redis.hget("omni:stats", "duplicates") or 0)

    # Restart: the first call carries since_id; the new mention arrives; nothing is fetched or stored twice.
    messages = stored_count(router.redis)
    new_mentions.append(derived_mention("1301573587187331080", "@acme second mention"))
    calls_before = len(api.calls("mentions"))
    conn = Twitter(tmp_path, router.endpoint, api).start()
    try:
        wait_stored(router, ["twitter:1301573587187331080"], conn)
        assert api.calls("mentions")[calls_before][2].get("since_id") == FIRST_ID
        wait_for(lambda: conn.state("mentions").get("since") == "1301573587187331080", 10, "since to move")
        wait_for(lambda: any(q.get("since_id") == "1301573587187331080" for _, _, q, _ in api.calls("mentions")),
                 10, "a call with the new since_id")
        assert stored_count(router.redis) == messages + 1
        assert int(router.redis.hget("omni:stats", "duplicates") or 0) - duplicates <= left
    finally:
        conn.stop()


def test_a_429_waits_until_the_reset_then_resumes(router, api, tmp_path):
    reset = math.ceil(time.time()) + 2
    answers = [too_many_requests(reset)]

    def mentions(q):
        return answers.pop(0) if answers else page(QUICKSTART) if "pagination_token" not in q else page(EMPTY)

    api.routes["mentions"] = mentions
    conn = Twitter(tmp_path, router.endpoint, api, feeds=("mentions",), poll_ms=100).start()
    try:
        wait_stored(router, [f"twitter:{FIRST_ID}"], conn)
        calls = api.calls("mentions")
        assert calls[1][0] >= reset - 0.05, f"called again {reset - calls[1][0]:.2f}s before the reset"
        assert calls[1][0] < reset + 1.5, "resumed too late"
        assert "429 Too Many Requests: waiting" in conn.log()
        wait_for(lambda: conn.state("mentions").get("since") == FIRST_ID, 10, "since")
    finally:
        conn.stop()
    assert stored_count(router.redis) == 1


def test_5xx_backs_off_then_succeeds(router, api, tmp_path):
    answers = [Response(503, b'{"title":"Service Unavailable"}', [("content-type", "application/json")]),
               Response(500, b"", [])]

    def mentions(q):
        return answers.pop(0) if answers else page(QUICKSTART) if "pagination_token" not in q else page(EMPTY)

    api.routes["mentions"] = mentions
    conn = Twitter(tmp_path, router.endpoint, api, feeds=("mentions",), poll_ms=400).start()
    try:
        wait_stored(router, [f"twitter:{FIRST_ID}"], conn)
        t = [c[0] for c in api.calls("mentions")]
        # Equal jitter: the first pause is within [200, 400] ms, the second within [400, 800] ms.
        assert t[1] - t[0] >= 0.19, f"retried after {t[1] - t[0]:.3f}s"
        assert t[2] - t[1] >= 0.39, f"retried after {t[2] - t[1]:.3f}s"
        out = conn.log()
        assert "mentions: HTTP 503: API error: Service Unavailable" in out or "HTTP 503" in out
        assert "failure 2 in a row" in out
        # READY=1 ("the source answered") only once the API answered a call, not while it failed
        assert out.index("ready: the source answered") > out.index("failure 2 in a row"), out
        wait_for(lambda: conn.state("mentions").get("since") == FIRST_ID, 10, "since")
    finally:
        conn.stop()
    assert stored_count(router.redis) == 1


def test_start_end_skips_what_is_there_and_takes_what_comes(router, api, tmp_path):
    later = []
    api.routes["mentions"] = lambda q: later[0] if later and q.get("since_id") == FIRST_ID else \
        page(EMPTY) if q.get("since_id") else page(QUICKSTART)
    conn = Twitter(tmp_path, router.endpoint, api, feeds=("mentions",))
    with open(conn.config, "a") as f:
        f.write("  start: end\n")
    conn.start()
    try:
        wait_for(lambda: conn.state("mentions") if os.path.exists(os.path.join(conn.dir, "spool",
                 "twitter-mentions.json")) else None, 10, "the first cursor")
        assert conn.state("mentions")["since"] == FIRST_ID and conn.state("mentions")["started"] is True
        assert api.calls("mentions")[0][2]["max_results"] == "5"
        later.append(derived_mention("1301573587187331090", "@acme after the start"))
        wait_stored(router, ["twitter:1301573587187331090"], conn)
        assert stored_count(router.redis) == 1  # the mention there before the first start was not taken
    finally:
        conn.stop()


def run(*args, env=None):
    return subprocess.run([os.path.join(BIN, "omni-twitter"), *args], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, **(env or {})))


def test_a_page_larger_than_max_spooled_is_taken_whole(router, api, tmp_path):
    """The cursor moves only after a whole page, so a page of more items than max_spooled is taken whole while the
    spool has room, not read again for good (docs/connectors.md, omni-twitter "Pacing")."""
    ids = [f"13015735871873310{n}" for n in range(10, 16)]
    doc = fixture_json(QUICKSTART)
    doc["data"] = [dict(doc["data"][0], id=i, text=f"@acme mention {i}") for i in reversed(ids)]
    doc["meta"] = {"newest_id": ids[-1], "oldest_id": ids[0], "result_count": len(ids)}
    full = Response(200, json.dumps(doc).encode(), [("content-type", "application/json; charset=utf-8")])
    api.routes["mentions"] = lambda q: page(EMPTY) if q.get("since_id") else full
    conn = Twitter(tmp_path, router.endpoint, api, feeds=("mentions",))
    with open(conn.config, "a") as f:
        f.write("max_spooled: 2\n")
    conn.start()
    try:
        wait_stored(router, [f"twitter:{i}" for i in ids], conn)
        wait_for(lambda: conn.state("mentions").get("since") == ids[-1], 10, "the cursor past the page")
    finally:
        conn.stop()
    assert stored_count(router.redis) == len(ids)


def test_config_sample_errors_secrets_and_docs(tmp_path, api):
    sample = os.path.join(ROOT, "conf", "omni-twitter.yaml")  # the source tree's, wherever the build is
    # --check-config reads the secrets as the start does: the sample's credential:x-token, from the unit's
    # credentials directory (here one made for the test)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "x-token").write_text(TOKEN)
    (creds / "x-token").chmod(0o600)
    r = run("--check-config", "--config", sample, "-D", f"spool_dir={tmp_path / 's'}")
    assert r.returncode == 1 and "twitter.token: credential:x-token: $CREDENTIALS_DIRECTORY is not set" in r.stderr
    cred_env = {"CREDENTIALS_DIRECTORY": str(creds)}
    r = run("--check-config", "--config", sample, "-D", f"spool_dir={tmp_path / 's'}", env=cred_env)
    assert r.returncode == 0, r.stderr
    # a token pasted in place of its file is an error that never repeats it
    pasted = "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2XzMDjRfl76ZC9Ub0wnz4Xs"
    r = run("--check-config", "--config", sample, "-D", f"spool_dir={tmp_path / 's'}", "-D", f"twitter.token={pasted}")
    assert r.returncode == 1 and "twitter.token: no such file (not shown" in r.stderr, r.stderr
    assert pasted[8:40] not in r.stderr, r.stderr
    # durations and sizes take their units, as every connector's *_ms and *_bytes keys (docs/connectors.md)
    r = run("--check-config", "--config", sample, "-D", f"spool_dir={tmp_path / 's'}",
            "-D", "twitter.call_timeout_ms=45s", "-D", "twitter.connect_timeout_ms=2s", "-D", "twitter.max_response_bytes=8m",
            env=cred_env)
    assert r.returncode == 0, r.stderr
    for override, why in (("twitter.call_timeout_ms=45x", "twitter.call_timeout_ms: expected a duration"),
                          ("twitter.user_id=@acme", "twitter.user_id: \"@acme\" is not a numeric user id"),
                          ("twitter.feeds=[mentions, likes]", "twitter.feeds: \"likes\" is not a feed"),
                          ("twitter.api_url=ftp://example.com",
                           "twitter.api_url: \"ftp://example.com\" is not an http:// or https:// URL"),
                          ("twitter.max_results=500", "twitter.max_results")):
        r = run("--check-config", "--config", sample, "-D", f"spool_dir={tmp_path / 's'}", "-D", override, env=cred_env)
        assert r.returncode == 1 and why in r.stderr, (override, r.stderr)

    # A token file others can read is refused at start, naming the key and the file; env: works.
    loose = tmp_path / "loose-token"
    loose.write_text(TOKEN)
    loose.chmod(0o644)
    base = ["-D", f"spool_dir={tmp_path / 's'}", "-D", "twitter.user_id=783214", "-D", f"twitter.api_url={api.url}",
            "-D", "router.endpoint=ipc://" + str(tmp_path / "nobody.sock")]
    r = run(*base, "-D", f"twitter.token={loose}")
    assert r.returncode == 1 and f"twitter.token: {loose}: readable by others (mode 0644)" in r.stdout + r.stderr
    r = run(*base, "-D", "twitter.token=env:X_TEST_TOKEN")
    assert r.returncode == 1 and "twitter.token: environment variable X_TEST_TOKEN is not set" in r.stdout + r.stderr

    # docs/connectors.md's table names every key of --help's twitter section, and no other.
    doc = open(os.path.join(os.path.dirname(sample), "..", "docs", "connectors.md")).read()
    section = doc[doc.index("## omni-twitter"):]
    documented = set()
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| key") and not line.startswith("|---"):
            documented |= {k.strip() for k in line.split("|")[1].split("/")}
    helped = set(re.findall(r"^  twitter\.(\w+)", run("--help").stdout, re.M))
    assert documented == helped, (documented ^ helped)


def test_account_activity_webhook_answers_the_published_crc_vector(router, api, tmp_path):
    import base64
    import hashlib
    import hmac
    import urllib.error
    import urllib.request
    vector = fixture_json("crc-vector.json")
    secret = tmp_path / "consumer-secret"
    secret.write_text(vector["consumer_secret"] + "\n")
    secret.chmod(0o600)
    api.routes["mentions"] = lambda q: page(EMPTY)
    conn = Twitter(tmp_path, router.endpoint, api, feeds=("mentions",))
    with open(conn.config, "a") as f:
        f.write("  consumer_secret: consumer-secret\n  listen: \"127.0.0.1:0\"\n")
    conn.start()

    def call(path, data=None, headers=None):
        req = urllib.request.Request(url + path, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    try:
        port = wait_for(lambda: re.search(r"listening on http://127\.0\.0\.1:(\d+)", conn.log()), 10, "listening")
        url = f"http://127.0.0.1:{port.group(1)}"
        status, body = call("/webhooks/twitter?crc_token=" + vector["crc_token"])
        assert status == 200 and json.loads(body) == vector["expected_response_json"]
        status, body = call("/webhooks/twitter?crc_token=" + vector["crc_token"][:-1] + "4")
        assert status == 200 and json.loads(body) != vector["expected_response_json"]  # a tampered token
        assert call("/webhooks/twitter")[0] == 400
        event = b'{"for_user_id":"783214","tweet_create_events":[]}'
        good = "sha256=" + base64.b64encode(hmac.new(vector["consumer_secret"].encode(), event,
                                                     hashlib.sha256).digest()).decode()
        assert call("/webhooks/twitter", event, {"x-twitter-webhooks-signature": good})[0] == 200
        assert call("/webhooks/twitter", event + b" ", {"x-twitter-webhooks-signature": good})[0] == 403
        assert call("/webhooks/twitter", event)[0] == 401
        try:  # another method: 405 with the Allow header RFC 9110 requires
            urllib.request.urlopen(urllib.request.Request(url + "/webhooks/twitter", data=event, method="PUT"), timeout=10)
            assert False, "PUT was taken"
        except urllib.error.HTTPError as e:
            assert e.code == 405 and e.headers.get("Allow") == "GET, POST", (e.code, dict(e.headers))
        # The feeds are polled all the while.
        wait_for(lambda: len(api.calls("mentions")) >= 2, 10, "polling beside the webhook")
    finally:
        conn.stop()


def test_a_used_up_window_waits_for_its_reset_even_mid_round(router, api, tmp_path):
    reset = math.ceil(time.time()) + 2
    used_up = [(k, "0" if k == "x-rate-limit-remaining" else str(reset) if k == "x-rate-limit-reset" else v)
               for k, v in page(QUICKSTART).headers]
    api.routes["mentions"] = lambda q: page(EMPTY) if "pagination_token" in q else \
        Response(200, fixture_bytes(QUICKSTART), used_up)
    conn = Twitter(tmp_path, router.endpoint, api, feeds=("mentions",), poll_ms=100).start()
    try:
        wait_stored(router, [f"twitter:{FIRST_ID}"], conn)  # the page is taken at once
        wait_for(lambda: len(api.calls("mentions")) >= 2, 10, "page 2")
        second = api.calls("mentions")[1]
        assert second[2].get("pagination_token") == "t3buvdr5pujq9g7bggsnf3ep2ha28"
        assert second[0] >= reset - 0.05, f"page 2 asked {reset - second[0]:.2f}s before the reset"
        assert "rate-limit window used up" in conn.log()
    finally:
        conn.stop()


def test_a_slow_api_never_blocks_the_loop(router, api, tmp_path):
    """A call the API does not answer (held here; call_timeout_ms is 20 s) leaves the loop free: SIGTERM
    ends the connector at once, with status 0."""
    api.routes["mentions"] = lambda q: page(QUICKSTART)
    api.hold("mentions")
    conn = Twitter(tmp_path, router.endpoint, api, feeds=("mentions",)).start()
    try:
        wait_for(lambda: api.calls("mentions"), 10, "the call")
        started = time.monotonic()
        conn.stop()
        assert time.monotonic() - started < 3, "SIGTERM waited for the API"
    finally:
        api.release("mentions")


def test_an_odd_string_costs_its_tweet_only_and_the_feed_goes_on(router, api, tmp_path):
    """Valid JSON that jansson alone refuses whole: a text X cut inside an emoji's surrogate pair (a lone \\ud83d)
    and a string holding U+0000. Refusing the page stopped the feed for good (the same page read again, refused
    again, every later mention lost). The half surrogate is read as U+FFFD, the tweet with the NUL skipped with a
    warning naming it (docs/connectors.md, omni-twitter "Messages"), and the round completes."""
    body = ('{"data":[{"id":"1600000000000000003","text":"@acme cut \\ud83d","author_id":"11",'
            '"created_at":"2024-02-01T00:00:00.000Z","conversation_id":"1600000000000000001"},'
            '{"id":"1600000000000000002","text":"@acme a \\u0000 b","author_id":"12"},'
            '{"id":"1600000000000000001","text":"@acme fine \\ud83d\\ude00","author_id":"13"}],'
            '"meta":{"newest_id":"1600000000000000003","oldest_id":"1600000000000000001","result_count":3}}').encode()
    later = []
    api.routes["mentions"] = lambda q: (later[0] if later else page(EMPTY)) if q.get("since_id") else \
        Response(200, body, [("content-type", "application/json; charset=utf-8")])
    conn = Twitter(tmp_path, router.endpoint, api, feeds=("mentions",)).start()
    try:
        wait_stored(router, ["twitter:1600000000000000003", "twitter:1600000000000000001"], conn)
        assert stored_doc(router, "twitter:1600000000000000003")["text"] == "@acme cut \ufffd"
        assert stored_doc(router, "twitter:1600000000000000001")["text"] == "@acme fine \U0001F600"
        wait_for(lambda: "tweet 1600000000000000002: a string holds U+0000" in conn.log(), 10, "the NUL warning")
        assert not router.redis.exists("omni:msg:twitter:1600000000000000002")
        wait_for(lambda: conn.state("mentions").get("since") == "1600000000000000003", 10, "the cursor past the page")
        later.append(derived_mention("1600000000000000004", "@acme and the next one"))
        wait_stored(router, ["twitter:1600000000000000004"], conn)
        assert "malformed page" not in conn.log()
    finally:
        conn.stop()


def test_ready_waits_for_a_page_not_for_any_200(router, api, tmp_path):
    """READY=1 ("ready: the source answered") comes with the API's first answer: a page or a 429
    (docs/connectors.md, omni-twitter "Pacing"). A 200 whose body is no page (a proxy's HTML, cut JSON) is a
    failure, backed off, and says nothing of the source."""
    answers = [Response(200, b"<html>captive portal</html>", [("content-type", "text/html")]),
               Response(200, b'{"data":[{"id":"1', [("content-type", "application/json")])]

    def mentions(q):
        return answers.pop(0) if answers else page(QUICKSTART) if "pagination_token" not in q else page(EMPTY)

    api.routes["mentions"] = mentions
    conn = Twitter(tmp_path, router.endpoint, api, feeds=("mentions",)).start()
    try:
        wait_stored(router, [f"twitter:{FIRST_ID}"], conn)
        out = wait_for(lambda: (lambda o: o if "ready: the source answered" in o else None)(conn.log()), 10, "READY")
        assert "failure 2 in a row" in out
        assert out.index("ready: the source answered") > out.index("failure 2 in a row"), out
    finally:
        conn.stop()


def test_a_long_post_arrives_whole(router, api, tmp_path):
    """A post over 280 characters comes with its text cut short and the whole of it in note_tweet.text, when the
    call asks for note_tweet (docs/connectors.md, omni-twitter "Calls" and "Messages"): the customer's whole
    message is routed, not its first 280 characters."""
    whole = "@acme " + "my order 4711 never arrived & nobody answers; " * 12 + "please call me back."
    doc = fixture_json(QUICKSTART)
    doc["data"][0].update(id="1600000000000000010", text=whole[:273] + "… https://t.co/abc",
                          note_tweet={"text": whole.replace("&", "&amp;"), "entities": {}})
    doc["meta"] = {"newest_id": "1600000000000000010", "oldest_id": "1600000000000000010", "result_count": 1}
    api.routes["mentions"] = lambda q: page(EMPTY) if q.get("since_id") else \
        Response(200, json.dumps(doc).encode(), [("content-type", "application/json; charset=utf-8")])
    conn = Twitter(tmp_path, router.endpoint, api, feeds=("mentions",)).start()
    try:
        wait_stored(router, ["twitter:1600000000000000010"], conn)
        assert stored_doc(router, "twitter:1600000000000000010")["text"] == whole
        assert "note_tweet" in api.calls("mentions")[0][2]["tweet.fields"].split(",")
    finally:
        conn.stop()


def dm_page(*dms):
    """A DM page (derived from the recorded one): dms are (event id, sender id, text), newest first."""
    doc = {"data": [{"event_type": "MessageCreate", "id": i, "text": text, "sender_id": sender,
                     "dm_conversation_id": f"{sender}-783214", "created_at": "2022-10-28T01:08:23.000Z"}
                    for i, sender, text in dms],
           "includes": {"users": [{"id": sender, "username": "u" + sender, "name": "U"} for _, sender, _ in dms]},
           "meta": {"result_count": len(dms)}}
    return Response(200, json.dumps(doc).encode(), recorded_dm_headers())


def test_an_outpost_points_each_dm_sender_once_and_tries_again_after_a_refusal(router, api, tmp_path):
    """twitter.outpost_reply (docs/routing.md "Outpost channels"): once a DM page is committed, its sender is sent
    the reply as a DM (POST /2/dm_conversations/with/:id/messages, answered here with the recorded 201), once per
    sender per window; the DMs are stored all the same; a refused pointer is forgotten, so the sender's next DM
    tries again; the account's own DMs point nobody."""
    reply = "We answer on email: help@example.com \U0001F4E7"
    dms = [derived_dm()]
    api.routes["dms"] = lambda q: dms[0]
    refuse = {"760000000000000001"}

    def send(q):
        if q["participant"] in refuse:
            return Response(403, b'{"title":"Forbidden","detail":"You are not permitted to send this DM"}',
                            [("content-type", "application/problem+json")])
        return Response(201, fixture_bytes("tweepy-POST-2-dm_conversations-with-750362064426721281-messages.201.json"),
                        [("content-type", "application/json; charset=utf-8")])
    api.routes["dm_send"] = send
    conn = Twitter(tmp_path, router.endpoint, api, feeds=("dms",),
                   extra=f"  outpost_reply: {json.dumps(reply, ensure_ascii=False)}\n  outpost_window: 1h\n").start()
    try:
        wait_stored(router, ["twitter:dm:1585800613752881156"], conn)
        wait_for(lambda: len(api.calls("dm_send")) == 1, 10, "the pointer DM")
        _, _, q, authorized = api.calls("dm_send")[0]
        assert authorized and q["participant"] == "750362064426721281" and q["content_type"] == "application/json"
        assert json.loads(q["body"]) == {"text": reply}
        conn.wait_log(r"dms: outpost: 750362064426721281 pointed to a covered channel")

        # the same sender again, and a sender whose pointer is refused: one POST for the refused one only
        dms[0] = dm_page(("1585800613752881200", "750362064426721281", "hello again"),
                         ("1585800613752881199", "760000000000000001", "hi"))
        wait_stored(router, ["twitter:dm:1585800613752881200", "twitter:dm:1585800613752881199"], conn)
        conn.wait_log(r"the pointer DM to 760000000000000001 was refused: HTTP 403")
        assert [c[2]["participant"] for c in api.calls("dm_send")] == ["750362064426721281", "760000000000000001"]
        # forgotten: their next DM tries again, and this time it goes
        refuse.clear()
        dms[0] = dm_page(("1585800613752881300", "760000000000000001", "anyone?"))
        wait_stored(router, ["twitter:dm:1585800613752881300"], conn)
        wait_for(lambda: len(api.calls("dm_send")) == 3, 10, "the pointer tried again")
        conn.wait_log(r"dms: outpost: 760000000000000001 pointed to a covered channel")
    finally:
        conn.stop()
    # who was pointed is kept across a restart
    with open(os.path.join(str(tmp_path), "spool", "outpost-pointed")) as f:
        assert sorted(line.split()[1] for line in f) == ["750362064426721281", "760000000000000001"]


def test_an_outpost_reply_needs_the_dm_feed(tmp_path, api):
    conn = Twitter(tmp_path, "ipc:///nonexistent", api, feeds=("mentions",), extra="  outpost_reply: see email\n")
    r = subprocess.run([os.path.join(BIN, "omni-twitter"), "--config", conn.config, "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "twitter.outpost_reply: answers DMs, and feeds has no dms" in r.stderr, r.stderr


def test_an_outpost_points_once_per_page_sender_never_on_the_start_probe_and_not_again_after_a_re_read(
        router, api, tmp_path):
    """The outpost's promises on other pages: `start: end`'s first call only marks where the feed begins, so
    the DMs it sees point nobody; a page with several DMs of one sender (and the account's own) is one POST;
    a 5xx or a 429 on the POST is logged with its status and the sender forgotten (their next DM tries again);
    a restart that reads DMs already taken again (the cursor lost) points nobody a second time."""
    dms = [dm_page(("1585800613752881100", "750362064426721281", "before the start"))]
    api.routes["dms"] = lambda q: dms[0]
    answers = {"701": [500, 201], "702": [429, 201]}

    def send(q):
        status = answers[q["participant"]].pop(0) if answers.get(q["participant"]) else 201
        if status != 201:
            return Response(status, b'{"title":"Try later","status":%d}' % status,
                            [("content-type", "application/problem+json")])
        return Response(201, fixture_bytes("tweepy-POST-2-dm_conversations-with-750362064426721281-messages.201.json"),
                        [("content-type", "application/json; charset=utf-8")])
    api.routes["dm_send"] = send
    conn = Twitter(tmp_path, router.endpoint, api, feeds=("dms",),
                   extra='  start: end\n  outpost_reply: "see email"\n  outpost_window: 1h\n').start()
    try:
        conn.wait_log(r"dms: starting after 1585800613752881100 \(start: end\)")
        dms[0] = dm_page(("1585800613752881204", "701", "one"), ("1585800613752881203", "783214", "our own"),
                         ("1585800613752881202", "701", "two"), ("1585800613752881201", "702", "three"),
                         ("1585800613752881200", "701", "four"))
        wait_stored(router, ["twitter:dm:1585800613752881204", "twitter:dm:1585800613752881201"], conn)
        conn.wait_log(r"the pointer DM to 701 was refused: HTTP 500 \{\"title\":\"Try later\"")
        conn.wait_log(r"the pointer DM to 702 was refused: HTTP 429 ")
        assert sorted(c[2]["participant"] for c in api.calls("dm_send")) == ["701", "702"]
        dms[0] = dm_page(("1585800613752881206", "702", "again"), ("1585800613752881205", "701", "again"))
        wait_stored(router, ["twitter:dm:1585800613752881206"], conn)
        conn.wait_log(r"dms: outpost: 701 pointed to a covered channel")
        conn.wait_log(r"dms: outpost: 702 pointed to a covered channel")
        assert len(api.calls("dm_send")) == 4
    finally:
        conn.stop()
    # the cursor lost (and start: all, or the probe would take nothing): the page is read again whole
    os.unlink(os.path.join(str(tmp_path), "spool", "twitter-dms.json"))
    with open(conn.config) as f:
        text = f.read()
    with open(conn.config, "w") as f:
        f.write(text.replace("  start: end\n", ""))
    dms[0] = dm_page(("1585800613752881207", "701", "once more"), ("1585800613752881206", "702", "again"))
    api.requests.clear()
    conn.start()
    try:
        wait_stored(router, ["twitter:dm:1585800613752881207"], conn)
        wait_for(lambda: len(api.calls("dms")) >= 2, 10, "a later round")  # past the page that was taken
        assert api.calls("dm_send") == []
        assert stored_count(router.redis) == 7  # the account's own DM is no message
    finally:
        conn.stop()


def test_an_outpost_reply_of_10000_bytes_goes_whole(router, api, tmp_path):
    """outpost_reply up to 10,000 bytes of UTF-8 (X's DM limit): the POST carries it whole, as JSON."""
    reply = ("é" * 4999) + "ab"  # 10,000 bytes of UTF-8
    api.routes["dms"] = lambda q: dm_page(("1585800613752881400", "750362064426721281", "hello"))
    conn = Twitter(tmp_path, router.endpoint, api, feeds=("dms",),
                   extra=f"  outpost_reply: {json.dumps(reply, ensure_ascii=False)}\n").start()
    try:
        wait_for(lambda: api.calls("dm_send"), 10, "the pointer DM")
        q = api.calls("dm_send")[0][2]
        assert json.loads(q["body"]) == {"text": reply} and q["content_type"] == "application/json"
        conn.wait_log(r"dms: outpost: 750362064426721281 pointed to a covered channel")
    finally:
        conn.stop()
