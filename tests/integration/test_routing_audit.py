"""Routing audit: combinations of documented behaviours (docs/routing.md, docs/delivery.md) driven from outside, a
real router on a real Redis with the test clock (`omnictl clock advance`)."""
import datetime

import pytest

from harness import clock_advance, clocked_router, router_now, seen_by_a_tick, send_one as send, wait_for
from lua_contract import Scripts, key


def field(r, conv, name):
    return r.redis.hget(key("conversation", conv), name)


def settled(r, conv):
    return wait_for(lambda: (lambda h: h if h.get("status") in ("assigned", "queued", "offered") else None)(
        r.redis.hgetall(key("conversation", conv))), 10, f"conversation {conv} routed")


def closed_today(r_days=3):
    """A calendar closed on the wall clock's next days (holidays), whatever the hour."""
    today = datetime.datetime.now(datetime.timezone.utc).date()
    return [str(today + datetime.timedelta(days=d)) for d in range(-1, r_days)]


STRATEGIES = """
teams:
  - {name: rr, strategy: round-robin, offers: {auto_accept: true}}
  - {name: idle, strategy: longest-idle, offers: {auto_accept: true}}
  - {name: ll, strategy: least-loaded, offers: {auto_accept: true}}
agents:
  - {id: r1, teams: [rr], capacity: {email: 5}}
  - {id: r2, teams: [rr], capacity: {email: 5}}
  - {id: r3, teams: [rr], capacity: {email: 5}}
  - {id: i1, teams: [idle], capacity: {sms: 5}}
  - {id: i2, teams: [idle], capacity: {sms: 5}}
  - {id: x, teams: [ll], capacity: {twitter: 2, email: 0}}
  - {id: y, teams: [ll], capacity: {twitter: 4}}
routing:
  rules:
    - {name: s, when: {channel: [sms]}, targets: [{team: idle}]}
    - {name: t, when: {channel: [twitter]}, targets: [{team: ll}]}
    - {name: all, targets: [{team: rr}]}
ownership:
  prefer_previous_owner: false
"""


def test_each_strategy_picks_as_documented(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, STRATEGIES) as r:
        owners = [settled(r, send(r, f"rr{i}", f"c{i}@example.com", "hi"))["owner"] for i in range(5)]
        assert owners == ["agent:r1", "agent:r2", "agent:r3", "agent:r1", "agent:r2"], owners
        got = []
        for i in range(4):
            got.append(settled(r, send(r, f"li{i}", f"+1415555{i:04d}", "hi", channel="sms"))["owner"])
            r.ctl("clock", "advance", "1m")
        assert got == ["agent:i1", "agent:i2", "agent:i1", "agent:i2"], got
        # least-loaded: load x 1000 / capacity for the channel: x (cap 2) 0, y 0 -> x; x 500, y 0 -> y;
        # x 500, y 250 -> y; x 500, y 500 -> x (roster)
        got = [settled(r, send(r, f"ll{i}", f"{1000 + i}", "hi", channel="twitter"))["owner"] for i in range(4)]
        assert got == ["agent:x", "agent:y", "agent:y", "agent:x"], got


QUOTA = """
teams:
  - {name: core, offers: {auto_accept: true}}
  - name: bpo
    kind: outsourced
    contract: {categories: [basic], max_concurrent: 1, daily_quota: 2}
agents:
  - {id: ann, teams: [core], capacity: {email: 1}}
classification:
  rules:
    - {name: tech, when: {text: ['crash']}, category: tech}
  default_category: basic
routing:
  rules:
    - {name: all, targets: [{team: bpo}], queue: bpo}
"""


