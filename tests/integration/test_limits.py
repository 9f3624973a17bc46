"""Limits: connections per listener and overall, connection rate per
source address, per-client message and byte rates (v5 DISCONNECT 0x96),
each refusal counted in /metrics."""
import socket
import time

import pytest

import mqttraw
import promparse
from conftest import assert_alive, free_port, raw
from test_metrics import metrics

pytestmark = pytest.mark.imqtt_only


def test_connection_rate_per_address(broker):
    hp = free_port()
    b = broker({"limits": {"connection_rate": 1, "connection_burst": 3},
                "http": {"port": hp}})
    ok = refused = 0
    for i in range(8):
        c = mqttraw.RawClient(b.host, b.port)
        c.send(mqttraw.connect("rate-%d" % i))
        try:
            p = c.recv(2)
            ok += p.type == mqttraw.CONNACK
        except Exception:
            refused += 1
        c.close()
    # the fixture's readiness probe took one of the three
    assert ok >= 2 and refused >= 3, (ok, refused)
    fams = metrics(hp)
    assert promparse.value(fams, "imqtt_connections_refused_total", cause="rate_limit") >= 3
    time.sleep(1.2)  # the bucket refills
    c = raw(b)
    c.close()


@pytest.mark.parametrize("limits,cause", [
    ({"message_rate": 5, "message_burst": 5}, "message_rate"),
    ({"bytes_rate": 2000, "bytes_burst": 2000}, "bytes_rate"),
])
def test_client_rate_disconnects_0x96(broker, limits, cause):
    hp = free_port()
    b = broker({"limits": limits, "http": {"port": hp}})
    c = raw(b, version=5)
    for i in range(20):
        if not c.try_send(mqttraw.publish("r/t", b"x" * 500, version=5)):
            break
    p = c.recv_or_closed(5)
    assert p is not None and p.type == mqttraw.DISCONNECT and p.reason == 0x96, p
    c.close()
    fams = metrics(hp)
    assert promparse.value(fams, "imqtt_clients_limited_total", cause=cause) == 1
    assert_alive(b)


def test_max_connections_per_listener_counted(broker):
    hp = free_port()
    b = broker({"max_connections": 2, "http": {"port": hp}})
    a, c = raw(b), raw(b)
    s = mqttraw.RawClient(b.host, b.port)
    s.send(mqttraw.connect("third"))
    with pytest.raises(Exception):
        s.recv(2)
    s.close()
    fams = metrics(hp)
    assert promparse.value(fams, "imqtt_connections_refused_total", cause="max_connections") >= 1
    a.close()
    c.close()


@pytest.mark.parametrize("version,refused", [(5, 0x97), (4, 0x80)])
def test_max_subscriptions(broker, version, refused):
    hp = free_port()
    b = broker({"max_subscriptions": 2, "http": {"port": hp}})
    c = raw(b, version=version)
    c.send(mqttraw.subscribe(1, [("s/a", 1), ("s/b", 1), ("s/c", 1)], version=version))
    assert c.expect(mqttraw.SUBACK).reasons == [1, 1, refused]
    # replacing a subscription it holds is not a new one
    c.send(mqttraw.subscribe(2, [("s/a", 0), ("s/d", 0)], version=version))
    assert c.expect(mqttraw.SUBACK).reasons == [0, refused]
    # after an UNSUBSCRIBE there is room again
    c.send(mqttraw.unsubscribe(3, ["s/b"], version=version))
    c.expect(mqttraw.UNSUBACK)
    c.send(mqttraw.subscribe(4, [("s/d", 1)], version=version))
    assert c.expect(mqttraw.SUBACK).reasons == [1]
    # the refused filters really are not subscribed
    p = raw(b)
    p.send(mqttraw.publish("s/c", b"no"))
    p.send(mqttraw.publish("s/d", b"yes"))
    got = c.expect(mqttraw.PUBLISH)
    assert got.body.endswith(b"yes")
    c.assert_quiet()
    fams = metrics(hp)
    assert promparse.value(fams, "imqtt_subscriptions_refused_total",
                           cause="max_subscriptions") == 2
    assert "max_subscriptions" in b.stderr_text()
    c.close()
    p.close()


@pytest.mark.parametrize("durability", ["none", "process"])
def test_max_queued_bytes(broker, tmp_path, durability):
    hp = free_port()
    b = broker({"max_queued_bytes": 1000, "http": {"port": hp},
                "store": {"durability": durability, "dir": str(tmp_path / "data")}})
    c = raw(b, client_id="qb", clean=False)
    c.send(mqttraw.subscribe(1, [("qb/#", 1)]))
    c.expect(mqttraw.SUBACK)
    c.send(mqttraw.disconnect())
    c.close()
    p = raw(b, version=5)
    for i in range(5):  # 300 bytes each: three fit in 1000
        p.send(mqttraw.publish("qb/t", bytes([0x30 + i]) * 300, qos=1, pid=i + 1, version=5))
        p.expect(mqttraw.PUBACK)
    fams = metrics(hp)
    assert promparse.value(fams, "imqtt_messages_dropped_total", cause="queue_bytes") == 2
    assert promparse.value(fams, "imqtt_queued_bytes") == 900
    assert promparse.value(fams, "imqtt_queued_messages") == 3
    assert "queue of qb full (900 bytes)" in b.stderr_text()
    # the three that fitted arrive, the others do not
    c = raw(b, client_id="qb", clean=False)
    got = []
    for _ in range(3):
        m = c.expect(mqttraw.PUBLISH)
        got.append(m.body[-1])
        c.send(mqttraw.ack(mqttraw.PUBACK, m.pid))
    assert got == [0x30, 0x31, 0x32]
    c.assert_quiet()
    # the session's queue is empty again: room for new ones
    fams = metrics(hp)
    assert promparse.value(fams, "imqtt_queued_bytes") == 0
    c.close()
    p.close()
