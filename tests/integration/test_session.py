"""Sessions: clean session / clean start, session expiry, takeover."""
import time

import pytest

import mqttraw as m
from conftest import assert_alive, raw, props, PacketTypes


def test_v311_persistent_session_queues_qos1_while_offline(broker, clients):
    """[MQTT-3.1.2-4][MQTT-3.1.2-5][MQTT-3.2.2-2] CleanSession 0: QoS 1
    messages published while the client is offline are delivered on
    reconnect, with session present = 1."""
    b = broker()
    s = clients(b, "persist311", version=4, clean=False)
    assert s.subscribe("sess/q", 1) == [1]
    s.disconnect()
    pub = clients(b, version=4)
    for i in range(3):
        pub.publish("sess/q", b"m%d" % i, qos=1)
    s2 = clients(b, "persist311", version=4, clean=False)
    assert s2.session_present == 1
    msgs = s2.get_n(3)
    assert [x.payload for x in msgs] == [b"m0", b"m1", b"m2"]
    assert all(x.qos == 1 for x in msgs)


def test_v311_clean_session_discards_state(broker, clients):
    """[MQTT-3.1.2-6][MQTT-3.2.2-1] CleanSession 1: session present 0, the
    old subscription is gone."""
    b = broker()
    s = clients(b, "clean311", version=4, clean=False)
    s.subscribe("sess/clean", 1)
    s.disconnect()
    s2 = clients(b, "clean311", version=4, clean=True)
    assert s2.session_present == 0
    clients(b, version=4).publish("sess/clean", b"x", qos=1)
    s2.expect_none(0.5)


def test_v311_qos0_not_queued_for_offline_session(broker, clients):
    """[MQTT-3.1.2-5] only QoS 1/2 messages are queued for an offline session
    (QoS 0 may be, but a QoS 0 subscription gets at most QoS 0).  Checks the
    QoS 1 message is there; QoS 0 ones may or may not be."""
    b = broker()
    s = clients(b, "q0off", version=4, clean=False)
    s.subscribe("sess/q0", 1)
    s.disconnect()
    pub = clients(b, version=4)
    pub.publish("sess/q0", b"zero", qos=0)
    pub.publish("sess/q0", b"one", qos=1)
    s2 = clients(b, "q0off", version=4, clean=False)
    got = []
    while True:
        msg = s2.get(3)
        got.append(msg.payload)
        if msg.payload == b"one":
            break
    assert got in ([b"one"], [b"zero", b"one"])


def test_v5_session_expiry_zero_discards_at_disconnect(broker, clients):
    """[MQTT-3.1.2-23] Session Expiry Interval 0 (absent): the session ends
    when the connection closes; reconnecting with Clean Start 0 finds none."""
    b = broker()
    s = clients(b, "exp0", version=5, clean=False)
    s.subscribe("sess/exp0", 1)
    s.disconnect()
    clients(b, version=5).publish("sess/exp0", b"lost", qos=1)
    s2 = clients(b, "exp0", version=5, clean=False)
    assert s2.session_present == 0
    s2.expect_none(0.5)


def test_v5_session_expiry_keeps_then_discards(broker, clients):
    """[MQTT-3.1.2-23] Session Expiry Interval 2: the session survives a
    disconnect for 2 s (messages queued, session present 1), then is gone."""
    b = broker()
    cp = props(PacketTypes.CONNECT, SessionExpiryInterval=2)
    s = clients(b, "exp2", version=5, clean=False, properties=cp)
    s.subscribe("sess/exp2", 1)
    s.disconnect()
    clients(b, version=5).publish("sess/exp2", b"kept", qos=1)
    s2 = clients(b, "exp2", version=5, clean=False, properties=cp)
    assert s2.session_present == 1
    assert s2.get(3).payload == b"kept"
    s2.disconnect()
    time.sleep(3.0)
    s3 = clients(b, "exp2", version=5, clean=False, properties=cp)
    assert s3.session_present == 0
    clients(b, version=5).publish("sess/exp2", b"after", qos=1)
    s3.expect_none(0.5)


def test_v5_clean_start_discards_existing_session(broker, clients):
    """[MQTT-3.1.2-4] Clean Start 1 discards an existing session: session
    present 0, no old subscription."""
    b = broker()
    cp = props(PacketTypes.CONNECT, SessionExpiryInterval=60)
    s = clients(b, "cs1", version=5, clean=False, properties=cp)
    s.subscribe("sess/cs1", 1)
    s.disconnect()
    s2 = clients(b, "cs1", version=5, clean=True, properties=cp)
    assert s2.session_present == 0
    clients(b, version=5).publish("sess/cs1", b"x", qos=1)
    s2.expect_none(0.5)


def test_v5_session_expiry_set_at_disconnect(broker, clients):
    """[MQTT-3.14.2-2] DISCONNECT may lower the Session Expiry Interval: a
    session opened with expiry 60 and closed with expiry 0 ends."""
    b = broker()
    c = raw(b, version=5, client_id="exp-disc", clean=False,
            properties=[("session_expiry_interval", 60)])
    with c:
        c.send(m.subscribe(1, [("sess/expdisc", 1)], version=5))
        c.expect(m.SUBACK)
        c.send(m.disconnect(5, reason=0, properties=[("session_expiry_interval", 0)]))
        c.expect_closed()
    with raw(b, version=5, client_id="exp-disc", clean=False) as c2:
        assert c2.connack.session_present == 0


