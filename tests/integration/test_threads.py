"""Two loop threads (`threads`: 2): connections are spread round robin, and
what crosses loops keeps the guarantees of one loop — order per publisher,
QoS 2 exactly once, takeover of a session held by the other loop (the old
connection gets 0x8E, the will goes out once), retained and queued
messages. Consecutive connections land on different loops, so every pair
below is a pair of loops (docs/architecture.md, "N loops")."""
import time

import pytest

import mqttraw as m
import promparse
from conftest import free_port, raw, wait_for
from test_metrics import get

pytestmark = pytest.mark.imqtt_only


def loop_conns(port):
    status, _, body = get(port, "/metrics")
    assert status == 200
    fams = promparse.parse(body)
    return {dict(lb)["loop"]: v
            for n, lb, v in fams["imqtt_loop_connections"]["samples"]}


def two_loops(broker, extra=None):
    hp = free_port()
    cfg = {"threads": 2, "http": {"port": hp}}
    cfg.update(extra or {})
    return broker(cfg), hp


def test_connections_spread_round_robin(broker):
    b, hp = two_loops(broker)
    conns = [raw(b) for _ in range(4)]
    try:
        wait_for(lambda: loop_conns(hp) == {"0": 2, "1": 2},
                 what="two connections per loop")
    finally:
        for c in conns:
            c.close()
    wait_for(lambda: loop_conns(hp) == {"0": 0, "1": 0}, what="all closed")
    assert "2 loop threads" in b.stderr_text()


def test_order_and_qos2_exactly_once_across_loops(broker):
    b, _ = two_loops(broker)
    n = 2000
    with raw(b, client_id="x-sub", clean=True) as sub:
        sub.send(m.subscribe(1, [("x/order", 2)]))
        sub.expect(m.SUBACK)
        with raw(b, client_id="x-pub") as pub:  # the other loop
            for i in range(n):
                pub.send(m.publish("x/order", b"%d" % i, qos=2, pid=i % 60000 + 1))
                rec = pub.expect(m.PUBREC)
                pub.send(m.ack(m.PUBREL, rec.pid))
                pub.expect(m.PUBCOMP)
        got, released = [], 0
        while released < n:
            p = sub.recv(5.0)
            if p.type == m.PUBLISH:
                got.append(int(p.payload))
                sub.send(m.ack(m.PUBREC, p.pid))
            else:
                assert p.type == m.PUBREL, p
                sub.send(m.ack(m.PUBCOMP, p.pid))
                released += 1
        assert got == list(range(n))
        sub.assert_quiet(0.3)


def test_takeover_across_loops_closes_old_and_sends_will_once(broker):
    b, _ = two_loops(broker)
    cp = [("session_expiry_interval", 60)]
    with raw(b, version=5, client_id="x-watch") as watch:
        watch.send(m.subscribe(1, [("x/will", 1)], version=5))
        watch.expect(m.SUBACK)
        first = raw(b, version=5, client_id="x-take", clean=False,
                    properties=cp,
                    will={"topic": "x/will", "payload": b"gone", "qos": 1})
        with first:
            first.send(m.subscribe(2, [("x/after", 1)], version=5))
            first.expect(m.SUBACK)
            with raw(b, version=5, client_id="x-take", clean=False,
                     properties=cp) as second:
                assert second.connack.session_present == 1
                p = first.recv_or_closed()
                assert p is not None and p.type == m.DISCONNECT and p.reason == 0x8E, p
                first.expect_closed()
                w = watch.expect(m.PUBLISH)
                assert w.payload == b"gone"
                watch.send(m.ack(m.PUBACK, w.pid, version=5))
                with raw(b, version=5) as pub:
                    pub.send(m.publish("x/after", b"cont", qos=1, pid=3, version=5))
                    pub.expect(m.PUBACK)
                got = second.expect(m.PUBLISH)
                assert got.payload == b"cont"
        watch.assert_quiet(0.5)  # the will went out once


def test_queued_messages_reach_a_session_resumed_on_the_other_loop(broker):
    b, _ = two_loops(broker)
    with raw(b, client_id="x-q", clean=False) as c:
        c.send(m.subscribe(1, [("x/q", 1)]))
        c.expect(m.SUBACK)
    with raw(b, client_id="x-qpub") as pub:
        for i in range(50):
            pub.send(m.publish("x/q", b"%d" % i, qos=1, pid=i + 1))
            pub.expect(m.PUBACK)
    time.sleep(0.1)
    got = []
    with raw(b, client_id="x-q", clean=False) as c:
        while len(got) < 50:
            p = c.expect(m.PUBLISH)
            got.append(int(p.payload))
            c.send(m.ack(m.PUBACK, p.pid))
    assert got == list(range(50))


def test_retained_set_on_one_loop_read_on_the_other(broker):
    b, _ = two_loops(broker)
    with raw(b) as pub:
        pub.send(m.publish("x/r", b"kept", qos=1, pid=1, retain=True))
        pub.expect(m.PUBACK)
    with raw(b) as sub:
        sub.send(m.subscribe(1, [("x/r", 1)]))
        sub.expect(m.SUBACK)
        p = sub.expect(m.PUBLISH)
        assert p.payload == b"kept" and p.retain
