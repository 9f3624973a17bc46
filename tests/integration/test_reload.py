"""SIGHUP: reload ACL, passwords, limits, TLS certificates, log format;
a reload that fails keeps the running configuration (BAD_INPUTS row 19)."""
import json
import os
import shutil
import signal
import socket
import ssl
import time

import pytest

from conftest import Client
from opshelp import certgen, certs, start, tls_cfg

pytestmark = pytest.mark.imqtt_only


def write(b, cfg):
    path = os.path.join(b.tmpdir, "imqtt.json")
    full = dict(b.config)
    full.update(cfg)
    full.setdefault("store", {"dir": os.path.join(b.tmpdir, "data")})
    with open(path + ".tmp", "w") as f:
        json.dump(full, f)
    os.replace(path + ".tmp", path)


def hup(b, expect):
    n = b.stderr_text().count(expect)
    os.kill(b.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while b.stderr_text().count(expect) == n:
        assert time.monotonic() < deadline, b.stderr_text()[-2000:]
        time.sleep(0.02)


DENY_SECRET = {"acl": {"default": "allow", "rules": [
    {"permission": "deny", "action": "subscribe", "topic": "secret/#"}]}}


def test_reload_acl_and_failure_keeps_old(broker):
    b = broker(DENY_SECRET)
    c = Client(b, version=5)
    assert c.subscribe("secret/x", 0) == [0x87]
    # a broken file: the deny rule stays
    with open(os.path.join(b.tmpdir, "imqtt.json"), "w") as f:
        f.write("{ not json")
    hup(b, "reload failed")
    assert "keeping the running configuration" in b.stderr_text()
    assert c.subscribe("secret/y", 0) == [0x87]
    # a missing file: same
    os.unlink(os.path.join(b.tmpdir, "imqtt.json"))
    hup(b, "reload failed")
    assert c.subscribe("secret/z", 0) == [0x87]
    # a valid file without the rule: applied
    write(b, {"acl": {"default": "allow", "rules": []}})
    hup(b, "configuration reloaded")
    assert c.subscribe("secret/x", 0) == [0]


def test_reload_invalid_acl_fails_closed(broker):
    """A rule that does not parse fails the reload; it never turns into
    allow-all (BAD_INPUTS rows 12 and 19)."""
    b = broker(DENY_SECRET)
    write(b, {"acl": {"default": "allow", "rules": [{"permission": "deny"}]}})
    hup(b, "reload failed")
    c = Client(b, version=5)
    assert c.subscribe("secret/x", 0) == [0x87]


def test_reload_password_file(broker, tmp_path):
    from conftest import IMQTT_BIN
    import subprocess
    pw = tmp_path / "passwd"
    subprocess.run([IMQTT_BIN, "passwd", "--password", "old", str(pw), "ann"], check=True)
    b = broker({"auth": {"password_file": str(pw)},
                "listeners": [{"bind": "127.0.0.1", "port": 1, "auth": "password_file"}]})
    Client(b, "p1", username="ann", password="old")
    pw2 = tmp_path / "passwd2"
    subprocess.run([IMQTT_BIN, "passwd", "--password", "new", str(pw2), "ann"], check=True)
    shutil.copy(pw2, pw)
    hup(b, "configuration reloaded")
    Client(b, "p2", username="ann", password="new")
    c = Client(b, "p3", username="ann", password="old", auto_connect=False)
    c.connect(expect_rc=None)
    assert c.connack[1] != 0


def test_reload_limits_and_log_format(broker):
    b = broker({"max_connections": 1})
    time.sleep(0.3)  # the fixture's readiness probe must be gone first
    c1 = Client(b, "l1")
    with pytest.raises(AssertionError):
        Client(b, "l2", version=4)
    write(b, {"max_connections": 5, "log": {"format": "json"}})
    hup(b, "configuration reloaded")
    Client(b, "l3")
    time.sleep(0.2)
    line = [l for l in b.stderr_text().splitlines() if '"client_id":"l3"' in l]
    assert line and json.loads(line[0])["level"] == "info"
    c1.c.disconnect()


def serial(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                        server_hostname="localhost")
    der = s.getpeercert(binary_form=True)
    s.close()
    return der


def test_reload_tls_certificates(broker, tmp_path):
    c = certs()
    crt, key = tmp_path / "s.crt", tmp_path / "s.key"
    shutil.copy(c["server_crt"], crt)
    shutil.copy(c["server_key"], key)
    b, (port,) = start(broker, [{"transport": "tls",
                                 "tls": tls_cfg(cert_file=str(crt), key_file=str(key))}])
    before = serial(port, c["ca_crt"])
    # a new certificate for the same key, from the same CA
    certgen.sign(str(tmp_path), "s", "localhost", "ca", server=True, ca_dir=c["dir"],
                 key=str(key))
    b.config = json.load(open(os.path.join(b.tmpdir, "imqtt.json")))
    hup(b, "configuration reloaded")
    after = serial(port, c["ca_crt"])
    assert before != after
    # a broken certificate file: the reload fails, the new one stays in use
    crt.write_text("garbage")
    hup(b, "reload failed")
    assert serial(port, c["ca_crt"]) == after
