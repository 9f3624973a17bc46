"""QoS 0/1/2 flows, receive maximum, ordering, queue limits."""

import pytest

import mqttraw as m
from conftest import assert_alive, raw, SLOW


@pytest.mark.parametrize("version", [4, 5])
def test_qos_matrix_delivered_at_min_qos(broker, clients, version):
    """[MQTT-3.8.4-6][MQTT-3.3.5-1] every (publish QoS, subscription QoS)
    pair is delivered, at QoS min(pub, sub), with Paho clients."""
    b = broker()
    s = clients(b, version=version)
    for sq in range(3):
        assert s.subscribe("qm/%d/+" % sq, sq) == [sq]
    p = clients(b, version=version)
    for sq in range(3):
        for pq in range(3):
            p.publish("qm/%d/%d" % (sq, pq), b"%d%d" % (sq, pq), qos=pq)
    got = {msg.topic: msg.qos for msg in s.get_n(9)}
    want = {"qm/%d/%d" % (sq, pq): min(sq, pq) for sq in range(3) for pq in range(3)}
    assert got == want
    s.expect_none(0.3)


@pytest.mark.parametrize("version", [4, 5])
def test_qos2_incoming_exactly_once_with_dup_resend(broker, version):
    """[MQTT-4.3.3-2] QoS 2 receiver side: PUBLISH id 1 -> PUBREC; the same
    PUBLISH again with DUP before PUBREL -> PUBREC again, no second delivery;
    PUBREL -> PUBCOMP [MQTT-4.3.3-11]."""
    b = broker()
    with raw(b, version=version) as sub, raw(b, version=version) as pub:
        sub.send(m.subscribe(1, [("q2/once", 2)], version=version))
        sub.expect(m.SUBACK)
        pub.send(m.publish("q2/once", b"exactly", qos=2, pid=1, version=version))
        assert pub.expect(m.PUBREC).pid == 1
        pub.send(m.publish("q2/once", b"exactly", qos=2, pid=1, dup=True, version=version))
        assert pub.expect(m.PUBREC).pid == 1
        pub.send(m.ack(m.PUBREL, 1, version=version))
        assert pub.expect(m.PUBCOMP).pid == 1
        p = sub.expect(m.PUBLISH)
        assert p.payload == b"exactly" and p.qos == 2
        sub.send(m.ack(m.PUBREC, p.pid, version=version))
        sub.expect(m.PUBREL)
        sub.send(m.ack(m.PUBCOMP, p.pid, version=version))
        sub.assert_quiet(0.7)


def test_pubrel_for_unknown_id_gets_pubcomp(broker):
    """[MQTT-4.3.3-11] PUBREL for an unknown packet id is answered with
    PUBCOMP (v5: reason 0x92 packet identifier not found allowed)."""
    b = broker()
    with raw(b, version=5) as c:
        c.send(m.ack(m.PUBREL, 77, version=5))
        p = c.expect(m.PUBCOMP)
        assert p.pid == 77 and p.reason in (0x00, 0x92), p


def _receive_max_setup(b):
    sub = raw(b, version=5, properties=[("receive_maximum", 2)])
    sub.send(m.subscribe(1, [("rm/t", 1)], version=5))
    sub.expect(m.SUBACK)
    with raw(b, version=5) as pub:
        for i in range(5):
            pub.send(m.publish("rm/t", b"%d" % i, qos=1, pid=i + 1, version=5))
            pub.expect(m.PUBACK)
    return sub


def test_v5_client_receive_maximum_respected(broker):
    """[MQTT-3.3.4-9] a client announcing Receive Maximum 2 gets at most 2
    unacknowledged QoS 1 PUBLISHes; once it acks, the rest arrive in order."""
    b = broker()
    with _receive_max_setup(b) as sub:
        first = [sub.expect(m.PUBLISH) for _ in range(2)]
        assert [p.payload for p in first] == [b"0", b"1"]
        sub.assert_quiet(0.7)
        got = []
        for p in first:
            sub.send(m.ack(m.PUBACK, p.pid, version=5))
        while len(got) < 3:
            p = sub.expect(m.PUBLISH)
            got.append(p.payload)
            sub.send(m.ack(m.PUBACK, p.pid, version=5))
        assert got == [b"2", b"3", b"4"]


@pytest.mark.imqtt_only
def test_v5_client_receive_maximum_one_ack_releases_one(broker):
    """[MQTT-3.3.4-9] with Receive Maximum 2 and 2 in flight, one PUBACK
    releases exactly one more PUBLISH.  (imqtt_only: Mosquitto 2.0.11 sends
    two, exceeding the client's Receive Maximum.)"""
    b = broker()
    with _receive_max_setup(b) as sub:
        first = [sub.expect(m.PUBLISH) for _ in range(2)]
        sub.assert_quiet(0.5)
        sub.send(m.ack(m.PUBACK, first[0].pid, version=5))
        assert sub.expect(m.PUBLISH).payload == b"2"
        sub.assert_quiet(0.5)


