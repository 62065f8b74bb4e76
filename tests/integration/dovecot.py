"""A private Dovecot IMAP server for tests (../shared/fixtures/imap/README.md).

Dovecot(users={"alice": "secret"}, tls=False) writes the fixtures' dovecot-test.conf.in into a scratch
directory with a free loopback port (with tls: STARTTLS on it, an imaps port too, and a self-signed
certificate for 127.0.0.1 made with openssl), a passwd-file of the users (mail owned by the `dovecot` user: Dovecot refuses
uid 0 for mail) and one Maildir each. start() runs `dovecot -c CONF` and returns once the port answers
"* OK" (a deadline, never a bare sleep); stop() runs `doveadm -c CONF stop` and waits for the master to
go. deliver() drops messages into Maildir/new as an MTA would. Needs root (Dovecot drops privileges to
the users' uid) and Debian's dovecot-imapd.
"""
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("OMNI_FIXTURES", TOP.parent / "shared" / "fixtures"))
CONF_TEMPLATE = FIXTURES / "imap" / "dovecot-test.conf.in"


def free_port():
    """A loopback port nobody listens on right now (Dovecot binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, what, interval=0.05):
    """Polls cond() until it returns something truthy; raises TimeoutError naming what after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def greets(port):
    """True when 127.0.0.1:port answers with an IMAP "* OK" greeting."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.settimeout(1)
            return s.recv(256).startswith(b"* OK")
    except OSError:
        return False


def listens(port):
    """True when something accepts connections on 127.0.0.1:port (a TLS port does not greet in clear)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Dovecot:
    def __init__(self, users=None, tls=False):
        self.users = users or {"alice": "secret"}
        self.tls = tls
        self.tls_port = None
        # Under /tmp (world-traversable), not pytest's 0700 tmp_path: the mail processes run as `dovecot`.
        self.dir = Path(tempfile.mkdtemp(prefix="omni-dovecot-"))
        os.chmod(self.dir, 0o755)
        self.conf = self.dir / "dovecot.conf"
        self.log = self.dir / "dovecot.log"
        self.port = None
        self.started = False
        self._seq = 0
        pw = pwd.getpwnam("dovecot")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        for sub in ("run", "state"):
            (self.dir / sub).mkdir()
        with open(self.dir / "passwd", "w") as f:
            for user, password in self.users.items():
                f.write("%s:{PLAIN}%s:%d:%d::%s\n" % (user, password, self.uid, self.gid, self.home(user)))
                for sub in ("cur", "new", "tmp"):
                    (self.maildir(user) / sub).mkdir(parents=True)
        self._chown()

    def home(self, user):
        return self.dir / "home" / user

    def maildir(self, user):
        return self.home(user) / "Maildir"

    def url(self):
        return "imap://127.0.0.1:%d" % self.port

    def imaps_url(self):
        return "imaps://127.0.0.1:%d" % self.tls_port

    def ca_file(self):
        """With tls: the self-signed certificate (for 127.0.0.1) that clients must trust."""
        return self.dir / "cert.pem"

    def _make_cert(self):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(self.dir / "key.pem"), "-out", str(self.ca_file())],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _chown(self):
        for root, dirs, files in os.walk(self.dir / "home"):
            for name in dirs + files + [""]:
                os.chown(os.path.join(root, name), self.uid, self.gid)

    def _write_conf(self):
        text = CONF_TEMPLATE.read_text().replace("@DIR@", str(self.dir))
        text = text.replace("instance_name = omni-test", "instance_name = omni-test-%d" % self.port)
        text = text.replace("port = 14300", "port = %d" % self.port)
        if self.tls:
            # STARTTLS on the imap port and TLS from the start on an imaps port.
            if not self.ca_file().exists():
                self._make_cert()
            self.tls_port = free_port()
            text = text.replace("ssl = no", "ssl = yes\nssl_cert = <%s\nssl_key = <%s"
                                % (self.ca_file(), self.dir / "key.pem"))
            text = text.replace("port = 0", "port = %d" % self.tls_port)
        self.conf.write_text(text)

    def start(self, timeout=15, same_port=False):
        """Starts the server on a free port (same_port: the one it had, for clients that know it); a
        port taken in between is retried with another one."""
        for attempt in range(3):
            if not (same_port and self.port and attempt == 0):
                self.port = free_port()
            self._write_conf()
            # No pipes: the daemon would hold them open and run() would wait for it to exit.
            with open(self.dir / "start.err", "wb") as err:
                subprocess.run(["dovecot", "-c", str(self.conf)], check=True, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=err)
            self.started = True
            try:
                wait_for(lambda: greets(self.port), timeout, "Dovecot to greet on port %d" % self.port)
                if self.tls:
                    wait_for(lambda: listens(self.tls_port), timeout, "Dovecot's imaps port %d" % self.tls_port)
                return self
            except TimeoutError:
                self.stop()
        raise RuntimeError("Dovecot did not start; log:\n" + self.log_text())

    def _holders(self):
        """Pids of processes with a file open in this instance's directory: the master, and the mail
        processes of connections still open, which outlive the master for a moment."""
        mine = str(self.dir) + "/"
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                fds = os.listdir("/proc/%s/fd" % pid)
                if any(os.readlink("/proc/%s/fd/%s" % (pid, fd)).startswith(mine) for fd in fds):
                    pids.append(int(pid))
            except OSError:
                continue
        return pids

    def stop(self, timeout=15):
        """Stops the server and waits until none of its processes is left (a mail process still running
        would write the old UIDs back over reset_uids())."""
        if not self.started:
            return
        subprocess.run(["doveadm", "-c", str(self.conf), "stop"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # A mail process serving an idle client notices its master's end only when the client speaks:
        # what is left after a moment is ended (only this instance's, found by their open files).
        for sig, wait in ((None, 2), (15, 5), (9, timeout)):
            for pid in self._holders() if sig else []:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            try:
                wait_for(lambda: not self._holders(), wait, "Dovecot's processes to exit")
                break
            except TimeoutError:
                if sig == 9:
                    raise
        self.started = False

    def reset_uids(self, user="alice"):
        """Forgets every UID of user's INBOX (as a rebuilt or migrated mailbox does): the next start
        gives the mailbox a new UIDVALIDITY and numbers the messages again. Call while stopped."""
        md = self.maildir(user)
        for p in list(md.iterdir()):
            if p.name == "dovecot-uidlist" or p.name.startswith("dovecot.index"):
                p.unlink()

    def deliver(self, user, data, sync=True):
        """Drops one message (bytes) into user's Maildir/new, as an MTA does. With sync (the server
        running), opens the mailbox at once so Dovecot numbers it now: UIDs then follow delivery order.
        Returns the message's UID (sync) or None."""
        self._seq += 1
        name = "%d.M%dP%d.omnitest" % (int(time.time()), self._seq, os.getpid())
        tmp = self.maildir(user) / "tmp" / name
        tmp.write_bytes(data)
        os.chown(tmp, self.uid, self.gid)
        os.rename(tmp, self.maildir(user) / "new" / name)
        if not sync:
            return None
        return self.status(user)[1] - 1

    def imap(self, user):
        """A logged-in imaplib client (the caller logs out)."""
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        c.login(user, self.users[user])
        return c

    def status(self, user, mailbox="INBOX"):
        """(UIDVALIDITY, UIDNEXT) of the mailbox; selecting it makes Dovecot number new mail."""
        c = self.imap(user)
        try:
            c.select(mailbox)
            typ, data = c.status(mailbox, "(UIDVALIDITY UIDNEXT)")
            words = data[0].decode().replace("(", " ").replace(")", " ").split()
            return int(words[words.index("UIDVALIDITY") + 1]), int(words[words.index("UIDNEXT") + 1])
        finally:
            c.logout()

    def search(self, user, criteria, mailbox="INBOX"):
        """UIDs matching a UID SEARCH, e.g. search("alice", "UNSEEN")."""
        c = self.imap(user)
        try:
            c.select(mailbox, readonly=True)
            typ, data = c.uid("SEARCH", None, criteria)
            return [int(x) for x in data[0].split()]
        finally:
            c.logout()

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