def test_a_partners_quota_used_up_mid_drain_keeps_the_rest_waiting_until_its_next_day(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, QUOTA) as r:
        convs = [send(r, f"q{i}", f"q{i}@example.com", "hello") for i in range(3)]
        hs = [settled(r, c) for c in convs]
        assert [h["status"] for h in hs] == ["assigned", "queued", "queued"], hs
        r.ctl("conversation", "resolve", convs[0])
        wait_for(lambda: field(r, convs[1], "status") == "assigned", 10, "drained")
        r.ctl("conversation", "resolve", convs[1])
        seen_by_a_tick(r)
        seen_by_a_tick(r)
        assert field(r, convs[2], "status") == "queued"
        out = r.ctl("explain", "q2").stdout
        assert "contract: holds 1 of the 1 it may hold at once (max_concurrent)" in out, out
        now = router_now(r)
        midnight = (now // 86400000 + 1) * 86400000
        r.ctl("clock", "advance", f"{(midnight - now) // 1000 + 2}s")
        wait_for(lambda: field(r, convs[2], "status") == "assigned", 10, "new day's quota")


def closed_policy():
    return f"""
calendars:
  - {{name: shut, timezone: UTC, hours: ["mon-sun 00:00-24:00"], holidays: {closed_today()}}}
teams:
  - {{name: core, offers: {{auto_accept: true}}}}
  - {{name: tier2, offers: {{auto_accept: true}}}}
  - {{name: night, calendar: shut, offers: {{auto_accept: true}}}}
agents:
  - {{id: ann, teams: [core], capacity: {{email: 1}}}}
  - {{id: tina, teams: [tier2], capacity: {{email: 1}}}}
  - {{id: nina, teams: [night], capacity: {{email: 1}}}}
routing:
  rules:
    - {{name: all, targets: [{{team: core}}, {{team: tier2}}, {{team: night}}], queue: core}}
sla:
  targets:
    - {{first_response: 1h}}
  escalate_at: 50
"""


def test_escalated_work_transferred_to_a_closed_team_reaches_its_available_agent(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, closed_policy()) as r:
        s = Scripts(r.redis)
        conv = send(r, "e1", "eve@example.com", "hello")
        assert settled(r, conv)["owner"] == "agent:ann"
        r.ctl("clock", "advance", "31m")
        wait_for(lambda: field(r, conv, "owner") == "agent:tina", 10, "escalated to tier2")
        prio = field(r, conv, "prio")
        assert s.call("transfer", "operator:olga", conv, "night", router_now(r)) == "transferred"
        wait_for(lambda: field(r, conv, "owner") == "agent:nina", 10, "transferred to the closed team")
        assert field(r, conv, "prio") == prio and field(r, conv, "escalated") == "1"
        assert field(r, conv, "transferred_to") == "night"
        out = r.ctl("explain", "e1").stdout
        assert "rule all (not tried: a transfer is planned for team night only)" in out, out
        assert "team night, which it was transferred to: eligible" in out, out
        # nina rejects it: the work stays night's, waits in night's queue (not core's), more urgent at the breach
        assert s.call("reject", "agent:nina", conv, "no", router_now(r)) == "rejected"
        wait_for(lambda: field(r, conv, "status") == "queued", 10, "queued")
        assert field(r, conv, "queued_on") == "night", r.redis.hgetall(key("conversation", conv))
        r.ctl("clock", "advance", "30m")
        wait_for(lambda: r.redis.hget("omni:stats", "sla_breached") == "1", 10, "breach")
        seen_by_a_tick(r)
        assert field(r, conv, "queued_on") == "night"
        assert field(r, conv, "prio") == "1"


OFFERS = """
teams:
  - {name: core, offers: {accept_timeout: 1m}}
agents:
  - {id: alice, teams: [core], capacity: {email: 1}}
  - {id: bob, teams: [core], capacity: {email: 1}}
routing:
  rules:
    - {name: all, targets: [{team: core}]}
ownership:
  offline_grace: 15m
  prefer_previous_owner: false
"""


def test_a_declined_agent_is_never_offered_the_work_again_by_a_drain(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, OFFERS) as r:
        s = Scripts(r.redis)
        a = send(r, "d1", "ann@example.com", "hello")
        wait_for(lambda: field(r, a, "owner") == "agent:alice", 10, "offered to alice")
        b = send(r, "d2", "bea@example.com", "hello")
        wait_for(lambda: field(r, b, "owner") == "agent:bob", 10, "offered to bob")
        assert s.call("accept", "agent:bob", b, router_now(r)) == "accepted"
        assert s.call("reject", "agent:alice", a, "no", router_now(r)) == "rejected"
        wait_for(lambda: field(r, a, "status") == "queued", 10, "queued: bob is full, alice declined")
        r.ctl("conversation", "resolve", b)  # bob free: the drain offers it to him, never to alice
        wait_for(lambda: field(r, a, "owner") == "agent:bob", 10, "drained to bob")
        assert s.call("reject", "agent:bob", a, "no", router_now(r)) == "rejected"
        seen_by_a_tick(r)
        seen_by_a_tick(r)
        assert field(r, a, "status") == "queued" and field(r, a, "owner") is None
        assert r.redis.hget(key("agent", "alice"), "load") == "0"


def test_an_offer_whose_agent_goes_offline_moves_at_once_and_expiry_does_not_move_it_twice(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, OFFERS) as r:
        s = Scripts(r.redis)
        a = send(r, "g1", "ann@example.com", "hello")
        wait_for(lambda: field(r, a, "owner") == "agent:alice", 10, "offered to alice")
        r.ctl("clock", "advance", "59s")
        r.ctl("agent", "presence", "alice", "offline")
        wait_for(lambda: field(r, a, "owner") == "agent:bob", 10, "revoked at once: offered to bob")
        r.ctl("clock", "advance", "2s")  # alice's old offer time passes: bob's offer stands
        seen_by_a_tick(r)
        assert field(r, a, "owner") == "agent:bob" and field(r, a, "status") == "offered"
        assert s.call("accept", "agent:bob", a, router_now(r)) == "accepted"
        out = r.ctl("explain", "g1").stdout
        assert ": offer revoked" in out and "the offer was revoked" in out, out
        assert r.redis.hget(key("agent", "alice"), "load") == "0"


AGING = """
teams:
  - {name: core, offers: {auto_accept: true}}
agents:
  - {id: ann, teams: [core], capacity: {email: 1}}
classification:
  rules:
    - {name: low, when: {text: ['whenever']}, priority: low}
routing:
  rules:
    - {name: all, targets: [{team: core}]}
sla:
  targets:
    - {first_response: 24h}
  escalate_at: 100
queues:
  aging_every: 10m
ownership:
  prefer_previous_owner: false
"""


def test_aging_serves_old_low_priority_work_before_newer_normal_work(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, AGING) as r:
        busy = send(r, "a0", "zed@example.com", "hello")
        assert settled(r, busy)["owner"] == "agent:ann"
        low = send(r, "a1", "lou@example.com", "whenever you can")
        assert settled(r, low)["status"] == "queued"
        clock_advance(r, "15m")
        normal = send(r, "a2", "nora@example.com", "hello")
        assert settled(r, normal)["status"] == "queued"
        r.ctl("conversation", "resolve", busy)
        wait_for(lambda: field(r, low, "status") == "assigned" or field(r, normal, "status") == "assigned", 10,
                 "drain")
        assert field(r, low, "status") == "assigned", "low aged one level (priority 3 = normal), due earlier"


PARTNER_STAFF = """
teams:
  - {name: core, offers: {auto_accept: true}}
  - name: bpo
    kind: outsourced
    offers: {accept_timeout: 1m}
    contract: {categories: [basic], max_concurrent: 1, daily_quota: 1}
agents:
  - {id: p1, teams: [bpo], capacity: {email: 2}}
  - {id: p2, teams: [bpo], capacity: {email: 2}}
  - {id: ann, teams: [core], capacity: {email: 2}}
classification:
  default_category: basic
routing:
  rules:
    - {name: all, targets: [{team: bpo, timeout: 10m}, {team: core}], queue: core}
ownership:
  prefer_previous_owner: false
"""


def test_work_moving_inside_a_capped_partner_is_not_a_second_conversation(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, PARTNER_STAFF) as r:
        s = Scripts(r.redis)
        a = send(r, "m1", "ann@example.com", "hello")
        wait_for(lambda: field(r, a, "owner") == "agent:p1", 10, "offered to p1")
        r.ctl("clock", "advance", "61s")  # p1 lets it expire: p2, same team, cap 1 and quota 1 already this one's
        wait_for(lambda: field(r, a, "owner") == "agent:p2", 10, "offered to p2")
        assert s.call("accept", "agent:p2", a, router_now(r)) == "accepted"
        b = send(r, "m2", "bea@example.com", "hello")
        assert settled(r, b)["owner"] == "agent:ann"  # the partner holds 1 of 1
        day = datetime.datetime.fromtimestamp(router_now(r) / 1000, datetime.timezone.utc)
        assert r.redis.get(f"omni:team:bpo:quota:{day:%Y-%m-%d}") == "1"


ZONED_QUOTA = """
calendars:
  - {name: kiri, timezone: Pacific/Kiritimati, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: core, offers: {auto_accept: true}}
  - name: bpo
    kind: outsourced
    calendar: kiri
    contract: {categories: [basic], daily_quota: 1}
agents:
  - {id: ann, teams: [core], capacity: {email: 9}}
classification:
  default_category: basic
routing:
  rules:
    - {name: all, targets: [{team: bpo}, {team: core}], queue: core}
"""


def test_a_partners_quota_day_is_its_calendars_local_day(tmp_path, redis_server):
    """Kiritimati is UTC+14: its day starts at 10:00 UTC, and the quota comes back then, not at UTC midnight."""
    with clocked_router(tmp_path, redis_server, ZONED_QUOTA) as r:
        now = router_now(r)
        ten = (now - 36000000) // 86400000 * 86400000 + 86400000 + 36000000  # the next 10:00 UTC
        clock_advance(r, f"{(ten - now) // 1000 - 60}s")  # a minute before Kiritimati's midnight
        a = send(r, "k1", "a@example.com", "hello")
        assert settled(r, a)["owner"] == "team:bpo"
        b = send(r, "k2", "b@example.com", "hello")
        assert settled(r, b)["owner"] == "agent:ann"  # the quota of that local day is used
        clock_advance(r, "2m")  # past Kiritimati's midnight, hours before UTC's
        c = send(r, "k3", "c@example.com", "hello")
        assert settled(r, c)["owner"] == "team:bpo"
        local = datetime.datetime.fromtimestamp(router_now(r) / 1000, datetime.timezone(datetime.timedelta(hours=14)))
        assert r.redis.get(f"omni:team:bpo:quota:{local:%Y-%m-%d}") == "1"


ROUND_ROBIN = """
teams:
  - {name: rr, strategy: round-robin, offers: {auto_accept: true}}
agents:
  - {id: r1, teams: [rr], capacity: {email: 1}}
  - {id: r2, teams: [rr], capacity: {email: 1}}
  - {id: r3, teams: [rr], capacity: {email: 1}}
routing:
  rules:
    - {name: all, targets: [{team: rr}]}
ownership:
  prefer_previous_owner: false
"""


def test_round_robin_skips_who_cannot_take_it_and_goes_on_after_the_last_chosen(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, ROUND_ROBIN) as r:
        a = send(r, "rr1", "a@example.com", "hi")
        assert settled(r, a)["owner"] == "agent:r1"
        r.ctl("agent", "presence", "r2", "away")
        b = send(r, "rr2", "b@example.com", "hi")
        assert settled(r, b)["owner"] == "agent:r3"  # r2 skipped
        r.ctl("agent", "presence", "r2", "available")
        r.ctl("conversation", "resolve", a)
        c = send(r, "rr3", "c@example.com", "hi")
        assert settled(r, c)["owner"] == "agent:r1"  # after r3 comes r1 (free again), not r2
        d = send(r, "rr4", "d@example.com", "hi")
        assert settled(r, d)["owner"] == "agent:r2"


TRANSFER_GRACE = """
teams:
  - {name: core, offers: {auto_accept: true}}
  - {name: tier2, offers: {auto_accept: true}}
agents:
  - {id: ann, teams: [core], capacity: {email: 2}}
  - {id: bob, teams: [core], capacity: {email: 2}}
  - {id: tina, teams: [tier2], capacity: {email: 1}}
  - {id: tom, teams: [tier2], capacity: {email: 1}}
routing:
  rules:
    - {name: all, targets: [{team: core}]}
ownership:
  offline_grace: 5m
  prefer_previous_owner: false
"""


def test_transferred_work_whose_owner_stays_offline_stays_in_that_team(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, TRANSFER_GRACE) as r:
        s = Scripts(r.redis)
        a = send(r, "tg1", "a@example.com", "hi")
        assert settled(r, a)["owner"] == "agent:ann"
        assert s.call("transfer", "agent:ann", a, "tier2", router_now(r)) == "transferred"
        wait_for(lambda: field(r, a, "owner") == "agent:tina", 10, "transferred to tina")
        r.ctl("agent", "presence", "tina", "offline")
        clock_advance(r, "6m")
        wait_for(lambda: field(r, a, "owner") == "agent:tom", 10, "to tier2's other agent, not core")
        out = r.ctl("explain", "tg1").stdout
        assert "moved from agent:tina (team tier2, which it was transferred to): its owner went offline" in out, out
        assert "rule all (not tried: work transferred to team tier2 is planned for that team only)" in out, out
        r.ctl("agent", "presence", "tom", "offline")
        clock_advance(r, "6m")
        wait_for(lambda: field(r, a, "status") == "queued", 10, "waits in tier2's queue")
        assert field(r, a, "queued_on") == "tier2"
        r.ctl("agent", "presence", "tina", "available")
        wait_for(lambda: field(r, a, "owner") == "agent:tina", 10, "back to tina through the queue")


BACK_TO_PARTNER = """
teams:
  - {name: core, offers: {auto_accept: true}}
  - name: bpo
    kind: outsourced
    contract: {categories: [basic], max_concurrent: 1, daily_quota: 1}
agents:
  - {id: ann, teams: [core], capacity: {email: 2}}
classification:
  default_category: basic
routing:
  rules:
    - {name: all, targets: [{team: bpo, timeout: 10m}, {team: core, timeout: 10m}], queue: bpo}
"""


def test_work_back_at_its_partner_the_same_day_counts_once_against_quota_and_cap(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, BACK_TO_PARTNER) as r:
        now = router_now(r)
        if (now % 86400000) > 86400000 - 3600000:  # keep the test inside one UTC day
            clock_advance(r, f"{(86400000 - now % 86400000) // 1000 + 5}s")
        a = send(r, "bp1", "a@example.com", "hello")
        assert settled(r, a)["owner"] == "team:bpo"
        clock_advance(r, "11m")
        wait_for(lambda: field(r, a, "owner") == "agent:ann", 10, "timed out to core")
        clock_advance(r, "11m")
        wait_for(lambda: field(r, a, "owner") == "team:bpo", 10, "past the last target: back to the queue team bpo")
        day = datetime.datetime.fromtimestamp(router_now(r) / 1000, datetime.timezone.utc)
        assert r.redis.get(f"omni:team:bpo:quota:{day:%Y-%m-%d}") == "1"


OVERFLOW = """
teams:
  - {name: core, offers: {auto_accept: true}}
  - {name: tier2, offers: {auto_accept: true}}
agents:
  - {id: ann, teams: [core], capacity: {email: 1}}
  - {id: tina, teams: [tier2], capacity: {email: 1}}
routing:
  rules:
    - {name: all, targets: [{team: core, queue_below: 1}, {team: tier2}], queue: core}
ownership:
  prefer_previous_owner: false
"""


def test_queue_below_overflows_new_work_but_never_stops_the_drain(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, OVERFLOW) as r:
        a = send(r, "ov1", "a@example.com", "hi")
        assert settled(r, a)["owner"] == "agent:ann"
        b = send(r, "ov2", "b@example.com", "hi")
        assert settled(r, b)["owner"] == "agent:tina"
        c = send(r, "ov3", "c@example.com", "hi")
        assert settled(r, c)["queued_on"] == "core"
        d = send(r, "ov4", "d@example.com", "hi")  # core's queue holds 1: queue_below 1 passes it over
        assert settled(r, d)["status"] == "queued"
        out = r.ctl("explain", "ov4").stdout
        assert "queue holds 1, at or over queue_below 1: new work overflows past it" in out, out
        r.ctl("conversation", "resolve", a)
        wait_for(lambda: field(r, c, "owner") == "agent:ann", 10, "the drain serves core's queue")


LANGS = """
teams:
  - {name: core, languages: [pt], offers: {auto_accept: true}}
  - {name: br, languages: [pt-BR], offers: {auto_accept: true}}
agents:
  - {id: ana, teams: [core], languages: [pt-br], capacity: {email: 5}}
  - {id: rui, teams: [core], languages: [PT], capacity: {email: 5}}
  - {id: bia, teams: [br], capacity: {email: 5}}
routing:
  rules:
    - {name: br, when: {language: [pt-br]}, targets: [{team: br}]}
    - {name: all, targets: [{team: core}, {team: br}]}
ownership:
  prefer_previous_owner: false
"""


def test_language_tags_cover_as_documented(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, LANGS) as r:
        a = send(r, "lg1", "a@example.com", "oi", lang="PT-br")
        assert settled(r, a)["owner"] == "agent:bia"  # rule br: pt-br holds for PT-br, case aside
        b = send(r, "lg2", "b@example.com", "oi", lang="pt")
        assert settled(r, b)["owner"] == "agent:rui"  # ana's pt-br does not cover pt
        out = r.ctl("explain", "lg2").stdout
        assert "agent ana: does not speak pt" in out, out
        c = send(r, "lg3", "c@example.com", "oi", lang="pt-PT")
        assert settled(r, c)["owner"] == "agent:rui"
        out = r.ctl("explain", "lg3").stdout
        assert "agent ana: does not speak pt-PT" in out, out


def business_policy():
    return f"""
calendars:
  - {{name: office, timezone: UTC, hours: ["mon-sun 00:00-24:00"], holidays: {closed_today(2)}}}
teams:
  - {{name: core, offers: {{auto_accept: true}}}}
  - {{name: office, calendar: office, offers: {{auto_accept: true}}}}
agents:
  - {{id: ann, teams: [core], capacity: {{email: 1}}}}
  - {{id: olly, teams: [office], capacity: {{email: 1}}}}
routing:
  rules:
    - {{name: all, targets: [{{team: core}}], queue: office}}
sla:
  targets:
    - {{first_response: 1h, business_hours: true}}
  escalate_at: 50
"""


def test_business_hours_count_in_the_rule_queue_teams_calendar_when_none_is_named(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, business_policy()) as r:
        a = send(r, "bh1", "a@example.com", "hi")
        h = settled(r, a)
        opens = (datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=2))
        opens_ms = int(datetime.datetime(opens.year, opens.month, opens.day,
                                         tzinfo=datetime.timezone.utc).timestamp() * 1000)
        assert int(h["due"]) == opens_ms + 3600000, (h, opens_ms)
        assert int(h["escalate_at"]) == opens_ms + 1800000, (h, opens_ms)


