"""The promises of DESIGN.md counted from Redis after a fault run (test_faults.py): nothing ACKed lost,
nothing stored twice, every conversation with exactly one owner or one place in a queue, no capacity or
contract cap exceeded, and no timer left behind. Key names are those of docs/redis.md.

All reads are one MULTI/EXEC, so the figures describe one instant even if a router is still working.
"""
import collections
import json
import time

PRIO = range(1, 5)


class Model:
    """What the test's policy says, to judge Redis by: capacity per agent and channel, each partner's
    contract cap, and each routing rule's target timeouts (ms, 0: none) in order."""

    def __init__(self, agents, caps, timeouts):
        self.agents = agents        # {agent: {channel: capacity}}
        self.caps = caps            # {team: max_concurrent, 0 for no cap}
        self.timeouts = timeouts    # {rule: [timeout ms of target 0, 1, ...]}

    @property
    def teams(self):
        return list(self.caps)


def router_now(r, prefix="omni:"):
    """The routers' clock (docs/routing.md, Time): the wall clock plus the test clock's offset."""
    return int(time.time() * 1000) + int(r.get(prefix + "clock:offset") or 0)


def snapshot(r, model, ledger, prefix="omni:"):
    k = lambda *parts: prefix + ":".join(str(p) for p in parts)  # noqa: E731
    n = int(r.get(k("seq", "conversation")) or 0)
    ledger = sorted(ledger)
    p = r.pipeline(transaction=True)
    for c in range(1, n + 1):
        p.hgetall(k("conversation", c))
        p.lrange(k("conversation", c, "messages"), 0, -1)
        p.lrange(k("conversation", c, "decisions"), 0, -1)
    for a in model.agents:
        p.hgetall(k("agent", a))
        p.smembers(k("agent", a, "conversations"))
    for t in model.teams:
        p.hgetall(k("team", t))
        p.smembers(k("team", t, "conversations"))
        for q in PRIO:
            p.zrange(k("queue", t, f"p{q}"), 0, -1)
    p.zrange(k("unrouted"), 0, -1)
    for id in ledger:
        p.hget(k("msg", id), "conversation")
    out = iter(p.execute())
    s = {"conv": {}, "agents": {}, "teams": {}, "queues": {}}
    for c in range(1, n + 1):
        s["conv"][str(c)] = (next(out), next(out), [json.loads(d) for d in next(out)])
    for a in model.agents:
        s["agents"][a] = (next(out), next(out))
    for t in model.teams:
        s["teams"][t] = (next(out), next(out))
        for q in PRIO:
            s["queues"][(t, str(q))] = next(out)
    s["unrouted"] = set(next(out))
    s["ledger"] = dict(zip(ledger, out))
    return s


def figures(s, model, now):
    """Returns {figure: [one line per offence]} for the snapshot s, judging timers against the routers'
    clock `now` (ms): a point in time at or before it must have been acted on."""
    bad = collections.defaultdict(list)
    convs = s["conv"]

    # lost: ACKed, and no message key, or not in the conversation its key names
    where = collections.defaultdict(list)
    for c, (_, msgs, _) in convs.items():
        for id in msgs:
            where[id].append(c)
    for id, c in s["ledger"].items():
        if c is None:
            bad["lost"].append(f"{id}: ACKed, no msg:{id}")
        elif c not in where[id]:
            bad["lost"].append(f"{id}: msg:{id} names conversation {c}, which does not list it")
    for id, cs in where.items():
        if len(cs) > 1:
            bad["stored_twice"].append(f"{id}: in conversations {cs}")

    # who holds what, seen from the owners' sets and the queues
    agent_of, team_of, queue_of = (collections.defaultdict(list) for _ in range(3))
    for a, (_, held) in s["agents"].items():
        for c in held:
            agent_of[c].append("agent:" + a)
    for t, (_, held) in s["teams"].items():
        for c in held:
            team_of[c].append(t)
    for (t, q), members in s["queues"].items():
        for c in members:
            queue_of[c].append((t, q))

    for c, (h, _, decisions) in convs.items():
        status, owner = h.get("status"), h.get("owner")
        agents, teams, queues = agent_of.get(c, []), team_of.get(c, []), queue_of.get(c, [])
        if status in ("resolved", "merged"):
            if agents or teams or queues:
                bad["owned_twice"].append(f"conversation {c} is {status} but held by {agents + teams} {queues}")
            continue
        if status in ("assigned", "offered") and owner:  # an open offer holds capacity too
            want = [owner] if owner.startswith("agent:") else []
            if sorted(agents) != want or teams != [h.get("team")] or queues:
                bad["owned_twice"].append(f"conversation {c} owner {owner} team {h.get('team')} but held by "
                                          f"agents {agents} teams {teams} queues {queues}")
        elif status == "queued" and queues:
            if queues != [(h.get("queued_on"), h.get("queued_prio"))] or agents or teams:
                bad["owned_twice"].append(f"conversation {c} queued on {h.get('queued_on')} p{h.get('queued_prio')} "
                                          f"but in queues {queues}, held by {agents + teams}")
        else:
            bad["unowned"].append(f"conversation {c} status {status} owner {owner} queues {queues} "
                                  f"{'in' if c in s['unrouted'] else 'not in'} unrouted")
        stranded(bad, c, h, decisions, model, now)

    # capacity and contract caps, and the load counters against what is held
    held_by_kind = collections.Counter()
    for c, (h, _, _) in convs.items():
        if h.get("status") in ("assigned", "offered") and (h.get("owner") or "").startswith("agent:"):
            # channel_kind is written only where it is not the channel's own name (docs/redis.md)
            held_by_kind[(h["owner"][6:], h.get("channel_kind") or h.get("channel"))] += 1
    for a, (h, held) in s["agents"].items():
        for ch, cap in model.agents[a].items():
            load = int(h.get("load:" + ch, 0))
            if load > cap:
                bad["over_capacity"].append(f"agent {a}: load:{ch} {load} > capacity {cap}")
            if load != held_by_kind[(a, ch)]:
                bad["counters_off"].append(f"agent {a}: load:{ch} {load}, holds {held_by_kind[(a, ch)]}")
        if int(h.get("load", 0)) != len(held):
            bad["counters_off"].append(f"agent {a}: load {h.get('load')}, holds {len(held)}")
    for t, (h, held) in s["teams"].items():
        # a team's load is what it holds (docs/redis.md): its conversations set, no counter to drift
        cap = model.caps[t]
        if cap and len(held) > cap:
            bad["over_capacity"].append(f"team {t}: holds {len(held)} > max_concurrent {cap}")
    return bad


