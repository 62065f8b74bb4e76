"""What the system keeps and where, audited as a user reads docs/archive.md and docs/redis.md: the archive's
records across a Sentinel failover (each conversation written once), the key layout of a realistic run against
docs/redis.md's table (every key Redis holds is documented, every hash field named), retention's bounds on the
test clock, and the archive's records field by field (decisions whole, with their plan's targets)."""
import json
import os
import re
import signal
import subprocess

import redis

from harness import BIN, Router, message, submit, wait_for
from test_sentinel import MASTER, cluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def records(archive_dir):
    """Every whole record of the archive, in file order (a torn line is skipped, as readers are told to)."""
    out = []
    for name in sorted(os.listdir(archive_dir)) if os.path.isdir(archive_dir) else []:
        with open(os.path.join(archive_dir, name)) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def sentinel_config(r, sentinels, wait_replicas):
    """Rewrites r's config (a Router not started) to find Redis through the sentinels."""
    text = open(r.config).read()
    head, rest = text.split("redis:\n", 1)
    rest = rest.split("identity:\n", 1)[1]
    with open(r.config, "w") as f:
        f.write(head + "redis:\n  sentinels: [" + ", ".join(f"127.0.0.1:{s.port}" for s in sentinels) + "]\n"
                f"  master_name: {MASTER}\n  wait_replicas: {wait_replicas}\n  wait_timeout_ms: 500\n"
                "  timeout_ms: 2000\n  reconnect_ms: 20\nidentity:\n" + rest)


def test_a_failover_mid_archive_writes_each_conversation_once(tmp_path):
    """docs/archive.md: exactly one record per conversation; docs/redis.md: with wait_replicas 1 what the router
    did is on a replica before it counts. The replica stops (its link cut) after the conversations were resolved
    and replicated; their retention runs out while only the primary can take writes; then the primary dies and
    the replica is promoted. The archive's claim is confirmed by a replica before its record is written, so the
    promoted replica knows the file to look in: no conversation is written twice (before, the claim and the
    delete lived on the lost primary alone, and the promoted replica's copies were archived a second time)."""
    primary, replica, sentinels = cluster(tmp_path)
    archive = str(tmp_path / "archive")
    r = Router(str(tmp_path / "router"), None,
               extra={"retention": {"dedup": "1h", "resolved": "4s", "archive_dir": archive}})
    sentinel_config(r, sentinels, 1)
    r.start()
    try:
        submit(r.endpoint, str(tmp_path / "spool"),
               [message(f"f{i}", frm=f"f{i}@example.com", text=f"question number {i}") for i in range(3)])
        p = primary.client()
        convs = [p.hget(f"omni:msg:f{i}", "conversation") for i in range(3)]
        for cv in convs:
            r.ctl("conversation", "resolve", cv)
        rc = replica.client()
        wait_for(lambda: all(rc.hget("omni:conversation:" + cv, "status") == "resolved" for cv in convs), 10,
                 "the resolutions replicated")
        # the replica falls behind: whatever the primary does from now on is on no replica
        replica.proc.send_signal(signal.SIGSTOP)
        p.execute_command("CLIENT", "KILL", "TYPE", "replica")
        # retention runs out (4 s): the router either archives on the primary alone (the record written, the
        # conversation deleted there only) or waits for a replica to confirm its claim
        wait_for(lambda: not any(p.exists("omni:conversation:" + cv) for cv in convs) or
                 "replicas confirmed a write within 500 ms" in r.log(), 30, "the archive's turn")
        old = primary.port
        primary.stop(signal.SIGKILL)
        replica.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: sentinels[0].primary_port() != old, 30, "the sentinels promote the replica")
        primary.start()  # back as a replica of the new primary: WAIT 1 can be met again
        new = redis.Redis(port=sentinels[0].primary_port(), decode_responses=True, socket_timeout=10)
        # a claim made on the new primary before its replica reattached was not confirmed: it lapses after its
        # lease (60 s), then the conversations are claimed, confirmed and written
        wait_for(lambda: not any(new.exists("omni:conversation:" + cv) for cv in convs), 120,
                 "every conversation archived from the new primary")
        written = sorted(x["conversation"] for x in records(archive))
        assert written == sorted(convs), f"each conversation exactly once: {written}"
        # omnictl follows the sentinels to the new primary, and names the file
        out = r.ctl("conversation", "show", convs[0]).stdout
        assert out.startswith(f"conversation {convs[0]}: archived to {archive}/"), out
    finally:
        r.stop()
        for s in sentinels:
            s.stop()
        primary.stop()
        replica.stop()


