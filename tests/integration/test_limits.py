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