PAST_LAST = """
teams:
  - {name: core, offers: {auto_accept: true}}
  - {name: tier2, offers: {auto_accept: true}}
agents:
  - {id: ann, teams: [core], capacity: {email: 1}}
  - {id: bob, teams: [core], capacity: {email: 1}}
  - {id: tina, teams: [tier2], capacity: {email: 1}}
routing:
  rules:
    - {name: all, targets: [{team: core, timeout: 10m}, {team: tier2, timeout: 10m}], queue: core}
ownership:
  prefer_previous_owner: false
"""


def test_work_back_at_the_queue_team_past_the_last_target_never_goes_to_who_declined_it(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, PAST_LAST) as r:
        s = Scripts(r.redis)
        a = send(r, "pl1", "a@example.com", "hi")
        assert settled(r, a)["owner"] == "agent:ann"
        assert s.call("reject", "agent:ann", a, "not mine", router_now(r)) == "rejected"
        wait_for(lambda: field(r, a, "owner") == "agent:bob", 10, "to bob")
        clock_advance(r, "11m")
        wait_for(lambda: field(r, a, "owner") == "agent:tina", 10, "timed out to tina")
        r.ctl("agent", "presence", "bob", "away")
        clock_advance(r, "11m")
        wait_for(lambda: field(r, a, "status") == "queued", 10, "back to core's queue: ann declined it, bob away")
        assert r.redis.hget(key("agent", "ann"), "load") == "0"
        r.ctl("agent", "presence", "bob", "available")
        wait_for(lambda: field(r, a, "owner") == "agent:bob", 10, "bob back: the drain gives it to him")


