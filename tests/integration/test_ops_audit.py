"""Operating the router as docs/operations.md and docs/logging.md describe it, checked from outside: /metrics
exactly as the table documents it (names, types, labels and their values), omnictl reload and status around a
restart, reloads with good and bad files, stopping."""
import os
import re
import signal
import socket

from harness import ROOT, Peer, Router, free_port, message, wait_for
from prometheus_client.parser import text_string_to_metric_families
import urllib.error
import urllib.request

POLICY = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
classification:
  default_category: basic
teams:
  - {name: core, kind: in-house, calendar: always}
  - {name: acme, kind: outsourced, calendar: always, contract: {categories: [basic], max_concurrent: 0}}
agents:
  - {id: alice, teams: [core], capacity: {email: 1}}
routing:
  rules:
    - {name: all, targets: [{team: core}], queue: core}
sla:
  targets:
    - {first_response: 1h}
"""


def documented_metrics():
    """The router's table in docs/operations.md "Metrics": {name: (type, label names, {label: documented values})}."""
    text = open(os.path.join(ROOT, "docs", "operations.md")).read()
    table = text[text.index("| metric | type | labels | what |"):text.index("The same listener answers")]
    rows = [r for r in table.splitlines()[2:] if r.startswith("| `")]
    out, team_labels = {}, {}

    def outside_parens(s):
        depth, kept = 0, ""
        for ch in s:
            depth += ch == "("
            if depth == 0:
                kept += ch
            depth -= ch == ")" and depth > 0
        return kept

    def values(col):
        """label -> the values named in the parentheses right after it, when they are plain words."""
        found = {}
        for m in re.finditer(r"`(\w+)` \(([^)]*)\)", col):
            vals = [v.strip().split(":")[0].strip("` ") for v in re.split(r"[,;]", m.group(2))]
            if all(re.fullmatch(r"[a-z-]+", v) for v in vals):
                found[m.group(1)] = set(vals)
        return found

    for row in rows:
        cols = [c.strip() for c in row.strip("|").split("|")]
        names_col, kind, labels_col = cols[0], cols[1], cols[2]
        labels = set(re.findall(r"`(\w+)`", outside_parens(labels_col)))
        vals = values(labels_col)
        if "as the team's" in labels_col:  # the agent row: each name with its own label in parentheses
            for m in re.finditer(r"`(omnirouter_\w+)`(?: \(`(\w+)`\))?", names_col):
                name = m.group(1)
                team = name.replace("omnirouter_agent_", "omnirouter_team_")
                extra = set(team_labels.get(team, ((), {}))[0]) - {"team"}
                if m.group(2):
                    extra.add(m.group(2))
                out[name] = (kind, frozenset(labels | extra), team_labels.get(team, ((), {}))[1])
            continue
        for name in re.findall(r"`(omnirouter_\w+)`", names_col):
            out[name] = (kind, frozenset(labels), vals)
            team_labels[name] = (labels, vals)
    return out


