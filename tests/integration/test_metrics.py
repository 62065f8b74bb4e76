"""GET /metrics from the router: the Prometheus text format (parsed by prometheus_client, an independent
implementation), the router's counters as traffic moves them, and per-team gauges read from Redis."""
import urllib.error
import urllib.request

from harness import Peer, Router, free_port, http_get, message, scrape, scrape_when_up, wait_for

POLICY = """
calendars:
  - {name: always, timezone: UTC, hours: ["mon-sun 00:00-24:00"]}
teams:
  - {name: core, kind: in-house, calendar: always}
agents:
  - {id: alice, teams: [core], capacity: {email: 1}}
routing:
  rules:
    - {name: all, targets: [{team: core}], queue: core}
sla:
  targets:
    - {first_response: 1h}
"""


def test_metrics_follow_the_traffic(tmp_path, redis_server):
    port = free_port()
    r = Router(str(tmp_path), redis_server.address, policy=POLICY,
               router_extra={"metrics_listen": f"127.0.0.1:{port}"}).start()
    r.redis = redis_server.client()
    peer = Peer(r.endpoint)
    try:
        m = scrape(port)
        assert m[("omnirouter_messages_received_total", ())] == 0
        assert m[("omnirouter_redis_up", ())] == 1
        for i in range(3):  # alice takes one, two wait on core
            peer.submit(message(f"m{i}", channel="email", frm=f"c{i}@example.com", text="hello"))
            assert peer.recv() == ["OMNI/1", "ACK", f"m{i}"]
        peer.submit(message("m0", channel="email", frm="c0@example.com", text="hello"))
        assert peer.recv() == ["OMNI/1", "ACK", "m0"]
        peer.submit(message("bad", channel="email", frm="not an address", text="x"))
        assert peer.recv()[1] == "NACK"
        m = wait_for(lambda: (lambda s: s if s.get(("omnirouter_queue_depth",
                                                      (("priority", "normal"), ("team", "core")))) == 2 else None)(
            scrape(port)), 15, "the queue depth gauge shows the two waiting")
        assert m[("omnirouter_messages_received_total", ())] == 5
        assert m[("omnirouter_messages_stored_total", (("channel", "email"),))] == 3
        assert m[("omnirouter_messages_stored_total", (("channel", "sms"),))] == 0
        assert m[("omnirouter_messages_duplicate_total", ())] == 1
        assert m[("omnirouter_messages_nacked_total", (("field", "from.id"),))] == 1
        assert m[("omnirouter_routing_decisions_total", (("outcome", "assigned"),))] == 1
        assert m[("omnirouter_routing_decisions_total", (("outcome", "queued"),))] == 2
        assert m[("omnirouter_routing_latency_seconds_count", ())] == 3
        assert m[("omnirouter_routing_latency_seconds_bucket", (("le", "+Inf"),))] == 3
        assert m[("omnirouter_team_holding", (("team", "core"),))] == 1
        assert m[("omnirouter_team_assignments_total", (("kind", "in-house"), ("team", "core")))] == 1
        assert m[("omnirouter_queue_oldest_wait_seconds", (("team", "core"),))] >= 0
        # time to breach: the two waiting are due an hour after they arrived
        assert 3000 < m[("omnirouter_queue_next_breach_seconds", (("team", "core"),))] <= 3600
        assert m[("omnirouter_agent_holding", (("agent", "alice"),))] == 1
        assert m[("omnirouter_agent_assignments_total", (("agent", "alice"),))] == 1
        assert m[("omnirouter_agent_available", (("agent", "alice"),))] == 1
        assert m[("omnirouter_identities_linked_total", ())] == 0
        r.ctl("customer", "link", "c1@example.com", "c2@example.com")
        wait_for(lambda: scrape(port).get(("omnirouter_identities_linked_total", ())) == 1, 15,
                 "the link counted")
        # the SLA report's running totals per team: alice's conversation answered in time, resolved, surveyed
        conv = r.redis.hget("omni:msg:m0", "conversation")
        r.ctl("conversation", "respond", conv)
        r.ctl("conversation", "resolve", conv)
        r.ctl("conversation", "survey", conv, "--csat", "4", "--ces", "6", "--nps", "3")
        core = (("team", "core"),)
        m = wait_for(lambda: (lambda s: s if s.get(("omnirouter_team_resolved_total", core)) == 1 else None)(
            scrape(port)), 15, "the team's resolution counted")
        assert m[("omnirouter_team_first_responses_total", core)] == 1
        assert 0 <= m[("omnirouter_team_first_response_seconds_total", core)] < 60
        assert m[("omnirouter_team_sla_total", (("outcome", "met"), ("team", "core")))] == 1
        assert m[("omnirouter_team_sla_total", (("outcome", "breached"), ("team", "core")))] == 0
        assert m[("omnirouter_team_first_contact_resolved_total", core)] == 1
        for measure, score in (("csat", 4), ("ces", 6), ("nps", 3)):
            assert m[("omnirouter_team_survey_answers_total", (("measure", measure), ("team", "core")))] == 1
            if measure != "nps":
                assert m[("omnirouter_team_survey_score_total", (("measure", measure), ("team", "core")))] == score
        assert m[("omnirouter_team_csat_satisfied_total", core)] == 1
        assert m[("omnirouter_team_nps_answers_total", (("group", "detractor"), ("team", "core")))] == 1
        assert m[("omnirouter_team_nps_answers_total", (("group", "promoter"), ("team", "core")))] == 0
        assert m[("omnirouter_surveys_total", ())] == 1
        assert r.redis.hget("omni:team:core", "report:resolved") == "1"  # docs/redis.md
        # and the same for the agent who held it (alice: the first of the three)
        assert r.redis.hget(f"omni:conversation:{conv}", "resolved_owner") == "agent:alice"
        alice = (("agent", "alice"),)
        assert m[("omnirouter_agent_first_responses_total", alice)] == 1
        assert m[("omnirouter_agent_sla_total", (("agent", "alice"), ("outcome", "met")))] == 1
        assert m[("omnirouter_agent_resolved_total", alice)] == 1
        assert m[("omnirouter_agent_first_contact_resolved_total", alice)] == 1
        assert m[("omnirouter_agent_survey_answers_total", (("agent", "alice"), ("measure", "nps")))] == 1
        assert m[("omnirouter_agent_survey_score_total", (("agent", "alice"), ("measure", "ces")))] == 6
        assert m[("omnirouter_agent_nps_answers_total", (("agent", "alice"), ("group", "detractor")))] == 1
        assert r.redis.hget("omni:agent:alice", "report:resolved") == "1"
        version = [k for k in m if k[0] == "omnirouter_config_info"][0][1][0][1]
        assert len(version) == 12
        # anything but GET /metrics is refused plainly
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
            raise AssertionError("a 404 was expected")
        except urllib.error.HTTPError as e:
            assert e.code == 404
        try:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/metrics", data=b"x"), timeout=5)
            raise AssertionError("a 405 was expected")
        except urllib.error.HTTPError as e:
            assert e.code == 405 and e.headers["Allow"] == "GET, HEAD"
    finally:
        peer.close()
        r.stop()