CROSS = """
teams:
  - {name: ll, strategy: least-loaded, offers: {auto_accept: true}}
  - {name: t0, offers: {auto_accept: true}}
agents:
  - {id: x, teams: [ll], capacity: {email: 1, twitter: 2}}
  - {id: y, teams: [ll], capacity: {twitter: 4}}
  - {id: z, teams: [t0], capacity: {sms: 1}}
routing:
  rules:
    - {name: s, when: {channel: [sms]}, targets: [{team: t0}, {team: ll}]}
    - {name: all, targets: [{team: ll}]}
ownership:
  prefer_previous_owner: true
"""


def test_least_loaded_counts_every_channel_and_the_previous_owner_only_within_the_first_target(tmp_path,
                                                                                             redis_server):
    with clocked_router(tmp_path, redis_server, CROSS) as r:
        e = send(r, "cx0", "e@example.com", "hi")
        assert settled(r, e)["owner"] == "agent:x"
        # x: 1 load (email) x 1000 / 2 (twitter) = 500; y: 0 -> y; then y 250 -> y; then 500 each -> x (roster)
        got = [settled(r, send(r, f"cx{i + 1}", f"{500 + i}", "hi", channel="twitter"))["owner"] for i in range(3)]
        assert got == ["agent:y", "agent:y", "agent:x"], got
        # the customer of cx1 comes back after its resolution: y held it, so y gets the next one over x's score
        r.ctl("conversation", "resolve", r.redis.hget("omni:msg:cx1", "conversation"), "--by", "operator:olga")
        back = send(r, "cx9", "500", "again", channel="twitter")
        assert settled(r, back)["owner"] == "agent:y"


