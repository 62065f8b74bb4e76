"""The configuration as docs/configuration.md describes it, checked through `--check-config` alone (no
router started): every scalar key of the reference at and past its bounds, of the wrong type, misspelt and
written twice, in the file and as -D, with the exact FILE:LINE:COLUMN: KEY: MESSAGE lines; the YAML the
doc refuses or accepts; and what -t prints and exits with. The reference is read from the program itself
(`--config-reference`), so a key added later is covered without editing this file."""
import os
import re
import subprocess

import pytest

from harness import BIN

ROUTER = os.path.join(BIN, "omnirouted")
API = os.path.join(BIN, "omni-api")


def check(tmp_path, text, *overrides, prog=ROUTER, raw=None, state=True):
    """Runs PROG -t on text (bytes: raw) with the -D overrides; returns (status, stdout, stderr, path)."""
    path = tmp_path / "x.yaml"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text(text)
    args = [prog, "-t", str(path)]
    if prog == ROUTER and state:  # the default /var/lib/omnirouter need not exist here
        args += ["-D", "router.state_dir=%s" % tmp_path]
    for o in overrides:
        args += ["-D", o]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr, str(path)


def refused(tmp_path, text, lines, *overrides, prog=ROUTER):
    """Asserts text is refused with exactly lines ("%s" stands for the file), then the count line."""
    rc, out, err, path = check(tmp_path, text, *overrides, prog=prog)
    want = [l.replace("%s", path) for l in lines]
    name = os.path.basename(prog)
    want.append("%s: %d configuration error%s; not started" % (name, len(lines), "" if len(lines) == 1 else "s"))
    assert err.splitlines() == want, err
    assert out == ""
    assert rc == 1


def accepted(tmp_path, text, *overrides, prog=ROUTER):
    rc, out, err, _ = check(tmp_path, text, *overrides, prog=prog)
    assert (rc, out, err) == (0, "configuration OK\n", ""), err


# ---- every scalar key of the reference, at and past its bounds ----

def reference_keys(prog):
    ref = subprocess.run([prog, "--config-reference"], capture_output=True, text=True, check=True).stdout
    return re.findall(r"^- `([a-z_.]+)`: (.*?)(?:, optional)?, default `([^`]*)`\.$", ref, re.M)


# Keys whose bounds meet a rule across keys (docs/configuration.md reference prose): the -D that makes the
# bound itself valid.
ACROSS = {
    "redis.timeout_ms": ["redis.wait_timeout_ms=10"],
    "redis.wait_timeout_ms": ["redis.timeout_ms=600000"],
    "redis.wait_replicas": ["redis.address=tcp://127.0.0.1:6379"],
    "follow_up.after": ["retention.resolved=315360000", "teams=[{name: a}]",
                        "routing.rules=[{name: all, targets: [{team: a}]}]"],
}

WANTED = {
    "integer": "an integer",
    "duration in ms": "a duration in milliseconds (500, 500ms, 5s)",
    "duration in s": "a duration in seconds (60, 60s, 1m)",
    "size in bytes": "a size in bytes (262144, 256k, 1m)",
}


def nested(key, value):
    """key written nested, as the file must; returns (text, line, column of the value)."""
    parts = key.split(".")
    text = "".join("  " * i + p + ":\n" for i, p in enumerate(parts[:-1]))
    prefix = "  " * (len(parts) - 1) + parts[-1] + ": "
    return text + prefix + value + "\n", len(parts), len(prefix) + 1


