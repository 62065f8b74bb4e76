"""`make run` (scripts/run-demo): every daemon on the embedded default, the work followed from arrival to an agent
and a partner (README.md "The two commands"), and Ctrl-C stopping all of it: nothing left running, nothing left
holding its ports, so the next `make run` works."""
import os
import signal
import socket
import subprocess
import time

from harness import BIN

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORTS = (18080, 18081, 18082, 18090, 18091, 9464)


def free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection in TIME_WAIT holds nothing
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def session_pids(sid):
    out = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
    return [int(p) for p, s in (line.split() for line in out.splitlines()) if int(s) == sid]


def start(log):
    return subprocess.Popen([os.path.join(TOP, "scripts", "run-demo"), os.path.dirname(BIN)], cwd=TOP,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(path, text, proc, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with open(path) as f:
            out = f.read()
        if text in out:
            return out
        assert proc.poll() is None, out[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} within {seconds} s:\n{out[-3000:]}")


def stop(proc):
    """Ctrl-C as a terminal sends it: SIGINT to the whole foreground group. Returns what was still running
    after it (then killed, so that a failure here does not break the tests after it)."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    end = time.monotonic() + 20
    while session_pids(proc.pid) and time.monotonic() < end:
        time.sleep(0.2)
    left = session_pids(proc.pid)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)
    return left


def test_make_run_shows_the_work_reach_people_and_ctrl_c_stops_everything(tmp_path):
    assert all(free(p) for p in PORTS), "a demo is already running on this machine"
    path = str(tmp_path / "demo.log")
    for attempt in (1, 2):  # twice: what the first leaves behind must not break the second
        with open(path, "w") as log:
            proc = start(log)
        left = []
        try:
            out = wait_for(path, "everything keeps running", proc, 240)
            assert "ACK email:support:1:101" in out, out
            assert "signature ok" in out, out  # the partner received signed work
            assert '"outcome":"accepted"' in out, out  # an agent accepted an offer through the API
            assert "/console/" in out, out
        finally:
            left = stop(proc)
        assert left == [], open(path).read()[-3000:]  # nothing outlives Ctrl-C
        assert proc.returncode == 0, open(path).read()[-3000:]
        busy = [p for p in PORTS if not free(p)]
        assert busy == [], f"ports still held after Ctrl-C: {busy}"
