"""The scripts of daemon/lua/ as the tests call them: each as Redis runs it (OMNI_BUILD/gen/lua/, written by
scripts/embed-lua), called by the names its "-- @args" line declares, its reply checked against its
"-- @reply" line, the same declarations the router's C reads (docs/redis.md, "Scripts")."""
import os
import re

from harness import ROOT

LUA = os.path.join(ROOT, "daemon", "lua")


def declaration(name, what):
    """The script's '@args' or '@reply' declaration as (name, type) pairs, plus the reply's shape."""
    text = open(os.path.join(LUA, name + ".lua")).read()
    line = re.search(rf"^-- @{what} (.*)$", text, re.M).group(1).split()
    shape = line.pop(0) if line and line[0] in ("each", "one") else "fields"
    return shape, [tuple(word.split(":")) for word in line]


class Scripts:
    def __init__(self, r, prefix="omni:"):
        self.r, self.prefix, self.sha = r, prefix, {}

    def body(self, name):
        return open(os.path.join(os.environ["OMNI_BUILD"], "gen", "lua", name + ".lua")).read()

    def call(self, name, *args, **kw):
        """Positional arguments after the prefix, or by name; a count or a name the script does not declare
        is a test bug, and so is a reply that does not match the declaration."""
        _, params = declaration(name, "args")
        fixed = [p for p, _ in params if not p.startswith("...")][1:]
        if kw:
            assert not args and set(kw) == set(fixed), (name, sorted(kw), fixed)
            args = [kw[p] for p in fixed]
        else:
            assert len(args) == len(fixed) or (len(args) > len(fixed) and params[-1][0].startswith("...")), \
                (name, len(args), fixed)
        if name not in self.sha:
            self.sha[name] = self.r.script_load(self.body(name))
        argv = [self.prefix] + [("1" if a else "0") if isinstance(a, bool) else str(a) for a in args]
        reply = self.r.evalsha(self.sha[name], 0, *argv)
        check_reply(name, reply)
        return reply

    def ingest(self, id, identity, channel, message, fingerprint, plan="", **fixed):
        """ingest.lua with one message (it takes several: six arguments each); returns its one record. plan:
        the first plan sent with it ("" none); days defaults to "{}"."""
        fixed.setdefault("days", "{}")
        reply = self.call("ingest", *[fixed.pop(p) for p, _ in declaration("ingest", "args")[1][1:-1]],
                          id, identity, channel, message, fingerprint, plan)
        assert not fixed, fixed
        assert len(reply) == len(declaration("ingest", "reply")[1]), reply
        return reply


def check_reply(name, reply):
    shape, fields = declaration(name, "reply")
    types = {"str": str, "int": int}
    if shape == "one":
        assert isinstance(reply, types[fields[0][1]]), (name, reply)
        return
    assert isinstance(reply, list), (name, reply)
    if shape == "each":
        assert len(reply) % len(fields) == 0, (name, reply)
    else:
        required = [f for f in fields if not f[0].startswith("?")]
        assert len(required) <= len(reply) <= len(fields), (name, reply)
    for i, v in enumerate(reply):
        assert isinstance(v, types[fields[i % len(fields)][1]]), (name, i, v)


def key_patterns():
    """daemon/lua/keys.def: {name: pattern}."""
    out = {}
    for line in open(os.path.join(LUA, "keys.def")):
        if line.strip() and not line.startswith("#"):
            name, pattern = line.split()
            out[name] = pattern
    return out


def key(name, *parts, prefix="omni:"):
    """A key as Lua's K.NAME(...) and C's KEY_NAME build it."""
    it = iter(parts)
    return prefix + re.sub(r"<[a-z]+>", lambda _: str(next(it)), key_patterns()[name])
