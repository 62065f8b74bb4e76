"""OMNI/1 over tcp with CURVE, ipc socket permissions, and omnictl keygen (docs/protocol.md "Security")."""
import grp
import hashlib
import os
import re
import stat
import subprocess

import pytest
import zmq
import zmq.utils.z85

from harness import BIN, Peer, Router, free_port, message, stored_count, submit, wait_for


def keygen(directory, name):
    """omnictl keygen; returns (public key bytes, path of the .key, path of the .pub, stdout)."""
    base = os.path.join(directory, name)
    r = subprocess.run([os.path.join(BIN, "omnictl"), "keygen", base], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    with open(base + ".pub") as f:
        pub = f.read().strip().encode()
    return pub, base + ".key", base + ".pub", r.stdout


def fingerprint(z85_key):
    return hashlib.sha256(zmq.utils.z85.decode(z85_key)).hexdigest()[:16]


@pytest.fixture
def keys(tmp_path):
    d = tmp_path / "keys"
    d.mkdir()
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    k = {name: keygen(str(d), name) for name in ("router", "conn", "conn2")}
    for name in ("conn", "conn2"):  # a directory of .pub files, as router.curve.allowed_keys may name
        os.link(k[name][2], str(allowed / (name + ".pub")))
    k["allowed_dir"] = str(allowed)
    return k


def curve_router(tmp_path, redis_server, keys, **router_extra):
    ep = f"tcp://127.0.0.1:{free_port()}"
    extra = {"curve": {"secret_key_file": keys["router"][1], "allowed_keys": [keys["allowed_dir"]]}}
    extra.update(router_extra)
    return Router(str(tmp_path), redis_server.address, endpoint=ep, router_extra=extra)


def test_keygen_writes_a_private_secret_and_prints_the_fingerprint(tmp_path):
    pub, key, pubfile, out = keygen(str(tmp_path), "edge")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pubfile).st_mode) == 0o644
    assert f"public key: {pub.decode()}" in out
    assert f"fingerprint: {fingerprint(pub)}" in out
    with open(key) as f:
        secret = f.read().strip().encode()
    assert zmq.curve_public(secret) == pub  # the two files are one pair
    again = subprocess.run([os.path.join(BIN, "omnictl"), "keygen", str(tmp_path / "edge")], capture_output=True,
                           text=True, timeout=30)
    assert again.returncode == 1 and "exists" in again.stderr  # never overwrites a key
    with open(key) as f:
        assert f.read().strip().encode() == secret


