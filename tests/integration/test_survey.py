"""Surveys (docs/routing.md "Surveys", docs/api.md "Verbs"): CSAT, CES and NPS of a resolved conversation,
recorded by an operator's token (POST /v1/conversations/{id}/survey) or `omnictl conversation survey`, each
score once; counted in the SLA report on the day recorded (the routers' clock) under the team that resolved the
conversation. Black-box: a router on the test clock, an omni-api beside it, every answer checked against
docs/openapi.yaml (api_client.py)."""
import datetime
import json
import os
import threading

import pytest

from api_client import OmniApi
from harness import Peer, Router, clock_advance, message, router_now, wait_for

POLICY = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: core, kind: in-house, calendar: always, offers: {auto_accept: true}}
  - {name: tier2, kind: in-house, calendar: always, offers: {auto_accept: true}}
  - {name: desk, kind: in-house, calendar: always, offers: {accept_timeout: 10m}}
  - {name: acme, kind: outsourced, calendar: always, contract: {categories: [general], mask_contact: true}}
agents:
  - {id: ann, teams: [core], capacity: {email: 1, sms: 5}}
  - {id: tina, teams: [tier2], capacity: {email: 5, sms: 5}}
  - {id: dora, teams: [desk], capacity: {email: 5}}
classification:
  rules:
    - {name: technical, when: {text: ["crash"]}, category: technical}
routing:
  rules:
    - {name: acme, when: {text: ["for-acme"]}, targets: [{team: acme}], queue: core}
    - {name: desk, when: {text: ["for-desk"]}, targets: [{team: desk}], queue: desk}
    - {name: technical, when: {category: [technical]}, targets: [{team: tier2}], queue: tier2}
    - {name: calls, when: {channel: [phone], text: ["^Answered call from"]}, record: true}
    - {name: rest, targets: [{team: core}], queue: core}
"""

SCORES = ("csat", "ces", "nps")
COUNTERS = ("csat", "csat_sum", "csat_satisfied", "ces", "ces_sum", "nps", "nps_promoters", "nps_detractors")


class World:
    """A router on the test clock, an omni-api on the same Redis, tokens for ann (agent), acme (partner) and
    olga (operator)."""

    def __init__(self, tmp_path, redis_server, extra=None):
        self.redis = redis_server.client()
        self.router = Router(str(tmp_path), redis_server.address, policy=POLICY, extra=extra,
                             env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
        self.router.redis = self.redis
        self.peer = Peer(self.router.endpoint)
        self.api = OmniApi(str(tmp_path), redis_server.address).start()
        self.tokens = {s: self.ctl("token", "create", s).stdout.strip()
                       for s in ("agent:ann", "agent:tina", "partner:acme", "operator:olga")}
        self.n = 0

    def ctl(self, *args, check=True):
        return self.router.ctl(*args, check=check)

    def submit(self, text, channel="email", frm=None):
        self.n += 1
        mid = f"{channel}:survey:{self.n}"
        frm = frm or (f"cust{self.n}@example.com" if channel == "email" else f"+1415555{self.n:04d}")
        self.peer.submit(message(mid, channel=channel, frm=frm, text=text))
        assert self.peer.recv() == ["OMNI/1", "ACK", mid]
        return self.redis.hget(f"omni:msg:{mid}", "conversation")

    def work(self, text, status="assigned", **kw):
        cv = self.submit(text, **kw)
        wait_for(lambda: self.status(cv) == status, 10, f"conversation {cv} {status}")
        return cv

    def status(self, cv):
        return self.redis.hget(f"omni:conversation:{cv}", "status")

    def call(self, method, path, who=None, body=None, **kw):
        token = self.tokens.get(who, who) if who else None
        return self.api.request(method, path, token=token, body=body, **kw)

    def survey(self, cv, who="operator:olga", **kw):
        return self.call("POST", f"/v1/conversations/{cv}/survey", who, **kw)

    def resolve(self, cv, who="operator:olga"):
        a = self.call("POST", f"/v1/conversations/{cv}/resolve", who)
        assert (a.status, a.body["outcome"]) == (200, "resolved"), a
        return cv

    def day(self, offset_days=0):
        return (datetime.datetime.fromtimestamp(router_now(self.router) / 1000, datetime.timezone.utc)
                + datetime.timedelta(days=offset_days)).strftime("%Y-%m-%d")

    def counts(self, day=None):
        """Every survey counter of the day's report hash: {(team, channel, counter): n}."""
        out = {}
        for k, v in self.redis.hgetall(f"omni:report:{day or self.day()}").items():
            team, channel, counter = k.split("|")
            if counter in COUNTERS:
                out[(team, channel, counter)] = int(v)
        return out

    def surveyed_events(self, cv=None):
        return [f for _, f in self.redis.xrange("omni:events")
                if f["type"] == "surveyed" and (cv is None or f["conversation"] == cv)]

    def snapshot(self, cv):
        """What a refused call must leave as it was: the conversation's survey fields, the report, the stats,
        the events."""
        return (self.redis.hmget(f"omni:conversation:{cv}", *SCORES, "surveyed_at"), self.counts(),
                self.redis.hget("omni:stats", "surveys"), len(self.surveyed_events()))

    def close(self):
        self.api.stop()
        self.peer.close()
        self.router.stop()