def test_a_transfer_back_to_a_team_never_gives_the_work_to_who_declined_it(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, PAST_LAST) as r:
        s = Scripts(r.redis)
        r.ctl("agent", "presence", "bob", "away")
        a = send(r, "tb1", "a@example.com", "hi")
        assert settled(r, a)["owner"] == "agent:ann"
        assert s.call("reject", "agent:ann", a, "not mine", router_now(r)) == "rejected"
        wait_for(lambda: field(r, a, "owner") == "agent:tina", 10, "to tier2")
        assert s.call("transfer", "operator:olga", a, "core", router_now(r)) == "transferred"
        wait_for(lambda: field(r, a, "status") == "queued", 10, "waits in core's queue")
        assert field(r, a, "queued_on") == "core" and r.redis.hget(key("agent", "ann"), "load") == "0"
        out = r.ctl("explain", "tb1").stdout
        assert "team core, which it was transferred to: eligible" in out, out
        # a queued conversation can be transferred again, by an operator
        assert s.call("transfer", "operator:olga", a, "tier2", router_now(r)) == "transferred"
        wait_for(lambda: field(r, a, "owner") == "agent:tina", 10, "transferred from the queue to tier2")
        assert not r.redis.zscore("omni:team:core:queue:3", a)


MANY = """
teams:
  - {name: core, offers: {auto_accept: true}}
agents:
""" + "".join(f"  - {{id: a{i:02d}, teams: [core], capacity: {{email: 1}}}}\n" for i in range(12)) + """
routing:
  rules:
    - {name: all, targets: [{team: core}]}
ownership:
  prefer_previous_owner: false
"""


