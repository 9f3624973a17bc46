"""BAD_INPUTS row 23: a second broker process on the same data directory.

A writable store holds an exclusive flock on DATA/imqtt.lock with its PID
in it (store/store_lock.c). A second broker on the same directory, on
another port, must exit non-zero naming the holder's PID while the first
keeps serving; the lock dies with its process, so after a kill -9 of the
first the second starts. `--check-store` reads a live store (a read-only
snapshot) and says who holds it.
"""
import json
import os
import signal
import subprocess

import pytest

from conftest import IMQTT_BIN, SLOW, assert_alive, free_port
import mqttraw
from store_helpers import StoreBroker, connect


@pytest.fixture
def sb():
    s = StoreBroker()
    yield s
    s.cleanup()


def start_second(sb, timeout=10.0 * SLOW):
    """Run another broker on sb's store and another port; return its exit
    code and output, killing it (and returning None) if it is still
    running after `timeout` (it started: the bug)."""
    conf = os.path.join(sb.tmp, "second.json")
    with open(conf, "w") as f:
        json.dump(sb.config, f)
    port = free_port()
    p = subprocess.Popen([IMQTT_BIN, "--config", conf, "--port", str(port),
                          "--bind", "127.0.0.1"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate(timeout=10)
        return None, out.decode("utf-8", "replace")


@pytest.mark.imqtt_only
def test_second_broker_on_same_store_refused_then_starts_after_kill9(sb):
    a = sb.start()
    # Something in the store for the second broker to fight over.
    c = connect(a, "lock-keeper", clean=True)
    c.send(mqttraw.disconnect())
    c.close()
    c = mqttraw.open_connected(a.host, a.port, "lock-durable", clean=False)
    c.send(mqttraw.subscribe(1, [("lock/t", 1)]))
    c.expect(mqttraw.SUBACK)
    c.send(mqttraw.disconnect())
    c.close()

    rc, out = start_second(sb)
    assert rc is not None, "second broker started on a live store:\n" + out
    assert rc != 0, out
    assert "PID %d" % a.pid in out, out
    assert "in use" in out, out
    assert_alive(a)
    with open(os.path.join(sb.data, "imqtt.lock")) as f:
        assert f.read().strip() == str(a.pid)

    # A read-only check is allowed on the live store and names the holder.
    r = subprocess.run([IMQTT_BIN, "--check-store", sb.data],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PID %d" % a.pid in r.stdout, r.stdout
    assert_alive(a)

    # kill -9 leaves the PID text but no lock: the next broker starts and
    # finds the durable session.
    sb.stop(signal.SIGKILL, check=False)
    b = sb.start()
    with open(os.path.join(sb.data, "imqtt.lock")) as f:
        assert f.read().strip() == str(b.pid)
    c = mqttraw.open_connected(b.host, b.port, "lock-durable", clean=False)
    assert c.connack.session_present
    c.send(mqttraw.disconnect())
    c.close()
    assert_alive(b)
    rc, err = sb.stop()
    assert rc == 0, err
