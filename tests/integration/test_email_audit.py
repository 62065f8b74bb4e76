"""omni-email against a real Dovecot with mail unlike the fixtures: each message below is normalized field by
field as docs/connectors.md "email (omni-email)" / "The message" says (DESIGN.md's message schema).

Every mail is delivered to one Dovecot before one connector starts; each case then checks the message the
connector sent (found by its Message-ID, or by its UID for the mails without one). The helpers (Dovecot,
FakeRouter, Connector, wait_for) are test_email.py's and dovecot.py's. Every wait has a deadline.
"""
import email.utils
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dovecot import Dovecot, wait_for
from test_email import WAIT, Connector, FakeRouter, pytestmark  # noqa: F401 (pytestmark: root only)

NOW = datetime.now(timezone.utc).replace(microsecond=0)
DATE = email.utils.format_datetime(NOW - timedelta(hours=1))  # a sane Date: it is received_at
DATE_RFC3339 = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def head(name, extra="", date=True, msgid=True, frm="Ann <ann@a.example>"):
    h = ""
    if frm is not None:
        h += "From: %s\n" % frm
    if msgid:
        h += "Message-ID: <%s@audit.example>\n" % name
    if date:
        h += "Date: %s\n" % DATE
    return h + "Subject: %s\nMIME-Version: 1.0\n%s" % (name, extra)


ONE = b"iVBORw0KGgo="  # 8 bytes once decoded

