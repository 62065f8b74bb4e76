"""omni-phonelog fed call records it had not seen, against a real omnirouted and redis-server: every layout and
variant docs/connectors.md ("omni-phonelog") names, numbers in the forms "Phone numbers and the two
`default_country` keys" lists, files truncated, rotated and cut short while it runs, and a kill mid-file.
Each stored message is checked field by field against DESIGN.md's message schema and the doc.

Relies on the `router` fixture of conftest.py and on harness.py's BIN, wait_for and stored_count only.
"""
import json
import os
import signal
import subprocess

from harness import BIN, stored_count, wait_for

q = lambda v: '"' + v.replace('"', '""') + '"'  # noqa: E731  (a string as Asterisk's cdr_csv writes it)


def ast(src, clid="", disp="NO ANSWER", uid=None, userfield=None, tail21=None, dst="6000", start="2026-11-21 14:03:12",
        answer="", end="2026-11-21 14:03:30", lastapp="Dial", lastdata="PJSIP/6000,30", dur="18", bill="0", acct=""):
    """One Master.csv line: 16 fields, + uniqueid (17 or 18 with userfield), + peeraccount, linkedid, sequence (21)."""
    f = [q(acct), q(src), q(dst), q("from-pstn"), q(clid), q("PJSIP/trunk-1"), q(""), q(lastapp), q(lastdata),
         q(start) if start else "", q(answer) if answer else "", q(end) if end else "", dur, bill, q(disp),
         q("DOCUMENTATION")]
    if uid is not None:
        f.append(q(uid))
    if userfield is not None:
        f.append(q(userfield))
    if tail21:
        f += [q(tail21[0]), q(tail21[1]), tail21[2]]
    return ",".join(f) + "\n"


