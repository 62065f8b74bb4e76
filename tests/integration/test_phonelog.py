"""omni-phonelog and the Python example connector (docs/examples/omni_connector.py) against a real
omnirouted and redis-server.

Written with the connector SDK; it relies only on the `router` fixture of conftest.py (a running
omnirouted with .endpoint, and .redis, a client of its Redis) and on harness.py's BIN, ROOT and wait_for.
"""
import json
import os
import re
import shutil
import signal
import subprocess

from harness import BIN, ROOT, Router, stored_count, wait_for

FIXTURE = os.path.join(ROOT, "tests", "unit", "phonelog", "fixtures", "asterisk-Master.sample.csv")
EXAMPLE = os.path.join(ROOT, "docs", "examples", "omni_connector.py")
# The fixture's calls that are callback work (the first one was answered: skipped by default).
CALLBACK_IDS = ["phone:pbx:1763630411.3", "phone:pbx:1763631115.5", "phone:pbx:1763632920.7",
                "phone:pbx:1763633740.9"]


def cdr(uniqueid, caller="+14155550199", disposition="NO ANSWER"):
    """One 18-field Asterisk Master.csv line."""
    return (f'"","{caller}","6000","from-pstn","""X"" <{caller}>","PJSIP/t","","Dial","","2026-11-21 14:03:12",,'
            f'"2026-11-21 14:03:30",18,0,"{disposition}","DOCUMENTATION","{uniqueid}",""\n')


