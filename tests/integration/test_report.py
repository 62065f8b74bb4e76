"""The SLA report (docs/routing.md "SLA reports", `omnictl report`): per UTC day of the routers' clock, team and
channel, first responses (met, breached, their mean time) and resolutions (first contact or not), counted by the
scripts that make them happen. The router runs on the test clock, so SLA targets pass without waiting."""
import datetime
import json

import pytest

from harness import clock_advance as advance, clocked_router, router_now, send_one, wait_for

POLICY = """
teams:
  - name: core
    kind: in-house
    offers: {auto_accept: true}
  - name: tier2
    kind: in-house
    offers: {auto_accept: true}
agents:
  - id: alice
    teams: [core]
    capacity: {email: 5, sms: 5}
  - id: tina
    teams: [tier2]
    capacity: {email: 5}
classification:
  rules:
    - {name: technical, when: {text: ["crash"]}, category: technical}
routing:
  rules:
    - name: technical
      when: {category: [technical]}
      targets: [{team: tier2}]
    - name: all
      targets: [{team: core}]
sla:
  targets:
    - when: {channel: [email]}
      first_response: 1h
"""


@pytest.fixture
def rt(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, POLICY) as r:
        yield r


SURVEY_COUNTERS = ("csat", "csat_sum", "csat_satisfied", "ces", "ces_sum", "nps", "nps_promoters", "nps_detractors")
NO_SURVEYS = dict.fromkeys(SURVEY_COUNTERS, 0)


def send(r, id, frm, text, channel="email"):
    conv = send_one(r, id, frm, text, channel)
    wait_for(lambda: r.redis.hget(f"omni:conversation:{conv}", "status") == "assigned", 10, f"{conv} assigned")
    return conv


def day(r, offset_days=0):
    return (datetime.datetime.fromtimestamp(router_now(r) / 1000, datetime.timezone.utc)
            + datetime.timedelta(days=offset_days)).strftime("%Y-%m-%d")


def report(r, *args):
    out = r.ctl("report", "--json", *args).stdout
    doc = json.loads(out)
    return doc, {(x["team"], x["channel"]): x for x in doc["rows"]}


def test_first_responses_and_resolutions_are_reported_by_team_channel_and_day(rt):
    ann = send(rt, "r1", "ann@example.com", "where is my order?")
    ben = send(rt, "r2", "ben@example.com", "my invoice is wrong")
    sms = send(rt, "r3", "+14155550100", "hello?", channel="sms")
    tech = send(rt, "r4", "tom@example.com", "the app shows a crash")
    opened = {c: int(rt.redis.hget(f"omni:conversation:{c}", "opened_at")) for c in (ann, ben, sms, tech)}
    advance(rt, "10m")
    rt.ctl("conversation", "respond", ann)
    rt.ctl("conversation", "respond", sms)   # no SLA target on sms: responded, neither met nor breached
    rt.ctl("conversation", "respond", tech)
    advance(rt, "55m")                       # ben's hour is over: the tick counts the breach, on this day
    wait_for(lambda: rt.redis.hget(f"omni:conversation:{ben}", "breached") == "1", 10, "ben's breach seen")
    rt.ctl("conversation", "respond", ben)   # late: already counted, not again
    rt.ctl("conversation", "resolve", ann)   # one assignment in all: first contact
    rt.ctl("conversation", "resolve", tech)

    doc, rows = report(rt)
    at = {c: int(rt.redis.hget(f"omni:conversation:{c}", "first_response_at")) for c in (ann, ben, sms, tech)}
    core_email = rows[("core", "email")]
    assert core_email == {"team": "core", "channel": "email", "responded": 2, "met": 1, "breached": 1,
                          "response_ms": at[ann] - opened[ann] + at[ben] - opened[ben], "resolved": 1,
                          "first_contact": 1, **NO_SURVEYS}, core_email
    assert rows[("core", "sms")] == {"team": "core", "channel": "sms", "responded": 1, "met": 0, "breached": 0,
                                     "response_ms": at[sms] - opened[sms], "resolved": 0, "first_contact": 0,
                                     **NO_SURVEYS}
    assert rows[("tier2", "email")]["met"] == 1 and rows[("tier2", "email")]["resolved"] == 1
    assert set(rows) == {("core", "email"), ("core", "sms"), ("tier2", "email")}
    assert doc["total"]["responded"] == 4 and doc["total"]["met"] == 2 and doc["total"]["breached"] == 1
    assert doc["total"]["resolved"] == 2 and doc["total"]["first_contact"] == 2
    assert doc["to"] == day(rt) and doc["from"] == day(rt, -6)
    # the same in Redis, as docs/redis.md lays it out
    assert rt.redis.hget(f"omni:report:{day(rt)}", "core|email|breached") == "1"
    assert 0 < rt.redis.ttl(f"omni:report:{day(rt)}") <= 400 * 86400

    # the table: a row per team and channel, then the totals
    table = rt.ctl("report").stdout
    assert table.startswith(f"SLA report {day(rt, -6)} .. {day(rt)} (UTC days)\n"), table
    core_line = next(line for line in table.splitlines() if line.startswith("core ") and " email " in line)
    assert core_line.split() == ["core", "email", "2", "1", "1", "50.0%", core_line.split()[6], "1", "1", "100.0%",
                                 "-", "-", "-"]
    assert any(line.startswith("(all)") for line in table.splitlines())

    # a day counts what happened on it: tomorrow's first response is tomorrow's
    advance(rt, "1d")
    dan = send(rt, "r5", "dan@example.com", "question")
    advance(rt, "5m")
    rt.ctl("conversation", "respond", dan)
    _, today = report(rt, day(rt))
    assert today[("core", "email")]["responded"] == 1 and today[("core", "email")]["met"] == 1
    _, yesterday = report(rt, day(rt, -1), day(rt, -1))
    assert yesterday[("core", "email")]["responded"] == 2
    _, both = report(rt, "--days", "2")
    assert both[("core", "email")]["responded"] == 3