def test_tcp_without_curve_refuses_to_start(tmp_path):
    ep = f"tcp://127.0.0.1:{free_port()}"
    conf = tmp_path / "r.yaml"
    conf.write_text(f"router:\n  state_dir: {tmp_path}/state\n  ingest:\n    - {ep}\n")
    r = subprocess.run([os.path.join(BIN, "omnirouted"), "--config", str(conf)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 1, r.stderr
    assert re.search(re.escape(f"{conf}:") + r"\d+:\d+: router\.ingest\[0\]: " + re.escape(ep), r.stderr), r.stderr
    assert "router.insecure_tcp" in r.stderr and "router.curve.secret_key_file" in r.stderr


def test_allowed_key_gets_acks_unknown_key_is_refused_and_logged(tmp_path, redis_server, keys):
    r = curve_router(tmp_path, redis_server, keys).start()
    try:
        router_pub = keys["router"][0]
        r.wait_log(re.escape(f"router's public key is {router_pub.decode()} (fingerprint {fingerprint(router_pub)})"))
        # the real client, keys from files: the router's .pub, our .key
        rc, out = submit(r.endpoint, str(tmp_path / "spool"), [message("curve:1")],
                         args=["--server-key", keys["router"][2], "--curve-secret", keys["conn"][1],
                               "--curve-public", keys["conn"][2]])
        assert "ACK curve:1" in out
        # a raw peer with the other allowed key, the router's key given inline
        with open(keys["conn2"][1]) as f:
            secret2 = f.read().strip().encode()
        ok = Peer(r.endpoint, curve=(router_pub, keys["conn2"][0], secret2))
        ok.submit(message("curve:2"))
        assert ok.recv() == ["OMNI/1", "ACK", "curve:2"]
        # a key nobody allowed: no answer, nothing stored, and the log names its fingerprint
        stranger_pub, stranger_secret = zmq.curve_keypair()
        bad = Peer(r.endpoint, curve=(router_pub, stranger_pub, stranger_secret))
        bad.submit(message("curve:3"))
        assert bad.silent(1.0), "an unknown key must not be answered"
        r.wait_log(re.escape(f"CURVE key {stranger_pub.decode()} (fingerprint {fingerprint(stranger_pub)})"))
        # the real client with a key nobody allowed: its messages stay spooled, and it says why
        spub, skey, _, _ = keygen(str(tmp_path), "stranger")
        rc, out = submit(r.endpoint, str(tmp_path / "spool2"), [message("curve:5")], timeout=2, check=False,
                         args=["--server-key", router_pub.decode(), "--curve-secret", skey])
        assert rc == 1 and "pending=1" in out, out
        assert f"refused the CURVE handshake (key not allowed): is our public key (fingerprint {fingerprint(spub)})" \
            in out, out
        # a plain (no CURVE) peer on the tcp endpoint gets nothing either
        plain = Peer(r.endpoint)
        plain.submit(message("curve:4"))
        assert plain.silent(0.5)
        # the same stranger again, on a new connection: refused again, not logged again
        bad.close()
        bad = Peer(r.endpoint, curve=(router_pub, stranger_pub, stranger_secret))
        bad.send("OMNI/1", "PING")
        assert bad.silent(1.0)
        assert r.log().count(fingerprint(stranger_pub)) == 1
        ok.send("OMNI/1", "PING")
        assert ok.recv() == ["OMNI/1", "PONG"]
        assert not redis_server.client().exists("omni:msg:curve:3") and not redis_server.client().exists("omni:msg:curve:4")
        assert stored_count(redis_server.client()) == 2
        assert r.log().count(fingerprint(spub)) == 1
        ok.close(), bad.close(), plain.close()
    finally:
        r.stop()


def test_a_banned_curve_peer_is_still_banned_after_reconnecting(tmp_path, redis_server, keys):
    r = curve_router(tmp_path, redis_server, keys, peer_violation_limit=3).start()
    try:
        router_pub = keys["router"][0]

        def peer(name):
            with open(keys[name][1]) as f:
                return Peer(r.endpoint, curve=(router_pub, keys[name][0], f.read().strip().encode()))
        rude = peer("conn")
        for _ in range(3):
            rude.send("OMNI/9", "junk")
            assert rude.recv()[1] == "NACK"
        r.wait_log(r"peer with key " + fingerprint(keys["conn"][0]) + r" dropped for 60 s")
        rude.close()
        again = peer("conn")  # a new socket: a new routing id, the same key
        again.send("OMNI/1", "PING")
        again.submit(message("banned:1"))
        assert again.silent(1.0), "a banned key must not be answered after reconnecting"
        other = peer("conn2")
        other.send("OMNI/1", "PING")
        assert other.recv() == ["OMNI/1", "PONG"]
        assert not redis_server.client().exists("omni:msg:banned:1")
        again.close(), other.close()
    finally:
        r.stop()


def test_ipc_socket_file_gets_the_configured_mode(tmp_path, redis_server):
    r = Router(str(tmp_path / "a"), redis_server.address).start()
    try:
        assert stat.S_IMODE(os.stat(r.endpoint[6:]).st_mode) == 0o660  # the default
    finally:
        r.stop()
    group = grp.getgrgid(os.getgid()).gr_name
    r = Router(str(tmp_path / "b"), redis_server.address, router_extra={"ipc_mode": "0600", "ipc_group": group}).start()
    try:
        st = os.stat(r.endpoint[6:])
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_gid == os.getgid()
        p = Peer(r.endpoint)
        p.send("OMNI/1", "PING")
        assert p.recv() == ["OMNI/1", "PONG"]
        p.close()
    finally:
        r.stop()
    bad = Router(str(tmp_path / "c"), redis_server.address, router_extra={"ipc_group": "no-such-group-omni"})
    proc = subprocess.run([os.path.join(BIN, "omnirouted"), "--config", bad.config], capture_output=True, text=True,
                          timeout=20)
    assert proc.returncode == 1 and "router.ipc_group: no group named no-such-group-omni" in proc.stderr, proc.stderr


def test_a_secret_key_others_can_read_is_refused(tmp_path, redis_server, keys):
    os.chmod(keys["router"][1], 0o644)
    r = curve_router(tmp_path, redis_server, keys)
    proc = subprocess.run([os.path.join(BIN, "omnirouted"), "--config", r.config], capture_output=True, text=True,
                          timeout=20)
    assert proc.returncode == 1
    assert "router.curve.secret_key_file" in proc.stderr and "chmod 600" in proc.stderr, proc.stderr
    # -t finds it too, where the key was set (it read "configuration OK" and let the start fail)
    check = subprocess.run([os.path.join(BIN, "omnirouted"), "-t", r.config], capture_output=True, text=True,
                           timeout=20)
    assert check.returncode == 1 and "configuration OK" not in check.stdout, check
    assert re.search(re.escape(r.config) + r":\d+:\d+: router\.curve\.secret_key_file: .*chmod 600 it",
                     check.stderr), check.stderr
    os.remove(keys["router"][1])
    check = subprocess.run([os.path.join(BIN, "omnirouted"), "-t", r.config], capture_output=True, text=True,
                           timeout=20)
    assert check.returncode == 1 and "No such file or directory" in check.stderr, check.stderr
    # omnictl does not read the router's keys: it need not be able to
    assert r.ctl("status", check=False).returncode == 0


def test_a_connector_config_never_holds_a_secret_inline(tmp_path, keys):
    with open(keys["conn"][1]) as f:
        secret = f.read().strip()
    conf = tmp_path / "template.yaml"

    def check(router_lines):
        conf.write_text("router:\n" + "".join(f"  {line}\n" for line in router_lines) +
                        f"template:\n  path: {tmp_path}/in.txt\n")
        return subprocess.run([os.path.join(BIN, "omni-template"), "--config", str(conf), "--check-config"],
                              capture_output=True, text=True, timeout=20)
    server = f"server_public_key: {keys['router'][2]}"
    r = check([server, f"curve_secret_key_file: {keys['conn'][1]}"])
    assert r.returncode == 0, r.stderr
    r = check([server, f"curve_secret_key_file: \"{secret}\""])
    assert r.returncode == 1 and "never written in the config" in r.stderr, r.stderr
    r = check([server])
    assert r.returncode == 1 and "router.curve_secret_key_file" in r.stderr, r.stderr
    # what start-up would refuse, --check-config refuses too, located (docs/connectors.md: every error listed)
    missing = str(tmp_path / "keys" / "stranger.key.nonexist")  # ends in 40 Z85 characters, as most paths do
    r = check([server, f"curve_secret_key_file: {missing}"])
    assert r.returncode == 1 and f"template.yaml:3:26: router.curve_secret_key_file: cannot read {missing}" in r.stderr, r.stderr
    assert "not a file" not in r.stderr, r.stderr
    r = check([server, f"curve_secret_key_file: {keys['conn'][1]}", f"curve_public_key_file: {keys['conn2'][2]}"])
    assert r.returncode == 1 and "router.curve_public_key_file: " in r.stderr and "is not the public key of" in r.stderr, r.stderr
    r = check([f"server_public_key: {tmp_path}/nothing.pub", f"curve_secret_key_file: {keys['conn'][1]}"])
    assert r.returncode == 1 and "template.yaml:2:22: router.server_public_key: cannot read" in r.stderr, r.stderr
    os.chmod(keys["conn"][1], 0o644)
    r = check([server, f"curve_secret_key_file: {keys['conn'][1]}"])
    assert r.returncode == 1 and "group or others may access it" in r.stderr, r.stderr
    os.chmod(keys["conn"][1], 0o600)


def test_a_connector_submits_over_curve(tmp_path, redis_server, keys):
    """The connector runtime (omni-template) with the common CURVE keys, end to end."""
    r = curve_router(tmp_path, redis_server, keys).start()
    src = tmp_path / "in.txt"
    src.write_text("")
    conf = tmp_path / "template.yaml"
    conf.write_text(f"router:\n  endpoint: {r.endpoint}\n  server_public_key: {keys['router'][2]}\n"
                    f"  curve_secret_key_file: {keys['conn'][1]}\n  curve_public_key_file: {keys['conn'][2]}\n"
                    f"spool_dir: {tmp_path}/tspool\npoll_ms: 20\ntemplate:\n  path: {src}\n")
    proc = subprocess.Popen([os.path.join(BIN, "omni-template"), "--config", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        with open(src, "a") as f:
            f.write("ann@example.com\thello over curve\n")
        client = redis_server.client()
        wait_for(lambda: stored_count(client) == 1, 20, "the template's line stored")
        r.wait_log(r"stored x-template:")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        r.stop()
