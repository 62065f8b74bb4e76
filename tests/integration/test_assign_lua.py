"""Table-driven tests of the live half of routing: assign.lua and drain.lua run in a real redis-server on
hand-written plans (the plans plan.c would build), so strategies, capacity, contract caps, quotas,
queue conditions, aging and queue order are checked one by one without the C side."""
import json

import pytest

from lua_contract import Scripts

NOW = 1_800_000_000_000


STRATEGY_CODE = {"least-loaded": "ll", "round-robin": "rr", "longest-idle": "li"}


class Lua(Scripts):
    def __init__(self, r):
        super().__init__(r)
        self.n = 0
        self.teams = {}  # team -> {"strategy": ..., "agents": [ids in roster order]}, every team seen so far
        self.caps = {}   # agent -> email capacity

    def seed(self):
        """What a router writes from its policy (seed.lua): each agent's capacity and rosters, so the ready
        index holds them. The tests' targets carry a test-only `cap` ({agent: capacity}), gathered here."""
        args = []
        for a, cap in self.caps.items():
            rosters = " ".join(f"{team}:{t['agents'].index(a)}:{STRATEGY_CODE[t['strategy']]}"
                               for team, t in self.teams.items() if a in t["agents"])
            args += [a, "available", f"email={cap}", rosters]
        masks = {team: self.r.hget(f"omni:team:{team}", "mask_contact") == "1" for team in self.teams}
        self.call("seed", "0123456789abcdef", json.dumps(masks), "0", *args)

    def send_plan(self, plan, days=None):
        """assign.lua on plan, after seeding what its targets say of the team's agents (as the policy would)."""
        return self.call("assign", "default", json.dumps(days or {}), self.prepared(plan))  # one plan: one record

    def prepared(self, plan):
        """plan as JSON, after seeding what its targets say of the team's agents (as the policy would)."""
        for t in plan["targets"]:
            if t.get("team_level"):
                continue
            team = self.teams.setdefault(t["team"], {"strategy": t["strategy"], "agents": []})
            team["strategy"] = t["strategy"]
            for a in t.get("agents", []):
                if a not in team["agents"]:
                    team["agents"].append(a)
                self.caps[a] = t.get("cap", {}).get(a, 1)
        self.seed()
        return json.dumps(dict(plan, targets=[{k: v for k, v in t.items() if k != "cap"} for t in plan["targets"]]))

    def conversation(self, channel="email"):
        """Stores a message through ingest.lua so a real conversation exists; returns its id."""
        self.n += 1
        doc = json.dumps({"id": f"m{self.n}", "channel": channel, "from": {"id": f"c{self.n}@x.io"},
                          "received_at": "2026-11-22T08:00:00Z", "text": "hi"})
        r = self.ingest(id=f"m{self.n}", identity=f"email:c{self.n}@x.io", channel=channel, message=doc,
                      now=NOW, queue="default", routing=True, fingerprint="", fold_window_ms=0, fold_max_bits=0)
        return r[2]

    def assign(self, conv, targets, prio=3, now=NOW, due=-1, queue="core", days=None, prefer=None, version=None):
        plan = {"conv": conv, "version": version or self.r.hget(f"omni:conversation:{conv}", "version") or "0",
                "channel": "email", "category": "basic", "prio": prio, "tier": "new", "reason": "new",
                "rule": "r", "queue": queue, "now": now, "due": due, "escalate_at": -1, "targets": targets,
                "skills": [], "trace": {}, "aging": 600000, "valid_until": -1}
        if prefer:
            plan["prefer"] = prefer
        return self.send_plan(plan, days)


def target(team="core", agents=("a", "b", "c"), cap=1, strategy="least-loaded", i=0, **kw):
    t = {"i": i, "team": team, "strategy": strategy, "timeout": 0, "queue_below": 0, "wait_below": 0,
         "handle_time": 600000, "max_concurrent": 0, "quota": 0, "day": "2026-11-22", "everyone": False,
         "agents": list(agents), "cap": {a: cap for a in agents}, "team_level": False,
         "accept_timeout": 60000, "auto_accept": True}  # offers: test_offers_lua.py
    t.update(kw)
    return t


@pytest.fixture
def lua(redis_server):
    return Lua(redis_server.client())


