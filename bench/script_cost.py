#!/usr/bin/python3
"""script_cost.py LUADIR AGENTS N [BATCH]: machine instructions Redis spends per message in ingest.lua and per
decision in assign.lua (a new customer's message; its conversation offered to one of a team of AGENTS agents),
BATCH messages (plans) per call as the router sends a turn's worth together (1 when not given), counted by
valgrind's callgrind on a private redis-server: repeatable on a busy machine, unlike CPU time. Each figure is
the difference of three runs (nothing; N ingests; N ingests and N assigns) divided by N. LUADIR: the scripts
as Redis runs them (make writes them to BUILD/gen/lua). Prints one line:
agents=A batch=B ingest Ir/message=I assign Ir/decision=J routed in one call Ir/message=K (K: the message
stored with its first plan, decided in the same ingest.lua call, as the router sends a new sender's).
Used to find where a routed message's Redis time goes (docs/benchmarks.md, figure 2); not part of make bench."""
import sys, os, json, subprocess, time, glob, redis, shutil
luadir, agents, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
batch = int(sys.argv[4]) if len(sys.argv) > 4 else 1
# ingest.lua's arguments by name, in the order its "-- @args" line declares them
INGEST_ARGS = [w.split(":")[0] for w in
               next(l for l in open(f"{luadir}/ingest.lua") if l.startswith("-- @args ")).split()[2:]]
def plan_for(cv, now):
    """A plan as plan.c writes it: fields at the default PLAN_TARGET_SPEC declares are left out."""
    tg = lambda i, t, ev: dict({"i": i, "team": t, "strategy": "least-loaded", "handle_time": 600000,
                                "accept_timeout": 60000}, **({"everyone": True} if ev else {"team_level": True}))
    return json.dumps({"conv": cv, "version": "0", "channel": "email", "category": "basic", "prio": 3, "tier": "new",
                       "reason": "new", "rule": "all", "queue": "core", "now": now, "due": now + 86400000,
                       "escalate_at": now + 69120000, "targets": [tg(0, "core", True), tg(1, "partner", False)],
                       "trace": {"reason": "new", "planned_at": now, "targets": [{"team": "core", "target": 0},
                                 {"team": "partner", "target": 1}], "rule": "all", "sla": "clock hours"},
                       "aging": 600000})
def run(n_ingest, n_assign, first=False):
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
    r.evalsha(sha["seed"], 0, "omni:", "salt", json.dumps({"core": False, "partner": False}), "0", *args)
    now = 1796093263183
    convs, msgs = [], []
    val = dict(prefix="omni:", now=now, queue="default", routing=1, fold_window_ms=60000, fold_max_bits=3, days="{}")
    for i in range(n_ingest):
        mid = f"m{i}"
        msg = json.dumps({"id": mid, "channel": "email", "from": {"id": f"c{i}@example.com"}, "text": "x" * 200})
        msgs += [mid, f"email:c{i}@example.com", "email", msg, "a09bf228585d2a18",  # ...messages: six each
                 plan_for("", now) if first else ""]
        if len(msgs) == 6 * batch or i == n_ingest - 1:
            rep = r.evalsha(sha["ingest"], 0, *[val[a] for a in INGEST_ARGS[:-1]], *msgs)
            convs += [rep[k + 2].decode() for k in range(0, len(rep), 11)]
            msgs = []
    plans = []
    for k, cv in enumerate(convs[:n_assign]):
        plans.append(plan_for(cv, now))
        if len(plans) == batch or k == n_assign - 1:
            r.evalsha(sha["assign"], 0, "omni:", "default", "{}", *plans)
            plans = []
    try:
        r.shutdown(nosave=True)
    except redis.exceptions.ConnectionError:
        pass
    p.wait()
    tot = int([l for l in open(f"{d}/cg.out") if l.startswith("summary:") or l.startswith("totals:")][0].split()[1])
    shutil.rmtree(d, ignore_errors=True)
    return tot
base = run(0, 0); ing = run(n, 0); both = run(n, n); first = run(n, 0, first=True)
print(f"agents={agents} batch={batch} ingest Ir/message={(ing-base)/n:.0f} assign Ir/decision={(both-ing)/n:.0f}"
      f" routed in one call Ir/message={(first-base)/n:.0f}")