def test_report_arguments_are_checked(rt):
    for args, want in ((["2026-02-30"], '"2026-02-30" is not a day'), (["2026-12-03", "2026-12-01"], "is not 1..400"),
                       (["--days", "0"], "report [--json]"), (["--days", "401"], "report [--json]"),
                       (["--bogus"], "report [--json]"), (["--days"], "report [--json]"),
                       (["--days", "7", "2026-12-01"], "report [--json]"), (["2026-12-01", "--days", "7"], "report [--json]"),
                       (["2026-12-01", "2026-12-02", "2026-12-03"], "report [--json]"),
                       ([" 2026-12-1"], '" 2026-12-1" is not a day'), (["+026-12-01"], '"+026-12-01" is not a day'),
                       (["2026-1-001"], '"2026-1-001" is not a day'), ([day(rt, -400)], "is not 1..400")):
        out = rt.ctl("report", *args, check=False)
        assert out.returncode == 2 and want in out.stderr, (args, out.stderr)
    # nothing happened: an empty report, the totals zero
    doc, rows = report(rt)
    assert rows == {} and doc["total"]["responded"] == 0
    # 400 days, today's the last of them, is the most there is
    doc, rows = report(rt, day(rt, -399))
    assert doc["from"] == day(rt, -399) and doc["to"] == day(rt) and rows == {}
    assert report(rt, "--days", "400")[0]["from"] == day(rt, -399)
    # any real day is one, before 1970 too (nothing is there)
    doc, rows = report(rt, "1969-12-31", "1970-01-01")
    assert (doc["from"], doc["to"], rows) == ("1969-12-31", "1970-01-01", {})


# --- the scripts themselves, on a hand-set clock (test_assign_lua.py's helpers): exact instants and UTC midnights

from lua_contract import key  # noqa: E402
from test_assign_lua import NOW, Lua, target  # noqa: E402
from test_timers_lua import due as due_scan, plan_for  # noqa: E402

MIDNIGHT = 1_800_057_600_000  # 2027-01-16T00:00:00Z, the day after NOW's (2027-01-15T08:00Z)


@pytest.fixture
def lua(redis_server):
    return Lua(redis_server.client())


def counts(lua, day):
    return {f: int(v) for f, v in lua.r.hgetall(key("report", day)).items()}