def stranded(bad, c, h, decisions, model, now):
    """Timers (docs/routing.md, Routing and SLA): a target's timeout, the SLA escalation point and the due
    time. Once the first response came, none applies. A timeout is judged from assigned_at and the target's
    timeout, not from timeout_at, so a timer the router dropped is still seen. The timeout is the one of the
    target the owner got the work by (target_timeout, written with the assignment) (work moved past its rule's last target and taken from the queue has
    none: "no further moves"), else the policy's."""
    if h.get("first_response_at"):
        return
    last = max((d.get("at", 0) for d in decisions), default=0)
    if h.get("status") == "assigned" and h.get("rule") in model.timeouts and h.get("target") is not None:
        i = int(h["target"])
        targets = model.timeouts[h["rule"]]
        timeout = targets[i] if 0 <= i < len(targets) else 0
        if h.get("target_timeout") is not None:  # the target's timeout, as the assignment recorded it
            timeout = int(h["target_timeout"])
        if timeout and int(h["assigned_at"]) + timeout <= now:
            bad["timers_stranded"].append(
                f"conversation {c}: timeout: {h['owner']} (rule {h['rule']} target {i}) since {h['assigned_at']}, "
                f"timed out {now - int(h['assigned_at']) - timeout} ms ago; timeout_at {h.get('timeout_at')}")
    # Escalated: a decision since the point (moved on, or, waiting, made more urgent), kept with its reason
    # as docs/routing.md (Explain) promises. A later breach making queued work urgent does not count: it
    # would hide an escalation that never happened.
    esc = int(h.get("escalate_at") or 0)
    if esc > 0 and esc <= now and last < esc:
        bad["timers_stranded"].append(
            f"conversation {c}: escalation: due to escalate at {esc} ({now - esc} ms ago), last decision at "
            f"{last}; escalated={h.get('escalated')} status {h.get('status')} owner {h.get('owner')}")
    due = int(h.get("due") or 0)
    if due > 0 and due <= now and not h.get("breached"):
        bad["timers_stranded"].append(f"conversation {c}: breach: due at {due} ({now - due} ms ago), not counted")


FIGURES = ("lost", "stored_twice", "unowned", "owned_twice", "over_capacity", "counters_off", "timers_stranded")


def report(label, acked, bad, extra=""):
    """One machine-readable line, then up to 5 examples of each offence."""
    kinds = collections.Counter(line.split(": ")[1] for line in bad.get("timers_stranded", []))
    line = f"faults[{label}]: acked={acked} " + " ".join(f"{f}={len(bad.get(f, []))}" for f in FIGURES)
    line += f" (timeout={kinds['timeout']} escalation={kinds['escalation']} breach={kinds['breach']}) {extra}"
    lines = [line]
    for f in FIGURES:
        lines += [f"  {f}: {x}" for x in bad.get(f, [])[:5]]
    return "\n".join(lines)
