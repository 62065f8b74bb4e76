"""Logging: the catalogue of events is documented, the default level logs nothing per message, and under
systemd each event reaches journald as a structured entry (MESSAGE_ID and the fields that apply)."""
import os
import re
import socket

import pytest

from harness import ROOT, Peer, Router, message

JOURNAL = "/run/systemd/journal/socket"


def catalogue():
    h = open(os.path.join(ROOT, "include", "omni", "log.h")).read()
    return dict(re.findall(r'#define OMNI_MSGID_(\w+)\s+"([0-9a-f]{32})"', h))


def test_every_event_id_is_documented_and_in_the_journal_catalogue():
    ids = catalogue()
    assert len(ids) >= 15 and len(set(ids.values())) == len(ids)
    doc = open(os.path.join(ROOT, "docs", "logging.md")).read()
    cat = open(os.path.join(ROOT, "systemd", "omnirouter.catalog")).read()
    for name, mid in ids.items():
        assert f"`{mid}`" in doc, f"{name} missing from docs/logging.md"
        assert f"\n-- {mid}\nSubject: " in cat, f"{name} missing from systemd/omnirouter.catalog"


def test_the_default_level_logs_nothing_per_message(tmp_path, redis_server):
    r = Router(str(tmp_path), redis_server.address, router_extra={"log_level": "info"}).start()
    peer = Peer(r.endpoint)
    try:
        ids = [f"quiet-{i}" for i in range(20)]
        for i, id in enumerate(ids):
            peer.submit(message(id, channel="email", frm=f"q{i}@example.com", text="hello"))
            assert peer.recv() == ["OMNI/1", "ACK", id]
        peer.submit(message(ids[0], channel="email", frm="q0@example.com", text="hello"))  # a duplicate
        assert peer.recv() == ["OMNI/1", "ACK", ids[0]]
        peer.submit(message("bad-1", channel="email", frm="not an address", text="x"))  # one to act on
        assert peer.recv()[1] == "NACK"
        r.wait_log(r"warn: refused message bad-1")
        log = r.log()
        assert not any(id in log for id in ids), log
    finally:
        peer.close()
        r.stop()


@pytest.fixture
def journald():
    """Plays journald on its socket (no journald runs on a test machine; a real one is left alone)."""
    if os.path.exists(JOURNAL):
        pytest.fail(f"{JOURNAL} exists: this test needs a machine without journald (a container, CI)")
    os.makedirs(os.path.dirname(JOURNAL), exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(JOURNAL)
    sock.settimeout(10)
    yield sock
    sock.close()
    os.unlink(JOURNAL)


def entries_until(sock, pred):
    seen = []
    while True:
        raw = sock.recv(65536).decode()
        e = dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)
        seen.append(e)
        if pred(e):
            return e, seen


def test_under_systemd_events_are_structured_journal_entries(tmp_path, redis_server, journald):
    ids = catalogue()
    log = tmp_path / "router.log"
    log.touch()
    st = os.stat(log)
    r = Router(str(tmp_path), redis_server.address, env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    r.start(wait_ready=False)
    try:
        ready, _ = entries_until(journald, lambda e: e.get("MESSAGE_ID") == ids["READY"])
        assert ready["SYSLOG_IDENTIFIER"] == "omnirouted" and ready["PRIORITY"] == "6"
        assert ready["MESSAGE"].startswith("ready: ingest on ")
        peer = Peer(r.endpoint)
        peer.submit(message("j-1", channel="email", frm="j@example.com", text="hello"))
        assert peer.recv() == ["OMNI/1", "ACK", "j-1"]
        stored, _ = entries_until(journald, lambda e: e.get("MESSAGE_ID") == ids["STORED"])  # debug in tests
        assert stored["OMNI_MESSAGE"] == "j-1" and stored["PRIORITY"] == "7"
        assert stored["CONVERSATION"] and stored["CUSTOMER"]
        peer.submit(message("j-2", channel="email", frm="not an address", text="x"))
        assert peer.recv()[1] == "NACK"
        refused, _ = entries_until(journald, lambda e: e.get("MESSAGE_ID") == ids["MESSAGE_REFUSED"])
        assert refused["OMNI_MESSAGE"] == "j-2" and refused["PRIORITY"] == "4", refused
        assert "from.id" in refused["MESSAGE"]
        peer.close()
        assert "j-1" not in open(r.log_path).read()  # sent to the journal, not written to stderr
    finally:
        r.stop()