# name -> (raw mail as text, with LF: turned into CRLF on delivery unless it ends in "\r\n" already;
#          {field: expected}; a dotted field reads inside an object, "-x" means x is absent)
CASES = {
    # Found by this audit: a text/plain alternative marked attachment is not the body; the HTML one is.
    "alt_plain_attached": (
        head("alt_plain_attached", "Content-Type: multipart/alternative; boundary=A\n\n")
        + "--A\nContent-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\nplain\n"
        "--A\nContent-Type: text/html\n\n<p>html</p>\n--A--\n",
        {"text": "html", "attachments": [{"name": "a.txt", "type": "text/plain", "size": 5}]}),
    # Found by this audit: a file beside the text/html of the HTML alternative (Apple Mail) is listed.
    "apple_mail_attachment": (
        head("apple_mail_attachment", "Content-Type: multipart/alternative; boundary=A\n\n")
        + "--A\nContent-Type: text/plain\n\nsee the file\n--A\nContent-Type: multipart/mixed; boundary=B\n\n"
        "--B\nContent-Type: text/html\n\n<p>see the file</p>\n--B\nContent-Type: application/pdf; name=r.pdf\n"
        "Content-Disposition: attachment; filename=r.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n"
        "--B\nContent-Type: text/html\n\n<p>bye</p>\n--B--\n--A--\n",
        {"text": "see the file", "attachments": [{"name": "r.pdf", "type": "application/pdf", "size": 5}]}),
    # Found by this audit: In-Reply-To in the obsolete form with a phrase (RFC 5322 4.5.4).
    "irt_phrase": (
        head("irt_phrase", "In-Reply-To: Your message of Mon, 1 Jan 2024 10:00:00 +0100 <m2@audit.example>\n\n")
        + "x\n",
        {"meta.in_reply_to": "m2@audit.example", "thread": "m2@audit.example"}),
    # Found by this audit: a Content-Type without type/subtype is text/plain (RFC 2045 5.2), not a file.
    "content_type_no_subtype": (
        head("content_type_no_subtype", "Content-Type: multipart/mixed; boundary=A\n\n")
        + "--A\nContent-Type: text; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
        "caf=E9\n--A--\n", {"text": "caf\u00e9", "-attachments": None}),
    # Found by this audit: an undecodable byte in an encoded-word is U+FFFD, as in the text, not '?'.
    "subject_bad_utf8_word": (
        head("x", frm="=?utf-8?q?J=FCrgen?= <j@x.example>").replace("Subject: x", "Subject: =?utf-8?q?caf=E9?=")
        .replace("<x@", "<subject_bad_utf8_word@") + "\nx\n",
        {"subject": "caf\ufffd", "from.name": "J\ufffdrgen"}),
    "subject_words_charsets": (
        head("x", frm="a@b.example").replace(
            "Subject: x", "Subject: =?iso-8859-1?q?caf=E9?= =?UTF-8?B?w6l0w6k=?=\n =?windows-1252?Q?=80_euro?=")
        .replace("<x@", "<subject_words_charsets@") + "\nx\n",
        {"subject": "caf\u00e9\u00e9t\u00e9\u20ac euro"}),
    "subject_split_char": (
        head("x").replace("Subject: x", "Subject: =?UTF-8?B?w6k=?= =?UTF-8?Q?=C3?=\n =?UTF-8?Q?=A9?= end")
        .replace("<x@", "<subject_split_char@") + "\nx\n",
        {"subject": "\u00e9\u00e9 end"}),
    "subject_malformed": (
        head("x").replace("Subject: x", "Subject: =?UTF-8?X?abc?= and =?UTF-8?Q?open")
        .replace("<x@", "<subject_malformed@") + "\nx\n",
        {"subject": "=?UTF-8?X?abc?= and =?UTF-8?Q?open"}),
    "subject_us_ascii_8bit": (
        head("x").replace("Subject: x", "Subject: =?us-ascii?Q?caf=E9?=")
        .replace("<x@", "<subject_us_ascii_8bit@") + "\nx\n",
        {"subject": "caf?"}),
    "from_bare": (head("from_bare", "\n", frm="Ann.Lee@Example.COM") + "x\n",
                  {"from.id": "ann.lee@example.com", "-from.name": None}),
    "from_group": (head("from_group", "\n", frm="Team: Bob@B.example, c@c.example;") + "x\n",
                   {"from.id": "bob@b.example"}),
    "from_quoted_comma": (head("from_quoted_comma", "\n", frm='"Lee, Ann" <ann@a.example>') + "x\n",
                          {"from.id": "ann@a.example", "from.name": "Lee, Ann"}),
    "from_idn": (head("from_idn", "\n", frm="=?UTF-8?Q?J=C3=BCrgen?= <J@m\u00fcller.example>") + "x\n",
                 {"from.id": "j@xn--mller-kva.example", "from.name": "J\u00fcrgen"}),
    "from_undisclosed": (head("from_undisclosed", "\n", frm="undisclosed-recipients:;") + "x\n",
                         {"meta.no_sender": True, "meta.no_sender_reason": "no '@'"}),
    "no_from": (head("no_from", "\n", frm=None) + "x\n",
                {"meta.no_sender": True, "meta.no_sender_reason": "no From, Sender, Reply-To or Return-Path"}),
    "reply_to_only": (head("reply_to_only", "Reply-To: R <r@r.example>\n\n", frm=None) + "x\n",
                      {"from.id": "r@r.example", "from.name": "R", "-meta.no_sender": None}),
    "from_beats_reply_to": (head("from_beats_reply_to", "Reply-To: R <r@r.example>\n\n") + "x\n",
                            {"from.id": "ann@a.example", "from.name": "Ann"}),
    "html_only": (
        head("html_only", "Content-Type: multipart/alternative; boundary=A\n\n")
        + "--A\nContent-Type: text/html; charset=utf-8\n\n<html><head><title>T</title><style>p{}</style>"
        "</head><body><p>Hello <b>W</b> &amp; &euro;</p><ul><li>one</li><li>two</li></ul>end</body></html>\n--A--\n",
        {"text": "Hello W & \u20ac\n\n- one\n- two\n\nend", "-attachments": None}),
    "nested_inline": (
        head("nested_inline", "Content-Type: multipart/mixed; boundary=A\n\n")
        + "--A\nContent-Type: multipart/related; boundary=B\n\n--B\nContent-Type: multipart/alternative; boundary=C\n\n"
        "--C\nContent-Type: text/plain\n\nplain body\n--C\nContent-Type: text/html\n\n<p>html<img src=cid:i1></p>\n"
        "--C--\n--B\nContent-Type: image/png\nContent-ID: <i1>\nContent-Transfer-Encoding: base64\n\n"
        + ONE.decode() + "\n--B--\n--A\nContent-Type: application/pdf\n"
        "Content-Disposition: attachment; filename=\"r.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n--A--\n",
        {"text": "plain body", "attachments": [{"name": "part-1.2", "type": "image/png", "size": 8},
                                               {"name": "r.pdf", "type": "application/pdf", "size": 5}]}),
    "latin1_body": (
        head("latin1_body", "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: "
             "quoted-printable\n\n") + "caf=E9 =80 =93q=94 =81\n",
        {"text": "caf\u00e9 \u20ac \u201cq\u201d \ufffd\n"}),
    "shift_jis_body": (
        head("shift_jis_body", "Content-Type: text/plain; charset=Shift_JIS\nContent-Transfer-Encoding: base64\n\n")
        + "g2WDWINn\n", {"text": "\u30c6\u30b9\u30c8"}),
    "utf16_body": (
        head("utf16_body", "Content-Type: text/plain; charset=utf-16\nContent-Transfer-Encoding: base64\n\n")
        + "//5oAGkA6QA=\n", {"text": "hi\u00e9"}),
    "unknown_charset_8bit": (
        head("unknown_charset_8bit", "Content-Type: text/plain; charset=x-nonesuch\n"
             "Content-Transfer-Encoding: quoted-printable\n\n") + "caf=E9 / caf=C3=A9\n",
        {"text": "caf\u00e9 / caf\u00c3\u00a9\n"}),
    "qp_soft_breaks": (
        head("qp_soft_breaks", "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: "
             "quoted-printable\n\n") + "a long li=\nne, soft=20\nbreak, caf=C3=\n=A9, =3D end=\n",
        {"text": "a long line, soft \nbreak, caf\u00e9, = end"}),
    "base64_unpadded": (
        head("base64_unpadded", "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n")
        + "SGVsbG8gd29ybGQ\n", {"text": "Hello world"}),
    "flowed_delsp": (
        head("flowed_delsp", "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\n\n")
        + "one flo \nwed line\n> quoted fl \n> owed\n>> deeper\n From me\n-- \nsig\n",
        {"text": "one flowed line\n> quoted flowed\n>> deeper\nFrom me\n-- \nsig\n"}),
    "rfc2231_names": (
        head("rfc2231_names", "Content-Type: multipart/mixed; boundary=A\n\n")
        + "--A\nContent-Type: text/plain\n\nbody\n"
        "--A\nContent-Type: application/octet-stream\nContent-Disposition: attachment;\n"
        " filename*0*=UTF-8''%E2%82%AC%20rates; filename*1=\".txt\"\n\nabc\n"
        "--A\nContent-Type: application/octet-stream\nContent-Disposition: attachment;"
        " filename*=iso-8859-1'en'caf%E9.txt; filename=\"plain.txt\"\n\nabcd\n"
        "--A\nContent-Type: Image/JPEG\n\nxyz\n--A--\n",
        {"text": "body", "attachments": [{"name": "\u20ac rates.txt", "type": "application/octet-stream", "size": 3},
                                         {"name": "caf\u00e9.txt", "type": "application/octet-stream", "size": 4},
                                         {"name": "part-4", "type": "image/jpeg", "size": 3}]}),
    "forwarded": (
        head("forwarded", "Content-Type: multipart/mixed; boundary=A\n\n")
        + "--A\nContent-Type: text/plain\n\nsee below\n--A\nContent-Type: message/rfc822\n\n"
        "From: =?UTF-8?Q?J=C3=BCrgen?= <j@x.example>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
        "Subject: =?UTF-8?Q?orig_=C3=A9?=\nTo: t@x.example\n\noriginal text\n--A--\n",
        {"text": "see below\n\n---------- Forwarded message ----------\nFrom: J\u00fcrgen <j@x.example>\n"
                 "Date: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: orig \u00e9\nTo: t@x.example\n\noriginal text",
         "attachments[0].name": "orig \u00e9.eml", "attachments[0].type": "message/rfc822"}),
    "forwarded_no_subject": (
        head("forwarded_no_subject", "Content-Type: multipart/mixed; boundary=A\n\n")
        + "--A\nContent-Type: text/plain\n\nsee\n--A\nContent-Type: message/rfc822\n\nFrom: j@x.example\n\nin\n--A--\n",
        {"attachments[0].name": "part-2.eml"}),
    "long_line": (head("long_line", "\n") + "a" * 20000 + "\n", {"text": "a" * 20000 + "\n"}),
    "no_body": (head("no_body", "\n"), {"text": ""}),
    "references": (
        head("references", "In-Reply-To: <m2@audit.example>\nReferences: <m1@audit.example>\n <m2@audit.example>\n\n")
        + "x\n", {"thread": "m1@audit.example", "meta.in_reply_to": "m2@audit.example",
                  "meta.message_id": "references@audit.example"}),
    "date_missing": (head("date_missing", "\n", date=False) + "x\n", {"-meta.date_ignored": None}),
    "date_malformed": (head("date_malformed", "Date: yesterday afternoon\n\n", date=False) + "x\n",
                       {"meta.date_ignored": True}),
    "date_too_old": (head("date_too_old", "Date: Mon, 1 Jan 2024 00:00:00 +0000\n\n", date=False) + "x\n",
                     {"meta.date_ignored": True}),
    "date_sane": (head("date_sane", "\n") + "x\n", {"received_at": DATE_RFC3339, "-meta.date_ignored": None}),
    "bounce": (
        head("bounce", "Content-Type: multipart/report; report-type=delivery-status; boundary=A\n\n",
             frm="MAILER-DAEMON@mx.example")
        + "--A\nContent-Type: text/plain\n\nfailed\n--A\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx\n--A--\n", {"meta.auto": "bounce", "text": "failed"}),
    # Found by this audit: a bounce From a mailer-daemon without a domain is a bounce all the same.
    "bounce_local_mailer_daemon": (
        head("bounce_local_mailer_daemon", "\n", frm="Mail Delivery Subsystem <MAILER-DAEMON>") + "failed\n",
        {"meta.auto": "bounce", "meta.auto_reason": "From: mailer-daemon", "meta.no_sender": True}),
    "auto_reply": (head("auto_reply", "Auto-Submitted: auto-replied\n\n") + "away\n", {"meta.auto": "auto-reply"}),
    "list_id_only": (head("list_id_only", "List-Id: <x.list.example>\n\n") + "x\n", {"-meta.auto": None}),
}