def test_healthz_and_readyz_follow_redis(tmp_path, redis_server):
    port = free_port()
    r = Router(str(tmp_path), redis_server.address, router_extra={"metrics_listen": f"127.0.0.1:{port}"}).start()
    try:
        assert http_get(port, "/healthz") == (200, "ok\n")
        assert http_get(port, "/readyz") == (200, "ready\n")
        redis_server.stop()
        status = wait_for(lambda: (lambda g: g if g[0] == 503 else None)(http_get(port, "/readyz")), 15,
                          "/readyz answering 503 while Redis is away")
        assert status[1] == "not ready: redis unreachable: answering BUSY\n", status
        assert http_get(port, "/healthz") == (200, "ok\n")  # alive all the same: not a restart's business
        redis_server.start()
        wait_for(lambda: http_get(port, "/readyz")[0] == 200, 30, "/readyz ready again")
    finally:
        r.stop()


def test_a_bad_metrics_address_is_a_config_error(tmp_path):
    r = Router(str(tmp_path), router_extra={"metrics_listen": "localhost:http"})
    out = r.ctl("status", check=False)
    assert out.returncode == 1 and "router.metrics_listen" in out.stderr and "numeric" in out.stderr, out.stderr
    # a port past 65535 is refused, not bound modulo 65536 (99999 would listen on 34463)
    r = Router(str(tmp_path / "big"), router_extra={"metrics_listen": "127.0.0.1:99999"})
    out = r.ctl("status", check=False)
    assert out.returncode == 1 and "127.0.0.1:99999: the port must be numeric, 0 to 65535" in out.stderr, out.stderr


def test_a_connector_serves_its_metrics(tmp_path, redis_server):
    """The connector runtime's GET /metrics (omni-template as the example of every connector)."""
    import os
    import subprocess
    from harness import BIN
    r = Router(str(tmp_path), redis_server.address).start()
    port = free_port()
    src = tmp_path / "in.txt"
    src.write_text("")
    conf = tmp_path / "template.yaml"
    conf.write_text(f"router:\n  endpoint: {r.endpoint}\nspool_dir: {tmp_path}/tspool\npoll_ms: 20\n"
                    f"metrics_listen: 127.0.0.1:{port}\ntemplate:\n  path: {src}\n")
    proc = subprocess.Popen([os.path.join(BIN, "omni-template"), "--config", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        with open(src, "a") as f:
            f.write("ann@example.com\thello\nbob@example.com\tagain\n")
        label = (("connector", "template"),)
        m = wait_for(lambda: (lambda s: s if s and s.get(("omnirouter_connector_messages_acked_total", label)) == 2
                              else None)(scrape_when_up(port)), 20, "both lines acknowledged, as the metrics say")
        assert m[("omnirouter_connector_messages_submitted_total", label)] == 2
        assert m[("omnirouter_connector_spooled_messages", label)] == 0
        assert m[("omnirouter_connector_source_up", label)] == 1
        assert m[("omnirouter_connector_polls_total", label)] >= 1
        assert http_get(port, "/healthz") == (200, "ok\n") and http_get(port, "/readyz") == (200, "ready\n")
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        r.stop()
    bad = subprocess.run([os.path.join(BIN, "omni-template"), "--check-config", "--config", str(conf),
                          "-D", "metrics_listen=example.com:80"], capture_output=True, text=True)
    assert bad.returncode == 1 and "metrics_listen" in bad.stderr, bad.stderr