class Phonelog:
    """omni-phonelog following DIR/Master.csv with the given phonelog keys; its output in DIR/phonelog.log."""

    def __init__(self, tmp_path, endpoint, country="US", tz="America/New_York", **keys):
        self.dir = str(tmp_path)
        self.csv = os.path.join(self.dir, "Master.csv")
        self.config = os.path.join(self.dir, "phonelog.yaml")
        self.log_path = os.path.join(self.dir, "phonelog.log")
        self.env = dict(os.environ, TZ=tz)
        keys.setdefault("path", "Master.csv")
        keys.setdefault("start", "beginning")
        with open(self.config, "w") as f:
            f.write(f"router:\n  endpoint: \"{endpoint}\"\n  resend_ms: 500\nspool_dir: spool\npoll_ms: 50\n"
                    f"log_level: debug\n" + (f"default_country: {country}\n" if country else "") + "phonelog:\n" +
                    "".join(f"  {k}: {json.dumps(v)}\n" for k, v in keys.items()))
        self.proc = None

    def start(self):
        check = subprocess.run([os.path.join(BIN, "omni-phonelog"), "--config", self.config, "--check-config"],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        before = self.output().count(" info: started: ")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([os.path.join(BIN, "omni-phonelog"), "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        wait_for(lambda: self.output().count(" info: started: ") > before or self.proc.poll() is not None, 30,
                 "omni-phonelog started")
        return self

    def output(self):
        if not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=20)
        self.log.close()
        if sig == signal.SIGTERM:
            assert rc == 0, f"omni-phonelog exited {rc}:\n{self.output()}"

    def dead_letters(self):
        p = os.path.join(self.dir, "spool", "dead-letter.jsonl")
        return open(p).read() if os.path.exists(p) else ""


def doc(router, id):
    raw = router.redis.hget(f"omni:msg:{id}", "json")
    return json.loads(raw) if raw else None


def wait_stored(router, ids, conn, timeout=20):
    def all_there():
        assert conn.proc.poll() is None, f"omni-phonelog exited:\n{conn.output()}"
        return all(router.redis.exists(f"omni:msg:{i}") for i in ids)
    wait_for(all_there, timeout, f"messages {ids}")


def meta_for(conn, line, layout, **kw):
    """The meta every record gets, with the record's own facts in kw (None: the key is left out)."""
    m = {"callback": True, "voicemail": False, "dst": "6000", "pbx": "pbx", "cdr_file": conn.csv, "cdr_line": line,
         "cdr_layout": layout, "duration": 18, "billsec": 0}
    m.update(kw)
    return {k: v for k, v in m.items() if v is not None}


def test_asterisk_variants_and_number_forms_field_by_field(router, tmp_path):
    """Each Asterisk layout by its field count (16: the hash id; 17 with a uniqueid or a userfield; 18; 21 with the
    sequence in the id), numbers as a US PBX writes them (national with and without the trunk 1, 011 abroad,
    + with (0)), every outcome's words, voicemail by lastapp and by extension, the end date standing in, a
    withheld and an unreadable caller: stored exactly as the doc says, nothing NACKed."""
    lines = [
        ast("(415) 555-0100", '"Ann Lee" <(415) 555-0100>'),                                    # 1: 16 fields
        ast("1 415 555 0101", '"1 415 555 0101" <1 415 555 0101>', "BUSY", uid="1763630043.11"),  # 2: 17, uniqueid
        ast("011 44 20 7946 0958", "", "CONGESTION", userfield="vip"),                          # 3: 17, userfield
        ast("+44 (0)20 7946 0959", '"Acme, ""UK"" Ltd" <+44 (0)20 7946 0959>', "no answer", uid="pbx1-1763630043.12",
            userfield="u", tail21=("peer", "1763630043.10", "7")),                              # 4: 21 fields
        ast("", '"Bob" <+1-415-555-0102>', "FAILED", uid="a.5", userfield="", start="", end=""),  # 5: no date at all
        ast("+14155550103", "", "ANSWERED", uid="a.6", userfield="", lastapp="VoiceMail", lastdata="6001@default,u",
            answer="2026-11-21 14:03:14", bill="12"),                                           # 6: voicemail
        ast("+14155550104", "", "NO ANSWER", uid="a.7", userfield="", dst="*97", start="2026-02-29 10:00:00",
            end="2026-03-01 10:00:00"),                                                         # 7: vm extension, end
        ast("anonymous", '"Anonymous" <anonymous>', uid="a.8", userfield=""),                   # 8: withheld
        ast("sip:abc@example.com", "", uid="a.9", userfield=""),                                # 9: unreadable
        ast("+14155550105", "", "ANSWERED", uid="a.10", userfield="", answer="2026-11-21 14:03:13"),  # 10: skipped
        ast("4155550106", "", "UNKNOWN", uid="a.11", userfield=""),                             # 11: failed
        ast("+14155550107", "", "BUSY", uid="a.12", userfield="", dst="*97"),                   # 12: busy, to vm
        ast("+14155550108", "", "ANSWERED", uid="a.13", userfield="", dst="*97", bill="",
            answer="2026-11-21 14:03:13"),                                                      # 13: vm by extension
        ast(" Restricted ", "", uid="a.14", userfield=""),                                      # 14: withheld, padded
    ]
    (tmp_path / "Master.csv").write_text("".join(lines))
    conn = Phonelog(tmp_path, router.endpoint, voicemail_extensions=["*97"]).start()
    try:
        ids = ["phone:pbx:1763630043.11", "phone:pbx:pbx1-1763630043.12:7", "phone:pbx:a.5", "phone:pbx:a.6",
               "phone:pbx:a.7", "phone:pbx:a.11"]
        wait_stored(router, ids + ["phone:pbx:a.12", "phone:pbx:a.13"], conn)
        wait_for(lambda: stored_count(router.redis) == 10, 10, "10 messages")
        got = {}
        for k in router.redis.scan_iter("omni:msg:phone:*"):
            d = json.loads(router.redis.hget(k, "json"))
            got[d["meta"]["cdr_line"]] = d
        assert sorted(got) == [1, 2, 3, 4, 5, 6, 7, 11, 12, 13], sorted(got)
        at, est = "2026-11-21T19:03:12.000Z", "2026-11-21 14:03:12 -05:00"

        d = got[1]  # 16 fields: no uniqueid, so the hash id
        assert d["id"].startswith("phone:pbx:h") and len(d["id"]) == len("phone:pbx:h") + 16, d["id"]
        int(d["id"][len("phone:pbx:h"):], 16)
        assert d == {"id": d["id"], "channel": "phone", "from": {"id": "+14155550100", "name": "Ann Lee"},
                     "received_at": at, "to": "6000",
                     "text": f"Missed call from +14155550100 at {est} (no answer); please call back",
                     "meta": meta_for(conn, 1, "asterisk-16", outcome="missed", disposition="NO ANSWER",
                                      caller_raw="(415) 555-0100")}, d
        d = got[2]  # the name that is only the number again is no name
        assert d == {"id": "phone:pbx:1763630043.11", "channel": "phone", "from": {"id": "+14155550101"},
                     "received_at": at, "to": "6000",
                     "text": f"Missed call from +14155550101 at {est} (line busy); please call back",
                     "meta": meta_for(conn, 2, "asterisk-17", outcome="busy", disposition="BUSY",
                                      caller_raw="1 415 555 0101", uniqueid="1763630043.11")}, d
        d = got[3]  # not shaped like a uniqueid: the userfield; no uniqueid: the hash id
        assert d["id"].startswith("phone:pbx:h"), d["id"]
        assert d["from"] == {"id": "+442079460958"} and d["meta"] == meta_for(
            conn, 3, "asterisk-17", outcome="failed", disposition="CONGESTION", caller_raw="011 44 20 7946 0958",
            userfield="vip"), d
        assert d["text"] == f"Missed call from +442079460958 at {est} (congestion); please call back", d
        d = got[4]
        assert d["id"] == "phone:pbx:pbx1-1763630043.12:7", d
        assert d["from"] == {"id": "+442079460959", "name": 'Acme, "UK" Ltd'}, d
        assert d["meta"] == meta_for(conn, 4, "asterisk-21", outcome="missed", disposition="no answer",
                                     caller_raw="+44 (0)20 7946 0959", uniqueid="pbx1-1763630043.12",
                                     userfield="u", linkedid="1763630043.10"), d
        d = got[5]  # the caller from clid; no date: the time it was read, and the words say so
        assert d["from"] == {"id": "+14155550102", "name": "Bob"}, d
        assert d["text"] == "Missed call from +14155550102 at an unknown time (call failed); please call back", d
        assert d["received_at"].endswith("Z") and d["received_at"] >= "2026-12-01", d
        assert d["meta"] == meta_for(conn, 5, "asterisk-18", outcome="failed", disposition="FAILED",
                                     caller_raw="+1-415-555-0102", uniqueid="a.5"), d
        d = got[6]
        assert d["text"] == f"Voicemail from +14155550103 at {est} (mailbox 6001@default, 12 s); please call back", d
        assert d["meta"] == meta_for(conn, 6, "asterisk-18", outcome="voicemail", voicemail=True, billsec=12,
                                     disposition="ANSWERED", caller_raw="+14155550103", uniqueid="a.6",
                                     mailbox="6001@default"), d
        d = got[7]  # 2026-02-29 is no date: the end stands in; a voicemail extension nobody answered stays missed
        assert d["received_at"] == "2026-03-01T15:00:00.000Z" and d["to"] == "*97", d
        assert d["text"] == ("Missed call from +14155550104 at 2026-03-01 10:00:00 -05:00 (no answer, sent to "
                             "voicemail); please call back"), d
        assert d["meta"]["outcome"] == "missed" and d["meta"]["voicemail"] is True and d["meta"]["callback"] is True
        d = got[11]  # an unknown disposition, never answered: when in doubt, call back
        assert d["from"] == {"id": "+14155550106"} and d["meta"]["outcome"] == "failed", d
        assert d["text"] == f"Missed call from +14155550106 at {est} (call failed); please call back", d
        d = got[12]  # the words of the outcome, then that it went to voicemail
        assert d["text"] == f"Missed call from +14155550107 at {est} (line busy, sent to voicemail); please call back", d
        assert d["meta"]["outcome"] == "busy" and d["meta"]["voicemail"] is True, d
        d = got[13]  # a voicemail extension answered (by the machine): no mailbox to name; no billsec reads 0 s
        assert d["text"] == f"Voicemail from +14155550108 at {est} (0 s); please call back", d
        assert d["meta"]["outcome"] == "voicemail" and "mailbox" not in d["meta"] and "billsec" not in d["meta"], d

        out = conn.output()
        assert 'Master.csv:8: no message: caller withheld ("anonymous")' in out, out
        assert 'Master.csv:14: no message: caller withheld (" Restricted ")' in out, out
        assert 'Master.csv:9: no message: caller "sip:abc@example.com" is not a phone number' in out, out
        assert not router.redis.exists("omni:msg:phone:pbx:a.10")  # answered: skip
        assert "malformed" not in out and "invalid message" not in out and conn.dead_letters() == "", out
    finally:
        conn.stop()


def test_freeswitch_example_template_field_by_field(router, tmp_path):
    """mod_cdr_csv's example template: every field quoted, numbers too (read as integers), the uuid as the id,
    hangup causes by the answer stamp, caller_id_name as the name, codecs and bleg_uuid ignored."""
    fs = lambda *v: ",".join(q(x) for x in v) + "\n"  # noqa: E731
    (tmp_path / "Master.csv").write_text(
        fs("Jane Roe", "0612345678", "6000", "default", "2026-11-20 09:14:03", "", "2026-11-20 09:14:33", "30", "0",
           "NO_ANSWER", "a1b2c3d4-0000-4000-8000-000000000001", "", "acct7", "PCMU", "PCMU")
        + fs("+33612345679", "+33612345679", "6001", "default", "2026-11-20 09:20:11", "", "2026-11-20 09:20:41",
             "30", "0", "ORIGINATOR_CANCEL", "a1b2c3d4-0000-4000-8000-000000000002", "", "", "PCMU", "PCMU")
        + fs("Bob", "00 44 20 7946 0958", "6002", "default", "2026-11-20 09:40:00", "2026-11-20 09:40:05",
             "2026-11-20 09:41:00", "60", "55", "NORMAL_CLEARING", "a1b2c3d4-0000-4000-8000-000000000003", "b1", "",
             "PCMA", "PCMA")
        + fs("", "+33612345680", "6002", "default", "2026-11-20 09:42:00", "", "2026-11-20 09:43:00", "60", "0",
             "NORMAL_CLEARING", "a1b2c3d4-0000-4000-8000-000000000004", "", "", "PCMA", "PCMA")
        + fs("", "+33612345681", "6003", "default", "2026-11-20 09:44:00", "", "2026-11-20 09:44:02", "2", "0",
             "CALL_REJECTED", "", "", "", "PCMA", "PCMA"))
    conn = Phonelog(tmp_path, router.endpoint, country="FR", tz="Europe/Paris", layout="freeswitch",
                    answered="log").start()
    try:
        u = "phone:pbx:a1b2c3d4-0000-4000-8000-00000000000"
        wait_stored(router, [u + "1", u + "2", u + "3", u + "4"], conn)
        wait_for(lambda: stored_count(router.redis) == 5, 10, "5 messages")
        d = doc(router, u + "1")
        assert d == {"id": u + "1", "channel": "phone", "from": {"id": "+33612345678", "name": "Jane Roe"},
                     "received_at": "2026-11-20T08:14:03.000Z", "to": "6000",
                     "text": "Missed call from +33612345678 at 2026-11-20 09:14:03 +01:00 (no answer); please call back",
                     "meta": {"outcome": "missed", "callback": True, "voicemail": False, "disposition": "NO_ANSWER",
                              "duration": 30, "billsec": 0, "dst": "6000", "caller_raw": "0612345678",
                              "uniqueid": "a1b2c3d4-0000-4000-8000-000000000001", "accountcode": "acct7",
                              "pbx": "pbx", "cdr_file": conn.csv, "cdr_line": 1, "cdr_layout": "freeswitch"}}, d
        d = doc(router, u + "2")
        assert d["from"] == {"id": "+33612345679"} and d["meta"]["outcome"] == "missed", d
        assert d["text"] == ("Missed call from +33612345679 at 2026-11-20 09:20:11 +01:00 (caller hung up before an "
                             "answer); please call back"), d
        d = doc(router, u + "3")  # answered (answer_stamp set), sent for the history with answered: log
        assert d["text"] == "Answered call from +442079460958 at 2026-11-20 09:40:00 +01:00 (55 s)", d
        assert d["meta"]["outcome"] == "answered" and d["meta"]["callback"] is False, d
        assert d["meta"]["billsec"] == 55 and d["meta"]["duration"] == 60 and d["from"]["name"] == "Bob", d
        d = doc(router, u + "4")  # NORMAL_CLEARING without an answer: missed
        assert d["meta"]["outcome"] == "missed" and "name" not in d["from"], d
        rejected = [json.loads(router.redis.hget(k, "json")) for k in router.redis.scan_iter("omni:msg:phone:pbx:h*")]
        assert len(rejected) == 1 and rejected[0]["meta"]["outcome"] == "busy", rejected  # no uuid: the hash id
        assert rejected[0]["text"].endswith("(call rejected); please call back"), rejected
        assert "uniqueid" not in rejected[0]["meta"], rejected
        assert conn.dead_letters() == "" and "malformed" not in conn.output()
    finally:
        conn.stop()


def test_custom_columns_as_written_in_a_template(router, tmp_path):
    """layout custom: FreeSWITCH variables written as in the template ("${...}") and plain names, in any order;
    names it does not know are ignored."""
    (tmp_path / "Master.csv").write_text(
        '"2026-11-20 09:14:03","+14155550101","6000","NO_ANSWER","abc-1","Jane Roe","whatever"\n')
    conn = Phonelog(tmp_path, router.endpoint, tz="UTC", layout="custom",
                    columns=["${start_stamp}", "${caller_id_number}", "destination_number", "${hangup_cause}",
                             "uuid", "caller_id_name", "${sip_hangup_disposition}"]).start()
    try:
        wait_stored(router, ["phone:pbx:abc-1"], conn)
        d = doc(router, "phone:pbx:abc-1")
        assert d == {"id": "phone:pbx:abc-1", "channel": "phone", "from": {"id": "+14155550101", "name": "Jane Roe"},
                     "received_at": "2026-11-20T09:14:03.000Z", "to": "6000",
                     "text": "Missed call from +14155550101 at 2026-11-20 09:14:03 +00:00 (no answer); please call back",
                     "meta": {"outcome": "missed", "callback": True, "voicemail": False, "disposition": "NO_ANSWER",
                              "dst": "6000", "caller_raw": "+14155550101", "uniqueid": "abc-1", "pbx": "pbx",
                              "cdr_file": conn.csv, "cdr_line": 1, "cdr_layout": "custom"}}, d
    finally:
        conn.stop()


def test_truncation_rotation_and_kills_mid_file_lose_nothing(router, tmp_path):
    """A file read in small batches, the connector killed (SIGKILL) mid-file and started again, then the file
    copytruncated, then rotated with a late write to the old one and a last line cut short in it: every call is
    stored exactly once, and the cut line is dropped with the documented warning."""
    n = 300
    (tmp_path / "Master.csv").write_text("".join(ast("+14155550199", uid=f"k.{i}", userfield="") for i in range(n)))
    conn = Phonelog(tmp_path, router.endpoint, max_batch=7).start()
    wait_for(lambda: stored_count(router.redis) >= 20, 20, "some of the file stored")
    conn.stop(signal.SIGKILL)  # while the router is still storing the file (where the reading is, is the kernel's)
    conn.start()
    try:
        wait_stored(router, [f"phone:pbx:k.{i}" for i in range(n)], conn, 60)
        assert stored_count(router.redis) == n
        # copytruncate: the same inode, emptied, then a new call
        with open(tmp_path / "Master.csv", "w") as f:
            f.write(ast("+14155550198", uid="t.1", userfield=""))
        wait_stored(router, ["phone:pbx:t.1"], conn)
        assert "Master.csv: truncated (size" in conn.output() or "rewritten in place" in conn.output()
        # rotation: renamed, a new file, a late line and a cut one in the old file
        os.rename(tmp_path / "Master.csv", tmp_path / "Master.csv.1")
        (tmp_path / "Master.csv").write_text(ast("+14155550197", uid="r.new", userfield=""))
        with open(tmp_path / "Master.csv.1", "a") as f:
            f.write(ast("+14155550196", uid="r.late", userfield="") + '"","+1415555')
        wait_stored(router, ["phone:pbx:r.late", "phone:pbx:r.new"], conn)
        wait_for(lambda: "line 3 of the rotated file has no newline: dropped" in conn.output(), 10, "the cut line")
        assert stored_count(router.redis) == n + 3
    finally:
        conn.stop()
    # started again: nothing is read twice, what follows is read
    with open(tmp_path / "Master.csv", "a") as f:
        f.write(ast("+14155550195", uid="r.after", userfield=""))
    conn.start()
    try:
        wait_stored(router, ["phone:pbx:r.after"], conn)
        assert stored_count(router.redis) == n + 4
        assert "resuming after line 1 " in conn.output()
    finally:
        conn.stop()


def test_an_empty_section_keeps_the_defaults(tmp_path):
    """docs/connectors.md: "A YAML `key:` with no value keeps the default": a `phonelog:` section whose keys are
    all commented out is every default, not an unknown key; a section written as a scalar is named as such."""
    conf = tmp_path / "phonelog.yaml"
    conf.write_text("spool_dir: spool\nrouter:\n#  endpoint: ipc:///x\nphonelog:\n#  path: Master.csv\n")
    r = subprocess.run([os.path.join(BIN, "omni-phonelog"), "--config", str(conf), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    conf.write_text("spool_dir: spool\nphonelog: Master.csv\n")
    r = subprocess.run([os.path.join(BIN, "omni-phonelog"), "--config", str(conf), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and f"{conf}:2:11: phonelog: expected a mapping" in r.stderr, r.stderr


def test_a_line_of_64_kib_costs_its_values_never_the_callback(router, tmp_path):
    """A custom line may hold 64 KiB: a mailbox (lastdata) and a billsec of 32 KiB each (their text together over its 64 KiB) are left out of meta and of
    the text, with a warning each, and the voicemail still reaches the router (docs/connectors.md, "Limits")."""
    mailbox, billsec = "v" * 32000, "7" * 33480  # the text of old, both in it, was 65560 bytes: refused
    line = f"+14155550100,VoiceMail,{mailbox},ANSWERED,{billsec},big-1\n"
    assert len(line) - 1 <= 65536
    (tmp_path / "Master.csv").write_text(line)
    conn = Phonelog(tmp_path, router.endpoint, tz="UTC", layout="custom",
                    columns=["src", "lastapp", "lastdata", "disposition", "billsec", "uniqueid"]).start()
    try:
        wait_stored(router, ["phone:pbx:big-1"], conn)
        d = doc(router, "phone:pbx:big-1")
        assert d["text"] == "Voicemail from +14155550100 at an unknown time; please call back", d["text"][:200]
        assert d["meta"]["outcome"] == "voicemail" and "mailbox" not in d["meta"] and "billsec" not in d["meta"]
        out = conn.output()
        assert "Master.csv:1: meta.mailbox is 32000 bytes, over the router's limit of 4096: left out" in out, out
        assert "Master.csv:1: meta.billsec is 33480 bytes, over the router's limit of 4096: left out" in out, out
        assert "invalid message" not in out and conn.dead_letters() == ""
    finally:
        conn.stop()


def test_a_hole_a_crash_left_costs_no_call(router, tmp_path):
    """A PBX host that crashed can leave NUL bytes where Master.csv grew but its data was never written; the PBX
    writes on after them. The record after the hole is read (with a warning), the one before it too."""
    (tmp_path / "Master.csv").write_bytes(ast("+14155550101", uid="h.1", userfield="").encode() + b"\0" * 4096
                                          + ast("+14155550102", uid="h.2", userfield="").encode())
    conn = Phonelog(tmp_path, router.endpoint).start()
    try:
        wait_stored(router, ["phone:pbx:h.1", "phone:pbx:h.2"], conn)
        assert doc(router, "phone:pbx:h.2")["meta"]["cdr_line"] == 2
        assert "Master.csv:2: 4096 NUL bytes before the record passed over" in conn.output(), conn.output()
    finally:
        conn.stop()