def families(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return {f.name: f for f in text_string_to_metric_families(r.read().decode())}


def test_metrics_are_exactly_the_documented_table(tmp_path, redis_server):
    """Every metric of the table is served with its documented type and labels (and only the documented label
    values); nothing undocumented is served."""
    doc = documented_metrics()
    assert len(doc) > 50, sorted(doc)
    port = free_port()
    r = Router(str(tmp_path), redis_server.address, policy=POLICY,
               router_extra={"metrics_listen": f"127.0.0.1:{port}", "log_level": "info"}).start()
    peer = Peer(r.endpoint)
    try:
        for i in range(2):  # alice takes one, one waits on core with its SLA: every gauge has a sample
            peer.submit(message(f"m{i}", frm=f"c{i}@example.com"))
            assert peer.recv() == ["OMNI/1", "ACK", f"m{i}"]
        peer.submit(message("bad", frm="not an address"))
        assert peer.recv()[1] == "NACK"
        fams = wait_for(lambda: (lambda f: f if f["omnirouter_queue_next_breach_seconds"].samples else None)(
            families(port)), 15, "the waiting work's time to breach")
        # prometheus_client names a counter family without its _total
        served = {(n + "_total" if f.type == "counter" else n): f for n, f in fams.items()}
        assert set(served) == set(doc), (f"served, not documented: {sorted(set(served) - set(doc))}; "
                                         f"documented, not served: {sorted(set(doc) - set(served))}")
        for name, (kind, labels, vals) in doc.items():
            fam = served[name]
            assert fam.type == kind, f"{name}: served as {fam.type}, documented as {kind}"
            assert fam.samples, f"{name}: no sample"
            for s in fam.samples:
                got = set(s.labels) - ({"le"} if kind == "histogram" else set())
                assert got == labels, f"{name}: labels {sorted(got)}, documented {sorted(labels)}"
                for label, allowed in vals.items():
                    assert s.labels[label] in allowed, f"{name}: {label}={s.labels[label]} not in {allowed}"
        kinds = {s.labels["kind"] for s in served["omnirouter_team_assignments_total"].samples}
        assert kinds == {"in-house", "partner"}, kinds
    finally:
        peer.close()
        r.stop()


def router_names(client):
    return client.zrange("omni:routers", 0, -1)


def test_omnictl_reload_and_status_right_after_a_restart(tmp_path, redis_server):
    """A router stopped a moment ago leaves its entry in Redis for a few seconds (omnictl(1): "named and not
    signalled"); a restart followed at once by omnictl reload is a success: exit 0, the new router applied, the
    old entry named. omnictl status does not count the stopped one as alive."""
    client = redis_server.client()
    old = Router(str(tmp_path), redis_server.address, policy=POLICY, router_extra={"log_level": "info"}).start()
    old_name = f"{socket.gethostname()}:{old.proc.pid}"
    wait_for(lambda: old_name in router_names(client), 10, "the first router's entry")
    old.stop()
    new = Router(str(tmp_path), redis_server.address, policy=POLICY, router_extra={"log_level": "info"}).start()
    new_name = f"{socket.gethostname()}:{new.proc.pid}"
    try:
        wait_for(lambda: new_name in router_names(client), 10, "the new router's entry")
        assert old_name in router_names(client)  # still there: its TTL has not passed
        out = new.ctl("reload", check=False)
        assert out.returncode == 0, out
        assert re.search(rf"router {re.escape(new_name)}: applied version [0-9a-f]{{12}}\n", out.stdout), out
        assert f"router {old_name}: " in out.stdout and "not signalled" in out.stdout, out
        st = new.ctl("status").stdout
        if old_name in router_names(client):
            assert "routers: 1 alive" in st, st
            assert re.search(rf"{re.escape(old_name)}  pid \d+  .*stopped", st), st
    finally:
        new.stop()


def test_omnictl_refuses_a_redis_that_refuses_it(tmp_path):
    """A Redis that wants a password the file does not give (or another one), or a database it does not have:
    every command said "no customer", "no router", printed the error text as figures with exit 0, or spun in
    watch. omnictl(1): no Redis reachable exits 1 with that error; the error names the key to look at."""
    import subprocess
    import time
    from harness import BIN, RedisServer
    server = RedisServer(str(tmp_path / "redis"), extra=["--requirepass", "s3cret"])
    os.makedirs(server.dir, exist_ok=True)
    server.proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", server.sock, "--dir", server.dir,
                                    "--appendonly", "yes", "--appendfsync", "always", "--requirepass", "s3cret",
                                    "--logfile", str(tmp_path / "redis" / "redis.log")], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(server.sock), 10, "redis-server's socket")
        r = Router(str(tmp_path), server.address)  # its file only: no password
        text = open(r.config).read()

        def ctl(*args):
            start = time.monotonic()
            out = subprocess.run([os.path.join(BIN, "omnictl"), "-c", r.config, *args], capture_output=True,
                                 text=True, timeout=20)
            assert time.monotonic() - start < 10, out
            return out

        for args in (["status"], ["customer", "show", "ann@example.com"], ["reload"], ["token", "list"],
                     ["queue"], ["watch"]):
            out = ctl(*args)
            assert out.returncode == 1, (args, out)
            assert re.search(r"^omnictl: redis \(unix:\S+\): NOAUTH .*\(redis\.password in \S+router\.yaml\)$",
                             out.stderr.strip()), (args, out)
            assert out.stdout == "" or "NOAUTH" not in out.stdout, (args, out)
        with open(r.config, "w") as f:
            f.write(text.replace("redis:\n", "redis:\n  password: \"wrong\"\n", 1))
        out = ctl("status")
        assert out.returncode == 1 and re.search(r"(WRONGPASS|invalid password).*\(redis\.password in ", out.stderr), out
        with open(r.config, "w") as f:
            f.write(text.replace("redis:\n", "redis:\n  password: \"s3cret\"\n  database: 15\n", 1))
        out = ctl("status")
        assert out.returncode == 0 and "routers: 0 alive" in out.stdout, out
    finally:
        server.proc.terminate()
        server.proc.wait(timeout=15)