# ---- the key layout of a realistic run against docs/redis.md -------------------------------------------------

LAYOUT_POLICY = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: core, kind: in-house, strategy: least-loaded, calendar: always}
  - {name: tech, kind: in-house, strategy: longest-idle, calendar: always, offers: {auto_accept: true}}
  - name: bpo1
    kind: outsourced
    strategy: round-robin
    calendar: always
    offers: {auto_accept: true}
    contract: {categories: [faq], max_concurrent: 5, daily_quota: 50}
agents:
  - {id: ann, teams: [core], capacity: {email: 3, sms: 3}}
  - {id: bob, teams: [core, tech], capacity: {email: 2, sms: 2}}
  - {id: pat, teams: [bpo1], capacity: {email: 5, sms: 5}}
classification:
  rules:
    - {name: technical, when: {text: ["crash|error"]}, category: technical, priority: high}
    - {name: faq, when: {text: ["how do i"]}, category: faq, priority: low}
  default_category: basic
routing:
  rules:
    - {name: tech, when: {category: [technical]}, targets: [{team: tech}, {team: core}], queue: core}
    - {name: partners, when: {category: [faq]}, targets: [{team: bpo1}, {team: core}], queue: core}
    - {name: rest, targets: [{team: core}], queue: core}
sla:
  targets:
    - {first_response: 1h}
follow_up:
  after: 1h