def lookup(m, dotted):
    cur = m
    for part in dotted.replace("[", ".").replace("]", "").split("."):
        if isinstance(cur, list):
            cur = cur[int(part)] if int(part) < len(cur) else KeyError
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return KeyError
        if cur is KeyError:
            return KeyError
    return cur


@pytest.fixture(scope="module")
def delivered():
    """Every case delivered, one connector run: {case name: the message the router got}."""
    work = Path(tempfile.mkdtemp(prefix="omni-mailaudit-"))
    dov = Dovecot({"alice": "secret"})
    router = conn = None
    try:
        dov.start()
        by_uid = {}
        for name, (raw, _) in CASES.items():
            by_uid[dov.deliver("alice", raw.replace("\n", "\r\n").encode())] = name
        router = FakeRouter("ipc://%s/router.sock" % work)
        router.start()
        conn = Connector(work, router.endpoint, dov, batch=100)
        conn.start()
        wait_for(lambda: len(router.by_id()) >= len(CASES), WAIT, "every audit mail at the router")
        got = {}
        for m in router.by_id().values():
            got[by_uid[m["meta"]["uid"]]] = m
        yield got
    finally:
        if conn and conn.proc and conn.proc.poll() is None:
            conn.proc.kill()
            conn.proc.wait(10)
        if conn:
            print(conn.log_text())
        if router:
            router.close()
        dov.cleanup()
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_mail_is_normalized_as_documented(name, delivered):
    m = delivered[name]
    assert m["channel"] == "email" and m["to"] == "support@example.com" and m["id"].startswith("email:support:")
    for field, want in CASES[name][1].items():
        if field.startswith("-"):
            assert lookup(m, field[1:]) is KeyError, (name, field, m)
        else:
            assert lookup(m, field) == want, (name, field, m)