def test_a_connectors_metrics_are_exactly_its_documented_table(tmp_path, redis_server):
    """docs/operations.md "Connectors": every metric of that table, of its type, each sample labelled `connector`
    with the connector's name, and nothing else (omni-template, the runtime every connector shares)."""
    import subprocess
    from harness import BIN, scrape_when_up
    text = open(os.path.join(ROOT, "docs", "operations.md")).read()
    table = text[text.index("### Connectors"):text.index("## Beyond one machine")]
    doc = {}
    for row in table.splitlines():
        if row.startswith("| `"):
            cols = [c.strip() for c in row.strip("|").split("|")]
            for name in re.findall(r"`(omnirouter_\w+)`", cols[0]):
                doc[name] = cols[1]
    assert len(doc) == 9, doc
    r = Router(str(tmp_path), redis_server.address, router_extra={"log_level": "info"}).start()
    port = free_port()
    src = tmp_path / "in.txt"
    src.write_text("")
    conf = tmp_path / "template.yaml"
    conf.write_text(f"router:\n  endpoint: {r.endpoint}\nspool_dir: {tmp_path}/tspool\npoll_ms: 20\n"
                    f"metrics_listen: 127.0.0.1:{port}\ntemplate:\n  path: {src}\n")
    proc = subprocess.Popen([os.path.join(BIN, "omni-template"), "--config", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: scrape_when_up(port), 20, "the connector's metrics")
        served = {(n + "_total" if f.type == "counter" else n): f for n, f in families(port).items()}
        assert set(served) == set(doc), (sorted(set(served) - set(doc)), sorted(set(doc) - set(served)))
        for name, kind in doc.items():
            assert served[name].type == kind, (name, served[name].type, kind)
            assert served[name].samples and all(s.labels == {"connector": "template"} for s in served[name].samples)
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        r.stop()


def test_omnictl_reload_of_a_file_that_moved_the_embedded_redis_names_where_it_looked(tmp_path):
    """With the embedded Redis, omnictl finds it under router.state_dir: a file that changed it finds no Redis,
    says where it looked, exits 1 and signals nothing (docs/operations.md "Reload and stop")."""
    r = Router(str(tmp_path), None, router_extra={"log_level": "info"}).start()
    try:
        wait_for(lambda: "routers: 1 alive" in r.ctl("status").stdout, 10, "the router's entry")
        text = open(r.config).read()
        with open(r.config, "w") as f:
            f.write(text.replace("router-state", "router-state2"))
        out = r.ctl("reload", check=False)
        assert out.returncode == 1, out
        moved = os.path.join(str(tmp_path), "router-state2", "redis", "redis.sock")
        assert out.stderr.startswith(f"omnictl: cannot reach Redis (embedded, unix:{moved} in router.state_dir): "), out
        assert "reload:" not in r.log()  # nothing signalled
    finally:
        r.stop()


def test_omnictl_reload_says_at_once_when_a_router_stops_before_it_answers(tmp_path, redis_server):
    """A router killed between omnictl's SIGHUP and its answer never answers: omnictl says so when its pid is
    gone instead of waiting out the 10 s, and exits 1."""
    import subprocess
    import time
    from harness import BIN
    r = Router(str(tmp_path), redis_server.address, router_extra={"log_level": "info"}).start()
    client = redis_server.client()
    name = f"{socket.gethostname()}:{r.proc.pid}"
    try:
        wait_for(lambda: name in router_names(client), 10, "the router's entry")
        r.proc.send_signal(signal.SIGSTOP)  # it cannot answer: the SIGHUP waits, pending

        def hup_pending():
            with open(f"/proc/{r.proc.pid}/status") as f:
                pending = re.search(r"^ShdPnd:\s*([0-9a-f]+)$", f.read(), re.M).group(1)
            return int(pending, 16) & (1 << (signal.SIGHUP - 1))

        start = time.monotonic()
        ctl = subprocess.Popen([os.path.join(BIN, "omnictl"), "-c", r.config, "reload"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        wait_for(hup_pending, 10, "omnictl's SIGHUP pending at the stopped router")
        r.kill()
        out, err = ctl.communicate(timeout=20)
        assert ctl.returncode == 1, (out, err)
        assert f"router {name}: stopped before it answered (see its log)\n" in out, (out, err)
        assert time.monotonic() - start < 6, "omnictl waited out its 10 s for a router that was gone"
    finally:
        r.kill()


def test_a_router_is_in_redis_when_it_says_ready(tmp_path, redis_server):
    """`systemctl start omnirouted && omnictl status` (or reload) must find the router: READY=1 and its "ready"
    line come once its entry (omni:router:<name>) is written, not a tick later (a slow tick shows the gap)."""
    client = redis_server.client()
    r = Router(str(tmp_path), redis_server.address, policy=POLICY, router_extra={"log_level": "info"})
    with open(r.config) as f:
        text = f.read()
    with open(r.config, "w") as f:
        f.write(text.replace("  tick_ms: 20\n", "  tick_ms: 1000\n"))
    r.start()
    try:
        name = f"{socket.gethostname()}:{r.proc.pid}"
        assert client.exists(f"omni:router:{name}") and name in router_names(client)
        st = r.ctl("status").stdout
        assert "routers: 1 alive" in st and name in st, st
    finally:
        r.stop()


def test_the_metrics_line_names_the_port_bound_and_a_long_path_keeps_the_whole_reload_outcome(tmp_path,
                                                                                               redis_server):
    """router.metrics_listen with port 0 binds a port the system chooses: the log line names that port (it said
    :0), which answers. A config file under a long path: omnictl status shows a refused reload's whole outcome,
    running version included (it was cut at 160 bytes)."""
    deep = tmp_path / ("d" * 60) / ("e" * 60) / ("f" * 60)
    r = Router(str(deep), redis_server.address, policy=POLICY, endpoint=f"ipc://{tmp_path}/i.sock",
               router_extra={"log_level": "info", "metrics_listen": "127.0.0.1:0"}).start()
    try:
        port = int(r.wait_log(r"metrics: GET http://127\.0\.0\.1:(\d+)/metrics", 10).group(1))
        assert port != 0 and "omnirouter_messages_received_total" in \
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        with open(r.config) as f:
            good = f.read()
        with open(r.config, "w") as f:
            f.write(good + "bogus_key: 1\n")
        os.kill(r.proc.pid, signal.SIGHUP)  # omnictl reload would read the bad file itself and stop there
        r.wait_log(r"reload refused: 1 error in", 10)
        with open(r.config, "w") as f:
            f.write(good)  # for omnictl
        st = wait_for(lambda: (lambda o: o if "refused" in o else None)(r.ctl("status").stdout), 10,
                      "the refused reload in omnictl status")
        assert re.search(rf"refused: 1 error in {re.escape(r.config)}; running version [0-9a-f]{{12}}", st), st
    finally:
        r.stop()


def test_readyz_says_stopping_while_a_stop_answers_what_is_in_flight(tmp_path, redis_server):
    """docs/operations.md: /readyz is 503 `not ready: stopping: answering BUSY` during the seconds a stop waits
    for Redis to answer the messages in flight (it said "redis durability not verified, or stopping")."""
    port = free_port()
    r = Router(str(tmp_path), redis_server.address, policy=POLICY,
               router_extra={"log_level": "info", "metrics_listen": f"127.0.0.1:{port}"}).start()
    peer = Peer(r.endpoint)

    def readyz():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    try:
        assert readyz()[0] == 200
        redis_server.proc.send_signal(signal.SIGSTOP)  # the message below stays in flight
        peer.submit(message("stop-1"))
        os.kill(r.proc.pid, signal.SIGTERM)
        r.wait_log(r"shutting down", 5)
        status, body = wait_for(lambda: (lambda s: s if s[0] == 503 and "stopping" in s[1] else None)(readyz()), 3,
                                "/readyz saying stopping")
        assert body == "not ready: stopping: answering BUSY\n", body
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
        peer.close()
        r.stop()


def test_an_omnictl_option_given_twice_is_wrong_usage(tmp_path, redis_server):
    """omnictl(1) EXIT STATUS: an option of a command given twice exits 2 (which one was meant?), nothing done;
    as `conversation survey` did, the customer commands and the report do too (the last one used to win)."""
    client = redis_server.client()
    r = Router(str(tmp_path), redis_server.address, policy=POLICY, router_extra={"log_level": "info"}).start()
    try:
        for args, said in (
                (("customer", "link", "email:a@x.io", "email:b@x.io", "--by", "ann", "--by", "bob"), "--by given twice"),
                (("customer", "link", "email:a@x.io", "email:b@x.io", "--note", "x", "--note", "y"),
                 "--note given twice"),
                (("customer", "unlink", "email:a@x.io", "email:b@x.io", "--by", "a", "--by", "b"), "--by given twice"),
                (("customer", "tier", "email:a@x.io", "vip", "--by", "a", "--by", "b"), "--by given twice"),
                (("report", "--json", "--json"), "omnictl: report [--json]"),
                (("report", "--days", "2", "--days", "3"), "omnictl: report [--json]")):
            out = r.ctl(*args, check=False)
            assert out.returncode == 2 and said in out.stderr and out.stdout == "", (args, out)
        assert not client.keys("omni:identity:*") and not client.keys("omni:customer:*")  # nothing was done
        ok = r.ctl("customer", "link", "email:a@x.io", "email:b@x.io", "--by", "ann", "--note", "same person")
        assert ok.returncode == 0
    finally:
        r.stop()


def test_the_test_clock_moves_only_under_its_switch(tmp_path, redis_server):
    """omnictl(1) clock advance: omnictl must run with OMNIROUTER_TEST_CLOCK=1, as the routers it moves; without
    it, exit 2 and no offset written (else the API's and views' time would move and the routers' not)."""
    client = redis_server.client()
    r = Router(str(tmp_path), redis_server.address, policy=POLICY, router_extra={"log_level": "info"}).start()
    try:
        out = r.ctl("clock", "advance", "1h", check=False)
        assert out.returncode == 2 and "OMNIROUTER_TEST_CLOCK=1" in out.stderr, out
        assert not client.exists("omni:clock:offset")
        r.env = dict(r.env, OMNIROUTER_TEST_CLOCK="1")
        assert r.ctl("clock", "advance", "1h").stdout == "test clock offset now 3600000 ms\n"
    finally:
        r.stop()