def test_waiting_work_is_reported_under_the_team_whose_queue_it_waits_in(lua):
    """A response to queued work, a breach of it and its resolution all count under the team whose queue it waits
    in, whichever comes first: not under "-" for the response and the team for the breach."""
    answered, late, closed = lua.conversation(), lua.conversation(), lua.conversation()
    for c in (answered, late, closed):
        plan_for(lua, c, "new", [target(agents=("a",), cap=0)], NOW, due=NOW + 1000)
        assert lua.r.hget(key("conversation", c), "queued_on") == "core"
    assert lua.call("respond", "operator:t", answered, "t", NOW + 10)[0] == "met"
    assert lua.call("respond", "operator:t", late, "t", NOW + 2000)[0] == "breached"  # no tick saw it first
    assert lua.call("resolve", "operator:t", closed, "t", NOW + 3000)[0] == "resolved"
    assert counts(lua, "2027-01-15") == {"core|email|responded": 2, "core|email|response_ms": 2010,
                                         "core|email|met": 1, "core|email|breached": 1, "core|email|resolved": 1}


def test_a_breach_the_tick_saw_is_not_met_by_a_response_at_the_same_instant(lua):
    """due.lua counts the breach at the due time itself; a response recorded at that same instant is the late
    response to an SLA already counted breached, not also a met one."""
    c = lua.conversation()
    plan_for(lua, c, "new", [target(agents=("a",))], NOW, due=NOW + 1000)
    assert lua.r.hget(key("conversation", c), "team") == "core"
    due_scan(lua, NOW + 1000)
    assert lua.r.hget(key("conversation", c), "breached") == "1"
    assert lua.call("respond", "operator:t", c, "t", NOW + 1000)[0] == "breached"
    assert counts(lua, "2027-01-15") == {"core|email|breached": 1, "core|email|responded": 1,
                                         "core|email|response_ms": 1000}
    assert lua.r.hget(key("stats"), "sla_met") is None and lua.r.hget(key("stats"), "sla_breached") == "1"


def test_a_breach_counts_on_the_day_the_tick_saw_it_and_the_response_on_its_own(lua):
    seen, unseen = lua.conversation(), lua.conversation()
    plan_for(lua, seen, "new", [target(agents=("a", "b"))], NOW, due=MIDNIGHT - 1)
    due_scan(lua, MIDNIGHT - 1)   # 23:59:59.999: seen's breach is the 15th's
    plan_for(lua, unseen, "new", [target(agents=("a", "b"))], NOW, due=MIDNIGHT - 1)  # after that tick
    lua.call("respond", "operator:t", seen, "t", MIDNIGHT)
    lua.call("respond", "operator:t", unseen, "t", MIDNIGHT)   # late, and no tick saw it: the 16th's
    assert counts(lua, "2027-01-15") == {"core|email|breached": 1}
    assert counts(lua, "2027-01-16") == {"core|email|responded": 2, "core|email|response_ms": 2 * (MIDNIGHT - NOW),
                                         "core|email|breached": 1}
    assert 0 < lua.r.ttl(key("report", "2027-01-16")) <= 400 * 86400


# --- surveys (docs/routing.md "Surveys"): CSAT, CES and NPS of resolved conversations, in the same report

