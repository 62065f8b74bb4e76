"""Every omnictl command explains itself with --help, without a configuration or Redis."""
import os
import re
import subprocess

from harness import BIN


def omnictl(*args):
    return subprocess.run([os.path.join(BIN, "omnictl"), "-c", "/nonexistent.yaml", *args], capture_output=True,
                          text=True, timeout=30)


def test_every_command_has_help():
    usage = omnictl("--help").stdout
    commands = sorted(set(re.findall(r"^  ([a-z]+)\b", usage, re.M)))
    assert {"status", "queue", "reload", "simulate", "keygen", "explain"} <= set(commands), usage
    for cmd in commands:
        r = omnictl(cmd, "--help")
        assert r.returncode == 0, (cmd, r.stdout, r.stderr)
        assert re.match(rf"usage: omnictl .*{cmd}", r.stdout), (cmd, r.stdout)
        assert len(r.stdout.splitlines()) >= 3, (cmd, r.stdout)  # forms and what it does, not the synopsis alone


def test_a_wrong_use_prints_the_command_forms():
    r = omnictl("bogus")
    assert r.returncode == 2 and "unknown command bogus" in r.stderr
    r = omnictl("-D", "noequals", "status")  # a bad option: before the configuration or Redis
    assert r.returncode == 2 and r.stderr == 'omnictl: -D takes KEY=VALUE, not "noequals"\n'