def test_v5_session_expiry_cannot_be_raised_from_zero_at_disconnect(broker):
    """[MQTT-3.14.2-2] a client that connected with expiry 0 must not set a
    non-zero expiry on DISCONNECT: protocol error (DISCONNECT 0x82 / close);
    the broker stays up."""
    b = broker()
    with raw(b, version=5, client_id="exp-raise") as c:
        c.send(m.disconnect(5, reason=0, properties=[("session_expiry_interval", 30)]))
        c.expect_closed(allow_disconnect={0x82})
    assert_alive(b)


def test_v311_session_takeover_closes_first_connection(broker, clients):
    """[MQTT-3.1.4-2] a second connection with the same client id closes the
    first; with CleanSession 0 the session continues (subscription kept)."""
    b = broker()
    first = raw(b, client_id="takeover311", clean=False)
    with first:
        first.send(m.subscribe(1, [("sess/take", 1)]))
        first.expect(m.SUBACK)
        second = raw(b, client_id="takeover311", clean=False)
        with second:
            assert second.connack.session_present == 1
            first.expect_closed()
            pub = raw(b)
            pub.send(m.publish("sess/take", b"to-second", qos=1, pid=7))
            pub.expect(m.PUBACK)
            pub.close()
            p = second.expect(m.PUBLISH)
            assert p.payload == b"to-second"


def test_v5_session_takeover_closes_first_and_session_continues(broker):
    """[MQTT-3.1.4-3] v5 takeover: the existing connection is closed
    (DISCONNECT 0x8E may come first); the session continues on the new one."""
    b = broker()
    cp = [("session_expiry_interval", 60)]
    first = raw(b, version=5, client_id="takeover5", clean=False, properties=cp)
    with first:
        first.send(m.subscribe(1, [("sess/take5", 1)], version=5))
        first.expect(m.SUBACK)
        with raw(b, version=5, client_id="takeover5", clean=False, properties=cp) as second:
            assert second.connack.session_present == 1
            first.expect_closed(allow_disconnect={0x8E})
            with raw(b, version=5) as pub:
                pub.send(m.publish("sess/take5", b"cont", qos=1, pid=3, version=5))
                pub.expect(m.PUBACK)
            p = second.expect(m.PUBLISH)
            assert p.payload == b"cont"
    assert_alive(b)


@pytest.mark.imqtt_only
def test_v5_session_takeover_sends_disconnect_0x8e(broker):
    """[MQTT-3.1.4-3] the existing v5 connection receives DISCONNECT 0x8E
    (session taken over) before it is closed.  (imqtt_only: Mosquitto
    2.0.11 just closes the socket.)"""
    b = broker()
    first = raw(b, version=5, client_id="takeover5b")
    with first:
        with raw(b, version=5, client_id="takeover5b"):
            p = first.recv_or_closed()
            assert p is not None and p.type == m.DISCONNECT and p.reason == 0x8E, p
            first.expect_closed()


def test_v311_unacked_qos1_redelivered_with_dup_on_reconnect(broker):
    """[MQTT-4.4.0-1] a persistent session that received a QoS 1 message but
    did not acknowledge it gets it again, DUP=1 and same packet id, after
    reconnecting."""
    b = broker()
    c = raw(b, client_id="redeliver", clean=False)
    with c:
        c.send(m.subscribe(1, [("sess/redeliver", 1)]))
        c.expect(m.SUBACK)
        with raw(b) as pub:
            pub.send(m.publish("sess/redeliver", b"again", qos=1, pid=9))
            pub.expect(m.PUBACK)
        first = c.expect(m.PUBLISH)
        assert first.dup is False and first.qos == 1
    with raw(b, client_id="redeliver", clean=False) as c2:
        assert c2.connack.session_present == 1
        p = c2.expect(m.PUBLISH)
        assert p.payload == b"again" and p.dup is True and p.pid == first.pid, p
        c2.send(m.ack(m.PUBACK, p.pid))
        c2.assert_quiet(0.5)


def test_v5_unacked_qos2_redelivered_on_reconnect(broker):
    """[MQTT-4.4.0-1] v5: an unacknowledged QoS 2 PUBLISH is resent with DUP
    on reconnect; after PUBREC the flow completes with PUBREL/PUBCOMP."""
    b = broker()
    cp = [("session_expiry_interval", 60)]
    c = raw(b, version=5, client_id="redeliver2", clean=False, properties=cp)
    with c:
        c.send(m.subscribe(1, [("sess/redeliver2", 2)], version=5))
        c.expect(m.SUBACK)
        with raw(b, version=5) as pub:
            pub.send(m.publish("sess/redeliver2", b"q2", qos=2, pid=4, version=5))
            pub.expect(m.PUBREC)
            pub.send(m.ack(m.PUBREL, 4))
            pub.expect(m.PUBCOMP)
        first = c.expect(m.PUBLISH)
    with raw(b, version=5, client_id="redeliver2", clean=False, properties=cp) as c2:
        p = c2.expect(m.PUBLISH)
        assert p.payload == b"q2" and p.dup and p.pid == first.pid and p.qos == 2, p
        c2.send(m.ack(m.PUBREC, p.pid))
        rel = c2.expect(m.PUBREL)
        assert rel.pid == p.pid
        c2.send(m.ack(m.PUBCOMP, p.pid))
        c2.assert_quiet(0.5)