def test_a_survey_is_recorded_once_per_score_and_reported_under_the_team_that_resolved(rt):
    ann = send(rt, "s1", "ann@example.com", "where is my order?")
    tech = send(rt, "s2", "tom@example.com", "the app shows a crash")   # tier2's
    sms = send(rt, "s3", "+14155550100", "hello?", channel="sms")
    for c in (ann, tech, sms):
        rt.ctl("conversation", "resolve", c)
    assert rt.redis.hget(f"omni:conversation:{ann}", "resolved_team") == "core"

    out = rt.ctl("conversation", "survey", ann, "--csat", "5", "--nps", "9", "--by", "surveybot")
    assert out.stdout == f"conversation {ann}: survey recorded\n", out.stdout
    # sent again (a survey tool retrying): nothing counted twice
    out = rt.ctl("conversation", "survey", ann, "--nps", "9", "--csat", "5")
    assert out.stdout == f"conversation {ann}: survey recorded already (the same scores)\n", out.stdout
    # another score for one recorded: refused, and nothing of the call recorded (not even the new ces)
    out = rt.ctl("conversation", "survey", ann, "--csat", "2", "--ces", "3", check=False)
    assert out.returncode == 1 and f"conversation {ann}: surveyed already with csat 5" in out.stderr, out.stderr
    assert rt.redis.hget(f"omni:conversation:{ann}", "ces") is None
    rt.ctl("conversation", "survey", ann, "--ces", "3")                # a measure not given before: recorded
    rt.ctl("conversation", "survey", tech, "--csat", "3", "--ces", "6", "--nps", "4")
    rt.ctl("conversation", "survey", sms, "--nps", "7")                # a passive: neither promoter nor detractor

    _, rows = report(rt)
    assert {k: rows[("core", "email")][k] for k in SURVEY_COUNTERS} == {
        "csat": 1, "csat_sum": 5, "csat_satisfied": 1, "ces": 1, "ces_sum": 3, "nps": 1, "nps_promoters": 1,
        "nps_detractors": 0}
    assert {k: rows[("tier2", "email")][k] for k in SURVEY_COUNTERS} == {
        "csat": 1, "csat_sum": 3, "csat_satisfied": 0, "ces": 1, "ces_sum": 6, "nps": 1, "nps_promoters": 0,
        "nps_detractors": 1}
    assert {k: rows[("core", "sms")][k] for k in SURVEY_COUNTERS} == {**NO_SURVEYS, "nps": 1}
    table = rt.ctl("report").stdout.splitlines()
    line = lambda team, channel: next(x.split() for x in table if x.split()[:2] == [team, channel])  # noqa: E731
    assert line("core", "email")[-3:] == ["100.0%", "3.0", "+100"], table
    assert line("tier2", "email")[-3:] == ["0.0%", "6.0", "-100"], table
    assert line("core", "sms")[-3:] == ["-", "-", "+0"], table
    assert line("(all)", "(all)")[-3:] == ["50.0%", "4.5", "+0"], table

    h = rt.redis.hgetall(f"omni:conversation:{ann}")
    assert (h["csat"], h["nps"], h["ces"]) == ("5", "9", "3") and int(h["surveyed_at"]) <= router_now(rt)
    assert f"  survey csat 5 ces 3 nps 9 (recorded " in rt.ctl("conversation", "show", ann).stdout
    assert rt.redis.hget("omni:stats", "surveys") == "4"  # the calls that recorded a score
    ev = [f for _, f in rt.redis.xrange("omni:events") if f["type"] == "surveyed" and f["conversation"] == ann]
    assert ev[0] == {"type": "surveyed", "conversation": ann, "by": "surveybot", "csat": "5", "nps": "9"}, ev


def test_a_survey_needs_a_resolved_conversation_and_scores_in_range(rt):
    open_one = send(rt, "s4", "ann@example.com", "still open")
    out = rt.ctl("conversation", "survey", open_one, "--csat", "4", check=False)
    assert out.returncode == 1 and "not resolved" in out.stderr, out.stderr
    out = rt.ctl("conversation", "survey", "987654", "--csat", "4", check=False)
    assert out.returncode == 1 and "no such conversation" in out.stderr, out.stderr
    for args, want in ((["--csat", "6"], '--csat is 1..5, not "6"'), (["--csat", "0"], '--csat is 1..5, not "0"'),
                       (["--ces", "8"], '--ces is 1..7, not "8"'), (["--nps", "11"], '--nps is 0..10, not "11"'),
                       (["--nps", "-1"], '--nps is 0..10, not "-1"'), (["--nps", "05"], '--nps is 0..10, not "05"'),
                       (["--csat", "4.0"], '--csat is 1..5, not "4.0"'), (["--csat", ""], '--csat is 1..5, not ""'),
                       (["--stars", "4"], "--stars is not an option"), ([], "at least one score"),
                       (["--by", "x"], "at least one score"), (["--csat"], "at least one score")):
        out = rt.ctl("conversation", "survey", open_one, *args, check=False)
        assert out.returncode == 2 and want in out.stderr, (args, out.stderr)
    # the bounds themselves are scores
    rt.ctl("conversation", "resolve", open_one)
    rt.ctl("conversation", "survey", open_one, "--csat", "1", "--ces", "7", "--nps", "0")
    assert rt.redis.hmget(f"omni:conversation:{open_one}", "csat", "ces", "nps") == ["1", "7", "0"]
    assert rt.redis.hget(f"omni:report:{day(rt)}", "core|email|nps_detractors") == "1"