@pytest.fixture
def world(tmp_path, redis_server):
    w = World(tmp_path, redis_server)
    yield w
    w.close()


def test_only_a_resolved_conversation_takes_a_survey(world):
    """assigned, queued, offered, merged: 409 not_resolved / exit 1, nothing recorded; unknown: 404 / exit 1."""
    assigned = world.work("where is my order?")                     # ann's (capacity 1 on email)
    queued = world.work("and mine?", status="queued")               # waits in core's queue
    offered = world.work("a question for-desk", status="offered")   # dora's open offer
    # two customers, each with an open conversation, linked: one conversation merges into the other
    a = world.work("hello from a crash", frm="a@example.com")
    b = world.work("me again", frm="+14155550199", channel="sms")
    world.ctl("customer", "link", "a@example.com", "+14155550199")
    merged = wait_for(lambda: next((c for c in (a, b) if world.status(c) == "merged"), None), 10, "a merge")
    for cv in (assigned, queued, offered, merged):
        before = world.snapshot(cv)
        r = world.survey(cv, body={"csat": 4})
        assert r.status == 409 and r.body["error"]["code"] == "not_resolved" and cv in r.body["error"]["message"], \
            (world.status(cv), r)
        out = world.ctl("conversation", "survey", cv, "--csat", "4", check=False)
        assert out.returncode == 1 and f"conversation {cv}: not resolved" in out.stderr, out.stderr
        assert out.stdout == "", out.stdout
        assert world.snapshot(cv) == before
    for cv in ("987654", "0", "abc"):
        r = world.survey(cv, body={"csat": 4})
        assert r.status == 404 and r.body["error"]["code"] == "not_found", r
        out = world.ctl("conversation", "survey", cv, "--csat", "4", check=False)
        assert out.returncode == 1 and "no such conversation" in out.stderr, out.stderr


