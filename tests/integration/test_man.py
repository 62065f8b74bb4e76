"""Every program has a manual page, the pages render without warnings, and omnictl's page names every command
its usage lists (so a new command cannot be left out)."""
import os
import re
import subprocess

from harness import BIN, ROOT

MAN = os.path.join(ROOT, "man")


def pages():
    return sorted(os.path.join(MAN, f) for f in os.listdir(MAN))


def names_of(page):
    text = open(page).read()
    section = text.split(".SH NAME", 1)[1].split(".SH", 1)[0]
    return set(re.findall(r"[\w.-]+", section.split("\\-", 1)[0].replace("\\-", "-")))


def test_every_program_has_a_page():
    named = set().union(*(names_of(p) for p in pages()))
    missing = [p for p in os.listdir(BIN) if p not in named]
    assert not missing, f"programs without a manual page: {missing}"


def test_pages_render_cleanly():
    # as printed, and as man(1) shows them in an 80-column terminal (a 78-column line): no table wider than that
    for p in pages():
        for opts in (["-ww"], ["-Tutf8", "-rLL=78n", "-ww"]):
            r = subprocess.run(["groff", "-t", "-man", *opts, "-z", p], capture_output=True, text=True)
            assert r.returncode == 0 and not r.stderr, (p, opts, r.stderr)


def test_omnictl_page_names_every_command():
    usage = subprocess.run([os.path.join(BIN, "omnictl"), "--help"], capture_output=True, text=True).stdout
    commands = set(re.findall(r"^  ([a-z]+)\b", usage, re.M))
    page = open(os.path.join(MAN, "omnictl.1")).read()
    missing = [c for c in commands if not re.search(rf"^\.B[IR]? \"?{c}\b", page, re.M)]
    assert not missing, f"omnictl commands missing from man/omnictl.1: {missing}"