def test_explain_lists_the_first_ten_agents_grouped_by_reason_in_roster_order(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, MANY) as r:
        for i in (0, 3):
            r.ctl("agent", "presence", f"a{i:02d}", "away")
        r.ctl("agent", "presence", "a02", "offline")
        busy = [settled(r, send(r, f"m{i}", f"m{i}@example.com", "hi")) for i in range(9)]
        assert all(h["status"] == "assigned" for h in busy)
        q = send(r, "mq", "q@example.com", "hi")
        assert settled(r, q)["status"] == "queued"
        out = r.ctl("explain", "mq").stdout
        lines = [line.strip() for line in out.splitlines() if line.strip().startswith("now:")]
        assert lines == ["now: agent a00: away", "now: agent a03: away", "now: agent a01: at capacity (1/1 email)",
                         *[f"now: agent a{i:02d}: at capacity (1/1 email)" for i in range(4, 10)],
                         "now: agent a02: offline", "now: no agent free now"], out


RELOAD_BEFORE = """
teams:
  - {name: core, offers: {auto_accept: true}}
  - {name: tier2, offers: {auto_accept: true}}
agents:
  - {id: ann, teams: [core], capacity: {email: 1}}
  - {id: tina, teams: [tier2], capacity: {email: 1}}
routing:
  rules:
    - {name: all, targets: [{team: core}, {team: tier2}], queue: core}
sla:
  targets:
    - {first_response: 1h}
  escalate_at: 50
ownership:
  prefer_previous_owner: false
"""


def test_a_record_rule_added_by_a_reload_never_turns_open_work_into_a_record(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, RELOAD_BEFORE) as r:
        a = send(r, "rl1", "a@example.com", "hi")
        assert settled(r, a)["owner"] == "agent:ann"
        b = send(r, "rl2", "b@example.com", "hi")
        assert settled(r, b)["owner"] == "agent:tina"
        c = send(r, "rl3", "c@example.com", "hi")
        assert settled(r, c)["status"] == "queued"
        with open(r.config) as f:
            text = f.read()
        text = text.replace("  rules:\n    - {name: all,",
                            "  rules:\n    - {name: rec, when: {channel: [email]}, record: true}\n    - {name: all,")
        with open(r.config, "w") as f:
            f.write(text)
        r.ctl("reload")
        r.wait_log(r"reload: .*applied", 10)
        clock_advance(r, "31m")  # escalations: assigned work moves on, queued work gets more urgent
        wait_for(lambda: field(r, a, "escalated") == "1" and field(r, c, "escalated") == "1", 10, "escalations")
        seen_by_a_tick(r)
        for conv in (a, b, c):
            assert field(r, conv, "status") in ("assigned", "queued"), r.redis.hgetall(key("conversation", conv))
        out = r.ctl("explain", "rl1").stdout
        assert "it records new conversations only, and this one is work already (escalation)" in out, out
        d = send(r, "rl4", "d@example.com", "hi")
        wait_for(lambda: field(r, d, "status") == "resolved", 10, "new work recorded")
        assert field(r, d, "resolved_by") == "policy:rec"


SHARED_AGENT = """
teams:
  - name: bpo
    kind: outsourced
    offers: {auto_accept: true}
    contract: {categories: [basic], max_concurrent: 1}
  - {name: core, offers: {auto_accept: true}}
agents:
  - {id: sam, teams: [bpo, core], capacity: {email: 2}}
classification:
  default_category: basic
routing:
  rules:
    - {name: all, targets: [{team: bpo}, {team: core}], queue: core}
sla:
  targets:
    - {first_response: 1h}
  escalate_at: 50
"""


def test_an_escalation_that_leaves_the_work_with_its_agent_under_another_team_frees_the_partners_cap(
        tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, SHARED_AGENT) as r:
        a = send(r, "sa1", "a@example.com", "hi")
        h = settled(r, a)
        assert (h["owner"], h["team"]) == ("agent:sam", "bpo")
        clock_advance(r, "31m")
        wait_for(lambda: field(r, a, "team") == "core", 10, "escalated: sam keeps it, under core")
        assert field(r, a, "owner") == "agent:sam"
        b = send(r, "sa2", "b@example.com", "hi")
        h = settled(r, b)
        assert (h.get("owner"), h.get("team")) == ("agent:sam", "bpo"), (h, r.ctl("explain", "sa2").stdout)