def test_least_loaded_spreads_by_load_relative_to_capacity(lua):
    t = target(agents=("a", "b"), cap=3)
    t["cap"] = {"a": 3, "b": 1}
    owners = [lua.assign(lua.conversation(), [t])[1] for _ in range(4)]
    assert owners == ["agent:a", "agent:b", "agent:a", "agent:a"]


def test_round_robin_takes_turns_and_skips_the_full(lua):
    t = target(agents=("a", "b", "c"), cap=2, strategy="round-robin")
    owners = [lua.assign(lua.conversation(), [t])[1] for _ in range(6)]
    assert owners == ["agent:a", "agent:b", "agent:c", "agent:a", "agent:b", "agent:c"]
    assert lua.assign(lua.conversation(), [t])[0] == "queued"


def test_longest_idle_picks_who_waited_longest(lua):
    lua.r.hset("omni:agent:a", "last_assigned_at", NOW - 10)
    lua.r.hset("omni:agent:b", "last_assigned_at", NOW - 5000)
    lua.r.hset("omni:agent:c", "last_assigned_at", NOW - 100)
    t = target(strategy="longest-idle", cap=5)
    assert [lua.assign(lua.conversation(), [t], now=NOW + i)[1] for i in range(3)] == \
        ["agent:b", "agent:c", "agent:a"]


@pytest.mark.parametrize("presence", ["away", "offline"])
def test_only_available_agents_are_chosen(lua, presence):
    lua.call("presence", "a", presence, NOW)
    assert lua.assign(lua.conversation(), [target(agents=("a", "b"))])[1] == "agent:b"


def test_preferred_previous_owner_first(lua):
    t = target(agents=("a", "b", "c"), cap=3)
    assert lua.assign(lua.conversation(), [t], prefer="c")[1] == "agent:c"


def test_capacity_per_channel_is_never_exceeded(lua):
    t = target(agents=("a",), cap=2)
    results = [lua.assign(lua.conversation(), [t])[0] for _ in range(5)]
    assert results == ["assigned", "assigned", "queued", "queued", "queued"]
    assert lua.r.hget("omni:agent:a", "load:email") == "2"


def test_several_plans_in_one_call_are_decided_in_order_each_seeing_the_last(lua):
    """The router sends the plans of one turn in one assign.lua call: one record each, in order, and each
    decision sees what the one before it took (capacity is never exceeded); a conversation gone meanwhile
    answers gone/missing and leaves the unrouted set."""
    t = target(agents=("a",), cap=1)
    c1, c2 = lua.conversation(), lua.conversation()
    c0 = lua.conversation()
    lua.assign(c0, [t])  # seeds the roster; a is now full
    lua.call("resolve", "operator:x", c0, "x", NOW)  # and free again
    lua.r.zadd("omni:unrouted", {"999": NOW})
    plans = []
    for cv in (c1, c2, "999"):
        plans.append(json.dumps({"conv": cv, "version": "0", "channel": "email", "category": "basic", "prio": 3,
                                 "tier": "new", "reason": "new", "rule": "r", "queue": "core", "now": NOW, "due": -1,
                                 "escalate_at": -1, "targets": [{k: v for k, v in t.items() if k != "cap"}],
                                 "skills": [], "trace": {}, "aging": 600000, "valid_until": -1}))
    reply = lua.call("assign", "default", "{}", *plans)
    assert reply == ["assigned", "agent:a", "queued", "core", "gone", "missing"]
    assert lua.r.hget("omni:agent:a", "load:email") == "1"
    assert lua.r.zscore("omni:unrouted", "999") is None


def test_a_refused_target_records_each_agents_reason_kept_beside_the_ready_index(lua):
    """Every agent out of the ready index has its reason in the team's unready hash, written where it left;
    a decision that finds nobody records those reasons (what explain prints) with one read of it."""
    t = target(agents=("a", "b", "c"), cap=1)
    lua.assign(lua.conversation(), [t])  # a takes one: at capacity
    lua.call("presence", "b", "away", NOW)
    assert lua.r.hgetall("omni:team:core:unready:email") == {"a": "at capacity (1/1 email)", "b": "away"}
    assert lua.r.zrange("omni:team:core:ready:email", 0, -1) == ["c"]
    lua.assign(lua.conversation(), [t])  # c takes one
    c = lua.conversation()
    assert lua.assign(c, [t])[0] == "queued"
    d = json.loads(lua.r.lrange(f"omni:conversation:{c}:decisions", -1, -1)[0])
    # grouped by reason, in roster order: the record is written for every decision
    assert d["tried"][0]["agents_why"] == [["at capacity (1/1 email)", "a", "c"], ["away", "b"]]
    assert "agents" not in d["tried"][0]
    # back in the index: no reason left behind
    lua.call("presence", "b", "available", NOW)
    assert lua.r.hgetall("omni:team:core:unready:email") == {"a": "at capacity (1/1 email)",
                                                               "c": "at capacity (1/1 email)"}
    assert lua.r.zrange("omni:team:core:ready:email", 0, -1) == ["b"]


