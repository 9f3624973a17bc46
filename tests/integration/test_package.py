"""The .deb, end to end on this machine: cpack builds it from the build
tree under test, `dpkg -i` installs it, the INSTALLED binary runs with the
PACKAGED config the way the systemd unit runs it (its ExecStart, as its
User, with its readiness check), a real client connects, then `dpkg -r`
and `dpkg --purge` leave nothing behind.

systemd is rarely PID 1 on CI machines and containers, so the broker is
started as the unit would start it, and the unit itself is checked with
`systemd-analyze verify`; when systemd does run, `systemctl start` is
exercised too (with a runtime drop-in moving the ports).

Skips, with the reason printed, only when not root or without dpkg."""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from conftest import BUILD_DIR, SLOW, free_port

pytestmark = pytest.mark.imqtt_only

PKG = "imqtt"
UNIT = "/lib/systemd/system/imqtt.service"
CONFIG = "/etc/imqtt/imqtt.json"


def run(*cmd, check=True, timeout=300, **kw):
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)
    if check:
        assert p.returncode == 0, "%s: exit %d\n%s%s" % (" ".join(cmd), p.returncode,
                                                         p.stdout, p.stderr)
    return p


def installed():
    p = run("dpkg-query", "-W", "-f=${Status}", PKG, check=False)
    return p.returncode == 0 and "install ok installed" in p.stdout


def known(name, db):
    return run("getent", db, name, check=False).returncode == 0


def unit_value(text, key):
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root: dpkg -i installs system-wide")
    for tool in ("dpkg", "dpkg-deb", "dpkg-query"):
        if not shutil.which(tool):
            pytest.skip("%s not found: not a Debian system" % tool)
    assert shutil.which("cpack"), "cpack missing (apt-get install cmake)"
    cpack_config = os.path.join(BUILD_DIR, "CPackConfig.cmake")
    assert os.path.exists(cpack_config), \
        "%s missing: the build tree predates cmake/install.cmake; re-run cmake" % cpack_config
    out = tmp_path_factory.mktemp("deb")
    run("cpack", "-G", "DEB", "--config", cpack_config, "-B", str(out), cwd=BUILD_DIR,
        timeout=600)
    debs = sorted(out.glob("imqtt_*.deb"))
    assert len(debs) == 1, list(out.iterdir())
    had_user = known("imqtt", "passwd")
    had_group = known("imqtt", "group")
    yield debs[0]
    # Whatever happened, leave the machine as it was.
    if installed():
        run("dpkg", "--purge", PKG, check=False)
    if not had_user and known("imqtt", "passwd"):
        run("userdel", "imqtt", check=False)
    if not had_group and known("imqtt", "group"):
        run("groupdel", "imqtt", check=False)


def test_package_metadata(deb):
    fields = run("dpkg-deb", "-f", str(deb), "Package", "Version", "Depends").stdout
    assert "Package: imqtt" in fields
    # dpkg-shlibdeps found every library the binaries link
    for lib in ("libuv1", "libmbedtls14", "libmbedx509-1", "libmbedcrypto7", "liblmdb0",
                "libcjson1", "libjwt0", "libhttp-parser2.9", "libcurl4", "libc6", "bash"):
        assert re.search(r"\b%s\b" % re.escape(lib), fields), (lib, fields)
    files = run("dpkg-deb", "-c", str(deb)).stdout
    for path in ("./usr/bin/imqtt", "./usr/bin/imqtt-bench",
                 "./usr/share/man/man1/imqtt.1.gz", "./usr/share/man/man1/imqtt-bench.1.gz",
                 "./usr/share/man/man5/imqtt.json.5.gz", "./etc/imqtt/imqtt.json",
                 "./lib/systemd/system/imqtt.service",
                 "./usr/libexec/imqtt/imqtt-healthcheck", "./usr/share/doc/imqtt/copyright"):
        assert re.search(r" %s$" % re.escape(path), files, re.M), (path, files)
    assert "/usr/local" not in files


def start_as_unit(unit, config, tmp_path):
    """The unit's ExecStart with `config`, as its User/Group, umask and cwd."""
    exec_start = shlex.split(unit_value(unit, "ExecStart")[0])
    assert exec_start[:3] == ["/usr/bin/imqtt", "--config", CONFIG], exec_start
    user = unit_value(unit, "User")[0]
    group = unit_value(unit, "Group")[0]
    umask = int(unit_value(unit, "UMask")[0], 8)
    log = open(tmp_path / "broker.log", "wb")
    cmd = ["setpriv", "--reuid", user, "--regid", group, "--init-groups", "--"]
    p = subprocess.Popen(cmd + [exec_start[0], "--config", config] + exec_start[3:],
                         cwd="/", stdout=log, stderr=log,
                         preexec_fn=lambda: os.umask(umask))
    return p, user, group


def ready_check(unit, http_port, user, group):
    """The unit's ExecStartPost, on our metrics port."""
    post = shlex.split(unit_value(unit, "ExecStartPost")[0])
    assert post[0] == "/usr/libexec/imqtt/imqtt-healthcheck" and post[-1] == "127.0.0.1:9883"
    post[-1] = "127.0.0.1:%d" % http_port
    return run("setpriv", "--reuid", user, "--regid", group, "--init-groups", "--", *post,
               check=False, timeout=30)


