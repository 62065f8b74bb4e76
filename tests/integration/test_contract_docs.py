"""docs/redis.md tells the truth about the keys and the scripts: every key pattern in daemon/lua/keys.def (the
one place keys are spelled: Lua, C and the tests build them from it) is documented, and every script
declares its boundary."""
import os
import re

from harness import ROOT
from lua_contract import LUA, declaration, key_patterns


def test_every_key_is_documented():
    doc = open(os.path.join(ROOT, "docs", "redis.md")).read().replace("\\|", "|")
    missing = [p for p in key_patterns().values() if f"`omni:{p}`" not in doc]
    assert not missing, f"keys in daemon/lua/keys.def missing from docs/redis.md: {missing}"


def test_every_script_declares_its_arguments_and_reply():
    for f in sorted(os.listdir(LUA)):
        if f.endswith(".lua") and not f.startswith("_"):
            shape, args = declaration(f[:-4], "args")
            assert args[0] == ("prefix", "str"), f
            assert declaration(f[:-4], "reply")[1], f
            assert not re.search(r"\bARGV\[", open(os.path.join(LUA, f)).read()), f"{f} reads ARGV by position"