def test_an_owner_back_within_the_grace_and_offline_again_gets_a_new_grace(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, TRANSFER_GRACE) as r:
        a = send(r, "og1", "a@example.com", "hi")
        assert settled(r, a)["owner"] == "agent:ann"
        r.ctl("agent", "presence", "ann", "offline")
        clock_advance(r, "4m")
        r.ctl("agent", "presence", "ann", "available")
        clock_advance(r, "30s")
        r.ctl("agent", "presence", "ann", "offline")
        clock_advance(r, "2m")  # 6.5 minutes after she first went offline, 2 after the second time
        seen_by_a_tick(r)
        assert field(r, a, "owner") == "agent:ann"
        clock_advance(r, "210s")
        wait_for(lambda: field(r, a, "owner") == "agent:bob", 10, "past the second grace")


def test_a_reply_to_waiting_work_stops_its_sla_clock_and_it_keeps_waiting(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, RELOAD_BEFORE) as r:
        a = send(r, "sq1", "a@example.com", "hi")
        b = send(r, "sq2", "b@example.com", "hi")
        c = send(r, "sq3", "c@example.com", "hi")
        assert settled(r, c)["status"] == "queued"
        out = r.ctl("conversation", "respond", c).stdout
        assert "SLA met" in out, out
        clock_advance(r, "2h")
        seen_by_a_tick(r)
        h = r.redis.hgetall(key("conversation", c))
        assert h["status"] == "queued" and h["prio"] == "3" and "escalated" not in h and "breached" not in h, h
        assert r.redis.hget("omni:stats", "sla_breached") == "2"  # a and b, unanswered
        assert r.redis.hget("omni:stats", "sla_met") == "1"
        # a escalated to tier2 and b past its last target back to core: ann has b, tina a
        assert (field(r, a, "owner"), field(r, b, "owner")) == ("agent:tina", "agent:ann")
        r.ctl("conversation", "resolve", b)
        wait_for(lambda: field(r, c, "owner") == "agent:ann", 10, "drained")
        out = r.ctl("conversation", "respond", a).stdout
        assert "breached" in out, out
        assert r.redis.hget("omni:stats", "sla_met") == "1"


CLASSIFY = """
teams:
  - {name: core, offers: {auto_accept: true}}
agents:
  - {id: ann, teams: [core], skills: ["technical:3"], capacity: {phone: 2, email: 2}}
  - {id: bob, teams: [core], capacity: {phone: 2, email: 2}}
  - {id: eve, teams: [core], skills: ["technical:5", "billing"], capacity: {phone: 0, email: 2}}
classification:
  rules:
    - {name: vip, when: {tier: [vip]}, priority: high}
    - {name: outage, when: {text: ['outage|panne']}, category: technical, priority: urgent, skills: ["technical:3"]}
    - {name: phone-tech, when: {category: [technical], channel: [phone]}, skills: ["technical:4"]}
    - {name: faq, when: {text: ['how do i']}, category: faq, priority: low, stop: true}
    - {name: never, when: {text: ['how do i']}, category: never, priority: urgent}
  default_category: general
routing:
  rules:
    - {name: all, targets: [{team: core}]}
customers:
  vip: ["phone:+1415555*"]
"""


def test_classification_first_decides_skills_keep_the_highest_and_stop_stops(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, CLASSIFY) as r:
        a = send(r, "cl1", "+14155550100", "OUTAGE again", channel="phone")
        h = settled(r, a)
        assert (h["category"], h["prio"], h["tier"]) == ("technical", "2", "vip"), h
        assert h["status"] == "queued"  # technical:4 by phone: eve has it, but takes no phone work
        out = r.ctl("explain", "cl1").stdout
        assert "classified: category technical, priority high, tier vip (rules: vip, outage, phone-tech)" in out, out
        assert "agent ann: has skill technical at level 3 (needs 4)" in out, out
        assert "agent bob: lacks skill technical (needs level 4)" in out, out
        assert "agent eve: takes no phone work (capacity 0)" in out, out
        b = send(r, "cl2", "bea@example.com", "how do I reset? outage")
        h = settled(r, b)
        assert (h["category"], h["prio"]) == ("technical", "1"), h
        c = send(r, "cl3", "cid@example.com", "how do I reset?")
        h = settled(r, c)
        assert (h["category"], h["prio"]) == ("faq", "4"), h


def when_open_policy():
    return f"""
calendars:
  - {{name: shut, timezone: UTC, hours: ["mon-sun 00:00-24:00"], holidays: {closed_today(2)}}}
teams:
  - {{name: night, calendar: shut, offers: {{auto_accept: true}}}}
  - {{name: day, calendar: shut, offers: {{auto_accept: true}}}}
agents:
  - {{id: nina, teams: [night], capacity: {{email: 1}}}}
  - {{id: dan, teams: [day], capacity: {{email: 1}}}}
routing:
  rules:
    - {{name: all, targets: [{{team: day}}, {{team: night, when_open: false}}], queue: day}}
"""


def test_a_target_with_when_open_false_takes_work_while_its_team_is_closed(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, when_open_policy()) as r:
        a = send(r, "wo1", "a@example.com", "hi")
        assert settled(r, a)["owner"] == "agent:nina"
        b = send(r, "wo2", "b@example.com", "hi")
        h = settled(r, b)
        assert h["status"] == "queued", h
        out = r.ctl("explain", "wo2").stdout
        assert "target 0, team day: cannot take it now: closed until" in out, out
        assert "target 1, team night: eligible" in out, out