@pytest.mark.parametrize("kw,expect", [
    ({"max_concurrent": 2}, ["team:bpo", "team:bpo", "queued"]),
    ({"quota": 1}, ["team:bpo", "queued", "queued"]),
    ({"queue_below": 1}, ["team:bpo", "team:bpo", "team:bpo"]),
])
def test_partner_contract_caps(lua, kw, expect):
    t = target(team="bpo", agents=(), team_level=True, **kw)
    got = []
    for _ in range(3):
        r = lua.assign(lua.conversation(), [t], queue="overflow")
        got.append(r[1] if r[0] == "assigned" else "queued")
    assert got == expect


def test_quota_is_per_day_of_the_partner(lua):
    t = target(team="bpo", agents=(), team_level=True, quota=1)
    assert lua.assign(lua.conversation(), [t], days={"bpo": "2026-11-22"})[0] == "assigned"
    assert lua.assign(lua.conversation(), [t], days={"bpo": "2026-11-22"})[0] == "queued"
    assert lua.assign(lua.conversation(), [t], days={"bpo": "2026-11-23"})[0] == "assigned"


def test_queue_length_and_predicted_wait_conditions_send_work_elsewhere(lua):
    core = target(agents=("a",), cap=1, queue_below=2)
    bpo = target(team="bpo", agents=(), team_level=True, i=1)
    assert lua.assign(lua.conversation(), [core, bpo])[1] == "agent:a"
    lua.assign(lua.conversation(), [target(agents=("a",), cap=1)])  # queued on core
    lua.assign(lua.conversation(), [target(agents=("a",), cap=1)])  # queued on core: 2 waiting
    assert lua.assign(lua.conversation(), [core, bpo])[1] == "team:bpo"  # queue 2 >= 2
    waiting = target(agents=("a",), cap=5, wait_below=15 * 60000)  # 2 waiting * 10 min / 1 agent = 20 min
    assert lua.assign(lua.conversation(), [waiting, bpo])[1] == "team:bpo"
    decisions = [json.loads(d) for d in lua.r.lrange(f"omni:conversation:{lua.n}:decisions", 0, -1)]
    assert "predicted wait 1200 s >= 900 s" in decisions[-1]["tried"][0]["skipped"]


def test_stale_version_changes_nothing(lua):
    c = lua.conversation()
    assert lua.assign(c, [target()])[0] == "assigned"
    assert lua.assign(c, [target()], version="0") == ["stale", "1"]
    assert lua.r.hget("omni:agent:a", "load") == "1"


def test_drain_assigns_most_urgent_then_earliest_due_and_ages(lua):
    full = target(agents=("a",), cap=1)
    lua.assign(lua.conversation(), [full])  # a busy
    low_old = lua.conversation()
    lua.assign(low_old, [full], prio=4, due=NOW + 5000, now=NOW - 40 * 60000)  # waited 40 min: 4 levels of aging
    high = lua.conversation()
    lua.assign(high, [full], prio=2, due=NOW + 9000)
    normal_early = lua.conversation()
    lua.assign(normal_early, [full], prio=2, due=NOW + 1000)
    lua.call("resolve", "operator:t", "1", "test", NOW)
    lua.r.hset("omni:agent:a", "presence", "available")
    assert lua.call("drain", "core", NOW, 50, 600000, "{}", True) == [low_old]
    # low_old aged to urgent (4 - 4 -> 1), beats the high ones
    assert lua.r.hget(f"omni:conversation:{low_old}", "owner") == "agent:a"
    lua.call("resolve", "operator:t", low_old, "test", NOW)
    assert lua.call("drain", "core", NOW, 50, 600000, "{}", True) == [normal_early]
    assert lua.r.hget(f"omni:conversation:{normal_early}", "owner") == "agent:a"  # same level: earlier due first
    assert lua.r.hget(f"omni:conversation:{high}", "status") == "queued"