def test_each_score_once_and_a_refused_call_records_nothing(world):
    cv = world.resolve(world.work("my parcel is late"))
    r = world.survey(cv, body={"csat": 2})
    assert (r.status, r.body) == (200, {"conversation": cv, "outcome": "recorded"}), r
    at = world.redis.hget(f"omni:conversation:{cv}", "surveyed_at")
    clock_advance(world.router, "1m")
    # the same again, in any company of scores recorded before: already, nothing written (not even surveyed_at)
    before = world.snapshot(cv)
    assert world.survey(cv, body={"csat": 2}).body["outcome"] == "already"
    out = world.ctl("conversation", "survey", cv, "--csat", "2")
    assert out.stdout == f"conversation {cv}: survey recorded already (the same scores)\n", out.stdout
    assert world.snapshot(cv) == before
    # another score, with a new measure beside it: 409 naming the recorded one, and the new one not added
    for body in ({"csat": 5}, {"csat": 5, "nps": 9}, {"nps": 9, "csat": 1}, {"ces": 3, "nps": 9, "csat": 4}):
        r = world.survey(cv, body=body)
        assert r.status == 409 and r.body["error"]["code"] == "surveyed", (body, r)
        assert "csat 2" in r.body["error"]["message"] and cv in r.body["error"]["message"], r
        assert world.snapshot(cv) == before, body
    out = world.ctl("conversation", "survey", cv, "--nps", "9", "--csat", "3", check=False)
    assert out.returncode == 1 and f"conversation {cv}: surveyed already with csat 2" in out.stderr, out.stderr
    assert world.snapshot(cv) == before
    # a measure not recorded yet is added, beside the one recorded given again
    r = world.survey(cv, body={"csat": 2, "nps": 0})
    assert r.body["outcome"] == "recorded", r
    h = world.redis.hgetall(f"omni:conversation:{cv}")
    assert (h["csat"], h["nps"], "ces" in h) == ("2", "0", False) and int(h["surveyed_at"]) > int(at), h
    # the event names only what this call recorded
    assert [{k: v for k, v in e.items() if k != "by"} for e in world.surveyed_events(cv)] == [
        {"type": "surveyed", "conversation": cv, "csat": "2"}, {"type": "surveyed", "conversation": cv, "nps": "0"}]
    assert [e["by"] for e in world.surveyed_events(cv)] == ["operator:olga"] * 2
    assert world.redis.hget("omni:stats", "surveys") == "2"
    assert world.counts() == {("core", "email", "csat"): 1, ("core", "email", "csat_sum"): 2,
                              ("core", "email", "nps"): 1, ("core", "email", "nps_detractors"): 1}
    # a second measure recorded by the other surface, then each one already
    out = world.ctl("conversation", "survey", cv, "--ces", "7", "--by", "surveybot")
    assert out.stdout == f"conversation {cv}: survey recorded\n"
    assert world.surveyed_events(cv)[-1] == {"type": "surveyed", "conversation": cv, "by": "surveybot", "ces": "7"}
    assert world.survey(cv, body={"csat": 2, "ces": 7, "nps": 0}).body["outcome"] == "already"


def test_the_view_shows_the_survey_to_an_operator(world):
    cv = world.resolve(world.work("a view please"))
    view = world.call("GET", f"/v1/conversations/{cv}", "operator:olga").body
    assert "survey" not in view, view
    world.survey(cv, body={"nps": 10, "ces": 1})
    view = world.call("GET", f"/v1/conversations/{cv}", "operator:olga").body
    at = int(world.redis.hget(f"omni:conversation:{cv}", "surveyed_at"))
    assert view["survey"] == {"at": at, "nps": 10, "ces": 1}, view
    assert abs(at - router_now(world.router)) < 10000
    # the agent who resolved it and a partner: not theirs any more (404), so nothing of the survey either
    for who in ("agent:ann", "partner:acme"):
        assert world.call("GET", f"/v1/conversations/{cv}", who).status == 404
    out = world.ctl("conversation", "show", cv).stdout
    assert "  survey ces 1 nps 10 (recorded " in out, out