class Phonelog:
    """omni-phonelog following tmp/Master.csv, its output in a log file the test can read."""

    def __init__(self, tmp_path, endpoint, start="beginning", answered="skip"):
        self.dir = str(tmp_path)
        self.csv = os.path.join(self.dir, "Master.csv")
        self.config = os.path.join(self.dir, "phonelog.yaml")
        self.log_path = os.path.join(self.dir, "phonelog.log")
        with open(self.config, "w") as f:
            f.write(f"router:\n  endpoint: \"{endpoint}\"\n  resend_ms: 500\n"
                    "spool_dir: spool\npoll_ms: 50\nlog_level: debug\ndefault_country: FR\n"
                    f"phonelog:\n  path: Master.csv\n  start: {start}\n  answered: {answered}\n")
        self.proc = None

    def start(self):
        check = subprocess.run([os.path.join(BIN, "omni-phonelog"), "--config", self.config, "--check-config"],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        before = self.output().count(" info: started: ") if os.path.exists(self.log_path) else 0
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([os.path.join(BIN, "omni-phonelog"), "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        # started: its signals are its own from then on (a SIGTERM before that ends it as the default does)
        wait_for(lambda: self.output().count(" info: started: ") > before or self.proc.poll() is not None, 30,
                 "omni-phonelog started")
        return self

    def output(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        """SIGTERM: the connector must exit 0 on its own."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        self.log.close()
        assert rc == 0, f"omni-phonelog exited {rc}:\n{self.output()}"


def stored(router, id):
    return router.redis.hgetall(f"omni:msg:{id}")


def wait_stored(router, ids, conn):
    def all_there():
        assert conn.proc.poll() is None, f"omni-phonelog exited:\n{conn.output()}"
        return all(router.redis.exists(f"omni:msg:{i}") for i in ids)
    wait_for(all_there, 20, f"messages {ids}")


def test_phonelog_feeds_callbacks_through_rotation_and_restart(router, tmp_path):
    shutil.copy(FIXTURE, tmp_path / "Master.csv")
    conn = Phonelog(tmp_path, router.endpoint).start()
    try:
        wait_stored(router, CALLBACK_IDS, conn)
        assert not router.redis.exists("omni:msg:phone:pbx:1763630043.1")  # answered: skipped
        vm = stored(router, "phone:pbx:1763632920.7")
        assert vm["identity"] == "phone:+33612345678"  # national number, default_country FR
        doc = json.loads(vm["json"])
        assert doc["channel"] == "phone" and doc["meta"]["voicemail"] is True
        assert doc["meta"]["outcome"] == "voicemail" and doc["meta"]["callback"] is True
        assert doc["from"]["name"] == 'Ana "Nina" Ruiz'
        assert doc["meta"]["cdr_line"] == 4
        busy = json.loads(stored(router, "phone:pbx:1763631115.5")["json"])
        assert busy["from"]["name"] == "Acme, Ltd" and busy["meta"]["outcome"] == "busy"

        with open(tmp_path / "Master.csv", "a") as f:  # a malformed line never stops the feed
            f.write('"broken\n' + cdr("1763640000.1"))
        wait_stored(router, ["phone:pbx:1763640000.1"], conn)
        assert "Master.csv:6: malformed record skipped" in conn.output()

        # Rotation: rename, a new file, and a late line written to the old one.
        os.rename(tmp_path / "Master.csv", tmp_path / "Master.csv.1")
        (tmp_path / "Master.csv").write_text(cdr("1763650000.1"))
        with open(tmp_path / "Master.csv.1", "a") as f:
            f.write(cdr("1763640000.2"))
        wait_stored(router, ["phone:pbx:1763640000.2", "phone:pbx:1763650000.1"], conn)
    finally:
        conn.stop()

    # Restart: the saved position means nothing is read twice. What the stop left unanswered in the spool is
    # resent and folded by the router as duplicates: only those may be counted.
    left = int(re.findall(r"stopped; (\d+) message\(s\) wait in the spool", conn.output())[-1])
    duplicates = int(router.redis.hget("omni:stats", "duplicates") or 0)
    messages = stored_count(router.redis)
    with open(tmp_path / "Master.csv", "a") as f:
        f.write(cdr("1763650000.2", caller="0033 6 12 34 56 78", disposition="BUSY"))
    conn = Phonelog(tmp_path, router.endpoint).start()
    try:
        wait_stored(router, ["phone:pbx:1763650000.2"], conn)
        assert stored(router, "phone:pbx:1763650000.2")["identity"] == "phone:+33612345678"
        assert stored_count(router.redis) == messages + 1
        assert int(router.redis.hget("omni:stats", "duplicates") or 0) - duplicates <= left
    finally:
        conn.stop()


def sample_policy():
    """The policy sections of conf/omnirouter.yaml (from `calendars:` on), for a test router."""
    with open(os.path.join(ROOT, "conf", "omnirouter.yaml")) as f:
        text = f.read()
    return text[text.index("\ncalendars:\n"):]


def test_answered_calls_logged_are_recorded_by_the_sample_policy(tmp_path, redis_server):
    """docs/connectors.md, "Answered calls": with `answered: log` and the sample policy's answered-calls rule, an
    answered call from a caller with no open conversation is a resolved conversation in their history, nobody's
    work; their missed call after it is routed work; an answered call while that is open joins it."""
    router = Router(str(tmp_path / "r"), redis_server.address, policy=sample_policy()).start()
    router.redis = rd = redis_server.client()
    with open(FIXTURE) as f:
        (tmp_path / "Master.csv").write_text(f.readline())  # Jane Roe's answered call, 212 s
    conn = Phonelog(tmp_path, router.endpoint, answered="log").start()
    try:
        answered = "phone:pbx:1763630043.1"
        wait_stored(router, [answered], conn)
        assert json.loads(stored(router, answered)["json"])["text"].startswith("Answered call from ")
        conv = rd.hget(f"omni:msg:{answered}", "conversation")
        h = wait_for(lambda: (lambda h: h if h.get("status") != "open" else None)(
            rd.hgetall(f"omni:conversation:{conv}")), 10, "the answered call decided")
        assert h["status"] == "resolved" and h["resolved_by"] == "policy:answered-calls", h
        assert "owner" not in h and "queued_on" not in h, h
        assert "=> recorded, not work: rule answered-calls" in router.ctl("explain", answered).stdout

        with open(tmp_path / "Master.csv", "a") as f:
            f.write(cdr("1763640000.5", caller="+14155550101"))  # then a missed call: work
        missed = "phone:pbx:1763640000.5"
        wait_stored(router, [missed], conn)
        work = rd.hget(f"omni:msg:{missed}", "conversation")
        assert work != conv
        h = wait_for(lambda: (lambda h: h if h.get("status") != "open" else None)(
            rd.hgetall(f"omni:conversation:{work}")), 10, "the missed call routed")
        assert h["status"] in ("offered", "assigned", "queued") and h["rule"] != "answered-calls", h

        with open(tmp_path / "Master.csv", "a") as f:
            f.write(cdr("1763640000.6", caller="+14155550101", disposition="ANSWERED"))  # joins the open one
        again = "phone:pbx:1763640000.6"
        wait_stored(router, [again], conn)
        assert rd.hget(f"omni:msg:{again}", "conversation") == work
        after = rd.hgetall(f"omni:conversation:{work}")  # its routing unchanged
        assert [after.get(k) for k in ("status", "owner", "version", "rule")] == \
            [h.get(k) for k in ("status", "owner", "version", "rule")], (h, after)
        assert rd.hget("omni:stats", "recorded") == "1"
    finally:
        conn.stop()
        router.stop()


def test_cdr_variants_are_normalized_field_by_field(router, tmp_path, monkeypatch):
    """docs/connectors.md "omni-phonelog": records the fixture does not have, each checked field by field. A
    UTF-8 byte order mark at the start of the file, CRLF and LF, a name with a comma and doubled quotes, the
    caller in clid only, national, 00 and extension forms (default_country FR), an unknown disposition, a
    duration past 64 bits, a caller that is no number, a last line whose newline comes later; and one record
    whose fields are over the router's limits, which cost those fields, not the callback."""
    monkeypatch.setenv("TZ", "Europe/Paris")  # dates: local; the text carries the offset read (+01:00)
    q = lambda v: '"' + v.replace('"', '""') + '"'

    def rec(uid, src, clid, disp="NO ANSWER", dur="18", dst="6000", userfield=""):
        return ",".join(['""', q(src), q(dst), '"from-pstn"', q(clid), '"PJSIP/t-1"', '""', '"Dial"',
                         q("PJSIP/6000,30"), '"2026-11-21 14:03:12"', "", '"2026-11-21 14:03:30"', dur, "0", q(disp),
                         '"DOCUMENTATION"', q(uid), q(userfield)])
    long_name, long_field = "N" * 5000, "u" * 4000
    (tmp_path / "Master.csv").write_bytes(
        b"\xef\xbb\xbf" + rec("v.1", "01 42 68 53 00", '"Caf\u00e9 ""Le Zinc"", Paris" <01 42 68 53 00>').encode()
        + b"\r\n" + rec("v.2", "", '"Bob" <+44 20 7946 0958>', disp="BUSY", dur="99999999999999999999").encode()
        + b"\r\n" + rec("v.3", "0033 6 12 34 56 78 ext. 12", "", disp="SOMETHING_NEW").encode()
        + b"\n" + rec("v.4", "12", "").encode()
        + b"\n" + rec("v.5", "+14155550100", f'"{long_name}" <+14155550100>', dst="d" * 5000,
                       userfield=long_field).encode()
        + b"\n" + rec("v.6", "+33 6 12 34 56 79", "").encode())  # no newline yet
    conn = Phonelog(tmp_path, router.endpoint).start()
    try:
        wait_stored(router, ["phone:pbx:v.1", "phone:pbx:v.2", "phone:pbx:v.3", "phone:pbx:v.5"], conn)
        docs = {i: json.loads(stored(router, f"phone:pbx:v.{i}")["json"]) for i in (1, 2, 3, 5)}
        common = {"channel": "phone", "received_at": "2026-11-21T13:03:12.000Z", "to": "6000"}
        meta = {"callback": True, "voicemail": False, "billsec": 0, "dst": "6000", "pbx": "pbx",
                "cdr_file": str(tmp_path / "Master.csv"), "cdr_layout": "asterisk-18"}
        d = docs[1]
        assert {k: d[k] for k in common} == common, d
        assert d["from"] == {"id": "+33142685300", "name": 'Caf\u00e9 "Le Zinc", Paris'}, d
        assert d["text"] == "Missed call from +33142685300 at 2026-11-21 14:03:12 +01:00 (no answer); please call back"
        assert d["meta"] == dict(meta, outcome="missed", disposition="NO ANSWER", duration=18,
                                 caller_raw="01 42 68 53 00", uniqueid="v.1", cdr_line=1), d["meta"]
        d = docs[2]  # the caller from clid; a duration past 64 bits kept as written, not clamped
        assert d["from"] == {"id": "+442079460958", "name": "Bob"}, d
        assert d["text"] == "Missed call from +442079460958 at 2026-11-21 14:03:12 +01:00 (line busy); please call back"
        assert d["meta"] == dict(meta, outcome="busy", disposition="BUSY", duration="99999999999999999999",
                                 caller_raw="+44 20 7946 0958", uniqueid="v.2", cdr_line=2), d["meta"]
        d = docs[3]  # 00 and an extension; a disposition nobody knows: when in doubt, call back
        assert d["from"] == {"id": "+33612345678"}, d
        assert d["text"] == "Missed call from +33612345678 at 2026-11-21 14:03:12 +01:00 (call failed); please call back"
        assert d["meta"]["outcome"] == "failed" and d["meta"]["disposition"] == "SOMETHING_NEW", d["meta"]
        assert d["meta"]["caller_raw"] == "0033 6 12 34 56 78 ext. 12" and d["meta"]["cdr_line"] == 3, d["meta"]
        assert not router.redis.exists("omni:msg:phone:pbx:v.4")
        assert f'{tmp_path}/Master.csv:4: no message: caller "12" is not a phone number' in conn.output()
        d = docs[5]  # over the limits: the name, to and meta.dst left out, whole; the callback sent
        assert d["from"] == {"id": "+14155550100"} and "to" not in d and "dst" not in d["meta"], d["meta"].keys()
        assert d["meta"]["userfield"] == long_field and d["meta"]["outcome"] == "missed"
        assert "Master.csv:5: from.name is 5000 bytes, over the router's limit of 4096: left out" in conn.output()
        assert "malformed" not in conn.output() and "invalid message" not in conn.output(), conn.output()

        assert not router.redis.exists("omni:msg:phone:pbx:v.6")  # waits for its newline
        with open(tmp_path / "Master.csv", "ab") as f:
            f.write(b"\r\n" + rec("v.7", "06 12 34 56 80", "", disp="no_answer").encode() + b"\n")
        wait_stored(router, ["phone:pbx:v.6", "phone:pbx:v.7"], conn)
        assert stored(router, "phone:pbx:v.6")["identity"] == "phone:+33612345679"
        d = json.loads(stored(router, "phone:pbx:v.7")["json"])
        assert d["from"]["id"] == "+33612345680" and d["meta"]["outcome"] == "missed" and d["meta"]["cdr_line"] == 7
    finally:
        conn.stop()


def test_start_end_reads_a_file_that_appears_later_whole(router, tmp_path):
    """start: end skips the history of a file that is there at start; a Master.csv the PBX creates later
    is new, so the calls already in it when it is first seen are sent (issue #10)."""
    conn = Phonelog(tmp_path, router.endpoint, start="end").start()
    try:
        wait_for(lambda: "does not exist yet" in conn.output(), 20, "the connector looking for Master.csv")
        (tmp_path / "Master.csv").write_text(cdr("1763660000.1") + cdr("1763660000.2", disposition="BUSY"))
        wait_stored(router, ["phone:pbx:1763660000.1", "phone:pbx:1763660000.2"], conn)
        doc = json.loads(stored(router, "phone:pbx:1763660000.1")["json"])
        # the text's time carries the zone it was read in (the test runs the connector in its own TZ)
        assert "at 2026-11-21 14:03:12 +" in doc["text"] or "at 2026-11-21 14:03:12 -" in doc["text"], doc["text"]
    finally:
        conn.stop()


def test_country_codes_checked_at_load(tmp_path):
    """The router and the connector refuse UK where they read it, with file:line:column and the fix."""
    conf = tmp_path / "phonelog.yaml"
    conf.write_text("spool_dir: spool\ndefault_country: UK\nphonelog:\n  path: Master.csv\n")
    r = subprocess.run([os.path.join(BIN, "omni-phonelog"), "--config", str(conf), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert f'{conf}:2:18: default_country: "UK" is not an ISO 3166 alpha-2 country code (did you mean GB?)' \
        in r.stdout + r.stderr, r.stdout + r.stderr
    rconf = tmp_path / "omnirouter.yaml"
    rconf.write_text("identity:\n  default_country: UK\n")
    r = subprocess.run([os.path.join(BIN, "omnirouted"), "--check-config", str(rconf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert f'{rconf}:2:20: identity.default_country: "UK" is not an ISO 3166 alpha-2 country code (did you mean ' \
        'GB?)' in r.stdout + r.stderr, r.stdout + r.stderr
    conf.write_text("spool_dir: spool\ndefault_country: gb\nphonelog:\n  path: Master.csv\n")
    r = subprocess.run([os.path.join(BIN, "omni-phonelog"), "--config", str(conf), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_an_unusable_spool_dir_is_named_by_the_key_that_was_set(tmp_path):
    """spool_dir that cannot be made (a file in its path): exit 1 and an error naming spool_dir, the key the
    user set (state_dir only defaults to it), with the path and the reason."""
    (tmp_path / "afile").write_text("")
    conf = tmp_path / "phonelog.yaml"
    conf.write_text("spool_dir: afile/spool\nphonelog:\n  path: Master.csv\n")
    r = subprocess.run([os.path.join(BIN, "omni-phonelog"), "--config", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"omni-phonelog: spool_dir {tmp_path}/afile/spool: Not a directory" in r.stderr, r.stderr
    conf.write_text("spool_dir: spool\nstate_dir: afile/state\nphonelog:\n  path: Master.csv\n")
    r = subprocess.run([os.path.join(BIN, "omni-phonelog"), "--config", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"omni-phonelog: state_dir {tmp_path}/afile/state: Not a directory" in r.stderr, r.stderr


def run_example(router, spool, path):
    r = subprocess.run(["/usr/bin/python3", EXAMPLE, "--endpoint", router.endpoint, "--spool", spool,
                        "--wait", "30", path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_python_example_connector(router, tmp_path):
    spool = str(tmp_path / "pyspool")
    src = tmp_path / "input.txt"
    src.write_text("alice\thello from python\nbob\tsecond line\nbob\t" + "x" * 70000 + "\n")
    out = run_example(router, spool, str(src))
    acks = [line.split()[1] for line in out.splitlines() if line.startswith("ACK ")]
    nacks = [line for line in out.splitlines() if line.startswith("NACK ")]
    assert len(acks) == 2 and len(nacks) == 1 and "text" in nacks[0], out
    by_sender = {stored(router, a)["identity"]: stored(router, a) for a in acks}  # ACKs may come in any order
    assert set(by_sender) == {"x-python:alice", "x-python:bob"}
    assert json.loads(by_sender["x-python:alice"]["json"])["text"] == "hello from python"
    with open(os.path.join(spool, "dead-letter.jsonl")) as f:
        dead = [json.loads(line) for line in f]
    assert len(dead) == 1 and dead[0]["message"]["from"]["id"] == "bob"
    assert os.path.getsize(os.path.join(spool, "spool.jsonl")) == 0  # all answered: compacted

    # The same file again: the same ids, acknowledged as duplicates, stored once.
    messages = stored_count(router.redis)
    out = run_example(router, spool, str(src))
    assert sorted(line.split()[1] for line in out.splitlines() if line.startswith("ACK ")) == sorted(acks)
    assert stored_count(router.redis) == messages