IDLE = """
teams:
  - {name: idle, strategy: longest-idle, offers: {auto_accept: true}}
  - {name: other, offers: {auto_accept: true}}
agents:
  - {id: i1, teams: [idle, other], capacity: {email: 5}}
  - {id: i2, teams: [idle], capacity: {email: 5}}
routing:
  rules:
    - {name: o, when: {subject: ['^other$']}, targets: [{team: other}]}
    - {name: all, targets: [{team: idle}]}
ownership:
  prefer_previous_owner: false
"""


def test_longest_idle_counts_an_agents_last_assignment_in_any_team(tmp_path, redis_server):
    with clocked_router(tmp_path, redis_server, IDLE) as r:
        assert settled(r, send(r, "id1", "a@example.com", "hi"))["owner"] == "agent:i1"
        clock_advance(r, "60s")
        assert settled(r, send(r, "id2", "b@example.com", "hi"))["owner"] == "agent:i2"
        clock_advance(r, "60s")
        assert settled(r, send(r, "id3", "c@example.com", "hi", subject="other"))["owner"] == "agent:i1"
        clock_advance(r, "60s")
        assert settled(r, send(r, "id4", "d@example.com", "hi"))["owner"] == "agent:i2"


def test_an_offer_past_its_expiry_when_its_agent_goes_offline_expires_it_is_not_revoked(tmp_path, redis_server):
    """The offer was no longer hers from its expiry (docs/delivery.md): going offline after it, before a tick moved
    it on, does not make it `offer revoked`; it expired, so she is declined and never offered it again."""
    with clocked_router(tmp_path, redis_server, OFFERS) as r:
        s = Scripts(r.redis)
        a = send(r, "xo1", "ann@example.com", "hello")
        wait_for(lambda: field(r, a, "owner") == "agent:alice", 10, "offered to alice")
        late = int(field(r, a, "offer_expires_at")) + 1000
        # alice goes offline a second after her offer expired, before any tick saw the expiry
        assert s.call("presence", "alice", "offline", late) == "available"
        assert field(r, a, "status") == "offered" and field(r, a, "owner") == "agent:alice"
        clock_advance(r, "62s")
        wait_for(lambda: field(r, a, "owner") == "agent:bob", 10, "moved on to bob")
        assert r.redis.hget(key("agent", "alice"), "offers_expired") == "1"
        assert r.redis.sismember(key("conversation_declined", a), "agent:alice")
        out = r.ctl("explain", "xo1").stdout
        assert "moved from agent:alice (target 0): the offer was not accepted in time" in out, out
        r.ctl("agent", "presence", "alice", "available")
        assert s.call("reject", "agent:bob", a, "no", router_now(r)) == "rejected"
        wait_for(lambda: field(r, a, "status") == "queued", 10, "queued: alice let it expire, bob rejected it")
        seen_by_a_tick(r)
        assert field(r, a, "owner") is None


def test_a_partners_quota_used_up_mid_drain_at_its_opening_leaves_the_rest_waiting(tmp_path, redis_server):
    now = datetime.datetime.now(datetime.timezone.utc)
    opens = (now + datetime.timedelta(minutes=3)).replace(second=0, microsecond=0)
    if opens.date() != now.date():
        pytest.skip("too close to midnight UTC for a same-day opening")
    policy = f"""
calendars:
  - {{name: later, timezone: UTC, hours: ["mon-sun {opens:%H:%M}-24:00"]}}
teams:
  - name: bpo
    kind: outsourced
    calendar: later
    contract: {{categories: [basic], daily_quota: 2}}
classification:
  default_category: basic
routing:
  rules:
    - {{name: all, targets: [{{team: bpo}}], queue: bpo}}
"""
    with clocked_router(tmp_path, redis_server, policy) as r:
        convs = [send(r, f"qo{i}", f"qo{i}@example.com", "hello") for i in range(3)]
        assert [settled(r, c)["status"] for c in convs] == ["queued"] * 3
        clock_advance(r, "4m")
        wait_for(lambda: [field(r, c, "status") for c in convs].count("assigned") == 2, 10, "two drained")
        seen_by_a_tick(r)
        assert [field(r, c, "status") for c in convs] == ["assigned", "assigned", "queued"]
        day = datetime.datetime.fromtimestamp(router_now(r) / 1000, datetime.timezone.utc)
        assert r.redis.get(f"omni:team:bpo:quota:{day:%Y-%m-%d}") == "2"


def test_an_offer_past_its_expiry_transferred_by_an_operator_still_counts_as_expired(tmp_path, redis_server):
    """Not accepted by offer_expires_at: the agent is declined (docs/delivery.md), even when an operator transfers
    the work before a tick moved it on; a transfer back to her team does not offer it to her again."""
    with clocked_router(tmp_path, redis_server, OFFERS) as r:
        s = Scripts(r.redis)
        a = send(r, "xt1", "ann@example.com", "hello")
        wait_for(lambda: field(r, a, "owner") == "agent:alice", 10, "offered to alice")
        late = int(field(r, a, "offer_expires_at")) + 1000
        assert s.call("transfer", "operator:olga", a, "core", late) == "transferred"
        clock_advance(r, "62s")
        wait_for(lambda: field(r, a, "owner") == "agent:bob", 10, "transferred to core: bob, not alice again")
        assert r.redis.hget(key("agent", "alice"), "offers_expired") == "1"
        assert r.redis.hget("omni:stats", "offers_expired") == "1" and not r.redis.hget("omni:stats", "offers_transferred")
