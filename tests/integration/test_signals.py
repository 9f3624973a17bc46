"""Signals: orderly shutdown."""
import signal

import pytest

import mqttraw as m
from conftest import raw


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_closes_clients_and_exits_0(broker, sig):
    """On SIGTERM/SIGINT every client connection is closed (v5: DISCONNECT
    0x8B may come first) and the broker exits 0."""
    b = broker()
    v5 = raw(b, version=5, client_id="sig-v5")
    v4 = raw(b, version=4, client_id="sig-v4")
    with v5, v4:
        b.proc.send_signal(sig)
        v5.expect_closed(10, allow_disconnect={0x8B})
        v4.expect_closed(10)
        assert b.proc.wait(10) == 0, b.stderr_text()
    b.check_stop()


@pytest.mark.imqtt_only
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_sends_disconnect_0x8b_and_exits_0(broker, sig):
    """[MQTT-3.14.2] on SIGTERM/SIGINT v5 clients receive DISCONNECT 0x8B
    (server shutting down), 3.1.1 clients are closed, and the broker exits 0.
    (imqtt_only: Mosquitto 2.0.11 closes without DISCONNECT.)"""
    b = broker()
    v5 = raw(b, version=5, client_id="sig-v5")
    v4 = raw(b, version=4, client_id="sig-v4")
    with v5, v4:
        v5.send(m.subscribe(1, [("sig/t", 1)], version=5))
        v5.expect(m.SUBACK)
        b.proc.send_signal(sig)
        p = v5.recv_or_closed(10)
        assert p is not None and p.type == m.DISCONNECT and p.reason == 0x8B, p
        v5.expect_closed(10)
        v4.expect_closed(10)
        rc = b.proc.wait(10)
        assert rc == 0, b.stderr_text()
    b.check_stop()


def test_shutdown_with_many_idle_clients(broker):
    """SIGTERM with 50 connected clients (3.1.1 and v5 mixed, some with
    persistent sessions and wills) exits 0 promptly without sanitizer
    reports (checked by the fixture)."""
    b = broker()
    cs = []
    for i in range(50):
        v = 5 if i % 2 else 4
        cs.append(raw(b, version=v, client_id="idle-%d" % i, clean=bool(i % 3),
                      will={"topic": "idle/will", "payload": b"x", "qos": 1},
                      properties=[("session_expiry_interval", 60)] if v == 5 else None))
    try:
        b.proc.send_signal(signal.SIGTERM)
        assert b.proc.wait(10) == 0, b.stderr_text()
    finally:
        for c in cs:
            c.close()
