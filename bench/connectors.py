#!/usr/bin/python3
"""Inputs and probes for the connector figures of bench/run (bench/connectors.sh); standard library only.

  cdr FILE LINES          writes an Asterisk Master.csv (18-field layout) of LINES synthetic calls and prints
                          how many of them omni-phonelog turns into messages (answered: skip) and the
                          uniqueid of the last of those
  mail MAILDIR COUNT      writes COUNT messages into MAILDIR/new (plain, multipart/alternative, quoted-printable,
                          a base64 attachment), the last one from last@bench.example; prints COUNT and
                          that address
  freeport                a loopback TCP port nobody listens on now
  greets PORT             exit 0 when 127.0.0.1:PORT answers an IMAP "* OK" greeting
  holders DIR             pids of processes with a file open under DIR (what is left of a Dovecot instance)
  wait SOCKET KEY WANT SECONDS PID
                          on the Redis at unix SOCKET: polls EXISTS KEY every 10 ms over one connection, then
                          counts omni:msg:* keys until there are WANT; prints the wall clock (ns) when that
                          was first seen. Exit 1 after SECONDS (printing the count), 2 when PID is gone.
                          One process and one connection: forking redis-cli per poll would take the CPU
                          the measured processes need.

Everything is generated from a fixed seed (mail dates follow the clock), so every run reads alike.
"""
import os
import random
import socket
import sys
import time
from email.message import EmailMessage
from email.utils import formatdate

SEED = 20261122


def cdr(path, lines):
    """Calls from 4,000 callers written the ways PBXs write them (E.164, national and 011-international
    with default_country US), dispositions in Asterisk's words. Messages: every call but a plain answered one."""
    rnd = random.Random(SEED)
    callers = []
    for k in range(4000):
        style = k % 10
        if style < 5:
            raw = "+1415%07d" % (5550000 + k)            # E.164
        elif style < 8:
            raw = "415%07d" % (5550000 + k)              # national, read with default_country US
        elif style < 9:
            raw = "011 44 20 7946 %04d" % k              # international, with the US prefix 011
        else:
            raw = "+336%08d" % (12340000 + k)            # E.164, another country
        name = rnd.choice(['Jane Roe', 'Acme, Ltd', 'Ana "Nina" Ruiz', 'J. Smith', ''])
        callers.append((raw, name))
    messages = 0
    start = 1763630000  # 2026-11-20
    with open(path, "w", newline="") as f:
        for i in range(lines):
            raw, name = callers[rnd.randrange(len(callers))]
            t = start + i * 3
            r = rnd.random()
            lastapp, lastdata, dst, answer, billsec = "Dial", "PJSIP/6000,30,t", "6000", "", 0
            if r < 0.40:
                disp = "NO ANSWER"
            elif r < 0.55:
                disp = "BUSY"
            elif r < 0.65:
                disp = "FAILED"
            elif r < 0.70:  # answered by voicemail: callback work
                disp, lastapp, lastdata, billsec = "ANSWERED", "VoiceMail", "6000@default", 20 + i % 60
            else:           # answered by a person: skipped
                disp, billsec = "ANSWERED", 30 + i % 300
            if disp != "ANSWERED" or lastapp == "VoiceMail":
                messages += 1
                last = "%d.%d" % (t, i)
            if disp == "ANSWERED":
                answer = '"%s"' % stamp(t + 5)
            duration = billsec + 5 if disp == "ANSWERED" else 18
            clid = '"%s" <%s>' % (name, raw) if name else raw
            fields = [q(""), q(raw), q(dst), q("from-pstn"), q(clid), q("PJSIP/trunk-%08x" % i),
                      q("PJSIP/6000-%08x" % i if disp == "ANSWERED" else ""), q(lastapp), q(lastdata),
                      q(stamp(t)), answer, q(stamp(t + duration)), str(duration), str(billsec), q(disp),
                      q("DOCUMENTATION"), q("%d.%d" % (t, i)), q("")]
            f.write(",".join(fields) + "\n")
    print(messages, last)


def q(s):
    return '"' + s.replace('"', '""') + '"'