@pytest.mark.imqtt_only
def test_v5_exceeding_server_receive_maximum_disconnects_0x93(broker):
    """[MQTT-3.3.4-8] a client that sends more unacknowledged QoS 2 PUBLISHes
    than the server's Receive Maximum (max_inflight_messages 20) gets
    DISCONNECT 0x93 (receive maximum exceeded).  QoS 2 without PUBREL keeps
    the messages in flight deterministically."""
    b = broker({"max_inflight_messages": 20})
    with raw(b, version=5) as c:
        assert c.connack.properties.get("receive_maximum") == 20
        c.try_send(b"".join(m.publish("rmx/t", b"x", qos=2, pid=i, version=5) for i in range(1, 23)))
        seen = []
        while True:
            p = c.recv_or_closed()
            if p is None:
                break
            seen.append(p)
            if p.type == m.DISCONNECT:
                break
        assert seen and seen[-1].type == m.DISCONNECT and seen[-1].reason == 0x93, seen[-3:]
        assert sum(1 for p in seen if p.type == m.PUBREC) <= 20
    assert_alive(b, version=5)


@pytest.mark.parametrize("version", [4, 5])
def test_order_kept_per_publisher(broker, clients, version):
    """[MQTT-4.6.0-5] (ordered topic) 100 QoS 1 messages from one publisher
    arrive in order."""
    b = broker()
    s = clients(b, version=version)
    s.subscribe("order/t", 1)
    p = clients(b, version=version)
    infos = [p.publish("order/t", b"%03d" % i, qos=1, wait=False) for i in range(100)]
    for info in infos:
        info.wait_for_publish(5 * SLOW)
    msgs = s.get_n(100, timeout=10)
    assert [x.payload for x in msgs] == [b"%03d" % i for i in range(100)]


def test_order_kept_with_raw_pipelined_publishes(broker):
    """[MQTT-4.6.0-2..4] acks are sent in the order the PUBLISHes were
    received; 50 pipelined QoS 1 PUBLISHes are acked and delivered in order."""
    b = broker()
    with raw(b) as sub, raw(b) as pub:
        sub.send(m.subscribe(1, [("order/raw", 1)]))
        sub.expect(m.SUBACK)
        pub.send(b"".join(m.publish("order/raw", b"%02d" % i, qos=1, pid=i + 1) for i in range(50)))
        acks = [pub.expect(m.PUBACK).pid for _ in range(50)]
        assert acks == list(range(1, 51))
        got = []
        while len(got) < 50:
            p = sub.expect(m.PUBLISH)
            sub.send(m.ack(m.PUBACK, p.pid))
            got.append(p.payload)
        assert got == [b"%02d" % i for i in range(50)]


def test_max_queued_messages_bounds_offline_queue(broker, clients):
    """max_queued_messages 10: an offline persistent session receives the
    first 10 queued messages on reconnect, the rest are dropped (memory
    bounded, DESIGN.md invariants)."""
    b = broker({"max_queued_messages": 10})
    s = clients(b, "mq-off", version=4, clean=False)
    s.subscribe("mq/t", 1)
    s.disconnect()
    p = clients(b, version=4)
    for i in range(25):
        p.publish("mq/t", b"%02d" % i, qos=1)
    s2 = clients(b, "mq-off", version=4, clean=False)
    msgs = s2.get_n(10)
    s2.expect_none(1.0)
    assert [x.payload for x in msgs] == [b"%02d" % i for i in range(10)]


def test_publish_qos1_gets_puback_with_same_id(broker):
    """[MQTT-4.3.2-2] PUBACK carries the PUBLISH packet identifier; v3.1.1
    PUBACK has no reason code."""
    b = broker()
    with raw(b) as c:
        c.send(m.publish("ack/t", b"x", qos=1, pid=0x1234))
        p = c.expect(m.PUBACK)
        assert p.pid == 0x1234 and len(p.body) == 2


def test_qos2_outgoing_full_flow(broker):
    """[MQTT-4.3.3-1] broker as QoS 2 sender: PUBLISH, client PUBREC,
    broker PUBREL (flags 0010), client PUBCOMP; nothing more."""
    b = broker()
    with raw(b, version=5) as sub:
        sub.send(m.subscribe(1, [("q2out/t", 2)], version=5))
        sub.expect(m.SUBACK)
        with raw(b, version=5) as pub:
            pub.send(m.publish("q2out/t", b"x", qos=2, pid=5, version=5))
            pub.expect(m.PUBREC)
            pub.send(m.ack(m.PUBREL, 5))
            pub.expect(m.PUBCOMP)
        p = sub.expect(m.PUBLISH)
        assert p.qos == 2 and not p.dup
        sub.send(m.ack(m.PUBREC, p.pid))
        rel = sub.expect(m.PUBREL)
        assert rel.pid == p.pid and rel.flags == 2
        sub.send(m.ack(m.PUBCOMP, p.pid))
        sub.assert_quiet(0.5)
