#!/usr/bin/python3
"""script_cost.py LUADIR AGENTS N: machine instructions Redis spends per ingest.lua and per assign.lua call
(a new customer's message; its conversation offered to one of a team of AGENTS agents), counted by
valgrind's callgrind on a private redis-server: repeatable on a busy machine, unlike CPU time. Each figure is
the difference of three runs (nothing; N ingests; N ingests and N assigns) divided by N. LUADIR: the scripts
as Redis runs them (make writes them to BUILD/gen/lua). Prints one line: agents=A ingest Ir/call=I assign Ir/call=J.
Used to find where a routed message's Redis time goes (docs/benchmarks.md, figure 2); not part of make bench."""
import sys, os, json, subprocess, time, glob, redis, shutil
luadir, agents, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# ingest.lua's arguments by name, in the order its "-- @args" line declares them
INGEST_ARGS = [w.split(":")[0] for w in
               next(l for l in open(f"{luadir}/ingest.lua") if l.startswith("-- @args ")).split()[2:]]
def run(n_ingest, n_assign):
    d = f"/tmp/instr-{os.getpid()}"; shutil.rmtree(d, ignore_errors=True); os.makedirs(d)
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={d}/cg.out", "redis-server",
                          "--unixsocket", f"{d}/s", "--port", "0", "--dir", d, "--appendonly", "yes", "--appendfsync", "always",
                          "--save", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = redis.Redis(unix_socket_path=f"{d}/s")
    for _ in range(600):
        try: r.ping(); break
        except Exception: time.sleep(0.1)
    sha = {s: r.script_load(open(f"{luadir}/{s}.lua").read()) for s in ("ingest", "assign", "seed")}
    ids = [f"a{i}" for i in range(agents)]
    args = []
    for i, a in enumerate(ids): args += [a, "available", "email=100000", f"core:{i}:ll"]
    r.evalsha(sha["seed"], 0, "omni:", "salt", json.dumps({"core": False, "partner": False}), *args)
    now = 1796093263183
    convs = []
    for i in range(n_ingest):
        mid = f"m{i}"
        msg = json.dumps({"id": mid, "channel": "email", "from": {"id": f"c{i}@example.com"}, "text": "x" * 200})
        val = dict(prefix="omni:", id=mid, identity=f"email:c{i}@example.com", channel="email", message=msg, now=now,
                   queue="default", routing=1, fingerprint="a09bf228585d2a18", fold_window_ms=60000, fold_max_bits=3,
                   dedup_ms=86400000)
        convs.append(r.evalsha(sha["ingest"], 0, *[val[a] for a in INGEST_ARGS])[2].decode())
    tg = lambda i, t, ev, ag: {"i": i, "team": t, "strategy": "least-loaded", "timeout": 0, "queue_below": 0, "wait_below": 0,
        "handle_time": 600000, "max_concurrent": 0, "quota": 0, "day": "", "everyone": ev, "agents": ag, "team_level": not ev,
        "accept_timeout": 60000, "auto_accept": False}
    for cv in convs[:n_assign]:
        plan = {"conv": cv, "version": "0", "channel": "email", "category": "basic", "prio": 3, "tier": "new", "reason": "new",
                "rule": "all", "queue": "core", "now": now, "due": now + 86400000, "escalate_at": now + 69120000,
                "targets": [tg(0, "core", True, []), tg(1, "partner", False, [])], "skills": [],
                "trace": {"classified_by": [], "reason": "new", "planned_at": now, "rules_tried": [],
                          "targets": [{"team": "core", "target": 0, "agents_skipped": {}}, {"team": "partner", "target": 1, "agents_skipped": {}}],
                          "rule": "all", "sla": "clock hours"}, "aging": 600000, "valid_until": -1}
        rep = r.evalsha(sha["assign"], 0, "omni:", json.dumps(plan), "default", "{}")
    try:
        r.shutdown(nosave=True)
    except redis.exceptions.ConnectionError:
        pass
    p.wait()
    tot = int([l for l in open(f"{d}/cg.out") if l.startswith("summary:") or l.startswith("totals:")][0].split()[1])
    shutil.rmtree(d, ignore_errors=True)
    return tot
base = run(0, 0); ing = run(n, 0); both = run(n, n)
print(f"agents={agents} ingest Ir/call={(ing-base)/n:.0f} assign Ir/call={(both-ing)/n:.0f}")
