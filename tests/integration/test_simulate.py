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
    assert "simulated 12 messages (0 invalid, skipped) from 2026-11-23T09:00:00.000Z" in out, out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:4] in ("core", "bpo ", "tier")}
    # six technical ones: alice (1 email at a time) and tina (3) in-house only; six basic: bpo first (cap 2)
    assert int(rows["bpo"][2]) > 0 and rows["bpo"][1] == "partner", out
    assert int(rows["core"][2]) + int(rows["tier2"][2]) >= 4, out
    assert "SLA:" in out and "still waiting at the end: 0" in out, out
    assert "first response: median" in out


def test_simulate_reports_bad_lines_and_never_touches_live_state(tmp_path, redis_server):
    live = Router(str(tmp_path / "live"), redis_server.address).start()
    try:
        r = run(tmp_path, [at(0, 0), "{not json", message("bad", channel="sms", frm="12")])
        assert r.returncode == 0, r.stderr
        assert "in.jsonl:2: " in r.stderr and "in.jsonl:3: message bad: from.id" in r.stderr, r.stderr
        assert "simulated 1 messages (2 invalid, skipped)" in r.stdout
        assert redis_server.client().keys("omni:msg:*") == []
    finally:
        live.stop()
    assert not [d for d in os.listdir("/tmp") if d.startswith("omnictl-simulate-")]  # scratch server removed


def test_simulate_refuses_a_bad_policy(tmp_path):
    conf = tmp_path / "bad.yaml"
    conf.write_text("teams:\n  - {name: x, kind: outsourced}\n")
    (tmp_path / "in.jsonl").write_text("")
    r = subprocess.run([os.path.join(BIN, "omnictl"), "simulate", "--config", str(conf), "--input",
                        str(tmp_path / "in.jsonl")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and f"{conf}:2:" in r.stderr, r.stderr