def test_resolve_frees_capacity_and_remembers_the_owner(lua):
    c = lua.conversation()
    lua.assign(c, [target(agents=("a",))])
    assert lua.call("resolve", "operator:alice", c, "alice", NOW) == ["resolved", "agent:a", 1]
    assert lua.r.hget("omni:agent:a", "load") == "0"
    cust = lua.r.hget(f"omni:conversation:{c}", "customer")
    assert lua.r.hget(f"omni:customer:{cust}", "last_owner") == "a"
    assert lua.r.hget("omni:stats", "first_contact_resolved") == "1"
    # kept for retention, then archived; the customer's next message opens a new conversation
    assert lua.r.zscore("omni:archive:due", c) == NOW
    assert lua.r.hget(f"omni:customer:{cust}", "open_conversation") is None
    assert lua.r.hget(f"omni:customer:{cust}", "last_conversation") == c
    assert lua.r.hget(f"omni:conversation:{c}", "resolved_by") == "alice"
    assert lua.call("resolve", "operator:alice", c, "alice", NOW) == ["closed", "", 1]


def test_a_record_plan_resolves_a_lone_message_and_routes_one_joined_since(lua):
    """plan.record (a rule with record: true, docs/routing.md): a conversation holding only its first message is
    stored resolved by the policy, nobody's work; one that a second message joined before the decision is work,
    routed by the plan's targets (the next matching rule's)."""
    def plan(conv):
        return {"conv": conv, "version": lua.r.hget(f"omni:conversation:{conv}", "version") or "0",
                "channel": "email", "category": "basic", "prio": 3, "tier": "new", "reason": "new", "rule": "rest",
                "queue": "core", "now": NOW, "due": NOW + 3600000, "escalate_at": NOW + 1800000,
                "targets": [target(agents=("a",))], "skills": [], "trace": {"record": "calls"}, "aging": 600000,
                "valid_until": -1, "record": "calls"}
    lone = lua.conversation()
    assert lua.send_plan(plan(lone)) == ["recorded", "calls"]
    h = lua.r.hgetall(f"omni:conversation:{lone}")
    assert h["status"] == "resolved" and h["resolved_by"] == "policy:calls" and h["rule"] == "calls", h
    assert "owner" not in h and "due" not in h, h
    assert lua.r.hget("omni:agent:a", "load") in (None, "0")
    assert lua.r.zscore("omni:archive:due", lone) == NOW and lua.r.zscore("omni:queue:default", lone) is None
    cust = h["customer"]
    assert lua.r.hget(f"omni:customer:{cust}", "open_conversation") is None
    assert lua.r.hget(f"omni:customer:{cust}", "last_conversation") == lone
    d = json.loads(lua.r.lindex(f"omni:conversation:{lone}:decisions", -1))
    assert d["outcome"] == "recorded" and d["rule"] == "calls" and d["resolved_by"] == "policy:calls", d
    assert lua.r.hget("omni:stats", "recorded") == "1" and lua.r.hget("omni:stats", "resolved") is None
    assert lua.send_plan(plan(lone)) == ["gone", "resolved"]  # decided once

    joined = lua.conversation()
    doc = json.dumps({"id": "again", "channel": "email", "from": {"id": f"c{lua.n}@x.io"},
                      "received_at": "2026-11-22T08:01:00Z", "text": "and please call me back"})
    r = lua.ingest(id="again", identity=f"email:c{lua.n}@x.io", channel="email", message=doc, now=NOW,
                 queue="default", routing=True, fingerprint="", fold_window_ms=0, fold_max_bits=0)
    assert r[2] == joined
    assert lua.send_plan(plan(joined)) == ["assigned", "agent:a"]
    d = json.loads(lua.r.lindex(f"omni:conversation:{joined}:decisions", -1))
    assert d["rule"] == "rest" and d["plan"]["not_recorded"] == 2, d
    assert lua.r.hget("omni:stats", "recorded") == "1"