def test_bodies_are_checked_and_name_the_field(world):
    cv = world.resolve(world.work("bodies"))
    before = world.snapshot(cv)
    for body, code, field in (
            ({"csat": 0}, "invalid_field", "csat"), ({"csat": 6}, "invalid_field", "csat"),
            ({"ces": 0}, "invalid_field", "ces"), ({"ces": 8}, "invalid_field", "ces"),
            ({"nps": -1}, "invalid_field", "nps"), ({"nps": 11}, "invalid_field", "nps"),
            ({"csat": "5"}, "invalid_field", "csat"), ({"csat": 4.5}, "invalid_field", "csat"),
            ({"csat": True}, "invalid_field", "csat"), ({"csat": None}, "invalid_field", "csat"),
            ({"csat": [5]}, "invalid_field", "csat"), ({"nps": 1e3}, "invalid_field", "nps"),
            ({"csat": 5, "nps": 100}, "invalid_field", "nps"), ({"stars": 5}, "unknown_field", "body"),
            ({"csat": 5, "comment": "great"}, "unknown_field", "body"), ({}, "missing_field", "body")):
        r = world.survey(cv, body=body)
        assert r.status == 400 and (r.body["error"]["code"], r.body["error"]["field"]) == (code, field), (body, r)
    for raw, code in ((b"", "missing_field"), (b"  \n", "missing_field"), (b"[]", "invalid_json"),
                      (b'{"csat": 5, "csat": 5}', "invalid_json"), (b"{csat: 5}", "invalid_json"),
                      (b"5", "invalid_json")):
        r = world.survey(cv, raw=raw)
        assert r.status == 400 and r.body["error"]["code"] == code, (raw, r)
    assert world.snapshot(cv) == before
    # the body is checked before the conversation (docs/api.md "Errors"): an agent's empty body is 400 as well
    for who in ("agent:ann", "partner:acme"):
        r = world.survey(cv, who=who, body={})
        assert r.status == 400 and r.body["error"]["code"] == "missing_field", (who, r)
        r = world.survey(cv, who=who, body={"csat": 9})
        assert r.status == 400 and r.body["error"]["code"] == "invalid_field", (who, r)
        assert world.survey(cv, who=who, body={"csat": 5}).status == 404
    r = world.call("GET", f"/v1/conversations/{cv}/survey", "operator:olga")
    assert r.status == 405 and r.headers["allow"] == "POST", r
    assert world.snapshot(cv) == before


def test_omnictl_arguments(world):
    cv = world.resolve(world.work("omnictl arguments"))
    before = world.snapshot(cv)
    for args in (["--csat", "6"], ["--ces", "0"], ["--nps", "+5"], ["--nps", " 5"], ["--csat", "5", "--by"],
                 ["--csat=5"], ["--CSAT", "5"], [], ["--ces", "3", "--ces", "4"], ["--csat", "5", "--by", "a", "--by", "b"]):
        out = world.ctl("conversation", "survey", cv, *args, check=False)
        assert out.returncode == 2 and out.stderr.startswith("omnictl: conversation survey"), (args, out.stderr)
        if args.count(args[-2] if len(args) > 1 else "") > 1:  # a repeated option: which one was meant?
            assert f"{args[-2]} given twice" in out.stderr, (args, out.stderr)
    out = world.ctl("conversation", "survey", check=False)
    assert out.returncode == 2
    assert world.snapshot(cv) == before


def test_the_team_that_resolved_it_and_the_day_it_was_recorded(world):
    """resolved_team: the agent's team, a partner team, the queue's team of waiting work, the team a transfer
    gave it to; "-" for a conversation a record: true rule stored resolved. The day: the routers' clock at the
    survey, not the resolution's day."""
    held = world.work("where is my order?")                                     # ann: core
    queued = world.work("and mine?", status="queued")                           # waits in core's queue
    partner = world.work("please help for-acme")                                # acme
    moved = world.work("another order", channel="sms")                          # ann, then tier2
    a = world.call("POST", f"/v1/conversations/{moved}/transfer", "agent:ann", body={"team": "tier2"})
    assert a.status == 200, a
    wait_for(lambda: world.redis.hget(f"omni:conversation:{moved}", "team") == "tier2", 10, "moved to tier2")
    recorded = world.submit("Answered call from +14155550123 (2m10s)", channel="phone", frm="+14155550123")
    wait_for(lambda: world.status(recorded) == "resolved", 10, "recorded resolved")
    world.resolve(queued)
    world.resolve(partner, who="partner:acme")
    world.resolve(moved, who="agent:tina")
    world.resolve(held, who="agent:ann")
    resolved_day = world.day()
    # the next UTC day of the routers' clock, whatever the wall clock says
    now = router_now(world.router)
    to_midnight = 86400000 - now % 86400000
    clock_advance(world.router, f"{to_midnight // 1000 + 60}s")
    assert world.day() != resolved_day
    for cv, body in ((held, {"csat": 5}), (queued, {"csat": 4}), (partner, {"csat": 1}), (recorded, {"nps": 9})):
        assert world.survey(cv, body=body).body["outcome"] == "recorded"
    world.ctl("conversation", "survey", moved, "--ces", "6")  # omnictl reads the same clock
    assert world.counts(resolved_day) == {}
    assert world.counts() == {
        ("core", "email", "csat"): 2, ("core", "email", "csat_sum"): 9, ("core", "email", "csat_satisfied"): 2,
        ("acme", "email", "csat"): 1, ("acme", "email", "csat_sum"): 1,
        ("tier2", "sms", "ces"): 1, ("tier2", "sms", "ces_sum"): 6,
        ("-", "phone", "nps"): 1, ("-", "phone", "nps_promoters"): 1}
    rep = world.call("GET", "/v1/report?days=1", "operator:olga").body
    rows = {(x["team"], x["channel"]): x for x in rep["rows"]}
    assert rows[("core", "email")]["csat_satisfied"] == 2 and rows[("-", "phone")]["nps_promoters"] == 1, rows
    assert rep["total"]["csat"] == 3 and rep["total"]["csat_sum"] == 10 and rep["total"]["ces_sum"] == 6, rep
    # omnictl report --json is the same document
    assert json.loads(world.ctl("report", "--json", "--days", "1").stdout) == rep