def test_a_survey_of_work_resolved_while_waiting_counts_under_the_queue_team(lua):
    """Waiting work has no team: what resolved it is the team whose queue it waited in, as for the report's
    resolutions; a survey without a team to count under (never routed) counts under "-"."""
    queued = lua.conversation()
    plan_for(lua, queued, "new", [target(agents=("a",), cap=0)], NOW, due=NOW + 1000)
    assert lua.call("resolve", "operator:t", queued, "t", NOW + 10)[0] == "resolved"
    assert lua.r.hget(key("conversation", queued), "resolved_team") == "core"
    assert lua.call("survey", queued, "bot", NOW + 20, "4", "", "") == ["recorded", ""]
    nobody = lua.conversation()
    assert lua.call("resolve", "operator:t", nobody, "t", NOW + 10)[0] == "resolved"
    assert lua.call("survey", nobody, "bot", MIDNIGHT, "", "2", "10") == ["recorded", ""]
    assert {k: v for k, v in counts(lua, "2027-01-15").items() if "|c" in k or "|n" in k} == {
        "core|email|csat": 1, "core|email|csat_sum": 4, "core|email|csat_satisfied": 1}
    assert counts(lua, "2027-01-16") == {"-|email|ces": 1, "-|email|ces_sum": 2, "-|email|nps": 1,
                                         "-|email|nps_promoters": 1}
    # the script is a boundary of its own: its arguments are checked whoever calls it
    for args, want in ((("", "", ""), "no score given"), (("6", "", ""), 'csat is 1..5, not "6"'),
                       (("", "x", ""), 'ces is 1..7, not "x"'), (("", "", "100"), 'nps is 0..10, not "100"')):
        with pytest.raises(Exception, match=want):
            lua.call("survey", queued, "bot", NOW, *args)


def test_an_agents_running_totals_count_its_own_work(lua):
    """docs/redis.md omni:agent:<id> report:<counter>: what respond, resolve, a breach and a survey count for the
    agent holding the conversation then (its /metrics totals); waiting work, with no agent, counts for none."""
    late, answered = lua.conversation(), lua.conversation()
    for c in (late, answered):
        plan_for(lua, c, "new", [target(agents=("a", "b"))], NOW, due=NOW + 1000)
    owner = {c: lua.r.hget(key("conversation", c), "owner") for c in (late, answered)}
    assert all(o.startswith("agent:") for o in owner.values()) and owner[late] != owner[answered], owner
    assert lua.call("respond", "operator:t", answered, "t", NOW + 10)[0] == "met"
    due_scan(lua, NOW + 1000)                                      # late's breach, seen by the tick
    assert lua.call("resolve", "operator:t", answered, "t", NOW + 2000)[0] == "resolved"
    assert lua.call("survey", answered, "bot", NOW + 3000, "5", "", "9") == ["recorded", ""]
    totals = lambda o: {f: int(v) for f, v in lua.r.hgetall(key("agent", o[6:])).items()  # noqa: E731
                        if f.startswith("report:")}
    assert totals(owner[late]) == {"report:breached": 1}
    assert totals(owner[answered]) == {"report:responded": 1, "report:response_ms": 10, "report:met": 1,
                                       "report:resolved": 1, "report:first_contact": 1, "report:csat": 1,
                                       "report:csat_sum": 5, "report:csat_satisfied": 1, "report:nps": 1,
                                       "report:nps_promoters": 1}
    queued = lua.conversation()
    plan_for(lua, queued, "new", [target(agents=("a",), cap=0)], NOW, due=NOW + 1000)
    lua.call("resolve", "operator:t", queued, "t", NOW + 10)
    assert lua.r.hget(key("conversation", queued), "resolved_owner") is None
