"""make install ships what an integrator needs: a connector builds against the installed headers, libomni.a and
libomni.pc alone (connectors/template, the worked example, as an integrator would copy it), against the shared
library and against the static one, and the
installed units name the installed programs."""
import os
import re
import shutil
import subprocess

from harness import BIN, ROOT

BUILD = os.path.dirname(BIN)


def test_a_connector_builds_against_the_installed_sdk(tmp_path):
    dest = tmp_path / "dest"
    subprocess.run([os.path.join(ROOT, "scripts", "install"), BUILD, str(dest), "/opt/omni"], cwd=ROOT, check=True,
                   capture_output=True)
    prefix = dest / "opt" / "omni"
    for f in ["include/omni/connector.h", "include/omni/message.h", "lib/libomni.a", "lib/libomni.so.1", "lib/pkgconfig/libomni.pc",
              "lib/systemd/system/omnirouted.service", "lib/systemd/catalog/omnirouter.catalog",
              "share/doc/omnirouter/protocol.md", "share/doc/omnirouter/examples/omni_connector.py", "share/omnirouter/omnirouter.yaml.sample",
              "share/man/man8/omnirouted.8", "share/man/man5/omnirouter.yaml.5", "share/man/man1/omni-submit.1",
              "share/omnirouter/console/index.html", "share/omnirouter/console/console.js",
              "share/omnirouter/console/console.css"]:
        assert (prefix / f).exists(), f
    # omni-api's sample finds the console where this PREFIX put it
    assert 'directory: "/opt/omni/share/omnirouter/console"' in (prefix / "share/omnirouter/omni-api.yaml.sample").read_text()
    unit = (prefix / "lib/systemd/system/omnirouted.service").read_text()
    assert "ExecStart=/opt/omni/bin/omnirouted " in unit and "/usr/local" not in unit
    page = (prefix / "share/man/man8/omni-api.8").read_text()  # the pages name this PREFIX's paths too
    assert "/opt/omni/share/omnirouter/console" in page and "/usr/local" not in page

    src = tmp_path / "mine"
    shutil.copytree(os.path.join(ROOT, "connectors", "template"), src)
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"), PKG_CONFIG_SYSROOT_DIR=str(dest))
    san = ["-fsanitize=address,undefined"] if "asan" in BUILD else []  # the tests' libomni is sanitized
    def pc(*args):
        return subprocess.run(["pkg-config", *args], env=env, check=True, capture_output=True, text=True).stdout.split()
    for how in (["--cflags", "--libs"], ["--cflags", "--libs", "--static"]):
        flags = pc(*[a for a in how if a != "--static"], "libomni")
        assert f"-I{prefix}/include" in flags, flags
        if "--static" in how:  # libomni.a by name (-lomni finds the shared one first), and what it links against:
            # its Requires.private as the system has them (not --static: that asks for every dependency's .a)
            requires = [r.split()[0] for r in subprocess.run(["pkg-config", "--print-requires-private", "libomni"],
                                                            env=env, capture_output=True, text=True).stdout.splitlines()]
            private = [f for f in pc("--static", "--libs-only-other", "--libs-only-l", "libomni")
                       if f in ("-lphonenumber", "-lstdc++", "-lm")]
            flags = [f"{prefix}/lib/libomni.a" if f == "-lomni" else f for f in flags] + pc("--libs", *requires) + private
        out = tmp_path / ("omni-mine-static" if "--static" in how else "omni-mine")
        cc = subprocess.run(["cc", "-std=c11", "-D_DEFAULT_SOURCE", "-Wall", "-Wextra", "-Werror", *san, "-o",
                             str(out), str(src / "main.c"), str(src / "template.c"), *flags],
                            capture_output=True, text=True)
        assert cc.returncode == 0, cc.stderr
        r = subprocess.run([str(out), "--help"], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, LD_LIBRARY_PATH=str(prefix / "lib")))
        assert r.returncode == 0 and "--config" in r.stdout + r.stderr, r
        if "--static" not in how:  # the shared library, found by its soname
            ldd = subprocess.run(["ldd", str(out)], capture_output=True, text=True,
                                 env=dict(os.environ, LD_LIBRARY_PATH=str(prefix / "lib"))).stdout
            assert f"libomni.so.1 => {prefix}/lib/libomni.so.1" in ldd, ldd


def test_the_units_verify(tmp_path):
    """systemd-analyze verify, with the programs the units name placed where they name them."""
    root = tmp_path / "root"
    bin_ = root / "usr" / "local" / "bin"
    bin_.mkdir(parents=True)
    units = sorted(f for f in os.listdir(os.path.join(ROOT, "systemd")) if f.endswith(".service"))
    assert units
    paths = []
    connectors = sorted(p[len("omni-"):] for p in os.listdir(BIN) if p.startswith("omni-") and p != "omni-submit")
    for u in units:
        text = open(os.path.join(ROOT, "systemd", u)).read().replace("/usr/local/bin/", f"{bin_}/")
        # a template is verified as each of its instances: omni-connector@sms for omni-sms, ...
        for name in ([u.replace("@.", f"@{c}.") for c in connectors] if "@." in u else [u]):
            (tmp_path / name).write_text(text)
            paths.append(str(tmp_path / name))
    for p in os.listdir(BIN):
        shutil.copy(os.path.join(BIN, p), bin_ / p)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *paths], capture_output=True, text=True)
    problems = [l for l in (r.stdout + r.stderr).splitlines()
                if l.strip() and "Failed to open /etc/systemd" not in l and "not running as" not in l.lower()]
    assert r.returncode == 0 and not problems, r.stdout + r.stderr


def test_every_unit_is_hardened():
    """systemd-analyze security rates each unit 2.5 or lower (what is left open is said in the unit)."""
    import re
    for u in sorted(f for f in os.listdir(os.path.join(ROOT, "systemd")) if f.endswith(".service")):
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", os.path.join(ROOT, "systemd", u)],
                           capture_output=True, text=True)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
        assert m, r.stdout + r.stderr
        assert float(m.group(1)) <= 2.5, f"{u}: {m.group(1)}\n{r.stdout}"


def test_units_stop_the_router_first_and_wait_for_a_source_down_at_start():
    """omnirouted stops its embedded Redis itself, after answering what is in flight: systemd must signal the
    router alone (KillMode=mixed). READY=1 waits for Redis or the source, which may be down at boot: a retry,
    not a start to kill after 90 s and begin again (TimeoutStartSec=infinity)."""
    def settings(unit):
        with open(os.path.join(ROOT, "systemd", unit)) as f:
            return [line.strip() for line in f if not line.startswith("#")]
    router = settings("omnirouted.service")
    assert "KillMode=mixed" in router and "TimeoutStartSec=infinity" in router
    assert "TimeoutStartSec=infinity" in settings("omni-connector@.service")


def test_sysusers_and_tmpfiles_make_the_user_and_directories(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    r = subprocess.run(["systemd-sysusers", f"--root={root}", os.path.join(ROOT, "systemd", "omnirouter.sysusers")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    passwd = (root / "etc" / "passwd").read_text()
    assert re.search(r"^omnirouter:x:\d+:\d+:omnirouter message router:/var/lib/omnirouter:", passwd, re.M), passwd
    r = subprocess.run(["systemd-tmpfiles", f"--root={root}", "--create",
                        os.path.join(ROOT, "systemd", "omnirouter.tmpfiles")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    st = os.stat(root / "var" / "spool" / "omnirouter")
    assert oct(st.st_mode & 0o777) == "0o750"
