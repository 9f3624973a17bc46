"""IM devices on the Eclipse Paho C client (issue 5: "one Paho C" device in
the user's set): the C library sees the inbox, the sync copies with the
broker's `from` stamp, no echo, and its queue after being offline.
tests/clients/paho_c_im.c is the device."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD_DIR, SOURCE_DIR, SLOW
from imhelp import im, im_config, token, drain, from_props

pytestmark = pytest.mark.imqtt_only


@pytest.fixture(scope="module")
def paho_c_im():
    """The CMake-built device, else built here (development without CMake)."""
    cand = os.path.join(BUILD_DIR, "tests", "paho_c_im")
    if os.access(cand, os.X_OK):
        return cand
    cc = shutil.which("cc") or shutil.which("gcc")
    src = os.path.join(SOURCE_DIR, "tests", "clients", "paho_c_im.c")
    out = os.path.join(tempfile.mkdtemp(prefix="imqtt-pahoc-im-"), "paho_c_im")
    subprocess.run([cc, "-std=c11", "-o", out, src, "-lpaho-mqtt3c"], check=True)
    return out


def run_device(exe, b, client_id, version=5, topic=None, count=0, wait=1.0):
    args = [exe, "-h", b.host, "-p", str(b.port), "-i", client_id,
            "-P", token(client_id.split("@")[0]), "-V", str(version),
            "-w", str(wait * SLOW)]
    if topic:
        args += ["-t", topic, "-n", str(count)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def messages(proc, timeout=15):
    out, _ = proc.communicate(timeout=timeout * SLOW)
    assert proc.returncode == 0, out
    assert out.splitlines()[-1].startswith("done"), out
    return [tuple(line.split("\t")[1:]) for line in out.splitlines()
            if line.startswith("msg\t")]


def wait_online(watcher, device, timeout=5.0):
    """Presence says `device` is online (so the C client has connected)."""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        for msg in drain(watcher, 0.1):
            if device in msg.payload.decode():
                return
    pytest.fail("%s never came online" % device)


@pytest.mark.parametrize("version", [3, 5])
def test_paho_c_device_sends_peer_and_sync_get_it_no_echo(broker, clients, paho_c_im, version):
    b = broker(im_config())
    bob = im(clients, b, "bob", "phone")
    alice_py = im(clients, b, "alice", "py")
    dev = run_device(paho_c_im, b, "alice@pahoc", version, "p2p/talk/bob", 3, wait=1.0)
    got = messages(dev)
    assert got == [], "the sending device got its own messages back: %r" % got
    want = [("p2p/talk/bob", b"pahoc-%d" % i) for i in range(3)]
    for c in (bob, alice_py):
        msgs = [x for x in drain(c, 0.5) if x.topic.startswith("p2p/talk")]
        assert [(x.topic, x.payload) for x in msgs] == want
        assert all(from_props(x) == ["alice@pahoc"] for x in msgs)


@pytest.mark.parametrize("version", [3, 5])
def test_paho_c_device_receives_inbox_and_sync_with_stamp(broker, clients, paho_c_im, version):
    b = broker(im_config())
    watcher = im(clients, b, "carol", "watch")
    watcher.subscribe("p2p/presence/alice", 1)
    bob = im(clients, b, "bob", "phone")
    alice_py = im(clients, b, "alice", "py")
    dev = run_device(paho_c_im, b, "alice@pahoc", version, wait=2.5)
    wait_online(watcher, "pahoc")
    alice_py.publish("p2p/talk/bob", b"from py", qos=1).wait_for_publish(5)
    bob.publish("p2p/talk/alice", b"to alice", qos=1).wait_for_publish(5)
    got = messages(dev)
    stamp = lambda who: who if version == 5 else "-"  # 3.1.1: payload only
    assert ("p2p/talk/bob", "from py", stamp("alice@py")) in got
    assert ("p2p/talk/alice", "to alice", stamp("bob@phone")) in got
    assert len(got) == 2, got


def test_paho_c_device_offline_gets_queue_in_order(broker, clients, paho_c_im):
    b = broker(im_config())
    messages(run_device(paho_c_im, b, "alice@pahoc", 5, wait=0.2))  # session made
    bob = im(clients, b, "bob", "phone")
    for i in range(5):
        bob.publish("p2p/talk/alice", b"queued-%d" % i, qos=1).wait_for_publish(5)
    got = messages(run_device(paho_c_im, b, "alice@pahoc", 5, wait=1.5))
    assert got == [("p2p/talk/alice", "queued-%d" % i, "bob@phone") for i in range(5)]