def test_report_figures(world):
    """CSAT: the share of 4s and 5s; CES: the mean; NPS: promoters' share less detractors', a whole number
    -100..+100 with its sign ("+0" for zero, never "-0"); "-" when none."""
    day = world.day()
    key = f"omni:report:{day}"
    rows = {  # team: counters (written as the scripts would have counted them)
        "a": {"csat": 3, "csat_sum": 11, "csat_satisfied": 2, "ces": 4, "ces_sum": 17, "nps": 200,
              "nps_promoters": 0, "nps_detractors": 1},      # NPS -0.5: half away from zero, -1
        "b": {"nps": 3, "nps_promoters": 1, "nps_detractors": 2},                   # -33.3 -> -33
        "c": {"nps": 201, "nps_promoters": 0, "nps_detractors": 1},                 # -0.497 -> +0
        "d": {"responded": 1, "response_ms": 1000},                                 # no survey: "-"
        "e": {"nps": 8, "nps_promoters": 1},                                        # 12.5 -> +13
        "f": {"nps": 8, "nps_detractors": 1},                                       # -12.5 -> -13
        "g": {"nps": 4, "nps_promoters": 2, "nps_detractors": 2},                   # 0 -> +0
    }
    for team, counters in rows.items():
        for k, v in counters.items():
            world.redis.hset(key, f"{team}|email|{k}", v)
    table = world.ctl("report", "--days", "1").stdout.splitlines()
    assert table[1].split()[-3:] == ["CSAT", "CES", "NPS"], table
    line = {x.split()[0]: x.split() for x in table[2:]}
    assert line["a"][-3] == "66.7%" and line["a"][-2] in ("4.2", "4.3") and line["a"][-1] == "-1", line["a"]
    assert line["b"][-1] == "-33", line["b"]
    assert line["c"][-1] == "+0", line["c"]
    assert line["d"][-3:] == ["-", "-", "-"], line["d"]
    assert (line["e"][-1], line["f"][-1], line["g"][-1]) == ("+13", "-13", "+0"), table
    assert all(not x.split()[-1].startswith("-0") for x in table[2:]), table