def stamp(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


WORDS = ("order invoice delivery refund account password login error crash outage billing plan upgrade "
         "thanks please help urgent question shipping address card payment failed yesterday today week "
         "support ticket number again still cannot open receive send update").split()


def words(rnd, n):
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def paragraphs(rnd, n):
    return "\n\n".join(words(rnd, rnd.randint(25, 60)).capitalize() + "." for _ in range(n))


def mail(maildir, count):
    """COUNT messages from 500 senders; one in four a reply (In-Reply-To, References). Kinds in turn:
    plain us-ascii, multipart/alternative, quoted-printable UTF-8, multipart/mixed with a base64 PDF."""
    rnd = random.Random(SEED)
    new = os.path.join(maildir, "new")
    base = int(time.time()) - count * 60 - 3600  # recent: omni-email keeps a Date within 30 days of arrival
    for i in range(count):
        m = EmailMessage()
        last = i == count - 1
        sender = "last@bench.example" if last else "customer%d@example.com" % rnd.randrange(500)
        m["From"] = "Customer %d <%s>" % (i, sender)
        m["To"] = "support@example.com"
        m["Subject"] = "%s (#%d)" % (words(rnd, 5).capitalize(), i)
        m["Date"] = formatdate(base + i * 60)
        m["Message-ID"] = "<bench-%d-%d@example.com>" % (SEED, i)
        if i % 4 == 3:
            m["In-Reply-To"] = "<bench-%d-%d@example.com>" % (SEED, i - 1)
            m["References"] = m["In-Reply-To"]
        text = paragraphs(rnd, rnd.randint(1, 4)) + "\n\n-- \nCustomer %d\n" % i
        kind = i % 4
        if kind == 0:
            m.set_content(text)
        elif kind == 1:
            m.set_content(text)
            html = "".join("<p>%s</p>" % p for p in text.split("\n\n"))
            m.add_alternative("<html><body>%s</body></html>" % html, subtype="html")
        elif kind == 2:
            m.set_content("Grüße, déjà vu, naïve café: " + text + " — €%d\n" % i, charset="utf-8",
                          cte="quoted-printable")
        else:
            m.set_content(text)
            m.add_attachment(rnd.randbytes(rnd.randint(8, 40) * 1024), maintype="application",
                             subtype="pdf", filename="invoice-%d.pdf" % i)
        data = m.as_bytes()
        assert b"\r" not in data  # W= below counts one CR per LF
        # Named as Dovecot's LMTP/LDA delivery names them, with the size and the size with CRLF line ends
        # (RFC822.SIZE) in the name, and sorting in delivery order, so Dovecot numbers them in that order.
        name = "%d.M%06dP%d.bench,S=%d,W=%d" % (base + i * 60, i, os.getpid(), len(data),
                                               len(data) + data.count(b"\n"))
        with open(os.path.join(new, name), "wb") as f:
            f.write(data)
    print(count, "last@bench.example")


def freeport():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def greets(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.settimeout(1)
            return 0 if s.recv(256).startswith(b"* OK") else 1
    except OSError:
        return 1


def holders(top):
    mine = os.path.realpath(top) + "/"
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
            if any(os.readlink("/proc/%s/fd/%s" % (pid, fd)).startswith(mine) for fd in fds):
                print(pid)
        except OSError:
            continue


class Redis:
    """Just enough RESP over a unix socket for integer replies."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(10)
        self.s.connect(path)
        self.f = self.s.makefile("rb")

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        line = self.f.readline()
        if not line.startswith(b":"):
            raise RuntimeError("redis answered %r to %s" % (line, args[0]))
        return int(line[1:])


def wait(sock, key, want, seconds, pid):
    r = Redis(sock)
    deadline = time.monotonic() + seconds
    count = lambda: r.call("EVAL", "return #redis.call('keys', ARGV[1])", "0", "omni:msg:*")

    def alive():  # an exited child stays a zombie until the shell waits for it: not alive either
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
    while not r.call("EXISTS", key):
        if not alive():
            return 2
        if time.monotonic() > deadline:
            print(count())
            return 1
        time.sleep(0.01)
    done = time.time_ns()
    while True:
        n = count()  # KEYS inside Redis: cheap next to SCANning 10 keys a round trip, and rarely repeated
        if n >= want:
            print(done)
            return 0
        if not alive():
            return 2
        if time.monotonic() > deadline:
            print(n)
            return 1
        time.sleep(0.05)
        done = time.time_ns()


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "cdr" and len(argv) == 4:
        cdr(argv[2], int(argv[3]))
    elif cmd == "mail" and len(argv) == 4:
        mail(argv[2], int(argv[3]))
    elif cmd == "freeport" and len(argv) == 2:
        freeport()
    elif cmd == "greets" and len(argv) == 3:
        return greets(int(argv[2]))
    elif cmd == "holders" and len(argv) == 3:
        holders(argv[2])
    elif cmd == "wait" and len(argv) == 7:
        return wait(argv[2], argv[3], int(argv[4]), float(argv[5]), int(argv[6]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