"""

# Hashes whose fields are members (docs/redis.md says so in words): what a field of each must look like.
MEMBER_FIELDS = {"omni:queue:<team>:info": r"^\d+$", "omni:team:<name>:unready:<kind>": r"^(ann|bob|pat)$",
                 "omni:tokens": r"^[0-9a-f]{12}$"}


def documented_keys():
    """docs/redis.md's key table: (pattern, regex, type, what) for each key pattern of each row."""
    out = []
    for line in open(os.path.join(ROOT, "docs", "redis.md")).read().splitlines():
        if not line.startswith("| `omni:"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        what = "|".join(cells[2:]).replace("\\|", "|")
        for p in re.findall(r"`(omni:[^`]+)`", cells[0].replace("\\|", "|")):
            out.append((p, re.compile("^" + re.sub(r"<[^>]+>", ".+", re.escape(p)) + "$"), cells[1], what))
    return out


def field_documented(pattern, what, field):
    if pattern in MEMBER_FIELDS:
        return re.match(MEMBER_FIELDS[pattern], field)
    for t in re.findall(r"`([^`]+)`", what):
        if t == field or ("<" in t and re.match("^" + re.sub(r"<[^>]+>", ".+", re.escape(t)) + "$", field)):
            return True
    return False


REDIS_TYPES = {"hash": "hash", "set": "set", "zset": "sorted set", "list": "list", "string": "string",
               "stream": "stream"}


def layout_problems(r):
    rows, problems = documented_keys(), []
    for key in sorted(r.scan_iter(count=1000)):
        t = r.type(key)
        rows_of = [x for x in rows if x[1].match(key) and x[2] == REDIS_TYPES[t]]
        if not rows_of:
            problems.append(f"{key} ({t}): no row of docs/redis.md's table")
        elif t == "hash":
            problems += [f"{key}: field {f} not named by {[x[0] for x in rows_of]}" for f in r.hkeys(key)
                         if not any(field_documented(x[0], x[3], f) for x in rows_of)]
    return problems


def test_a_realistic_run_holds_only_documented_keys_and_archives_whole_records(tmp_path, redis_server):
    """Every key a realistic run leaves in Redis (routing, offers, a partner, SLA, a link merging two
    conversations, a folded copy, surveys, follow-ups, a token, the archive) has a row in docs/redis.md's table
    of its type, and every field of every hash is named there. Then the archive's records field by field
    (docs/archive.md, "The files"), with retention.archive_dir relative to the config file and
    retention.tombstone 0: omnictl, run from elsewhere, searches the files."""
    directory = tmp_path / "run"
    r = Router(str(directory), redis_server.address, policy=LAYOUT_POLICY, env={"OMNIROUTER_TEST_CLOCK": "1"},
               extra={"retention": {"dedup": "30m", "resolved": "2h", "tombstone": 0, "archive_dir": "arch"}})
    r.start()
    red = redis_server.client()
    try:
        for a in ("ann", "bob", "pat"):
            r.ctl("agent", "presence", a, "available")
        texts = ["my app shows an error", "how do i reset it", "hello there, my order is late", "hi",
                 "crash again, please help"]
        msgs = [message(f"m{i}", channel="email" if i % 2 else "sms",
                        frm=f"c{i % 12}@example.com" if i % 2 else f"+1415555{i % 12:04d}", text=texts[i % 5] + f" #{i}")
                for i in range(30)]
        msgs[3]["text"] = "hi"  # too short to fold: no fp
        msgs.append(message("m-copy", frm="c1@example.com", text=msgs[25]["text"]))  # c1's newest, again: folded
        submit(r.endpoint, str(tmp_path / "spool"), msgs)
        convs = sorted({red.hget(f"omni:msg:{m['id']}", "conversation") for m in msgs}, key=int)
        r.ctl("customer", "link", "email:c1@example.com", "phone:+14155550002")
        merged = [cv for cv in convs if red.hget("omni:conversation:" + cv, "status") == "merged"]
        assert merged, "the link merged one open conversation into the other"
        r.ctl("customer", "tier", "email:c5@example.com", "vip")
        r.ctl("token", "create", "agent:ann")
        live = [cv for cv in convs if cv not in merged]
        for cv in live:
            r.ctl("conversation", "respond", cv)
            r.ctl("conversation", "resolve", cv)
        for cv in live[:4]:
            r.ctl("conversation", "survey", cv, "--csat", "4", "--nps", "9")
        r.ctl("clock", "advance", "61m")  # follow-ups opened
        wait_for(lambda: red.hget("omni:stats", "follow_ups"), 20, "follow-ups opened")
        r.ctl("clock", "advance", "70m")  # past retention.resolved: archived
        wait_for(lambda: not any(red.exists("omni:conversation:" + cv) for cv in convs), 30, "all archived")
        problems = layout_problems(red)
        assert not problems, "\n".join(problems)

        archive = str(directory / "arch")
        recs = {x["conversation"]: x for x in records(archive)}
        assert sorted(recs, key=int) == live  # the merged ones inside their records, each written once
        inside = [m["conversation"] for x in recs.values() for m in x["merged"]]
        assert sorted(inside) == sorted(merged)
        msg_keys = {"id", "json", "identity", "channel", "conversation", "stored_at", "fp", "folded_into"}
        seen = {}
        for x in recs.values():
            assert list(x) == ["conversation", "archived_at", "fields", "messages", "decisions", "merged"]
            assert x["archived_at"] == int(x["fields"]["archive_claimed_at"])
            assert all(isinstance(v, str) for v in x["fields"].values())
            assert {"archive_claim", "archive_file", "archive_tried", "archive_claimed_at"} <= set(x["fields"])
            assert x["decisions"], "every routed conversation has its decisions"
            for c in [x] + x["merged"]:
                if c is not x:
                    assert list(c) == ["conversation", "fields", "messages", "decisions"]
                for m in c["messages"]:
                    assert set(m) <= msg_keys and {"id", "json", "identity", "channel", "conversation",
                                                   "stored_at"} <= set(m), m
                    assert json.loads(m["json"]) == next(s for s in msgs if s["id"] == m["id"])
                    seen[m["id"]] = m
                for d in c["decisions"]:
                    assert isinstance(d, dict) and "at" in d
                    if d.get("tried"):  # whole: the plan's targets, even where Redis left them to tried
                        teams = [t["team"] for t in d["plan"]["targets"]]
                        assert teams[:len(d["tried"])] == [t["team"] for t in d["tried"]], d
        assert sorted(seen) == sorted(m["id"] for m in msgs)
        assert "fp" not in seen["m3"] and "fp" in seen["m1"]
        assert seen["m-copy"].get("folded_into") == "m25"

        # tombstone 0: nothing kept in Redis; omnictl, from another directory, searches the relative archive_dir
        assert not red.keys("omni:archived:*")
        day = os.path.join(archive, sorted(os.listdir(archive))[-1])
        out = subprocess.run([os.path.join(BIN, "omnictl"), "-c", r.config, "conversation", "show", live[0]],
                             capture_output=True, text=True, cwd="/")
        assert (out.returncode, out.stdout) == (0, f"conversation {live[0]}: archived to {day}\n  its record is the "
                                                f'line starting {{"conversation":"{live[0]}", (docs/archive.md)\n'), out
    finally:
        r.stop()


def test_retention_resolved_at_its_bound_and_a_forgotten_id_joins_the_open_conversation(tmp_path, redis_server):
    """retention.resolved on the test clock: a conversation resolved a minute less than it ago stays while one
    resolved a minute more ago is archived (by the same look); once its time is up it goes too. Its message id,
    stored more than retention.dedup before the archive, leaves no marker: sent again, it is stored as a new
    message in the customer's open conversation (docs/archive.md, "Deduplication, and after it")."""
    r = Router(str(tmp_path / "run"), redis_server.address, env={"OMNIROUTER_TEST_CLOCK": "1"},
               extra={"retention": {"dedup": "1h", "resolved": "2h", "archive_dir": str(tmp_path / "arch")}}).start()
    red = redis_server.client()
    try:
        c1 = message("c1", frm="cy@example.com", text="an older question, resolved first")
        a1 = message("a1", frm="ax@example.com", text="first question about my bill")
        submit(r.endpoint, str(tmp_path / "s1"), [c1])
        old = red.hget("omni:msg:c1", "conversation")
        r.ctl("conversation", "resolve", old)
        r.ctl("clock", "advance", "2m")
        submit(r.endpoint, str(tmp_path / "s2"), [a1])
        first = red.hget("omni:msg:a1", "conversation")
        r.ctl("conversation", "resolve", first)
        r.ctl("clock", "advance", "1h")
        submit(r.endpoint, str(tmp_path / "s3"), [message("b1", frm="ax@example.com", text="another topic entirely")])
        open_one = red.hget("omni:msg:b1", "conversation")
        r.ctl("clock", "advance", "59m")  # old: 2 h 1 min since resolved; first: 1 h 59 min
        wait_for(lambda: not red.exists("omni:conversation:" + old), 20, "the older one archived")
        assert red.hget("omni:conversation:" + first, "status") == "resolved"
        assert red.zscore("omni:archive:due", first) is not None
        r.ctl("clock", "advance", "2m")
        wait_for(lambda: not red.exists("omni:conversation:" + first), 20, "archived once its time is up")
        assert not red.exists("omni:seen:a1")  # stored 2 h 1 min before: past retention.dedup
        submit(r.endpoint, str(tmp_path / "s4"), [a1])
        assert red.hget("omni:msg:a1", "conversation") == open_one
        assert red.lrange(f"omni:conversation:{open_one}:messages", 0, -1) == ["b1", "a1"]
        stats = red.hgetall("omni:stats")
        assert stats["messages"] == "4" and "duplicates" not in stats, stats
        assert [x["conversation"] for x in records(str(tmp_path / "arch"))] == [old, first]
    finally:
        r.stop()