def test_concurrent_surveys_of_one_conversation_record_one_score(world):
    cv = world.resolve(world.work("race"))
    results = []

    def go(score):
        results.append((score, world.survey(cv, body={"csat": score})))
    threads = [threading.Thread(target=go, args=(1 + i % 5,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    recorded = [s for s, r in results if r.status == 200 and r.body["outcome"] == "recorded"]
    assert len(recorded) == 1, results
    won = recorded[0]
    for s, r in results:
        if s == won:
            assert r.status == 200, r
        else:
            assert r.status == 409 and f"csat {won}" in r.body["error"]["message"], r
    assert world.redis.hget(f"omni:conversation:{cv}", "csat") == str(won)
    assert world.counts() == {("core", "email", "csat"): 1, ("core", "email", "csat_sum"): won,
                              **({("core", "email", "csat_satisfied"): 1} if won >= 4 else {})}
    assert world.redis.hget("omni:stats", "surveys") == "1" and len(world.surveyed_events(cv)) == 1


def test_an_archived_conversation_is_404_and_its_record_keeps_the_survey(tmp_path, redis_server):
    archive = str(tmp_path / "archive")
    w = World(tmp_path, redis_server,
              extra={"retention": {"resolved": "1h", "dedup": "3s", "tombstone": "1h", "archive_dir": archive}})
    try:
        cv = w.resolve(w.work("archive me"))
        assert w.survey(cv, body={"csat": 4}).body["outcome"] == "recorded"
        clock_advance(w.router, "2h")
        wait_for(lambda: not w.redis.exists(f"omni:conversation:{cv}"), 20, "archived")
        r = w.survey(cv, body={"csat": 4})
        assert r.status == 404 and r.body["error"]["code"] == "not_found", r
        out = w.ctl("conversation", "survey", cv, "--ces", "2", check=False)
        assert out.returncode == 1 and "no such conversation" in out.stderr, out.stderr
        recs = [json.loads(line) for name in os.listdir(archive) for line in open(os.path.join(archive, name))]
        rec = next(x for x in recs if x["conversation"] == cv)
        assert rec["fields"]["csat"] == "4" and rec["fields"]["surveyed_at"], rec
    finally:
        w.close()


def test_the_metric_counts_the_calls_that_recorded(tmp_path, redis_server):
    from harness import free_port, scrape
    port = free_port()
    r = Router(str(tmp_path), redis_server.address, policy=POLICY, router_extra={"metrics_listen": f"127.0.0.1:{port}"},
               env={"OMNIROUTER_TEST_CLOCK": "1"}).start()
    try:
        r.redis = redis_server.client()
        peer = Peer(r.endpoint)
        peer.submit(message("m1", frm="m@example.com", text="metric"))
        assert peer.recv() == ["OMNI/1", "ACK", "m1"]
        peer.close()
        cv = r.redis.hget("omni:msg:m1", "conversation")
        wait_for(lambda: r.redis.hget(f"omni:conversation:{cv}", "status") == "assigned", 10, "assigned")
        r.ctl("conversation", "resolve", cv)
        assert scrape(port)[("omnirouter_surveys_total", ())] == 0
        r.ctl("conversation", "survey", cv, "--csat", "5")
        r.ctl("conversation", "survey", cv, "--csat", "5")                       # already: not counted
        r.ctl("conversation", "survey", cv, "--csat", "4", check=False)          # refused: not counted
        r.ctl("conversation", "survey", cv, "--nps", "5", "--ces", "2")          # one call, two scores: one
        wait_for(lambda: scrape(port)[("omnirouter_surveys_total", ())] == 2, 15, "the metric at 2")
    finally:
        r.stop()


def test_a_survey_while_the_archive_writes_the_record_is_404_not_lost(tmp_path, redis_server):
    """docs/routing.md "Surveys": `retention.resolved` after its resolution a conversation is archived and a
    survey of it is 404. A router claims it, writes its record and fsyncs, then deletes it from Redis: a score
    recorded in between would be said recorded and be in no record. OMNIROUTER_TEST_ARCHIVE_PAUSE stops the
    router right there (docs/archive.md); another router takes the claim over, finds the record, deletes."""
    archive = str(tmp_path / "archive")
    ret = {"retention": {"resolved": "1h", "dedup": "3s", "tombstone": "1h", "archive_dir": archive}}

    def start(name, env):
        r = Router(str(tmp_path / name), redis_server.address, name=name, policy=POLICY, extra=ret,
                   env=dict({"OMNIROUTER_TEST_CLOCK": "1"}, **env)).start()
        r.redis = redis_server.client()
        return r
    a = start("a", {"OMNIROUTER_TEST_ARCHIVE_PAUSE": "1"})
    peer = Peer(a.endpoint)
    peer.submit(message("k1", frm="eve@example.com", text="archive me while surveyed"))
    assert peer.recv() == ["OMNI/1", "ACK", "k1"]
    peer.close()
    cv = wait_for(lambda: a.redis.hget("omni:msg:k1", "conversation"), 10, "stored")
    wait_for(lambda: a.redis.hget(f"omni:conversation:{cv}", "status") == "assigned", 10, "assigned")
    a.ctl("conversation", "resolve", cv)
    a.ctl("clock", "advance", "2h")
    a.wait_log(r"archive: test pause: 1 records fsynced to ", 20)
    out = a.ctl("conversation", "survey", cv, "--csat", "5", check=False)
    assert out.returncode == 1 and "no such conversation" in out.stderr, (out.stdout, out.stderr)
    assert a.redis.hget(f"omni:conversation:{cv}", "csat") is None
    a.kill()
    b = start("b", {})
    try:
        b.ctl("clock", "advance", "2m")
        wait_for(lambda: not b.redis.exists(f"omni:conversation:{cv}"), 20, "archived by the second router")
        recs = [json.loads(line) for name in os.listdir(archive) for line in open(os.path.join(archive, name))]
        assert [x["conversation"] for x in recs] == [cv] and "csat" not in recs[0]["fields"], recs
        assert not any(k.endswith("|csat") for d in (0, 1)
                       for k in b.redis.hkeys("omni:report:" + datetime.datetime.fromtimestamp(
                           router_now(b) / 1000 - d * 86400, datetime.timezone.utc).strftime("%Y-%m-%d")))
    finally:
        b.stop()


def test_a_follow_up_and_a_later_conversation_are_surveyed_on_their_own(tmp_path, redis_server):
    """The customer writing again after a resolution opens a new conversation (routing.md "Ownership and
    folding"), and a follow-up is one too ("Follow-ups"): each is surveyed on its own, while open not at all, and
    the resolved one keeps taking its own survey, under the team that resolved it."""
    w = World(tmp_path, redis_server, extra={"follow_up": {"after": "1h"}})
    try:
        first = w.work("the app shows a crash", frm="fu@example.com")               # tier2's
        w.resolve(first, who="agent:tina")
        clock_advance(w.router, "61m")
        follow = wait_for(lambda: w.redis.hget(f"omni:conversation:{first}", "follow_up"), 10, "a follow-up")
        wait_for(lambda: w.status(follow) in ("assigned", "queued", "offered"), 10, "the follow-up routed")
        r = w.survey(follow, body={"csat": 5})
        assert r.status == 409 and r.body["error"]["code"] == "not_resolved", r
        assert w.survey(first, body={"csat": 3}).body["outcome"] == "recorded"
        w.resolve(follow)
        team = w.redis.hget(f"omni:conversation:{follow}", "resolved_team")
        assert w.survey(follow, body={"csat": 5}).body["outcome"] == "recorded"
        later = w.work("one more thing, please", frm="fu@example.com")              # core's
        assert later not in (first, follow)
        r = w.survey(later, body={"csat": 1})
        assert r.status == 409 and r.body["error"]["code"] == "not_resolved", r
        assert w.redis.hget(f"omni:conversation:{first}", "csat") == "3"
        # the follow-up quotes the crash: tier2's again, resolved while tina held it
        assert team == "tier2"
        assert w.counts() == {("tier2", "email", "csat"): 2, ("tier2", "email", "csat_sum"): 8,
                              ("tier2", "email", "csat_satisfied"): 1}
    finally:
        w.close()


def test_an_operators_event_stream_tells_the_survey(world):
    from api_client import EventStream
    cv = world.resolve(world.work("stream it"))
    stream = EventStream(world.api, world.tokens["operator:olga"])
    try:
        assert stream.status == 200
        stream.next_block()  # retry: and the stream's comment
        world.survey(cv, body={"ces": 2, "nps": 6})
        world.survey(cv, body={"ces": 2})  # already: no event
        world.survey(cv, body={"csat": 4})
        seen = []
        while len(seen) < 2:
            _, kind, data = stream.next_event(10)
            if kind == "surveyed":
                seen.append(data)
        assert seen == [{"type": "surveyed", "conversation": cv, "by": "operator:olga", "ces": "2", "nps": "6"},
                        {"type": "surveyed", "conversation": cv, "by": "operator:olga", "csat": "4"}], seen
    finally:
        stream.close()
