"""The HTTP listener: /metrics in Prometheus text format (checked by a
strict parser), /healthz, refusal counters."""
import http.client
import socket

import pytest

import promparse
from conftest import Client, free_port
from opshelp import RawWS, start

pytestmark = pytest.mark.imqtt_only


def get(port, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, r.getheader("Content-Type"), body


def metrics(port):
    status, ctype, body = get(port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    return promparse.parse(body)


def test_metrics_and_healthz(broker):
    hp = free_port()
    b, (wsport,) = start(broker, [{"transport": "ws", "max_connections": 1}],
                         {"http": {"port": hp}})
    assert get(hp, "/healthz")[0] == 200
    assert get(hp, "/nothing")[0] == 404
    assert get(hp, "/metrics", "POST")[0] == 405
    fams = metrics(hp)
    for name in ("imqtt_connections", "imqtt_messages_received_total",
                 "imqtt_messages_sent_total", "imqtt_messages_dropped_total",
                 "imqtt_bytes_received_total", "imqtt_store_size_bytes",
                 "imqtt_retained_messages", "imqtt_subscriptions",
                 "imqtt_tls_handshake_failures_total", "imqtt_connections_refused_total"):
        assert name in fams, name
    assert promparse.value(fams, "imqtt_connections") == 0

    sub = Client(b, "m-sub")
    sub.subscribe("m/t", 1)
    pub = Client(b, "m-pub")
    for i in range(5):
        pub.publish("m/t", b"x", qos=1)
    for i in range(5):
        sub.messages.get(timeout=5)
    fams = metrics(hp)
    assert promparse.value(fams, "imqtt_connections") == 2
    assert promparse.value(fams, "imqtt_messages_received_total") >= 5
    assert promparse.value(fams, "imqtt_messages_sent_total") >= 5
    assert promparse.value(fams, "imqtt_subscriptions") >= 1

    # refusals are counted by cause
    a = RawWS(wsport)
    bad = RawWS(wsport, upgrade=False)
    try:
        bad.s.settimeout(2)
        assert bad.s.recv(10) == b""
    except (ConnectionError, socket.timeout):
        pass
    bad2 = RawWS(wsport, upgrade=False)
    a.close()
    bad.close()
    bad2.close()
    import time
    time.sleep(0.3)
    fams = metrics(hp)
    assert promparse.value(fams, "imqtt_connections_refused_total",
                           cause="max_connections") >= 1
    sub.c.disconnect()
    pub.c.disconnect()


def test_http_off_by_default_and_bad_requests(broker):
    b = broker({})
    assert "metrics on" not in b.stderr_text()
    hp = free_port()
    b2 = broker({"http": {"port": hp}})
    assert "metrics on http://127.0.0.1:%d" % hp in b2.stderr_text()
    s = socket.create_connection(("127.0.0.1", hp))
    s.sendall(b"X" * 5000)
    assert b"431" in s.recv(100)
    s.close()
    s = socket.create_connection(("127.0.0.1", hp))
    s.sendall(b"garbage\r\n\r\n")
    assert b"400" in s.recv(100)
    s.close()
