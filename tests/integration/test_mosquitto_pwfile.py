"""Mosquitto's own password files, read as they are: the `$7$` entries
(PBKDF2-HMAC-SHA512) that Debian's real `mosquitto_passwd` writes. The
right password is accepted, a wrong one refused (0x86 / 4); `imqtt passwd`
adds an imqtt entry to the same file keeping Mosquitto's lines, and both
kinds work side by side."""
import shutil
import subprocess

import pytest

import mqttraw as m
from conftest import IMQTT_BIN

pytestmark = pytest.mark.imqtt_only

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")


def connect(b, user, pw, version):
    c = m.RawClient(b.host, b.port, version=version)
    try:
        ack = c.connect("dev-%s" % user, username=user, password=pw)
        if ack.reason == 0:
            c.send(m.disconnect(version))
        return ack.reason
    finally:
        c.close()


@pytest.mark.skipif(MOSQUITTO_PASSWD is None,
                    reason="mosquitto_passwd not installed (Debian package mosquitto; scripts/setup)")
@pytest.mark.parametrize("version", [4, 5])
def test_mosquitto_passwd_file_accepted(broker, tmp_path, version):
    path = str(tmp_path / "mosquitto.passwd")
    subprocess.run([MOSQUITTO_PASSWD, "-b", "-c", path, "sensor-1", "mosq-pass"],
                   check=True, capture_output=True, timeout=30)
    subprocess.run([MOSQUITTO_PASSWD, "-b", path, "sensor-2", "p:w$2"],
                   check=True, capture_output=True, timeout=30)
    text = open(path).read()
    assert text.count(":$7$") == 2, text  # what this test is about
    # An imqtt entry in the same file: Mosquitto's lines are kept.
    subprocess.run([IMQTT_BIN, "passwd", "--password", "imqtt-pass",
                    "--iterations", "1000", path, "alice"],
                   check=True, capture_output=True, timeout=30)
    after = open(path).read()
    assert after.startswith(text), after

    b = broker({"listeners": [{"bind": "127.0.0.1", "port": 1883,
                               "auth": "password_file"}],
                "auth": {"password_file": path}})
    bad = 0x86 if version == 5 else 4
    assert connect(b, "sensor-1", "mosq-pass", version) == 0
    assert connect(b, "sensor-1", "mosq-pasS", version) == bad
    assert connect(b, "sensor-1", "", version) == bad
    assert connect(b, "sensor-2", "p:w$2", version) == 0
    assert connect(b, "sensor-2", "mosq-pass", version) == bad
    assert connect(b, "alice", "imqtt-pass", version) == 0
    assert connect(b, "nobody", "mosq-pass", version) == bad
