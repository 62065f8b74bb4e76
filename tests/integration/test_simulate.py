"""omnictl simulate: a policy replayed on a scratch Redis with a simulated clock, live state untouched."""
import json
import os
import subprocess

from harness import BIN, Router, message
from test_routing import POLICY


def run(tmp_path, msgs, *extra):
    conf = tmp_path / "policy.yaml"
    conf.write_text("identity:\n  default_country: US\n" + POLICY)
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in msgs))
    return subprocess.run([os.path.join(BIN, "omnictl"), "simulate", "--config", str(conf), "--input", str(inp),
                           *extra], capture_output=True, text=True, timeout=120)


def at(i, minute):
    m = message(f"s{i}", frm=f"c{i}@example.com", text=["crash on login", "do you ship to spain?"][i % 2])
    m["received_at"] = f"2026-11-23T09:{minute:02d}:00Z"
    return m


def test_simulate_reports_distribution_queues_and_sla(tmp_path):
    msgs = [at(i, i) for i in range(12)]
    r = run(tmp_path, msgs, "--handle-time", "30m")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "simulated 12 messages and 0 presence changes (0 bad lines skipped) from 2026-11-23T09:00:00.000Z" in out, out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:4] in ("core", "bpo ", "tier")}
    # six technical ones: alice (1 email at a time) and tina (3) in-house only; six basic: bpo first (cap 2)
    assert int(rows["bpo"][2]) > 0 and rows["bpo"][1] == "partner", out
    assert int(rows["core"][2]) + int(rows["tier2"][2]) >= 4, out
    assert "SLA:" in out and "still waiting at the end: 0" in out, out
    assert "first response: median" in out


def test_simulate_reports_bad_lines_and_never_touches_live_state(tmp_path, redis_server):
    live = Router(str(tmp_path / "live"), redis_server.address).start()
    try:
        presence = {"presence": {"agent": "alice", "status": "away", "at": "2026-11-23T09:30:00Z"}}
        no_agent = {"presence": {"agent": "nobody", "status": "away", "at": "2026-11-23T09:30:00Z"}}
        r = run(tmp_path, [at(0, 0), "{not json", message("bad", channel="sms", frm="12"), presence, no_agent])
        assert r.returncode == 0, r.stderr
        assert "in.jsonl:2: " in r.stderr and "in.jsonl:3: message bad: from.id" in r.stderr, r.stderr
        assert 'in.jsonl:5: presence.agent: "nobody" is no agent of the policy' in r.stderr, r.stderr
        # a bad presence line is a bad line, not an invalid message; the run's end is said
        assert "simulated 1 messages and 1 presence changes (3 bad lines skipped)" in r.stdout, r.stdout
        assert "then the clock ran on to 2026-12-23T00:00:00.000Z for the work left" in r.stdout, r.stdout
        assert redis_server.client().keys("omni:msg:*") == []
    finally:
        live.stop()
    assert not [d for d in os.listdir("/tmp") if d.startswith("omnictl-simulate-")]  # scratch server removed


