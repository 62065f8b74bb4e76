#!/usr/bin/python3
"""Redis memory per message, per open conversation and per customer, measured (docs/redis.md, "Memory").

    OMNI_BUILD=build/release bench/memory.py [N]

A private redis-server (appendonly, as in production) and omnirouted on the test clock, no routing rules.
INFO used_memory is read before and after each step, with N (default 2000) of each:
  1. N new customers each send a message: a customer, an identity, an open conversation, a message;
  2. each sends a second message: a message in an open conversation;
  3. every conversation is resolved, the clock moved past retention.resolved, all archived: what stays per
     customer (its identity and customer, archived_conversations, and until they expire its messages' seen:<id>
     markers and the conversation's archived:<n>);
  4. each sends a message again: a new open conversation of a known customer, with its first message.
Messages are like the samples: ~150 bytes of text, ~350 bytes of JSON as stored. Prints one line per figure."""
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("OMNI_BUILD", os.path.join(HERE, "..", "build", "release"))
import harness  # noqa: E402

harness.BUILD = os.path.abspath(os.environ["OMNI_BUILD"])
harness.BIN = os.path.join(harness.BUILD, "bin")
from harness import RedisServer, Router, message, submit, wait_for  # noqa: E402
from lua_contract import Scripts  # noqa: E402

TEXT = ("Hello, my order 48213 arrived damaged: the box was open and one of the two items is missing. "
        "Can you send the missing one or refund it? Thanks")


def used(r):
    return int(r.info("memory")["used_memory"])


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    tmp = tempfile.mkdtemp(prefix="omni-memory-")
    server = RedisServer(os.path.join(tmp, "redis")).start()
    rt = Router(tmp, server.address, extra={"retention": {"resolved": "1h", "dedup": "168h"}},
                env={"OMNIROUTER_TEST_CLOCK": "1"}, router_extra={"log_level": "info"}).start()
    r = server.client()
    figures = {}

    def step(name, messages):
        before = used(r)
        submit(rt.endpoint, os.path.join(tmp, "spool-" + name), messages, timeout=300)
        after = used(r)
        figures[name] = (after - before) / len(messages)

    people = [f"person{i}@example.com" for i in range(n)]
    step("new customer, conversation and message", [message(f"m1-{i}", frm=p, text=TEXT) for i, p in enumerate(people)])
    step("message in an open conversation", [message(f"m2-{i}", frm=p, text=TEXT) for i, p in enumerate(people)])
    stored = json.dumps(message("m1-0", frm=people[0], text=TEXT))
    convs = [r.hget(f"omni:msg:m1-{i}", "conversation") for i in range(n)]

    before = used(r)
    s = Scripts(r)
    now = int(time.time() * 1000) + int(r.get("omni:clock:offset") or 0)
    for cv in convs:
        s.call("resolve", caller="operator:bench", conversation=cv, who="bench", now=now)
    rt.ctl("clock", "advance", "2h")
    wait_for(lambda: r.zcard("omni:archive:due") == 0, 600, "every conversation archived")
    after = used(r)
    step("new conversation (and its first message) of a known customer",
         [message(f"m3-{i}", frm=p, text=TEXT) for i, p in enumerate(people)])
    # what an archived conversation leaves for good, and until its markers expire: measured on its keys
    seen = r.memory_usage("omni:seen:m1-0") + r.memory_usage("omni:seen:m2-0")
    tomb = r.memory_usage(f"omni:archived:{convs[0]}")
    left_per_customer = (after - before) / n
    version = r.info("server")["redis_version"]
    rt.stop()
    server.stop()

    per_msg = figures["message in an open conversation"]
    per_conv = figures["new conversation (and its first message) of a known customer"] - per_msg
    per_customer = figures["new customer, conversation and message"] - per_conv - per_msg
    print(f"N={n}, message JSON {len(stored)} bytes, redis-server {version}")
    print(f"per message in an open conversation:     {per_msg:8.0f} bytes")
    print(f"per open conversation (without messages): {per_conv:8.0f} bytes")
    print(f"per customer (identity and customer):     {per_customer:8.0f} bytes")
    print(f"archiving a conversation of 2 messages:   {left_per_customer:8.0f} bytes (negative: freed)")
    print(f"left after archiving until they expire:   seen:<id> {seen // 2} bytes per message, archived:<n> {tomb} bytes")


if __name__ == "__main__":
    main()