def test_arguments_are_decoded_by_the_declaration_and_refused_when_they_do_not_match(lua):
    """Every script decodes ARGV by its "@args" line: a malformed, missing or extra argument is an error reply
    naming the script and the argument, and nothing is written."""
    sha = lua.r.script_load(lua.body("presence"))
    for argv, words in [(("omni:", "a", "away", "soon"), "presence: argument now is not an integer: soon"),
                        (("omni:", "a", "away"), "presence: 3 arguments, expected 4 (now missing)"),
                        (("omni:", "a", "away", NOW, "x"), "presence: 5 arguments, expected 4"),
                        (("omni:", "a", "busy", NOW), "presence: not available, away or offline: busy")]:
        with pytest.raises(Exception, match=words.replace("(", r"\(").replace(")", r"\)")):
            lua.r.evalsha(sha, 0, *argv)
    assert not lua.r.exists("omni:agent:a")


def test_target_fields_left_out_read_as_their_declared_defaults(lua):
    """plan.c leaves out a target's fields that have the value PLAN_TARGET_SPEC declares after "=" (no timeout,
    no contract, not team-level, no agents named...): the check fills them in, so a plan written so is decided
    as the full one; a field given with the wrong type is still refused, and nothing is written."""
    full = target(agents=("a",), cap=2, auto_accept=False, timeout=0)
    lean = {k: v for k, v in full.items() if k not in
            ("timeout", "queue_below", "wait_below", "max_concurrent", "quota", "day", "everyone", "team_level",
             "auto_accept")}
    a, b = lua.conversation(), lua.conversation()
    assert lua.assign(a, [full]) == ["offered", "agent:a"]
    assert lua.assign(b, [lean]) == ["offered", "agent:a"]  # auto_accept read as false: an offer, as above
    fields = ("status", "target", "target_timeout", "timeout_at")
    assert lua.r.hmget(f"omni:conversation:{b}", *fields) == lua.r.hmget(f"omni:conversation:{a}", *fields)
    assert lua.r.hget(f"omni:conversation:{b}", "target_timeout") == "0"
    # nobody named and not everyone: agents read as [] and everyone as false, so nobody of the team qualifies
    nobody = {k: v for k, v in lean.items() if k != "agents"}
    assert lua.assign(lua.conversation(), [nobody])[0] == "queued"
    c = lua.conversation()
    with pytest.raises(Exception, match=r"assign: plan\.targets\[1\]\.timeout: not an integer"):
        lua.assign(c, [dict(lean, timeout="soon")])
    assert lua.r.hget(f"omni:conversation:{c}", "status") == "open"


def test_a_third_party_channel_is_counted_in_other_and_given_back_there(lua):
    """An `x-` channel's work takes the agent's `other` capacity: the conversation records that kind (written
    only where it is not the channel's own name) and its release gives the load back to the same kind."""
    lua.call("seed", "0123456789abcdef", json.dumps({"core": False}), "0", "a", "available", "email=1 other=2", "core:0:ll")
    t = {k: v for k, v in target(agents=("a",)).items() if k != "cap"}

    def plan(conv, channel):
        return json.dumps({"conv": conv, "version": "0", "channel": channel, "category": "basic", "prio": 3,
                           "tier": "new", "reason": "new", "rule": "r", "queue": "core", "now": NOW, "due": -1,
                           "escalate_at": -1, "targets": [t], "skills": [], "trace": {}, "aging": 600000})
    fax, mail = lua.conversation(channel="x-fax"), lua.conversation()
    assert lua.call("assign", "default", "{}", plan(fax, "other")) == ["assigned", "agent:a"]
    assert lua.call("assign", "default", "{}", plan(mail, "email")) == ["assigned", "agent:a"]
    assert lua.r.hget(f"omni:conversation:{fax}", "channel_kind") == "other"
    assert lua.r.hget(f"omni:conversation:{mail}", "channel_kind") is None  # the channel's own name
    assert lua.r.hmget("omni:agent:a", "load", "load:other", "load:email") == ["2", "1", "1"]
    # no SLA target applies (due -1): the events leave due out rather than show -1
    told = [json.loads(f["data"]) for _, f in lua.r.xrange("omni:inbox:agent:a")]
    assert len(told) == 2 and all("due" not in d and d["prio"] == 3 for d in told), told
    lua.call("resolve", "operator:x", fax, "x", NOW)
    assert lua.r.hmget("omni:agent:a", "load", "load:other", "load:email") == ["1", "0", "1"]
    lua.call("resolve", "operator:x", mail, "x", NOW)
    assert lua.r.hmget("omni:agent:a", "load", "load:other", "load:email") == ["0", "0", "0"]