def test_simulate_names_why_its_input_cannot_be_read(tmp_path):
    conf = tmp_path / "policy.yaml"
    conf.write_text(POLICY)
    r = subprocess.run([os.path.join(BIN, "omnictl"), "simulate", "--config", str(conf), "--input",
                        str(tmp_path / "nope.jsonl")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.endswith("nope.jsonl: cannot read: No such file or directory\n"), r.stderr


def test_simulate_refuses_a_bad_policy(tmp_path):
    conf = tmp_path / "bad.yaml"
    conf.write_text("teams:\n  - {name: x, kind: outsourced}\n")
    (tmp_path / "in.jsonl").write_text("")
    r = subprocess.run([os.path.join(BIN, "omnictl"), "simulate", "--config", str(conf), "--input",
                        str(tmp_path / "in.jsonl")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and f"{conf}:2:" in r.stderr, r.stderr


def test_simulate_help_and_unknown_options():
    r = subprocess.run([os.path.join(BIN, "omnictl"), "simulate", "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("usage: omnictl simulate") and "--trace FILE" in r.stdout, r
    assert "--answer-after" in r.stdout and '"presence"' in r.stdout
    r = subprocess.run([os.path.join(BIN, "omnictl"), "simulate", "--traec", "x"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "'--traec'" in r.stderr and "usage: omnictl simulate" in r.stderr, r.stderr


def test_simulate_traces_each_decision_takes_presence_and_names_waiting_work(tmp_path):
    """bob and alice both go offline: the basic work the partner cannot take (cap 2, quota 3 a day) waits on
    core; the trace has one line per decision, with why."""
    msgs = [at(i, i) for i in (1, 3, 5, 7, 9)]  # five basic ones: bpo takes two, core the rest if anyone is there
    pres = [{"presence": {"agent": a, "status": "offline", "at": "2026-11-23T08:59:00Z"}} for a in ("alice", "bob")]
    bad = {"presence": {"agent": "zed", "status": "offline", "at": "2026-11-23T09:00:00Z"}}
    trace = tmp_path / "trace.jsonl"
    r = run(tmp_path, msgs + pres + [bad], "--handle-time", "2h", "--trace", str(trace))
    assert r.returncode == 0, r.stderr
    assert 'in.jsonl:8: presence.agent: "zed" is no agent of the policy' in r.stderr, r.stderr
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    first = [d for d in lines if d["reason"] == "new"]
    assert len(first) == 5 and {tuple(sorted(d)) for d in lines} == {
        ("agent", "at", "conversation", "outcome", "reason", "target", "team", "why")}, lines
    assert [d["outcome"] for d in first] == ["assigned", "assigned", "queued", "queued", "queued"], first
    assert first[0] == {"conversation": "1", "at": "2026-11-23T09:01:00.000Z", "reason": "new", "outcome": "assigned",
                        "team": "bpo", "target": 0, "agent": "team:bpo", "why": "bpo: considered"}
    assert first[2]["team"] == "core" and first[2]["agent"] is None and first[2]["target"] is None, first[2]
    assert "bpo: contract: 2 of 2 concurrent" in first[2]["why"], first[2]
    assert "core: no agent available with capacity" in first[2]["why"], first[2]
    # the partner resolves its two after 2 h and takes one more (daily quota 3); the other two escalate and get
    # the partner's places when its new day starts at midnight, as the router's forced drain gives them
    assert [d["reason"] for d in lines if d["conversation"] == "5"] == ["new", "escalation", "capacity freed"], lines
    assert "bpo: contract: daily quota 3 reached" in lines[-3]["why"], lines
    assert lines[-1]["at"] == "2026-11-24T00:00:00.000Z" and lines[-1]["agent"] == "team:bpo", lines
    assert "still waiting at the end: 0" in r.stdout, r.stdout


def test_simulate_says_why_the_plan_passed_targets_over(tmp_path):
    """A target the plan refuses (a skill the partner lacks, agents without it) was never tried: its why is the
    plan's reason, as explain gives it, not an empty string (docs/routing.md, Simulate)."""
    m = message("r1", frm="rita@example.com", text="I need a return label")
    m["received_at"] = "2026-11-23T09:00:00Z"
    trace = tmp_path / "trace.jsonl"
    r = run(tmp_path, [m], "--trace", str(trace))
    assert r.returncode == 0, r.stderr
    first = json.loads(trace.read_text().splitlines()[0])
    assert first["outcome"] == "queued", first
    assert first["why"] == "bpo: team bpo has skill orders at level 1 (needs 2); core: no agent qualifies", first
    # and the work still waiting at the end, by its last decision
    assert "): bpo: team bpo has skill orders at level 1 (needs 2); core: no agent qualifies\n" in r.stdout, r.stdout


def test_simulate_summary_names_the_work_still_waiting(tmp_path):
    msgs = [at(i, i) for i in (0, 2)]  # technical: core (alice) or tier2 (tina), both offline all along
    pres = [{"presence": {"agent": a, "status": "offline", "at": "2026-11-23T08:00:00Z"}} for a in ("alice", "tina")]
    r = run(tmp_path, msgs + pres)
    assert r.returncode == 0, r.stderr
    assert "still waiting at the end: 2" in r.stdout, r.stdout
    # escalated at 50 % of its 24 h target, then breached: the most urgent level, still nobody to take it
    assert ("  conversation 1 waits on core (priority 1); last decided 2026-11-23T21:00:00.000Z (escalation): core: "
            "no agent available with capacity; tier2: no agent available with capacity") in r.stdout, r.stdout
    assert "  conversation 2 waits on core" in r.stdout, r.stdout


def test_simulate_starts_a_move_under_another_rule_at_its_first_target(tmp_path):
    """docs/routing.md, Time: a timeout chooses the rule again; when its time condition no longer holds, the move
    starts at the first target of the rule that holds now (night), not at the old rule's next index (night2)."""
    conf = tmp_path / "policy.yaml"
    conf.write_text("""
identity:
  default_country: US
teams:
""" + "".join(f"  - {{name: {t}, offers: {{auto_accept: true}}}}\n" for t in ("day", "day2", "night", "night2")) + """
agents:
""" + "".join(f"  - {{id: {t}-agent, teams: [{t}], capacity: {{email: 5}}}}\n"
            for t in ("day", "day2", "night", "night2")) + """
routing:
  rules:
    - {name: daytime, when: {local_time: '09:00-09:20'}, targets: [{team: day, timeout: 30m}, {team: day2}]}
    - {name: all, targets: [{team: night, timeout: 30m}, {team: night2}]}
""")
    m = message("rc1", frm="rc@example.com", text="hello")
    m["received_at"] = "2026-11-23T09:00:00Z"
    (tmp_path / "in.jsonl").write_text(json.dumps(m) + "\n")
    trace = tmp_path / "trace.jsonl"
    r = subprocess.run([os.path.join(BIN, "omnictl"), "simulate", "--config", str(conf), "--input",
                        str(tmp_path / "in.jsonl"), "--answer-after", "2h", "--handle-time", "3h",
                        "--trace", str(trace)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = [(d["at"][11:16], d["reason"], d["team"], d["target"])
           for d in map(json.loads, trace.read_text().splitlines())]
    assert got == [("09:00", "new", "day", 0), ("09:30", "timeout", "night", 0), ("10:00", "timeout", "night2", 1)], got