def test_install_run_remove(deb, tmp_path):
    run("dpkg", "-i", str(deb))
    assert installed()
    assert run("/usr/bin/imqtt", "--version").stdout.startswith("imqtt ")
    assert CONFIG in run("dpkg-query", "-W", "-f=${Conffiles}", PKG).stdout
    # the postinst made the user and the state directory the config names
    assert known("imqtt", "passwd")
    st = os.stat("/var/lib/imqtt")
    assert oct(st.st_mode & 0o777) == "0o700"
    assert st.st_uid == int(run("id", "-u", "imqtt").stdout)
    packaged = json.load(open(CONFIG))
    assert packaged["store"]["dir"] == "/var/lib/imqtt"
    assert all(lst["bind"] == "127.0.0.1" for lst in packaged["listeners"])
    assert packaged["http"] == {"bind": "127.0.0.1", "port": 9883}

    # man pages render without groff warnings
    for page in ("man1/imqtt.1.gz", "man1/imqtt-bench.1.gz", "man5/imqtt.json.5.gz"):
        p = subprocess.run("zcat /usr/share/man/%s | groff -man -Tutf8 -ww -z" % page,
                           shell=True, capture_output=True, text=True)
        assert p.returncode == 0 and p.stderr == "", (page, p.stderr)

    unit = open(UNIT).read()
    for key in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                "StateDirectory=imqtt", "User=imqtt", "Type=simple"):
        assert key in unit.splitlines(), key
    if shutil.which("systemd-analyze"):
        v = run("systemd-analyze", "verify", UNIT, check=False)
        assert v.returncode == 0 and "imqtt" not in v.stdout + v.stderr, v.stdout + v.stderr
    else:
        print("systemd-analyze not found: the unit is not verified")

    # The packaged config with only its ports moved (1883 and 9883 may be
    # taken on this machine), next to it, readable by the broker as it is.
    mqtt_port = free_port()
    http_port = free_port()
    while http_port == mqtt_port:
        http_port = free_port()
    cfg = dict(packaged)
    cfg["listeners"] = [dict(packaged["listeners"][0], port=mqtt_port)] + \
        packaged["listeners"][1:]
    cfg["http"] = dict(packaged["http"], port=http_port)
    test_config = "/etc/imqtt/test-%s.json" % uuid.uuid4().hex[:8]
    with open(test_config, "w") as f:
        json.dump(cfg, f)
    shutil.chown(test_config, "root", "imqtt")
    os.chmod(test_config, 0o640)

    p, user, group = start_as_unit(unit, test_config, tmp_path)
    try:
        r = ready_check(unit, http_port, user, group)
        assert r.returncode == 0, r.stderr + (tmp_path / "broker.log").read_text()
        assert p.poll() is None
        pub = run("mosquitto_pub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-t", "pkg/t",
                  "-m", "installed", "-q", "1", "-r", timeout=10 * SLOW)
        del pub
        sub = run("mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-t", "pkg/t",
                  "-C", "1", "-W", "10", timeout=15 * SLOW)
        assert sub.stdout.strip() == "installed"
        # the unit's ExecReload, as systemd runs it (MAINPID in the environment)
        reload = shlex.split(unit_value(unit, "ExecReload")[0])
        assert os.access(reload[0], os.X_OK), reload
        run(*reload, env=dict(os.environ, MAINPID=str(p.pid)))
        deadline = time.monotonic() + 10 * SLOW
        while "configuration reloaded" not in (tmp_path / "broker.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "broker.log").read_text()
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        assert p.wait(15 * SLOW) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    log = (tmp_path / "broker.log").read_text()
    assert "stopped" in log, log
    # the store the broker wrote as user imqtt is consistent
    run("setpriv", "--reuid", user, "--regid", group, "--init-groups", "--",
        "/usr/bin/imqtt", "--check-store", "/var/lib/imqtt")

    if os.path.isdir("/run/systemd/system") and shutil.which("systemctl"):
        systemd_start(unit, test_config, http_port, mqtt_port)
    else:
        print("systemd is not PID 1 here: ran the unit's ExecStart by hand instead")
    os.unlink(test_config)

    run("dpkg", "-r", PKG)
    assert not os.path.exists("/usr/bin/imqtt")
    assert not os.path.exists(UNIT)
    assert os.path.exists(CONFIG), "a removed (not purged) package keeps its conffile"
    run("dpkg", "--purge", PKG)
    assert not installed()
    assert not os.path.exists("/etc/imqtt")
    assert not os.path.exists("/var/lib/imqtt")


def systemd_start(unit, test_config, http_port, mqtt_port):
    """Under a running systemd: start the real unit, sandbox and all, with a
    runtime drop-in pointing it at the test config and port."""
    dropin = "/run/systemd/system/imqtt.service.d"
    os.makedirs(dropin, exist_ok=True)
    post = unit_value(unit, "ExecStartPost")[0].replace("127.0.0.1:9883",
                                                       "127.0.0.1:%d" % http_port)
    with open(os.path.join(dropin, "test.conf"), "w") as f:
        f.write("[Service]\nExecStart=\nExecStart=/usr/bin/imqtt --config %s\n"
                "ExecStartPost=\nExecStartPost=%s\n" % (test_config, post))
    try:
        run("systemctl", "daemon-reload")
        run("systemctl", "start", "imqtt.service", timeout=60)
        run("mosquitto_pub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-t", "pkg/s",
            "-m", "x", "-q", "1", timeout=10)
        run("systemctl", "stop", "imqtt.service", timeout=60)
        state = run("systemctl", "show", "-p", "Result", "imqtt.service").stdout.strip()
        assert state == "Result=success", state
    finally:
        run("systemctl", "stop", "imqtt.service", check=False)
        shutil.rmtree(dropin, ignore_errors=True)
        run("systemctl", "daemon-reload", check=False)
        deadline = time.monotonic() + 10
        while run("systemctl", "is-active", "imqtt.service", check=False).stdout.strip() \
                == "active" and time.monotonic() < deadline:
            time.sleep(0.1)