def bound_cases(prog):
    cases = []
    for key, typ, default in reference_keys(prog):
        m = re.match(r"(integer|duration in ms|duration in s|size in bytes) (-?\d+)\.\.(\d+)$", typ)
        if m:
            lo, hi = int(m.group(2)), int(m.group(3))
            want = WANTED[m.group(1)]
            cases += [(key, str(lo), None), (key, str(hi), None), (key, '"%d"' % hi, None),
                      (key, str(lo - 1), "%d is below the minimum %d" % (lo - 1, lo)),
                      (key, str(hi + 1), "%d is above the maximum %d" % (hi + 1, hi)),
                      (key, "abc", 'expected %s, got "abc"' % want),
                      (key, "1.5", 'expected %s, got "1.5"' % want),
                      (key, "[1]", "expected %s, got a list" % want)]
            if m.group(1) == "duration in s":
                cases.append((key, "1500ms", "1500ms is not a whole number of s"))
            if m.group(1) in ("duration in ms", "size in bytes"):
                units = [("h", 3600000), ("m", 60000), ("s", 1000)] if "duration" in typ else \
                        [("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)]
                for u, mult in units:
                    if hi >= mult and hi % mult == 0:
                        cases += [(key, "%d%s" % (hi // mult, u), None),
                                  (key, "%d%s" % (hi // mult + 1, u), "%d%s (%d) is above the maximum %d" % (
                                      hi // mult + 1, u, (hi // mult + 1) * mult, hi))]
                        break
        elif typ == "boolean":
            cases += [(key, v, None) for v in ("true", "false", "yes", "no", "on", "off")]
            cases.append((key, "maybe", 'expected true or false, got "maybe"'))
        elif typ.startswith("one of "):
            names = typ[len("one of "):].split(", ")
            cases += [(key, n, None) for n in names]
            cases.append((key, "zzzzqqq", 'expected one of %s, got "zzzzqqq"' % ", ".join(names)))
        elif default not in ("none", "") and not default.startswith("[") and key != "router.state_dir":
            cases.append((key, '"%s"' % default, None))
    return cases


@pytest.mark.parametrize("prog", [ROUTER, API], ids=["omnirouted", "omni-api"])
def test_reference_bounds_in_file_and_override(tmp_path, prog):
    across = ACROSS if prog == ROUTER else {}
    bad = []
    for key, value, error in bound_cases(prog):
        extra = across.get(key, [])
        text, line, col = nested(key, value)
        rc, out, err, path = check(tmp_path, text, *extra, prog=prog)
        if error is None:
            ok = (rc, out, err) == (0, "configuration OK\n", "")
        else:
            ok = rc == 1 and err.splitlines()[:1] == ["%s:%d:%d: %s: %s" % (path, line, col, key, error)]
        if not ok:
            bad.append("file %s=%s: %s" % (key, value, err.strip()))
        if value.startswith(("[", '"')):
            continue
        rc, out, err, path = check(tmp_path, "", *extra, "%s=%s" % (key, value), prog=prog)
        n = len(extra) + (2 if prog == ROUTER else 1)
        if error is None:
            ok = (rc, out, err) == (0, "configuration OK\n", "")
        else:
            ok = rc == 1 and err.splitlines()[:1] == ["command line:%d:1: %s: %s" % (n, key, error)]
        if not ok:
            bad.append("-D %s=%s: %s" % (key, value, err.strip()))
    assert bad == []


def test_unknown_and_duplicate_keys_everywhere(tmp_path):
    """Each scalar key misspelt gets a did-you-mean at the key; written twice, the second is named."""
    bad = []
    for key, typ, default in reference_keys(ROUTER):
        if default in ("none", "") or default.startswith("[") or key == "router.state_dir":
            continue
        parts = key.split(".")
        text, line, _ = nested(key + "x", '"%s"' % default)
        col = 2 * (len(parts) - 1) + 1
        rc, _, err, path = check(tmp_path, text)
        if err.splitlines()[:1] != ["%s:%d:%d: %sx: unknown key (did you mean %s?)" % (path, line, col, key, key)]:
            bad.append(err)
        text, line, _ = nested(key, '"%s"' % default)
        text += text.splitlines(keepends=True)[-1]
        rc, _, err, path = check(tmp_path, text, *ACROSS.get(key, []))
        if rc != 1 or err.splitlines()[:1] != ["%s:%d:%d: %s: duplicate key (first at line %d column %d)" % (
                path, line + 1, col, key, line, col)]:
            bad.append(err)
    assert bad == []


# ---- the follow-up's bound: below retention.resolved, whose maximum is 315360000 ----

def test_follow_up_after_bound_is_reachable(tmp_path):
    policy = ("teams: [{name: core}]\nrouting:\n  rules: [{name: all, targets: [{team: core}]}]\n"
              "retention:\n  resolved: 315360000\n")
    accepted(tmp_path, policy + "follow_up:\n  after: 315359999\n")
    refused(tmp_path, policy + "follow_up:\n  after: 315360000\n",
            ["%s:7:10: follow_up.after: 315360000 is above the maximum 315359999"])
    # below the maximum, still below retention.resolved as written
    refused(tmp_path, policy.replace("315360000", "3600") + "follow_up:\n  after: 1h\n",
            ["%s:7:10: follow_up.after: 3600 s is not below retention.resolved (3600 s): the resolved conversation "
             "would be archived, and gone from Redis, before its follow-up opens"])


# ---- YAML the doc accepts and refuses ----

@pytest.mark.parametrize("text", ["", "# nothing but comments\n", "---\n", "---\n...\n", "~\n", "router:\n",
                                  "router:\n  # tick_ms: 5\n", "\ufeffrouter:\n  tick_ms: 5\n",
                                  "router:\r\n  tick_ms: 5\r\n"])
def test_empty_and_plain_files_mean_the_defaults(tmp_path, text):
    accepted(tmp_path, text)


def test_yaml_refused(tmp_path):
    refused(tmp_path, "- a\n- b\n", ["%s:1:1: expected a mapping of keys at the top level, got a list"])
    refused(tmp_path, "just words\n", ['%s:1:1: expected a mapping of keys at the top level, got "just words"'])
    refused(tmp_path, "router: {}\n---\nredis: {}\n", ["%s:2:1: a second YAML document (---); a config file holds one"])
    refused(tmp_path, "r: &b {tick_ms: 5}\nrouter: *b\n",
            ["%s:1:4: anchors (&b) are not supported", "%s:2:9: aliases (*b) are not supported; write the value out"])
    refused(tmp_path, "router:\n\ttick_ms: 5\n",
            ["%s:2:1: syntax error: found character that cannot start any token (while scanning for the next token "
             "at line 2 column 1)"])
    refused(tmp_path, "router.tick_ms: 100\n",
            ['%s:1:1: router.tick_ms: write the key nested ("router:" then the rest under it)'])
    refused(tmp_path, "router:\n  tick_ms:\n", ["%s:2:11: router.tick_ms: expected a duration in milliseconds "
                                               "(500, 500ms, 5s), got null"])
    rc, out, err, path = check(tmp_path, None, raw=b"router:\n  tick_ms: 5\n# \xff\n")
    assert (rc, err.splitlines()[0]) == (1, "%s:3:3: syntax error: invalid leading UTF-8 octet (#FF)" % path)


def test_deep_nesting_is_refused_at_once(tmp_path):
    """libyaml's scanner works in proportion to the depth for each token: 200 KB of '[' took minutes."""
    depth = 100000
    refused(tmp_path, "router:\n  ingest: " + "[" * depth + "]" * depth + "\n",
            ["%s:2:73: nesting deeper than 64 levels (lists and mappings inside each other); no key needs more"])
    refused(tmp_path, "", ["command line:2:1: router.ingest: nesting deeper than 64 levels (lists and mappings "
                           "inside each other); no key needs more"], "router.ingest=" + "[" * depth)
    # the deepest key there is, 10 deep, is fine
    accepted(tmp_path, "teams: [{name: a}]\nrouting:\n  rules:\n    - name: r\n      when:\n        any:\n"
                       "          - not:\n              - channel: [sms]\n      targets: [{team: a}]\n"
                       "    - {name: all, targets: [{team: a}]}\n")


def test_long_values_stay_one_short_line(tmp_path):
    rc, _, err, path = check(tmp_path, "router:\n  log_level: " + "x" * 2000000 + "\n")
    assert rc == 1
    first = err.splitlines()[0]
    assert first.startswith("%s:2:14: router.log_level: expected one of debug, info, warn, error, got \"xxx" % path)
    assert first.endswith('..."') and len(first) < 300


# ---- what -t prints and exits with ----

def test_errors_of_file_and_command_line_in_one_pass(tmp_path):
    refused(tmp_path, "router:\n  tick_ms: 0\n  tikc_ms: 5\n  tick_ms: 2s\nlimits:\n  message_bytes: 32m\n",
            ["%s:2:12: router.tick_ms: 0 is below the minimum 1",
             "%s:3:3: router.tikc_ms: unknown key (did you mean router.tick_ms?)",
             "%s:4:3: router.tick_ms: duplicate key (first at line 2 column 3)",
             "%s:4:12: router.tick_ms: 2s (2000) is above the maximum 1000",
             "%s:6:18: limits.message_bytes: 32m (33554432) is above the maximum 16777216",
             "command line:2:1: router.tick_ms: expected a duration in milliseconds (500, 500ms, 5s), got \"abc\"",
             "command line:3:1: router.tikc_ms: unknown key (did you mean router.tick_ms?)"],
            "router.tick_ms=abc", "router.tikc_ms=5")


def test_unreadable_file_comes_before_the_command_line(tmp_path):
    p = subprocess.run([ROUTER, "-t", str(tmp_path / "nosuch.yaml"), "-D", "router.tick_ms=abc"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stderr.splitlines() == [
        "%s: cannot read: No such file or directory" % (tmp_path / "nosuch.yaml"),
        'command line:1:1: router.tick_ms: expected a duration in milliseconds (500, 500ms, 5s), got "abc"',
        "omnirouted: 2 configuration errors; not started"]
    p = subprocess.run([ROUTER, "-t", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stderr.splitlines()[0]) == (1, "%s: cannot read: Is a directory" % tmp_path)


@pytest.mark.parametrize("arg", ["router.tick_ms", "=5"])
def test_override_without_key_value_is_a_usage_error(tmp_path, arg):
    p = subprocess.run([ROUTER, "-t", "/dev/null", "-D", "router.tick_ms=abc", "-D", arg],
                       capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == 'omnirouted: command line:2:1: expected -D KEY=VALUE, got "%s"\n' % arg


def test_overrides_as_documented(tmp_path):
    accepted(tmp_path, "router:\n  tick_ms: 5\n", "router.ingest=[ipc://omnirouter-ingest.sock, ipc://b.sock]",
             "redis.password=p@ss: #1", "redis.address=", "router={tick_ms: 50, log_level: debug}",
             "router.tick_ms=1s", "limits.message_bytes=512k",
             "teams=[{name: core}, {name: acme, kind: outsourced, contract: {categories: [general]}}]")
    refused(tmp_path, "", ["command line:2:1: teams[0].name: a list is given whole, not entry by entry: -D "
                           "'teams=[...]' (YAML flow syntax)"], "teams[0].name=x")
    # the file must be valid on its own, whatever -D replaces
    refused(tmp_path, "router:\n  tick_ms: 0\n", ["%s:2:12: router.tick_ms: 0 is below the minimum 1"],
            "router.tick_ms=5")


def test_what_a_duplicate_holds_is_checked_too(tmp_path):
    refused(tmp_path, "router:\n  tick_ms: 5\nrouter:\n  tick_ms: 0\n  bogus: 1\n",
            ["%s:3:1: router: duplicate key (first at line 1 column 1)",
             "%s:4:12: router.tick_ms: 0 is below the minimum 1",
             "%s:5:3: router.bogus: unknown key"])


def test_booleans_in_any_case_and_empty_values(tmp_path):
    accepted(tmp_path, "router:\n  insecure_tcp: True\nownership:\n  prefer_previous_owner: OFF\nteams:\n"
                       "customers:\n  vip: ~\nredis:\n  password:\n")
    refused(tmp_path, "router:\n  insecure_tcp: 1\n  ingest:\n",
            ['%s:2:17: router.insecure_tcp: expected true or false, got "1"',
             "%s:3:10: router.ingest: has 0 entries; at least 1 needed"])


def test_a_duplicate_among_many_agents_is_found_once_at_its_place(tmp_path):
    """Duplicate ids are found by sorting (they were compared with every earlier one: 20 s for -t at the 100000
    agents the reference allows, now about 1 s; how long is the bench's business, not a test's): the one
    duplicate among many is named once, at its place, with the first one's."""
    n = 20000
    agents = "".join("  - {id: a%d, teams: [t], skills: ['s:2'], capacity: {email: 2}}\n" % i for i in range(n - 1))
    text = "teams: [{name: t}]\nrouting:\n  rules: [{name: all, targets: [{team: t}]}]\nagents:\n" + agents
    refused(tmp_path, text + "  - {id: a7, teams: [t]}\n",
            ['%%s:%d:10: agents[%d].id: agent "a7" is defined twice (first at line 12 column 10)' % (n + 4, n - 1)])


def test_warnings_of_the_largest_policy(tmp_path):
    """The warnings look at every target of every routing rule for every skill classification asks; each team's
    agents are indexed once (each look scanned all 100000 agents: 25 s for -t, and at each start and reload; now
    about 1 s): the same warnings, every one."""
    teams = "".join("  - {name: t%d}\n" % i for i in range(1024))
    agents = "".join("  - {id: a%d, teams: [t%d], skills: ['s%d:2']}\n" % (i, i % 1024, i % 16) for i in range(100000))
    rules = "".join("    - {name: c%d, when: {channel: [sms]}, category: k%d, skills: ['s%d:%d']}\n" % (
        i, i, i % 16, 1 + i % 5) for i in range(1024))
    routes = "".join("    - {name: r%d, when: {category: [k%d]}, targets: [%s]}\n" % (
        i, i, ", ".join("{team: t%d}" % ((i * 16 + j) % 1024) for j in range(16))) for i in range(1023))
    text = ("teams:\n" + teams + "agents:\n" + agents + "classification:\n  rules:\n" + rules + "routing:\n  rules:\n"
            + routes + "    - {name: all, targets: [{team: t0}]}\n")
    rc, out, err, path = check(tmp_path, text)
    assert (rc, out) == (0, "configuration OK\n")
    lines = err.splitlines()
    assert len(lines) == 614 and all(": warning: routing.rules[" in l for l in lines)
    assert lines[-1] == ("%s:103078:7: warning: routing.rules[1023]: rule all can be given work that classification "
                         "rule c1023 asks skill s15:4 for (category k1023), but none of its targets can ever take it: "
                         "no agent of t0 has s15:4 or more" % path)


def test_a_duplicate_in_a_mapping_of_many_keys(tmp_path):
    """Duplicate keys are found by sorting a mapping's keys (each was compared with every earlier one: 36 s for
    a 1 MB file of 100000 keys): every unknown key named, and the duplicate at its place with the first one's."""
    n = 20000
    text = "router:\n" + "".join("  k%d: 1\n" % i for i in range(n)) + "  k5: 2\n"
    rc, out, err, path = check(tmp_path, text)
    lines = err.splitlines()
    assert rc == 1 and lines[-1] == "omnirouted: %d configuration errors; not started" % (n + 1)
    assert lines[-2] == "%s:%d:3: router.k5: duplicate key (first at line 7 column 3)" % (path, n + 2)


@pytest.mark.parametrize("value,error", [
    ("500ms", None), ("1s", None), ('"100"', None), ("1d", "got \"1d\""), ("5S", "got \"5S\""),
    ("1h30m", "got \"1h30m\""), ('"5 s"', "got \"5 s\""), ("1.5s", "got \"1.5s\""), ("2s", "2s (2000) is above the maximum 1000"),
])
def test_duration_syntax(tmp_path, value, error):
    text = "router:\n  tick_ms: %s\n" % value
    if error is None:
        accepted(tmp_path, text)
    elif error.startswith("got"):
        refused(tmp_path, text, ["%%s:2:12: router.tick_ms: expected a duration in milliseconds (500, 500ms, 5s), %s" % error])
    else:
        refused(tmp_path, text, ["%%s:2:12: router.tick_ms: %s" % error])


@pytest.mark.parametrize("value,error", [
    ("256k", None), ("256kb", None), ("256KiB", None), ("256K", None), ("1m", None), ("262144", None), ("1024b", None),
    ("64kb", None), ("512b", "512b (512) is below the minimum 1024"), ("1.5m", "expected a size in bytes (262144, 256k, 1m), got \"1.5m\""),
    ("1t", "expected a size in bytes (262144, 256k, 1m), got \"1t\""), ("17m", "17m (17825792) is above the maximum 16777216"),
])
def test_size_syntax(tmp_path, value, error):
    text = "limits:\n  message_bytes: %s\n" % value
    if error is None:
        accepted(tmp_path, text)
    else:
        refused(tmp_path, text, ["%%s:2:18: limits.message_bytes: %s" % error])


def test_columns_count_characters(tmp_path):
    rc, _, err, path = check(tmp_path, None, raw='redis: {password: "éé", database: 99}\n'.encode())
    assert (rc, err.splitlines()[0]) == (1, "%s:1:35: redis.database: 99 is above the maximum 15" % path)
